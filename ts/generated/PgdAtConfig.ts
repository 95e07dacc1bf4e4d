// Generated from the Rust types of native/core by ts-rs (native/core/src/config/ts_contract.rs): change the Rust type and run `cargo test -p st-core`. Do not edit.

/**
 * Madry et al. PGD adversarial training (CE on PGD points, random start).
 */
export type PgdAtConfig = {
  epsilon: number,
  stepSize: number,
  steps: number,
};
