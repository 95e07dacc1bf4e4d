// Generated from the Rust types of native/core by ts-rs (native/core/src/config/ts_contract.rs): change the Rust type and run `cargo test -p st-core`. Do not edit.
import type { ModelName } from "./ModelName.js";

/**
 * A registered model, as `list_models` describes it.
 */
export type ModelInfo = {
  name: ModelName,
  description: string,
  /**
   * Input shape [C, H, W] the model is built for.
   */
  inputShape: [number, number, number],
  numClasses: number,
  parameters: number,
};
