//! AutoAttack over a split (`st_core::autoattack`): the stage sequence and
//! its accounting, in-ball outputs, seeding, resuming from the per-point
//! state after a cancellation (bit-identical to the uninterrupted run),
//! refusing a state from other settings, and the sanity checks.

mod common;

use common::mlp::{split, trained_mlp, Mlp};
use common::seeded;
use st_core::attacks::{AttackSpec, AutoAttackVersion, Norm};
use st_core::autoattack::{sanity_checks, state_file};
use st_core::eval::{attack_table, EvalEvent, ResumeSettings, Table, TableSettings};
use st_core::models::{Classifier, Mode};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use tch::{Kind, Tensor};

const EPS: f64 = 0.1;

fn aa(version: AutoAttackVersion) -> AttackSpec {
    AttackSpec::AutoAttack {
        name: "aa".into(),
        norm: Norm::Linf,
        epsilon: EPS,
        version,
    }
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("st-aa-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Batch sizes: small where a test stops between batches, large elsewhere
/// (the time of these tests is per-call overhead: Square alone makes 5,000
/// forwards per batch of still-robust points).
const STOPPABLE: i64 = 8;
const WHOLE: i64 = 16;

fn settings(attacks: &[AttackSpec], resume: Option<PathBuf>, batch_size: i64) -> TableSettings<'_> {
    TableSettings {
        attacks,
        batch_size,
        seed: 3,
        keep_images: true,
        run: None,
        resume: resume.map(|prefix| ResumeSettings {
            prefix,
            fingerprint: "test model".into(),
        }),
    }
}

fn run(
    batch_size: i64,
    net: &Mlp,
    attacks: &[AttackSpec],
    resume: Option<PathBuf>,
    cancel: Option<&AtomicBool>,
    sink: &mut dyn FnMut(EvalEvent),
) -> Option<Table> {
    let s = split(48, 5);
    attack_table(
        net,
        &s,
        &settings(attacks, resume, batch_size),
        cancel,
        sink,
    )
    .unwrap()
}

fn count(t: &Tensor) -> i64 {
    t.sum(Kind::Int64).int64_value(&[])
}

#[test]
fn stages_run_in_order_on_the_points_still_robust_and_the_accounting_adds_up() {
    let _g = seeded(0);
    let (_vs, net) = trained_mlp();
    let mut events = Vec::new();
    let t = run(
        WHOLE,
        &net,
        &[aa(AutoAttackVersion::Standard)],
        None,
        None,
        &mut |e| events.push(e),
    )
    .unwrap();
    let r = &t.results[0];
    let stages = r.stages.as_ref().unwrap();
    let names: Vec<&str> = stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["apgd-ce", "apgd-t", "fab-t", "square"]);
    // Each stage attacks exactly the points robust after the previous one,
    // and the accuracy never rises.
    let clean = count(&t.clean);
    let mut before = clean;
    for s in stages {
        assert_eq!(s.attacked, before, "{}", s.name);
        assert!(s.correct <= before, "{}", s.name);
        before = s.correct;
    }
    assert_eq!(r.correct, before);
    assert_eq!(r.correct, count(&t.correct[0]));
    assert!(r.correct < clean, "AutoAttack broke nothing at eps {EPS}");
    // The stage events announce each stage with the points it attacks.
    let announced: Vec<(String, i64)> = events
        .iter()
        .filter_map(|e| match e {
            EvalEvent::Stage { stage, points, .. } => Some((stage.clone(), *points)),
            _ => None,
        })
        .collect();
    let expected: Vec<(String, i64)> = stages
        .iter()
        .map(|s| (s.name.clone(), s.attacked))
        .collect();
    assert_eq!(announced, expected);
    // Every scored input is in the ball and in [0,1]; robust points kept their image.
    let s = split(48, 5);
    let (x, y) = s.slice(0, 48);
    let adv = t.adversarial[0].as_ref().unwrap();
    assert!(Norm::Linf.max_distance(adv, &x) <= EPS + 1e-6);
    assert!(adv.min().double_value(&[]) >= 0.0 && adv.max().double_value(&[]) <= 1.0);
    assert!(r.max_perturbation <= EPS + 1e-6);
    let rescored = tch::no_grad(|| net.forward(adv, &Mode::Eval))
        .argmax(-1, false)
        .eq_tensor(&y)
        .logical_and(&t.clean);
    assert!(rescored.equal(&t.correct[0]), "re-scoring the saved inputs");
}

