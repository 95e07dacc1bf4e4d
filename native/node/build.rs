//! Build script of the Node addon.
//!
//! Environment (read by torch-sys, set by scripts/build.mjs):
//! - `LIBTORCH`: a libtorch folder, or
//! - `LIBTORCH_USE_PYTORCH=1` with a Python whose `torch` is 2.11.0 first on PATH.
//!
//! What this adds on top of torch-sys:
//! - an rpath to the libtorch folder torch-sys linked against
//!   (DEP_TCH_LIBTORCH_LIB), so the addon loads without LD_LIBRARY_PATH;
//! - `--no-as-needed` around torch_cuda, because nothing references its
//!   symbols directly and the linker would otherwise drop it, leaving CUDA
//!   silently unavailable (known tch-rs issue).
fn main() {
    napi_build::setup();
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg-cdylib=-Wl,-rpath,{lib}");
        if std::path::Path::new(&lib).join("libtorch_cuda.so").exists() {
            println!("cargo:rustc-link-arg-cdylib=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
        }
    }
}
