//! Evaluation in eval mode (running BatchNorm statistics, no dropout).
//!
//! - `evaluate`: clean and PGD accuracy on a held-out split, as model
//!   selection and the summary report them after each epoch.
//! - `evaluate_attacks`: the paper's table for any checkpoint (ours or a
//!   PyTorch state dict of a registered model): each attack's accuracy on
//!   the same images, and the per-point worst case (a point is robust only if
//!   it is classified correctly clean and under every attack), seeded and
//!   recorded (seed, settings, images, the checkpoint's checksum), with
//!   optional input normalisation in front of the model and the adversarial
//!   inputs saved for re-scoring.

use crate::attacks::pgd::{AttackLoss, Pgd};
use crate::attacks::{mix_seed, Attack, AttackContext, AttackSpec, Norm};
use crate::config::{DeviceChoice, EvalConfig};
use crate::data::Split;
use crate::error::{CoreError, Result};
use crate::events::{EvalResult, EvalSplit};
use crate::models::{Classifier, Mode};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::path::Path;
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
    let n = points.clean.size()[0];
    let count = |t: &Tensor| t.sum(Kind::Int64).int64_value(&[]);
    Some(EvalResult {
        epoch,
        split: which,
        clean_acc: count(&points.clean) as f64 / n as f64,
        robust_acc: count(&points.robust) as f64 / n as f64,
        attack: pgd_of(cfg).name(),
        samples: n,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Per-point outcome of the run's evaluation (`evaluate`): clean and
/// adversarial correctness (bool, on the CPU), the adversarial inputs if kept.
struct RunPoints {
    clean: Tensor,
    robust: Tensor,
    adversarial: Option<Tensor>,
    max_distance: f64,
}

/// The per-epoch evaluation, point by point: the random draws are exactly
/// those of `evaluate` (one reseed, then batch after batch), so the counts
/// are the run's. `on_batch(done, robust_so_far)`, if given, follows progress
/// (and the largest perturbation is measured).
#[allow(clippy::too_many_arguments)]
fn run_points(
    net: &dyn Classifier,
    split: &Split,
    cfg: &EvalConfig,
    seed: i64,
    epoch: usize,
    cancel: Option<&AtomicBool>,
    keep_images: bool,
    mut on_batch: Option<&mut dyn FnMut(i64, i64)>,
) -> Option<RunPoints> {
    tch::manual_seed(eval_seed(seed, epoch));
    let n = cfg.max_samples.map_or(split.len(), |m| m.min(split.len()));
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
        let x_adv = attack.run(net, &x, &y, &Mode::Eval);
        let adv_logits = tch::no_grad(|| net.forward(&x_adv, &Mode::Eval));
        let ok = adv_logits.argmax(-1, false).eq_tensor(&y);
        if let Some(f) = on_batch.as_mut() {
            robust_count += ok.sum(Kind::Int64).int64_value(&[]);
            max_distance = max_distance.max(Norm::Linf.max_distance(&x_adv, &x));
            f(start + len, robust_count);
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

// ------------------------------------------------------------ the attack table

/// Per-channel input normalisation folded in front of the model, for models
/// trained on normalised inputs: the attacks still work on [0,1] images and
/// the model sees `(x - mean) / std`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Normalization {
    /// One value, or one per channel.
    pub mean: Vec<f64>,
    /// One value, or one per channel; each > 0.
    pub std: Vec<f64>,
}

impl Normalization {
    pub fn validate(&self, channels: i64) -> Result<()> {
        for (field, v) in [("normalize.mean", &self.mean), ("normalize.std", &self.std)] {
            if v.len() != 1 && v.len() as i64 != channels {
                let expected = if channels == 1 {
                    "expected 1 value (the images have one channel)".to_string()
                } else {
                    format!("expected 1 value or {channels} (one per channel)")
                };
                return Err(CoreError::config(
                    field,
                    format!("{expected}, got {}", v.len()),
                ));
            }
            if v.iter().any(|x| !x.is_finite()) {
                return Err(CoreError::config(field, "expected finite numbers"));
            }
        }
        if self.std.iter().any(|&s| s <= 0.0) {
            return Err(CoreError::config("normalize.std", "expected numbers > 0"));
        }
        Ok(())
    }
}

/// `net` behind a fixed per-channel normalisation.
pub struct Normalized {
    net: Box<dyn Classifier>,
    mean: Tensor,
    std: Tensor,
}

impl Normalized {
    pub fn new(net: Box<dyn Classifier>, n: &Normalization, channels: i64, device: Device) -> Self {
        let per_channel = |v: &[f64]| {
            let full: Vec<f32> = if v.len() == 1 {
                vec![v[0] as f32; channels as usize]
            } else {
                v.iter().map(|&x| x as f32).collect()
            };
            Tensor::from_slice(&full)
                .view([1, channels, 1, 1])
                .to_device(device)
        };
        Normalized {
            net,
            mean: per_channel(&n.mean),
            std: per_channel(&n.std),
        }
    }
}

impl Classifier for Normalized {
    fn forward(&self, xs: &Tensor, mode: &Mode) -> Tensor {
        self.net.forward(&((xs - &self.mean) / &self.std), mode)
    }
}

/// The run a checkpoint came from: what the `run` attack replays.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunEval {
    /// The run's evaluation settings (its config's `eval`).
    pub eval: EvalConfig,
    /// The run's seed and the epoch the checkpoint ends; the checkpoint's own
    /// metadata wins where it records them.
    pub seed: i64,
    pub epoch: usize,
}

/// One evaluation of a checkpoint under a list of attacks (JSON from TS).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EvalRequest {
    /// A safetensors file: ours, or a PyTorch state dict of `model`.
    pub checkpoint: String,
    #[cfg_attr(test, ts(as = "crate::config::ts_contract::ModelName"))]
    pub model: String,
    pub num_classes: i64,
    /// In order; `clean` is computed for the worst case even when not listed.
    pub attacks: Vec<AttackSpec>,
    /// Images per batch (halved, with a notice, when the device runs out of memory).
    pub batch_size: i64,
    /// The first N images of the split; null = all.
    pub max_samples: Option<i64>,
    /// Seeds every random start (batch `b`'s restart `r` draws from a seed
    /// mixed from this, the batch's first index and `r`).
    pub seed: i64,
    pub normalize: Option<Normalization>,
    pub device: DeviceChoice,
    /// Write the adversarial inputs (float32, as attacked) here.
    pub save_adversarial: Option<String>,
    /// Needed by the `run` attack.
    pub run: Option<RunEval>,
    /// AutoAttacks save their per-point state at
    /// `<this>.<attack>.autoattack-state.safetensors` and resume from it
    /// (null: not resumable).
    pub resume_prefix: Option<String>,
    /// Which images these are (dataset and split), recorded in the
    /// resumable state's fingerprint beside a hash of the images themselves.
    #[serde(default)]
    pub data_source: Option<DataSource>,
}

/// Where evaluated images come from, as the caller names them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DataSource {
    pub dataset: String,
    pub split: String,
}

