//! The device check's measuring binary (benches/device_check.py runs it;
//! README "Device check"). One subcommand per part, JSON lines on stdout:
//!
//!     device_check correctness [--device auto|cpu|cuda] [--model resnet18] [--width 64]
//!         [--size 32] [--batch 32] [--steps 10] [--pgd-steps 20] [--seed 0]
//!     device_check speed [--batch 128] [--steps 10] [--warmup 2] [--iters 10]
//!         [--methods st,pgd_at] [--variants f32,tf32,bf16,f32+cl,bf16+cl] ...
//!     device_check autoattack --out DIR [--n 500] [--aa-batch N] [--train-steps 100]
//!         [--train-batch 128] [--train-pgd-steps 5] [--amplitude 0.1] ...
//!     device_check memory [--models resnet18,wrn34_10] [--start-batch 128]
//!         [--max-batch 65536] [--halving-n 32768] [--halving-steps 2] [--cpu-limit-mb 0]
//!
//! Every part takes --device, --model/--width (resnet18 at another width is
//! the dry run's small model), --size and --channels (image shape), --eps
//! and --step-size (8/255 and 2/255 unless given; fractions allowed).

mod autoattack;
mod common;
mod correctness;
mod memory;
mod speed;

/// libtorch's CUDA half (libtorch_cuda.so) is linked "as needed" and no
/// symbol of it is used directly, so nothing loads it and libtorch would see
/// no GPU; the addon preloads it the same way (ts/runtime/libtorch.ts).
/// Found through LD_LIBRARY_PATH (or the build's runpath). Returns whether
/// it loaded (false on a CPU-only libtorch, which is fine).
fn load_torch_cuda() -> bool {
    use std::os::raw::{c_char, c_int, c_void};
    extern "C" {
        fn dlopen(name: *const c_char, flags: c_int) -> *mut c_void;
    }
    const RTLD_NOW: c_int = 2;
    const RTLD_GLOBAL: c_int = 0x100;
    let name = c"libtorch_cuda.so";
    // SAFETY: a NUL-terminated name; the handle is kept for the process's life.
    !unsafe { dlopen(name.as_ptr(), RTLD_NOW | RTLD_GLOBAL) }.is_null()
}

fn main() {
    // As the addon does when loaded (allocator.rs).
    st_core::allocator::setting();
    let cuda_loaded = load_torch_cuda();
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        common::fail("usage: device_check correctness|speed|autoattack|memory [--flag value]...");
    }
    let part = args.remove(0);
    common::emit(
        serde_json::json!({ "check": "start", "part": part, "torchCudaLoaded": cuda_loaded }),
    );
    let flags = common::Flags::new(args);
    let threads = flags.get::<i32>("threads", 0);
    if threads > 0 {
        tch::set_num_threads(threads);
    }
    match part.as_str() {
        "correctness" => correctness::run(&flags),
        "speed" => speed::run(&flags),
        "autoattack" => autoattack::run(&flags),
        "memory" => memory::run(&flags),
        other => common::fail(&format!(
            "unknown part `{other}` (correctness, speed, autoattack, memory)"
        )),
    }
}
