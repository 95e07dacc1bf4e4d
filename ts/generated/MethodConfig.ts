// Generated from the Rust types of native/core by ts-rs (native/core/src/config/ts_contract.rs): change the Rust type and run `cargo test -p st-core`. Do not edit.
import type { PgdAtConfig } from "./PgdAtConfig.js";
import type { StConfig } from "./StConfig.js";

/**
 * The training method, tagged by `name`. `natural` is plain cross-entropy
 * training: the "normally trained" baseline.
 */
export type MethodConfig = { "name": "st" } & StConfig | { "name": "natural" } | { "name": "pgd_at" } & PgdAtConfig;