/// SHA-256 of the first `n` images and labels (with their shape), so that a
/// state saved on one image set never resumes on another of the same size.
pub fn images_digest(images: &[u8], labels: &[u8], shape: [i64; 3], n: i64) -> String {
    use sha2::{Digest, Sha256};
    let per_image = shape.iter().product::<i64>() as usize;
    let n = n.max(0) as usize;
    let mut h = Sha256::new();
    for d in shape {
        h.update((d as u64).to_le_bytes());
    }
    h.update((n as u64).to_le_bytes());
    h.update(&images[..(n * per_image).min(images.len())]);
    h.update(&labels[..n.min(labels.len())]);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

const MAX_ATTACKS: usize = 64;

impl EvalRequest {
    pub fn validate(&self) -> Result<()> {
        if !(2..=100_000).contains(&self.num_classes) {
            return Err(CoreError::config(
                "numClasses",
                "expected an integer in [2, 100000]",
            ));
        }
        if !(1..=crate::config::limits::MAX_BATCH).contains(&self.batch_size) {
            return Err(CoreError::config(
                "batchSize",
                "expected an integer in [1, 65536]",
            ));
        }
        if self
            .max_samples
            .is_some_and(|m| !(1..=crate::config::limits::MAX_EVAL_SAMPLES).contains(&m))
        {
            return Err(CoreError::config(
                "maxSamples",
                "expected null or an integer in [1, 10000000]",
            ));
        }
        if self.attacks.is_empty() || self.attacks.len() > MAX_ATTACKS {
            return Err(CoreError::config("attacks", "expected 1 to 64 attacks"));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, a) in self.attacks.iter().enumerate() {
            let at = format!("attacks[{i}]");
            a.validate(&at)?;
            a.validate_classes(&at, self.num_classes)?;
            if !seen.insert(a.name()) {
                return Err(CoreError::config(
                    format!("{at}.name"),
                    format!("\"{}\" is used twice", a.name()),
                ));
            }
            if matches!(a, AttackSpec::Run { .. }) {
                match &self.run {
                    None => return Err(CoreError::config(
                        at,
                        "the run's own evaluation needs the run's settings (evaluate a run folder)",
                    )),
                    Some(r) => r.eval.validate("run.eval")?,
                }
            }
        }
        Ok(())
    }
}

/// One attack's line of the table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct AttackResult {
    pub name: String,
    /// The settings it ran with.
    pub spec: AttackSpec,
    /// Fraction of the images classified correctly after the attack.
    pub accuracy: f64,
    pub correct: i64,
    pub samples: i64,
    /// The batch size it ran at (its random starts depend on it).
    pub batch_size: i64,
    /// The seed its random starts derive from.
    pub seed: i64,
    /// Largest distance of an adversarial input from its image, in the
    /// attack's norm (L-inf for clean and run): at most eps.
    pub max_perturbation: f64,
    pub seconds: f64,
    /// An AutoAttack's accuracy after each of its stages (null otherwise).
    pub stages: Option<Vec<crate::autoattack::StageResult>>,
    /// An AutoAttack continued from a saved state.
    pub resumed: bool,
}

