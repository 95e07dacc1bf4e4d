// Generated from the Rust types of native/core by ts-rs (native/core/src/config/ts_contract.rs): change the Rust type and run `cargo test -p st-core`. Do not edit.
import type { AttackSpec } from "./AttackSpec.js";
import type { StageResult } from "./StageResult.js";

/**
 * One attack's line of the table.
 */
export type AttackResult = {
  name: string,
  /**
   * The settings it ran with.
   */
  spec: AttackSpec,
  /**
   * Fraction of the images classified correctly after the attack.
   */
  accuracy: number,
  correct: number,
  samples: number,
  /**
   * The batch size it ran at (its random starts depend on it).
   */
  batchSize: number,
  /**
   * The seed its random starts derive from.
   */
  seed: number,
  /**
   * Largest distance of an adversarial input from its image, in the
   * attack's norm (L-inf for clean and run): at most eps.
   */
  maxPerturbation: number,
  seconds: number,
  /**
   * An AutoAttack's accuracy after each of its stages (null otherwise).
   */
  stages: Array<StageResult> | null,
  /**
   * An AutoAttack continued from a saved state.
   */
  resumed: boolean,
};
