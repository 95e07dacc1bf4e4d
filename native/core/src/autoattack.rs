//! AutoAttack (Croce & Hein, ICML 2020) over a whole split, as the official
//! `AutoAttack.run_standard_evaluation` runs it: the clean accuracy first,
//! then each component in turn on the points still robust, batch by batch;
//! a point is robust only if it is classified correctly clean and after
//! every component. Reports the accuracy after each stage.
//!
//! - `standard`: APGD-CE, APGD-T (9 targets), FAB-T (9 targets), Square
//!   (5000 queries); 100 iterations and 1 restart each (targets capped at
//!   the number of other classes).
//! - `rand`: APGD-CE and APGD-DLR with 20 gradients averaged per step, for
//!   randomised models.
//!
//! Seeds: stage `k`'s batch starting at position `p` of the stage's list of
//! points draws from `mix_seed(mix_seed(seed, k), p)`, so the result depends
//! only on the seed, the batch size and the points, and a resumed
//! evaluation draws what the uninterrupted one would have drawn.
//!
//! Resume: with a state file, the per-point state (still robust, robust when
//! the current stage began, the adversarial inputs found so far) and the
//! position (stage, next point) are written atomically at the end of each
//! stage, at least every `SAVE_EVERY` during one, and when cancelled; an
//! evaluation started with the same settings on the same checkpoint and
//! images continues from there. A state made with other settings is refused.
//!
//! Sanity checks first, as the official package's `checks.py`: outputs that
//! change between two passes (randomised model: use `rand`), outputs that
//! look like probabilities rather than logits, zero and non-finite
//! gradients. Each failed check becomes a warning in the result.

use crate::attacks::apgd::{Apgd, ApgdLoss};
use crate::attacks::fab::Fab;
use crate::attacks::square::Square;
use crate::attacks::{mix_seed, Attack, AttackContext, AutoAttackVersion, Norm};
use crate::data::Split;
use crate::error::{CoreError, Result};
use crate::eval::EvalEvent;
use crate::models::{Classifier, Mode};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tch::{Device, Kind, Tensor};

/// At most this long between two saves of the state during a stage.
pub const SAVE_EVERY: Duration = Duration::from_secs(20);

/// One component of an AutoAttack.
pub struct Stage {
    pub name: &'static str,
    pub attack: Box<dyn Attack>,
}

/// The components of `version`, in order, with AutoAttack's settings.
pub fn stages(
    norm: Norm,
    epsilon: f64,
    version: AutoAttackVersion,
    num_classes: i64,
) -> Vec<Stage> {
    let targets = (num_classes - 1).clamp(1, 9) as usize;
    let apgd = |loss, eot_iter| -> Box<dyn Attack> {
        Box::new(Apgd {
            norm,
            epsilon,
            steps: 100,
            restarts: 1,
            loss,
            eot_iter,
            rho: 0.75,
        })
    };
    match version {
        AutoAttackVersion::Standard => vec![
            Stage {
                name: "apgd-ce",
                attack: apgd(ApgdLoss::CrossEntropy, 1),
            },
            Stage {
                name: "apgd-t",
                attack: apgd(ApgdLoss::DlrTargeted { targets }, 1),
            },
            Stage {
                name: "fab-t",
                attack: Box::new(Fab {
                    norm,
                    epsilon,
                    steps: 100,
                    restarts: 1,
                    targets: Some(targets),
                    alpha_max: 0.1,
                    eta: 1.05,
                    beta: 0.9,
                }),
            },
            Stage {
                name: "square",
                attack: Box::new(Square {
                    norm,
                    epsilon,
                    queries: 5000,
                    restarts: 1,
                    p_init: 0.8,
                }),
            },
        ],
        AutoAttackVersion::Rand => vec![
            Stage {
                name: "apgd-ce",
                attack: apgd(ApgdLoss::CrossEntropy, 20),
            },
            Stage {
                name: "apgd-dlr",
                attack: apgd(ApgdLoss::Dlr, 20),
            },
        ],
    }
}

