// Generated from the Rust types of native/core by ts-rs (native/core/src/config/ts_contract.rs): change the Rust type and run `cargo test -p st-core`. Do not edit.
import type { Branches } from "./Branches.js";
import type { Reg } from "./Reg.js";

/**
 * Squeeze Training (method page §2).
 */
export type StConfig = {
  /**
   * The discrepancy between the adversarial and collaborative predictions.
   */
  reg: Reg,
  /**
   * Weight of the reg term.
   */
  beta: number,
  /**
   * L-inf radius of the training ball, in [0,1] pixel units.
   */
  epsilon: number,
  /**
   * Sign-gradient step alpha, in [0,1] pixel units.
   */
  stepSize: number,
  /**
   * Inner steps K.
   */
  steps: number,
  branches: Branches,
};
