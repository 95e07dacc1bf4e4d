// Generated from the Rust types of native/core by ts-rs (native/core/src/config/ts_contract.rs): change the Rust type and run `cargo test -p st-core`. Do not edit.
import type { AttackResult } from "./AttackResult.js";

/**
 * Progress of `evaluate_attacks`, in order.
 */
export type EvalEvent = {
  "type": "start",
  attacks: Array<string>,
  samples: number,
  batchSize: number,
  device: string,
  checkpointCrc32: string,
  verified: boolean,
} | {
  "type": "batch",
  attack: string,
  index: number,
  done: number,
  total: number,
  correct: number,
} | {
  "type": "stage",
  attack: string,
  index: number,
  stage: string,
  stageIndex: number,
  stages: number,
  points: number,
  robust: number,
  samples: number,
} | { "type": "attack" } & AttackResult | {
  "type": "notice",
  message: string,
};
