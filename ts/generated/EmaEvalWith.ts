// Generated from the Rust types of native/core by ts-rs (native/core/src/config/ts_contract.rs): change the Rust type and run `cargo test -p st-core`. Do not edit.

/**
 * Which weights a run with an EMA selects its best epoch by.
 */
export type EmaEvalWith = "ema" | "raw";
