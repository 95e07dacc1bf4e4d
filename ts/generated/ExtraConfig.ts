// Generated from the Rust types of native/core by ts-rs (native/core/src/config/ts_contract.rs): change the Rust type and run `cargo test -p st-core`. Do not edit.

/**
 * Extra (pseudo-labelled) training images mixed into every batch, as RST's
 * `SemiSupervisedSampler` does (see `crate::sampler`).
 */
export type ExtraConfig = {
  /**
   * Absolute path of a `.stextra` file (README: "Extra data for RST").
   */
  file: string,
  /**
   * Fraction of each batch drawn from the extra images (RST's
   * `unsup_fraction`, 0.5): `floor(batchSize * fraction)` of them.
   */
  fraction: number,
};
