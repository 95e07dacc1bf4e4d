// Generated from the Rust types of native/core by ts-rs (native/core/src/config/ts_contract.rs): change the Rust type and run `cargo test -p st-core`. Do not edit.

/**
 * When the held-out evaluation runs: after every `every`-th epoch, after
 * each of the last `last_epochs` epochs, and always after the final one.
 * Model selection (the best checkpoint) only sees evaluated epochs.
 */
export type EvalSchedule = {
  every: number,
  lastEpochs: number,
};