/// The per-point worst case: robust only if correct clean and under every attack run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct WorstCase {
    pub accuracy: f64,
    pub correct: i64,
    /// The attacks it combines (clean always included).
    pub over: Vec<String>,
}

/// The result of `evaluate_attacks`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct EvalReport {
    pub checkpoint: String,
    /// CRC-32 of the tensors (names and bytes, in name order): the value a
    /// checkpoint of ours carries as `st_native.crc32`, computed the same way
    /// for any file.
    pub checkpoint_crc32: String,
    /// The file carried our checksum and it matched (false: a file from elsewhere).
    pub verified: bool,
    #[cfg_attr(test, ts(as = "crate::config::ts_contract::ModelName"))]
    pub model: String,
    pub num_classes: i64,
    /// The epoch the checkpoint says it ends, if it says.
    pub epoch: Option<usize>,
    pub device: String,
    pub libtorch: String,
    pub seed: i64,
    pub samples: i64,
    /// The batch size asked for (each attack records the one it ran at).
    pub batch_size: i64,
    pub normalize: Option<Normalization>,
    pub clean_accuracy: f64,
    pub attacks: Vec<AttackResult>,
    pub worst_case: WorstCase,
    /// The `run` attack's result in the per-epoch evaluation's shape.
    pub run: Option<EvalResult>,
    /// Things the user should know (a batch halved after running out of memory).
    pub notices: Vec<String>,
    pub adversarial_file: Option<String>,
    pub seconds: f64,
}

