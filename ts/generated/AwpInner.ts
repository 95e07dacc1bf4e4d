// Generated from the Rust types of native/core by ts-rs (native/core/src/config/ts_contract.rs): change the Rust type and run `cargo test -p st-core`. Do not edit.
import type { StConfig } from "./StConfig.js";
import type { TradesConfig } from "./TradesConfig.js";

/**
 * The methods AWP can wrap, tagged by `name`.
 */
export type AwpInner = { "name": "trades" } & TradesConfig | { "name": "st" } & StConfig;
