//! Build script of st-core.
//!
//! - Lets `cargo test` binaries find libtorch at run time without
//!   LD_LIBRARY_PATH: torch-sys exports the libtorch folder it linked against
//!   as DEP_TCH_LIBTORCH_LIB, and we add it as an rpath.
//! - Records that libtorch's version (from a libtorch folder's `build-version`
//!   or a PyTorch wheel's `version.py`) as ST_LIBTORCH_VERSION, so
//!   `device::libtorch_version` reports what was really linked.
//! - Compiles csrc/autocast.cpp (CPU/CUDA autocast and TF32 switches that tch
//!   does not expose), csrc/device_stats.cpp (accelerator memory
//!   statistics, cuDNN determinism) and csrc/c10d.cpp (libtorch's distributed
//!   engine for data-parallel training: TCPStore, Gloo, NCCL) against that
//!   libtorch's headers.
use std::path::Path;

fn version_of(lib_dir: &Path) -> Option<String> {
    let root = lib_dir.parent()?;
    if let Ok(v) = std::fs::read_to_string(root.join("build-version")) {
        return v.lines().next().map(|l| l.trim().to_string());
    }
    let py = std::fs::read_to_string(root.join("version.py")).ok()?;
    let line = py.lines().find(|l| l.starts_with("__version__"))?;
    Some(line.split(['\'', '"']).nth(1)?.to_string())
}

fn compile_shim(lib_dir: &Path) {
    let include = lib_dir
        .parent()
        .expect("libtorch lib folder has a parent")
        .join("include");
    println!("cargo:rerun-if-changed=csrc/autocast.cpp");
    println!("cargo:rerun-if-changed=csrc/device_stats.cpp");
    println!("cargo:rerun-if-changed=csrc/c10d.cpp");
    cc::Build::new()
        .cpp(true)
        .file("csrc/autocast.cpp")
        .file("csrc/device_stats.cpp")
        .file("csrc/c10d.cpp")
        .include(&include)
        .flag("-std=c++17")
        .flag("-D_GLIBCXX_USE_CXX11_ABI=1")
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .warnings(false)
        .compile("st_shims");
    // c10d.cpp finds the process-group constructors with dlopen/dlsym.
    println!("cargo:rustc-link-lib=dl");
}

fn main() {
    let mut version = "unknown".to_string();
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
        if let Some(v) = version_of(Path::new(&lib)) {
            version = v;
        }
        compile_shim(Path::new(&lib));
    }
    println!("cargo:rustc-env=ST_LIBTORCH_VERSION={version}");
}
