// Generated from the Rust types of native/core by ts-rs (native/core/src/config/ts_contract.rs): change the Rust type and run `cargo test -p st-core`. Do not edit.

/**
 * The split an evaluation ran on. Model selection uses the validation split
 * when the run has one (the cleaner practice), else the test split (as the
 * reference code does).
 */
export type EvalSplit = "validation" | "test";
