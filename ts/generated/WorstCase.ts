// Generated from the Rust types of native/core by ts-rs (native/core/src/config/ts_contract.rs): change the Rust type and run `cargo test -p st-core`. Do not edit.

/**
 * The per-point worst case: robust only if correct clean and under every attack run.
 */
export type WorstCase = {
  accuracy: number,
  correct: number,
  /**
   * The attacks it combines (clean always included).
   */
  over: Array<string>,
};
