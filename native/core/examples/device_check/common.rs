//! What every check of the device check shares: flags, the device, models
//! by spec, data, comparisons, timing and memory figures, JSON output.

use serde_json::{json, Value};
use st_core::device_stats;
use st_core::models::{build_model, resnet::ResNet, Classifier};
use std::io::Write;
use std::str::FromStr;
use tch::{nn::VarStore, Device, Kind, Tensor};

/// `--name value` flags after the subcommand.
pub struct Flags(Vec<String>);

impl Flags {
    pub fn new(args: Vec<String>) -> Self {
        for a in args.iter().step_by(2) {
            if !a.starts_with("--") {
                fail(&format!("expected a --flag, got `{a}`"));
            }
        }
        if !args.len().is_multiple_of(2) {
            fail(&format!("flag `{}` has no value", args[args.len() - 1]));
        }
        Flags(args)
    }

    pub fn str(&self, name: &str, default: &str) -> String {
        self.0
            .chunks(2)
            .find(|p| p[0] == format!("--{name}"))
            .map(|p| p[1].clone())
            .unwrap_or_else(|| default.to_string())
    }

    pub fn get<T: FromStr>(&self, name: &str, default: T) -> T {
        match self.0.chunks(2).find(|p| p[0] == format!("--{name}")) {
            None => default,
            Some(p) => p[1]
                .parse()
                .unwrap_or_else(|_| fail(&format!("--{name}: cannot read `{}` as a number", p[1]))),
        }
    }

    /// A comma-separated list.
    pub fn list(&self, name: &str, default: &str) -> Vec<String> {
        self.str(name, default)
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// A radius given as a number or a fraction like `8/255`.
    pub fn fraction(&self, name: &str, default: f64) -> f64 {
        let s = self.str(name, "");
        if s.is_empty() {
            return default;
        }
        let parse = |t: &str| -> f64 {
            t.trim()
                .parse()
                .unwrap_or_else(|_| fail(&format!("--{name}: cannot read `{s}`")))
        };
        match s.split_once('/') {
            Some((a, b)) => parse(a) / parse(b),
            None => parse(&s),
        }
    }
}

pub fn fail(message: &str) -> ! {
    eprintln!("device_check: {message}");
    std::process::exit(2)
}

/// `--device`: auto (CUDA when libtorch sees one), cpu or cuda.
pub fn device(flags: &Flags) -> Device {
    match flags.str("device", "auto").as_str() {
        "cpu" => Device::Cpu,
        "cuda" if tch::Cuda::is_available() => Device::Cuda(0),
        "cuda" => fail("--device cuda: libtorch sees no CUDA device"),
        "auto" => Device::cuda_if_available(),
        other => fail(&format!(
            "--device: expected auto, cpu or cuda, got `{other}`"
        )),
    }
}

/// One JSON line on stdout, flushed (the orchestrator reads them as they come).
pub fn emit(v: Value) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{v}").expect("stdout");
    out.flush().expect("stdout");
}

pub fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

/// A network and its variables.
pub struct Net {
    pub vs: VarStore,
    pub net: Box<dyn Classifier>,
}

/// The model `spec` on `device`: a registered name (resnet18, wrn34_10,
/// small_cnn, ...), or `resnet18` with `width` other than 64 (the dry run's
/// small ResNet-18, the same code at a smaller width).
pub fn build(spec: &str, width: i64, shape: [i64; 3], device: Device) -> Net {
    if spec == "resnet18" && width != 64 {
        let vs = VarStore::new(device);
        let net: Box<dyn Classifier> = Box::new(ResNet::resnet18(&vs.root(), shape[0], 10, width));
        return Net { vs, net };
    }
    let m = build_model(spec, 10, shape, device)
        .unwrap_or_else(|e| fail(&format!("--model {spec}: {e}")));
    Net {
        vs: m.vs,
        net: m.net,
    }
}

/// A copy of `src`'s network (same spec) on `device`.
pub fn copy_of(src: &VarStore, spec: &str, width: i64, shape: [i64; 3], device: Device) -> Net {
    let mut n = build(spec, width, shape, device);
    n.vs.copy(src).expect("same variables");
    n
}

/// Images and labels: C×H×W from `--size` (H = W) and `--channels`.
pub fn shape(flags: &Flags, default_size: i64) -> [i64; 3] {
    let size = flags.get("size", default_size);
    [flags.get("channels", 3), size, size]
}

/// Uniform images and random labels, drawn on the CPU from `seed` (the same
/// on every device), then moved to `device`.
pub fn random_batch(n: i64, shape: [i64; 3], seed: i64, device: Device) -> (Tensor, Tensor) {
    tch::manual_seed(seed);
    let x = Tensor::rand(
        [n, shape[0], shape[1], shape[2]],
        (Kind::Float, Device::Cpu),
    );
    let y = Tensor::randint(10, [n], (Kind::Int64, Device::Cpu));
    (x.to_device(device), y.to_device(device))
}

/// max |a - b| / max |b| in float64 on the CPU (0 when both are 0).
pub fn rel_diff(a: &Tensor, b: &Tensor) -> f64 {
    let a = a.detach().to_device(Device::Cpu).to_kind(Kind::Double);
    let b = b.detach().to_device(Device::Cpu).to_kind(Kind::Double);
    let diff = (&a - &b).abs().max().double_value(&[]);
    let scale = b.abs().max().double_value(&[]);
    if diff == 0.0 {
        0.0
    } else if scale == 0.0 {
        f64::INFINITY
    } else {
        diff / scale
    }
}

/// max |a - b| in float64 on the CPU.
pub fn abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    let a = a.detach().to_device(Device::Cpu).to_kind(Kind::Double);
    let b = b.detach().to_device(Device::Cpu).to_kind(Kind::Double);
    (a - b).abs().max().double_value(&[])
}

pub fn all_finite(t: &Tensor) -> bool {
    bool::try_from(t.isfinite().all()).unwrap_or(false)
}

/// The device's memory figures as JSON: the caching allocator's peak since
/// the last `reset_peak`, or why there are none.
pub fn memory_json(device: Device) -> Value {
    match device {
        Device::Cuda(i) => match device_stats::memory_stats(i) {
            Some(s) => json!({
                "peakAllocatedMiB": mib(s.peak_allocated),
                "peakReservedMiB": mib(s.peak_reserved),
                "totalMiB": mib(s.total),
            }),
            None => json!({ "unavailable": "libtorch reported no accelerator statistics" }),
        },
        _ => json!({ "unavailable": "CPU: libtorch keeps no allocator statistics for the CPU" }),
    }
}

pub fn reset_peak(device: Device) {
    if let Device::Cuda(i) = device {
        device_stats::reset_peak(i);
    }
}

pub fn mib(bytes: i64) -> f64 {
    (bytes as f64 / (1u64 << 20) as f64 * 10.0).round() / 10.0
}

/// The device in words, for the report.
pub fn describe(device: Device) -> Value {
    json!({
        "device": st_core::device::describe(device),
        "cuda": tch::Cuda::is_available(),
        "cudaDevices": tch::Cuda::device_count(),
        "cudnn": tch::Cuda::cudnn_is_available(),
        "libtorch": st_core::device::libtorch_version(),
        "threads": tch::get_num_threads(),
        "tf32Defaults": {
            "matmul": st_core::precision::tf32_allowed(),
            "cudnn": st_core::precision::tf32_allowed_cudnn(),
        },
    })
}
