// Generated from the Rust types of native/core by ts-rs (native/core/src/config/ts_contract.rs): change the Rust type and run `cargo test -p st-core`. Do not edit.

/**
 * Collaborative examples alone (the ST paper's Eq. 5, method page §8):
 * CE(f(x), y) + beta * KL(f(x'') || f(x)), x'' from sign-descent steps on CE.
 */
export type CollaborativeConfig = {
  beta: number,
  epsilon: number,
  stepSize: number,
  steps: number,
};
