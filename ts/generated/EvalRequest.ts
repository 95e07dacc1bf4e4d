// Generated from the Rust types of native/core by ts-rs (native/core/src/config/ts_contract.rs): change the Rust type and run `cargo test -p st-core`. Do not edit.
import type { AttackSpec } from "./AttackSpec.js";
import type { DataSource } from "./DataSource.js";
import type { DeviceChoice } from "./DeviceChoice.js";
import type { ModelName } from "./ModelName.js";
import type { Normalization } from "./Normalization.js";
import type { RunEval } from "./RunEval.js";

/**
 * One evaluation of a checkpoint under a list of attacks (JSON from TS).
 */
export type EvalRequest = {
  /**
   * A safetensors file: ours, or a PyTorch state dict of `model`.
   */
  checkpoint: string,
  model: ModelName,
  numClasses: number,
  /**
   * In order; `clean` is computed for the worst case even when not listed.
   */
  attacks: Array<AttackSpec>,
  /**
   * Images per batch (halved, with a notice, when the device runs out of memory).
   */
  batchSize: number,
  /**
   * The first N images of the split; null = all.
   */
  maxSamples: number | null,
  /**
   * Seeds every random start (batch `b`'s restart `r` draws from a seed
   * mixed from this, the batch's first index and `r`).
   */
  seed: number,
  normalize: Normalization | null,
  device: DeviceChoice,
  /**
   * Write the adversarial inputs (float32, as attacked) here.
   */
  saveAdversarial: string | null,
  /**
   * Needed by the `run` attack.
   */
  run: RunEval | null,
  /**
   * AutoAttacks save their per-point state at
   * `<this>.<attack>.autoattack-state.safetensors` and resume from it
   * (null: not resumable).
   */
  resumePrefix: string | null,
  /**
   * Which images these are (dataset and split), recorded in the
   * resumable state's fingerprint beside a hash of the images themselves.
   */
  dataSource: DataSource | null,
};