/// The accuracy after one stage.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct StageResult {
    pub name: String,
    /// Points this stage attacked (robust when it began).
    pub attacked: i64,
    /// Points still robust after it, and their fraction of all images.
    pub correct: i64,
    pub accuracy: f64,
    pub seconds: f64,
}

/// Where an AutoAttack keeps its state, and what it must match.
#[derive(Debug, Clone)]
pub struct Resume {
    pub file: PathBuf,
    /// The settings, checkpoint and images the state belongs to (any text
    /// that changes when they change); a state with another is refused.
    pub fingerprint: String,
}

/// What `run` asks for.
pub struct AaRun<'a> {
    /// The attack's name in events and results.
    pub name: &'a str,
    /// Its index in the evaluation's list of attacks (for events).
    pub index: usize,
    pub norm: Norm,
    pub epsilon: f64,
    pub version: AutoAttackVersion,
    pub seed: i64,
    pub resume: Option<Resume>,
}

/// The result of `run`.
pub struct AaOutcome {
    /// Per image: correct clean and after every stage (bool, CPU).
    pub correct: Tensor,
    /// The inputs scored: the adversarial found for broken points, the image
    /// for the others (float, CPU).
    pub adversarial: Tensor,
    pub stages: Vec<StageResult>,
    /// Largest distance of a scored input from its image, in the norm.
    pub max_distance: f64,
    /// Failed sanity checks.
    pub warnings: Vec<String>,
    /// True if it continued from a saved state.
    pub resumed: bool,
}

/// The per-point state that survives an interruption.
struct State {
    /// Correct clean and not broken yet (bool, CPU).
    robust: Tensor,
    /// Robust when the current stage began: its list of points.
    entering: Tensor,
    /// The scored inputs (float, CPU).
    adversarial: Tensor,
    stage: usize,
    /// Position in the current stage's list of points.
    next: i64,
    results: Vec<StageResult>,
    warnings: Vec<String>,
    /// Time spent in the current stage before an interruption.
    stage_seconds: f64,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Progress {
    fingerprint: String,
    stage: usize,
    next: i64,
    samples: i64,
    results: Vec<StageResult>,
    warnings: Vec<String>,
    stage_seconds: f64,
}

const KEY_PROGRESS: &str = "st_native.autoattack";

impl State {
    fn save(&self, r: &Resume) -> Result<()> {
        let broken = self.adversarial.size()[0];
        let changed = self
            .robust
            .logical_not()
            .nonzero()
            .flatten(0, -1)
            .to_kind(Kind::Int64);
        let progress = Progress {
            fingerprint: r.fingerprint.clone(),
            stage: self.stage,
            next: self.next,
            samples: broken,
            results: self.results.clone(),
            warnings: self.warnings.clone(),
            stage_seconds: self.stage_seconds,
        };
        let mut metadata = HashMap::new();
        metadata.insert(
            KEY_PROGRESS.to_string(),
            serde_json::to_string(&progress).expect("progress serialises"),
        );
        metadata.insert("st_native.kind".to_string(), "autoattack_state".to_string());
        // Only the inputs that differ from the images are stored (robust
        // points keep their image), so a robust model's state stays small.
        let named = vec![
            ("robust".to_string(), self.robust.to_kind(Kind::Uint8)),
            ("entering".to_string(), self.entering.to_kind(Kind::Uint8)),
            ("changed_index".to_string(), changed.shallow_clone()),
            (
                "changed_inputs".to_string(),
                self.adversarial.index_select(0, &changed),
            ),
        ];
        crate::checkpoint::save_named(named, &r.file, metadata)
    }

