// Generated from the Rust types of native/core by ts-rs (native/core/src/config/ts_contract.rs): change the Rust type and run `cargo test -p st-core`. Do not edit.

/**
 * TRADES (Zhang et al., ICML 2019): CE(f(x), y) + beta * KL(f(x) || f(x')),
 * x' from sign-ascent steps on that KL (model in eval mode).
 */
export type TradesConfig = {
  /**
   * Weight of the KL term (1/lambda in the paper; 6 in its CIFAR setting).
   */
  beta: number,
  epsilon: number,
  stepSize: number,
  steps: number,
};
