//! Memory: the largest training batch that fits, and a real allocation
//! failure turned into the evaluation's batch-halving path.
//!
//! - Largest batch: one ST training step (inner loop of `--steps`, outer
//!   loss, backward, SGD step) per model at batch 2^k from `--start-batch`,
//!   doubling until the device refuses an allocation (caught here, as the
//!   training loop's error path sees it) or `--max-batch`. The inner loop's
//!   graphs are freed each step, so the peak is the outer loss's, whatever
//!   K is: one inner step keeps the probe short.
//! - Halving: the product's attack table (PGD, `--halving-steps` steps) on
//!   `--halving-n` images at batch size n, which does not fit: the table
//!   catches the allocation failure, halves its batch and finishes; its
//!   notices are reported.
//!
//! On a CPU host an allocation failure is made real and safe by lowering
//! this process's address-space limit (`--cpu-limit-mb` above what it uses
//! now) for the probes: libtorch's CPU allocator then fails the way it does
//! when memory runs out ("can't allocate memory"), without the kernel's OOM
//! killer. oneDNN's kernels are turned off for it (they report a failed
//! allocation as "could not create a primitive"). Not used on CUDA.

use crate::common::*;
use serde_json::json;
use st_core::attacks::{AttackSpec, Keep, Norm};
use st_core::data::Split;
use st_core::error::is_allocation_failure;
use st_core::eval::{attack_table, TableSettings};
use st_core::optim::Sgd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;
use tch::Device;

mod rlimit {
    use std::os::raw::c_int;
    #[repr(C)]
    pub struct Rlimit {
        pub cur: u64,
        pub max: u64,
    }
    /// RLIMIT_AS on Linux.
    pub const AS: c_int = 9;
    extern "C" {
        pub fn getrlimit(resource: c_int, rlim: *mut Rlimit) -> c_int;
        pub fn setrlimit(resource: c_int, rlim: *const Rlimit) -> c_int;
    }
}

/// Lowers the soft address-space limit to what the process maps now plus
/// `extra_mb`; returns the previous soft limit, to restore.
fn limit_address_space(extra_mb: u64) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let mut old = rlimit::Rlimit { cur: 0, max: 0 };
    // SAFETY: plain structs of the layout glibc expects (two rlim_t).
    unsafe {
        if rlimit::getrlimit(rlimit::AS, &mut old) != 0 {
            return None;
        }
        let new = rlimit::Rlimit {
            cur: (kb * 1024 + extra_mb * (1 << 20)).min(old.max),
            max: old.max,
        };
        if rlimit::setrlimit(rlimit::AS, &new) != 0 {
            return None;
        }
    }
    Some(old.cur)
}

fn restore_address_space(cur: u64) {
    let mut old = rlimit::Rlimit { cur: 0, max: 0 };
    // SAFETY: as above; raising the soft limit up to the hard one is allowed.
    unsafe {
        rlimit::getrlimit(rlimit::AS, &mut old);
        rlimit::setrlimit(rlimit::AS, &rlimit::Rlimit { cur, max: old.max });
    }
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// The first line of libtorch's message inside a panic text.
fn short(text: &str) -> String {
    let t = text.lines().next().unwrap_or("");
    t.chars().take(300).collect()
}

pub fn run(flags: &Flags) {
    let dev = device(flags);
    let models = flags.list("models", "resnet18,wrn34_10");
    let width = flags.get("width", 64i64);
    let shape = shape(flags, 32);
    let start_batch = flags.get("start-batch", 128i64);
    let max_batch = flags.get("max-batch", 65536i64);
    let steps = flags.get("steps", 1usize);
    let eps = flags.fraction("eps", 8.0 / 255.0);
    let cpu_limit_mb = flags.get("cpu-limit-mb", 0u64);
    let halving_model = flags.str("halving-model", "resnet18");
    let halving_n = flags.get("halving-n", 32768i64);
    let halving_steps = flags.get("halving-steps", 2usize);
    emit(
        json!({ "check": "setup", "part": "memory", "models": models, "width": width,
                 "shape": shape, "startBatch": start_batch, "maxBatch": max_batch, "steps": steps,
                 "cpuLimitMb": cpu_limit_mb, "halvingModel": halving_model,
                 "halvingN": halving_n, "env": describe(dev) }),
    );
    // The probes' allocation failures are expected: keep their panic
    // messages off stderr (others still print).
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = info.to_string();
        if !is_allocation_failure(&text) {
            default_hook(info);
        }
    }));
    // Start libtorch's thread pool before any limit (a thread's stack is an
    // allocation too, and OpenMP aborts when it cannot make one).
    {
        let n = build(&halving_model, width, shape, dev);
        let (x, _) = random_batch(2, shape, 0, dev);
        let _ = tch::no_grad(|| n.net.forward(&x, &st_core::models::Mode::Eval));
    }
    let limited = if dev == Device::Cpu && cpu_limit_mb > 0 {
        // oneDNN reports a failed allocation as "could not create a
        // primitive"; the plain kernels fail through the allocator.
        st_core::device_stats::set_mkldnn_enabled(false);
        limit_address_space(cpu_limit_mb)
    } else {
        None
    };
    // Halving first: if the part runs out of time, the probes are what is lost.
    halving(
        dev,
        &halving_model,
        width,
        shape,
        halving_n,
        halving_steps,
        eps,
    );
    st_core::device_stats::empty_cache();
    for spec in &models {
        largest_batch(dev, spec, width, shape, start_batch, max_batch, steps, eps);
    }
    if let Some(cur) = limited {
        restore_address_space(cur);
    }
}

