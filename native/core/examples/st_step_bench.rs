//! Times ST training steps of the SmallCNN (inner loop + outer loss + SGD
//! step) and prints one JSON line; benches/run.mjs runs it beside the PyTorch
//! reference doing the same work on the same libtorch.
//!
//!     cargo run --release --example st_step_bench -- [batch] [steps K] [iters] [batched|separate] [f32|bf16] [contiguous|channels_last]

use st_core::config::{Branches, MemoryFormat, Precision, StConfig};
use st_core::divergence::Reg;
use st_core::methods::{st::SqueezeTraining, Method};
use st_core::models::build_model;
use st_core::precision::{apply_memory_format, Precise};
use std::time::Instant;
use tch::nn::OptimizerConfig;
use tch::{Device, Kind, Tensor};

fn main() {
    // As the addon does when loaded (allocator.rs).
    st_core::allocator::setting();
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, d: i64| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let (batch, steps, iters) = (arg(1, 128), arg(2, 10) as usize, arg(3, 5));
    let branches = match args.get(4).map(String::as_str) {
        Some("separate") => Branches::Separate,
        _ => Branches::Batched,
    };
    let precision = match args.get(5).map(String::as_str) {
        Some("bf16") => Precision::Bf16,
        _ => Precision::F32,
    };
    let format = match args.get(6).map(String::as_str) {
        Some("channels_last") => MemoryFormat::ChannelsLast,
        _ => MemoryFormat::Contiguous,
    };
    tch::manual_seed(0);
    let model = build_model("small_cnn", 10, [1, 28, 28], Device::Cpu).unwrap();
    apply_memory_format(&model.vs, format);
    let net = Precise {
        net: model.net.as_ref(),
        precision,
        format,
    };
    let mut opt = tch::nn::Sgd {
        momentum: 0.9,
        ..Default::default()
    }
    .build(&model.vs, 0.01)
    .unwrap();
    let st = SqueezeTraining::new(StConfig {
        reg: Reg::Symmkl,
        beta: 1.0,
        epsilon: 0.1,
        step_size: 0.02,
        steps,
        branches,
    });
    let x = Tensor::rand([batch, 1, 28, 28], (Kind::Float, Device::Cpu));
    let y = Tensor::randint(10, [batch], (Kind::Int64, Device::Cpu));
    let mut step = || {
        let out = st.loss(&net, &x, &y);
        opt.backward_step(&out.loss);
    };
    step(); // warm-up
    let start = Instant::now();
    for _ in 0..iters {
        step();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "impl": format!(
                "st-native ({}, {:?}, {:?})",
                if branches == Branches::Batched { "batched" } else { "separate" },
                precision,
                format
            ),
            "imagesPerSec": (iters * batch) as f64 / secs,
            "threads": tch::get_num_threads(),
        })
    );
}
