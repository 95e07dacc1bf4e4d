// Generated from the Rust types of native/core by ts-rs (native/core/src/config/ts_contract.rs): change the Rust type and run `cargo test -p st-core`. Do not edit.

/**
 * How the learning rate changes from epoch to epoch.
 */
export type LrSchedule = "multistep" | "cosine";
