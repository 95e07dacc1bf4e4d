// Generated from the Rust types of native/core by ts-rs (native/core/src/config/ts_contract.rs): change the Rust type and run `cargo test -p st-core`. Do not edit.

/**
 * Where evaluated images come from, as the caller names them.
 */
export type DataSource = {
  dataset: string,
  split: string,
};
