// Generated from the Rust types of native/core by ts-rs (native/core/src/config/ts_contract.rs): change the Rust type and run `cargo test -p st-core`. Do not edit.
import type { AwpInner } from "./AwpInner.js";

/**
 * Adversarial weight perturbation (Wu, Xia, Wang, NeurIPS 2020) around
 * another method's loss: each step perturbs every weight matrix / conv
 * kernel by gamma * ||w|| along its normalised loss gradient, takes the
 * optimiser step at the perturbed weights, then removes the perturbation.
 */
export type AwpConfig = {
  /**
   * The wrapped method (its inner loop finds the points, its loss is perturbed).
   */
  inner: AwpInner,
  /**
   * Relative size of the weight perturbation (5e-3 in the TRADES-AWP code, 1e-2 in AT-AWP's).
   */
  gamma: number,
  /**
   * Epochs trained with the inner method alone before AWP starts.
   */
  warmup: number,
};