    /// The saved state, or None if there is none; an error if it belongs to
    /// other settings or does not fit the images.
    fn load(r: &Resume, x: &Tensor) -> Result<Option<State>> {
        if !r.file.exists() {
            return Ok(None);
        }
        let path = r.file.display().to_string();
        let bad = |message: String| CoreError::Checkpoint {
            path: path.clone(),
            message,
        };
        let (tensors, metadata) = crate::checkpoint::read_named(&r.file)?;
        let progress: Progress = metadata
            .get(KEY_PROGRESS)
            .and_then(|s| serde_json::from_str(s).ok())
            .ok_or_else(|| bad("not an AutoAttack state (no progress record)".into()))?;
        if progress.fingerprint != r.fingerprint {
            return Err(bad(format!(
                "this AutoAttack state was saved by an evaluation with other settings, another checkpoint or other images ({}); delete it to start over",
                progress.fingerprint
            )));
        }
        let get = |name: &str| {
            tensors
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| t.shallow_clone())
                .ok_or_else(|| bad(format!("has no `{name}`")))
        };
        let n = x.size()[0];
        let robust = get("robust")?.to_kind(Kind::Bool);
        let entering = get("entering")?.to_kind(Kind::Bool);
        let index = get("changed_index")?.to_kind(Kind::Int64);
        let inputs = get("changed_inputs")?.to_kind(Kind::Float);
        let k = index.size()[0];
        let mut shape = x.size();
        shape[0] = k;
        if robust.size() != [n] || entering.size() != [n] || inputs.size() != shape {
            return Err(bad(format!(
                "holds state for other images (expected {n} points of shape {:?})",
                &x.size()[1..]
            )));
        }
        let mut adversarial = x.copy();
        if k > 0 {
            let _ = adversarial.index_copy_(0, &index, &inputs);
        }
        Ok(Some(State {
            robust,
            entering,
            adversarial,
            stage: progress.stage,
            next: progress.next,
            results: progress.results,
            warnings: progress.warnings,
            stage_seconds: progress.stage_seconds,
        }))
    }
}

/// Correct predictions on `x` (bool, on x's device).
fn correct(net: &dyn Classifier, x: &Tensor, y: &Tensor) -> Tensor {
    tch::no_grad(|| net.forward(x, &Mode::Eval))
        .argmax(-1, false)
        .eq_tensor(y)
}

/// The official package's checks on a batch of images, as warnings.
pub fn sanity_checks(
    net: &dyn Classifier,
    x: &Tensor,
    y: &Tensor,
    version: AutoAttackVersion,
) -> Vec<String> {
    let mut warnings = Vec::new();
    let (a, b) = tch::no_grad(|| (net.forward(x, &Mode::Eval), net.forward(x, &Mode::Eval)));
    let scale = a.abs().max().double_value(&[]).max(1e-12);
    let changed = (&a - &b).abs().max().double_value(&[]) / scale;
    let randomised = changed > 1e-5;
    if randomised && version == AutoAttackVersion::Standard {
        warnings.push(format!(
            "the model's outputs change between two passes on the same images (by {changed:.1e} relative): it looks randomised, and the standard version assumes a deterministic model; use version rand (expectation over transformation)"
        ));
    }
    if !randomised && version == AutoAttackVersion::Rand {
        warnings.push("the model's outputs do not change between two passes: it is deterministic, and the standard version is the stronger evaluation for it".into());
    }
    if a.isfinite().logical_not().any().int64_value(&[]) != 0 {
        warnings.push("the model's outputs contain NaN or infinity".into());
    }
    let sums = a.sum_dim_intlist([1i64].as_slice(), false, None::<Kind>);
    let in_unit = a.min().double_value(&[]) >= 0.0 && a.max().double_value(&[]) <= 1.0;
    if in_unit && (sums - 1.0).abs().max().double_value(&[]) < 1e-4 {
        warnings.push("the model's outputs are in [0,1] and sum to 1: probabilities, not logits; the DLR and margin losses expect logits, and a softmax at the end can mask gradients".into());
    }
    let xg = x.detach().set_requires_grad(true);
    let loss = net
        .forward(&xg, &Mode::Eval)
        .log_softmax(-1, None::<Kind>)
        .nll_loss_nd::<Tensor>(y, None, tch::Reduction::Sum, -100);
    let g = Tensor::run_backward(&[loss], &[&xg], false, false).remove(0);
    let n = x.size()[0];
    let flat = g.reshape([n, -1]);
    if flat.isfinite().logical_not().any().int64_value(&[]) != 0 {
        warnings.push("the gradient of the loss contains NaN or infinity".into());
    }
    let zero = flat
        .abs()
        .amax([1i64].as_slice(), false)
        .eq(0.0)
        .sum(Kind::Int64)
        .int64_value(&[]);
    if zero > 0 {
        warnings.push(format!(
            "{zero} of {n} images have a zero gradient of the loss (gradient masking?): gradient-based attacks cannot move them, and their robustness may be overestimated"
        ));
    }
    warnings
}

