//! Correctness on the device against the CPU, on the same weights and the
//! same batch (drawn on the CPU from one seed, then copied):
//!
//! - forward logits (eval mode), f32;
//! - ST's and TRADES's outer loss, weight gradients and BatchNorm running
//!   statistics from the same inner points (computed once on the CPU): the
//!   same arithmetic on both sides, so tight tolerances;
//! - a whole ST and TRADES step on each device with its own random starts
//!   (CUDA's generator is not the CPU's): the points stay in the eps-ball
//!   and [0,1], the losses agree loosely;
//! - PGD-20 from the clean point (no random start), eval mode: the share of
//!   input coordinates that end differently (a gradient sign flipped by
//!   rounding moves a coordinate by 2 step sizes) and the loss;
//! - TF32, bf16 (autocast) and channels-last against the CPU's f32;
//! - cuDNN deterministic mode: the same ST step + SGD step twice from the
//!   same weights and seed gives bit-for-bit the same loss, gradients and
//!   weights.
//!
//! The f32 comparisons run with TF32 off (libtorch lets cuDNN convolutions
//! use TF32 by default, as PyTorch does: the report states the defaults).
//! On a CPU-only host the "device" is the CPU itself: the same checks then
//! compare two CPU runs (the dry run).

use crate::common::*;
use serde_json::{json, Map, Value};
use st_core::attacks::pgd::{AttackLoss, Pgd};
use st_core::config::{Branches, MemoryFormat, Precision, StConfig, TradesConfig};
use st_core::divergence::Reg;
use st_core::methods::st::SqueezeTraining;
use st_core::methods::trades::Trades;
use st_core::models::Mode;
use st_core::optim::Sgd;
use st_core::precision::{apply_memory_format, set_allow_tf32, Precise};
use tch::{Device, Kind, Tensor};

/// Tolerances: relative, max |a - b| / max |reference| for logits, losses
/// and running statistics, ||a - b|| / ||reference|| over all weight
/// gradients together.
pub const F32_FORWARD: f64 = 1e-4;
pub const F32_LOSS: f64 = 1e-4;
/// Weight gradients (L2): train-mode BatchNorm makes them ill-conditioned
/// (a small residual after the batch statistics cancel), so f32 kernels that
/// differ only in summation order already differ by about 5e-3 on the dry
/// run's small ResNet-18 (channels-last vs contiguous, CPU).
pub const F32_GRADS: f64 = 1e-2;
pub const F32_STATS: f64 = 1e-4;
/// Whole steps with each device's own random starts.
pub const OWN_STARTS_LOSS: f64 = 5e-2;
/// PGD-20 from the clean point: share of coordinates ending differently.
pub const PGD_COORDS_DIFFERING: f64 = 5e-2;
pub const PGD_LOSS: f64 = 5e-2;
/// A point's distance beyond the ball or outside [0,1] (float rounding).
pub const BALL_SLACK: f64 = 1e-6;
pub const TF32_FORWARD: f64 = 1e-2;
pub const TF32_LOSS: f64 = 1e-2;
pub const TF32_GRADS: f64 = 1e-1;
pub const BF16_FORWARD: f64 = 5e-2;
pub const BF16_LOSS: f64 = 5e-2;
/// bf16 gradients: measured 0.43-0.44 on the dry run's model (CPU autocast);
/// this catches gross faults (zero or sign-flipped gradients: 1 and 2), not subtle ones.
pub const BF16_GRADS: f64 = 6e-1;

struct Setup {
    spec: String,
    width: i64,
    shape: [i64; 3],
    dev: Device,
    master: Net,
    x: Tensor,
    y: Tensor,
    seed: i64,
    eps: f64,
    alpha: f64,
}

impl Setup {
    fn net(&self, device: Device) -> Net {
        copy_of(&self.master.vs, &self.spec, self.width, self.shape, device)
    }
    fn batch(&self, device: Device) -> (Tensor, Tensor) {
        (self.x.to_device(device), self.y.to_device(device))
    }
}

/// Loss, weight gradients and running statistics after one backward.
struct Outcome {
    loss: Tensor,
    grads: Vec<Tensor>,
    stats: Vec<Tensor>,
    weights: Vec<Tensor>,
}

