// Generated from the Rust types of native/core by ts-rs (native/core/src/config/ts_contract.rs): change the Rust type and run `cargo test -p st-core`. Do not edit.

/**
 * Per-channel input normalisation folded in front of the model, for models
 * trained on normalised inputs: the attacks still work on [0,1] images and
 * the model sees `(x - mean) / std`.
 */
export type Normalization = {
  /**
   * One value, or one per channel.
   */
  mean: Array<number>,
  /**
   * One value, or one per channel; each > 0.
   */
  std: Array<number>,
};