/// Progress of `evaluate_attacks`, in order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum EvalEvent {
    Start {
        attacks: Vec<String>,
        samples: i64,
        batch_size: i64,
        device: String,
        checkpoint_crc32: String,
        verified: bool,
    },
    /// A batch of one attack is done (`correct` so far, over `done` images;
    /// for an AutoAttack, `done` and `total` count the current stage's
    /// points and `correct` the images still robust).
    Batch {
        attack: String,
        index: usize,
        done: i64,
        total: i64,
        correct: i64,
    },
    /// A stage of an AutoAttack begins, on `points` images (`robust` of
    /// `samples` are still robust).
    Stage {
        attack: String,
        index: usize,
        stage: String,
        stage_index: usize,
        stages: usize,
        points: i64,
        robust: i64,
        samples: i64,
    },
    /// One attack is done.
    Attack(AttackResult),
    Notice {
        message: String,
    },
}

/// The checksum `checkpoint::save` records, computed for any safetensors file.
pub fn content_crc(path: &Path) -> Result<String> {
    let bytes = crate::checkpoint::read_regular_file(
        path,
        crate::checkpoint::MAX_CHECKPOINT_BYTES,
        "checkpoint",
    )?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| CoreError::Checkpoint {
        path: path.display().to_string(),
        message: format!("not a safetensors file ({e:?})"),
    })?;
    let mut tensors = st.tensors();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let mut h = crc32fast::Hasher::new();
    for (name, view) in &tensors {
        let data = view.data();
        h.update(&(name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update(&(data.len() as u64).to_le_bytes());
        h.update(data);
    }
    Ok(format!("{:08x}", h.finalize()))
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// What one attack produced over all images.
struct Outcome {
    result: AttackResult,
    /// Per point: classified correctly (bool, CPU).
    correct: Tensor,
    adversarial: Option<Tensor>,
    run: Option<EvalResult>,
}

/// Runs `f(batch)`; when the device runs out of memory, halves the batch
/// (notice via `notice`) and runs it again from the start, down to 1.
pub(crate) fn halving_on_oom<T>(
    what: &str,
    batch: &mut i64,
    notices: &mut Vec<String>,
    sink: &mut dyn FnMut(EvalEvent),
    mut f: impl FnMut(i64, &mut dyn FnMut(EvalEvent)) -> T,
) -> Result<T> {
    // A panic inside `tch::no_grad` skips its restore of the grad mode, so
    // each attempt turns it on (attacks need it) and the caller's mode is
    // put back at the end.
    tch::with_grad(|| loop {
        let b = *batch;
        match catch_unwind(AssertUnwindSafe(|| tch::with_grad(|| f(b, &mut *sink)))) {
            Ok(v) => return Ok(v),
            Err(p) => {
                let text = panic_text(p.as_ref());
                if !crate::error::is_allocation_failure(&text) {
                    resume_unwind(p);
                }
                let short = text.lines().next().unwrap_or("").to_string();
                if b <= 1 {
                    return Err(CoreError::OutOfMemory(format!(
                        "{what} at batch size 1: {short}"
                    )));
                }
                *batch = (b / 2).max(1);
                let message = format!(
                    "{what}: out of memory at batch size {b}; running it again at batch size {} ({short})",
                    *batch
                );
                notices.push(message.clone());
                sink(EvalEvent::Notice { message });
            }
        }
    })
}

/// One attack (not `run`) over the whole split, batch by batch. None when cancelled.
#[allow(clippy::too_many_arguments)]
fn attack_all(
    net: &dyn Classifier,
    split: &Split,
    spec: &AttackSpec,
    index: usize,
    attack: Option<&dyn Attack>,
    batch: i64,
    seed: i64,
    cancel: Option<&AtomicBool>,
    keep_images: bool,
    sink: &mut dyn FnMut(EvalEvent),
) -> Option<(Tensor, Option<Tensor>, i64, f64)> {
    let n = split.len();
    let norm = attack.map_or(Norm::Linf, |a| a.norm());
    let (mut correct, mut adv) = (Vec::new(), Vec::new());
    let (mut count, mut max_distance) = (0i64, 0f64);
    let mut start = 0;
    while start < n {
        if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return None;
        }
        let len = batch.min(n - start);
        let (x, y) = split.slice(start, len);
        let x_adv = match attack {
            None => x.shallow_clone(),
            Some(a) => {
                let ctx = AttackContext {
                    seed: mix_seed(seed, start),
                    cancel,
                };
                a.perturb(net, &x, &y, &ctx)
            }
        };
        if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return None;
        }
        let logits = tch::no_grad(|| net.forward(&x_adv, &Mode::Eval));
        let ok = logits.argmax(-1, false).eq_tensor(&y);
        count += ok.sum(Kind::Int64).int64_value(&[]);
        if attack.is_some() {
            max_distance = max_distance.max(norm.max_distance(&x_adv, &x));
        }
        correct.push(ok.to_device(Device::Cpu));
        if keep_images && attack.is_some() {
            adv.push(x_adv.detach().to_device(Device::Cpu));
        }
        start += len;
        sink(EvalEvent::Batch {
            attack: spec.name().to_string(),
            index,
            done: start,
            total: n,
            correct: count,
        });
    }
    Some((
        Tensor::cat(&correct, 0),
        (!adv.is_empty()).then(|| Tensor::cat(&adv, 0)),
        count,
        max_distance,
    ))
}