#[allow(clippy::too_many_arguments)]
fn largest_batch(
    dev: Device,
    spec: &str,
    width: i64,
    shape: [i64; 3],
    start: i64,
    max: i64,
    steps: usize,
    eps: f64,
) {
    let started = Instant::now();
    let (mut fits, mut fits_memory, mut oom, mut error) = (None, json!(null), None, None);
    let mut b = start;
    let n = build(spec, width, shape, dev);
    let m = crate::speed::method("st", eps, eps / 4.0, steps);
    let mut opt = Sgd::new(&n.vs, &crate::speed::sgd());
    while b <= max {
        reset_peak(dev);
        let attempt = catch_unwind(AssertUnwindSafe(|| {
            let (x, y) = random_batch(b, shape, b, dev);
            let out = m.loss(n.net.as_ref(), &x, &y);
            opt.zero_grad();
            out.loss.backward();
            opt.step();
            sync(dev);
        }));
        match attempt {
            Ok(()) => {
                fits = Some(b);
                fits_memory = memory_json(dev);
                b *= 2;
            }
            Err(p) => {
                let text = panic_text(p.as_ref());
                if is_allocation_failure(&text) {
                    oom = Some(json!({ "batch": b, "message": short(&text) }));
                } else {
                    error = Some(json!({ "batch": b, "message": short(&text) }));
                }
                break;
            }
        }
    }
    opt.zero_grad();
    drop(opt);
    drop(n);
    st_core::device_stats::empty_cache();
    emit(json!({
        "check": "largest-batch", "model": spec, "method": "st", "steps": steps,
        "largestFitting": fits, "memoryAtLargest": fits_memory,
        "firstOutOfMemory": oom, "otherError": error,
        "stoppedAtCap": oom.is_none() && error.is_none(), "cap": max,
        "seconds": started.elapsed().as_secs_f64(),
        "pass": fits.is_some() && error.is_none(),
    }));
}

fn halving(dev: Device, spec: &str, width: i64, shape: [i64; 3], n: i64, steps: usize, eps: f64) {
    let started = Instant::now();
    tch::manual_seed(0);
    let net = build(spec, width, shape, dev);
    let per: i64 = shape.iter().product();
    let bytes: Vec<u8> = (0..n * per).map(|i| (i * 7919 % 251) as u8).collect();
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    let split = Split::from_bytes("halving images", &bytes, &labels, shape, 10, dev)
        .unwrap_or_else(|e| fail(&e.to_string()));
    let attacks = [AttackSpec::Pgd {
        name: format!("pgd-{steps}"),
        norm: Norm::Linf,
        epsilon: eps,
        step_size: eps / 4.0,
        steps,
        restarts: 1,
        random_start: true,
        keep: Keep::Best,
    }];
    let settings = TableSettings {
        attacks: &attacks,
        batch_size: n,
        seed: 0,
        keep_images: false,
        run: None,
        resume: None,
    };
    let result = attack_table(net.net.as_ref(), &split, &settings, None, &mut |_| {});
    let (completed, notices, accuracy, error) = match result {
        Ok(Some(t)) => (true, t.notices.clone(), Some(t.results[0].accuracy), None),
        Ok(None) => (false, vec![], None, Some("cancelled".to_string())),
        Err(e) => (false, vec![], None, Some(format!("{} ({})", e, e.code()))),
    };
    let halved = notices
        .iter()
        .any(|m| m.contains("out of memory at batch size"));
    emit(json!({
        "check": "oom-halving", "model": spec, "n": n, "attack": format!("pgd-{steps}"),
        "startBatch": n, "completed": completed, "halved": halved, "notices": notices,
        "accuracy": accuracy, "error": error, "seconds": started.elapsed().as_secs_f64(),
        "pass": completed && halved,
    }));
}