fn outcome(net: &Net, loss: &Tensor) -> Outcome {
    loss.backward();
    let mut vars: Vec<(String, Tensor)> = net.vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let (mut grads, mut stats, mut weights) = (vec![], vec![], vec![]);
    for (_, t) in vars {
        if t.requires_grad() {
            grads.push(t.grad().to_device(Device::Cpu));
            weights.push(t.detach().to_device(Device::Cpu));
        } else {
            stats.push(t.to_device(Device::Cpu));
        }
    }
    Outcome {
        loss: loss.detach().to_device(Device::Cpu),
        grads,
        stats,
        weights,
    }
}

/// Relative difference over a list of tensors: the largest absolute
/// difference over the largest reference magnitude, both over all of them.
fn rel_all(a: &[Tensor], b: &[Tensor]) -> f64 {
    let (mut diff, mut scale) = (0f64, 0f64);
    for (a, b) in a.iter().zip(b) {
        diff = diff.max(abs_diff(a, b));
        scale = scale.max(b.abs().max().to_kind(Kind::Double).double_value(&[]));
    }
    if diff == 0.0 {
        0.0
    } else {
        diff / scale.max(f64::MIN_POSITIVE)
    }
}

/// Relative L2 error over a list of tensors: ||a - b|| / ||b||, both over
/// all of them (gradients: a max-based measure would be ruled by the
/// smallest layers' noise under reduced precision).
fn rel_l2_all(a: &[Tensor], b: &[Tensor]) -> f64 {
    let (mut diff, mut norm) = (0f64, 0f64);
    for (a, b) in a.iter().zip(b) {
        let (a, b) = (a.to_kind(Kind::Double), b.to_kind(Kind::Double));
        diff += (&a - &b).square().sum(None::<Kind>).double_value(&[]);
        norm += b.square().sum(None::<Kind>).double_value(&[]);
    }
    if diff == 0.0 {
        0.0
    } else {
        (diff / norm.max(f64::MIN_POSITIVE)).sqrt()
    }
}

fn max_abs_all(a: &[Tensor], b: &[Tensor]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(a, b)| abs_diff(a, b))
        .fold(0.0, f64::max)
}

fn finite(o: &Outcome) -> bool {
    all_finite(&o.loss) && o.grads.iter().all(all_finite)
}

/// Emits one check: each metric against its tolerance (metric <= tolerance).
fn check(name: &str, variant: &str, compared: &str, metrics: &[(&str, f64, f64)], extra: Value) {
    let mut m = Map::new();
    let mut t = Map::new();
    let mut pass = true;
    for &(k, v, tol) in metrics {
        m.insert(k.into(), json!(v));
        t.insert(k.into(), json!(tol));
        pass &= v.is_finite() && v <= tol;
    }
    let mut line = json!({
        "check": "correctness", "name": name, "variant": variant, "compared": compared,
        "metrics": m, "tolerances": t, "pass": pass,
    });
    if let (Value::Object(l), Value::Object(e)) = (&mut line, extra) {
        l.extend(e);
    }
    emit(line);
}

fn st_cfg(s: &Setup, steps: usize) -> StConfig {
    StConfig {
        reg: Reg::Symmkl,
        beta: 6.0,
        epsilon: s.eps,
        step_size: s.alpha,
        steps,
        branches: Branches::Batched,
    }
}

fn trades_cfg(s: &Setup, steps: usize) -> TradesConfig {
    TradesConfig {
        beta: 6.0,
        epsilon: s.eps,
        step_size: s.alpha,
        steps,
    }
}

/// How far `p` leaves B_eps[x] ∩ [0,1] (0 when inside).
fn outside(p: &Tensor, x: &Tensor, eps: f64) -> f64 {
    let ball = ((p - x).abs().max().double_value(&[]) - eps).max(0.0);
    let low = (-p.min().double_value(&[])).max(0.0);
    let high = (p.max().double_value(&[]) - 1.0).max(0.0);
    ball.max(low).max(high)
}

pub fn run(flags: &Flags) {
    let dev = device(flags);
    let spec = flags.str("model", "resnet18");
    let width = flags.get("width", 64i64);
    let shape = shape(flags, 32);
    let batch = flags.get("batch", 32i64);
    let steps = flags.get("steps", 10usize);
    let pgd_steps = flags.get("pgd-steps", 20usize);
    let seed = flags.get("seed", 0i64);
    let compared = format!("{} vs cpu", st_core::device::describe(dev));
    // libtorch's TF32 defaults, read before the strict-f32 switch below.
    let env = describe(dev);
    set_allow_tf32(false);
    tch::manual_seed(seed);
    let master = build(&spec, width, shape, Device::Cpu);
    let (x, y) = random_batch(batch, shape, seed + 1, Device::Cpu);
    let s = Setup {
        spec,
        width,
        shape,
        dev,
        master,
        x,
        y,
        seed,
        eps: flags.fraction("eps", 8.0 / 255.0),
        alpha: flags.fraction("step-size", 2.0 / 255.0),
    };
    emit(
        json!({ "check": "setup", "part": "correctness", "model": s.spec, "width": width,
                 "shape": shape, "batch": batch, "steps": steps, "pgdSteps": pgd_steps,
                 "epsilon": s.eps, "stepSize": s.alpha, "seed": seed, "env": env }),
    );

    forward(&s, &compared);
    outer(&s, steps, &compared);
    own_starts(&s, steps, &compared);
    pgd(&s, pgd_steps, &compared);
    reduced_precision(&s, steps, &compared);
    deterministic(&s, steps);
}

