// Generated from the Rust types of native/core by ts-rs (native/core/src/config/ts_contract.rs): change the Rust type and run `cargo test -p st-core`. Do not edit.
import type { EvalSplit } from "./EvalSplit.js";

/**
 * Clean and robust accuracy of one evaluation.
 */
export type EvalResult = {
  epoch: number,
  /**
   * Which split was evaluated.
   */
  split: EvalSplit,
  cleanAcc: number,
  robustAcc: number,
  /**
   * e.g. "pgd-20"
   */
  attack: string,
  samples: number,
  seconds: number,
  /**
   * true: the evaluation of the weight average (EMA); absent: of the
   * trained weights themselves.
   */
  ema?: boolean,
};
