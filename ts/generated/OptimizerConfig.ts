// Generated from the Rust types of native/core by ts-rs (native/core/src/config/ts_contract.rs): change the Rust type and run `cargo test -p st-core`. Do not edit.
import type { LrSchedule } from "./LrSchedule.js";

/**
 * SGD with a per-epoch learning-rate schedule.
 */
export type OptimizerConfig = {
  /**
   * Initial learning rate.
   */
  lr: number,
  momentum: number,
  weightDecay: number,
  nesterov: boolean,
  /**
   * 1-based epochs after which the learning rate is multiplied by `gamma`
   * (PyTorch `MultiStepLR` stepped once per epoch); `multistep` only.
   */
  milestones: Array<number>,
  gamma: number,
  /**
   * `multistep` (the milestones) or `cosine`; absent in older configs: multistep.
   */
  schedule: LrSchedule,
};
