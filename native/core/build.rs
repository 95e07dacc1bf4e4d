//! Lets `cargo test` binaries of this crate find libtorch at run time without
//! LD_LIBRARY_PATH: torch-sys exports the libtorch folder it linked against as
//! DEP_TCH_LIBTORCH_LIB, and we add it as an rpath.
fn main() {
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
}