/// What `attack_table` runs.
pub struct TableSettings<'a> {
    pub attacks: &'a [AttackSpec],
    pub batch_size: i64,
    pub seed: i64,
    /// Keep the adversarial inputs (to save them).
    pub keep_images: bool,
    /// The run's evaluation settings, seed and epoch, for the `run` attack.
    pub run: Option<(EvalConfig, i64, usize)>,
    /// Where AutoAttacks keep their resumable state (none: not resumable).
    pub resume: Option<ResumeSettings>,
}

/// Resumable AutoAttack state: files `<prefix>.<attack>.autoattack-state.safetensors`,
/// valid for evaluations with the same `fingerprint` (checkpoint, images,
/// seed, batch size, normalisation) and the same attack settings.
#[derive(Debug, Clone)]
pub struct ResumeSettings {
    pub prefix: std::path::PathBuf,
    pub fingerprint: String,
}

/// The table of one model on one split.
pub struct Table {
    pub results: Vec<AttackResult>,
    /// Per attack, per image: classified correctly after it (bool, CPU).
    pub correct: Vec<Tensor>,
    /// Per attack, the inputs that were scored (when kept; None for clean).
    pub adversarial: Vec<Option<Tensor>>,
    /// Per image: correct clean, and correct clean and under every attack.
    pub clean: Tensor,
    pub robust: Tensor,
    pub clean_accuracy: f64,
    pub worst_case: WorstCase,
    pub run: Option<EvalResult>,
    pub notices: Vec<String>,
}

fn state_locks(settings: &TableSettings) -> Result<Vec<crate::state_lock::StateLock>> {
    let Some(r) = &settings.resume else {
        return Ok(Vec::new());
    };
    settings
        .attacks
        .iter()
        .filter(|a| matches!(a, AttackSpec::AutoAttack { .. }))
        .map(|a| {
            let file = crate::autoattack::state_file(&r.prefix, a.name());
            crate::state_lock::StateLock::acquire(&file, &format!("the AutoAttack `{}`", a.name()))
        })
        .collect()
}

