//! The attack table: every attack on the same images, combined point by
//! point into the worst case.

use super::during_training::{eval_seed, pgd_of, run_points, Tick};
use super::events::{EvalEvent, ProgressThrottle, PROGRESS_EVERY};
use super::halving::halving_on_oom;
use super::per_attack::{attack_all, Outcome};
use super::report::{AttackResult, WorstCase};
use crate::attacks::AttackSpec;
use crate::config::EvalConfig;
use crate::data::Split;
use crate::error::Result;
use crate::events::{EvalResult, EvalSplit};
use crate::models::Classifier;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};
use tch::{Kind, Tensor};

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
            let file = super::autoattack::state_file(&r.prefix, a.name());
            crate::state_lock::StateLock::acquire(&file, &format!("the AutoAttack `{}`", a.name()))
        })
        .collect()
}

fn run_attacks(
    net: &dyn Classifier,
    split: &Split,
    settings: &TableSettings,
    cancel: Option<&AtomicBool>,
    progress_every: Duration,
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
            // One throttle for every try, as for the other attacks below.
            let mut throttle = ProgressThrottle::new(progress_every);
            let points = halving_on_oom(&what, &mut run_batch, notices, sink, |b, sink| {
                let cfg = EvalConfig {
                    batch_size: b,
                    ..cfg.clone()
                };
                let mut progress = |tick: Tick| match tick {
                    Tick::Step(done) => {
                        if let Some(seconds) = throttle.admit(done) {
                            sink(EvalEvent::Progress {
                                attack: name.clone(),
                                index,
                                stage: None,
                                done,
                                total: n,
                                seconds,
                                attack_seconds: seconds,
                            });
                        }
                    }
                    Tick::Batch(done, correct) => sink(EvalEvent::Batch {
                        attack: name.clone(),
                        index,
                        done,
                        total: n,
                        correct,
                    }),
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
                    ema: None,
                }),
            }
        } else if let AttackSpec::AutoAttack {
            norm,
            epsilon,
            version,
            ..
        } = *spec
        {
            let aa = super::autoattack::AaRun {
                name: &name,
                index,
                norm,
                epsilon,
                version,
                seed: settings.seed,
                progress_every,
                resume: settings.resume.as_ref().map(|r| super::autoattack::Resume {
                    file: super::autoattack::state_file(&r.prefix, &name),
                    fingerprint: format!(
                        "{} {}",
                        r.fingerprint,
                        serde_json::to_string(spec).expect("spec serialises")
                    ),
                }),
            };
            let mut aa_batch = batch;
            let Some(o) =
                super::autoattack::run(net, split, &aa, &mut aa_batch, cancel, sink, notices)?
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
            // One throttle for every try: a batch redone at half size after
            // running out of memory does not send the bar back.
            let mut throttle = ProgressThrottle::new(progress_every);
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
                    &mut throttle,
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
    attack_table_with_progress(net, split, settings, cancel, PROGRESS_EVERY, sink)
}

/// `attack_table` with at most one `progress` event per attack every
/// `progress_every` (`PROGRESS_EVERY` there; tests ask for every report).
pub fn attack_table_with_progress(
    net: &dyn Classifier,
    split: &Split,
    settings: &TableSettings,
    cancel: Option<&AtomicBool>,
    progress_every: Duration,
    sink: &mut dyn FnMut(EvalEvent),
) -> Result<Option<Table>> {
    let n = split.len();
    let mut notices = Vec::new();
    let Some(outcomes) = run_attacks(
        net,
        split,
        settings,
        cancel,
        progress_every,
        sink,
        &mut notices,
    )?
    else {
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
                    &mut ProgressThrottle::new(progress_every),
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
