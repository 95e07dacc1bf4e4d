//! Evaluation during training: clean and PGD accuracy on a held-out split
//! with the run's own settings and seeds (what model selection and the
//! summary report), optionally followed batch by batch (the training loop's
//! progress events), and the same for a saved checkpoint.

use crate::attacks::pgd::{AttackLoss, Pgd};
use crate::attacks::Norm;
use crate::config::EvalConfig;
use crate::data::Split;
use crate::events::{EvalResult, EvalSplit};
use crate::models::{Classifier, Mode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

pub fn pgd_of(cfg: &EvalConfig) -> Pgd {
    Pgd {
        epsilon: cfg.epsilon,
        step_size: cfg.step_size,
        steps: cfg.steps,
        random_start: cfg.random_start,
        loss: AttackLoss::CrossEntropy,
    }
}

/// The seed of the evaluation after `epoch` of a run seeded with `seed`.
pub fn eval_seed(seed: i64, epoch: usize) -> i64 {
    seed.wrapping_mul(1_000_003).wrapping_add(epoch as i64)
}

/// Evaluates `net` on (a prefix of) `split`. Returns None if `cancel` was set
/// before it finished.
///
/// PGD's random starts come from libtorch's generator reseeded with
/// `eval_seed(seed, epoch)`, so evaluating the same checkpoint with the same
/// settings on the same device reproduces a result exactly (the training loop
/// reseeds its own stream afterwards).
#[allow(clippy::too_many_arguments)]
pub fn evaluate(
    net: &dyn Classifier,
    split: &Split,
    which: EvalSplit,
    cfg: &EvalConfig,
    seed: i64,
    epoch: usize,
    cancel: Option<&AtomicBool>,
) -> Option<EvalResult> {
    let started = Instant::now();
    let points = run_points(net, split, cfg, seed, epoch, cancel, false, None)?;
    Some(result_of(&points, which, cfg, epoch, started))
}

/// The images an evaluation of `split` with `cfg` covers.
pub fn eval_samples(split: &Split, cfg: &EvalConfig) -> i64 {
    cfg.max_samples.map_or(split.len(), |m| m.min(split.len()))
}

/// `evaluate`, reporting `progress(done, total)` when it starts (done 0),
/// after every PGD step (the batch under attack counted by its share of
/// steps done, rounded down) and after every batch. The draws and the
/// result are `evaluate`'s; only a read of each batch's count is added (a
/// device sync per batch). Callers throttle.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_observed(
    net: &dyn Classifier,
    split: &Split,
    which: EvalSplit,
    cfg: &EvalConfig,
    seed: i64,
    epoch: usize,
    cancel: Option<&AtomicBool>,
    progress: &mut dyn FnMut(i64, i64),
) -> Option<EvalResult> {
    let started = Instant::now();
    let total = eval_samples(split, cfg);
    progress(0, total);
    // A step's count stays below its batch's end: the batch's own tick
    // reports the end, once.
    let mut observe = |tick: Tick| match tick {
        Tick::Step(done) => {
            let whole = done.floor() as i64;
            if whole < total {
                progress(whole, total)
            }
        }
        Tick::Batch(done, _robust) => progress(done, total),
    };
    let points = run_points(
        net,
        split,
        cfg,
        seed,
        epoch,
        cancel,
        false,
        Some(&mut observe),
    )?;
    Some(result_of(&points, which, cfg, epoch, started))
}

fn result_of(
    points: &RunPoints,
    which: EvalSplit,
    cfg: &EvalConfig,
    epoch: usize,
    started: Instant,
) -> EvalResult {
    let n = points.clean.size()[0];
    let count = |t: &Tensor| t.sum(Kind::Int64).int64_value(&[]);
    EvalResult {
        epoch,
        split: which,
        clean_acc: count(&points.clean) as f64 / n as f64,
        robust_acc: count(&points.robust) as f64 / n as f64,
        attack: pgd_of(cfg).name(),
        samples: n,
        seconds: started.elapsed().as_secs_f64(),
        ema: None,
    }
}

/// What `run_points` reports as it goes.
pub(super) enum Tick {
    /// Images done, the batch under attack counted by the share of its
    /// PGD steps done (fractional, below the batch's end).
    Step(f64),
    /// A batch is done: images done, robust so far.
    Batch(i64, i64),
}

