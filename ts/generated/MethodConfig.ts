// Generated from the Rust types of native/core by ts-rs (native/core/src/config/ts_contract.rs): change the Rust type and run `cargo test -p st-core`. Do not edit.
import type { AwpConfig } from "./AwpConfig.js";
import type { CollaborativeConfig } from "./CollaborativeConfig.js";
import type { MartConfig } from "./MartConfig.js";
import type { PgdAtConfig } from "./PgdAtConfig.js";
import type { StConfig } from "./StConfig.js";
import type { TradesConfig } from "./TradesConfig.js";

/**
 * The training method, tagged by `name`. `natural` is plain cross-entropy
 * training: the "normally trained" baseline.
 */
export type MethodConfig = { "name": "st" } & StConfig | { "name": "natural" } | { "name": "pgd_at" } & PgdAtConfig | { "name": "trades" } & TradesConfig | { "name": "mart" } & MartConfig | { "name": "collaborative" } & CollaborativeConfig | { "name": "awp" } & AwpConfig;