fn run_attacks(
    net: &dyn Classifier,
    split: &Split,
    settings: &TableSettings,
    cancel: Option<&AtomicBool>,
    sink: &mut dyn FnMut(EvalEvent),
    notices: &mut Vec<String>,
) -> Result<Option<Vec<Outcome>>> {
    let n = split.len();
    let keep_images = settings.keep_images;
    let run = settings.run.clone();
    let mut batch = settings.batch_size;
    let mut out = Vec::new();
    // One evaluation per state file: every AutoAttack's lock is taken
    // before any work, and held until the table is done.
    let _locks = state_locks(settings)?;
    for (index, spec) in settings.attacks.iter().enumerate() {
        let started = Instant::now();
        let name = spec.name().to_string();
        let outcome = if let AttackSpec::Run { .. } = spec {
            let (mut cfg, seed, epoch) = run.clone().expect("validated: run settings present");
            cfg.max_samples = None;
            let mut run_batch = cfg.batch_size;
            let what = format!("{name} (the run's evaluation)");
            let points = halving_on_oom(&what, &mut run_batch, notices, sink, |b, sink| {
                let cfg = EvalConfig {
                    batch_size: b,
                    ..cfg.clone()
                };
                let mut progress = |done: i64, correct: i64| {
                    sink(EvalEvent::Batch {
                        attack: name.clone(),
                        index,
                        done,
                        total: n,
                        correct,
                    })
                };
                run_points(
                    net,
                    split,
                    &cfg,
                    seed,
                    epoch,
                    cancel,
                    keep_images,
                    Some(&mut progress),
                )
            })?;
            let Some(points) = points else {
                return Ok(None);
            };
            let correct = points.robust.sum(Kind::Int64).int64_value(&[]);
            let clean = points.clean.sum(Kind::Int64).int64_value(&[]);
            let seconds = started.elapsed().as_secs_f64();
            cfg.batch_size = run_batch;
            Outcome {
                result: AttackResult {
                    name: name.clone(),
                    spec: spec.clone(),
                    accuracy: correct as f64 / n as f64,
                    correct,
                    samples: n,
                    batch_size: run_batch,
                    seed: eval_seed(seed, epoch),
                    max_perturbation: points.max_distance,
                    seconds,
                    stages: None,
                    resumed: false,
                },
                correct: points.robust,
                adversarial: points.adversarial,
                run: Some(EvalResult {
                    epoch,
                    split: EvalSplit::Test,
                    clean_acc: clean as f64 / n as f64,
                    robust_acc: correct as f64 / n as f64,
                    attack: pgd_of(&cfg).name(),
                    samples: n,
                    seconds,
                }),
            }
        } else if let AttackSpec::AutoAttack {
            norm,
            epsilon,
            version,
            ..
        } = *spec
        {
            let aa = crate::autoattack::AaRun {
                name: &name,
                index,
                norm,
                epsilon,
                version,
                seed: settings.seed,
                resume: settings.resume.as_ref().map(|r| crate::autoattack::Resume {
                    file: crate::autoattack::state_file(&r.prefix, &name),
                    fingerprint: format!(
                        "{} {}",
                        r.fingerprint,
                        serde_json::to_string(spec).expect("spec serialises")
                    ),
                }),
            };
            let mut aa_batch = batch;
            let Some(o) =
                crate::autoattack::run(net, split, &aa, &mut aa_batch, cancel, sink, notices)?
            else {
                return Ok(None);
            };
            for w in &o.warnings {
                notices.push(format!("{name}: {w}"));
            }
            let count = o.correct.sum(Kind::Int64).int64_value(&[]);
            Outcome {
                result: AttackResult {
                    name: name.clone(),
                    spec: spec.clone(),
                    accuracy: count as f64 / n as f64,
                    correct: count,
                    samples: n,
                    batch_size: aa_batch,
                    seed: settings.seed,
                    max_perturbation: o.max_distance,
                    seconds: started.elapsed().as_secs_f64(),
                    stages: Some(o.stages),
                    resumed: o.resumed,
                },
                correct: o.correct,
                adversarial: keep_images.then_some(o.adversarial),
                run: None,
            }
        } else {
            let attack = spec.build();
            let done = halving_on_oom(&name, &mut batch, notices, sink, |b, sink| {
                attack_all(
                    net,
                    split,
                    spec,
                    index,
                    attack.as_deref(),
                    b,
                    settings.seed,
                    cancel,
                    keep_images,
                    sink,
                )
            })?;
            let Some((correct, adversarial, count, max_distance)) = done else {
                return Ok(None);
            };
            Outcome {
                result: AttackResult {
                    name: name.clone(),
                    spec: spec.clone(),
                    accuracy: count as f64 / n as f64,
                    correct: count,
                    samples: n,
                    batch_size: batch,
                    seed: settings.seed,
                    max_perturbation: max_distance,
                    seconds: started.elapsed().as_secs_f64(),
                    stages: None,
                    resumed: false,
                },
                correct,
                adversarial,
                run: None,
            }
        };
        sink(EvalEvent::Attack(outcome.result.clone()));
        out.push(outcome);
    }
    Ok(Some(out))
}