#[test]
fn autoattack_is_at_most_pgd_and_the_same_seed_gives_the_same_result() {
    let _g = seeded(0);
    let (_vs, net) = trained_mlp();
    let pgd = AttackSpec::Pgd {
        name: "pgd20".into(),
        norm: Norm::Linf,
        epsilon: EPS,
        step_size: EPS / 4.0,
        steps: 20,
        restarts: 1,
        random_start: true,
        keep: st_core::attacks::Keep::Last,
    };
    let attacks = [aa(AutoAttackVersion::Standard), pgd];
    let a = run(WHOLE, &net, &attacks, None, None, &mut |_| {}).unwrap();
    let b = run(WHOLE, &net, &attacks, None, None, &mut |_| {}).unwrap();
    assert!(a.correct[0].equal(&b.correct[0]));
    assert!(a.adversarial[0]
        .as_ref()
        .unwrap()
        .equal(b.adversarial[0].as_ref().unwrap()));
    // Stronger than PGD-20 here: at most its accuracy plus one point of noise.
    assert!(
        a.results[0].correct <= a.results[1].correct + 1,
        "aa {} vs pgd20 {}",
        a.results[0].correct,
        a.results[1].correct
    );
}

#[test]
fn a_cancelled_autoattack_resumes_from_its_state_to_the_uninterrupted_result() {
    let _g = seeded(0);
    let (_vs, net) = trained_mlp();
    let attacks = [aa(AutoAttackVersion::Standard)];
    let whole = run(STOPPABLE, &net, &attacks, None, None, &mut |_| {}).unwrap();

    for stop_at in [1usize, 3] {
        let dir = tmp(&format!("resume{stop_at}"));
        let prefix = dir.join("eval");
        let file = state_file(&prefix, "aa");
        // Cancel as stage `stop_at` begins (after its first batch).
        let cancel = AtomicBool::new(false);
        let mut seen_stage = None;
        let stopped = run(
            STOPPABLE,
            &net,
            &attacks,
            Some(prefix.clone()),
            Some(&cancel),
            &mut |e| match e {
                EvalEvent::Stage { stage_index, .. } => seen_stage = Some(stage_index),
                EvalEvent::Batch { .. } if seen_stage == Some(stop_at) => {
                    cancel.store(true, Ordering::Relaxed)
                }
                _ => {}
            },
        );
        assert!(stopped.is_none(), "cancelled");
        assert!(file.exists(), "state saved on cancel");
        let mut first_stage = None;
        let resumed = run(
            STOPPABLE,
            &net,
            &attacks,
            Some(prefix.clone()),
            None,
            &mut |e| {
                if let EvalEvent::Stage { stage_index, .. } = e {
                    first_stage.get_or_insert(stage_index);
                }
            },
        )
        .unwrap();
        // It continues in the stage it was stopped in (the one after
        // `stop_at` when that stage's last batch was the one cancelled).
        assert_eq!(
            first_stage, seen_stage,
            "continued at the stage it stopped in"
        );
        assert!(first_stage >= Some(stop_at));
        assert!(resumed.results[0].resumed);
        assert!(resumed.correct[0].equal(&whole.correct[0]));
        assert!(resumed.adversarial[0]
            .as_ref()
            .unwrap()
            .equal(whole.adversarial[0].as_ref().unwrap()));
        let (a, b) = (
            resumed.results[0].stages.as_ref().unwrap(),
            whole.results[0].stages.as_ref().unwrap(),
        );
        let key = |v: &Vec<st_core::autoattack::StageResult>| -> Vec<(String, i64, i64)> {
            v.iter()
                .map(|s| (s.name.clone(), s.attacked, s.correct))
                .collect()
        };
        assert_eq!(key(a), key(b));
        assert!(!file.exists(), "state removed once complete");
    }
}

#[test]
fn a_state_from_other_settings_is_refused_with_the_file_named() {
    let _g = seeded(0);
    let (_vs, net) = trained_mlp();
    let dir = tmp("refuse");
    let prefix = dir.join("eval");
    let cancel = AtomicBool::new(false);
    let attacks = [aa(AutoAttackVersion::Standard)];
    let stopped = run(
        STOPPABLE,
        &net,
        &attacks,
        Some(prefix.clone()),
        Some(&cancel),
        &mut |e| {
            if let EvalEvent::Batch { .. } = e {
                cancel.store(true, Ordering::Relaxed)
            }
        },
    );
    assert!(stopped.is_none());
    let other = [AttackSpec::AutoAttack {
        name: "aa".into(),
        norm: Norm::Linf,
        epsilon: EPS / 2.0,
        version: AutoAttackVersion::Standard,
    }];
    let s = split(48, 5);
    let err = match attack_table(
        &net,
        &s,
        &settings(&other, Some(prefix), STOPPABLE),
        None,
        &mut |_| {},
    ) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a state from another radius was used"),
    };
    assert!(err.contains("autoattack-state"), "{err}");
    assert!(err.contains("other settings"), "{err}");
}

/// A model whose outputs are softmax probabilities.
struct Softmaxed(Mlp);
impl Classifier for Softmaxed {
    fn forward(&self, xs: &Tensor, mode: &Mode) -> Tensor {
        self.0.forward(xs, mode).softmax(-1, Kind::Float)
    }
}

