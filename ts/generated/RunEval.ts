// Generated from the Rust types of native/core by ts-rs (native/core/src/config/ts_contract.rs): change the Rust type and run `cargo test -p st-core`. Do not edit.
import type { EvalConfig } from "./EvalConfig.js";

/**
 * The run a checkpoint came from: what the `run` attack replays.
 */
export type RunEval = {
  /**
   * The run's evaluation settings (its config's `eval`).
   */
  eval: EvalConfig,
  /**
   * The run's seed and the epoch the checkpoint ends; the checkpoint's own
   * metadata wins where it records them.
   */
  seed: number,
  epoch: number,
};
