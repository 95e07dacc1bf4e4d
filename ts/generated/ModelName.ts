// Generated from the Rust types of native/core by ts-rs (native/core/src/config/ts_contract.rs): change the Rust type and run `cargo test -p st-core`. Do not edit.

/**
 * Names registered in native/core `models/registry.rs`.
 */
export type ModelName = "small_cnn" | "resnet18" | "preact_resnet18" | "wrn34_10" | "wrn34_5" | "wrn28_10";
