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

mod checks;
mod state;

pub use checks::sanity_checks;
pub use state::{state_file, Resume};
use state::{Expected, State};

use super::events::{EvalEvent, ProgressThrottle};
pub use super::report::StageResult;
use crate::attacks::apgd::{Apgd, ApgdLoss};
use crate::attacks::fab::Fab;
use crate::attacks::square::Square;
use crate::attacks::{mix_seed, Attack, AttackContext, AutoAttackVersion, Norm};
use crate::data::Split;
use crate::error::Result;
use crate::models::{Classifier, Mode};
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
    /// At most one `progress` event this often.
    pub progress_every: Duration,
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

/// Correct predictions on `x` (bool, on x's device).
fn correct(net: &dyn Classifier, x: &Tensor, y: &Tensor) -> Tensor {
    tch::no_grad(|| net.forward(x, &Mode::Eval))
        .argmax(-1, false)
        .eq_tensor(y)
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

    let names: Vec<&str> = stages.iter().map(|s| s.name).collect();
    let expected = Expected {
        stages: &names,
        x: &x_cpu,
        norm: r.norm,
        epsilon: r.epsilon,
    };
    let loaded = match &r.resume {
        Some(res) => State::load(res, &expected)?,
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
    if resumed {
        let stage = &stages[state.stage];
        sink(EvalEvent::Notice {
            message: format!(
                "{}: resuming from stage {}/{} ({}) at point {} of {}, from {}",
                r.name,
                state.stage + 1,
                stages.len(),
                stage.name,
                state.next,
                state.entering.sum(Kind::Int64).int64_value(&[]),
                r.resume
                    .as_ref()
                    .map_or(String::new(), |res| res.file.display().to_string()),
            ),
        });
    }
    for w in &state.warnings {
        sink(EvalEvent::Notice {
            message: format!("{}: {w}", r.name),
        });
    }
    let count = |t: &Tensor| t.sum(Kind::Int64).int64_value(&[]);
    let mut last_save = Instant::now();
    let mut throttle = ProgressThrottle::new(r.progress_every);
    while state.stage < stages.len() {
        let k = state.stage;
        let stage = &stages[k];
        let points = state.entering.nonzero().flatten(0, -1);
        let total = points.size()[0];
        // Time in this stage before an interruption, plus this session's.
        let (carried, stage_started) = (state.stage_seconds, Instant::now());
        let stage_seconds = || carried + stage_started.elapsed().as_secs_f64();
        throttle.new_stage();
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
        // Checked before each batch, and here for a stage with no points.
        while state.next < total || (total == 0 && cancelled(cancel)) {
            if cancelled(cancel) {
                state.stage_seconds = stage_seconds();
                if let Some(res) = &r.resume {
                    state.save(res)?;
                }
                return Ok(None);
            }
            let pos = state.next;
            let throttle = &mut throttle;
            let mut attack_batch = |b: i64, sink: &mut dyn FnMut(EvalEvent)| -> Option<()> {
                let len = b.min(total - pos);
                let idx = points.narrow(0, pos, len);
                let idx_dev = idx.to_device(device);
                let x = x_all.index_select(0, &idx_dev);
                let y = y_all.index_select(0, &idx_dev);
                let ctx = AttackContext {
                    seed: mix_seed(mix_seed(r.seed, k as i64), pos),
                    cancel,
                };
                let mut report = |w: crate::attacks::Work| {
                    let done = pos as f64 + len as f64 * w.fraction();
                    if let Some(attack_seconds) = throttle.admit(done) {
                        sink(EvalEvent::Progress {
                            attack: r.name.to_string(),
                            index: r.index,
                            stage: Some(stage.name.to_string()),
                            done,
                            total,
                            seconds: stage_seconds(),
                            attack_seconds,
                        });
                    }
                };
                let x_adv = stage
                    .attack
                    .perturb_reporting(net, &x, &y, &ctx, &mut report);
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
            if super::halving::halving_on_oom(&what, batch, notices, sink, &mut attack_batch)?
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
