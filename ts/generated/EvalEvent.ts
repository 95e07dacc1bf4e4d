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
} | {
  "type": "progress",
  attack: string,
  index: number,
  /**
   * The AutoAttack's current stage; null for other attacks.
   */
  stage: string | null,
  /**
   * Images done of `total` (an AutoAttack: of the stage), the batch
   * under attack counted by the share of its iterations done
   * (fractional).
   */
  done: number,
  total: number,
  /**
   * Seconds in the attack (an AutoAttack: in the stage, including
   * time before a resume).
   */
  seconds: number,
  /**
   * Seconds since the attack began in this process (an AutoAttack:
   * all its stages).
   */
  attackSeconds: number,
} | { "type": "attack" } & AttackResult | {
  "type": "notice",
  message: string,
};
