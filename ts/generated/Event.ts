// Generated from the Rust types of native/core by ts-rs (native/core/src/config/ts_contract.rs): change the Rust type and run `cargo test -p st-core`. Do not edit.
import type { CheckpointKind } from "./CheckpointKind.js";
import type { EvalResult } from "./EvalResult.js";
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
} | { "type": "eval" } & EvalResult | {
  "type": "checkpoint",
  epoch: number,
  kind: CheckpointKind,
  path: string,
} | { "type": "done" } & TrainSummary;