fn logits(s: &Setup, device: Device, precision: Precision, format: MemoryFormat) -> Tensor {
    let n = s.net(device);
    apply_memory_format(&n.vs, format);
    let (x, _) = s.batch(device);
    let p = Precise {
        net: n.net.as_ref(),
        precision,
        format,
    };
    tch::no_grad(|| st_core::models::Classifier::forward(&p, &x, &Mode::Eval))
}

fn forward(s: &Setup, compared: &str) {
    let a = logits(s, Device::Cpu, Precision::F32, MemoryFormat::Contiguous);
    let b = logits(s, s.dev, Precision::F32, MemoryFormat::Contiguous);
    check(
        "forward",
        "f32",
        compared,
        &[("logits", rel_diff(&b, &a), F32_FORWARD)],
        json!({}),
    );
}

/// ST's outer loss on `device` at `precision`/`format` from the given points.
fn st_outer_on(
    s: &Setup,
    steps: usize,
    device: Device,
    points: (&Tensor, &Tensor),
    precision: Precision,
    format: MemoryFormat,
) -> Outcome {
    let n = s.net(device);
    apply_memory_format(&n.vs, format);
    let p = Precise {
        net: n.net.as_ref(),
        precision,
        format,
    };
    let (x, y) = s.batch(device);
    let st = SqueezeTraining::new(st_cfg(s, steps));
    let out = st.outer(
        &p,
        &x,
        &y,
        &points.0.to_device(device),
        &points.1.to_device(device),
    );
    outcome(&n, &out.loss)
}

/// TRADES's outer loss on `device` at `precision`/`format` from `x_adv`
/// (no selection inside: a smooth function of the weights, so its
/// gradients measure precision alone).
fn trades_outer_on(
    s: &Setup,
    steps: usize,
    device: Device,
    x_adv: &Tensor,
    precision: Precision,
    format: MemoryFormat,
) -> Outcome {
    let n = s.net(device);
    apply_memory_format(&n.vs, format);
    let p = Precise {
        net: n.net.as_ref(),
        precision,
        format,
    };
    let (x, y) = s.batch(device);
    let out = Trades::new(trades_cfg(s, steps)).outer(&p, &x, &y, &x_adv.to_device(device));
    outcome(&n, &out.loss)
}

fn trades_point(s: &Setup, steps: usize) -> Tensor {
    let n = s.net(Device::Cpu);
    tch::manual_seed(s.seed + 2);
    Trades::new(trades_cfg(s, steps)).inner(n.net.as_ref(), &s.x)
}

fn st_points(s: &Setup, steps: usize) -> (Tensor, Tensor) {
    let n = s.net(Device::Cpu);
    tch::manual_seed(s.seed + 2);
    SqueezeTraining::new(st_cfg(s, steps)).inner(n.net.as_ref(), &s.x, &s.y)
}

