//! Build script of the Node addon.
//!
//! Environment (read by torch-sys, set by scripts/build.mjs):
//! - `LIBTORCH`: a libtorch folder, or
//! - `LIBTORCH_USE_PYTORCH=1` with a Python whose `torch` is 2.11.0 first on PATH.
//!
//! Deliberately absent: an rpath to that libtorch, and a forced link of
//! libtorch_cuda. The addon is the same file on every host (npm ships it
//! prebuilt): it finds libtorch when first loaded (`ts/native.ts` pre-loads
//! libtorch's libraries, and libtorch_cuda where the CUDA libraries and a GPU
//! are there, through `native/preload`). Loading libtorch_cuda registers the
//! CUDA backend with libtorch, which is all tch needs to see CUDA.
fn main() {
    napi_build::setup();
}