/// Runs `settings.attacks` on `net` over `split` (every image), in eval
/// mode, and combines them point by point. None when cancelled.
pub fn attack_table(
    net: &dyn Classifier,
    split: &Split,
    settings: &TableSettings,
    cancel: Option<&AtomicBool>,
    sink: &mut dyn FnMut(EvalEvent),
) -> Result<Option<Table>> {
    let n = split.len();
    let mut notices = Vec::new();
    let Some(outcomes) = run_attacks(net, split, settings, cancel, sink, &mut notices)? else {
        return Ok(None);
    };
    // Clean correctness for the worst case, when `clean` was not listed.
    let clean = match outcomes
        .iter()
        .find(|o| matches!(o.result.spec, AttackSpec::Clean { .. }))
    {
        Some(o) => o.correct.shallow_clone(),
        None => {
            let spec = AttackSpec::Clean {
                name: "clean".into(),
            };
            let mut batch = settings.batch_size;
            let done = halving_on_oom("clean", &mut batch, &mut notices, sink, |b, _| {
                attack_all(
                    net,
                    split,
                    &spec,
                    usize::MAX,
                    None,
                    b,
                    settings.seed,
                    cancel,
                    false,
                    &mut |_| {},
                )
            })?;
            let Some((correct, ..)) = done else {
                return Ok(None);
            };
            correct
        }
    };
    let mut robust = clean.shallow_clone();
    for o in &outcomes {
        robust = robust.logical_and(&o.correct);
    }
    let count = |t: &Tensor| t.sum(Kind::Int64).int64_value(&[]);
    let mut over = vec!["clean".to_string()];
    over.extend(
        outcomes
            .iter()
            .filter(|o| !matches!(o.result.spec, AttackSpec::Clean { .. }))
            .map(|o| o.result.name.clone()),
    );
    let worst = count(&robust);
    let run = outcomes.iter().find_map(|o| o.run.clone());
    let mut results = Vec::new();
    let mut correct = Vec::new();
    let mut adversarial = Vec::new();
    for o in outcomes {
        results.push(o.result);
        correct.push(o.correct);
        adversarial.push(o.adversarial);
    }
    Ok(Some(Table {
        results,
        correct,
        adversarial,
        clean_accuracy: count(&clean) as f64 / n as f64,
        clean,
        robust,
        worst_case: WorstCase {
            accuracy: worst as f64 / n as f64,
            correct: worst,
            over,
        },
        run,
        notices,
    }))
}

