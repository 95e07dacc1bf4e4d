// Generated from the Rust types of native/core by ts-rs (native/core/src/config/ts_contract.rs): change the Rust type and run `cargo test -p st-core`. Do not edit.
import type { EvalResult } from "./EvalResult.js";
import type { EvalSplit } from "./EvalSplit.js";
import type { RunStatus } from "./RunStatus.js";

/**
 * How a run ended, and its numbers.
 */
export type TrainSummary = {
  status: RunStatus,
  epochsCompleted: number,
  /**
   * The split model selection used.
   */
  selectedOn: EvalSplit,
  /**
   * Best robust accuracy over evaluated epochs on the selection split
   * (model selection by PGD).
   */
  best: EvalResult | null,
  last: EvalResult | null,
  /**
   * The best checkpoint on the test split: what to report. Equal to `best`
   * when selection used the test split.
   */
  test: EvalResult | null,
  /**
   * Paths of written checkpoints, when written.
   */
  lastCheckpoint: string | null,
  bestCheckpoint: string | null,
  seconds: number,
};
