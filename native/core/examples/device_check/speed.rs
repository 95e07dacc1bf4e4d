//! Training-step throughput: our ST step and PGD-AT step (inner loop, outer
//! loss, backward, SGD step, as the training loop runs them) on random
//! CIFAR-shaped data, per precision and layout. cuDNN's benchmark mode is on
//! (as the authors' scripts set it; the reference does the same).
//! Per variant: images/s over the timed steps (after warm-up steps), the
//! projected time of a 50,000-image epoch, and the allocator's memory peak.

use crate::common::*;
use serde_json::json;
use st_core::config::{Branches, MemoryFormat, OptimizerConfig, PgdAtConfig, Precision, StConfig};
use st_core::divergence::Reg;
use st_core::methods::{pgd_at::PgdAt, st::SqueezeTraining, Method};
use st_core::optim::Sgd;
use st_core::precision::{apply_memory_format, set_allow_tf32, Precise};
use std::time::Instant;

pub const EPOCH_IMAGES: f64 = 50_000.0;

/// `f32`, `tf32`, `bf16`, `f16`, each optionally `+cl` (channels-last).
pub fn variant(v: &str) -> (Precision, MemoryFormat) {
    let (p, cl) = match v.strip_suffix("+cl") {
        Some(p) => (p, true),
        None => (v, false),
    };
    let precision = match p {
        "f32" => Precision::F32,
        "tf32" => Precision::Tf32,
        "bf16" => Precision::Bf16,
        "f16" => Precision::F16,
        other => fail(&format!(
            "--variants: unknown precision `{other}` (f32, tf32, bf16, f16, each optionally +cl)"
        )),
    };
    (
        precision,
        if cl {
            MemoryFormat::ChannelsLast
        } else {
            MemoryFormat::Contiguous
        },
    )
}

pub fn sgd() -> OptimizerConfig {
    OptimizerConfig {
        lr: 0.1,
        momentum: 0.9,
        weight_decay: 5e-4,
        nesterov: false,
        milestones: vec![],
        gamma: 0.1,
        schedule: Default::default(),
    }
}

pub fn method(name: &str, eps: f64, alpha: f64, steps: usize) -> Box<dyn Method> {
    match name {
        "st" => Box::new(SqueezeTraining::new(StConfig {
            reg: Reg::Symmkl,
            beta: 6.0,
            epsilon: eps,
            step_size: alpha,
            steps,
            branches: Branches::Batched,
        })),
        "pgd_at" => Box::new(PgdAt::new(PgdAtConfig {
            epsilon: eps,
            step_size: alpha,
            steps,
        })),
        other => fail(&format!("--methods: unknown method `{other}` (st, pgd_at)")),
    }
}

pub fn run(flags: &Flags) {
    let dev = device(flags);
    let spec = flags.str("model", "resnet18");
    let width = flags.get("width", 64i64);
    let shape = shape(flags, 32);
    let batch = flags.get("batch", 128i64);
    let steps = flags.get("steps", 10usize);
    let warmup = flags.get("warmup", 2usize);
    let iters = flags.get("iters", 10usize);
    let eps = flags.fraction("eps", 8.0 / 255.0);
    let alpha = flags.fraction("step-size", 2.0 / 255.0);
    let methods = flags.list("methods", "st,pgd_at");
    let variants = flags.list("variants", "f32,tf32,bf16,f32+cl,bf16+cl");
    if dev.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(true);
    }
    emit(
        json!({ "check": "setup", "part": "speed", "model": spec, "width": width, "shape": shape,
                 "batch": batch, "steps": steps, "warmup": warmup, "iters": iters,
                 "cudnnBenchmark": dev.is_cuda(), "env": describe(dev) }),
    );
    for m in &methods {
        for v in &variants {
            let (precision, format) = variant(v);
            if precision == Precision::F16 {
                fail("--variants: f16 needs the gradient scaler; this bench times f32, tf32 and bf16");
            }
            set_allow_tf32(precision == Precision::Tf32);
            let line = one(
                dev, &spec, width, shape, batch, m, steps, eps, alpha, precision, format, warmup,
                iters,
            );
            let mut line = line;
            line["variant"] = json!(v);
            emit(line);
        }
    }
    set_allow_tf32(false);
}

#[allow(clippy::too_many_arguments)]
fn one(
    dev: tch::Device,
    spec: &str,
    width: i64,
    shape: [i64; 3],
    batch: i64,
    method_name: &str,
    steps: usize,
    eps: f64,
    alpha: f64,
    precision: Precision,
    format: MemoryFormat,
    warmup: usize,
    iters: usize,
) -> serde_json::Value {
    tch::manual_seed(0);
    let n = build(spec, width, shape, dev);
    apply_memory_format(&n.vs, format);
    let net = Precise {
        net: n.net.as_ref(),
        precision,
        format,
    };
    let mut opt = Sgd::new(&n.vs, &sgd());
    let m = method(method_name, eps, alpha, steps);
    let (x, y) = random_batch(batch, shape, 1, dev);
    let mut last = 0.0;
    let mut step = || {
        let out = m.loss(&net, &x, &y);
        opt.zero_grad();
        out.loss.backward();
        opt.step();
        out.loss.detach()
    };
    reset_peak(dev);
    for _ in 0..warmup {
        let _ = step();
    }
    sync(dev);
    let started = Instant::now();
    let mut loss = None;
    for _ in 0..iters {
        loss = Some(step());
    }
    sync(dev);
    let seconds = started.elapsed().as_secs_f64();
    if let Some(l) = loss {
        last = l.double_value(&[]);
    }
    let ips = (iters as i64 * batch) as f64 / seconds;
    json!({
        "check": "speed", "impl": "st-native", "method": method_name,
        "precision": format!("{precision:?}").to_lowercase(),
        "memoryFormat": if format == MemoryFormat::ChannelsLast { "channels_last" } else { "contiguous" },
        "batch": batch, "steps": steps, "iters": iters,
        "imagesPerSec": ips, "msPerStep": 1000.0 * seconds / iters as f64,
        "epochSeconds": EPOCH_IMAGES / ips, "lastLoss": last, "finite": last.is_finite(),
        "memory": memory_json(dev),
    })
}