/// Evaluates a checkpoint under `req.attacks` on the given images (N×C×H×W
/// uint8, the first `max_samples` used). Returns None when cancelled.
pub fn evaluate_attacks(
    req: &EvalRequest,
    images: &[u8],
    labels: &[u8],
    shape: [i64; 3],
    sink: &mut dyn FnMut(EvalEvent),
    cancel: Option<&AtomicBool>,
) -> Result<Option<EvalReport>> {
    let started = Instant::now();
    req.validate()?;
    if let Some(n) = &req.normalize {
        n.validate(shape[0])?;
    }
    let device = crate::device::resolve(req.device)?;
    let full = Split::from_bytes("eval", images, labels, shape, req.num_classes, device)?;
    let split = full.prefix(req.max_samples.unwrap_or(i64::MAX));
    let n = split.len();
    let path = Path::new(&req.checkpoint);
    let mut m = crate::models::build_model(&req.model, req.num_classes, shape, device)?;
    let info = crate::checkpoint::load(&mut m.vs, path, &req.model)?;
    // Gradients flow to the inputs only.
    m.vs.freeze();
    let crc = content_crc(path)?;
    let net: Box<dyn Classifier> = match &req.normalize {
        Some(norm) => Box::new(Normalized::new(m.net, norm, shape[0], device)),
        None => m.net,
    };
    let run = req.run.as_ref().map(|r| {
        (
            r.eval.clone(),
            info.seed.unwrap_or(r.seed),
            info.epoch.unwrap_or(r.epoch),
        )
    });
    let names: Vec<String> = req.attacks.iter().map(|a| a.name().to_string()).collect();
    sink(EvalEvent::Start {
        attacks: names.clone(),
        samples: n,
        batch_size: req.batch_size,
        device: crate::device::describe(device),
        checkpoint_crc32: crc.clone(),
        verified: info.verified,
    });
    let settings = TableSettings {
        attacks: &req.attacks,
        batch_size: req.batch_size,
        seed: req.seed,
        keep_images: req.save_adversarial.is_some(),
        run,
        resume: req.resume_prefix.as_ref().map(|p| ResumeSettings {
            prefix: p.into(),
            fingerprint: format!(
                "checkpoint crc32 {crc}, model {}, {} classes, {n} images ({}, sha256 {}), seed {}, batch {}, normalize {}",
                req.model,
                req.num_classes,
                req.data_source
                    .as_ref()
                    .map_or("unnamed images".to_string(), |d| format!("{} {} split", d.dataset, d.split)),
                images_digest(images, labels, shape, n),
                req.seed,
                req.batch_size,
                serde_json::to_string(&req.normalize).expect("serialises"),
            ),
        }),
    };
    let Some(table) = attack_table(net.as_ref(), &split, &settings, cancel, sink)? else {
        return Ok(None);
    };
    let mut report = EvalReport {
        checkpoint: req.checkpoint.clone(),
        checkpoint_crc32: crc,
        verified: info.verified,
        model: req.model.clone(),
        num_classes: req.num_classes,
        epoch: info.epoch,
        device: crate::device::describe(device),
        libtorch: crate::device::libtorch_version().to_string(),
        seed: req.seed,
        samples: n,
        batch_size: req.batch_size,
        normalize: req.normalize.clone(),
        clean_accuracy: table.clean_accuracy,
        attacks: table.results.clone(),
        worst_case: table.worst_case.clone(),
        run: table.run.clone(),
        notices: table.notices.clone(),
        adversarial_file: req.save_adversarial.clone(),
        seconds: 0.0,
    };
    if let Some(file) = &req.save_adversarial {
        save_adversarial(Path::new(file), &split, &table, &report)?;
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(Some(report))
}

/// Tensor names in an adversarial file: `images` (the clean images, float32
/// N×C×H×W in [0,1]), `labels` (int64), and per attack `adversarial.<name>`
/// (float32, exactly the inputs that were scored) and `correct.<name>`
/// (uint8 per image); `correct.clean` and `correct.worst_case` too. The
/// report is in the metadata (`st_native.eval_report`, JSON).
pub const ADVERSARIAL_PREFIX: &str = "adversarial.";

fn save_adversarial(path: &Path, split: &Split, table: &Table, report: &EvalReport) -> Result<()> {
    let n = split.len();
    let (x, y) = split.slice(0, n);
    let mut named = vec![
        ("images".to_string(), x.to_device(Device::Cpu)),
        ("labels".to_string(), y.to_device(Device::Cpu)),
        (
            "correct.clean".to_string(),
            table.clean.to_kind(Kind::Uint8),
        ),
        (
            "correct.worst_case".to_string(),
            table.robust.to_kind(Kind::Uint8),
        ),
    ];
    for ((result, adv), correct) in table
        .results
        .iter()
        .zip(&table.adversarial)
        .zip(&table.correct)
    {
        if let Some(adv) = adv {
            named.push((
                format!("{ADVERSARIAL_PREFIX}{}", result.name),
                adv.shallow_clone(),
            ));
        }
        if !matches!(result.spec, AttackSpec::Clean { .. }) {
            named.push((
                format!("correct.{}", result.name),
                correct.to_kind(Kind::Uint8),
            ));
        }
    }
    let mut metadata = HashMap::new();
    metadata.insert(
        "st_native.kind".to_string(),
        "adversarial_examples".to_string(),
    );
    metadata.insert(
        "st_native.eval_report".to_string(),
        serde_json::to_string(report).expect("report serialises"),
    );
    crate::checkpoint::save_named(named, path, metadata)
}
