// Generated from the Rust types of native/core by ts-rs (native/core/src/config/ts_contract.rs): change the Rust type and run `cargo test -p st-core`. Do not edit.

/**
 * MART (Wang et al., ICLR 2020): boosted CE at the PGD point plus beta *
 * KL(f(x) || f(x')) weighted by 1 - p(y|x).
 */
export type MartConfig = {
  /**
   * Weight of the weighted KL term (5 in the ST paper's comparison).
   */
  beta: number,
  epsilon: number,
  stepSize: number,
  steps: number,
};
