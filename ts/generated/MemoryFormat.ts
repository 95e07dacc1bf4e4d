// Generated from the Rust types of native/core by ts-rs (native/core/src/config/ts_contract.rs): change the Rust type and run `cargo test -p st-core`. Do not edit.

/**
 * Memory layout of images and 4-d weights: `channels_last` is NHWC strides
 * with NCHW shapes (same numbers, faster kernels on some hardware).
 */
export type MemoryFormat = "contiguous" | "channels_last";
