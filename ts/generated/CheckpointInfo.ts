// Generated from the Rust types of native/core by ts-rs (native/core/src/config/ts_contract.rs): change the Rust type and run `cargo test -p st-core`. Do not edit.

/**
 * What a checkpoint file says about itself (its safetensors metadata).
 */
export type CheckpointInfo = {
  /**
   * True when the file carried st-native's checksum and it matched (false:
   * a file from elsewhere, unverified).
   */
  verified: boolean,
  model: string | null,
  numClasses: number | null,
  /**
   * The epoch whose end the weights are (evaluation seeds from it).
   */
  epoch: number | null,
  seed: number | null,
  kind: string | null,
  tensors: number,
};