fn cancelled(cancel: Option<&AtomicBool>) -> bool {
    cancel.is_some_and(|c| c.load(Ordering::Relaxed))
}

/// Runs the AutoAttack `r` on every image of `split`. `batch` is the batch
/// size, halved (with a notice) when a batch runs out of memory. Returns
/// None when cancelled (after saving the state, if any).
pub fn run(
    net: &dyn Classifier,
    split: &Split,
    r: &AaRun,
    batch: &mut i64,
    cancel: Option<&AtomicBool>,
    sink: &mut dyn FnMut(EvalEvent),
    notices: &mut Vec<String>,
) -> Result<Option<AaOutcome>> {
    let n = split.len();
    let (x_all, y_all) = split.slice(0, n);
    let device = x_all.device();
    let x_cpu = x_all.to_device(Device::Cpu);
    let num_classes = tch::no_grad(|| net.forward(&x_all.narrow(0, 0, 1), &Mode::Eval)).size()[1];
    let stages = stages(r.norm, r.epsilon, r.version, num_classes);

    let loaded = match &r.resume {
        Some(res) => State::load(res, &x_cpu)?,
        None => None,
    };
    let resumed = loaded.is_some();
    let mut state = match loaded {
        Some(s) => s,
        None => {
            let mut clean = Vec::new();
            let mut start = 0;
            while start < n {
                let len = (*batch).min(n - start);
                let (x, y) = split.slice(start, len);
                clean.push(correct(net, &x, &y).to_device(Device::Cpu));
                start += len;
            }
            let robust = Tensor::cat(&clean, 0);
            let first = robust.nonzero().flatten(0, -1);
            let check = first
                .narrow(0, 0, first.size()[0].min(100))
                .to_device(device);
            let warnings = if check.size()[0] > 0 {
                sanity_checks(
                    net,
                    &x_all.index_select(0, &check),
                    &y_all.index_select(0, &check),
                    r.version,
                )
            } else {
                Vec::new()
            };
            State {
                entering: robust.copy(),
                robust,
                adversarial: x_cpu.copy(),
                stage: 0,
                next: 0,
                results: Vec::new(),
                warnings,
                stage_seconds: 0.0,
            }
        }
    };
    for w in &state.warnings {
        sink(EvalEvent::Notice {
            message: format!("{}: {w}", r.name),
        });
    }
    let count = |t: &Tensor| t.sum(Kind::Int64).int64_value(&[]);
    let mut last_save = Instant::now();
    while state.stage < stages.len() {
        let k = state.stage;
        let stage = &stages[k];
        let points = state.entering.nonzero().flatten(0, -1);
        let total = points.size()[0];
        // Time in this stage before an interruption, plus this session's.
        let (carried, stage_started) = (state.stage_seconds, Instant::now());
        let stage_seconds = || carried + stage_started.elapsed().as_secs_f64();
        sink(EvalEvent::Stage {
            attack: r.name.to_string(),
            index: r.index,
            stage: stage.name.to_string(),
            stage_index: k,
            stages: stages.len(),
            points: total,
            robust: count(&state.robust),
            samples: n,
        });
        while state.next < total {
            if cancelled(cancel) {
                state.stage_seconds = stage_seconds();
                if let Some(res) = &r.resume {
                    state.save(res)?;
                }
                return Ok(None);
            }
            let pos = state.next;
            let mut attack_batch = |b: i64, _sink: &mut dyn FnMut(EvalEvent)| -> Option<()> {
                let len = b.min(total - pos);
                let idx = points.narrow(0, pos, len);
                let idx_dev = idx.to_device(device);
                let x = x_all.index_select(0, &idx_dev);
                let y = y_all.index_select(0, &idx_dev);
                let ctx = AttackContext {
                    seed: mix_seed(mix_seed(r.seed, k as i64), pos),
                    cancel,
                };
                let x_adv = stage.attack.perturb(net, &x, &y, &ctx);
                if ctx.cancelled() {
                    return None;
                }
                let fooled = correct(net, &x_adv, &y)
                    .logical_not()
                    .to_device(Device::Cpu);
                let broken = idx.masked_select(&fooled);
                if broken.size()[0] > 0 {
                    let sel = fooled.nonzero().flatten(0, -1);
                    // Only the broken points' inputs cross to the host.
                    let inputs = x_adv
                        .detach()
                        .index_select(0, &sel.to_device(device))
                        .to_device(Device::Cpu);
                    let _ = state.adversarial.index_copy_(0, &broken, &inputs);
                    let _ = state.robust.index_fill_(0, &broken, 0);
                }
                state.next = pos + len;
                Some(())
            };
            let what = format!("{} ({})", r.name, stage.name);
            if crate::eval::halving_on_oom(&what, batch, notices, sink, &mut attack_batch)?
                .is_none()
            {
                // Cancelled inside the batch: its work is dropped.
                state.stage_seconds = stage_seconds();
                if let Some(res) = &r.resume {
                    state.save(res)?;
                }
                return Ok(None);
            }
            sink(EvalEvent::Batch {
                attack: r.name.to_string(),
                index: r.index,
                done: state.next,
                total,
                correct: count(&state.robust),
            });
            if let Some(res) = &r.resume {
                if last_save.elapsed() >= SAVE_EVERY {
                    state.stage_seconds = stage_seconds();
                    state.save(res)?;
                    last_save = Instant::now();
                }
            }
        }
        let robust = count(&state.robust);
        state.results.push(StageResult {
            name: stage.name.to_string(),
            attacked: total,
            correct: robust,
            accuracy: robust as f64 / n as f64,
            seconds: stage_seconds(),
        });
        state.stage += 1;
        state.next = 0;
        state.stage_seconds = 0.0;
        state.entering = state.robust.copy();
        if let Some(res) = &r.resume {
            if state.stage < stages.len() {
                state.save(res)?;
                last_save = Instant::now();
            }
        }
    }
    if let Some(res) = &r.resume {
        // Complete: nothing to resume. A failure to remove is harmless (a
        // later run would resume at the end and finish at once).
        let _ = std::fs::remove_file(&res.file);
    }
    let max_distance = r.norm.max_distance(&state.adversarial, &x_cpu);
    Ok(Some(AaOutcome {
        correct: state.robust,
        adversarial: state.adversarial,
        stages: state.results,
        max_distance,
        warnings: state.warnings,
        resumed,
    }))
}

/// A file name for an attack's state from its (free-text) name.
pub fn state_file(prefix: &Path, attack: &str) -> PathBuf {
    let safe: String = attack
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut s = prefix.as_os_str().to_owned();
    s.push(format!(".{safe}.autoattack-state.safetensors"));
    PathBuf::from(s)
}
