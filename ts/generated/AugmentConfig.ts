// Generated from the Rust types of native/core by ts-rs (native/core/src/config/ts_contract.rs): change the Rust type and run `cargo test -p st-core`. Do not edit.

export type AugmentConfig = {
  /**
   * Zero padding for random crop back to the input size; 0 disables cropping.
   */
  randomCropPadding: number,
  horizontalFlip: boolean,
};
