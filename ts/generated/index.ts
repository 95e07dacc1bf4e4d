// Generated from the Rust types of native/core by ts-rs (native/core/src/config/ts_contract.rs): change the Rust type and run `cargo test -p st-core`. Do not edit.

export type { AugmentConfig } from "./AugmentConfig.js";
export type { Branches } from "./Branches.js";
export type { CheckpointInfo } from "./CheckpointInfo.js";
export type { CheckpointKind } from "./CheckpointKind.js";
export type { DeviceChoice } from "./DeviceChoice.js";
export type { EvalConfig } from "./EvalConfig.js";
export type { EvalResult } from "./EvalResult.js";
export type { EvalSchedule } from "./EvalSchedule.js";
export type { EvalSplit } from "./EvalSplit.js";
export type { Event } from "./Event.js";
export type { LossParts } from "./LossParts.js";
export type { MethodConfig } from "./MethodConfig.js";
export type { ModelInfo } from "./ModelInfo.js";
export type { ModelName } from "./ModelName.js";
export type { OptimizerConfig } from "./OptimizerConfig.js";
export type { PgdAtConfig } from "./PgdAtConfig.js";
export type { Reg } from "./Reg.js";
export type { RunStatus } from "./RunStatus.js";
export type { StConfig } from "./StConfig.js";
export type { TrainConfig } from "./TrainConfig.js";
export type { TrainSummary } from "./TrainSummary.js";