fn outer(s: &Setup, steps: usize, compared: &str) {
    let (xa, xc) = st_points(s, steps);
    let plain = (Precision::F32, MemoryFormat::Contiguous);
    let a = st_outer_on(s, steps, Device::Cpu, (&xa, &xc), plain.0, plain.1);
    let b = st_outer_on(s, steps, s.dev, (&xa, &xc), plain.0, plain.1);
    check(
        "st-outer",
        "f32",
        compared,
        &[
            ("loss", rel_diff(&b.loss, &a.loss), F32_LOSS),
            ("grads", rel_l2_all(&b.grads, &a.grads), F32_GRADS),
            ("runningStats", rel_all(&b.stats, &a.stats), F32_STATS),
        ],
        json!({ "lossCpu": a.loss.double_value(&[]) }),
    );

    let trades = Trades::new(trades_cfg(s, steps));
    let x_adv = {
        let n = s.net(Device::Cpu);
        tch::manual_seed(s.seed + 2);
        trades.inner(n.net.as_ref(), &s.x)
    };
    let on = |device: Device| {
        let n = s.net(device);
        let (x, y) = s.batch(device);
        let out = trades.outer(n.net.as_ref(), &x, &y, &x_adv.to_device(device));
        outcome(&n, &out.loss)
    };
    let (a, b) = (on(Device::Cpu), on(s.dev));
    check(
        "trades-outer",
        "f32",
        compared,
        &[
            ("loss", rel_diff(&b.loss, &a.loss), F32_LOSS),
            ("grads", rel_l2_all(&b.grads, &a.grads), F32_GRADS),
            ("runningStats", rel_all(&b.stats, &a.stats), F32_STATS),
        ],
        json!({ "lossCpu": a.loss.double_value(&[]) }),
    );
}

/// Whole steps, each device drawing its own starts.
fn own_starts(s: &Setup, steps: usize, compared: &str) {
    let st = SqueezeTraining::new(st_cfg(s, steps));
    let st_step = |device: Device| {
        let n = s.net(device);
        let (x, y) = s.batch(device);
        tch::manual_seed(s.seed + 3);
        let (xa, xc) = st.inner(n.net.as_ref(), &x, &y);
        let out_of_ball = outside(&xa, &x, s.eps).max(outside(&xc, &x, s.eps));
        let out = st.outer(n.net.as_ref(), &x, &y, &xa, &xc);
        (outcome(&n, &out.loss), out_of_ball)
    };
    let ((a, _), (b, out_b)) = (st_step(Device::Cpu), st_step(s.dev));
    check(
        "st-step",
        "f32, own random starts",
        compared,
        &[
            ("loss", rel_diff(&b.loss, &a.loss), OWN_STARTS_LOSS),
            ("outsideBall", out_b, BALL_SLACK),
            ("nonFinite", f64::from(u8::from(!finite(&b))), 0.0),
        ],
        json!({}),
    );
    let trades = Trades::new(trades_cfg(s, steps));
    let trades_step = |device: Device| {
        let n = s.net(device);
        let (x, y) = s.batch(device);
        tch::manual_seed(s.seed + 3);
        let xa = trades.inner(n.net.as_ref(), &x);
        let out_of_ball = outside(&xa, &x, s.eps);
        let out = trades.outer(n.net.as_ref(), &x, &y, &xa);
        (outcome(&n, &out.loss), out_of_ball)
    };
    let ((a, _), (b, out_b)) = (trades_step(Device::Cpu), trades_step(s.dev));
    check(
        "trades-step",
        "f32, own random starts",
        compared,
        &[
            ("loss", rel_diff(&b.loss, &a.loss), OWN_STARTS_LOSS),
            ("outsideBall", out_b, BALL_SLACK),
            ("nonFinite", f64::from(u8::from(!finite(&b))), 0.0),
        ],
        json!({}),
    );
}

fn pgd(s: &Setup, steps: usize, compared: &str) {
    let attack = Pgd {
        epsilon: s.eps,
        step_size: s.alpha,
        steps,
        random_start: false,
        loss: AttackLoss::CrossEntropy,
    };
    let on = |device: Device| {
        let n = s.net(device);
        let (x, y) = s.batch(device);
        let adv = attack.run(n.net.as_ref(), &x, &y, &Mode::Eval);
        let logits = tch::no_grad(|| n.net.forward(&adv, &Mode::Eval));
        let loss = st_core::methods::cross_entropy(&logits, &y);
        let acc = logits
            .argmax(-1, false)
            .eq_tensor(&y)
            .to_kind(Kind::Double)
            .mean(None::<Kind>);
        (
            adv.to_device(Device::Cpu),
            loss,
            acc.double_value(&[]),
            outside(&adv, &x, s.eps),
        )
    };
    let (a, la, acc_a, _) = on(Device::Cpu);
    let (b, lb, acc_b, out_b) = on(s.dev);
    let differing = (&a - &b)
        .abs()
        .gt(1e-5)
        .to_kind(Kind::Double)
        .mean(None::<Kind>)
        .double_value(&[]);
    check(
        "pgd",
        &format!("f32, PGD-{steps} from the clean point, eval mode"),
        compared,
        &[
            ("coordinatesDiffering", differing, PGD_COORDS_DIFFERING),
            ("loss", rel_diff(&lb, &la), PGD_LOSS),
            ("outsideBall", out_b, BALL_SLACK),
        ],
        json!({ "accuracyCpu": acc_a, "accuracyDevice": acc_b }),
    );
}

