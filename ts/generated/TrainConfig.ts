// Generated from the Rust types of native/core by ts-rs (native/core/src/config/ts_contract.rs): change the Rust type and run `cargo test -p st-core`. Do not edit.
import type { AugmentConfig } from "./AugmentConfig.js";
import type { DeviceChoice } from "./DeviceChoice.js";
import type { EmaConfig } from "./EmaConfig.js";
import type { EvalConfig } from "./EvalConfig.js";
import type { EvalSchedule } from "./EvalSchedule.js";
import type { ExtraConfig } from "./ExtraConfig.js";
import type { MemoryFormat } from "./MemoryFormat.js";
import type { MethodConfig } from "./MethodConfig.js";
import type { ModelName } from "./ModelName.js";
import type { OptimizerConfig } from "./OptimizerConfig.js";
import type { Precision } from "./Precision.js";

/**
 * One training run, as the core receives it (`NativeTrainConfig` in TS;
 * `ts/config` builds it from a validated user config).
 */
export type TrainConfig = {
  /**
   * A name in the model registry (checked when the model is built).
   */
  model: ModelName,
  numClasses: number,
  method: MethodConfig,
  epochs: number,
  batchSize: number,
  optimizer: OptimizerConfig,
  augment: AugmentConfig,
  eval: EvalConfig,
  seed: number,
  device: DeviceChoice,
  /**
   * libtorch intra-op threads; null keeps libtorch's default.
   */
  threads: number | null,
  /**
   * Folder the native loop writes checkpoints into (created if missing).
   */
  outDir: string,
  /**
   * Checkpoint to resume weights from (safetensors), or null.
   */
  initCheckpoint: string | null,
  /**
   * When the per-epoch evaluation runs.
   */
  evalSchedule: EvalSchedule,
  /**
   * Continue a run from this resume file (its `checkpoints/resume.safetensors`).
   */
  resume: string | null,
  /**
   * Precision of the training step's forward/backward.
   */
  precision: Precision,
  /**
   * Memory layout of weights and batches (training and evaluation).
   */
  memoryFormat: MemoryFormat,
  /**
   * Weight averaging (EMA) of the run, or null for none.
   */
  ema: EmaConfig | null,
  /**
   * Extra training images mixed into every batch, or null for none.
   */
  extra: ExtraConfig | null,
};
