// Generated from the Rust types of native/core by ts-rs (native/core/src/config/ts_contract.rs): change the Rust type and run `cargo test -p st-core`. Do not edit.
import type { AttackResult } from "./AttackResult.js";
import type { EvalResult } from "./EvalResult.js";
import type { ModelName } from "./ModelName.js";
import type { Normalization } from "./Normalization.js";
import type { WorstCase } from "./WorstCase.js";

/**
 * The result of `evaluate_attacks`.
 */
export type EvalReport = {
  checkpoint: string,
  /**
   * CRC-32 of the tensors (names and bytes, in name order): the value a
   * checkpoint of ours carries as `st_native.crc32`, computed the same way
   * for any file.
   */
  checkpointCrc32: string,
  /**
   * The file carried our checksum and it matched (false: a file from elsewhere).
   */
  verified: boolean,
  model: ModelName,
  numClasses: number,
  /**
   * The epoch the checkpoint says it ends, if it says.
   */
  epoch: number | null,
  device: string,
  libtorch: string,
  seed: number,
  samples: number,
  /**
   * The batch size asked for (each attack records the one it ran at).
   */
  batchSize: number,
  normalize: Normalization | null,
  cleanAccuracy: number,
  attacks: Array<AttackResult>,
  worstCase: WorstCase,
  /**
   * The `run` attack's result in the per-epoch evaluation's shape.
   */
  run: EvalResult | null,
  /**
   * Things the user should know (a batch halved after running out of memory).
   */
  notices: Array<string>,
  adversarialFile: string | null,
  seconds: number,
};
