// Generated from the Rust types of native/core by ts-rs (native/core/src/config/ts_contract.rs): change the Rust type and run `cargo test -p st-core`. Do not edit.
import type { EmaEvalWith } from "./EmaEvalWith.js";

/**
 * An exponential moving average of the weights, updated after every
 * optimiser step (see `crate::ema` for the recursion and its provenance).
 */
export type EmaConfig = {
  /**
   * The decay once warmed up, in (0, 1) (e.g. 0.999).
   */
  decay: number,
  /**
   * Optimiser steps during which the average just copies the weights.
   */
  warmupSteps: number,
  /**
   * Which weights' evaluation picks the best epoch (`best.safetensors`
   * and `ema-best.safetensors` are both written at that epoch).
   */
  evalWith: EmaEvalWith,
};
