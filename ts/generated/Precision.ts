// Generated from the Rust types of native/core by ts-rs (native/core/src/config/ts_contract.rs): change the Rust type and run `cargo test -p st-core`. Do not edit.

/**
 * Numeric precision of the forward/backward passes (see `precision`).
 * `bf16`/`f16` run the model's forward under libtorch autocast with f32
 * master weights (f16 with a dynamic gradient scaler); `tf32` sets the CUDA
 * matmul/cuDNN allow-TF32 flags and is a no-op on CPU.
 */
export type Precision = "f32" | "tf32" | "bf16" | "f16";