/// TF32, bf16 and channels-last on the device against the CPU's f32: the
/// logits, ST's loss, and TRADES's weight gradients (ST's are reported but
/// not held to a tolerance: its per-sample choice among three points is a
/// discontinuous function, and on near-ties rounding alone may flip it).
fn reduced_precision(s: &Setup, steps: usize, compared: &str) {
    let (xa, xc) = st_points(s, steps);
    let x_adv = trades_point(s, steps);
    let plain = (Precision::F32, MemoryFormat::Contiguous);
    let reference_logits = logits(s, Device::Cpu, plain.0, plain.1);
    let reference = st_outer_on(s, steps, Device::Cpu, (&xa, &xc), plain.0, plain.1);
    let reference_trades = trades_outer_on(s, steps, Device::Cpu, &x_adv, plain.0, plain.1);
    let variants = [
        (
            "tf32",
            Precision::Tf32,
            MemoryFormat::Contiguous,
            [TF32_FORWARD, TF32_LOSS, TF32_GRADS],
        ),
        (
            "bf16",
            Precision::Bf16,
            MemoryFormat::Contiguous,
            [BF16_FORWARD, BF16_LOSS, BF16_GRADS],
        ),
        (
            "f32+channels_last",
            Precision::F32,
            MemoryFormat::ChannelsLast,
            [F32_FORWARD, F32_LOSS, F32_GRADS],
        ),
        (
            "bf16+channels_last",
            Precision::Bf16,
            MemoryFormat::ChannelsLast,
            [BF16_FORWARD, BF16_LOSS, BF16_GRADS],
        ),
    ];
    for (name, precision, format, [tf, tl, tg]) in variants {
        set_allow_tf32(precision == Precision::Tf32);
        let l = logits(s, s.dev, precision, format);
        let o = st_outer_on(s, steps, s.dev, (&xa, &xc), precision, format);
        let t = trades_outer_on(s, steps, s.dev, &x_adv, precision, format);
        set_allow_tf32(false);
        check(
            "reduced-precision",
            name,
            &format!("{compared} (f32)"),
            &[
                ("logits", rel_diff(&l, &reference_logits), tf),
                ("stLoss", rel_diff(&o.loss, &reference.loss), tl),
                ("tradesLoss", rel_diff(&t.loss, &reference_trades.loss), tl),
                (
                    "tradesGrads",
                    rel_l2_all(&t.grads, &reference_trades.grads),
                    tg,
                ),
                (
                    "nonFinite",
                    f64::from(u8::from(!finite(&o) || !finite(&t))),
                    0.0,
                ),
            ],
            json!({ "stGradsUngated": rel_l2_all(&o.grads, &reference.grads) }),
        );
    }
}

/// The same ST step and SGD step twice in cuDNN's deterministic mode.
fn deterministic(s: &Setup, steps: usize) {
    st_core::device_stats::set_cudnn_deterministic(true);
    let st = SqueezeTraining::new(st_cfg(s, steps));
    let once = || {
        let n = s.net(s.dev);
        let (x, y) = s.batch(s.dev);
        let mut opt = Sgd::new(
            &n.vs,
            &st_core::config::OptimizerConfig {
                lr: 0.1,
                momentum: 0.9,
                weight_decay: 5e-4,
                nesterov: false,
                milestones: vec![],
                gamma: 0.1,
                schedule: Default::default(),
            },
        );
        tch::manual_seed(s.seed + 4);
        let out = st_core::methods::Method::loss(&st, n.net.as_ref(), &x, &y);
        opt.zero_grad();
        let mut o = outcome(&n, &out.loss);
        opt.step();
        let mut vars: Vec<(String, Tensor)> = n.vs.variables().into_iter().collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        o.weights = vars
            .into_iter()
            .map(|(_, t)| t.detach().to_device(Device::Cpu))
            .collect();
        o
    };
    let (a, b) = (once(), once());
    st_core::device_stats::set_cudnn_deterministic(false);
    check(
        "deterministic",
        "f32, cuDNN deterministic, same seed twice",
        &st_core::device::describe(s.dev),
        &[
            ("loss", abs_diff(&a.loss, &b.loss), 0.0),
            ("grads", max_abs_all(&a.grads, &b.grads), 0.0),
            ("weightsAfterStep", max_abs_all(&a.weights, &b.weights), 0.0),
        ],
        json!({}),
    );
}