/// Per-point outcome of the run's evaluation (`evaluate`): clean and
/// adversarial correctness (bool, on the CPU), the adversarial inputs if kept.
pub(super) struct RunPoints {
    pub clean: Tensor,
    pub robust: Tensor,
    pub adversarial: Option<Tensor>,
    pub max_distance: f64,
}

/// The per-epoch evaluation, point by point: the random draws are exactly
/// those of `evaluate` (one reseed, then batch after batch), so the counts
/// are the run's. `observe`, if given, follows progress: a `Tick::Step`
/// after every PGD step and a `Tick::Batch` after every batch (and the
/// largest perturbation is measured).
#[allow(clippy::too_many_arguments)]
pub(super) fn run_points(
    net: &dyn Classifier,
    split: &Split,
    cfg: &EvalConfig,
    seed: i64,
    epoch: usize,
    cancel: Option<&AtomicBool>,
    keep_images: bool,
    mut observe: Option<&mut dyn FnMut(Tick)>,
) -> Option<RunPoints> {
    tch::manual_seed(eval_seed(seed, epoch));
    let n = eval_samples(split, cfg);
    let attack = pgd_of(cfg);
    let (mut clean, mut robust, mut adv) = (Vec::new(), Vec::new(), Vec::new());
    let mut robust_count = 0;
    let mut max_distance = 0f64;
    let mut start = 0;
    while start < n {
        if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return None;
        }
        let len = cfg.batch_size.min(n - start);
        let (x, y) = split.slice(start, len);
        let clean_logits = tch::no_grad(|| net.forward(&x, &Mode::Eval));
        clean.push(clean_logits.argmax(-1, false).eq_tensor(&y));
        let x_adv = match observe.as_mut() {
            None => attack.run(net, &x, &y, &Mode::Eval),
            Some(f) => attack.run_reporting(net, &x, &y, &Mode::Eval, &mut |w| {
                f(Tick::Step(start as f64 + len as f64 * w.fraction()))
            }),
        };
        let adv_logits = tch::no_grad(|| net.forward(&x_adv, &Mode::Eval));
        let ok = adv_logits.argmax(-1, false).eq_tensor(&y);
        if let Some(f) = observe.as_mut() {
            robust_count += ok.sum(Kind::Int64).int64_value(&[]);
            max_distance = max_distance.max(Norm::Linf.max_distance(&x_adv, &x));
            f(Tick::Batch(start + len, robust_count));
        }
        if keep_images {
            adv.push(x_adv.detach().to_device(Device::Cpu));
        }
        robust.push(ok);
        start += len;
    }
    let cat = |v: &[Tensor]| Tensor::cat(v, 0).to_device(Device::Cpu);
    Some(RunPoints {
        clean: cat(&clean),
        robust: cat(&robust),
        adversarial: (keep_images && !adv.is_empty()).then(|| Tensor::cat(&adv, 0)),
        max_distance,
    })
}

/// Loads a checkpoint into a fresh `model` and evaluates it on one split,
/// seeded as the training run's evaluation after the checkpoint's epoch was.
/// The seed and epoch the checkpoint records win over `seed` and `epoch`
/// (which serve files without them, e.g. from PyTorch), so a checkpoint
/// re-evaluates to the run's numbers with no other file at hand.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_checkpoint(
    checkpoint_path: &str,
    model: &str,
    num_classes: i64,
    images: &[u8],
    labels: &[u8],
    shape: [i64; 3],
    cfg: &EvalConfig,
    device: crate::config::DeviceChoice,
    seed: i64,
    epoch: usize,
) -> crate::Result<EvalResult> {
    cfg.validate("eval")?;
    let device = crate::device::resolve(device)?;
    let split = Split::from_bytes("eval", images, labels, shape, num_classes, device)?;
    let mut m = crate::models::build_model(model, num_classes, shape, device)?;
    let info = crate::checkpoint::load(&mut m.vs, std::path::Path::new(checkpoint_path), model)?;
    Ok(evaluate(
        m.net.as_ref(),
        &split,
        EvalSplit::Test,
        cfg,
        info.seed.unwrap_or(seed),
        info.epoch.unwrap_or(epoch),
        None,
    )
    .expect("not cancellable"))
}