/// A model with noise on its logits (randomised defence).
struct Noisy(Mlp);
impl Classifier for Noisy {
    fn forward(&self, xs: &Tensor, mode: &Mode) -> Tensor {
        let z = self.0.forward(xs, mode);
        &z + z.randn_like() * 0.1
    }
}

/// A model that rounds its inputs (zero gradient almost everywhere).
struct Quantised(Mlp);
impl Classifier for Quantised {
    fn forward(&self, xs: &Tensor, mode: &Mode) -> Tensor {
        self.0.forward(&((xs * 4.0).round() / 4.0), mode)
    }
}

#[test]
fn sanity_checks_flag_probabilities_randomness_and_zero_gradients() {
    let _g = seeded(0);
    let (_vs, net) = trained_mlp();
    let s = split(32, 5);
    let (x, y) = s.slice(0, 32);
    let standard = AutoAttackVersion::Standard;
    assert!(sanity_checks(&net, &x, &y, standard).is_empty());
    let w = sanity_checks(&Softmaxed(trained_mlp().1), &x, &y, standard);
    assert!(w.iter().any(|m| m.contains("probabilities")), "{w:?}");
    let w = sanity_checks(&Noisy(trained_mlp().1), &x, &y, standard);
    assert!(w.iter().any(|m| m.contains("randomised")), "{w:?}");
    assert!(
        sanity_checks(&Noisy(trained_mlp().1), &x, &y, AutoAttackVersion::Rand)
            .iter()
            .all(|m| !m.contains("randomised"))
    );
    let w = sanity_checks(&net, &x, &y, AutoAttackVersion::Rand);
    assert!(w.iter().any(|m| m.contains("deterministic")), "{w:?}");
    let w = sanity_checks(&Quantised(trained_mlp().1), &x, &y, standard);
    assert!(w.iter().any(|m| m.contains("zero gradient")), "{w:?}");
}

#[test]
fn the_rand_version_runs_apgd_ce_then_apgd_dlr() {
    let _g = seeded(0);
    let (_vs, net) = trained_mlp();
    let t = run(
        48,
        &net,
        &[aa(AutoAttackVersion::Rand)],
        None,
        None,
        &mut |_| {},
    )
    .unwrap();
    let names: Vec<String> = t.results[0]
        .stages
        .as_ref()
        .unwrap()
        .iter()
        .map(|s| s.name.clone())
        .collect();
    assert_eq!(names, ["apgd-ce", "apgd-dlr"]);
    assert!(t.results[0].correct < count(&t.clean));
}

#[test]
fn a_batchnorm_resnet_in_eval_mode_keeps_the_properties() {
    let _g = seeded(0);
    let (vs, net) = common::tiny_resnet(Kind::Float);
    // Running statistics away from (0, 1), so eval mode matters.
    tch::no_grad(|| {
        for (name, mut t) in vs.variables() {
            if name.ends_with("running_var") {
                let _ = t.fill_(0.5);
            }
        }
    });
    tch::manual_seed(11);
    let n = 12;
    let x = Tensor::rand([n, 3, 8, 8], (Kind::Float, tch::Device::Cpu));
    // Labels the network gives, so every point starts correct.
    let y = tch::no_grad(|| net.forward(&x, &Mode::Eval)).argmax(-1, false);
    let images: Vec<u8> =
        Vec::<u8>::try_from((&x * 255.0).round().to_kind(Kind::Uint8).flatten(0, -1)).unwrap();
    let labels: Vec<u8> = Vec::<i64>::try_from(&y)
        .unwrap()
        .into_iter()
        .map(|l| l as u8)
        .collect();
    let s = st_core::data::Split::from_bytes("t", &images, &labels, [3, 8, 8], 5, tch::Device::Cpu)
        .unwrap();
    let attacks = [AttackSpec::AutoAttack {
        name: "aa".into(),
        norm: Norm::Linf,
        epsilon: 8.0 / 255.0,
        version: AutoAttackVersion::Standard,
    }];
    let sorted = || {
        let mut v: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    let before: Vec<Tensor> = sorted().into_iter().map(|(_, t)| t.copy()).collect();
    let t = attack_table(&net, &s, &settings(&attacks, None, n), None, &mut |_| {})
        .unwrap()
        .unwrap();
    let after: Vec<Tensor> = sorted().into_iter().map(|(_, t)| t).collect();
    assert!(
        before.iter().zip(&after).all(|(a, b)| a.equal(b)),
        "weights and BatchNorm statistics untouched"
    );
    let r = &t.results[0];
    let mut previous = count(&t.clean);
    for st in r.stages.as_ref().unwrap() {
        assert_eq!(st.attacked, previous);
        previous = st.correct;
    }
    assert_eq!(r.correct, previous);
    let (xs, _) = s.slice(0, n);
    let adv = t.adversarial[0].as_ref().unwrap();
    assert!(Norm::Linf.max_distance(adv, &xs) <= 8.0 / 255.0 + 1e-6);
    assert!(adv.min().double_value(&[]) >= 0.0 && adv.max().double_value(&[]) <= 1.0);
}
