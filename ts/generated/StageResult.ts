// Generated from the Rust types of native/core by ts-rs (native/core/src/config/ts_contract.rs): change the Rust type and run `cargo test -p st-core`. Do not edit.

/**
 * The accuracy after one stage.
 */
export type StageResult = {
  name: string,
  /**
   * Points this stage attacked (robust when it began).
   */
  attacked: number,
  /**
   * Points still robust after it, and their fraction of all images.
   */
  correct: number,
  accuracy: number,
  seconds: number,
};
