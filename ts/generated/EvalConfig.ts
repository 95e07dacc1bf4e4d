// Generated from the Rust types of native/core by ts-rs (native/core/src/config/ts_contract.rs): change the Rust type and run `cargo test -p st-core`. Do not edit.
import type { Precision } from "./Precision.js";

/**
 * The PGD evaluation after each epoch (and of a checkpoint).
 */
export type EvalConfig = {
  /**
   * PGD evaluation radius (L-inf, [0,1] units).
   */
  epsilon: number,
  stepSize: number,
  /**
   * PGD steps (20 for PGD-20).
   */
  steps: number,
  /**
   * Uniform random start in the eps-ball.
   */
  randomStart: boolean,
  batchSize: number,
  /**
   * Evaluate on at most this many held-out images (first N); null = all.
   */
  maxSamples: number | null,
  /**
   * Precision of the attacks and clean evaluation: f32 unless asked
   * (attacks in bf16/f16 understate robustness).
   */
  precision: Precision,
};
