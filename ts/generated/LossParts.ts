// Generated from the Rust types of native/core by ts-rs (native/core/src/config/ts_contract.rs): change the Rust type and run `cargo test -p st-core`. Do not edit.

/**
 * Loss parts of a step or epoch; which exist depends on the method. A part
 * that does not exist is left out of the JSON (an optional field in TS).
 */
export type LossParts = {
  /**
   * CE on the adversarial point x_adv (ST, PGD-AT).
   */
  ceAdv?: number,
  /**
   * CE on the benign point x.
   */
  ceBenign?: number,
  /**
   * CE on the collaborative point x_col (ST).
   */
  ceCol?: number,
  /**
   * The reg discrepancy between x_adv and x_col (ST).
   */
  reg?: number,
};
