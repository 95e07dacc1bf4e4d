// Generated from the Rust types of native/core by ts-rs (native/core/src/config/ts_contract.rs): change the Rust type and run `cargo test -p st-core`. Do not edit.
import type { CheckpointKind } from "./CheckpointKind.js";
import type { EvalPhase } from "./EvalPhase.js";
import type { EvalResult } from "./EvalResult.js";
import type { EvalSplit } from "./EvalSplit.js";
import type { LossParts } from "./LossParts.js";
import type { ModelName } from "./ModelName.js";
import type { TrainSummary } from "./TrainSummary.js";

/**
 * One event of a training run (`TrainEvent` in TS), tagged by `type`.
 */
export type Event = {
  "type": "start",
  model: ModelName,
  parameters: number,
  device: string,
  method: string,
  trainSize: number,
  /**
   * Images evaluated after each epoch (validation split if any, else test).
   */
  testSize: number,
  epochs: number,
  stepsPerEpoch: number,
  startEpoch: number,
  /**
   * The epochs from `startEpoch` on after which the held-out
   * evaluation runs (the schedule; always the last one).
   */
  evalEpochs: Array<number>,
  /**
   * Images of the final test of the best checkpoint, when selection
   * runs on a validation split; null when there is none.
   */
  finalTestSize: number | null,
} | {
  "type": "step",
  /**
   * 1-based.
   */
  epoch: number,
  /**
   * 1-based within the epoch.
   */
  step: number,
  stepsPerEpoch: number,
  lr: number,
  loss: number,
  parts: LossParts,
  imagesPerSec: number,
  elapsedSec: number,
} | {
  "type": "epoch",
  epoch: number,
  loss: number,
  parts: LossParts,
  trainAcc: number,
  seconds: number,
  imagesPerSec: number,
} | {
  "type": "evalProgress",
  phase: EvalPhase,
  /**
   * The epoch evaluated (for the final test: the best checkpoint's).
   */
  epoch: number,
  split: EvalSplit,
  /**
   * Images evaluated so far, of `total`.
   */
  done: number,
  total: number,
  /**
   * Seconds since this evaluation started.
   */
  elapsedSec: number,
} | { "type": "eval" } & EvalResult | {
  "type": "checkpoint",
  epoch: number,
  kind: CheckpointKind,
  path: string,
  /**
   * A `best` checkpoint written because the epoch tied the best robust
   * accuracy so far (a tie goes to the later epoch) rather than beat
   * it. False for every other checkpoint.
   */
  tied: boolean,
} | { "type": "done" } & TrainSummary;
