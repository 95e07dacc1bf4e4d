//! Progress inside an attack's batches (`EvalEvent::Progress`): it arrives
//! while a stage's only batch runs, never goes back, ends at the stage's
//! total, is throttled, and reporting changes no number (the table with
//! every report sent equals AutoAttack composed from plain `perturb` calls,
//! bit for bit, and so does each attack's `perturb_reporting`).

mod common;

use common::mlp::{split, trained_mlp, Mlp};
use common::seeded;
use st_core::attacks::apgd::{Apgd, ApgdLoss};
use st_core::attacks::{
    mix_seed, Attack, AttackContext, AttackSpec, AutoAttackVersion, Keep, Norm, Work,
};
use st_core::autoattack::stages;
use st_core::eval::{attack_table_with_progress, EvalEvent, Table, TableSettings};
use st_core::models::{Classifier, Mode};
use std::time::Duration;
use tch::{Device, Kind, Tensor};

const EPS: f64 = 0.1;
const N: i64 = 24;
const SEED: i64 = 3;

fn aa() -> AttackSpec {
    AttackSpec::AutoAttack {
        name: "aa".into(),
        norm: Norm::Linf,
        epsilon: EPS,
        version: AutoAttackVersion::Standard,
    }
}

fn table(
    net: &dyn Classifier,
    attacks: &[AttackSpec],
    batch: i64,
    every: Duration,
    events: &mut Vec<EvalEvent>,
) -> Table {
    let settings = TableSettings {
        attacks,
        batch_size: batch,
        seed: SEED,
        keep_images: true,
        run: None,
        resume: None,
    };
    attack_table_with_progress(net, &split(N, 5), &settings, None, every, &mut |e| {
        events.push(e)
    })
    .unwrap()
    .unwrap()
}

/// (stage, done, total, attack_seconds) of each progress event.
fn progress(events: &[EvalEvent]) -> Vec<(Option<String>, f64, i64, f64)> {
    events
        .iter()
        .filter_map(|e| match e {
            EvalEvent::Progress {
                stage,
                done,
                total,
                attack_seconds,
                ..
            } => Some((stage.clone(), *done, *total, *attack_seconds)),
            _ => None,
        })
        .collect()
}

fn correct(net: &dyn Classifier, x: &Tensor, y: &Tensor) -> Tensor {
    tch::no_grad(|| net.forward(x, &Mode::Eval))
        .argmax(-1, false)
        .eq_tensor(y)
}

/// AutoAttack with one batch per stage, composed from plain `perturb`
/// calls as `autoattack::run` composes them: per image robust and the
/// scored input.
fn autoattack_by_hand(net: &Mlp) -> (Tensor, Tensor) {
    let (x, y) = split(N, 5).slice(0, N);
    let mut robust = correct(net, &x, &y);
    let mut adversarial = x.copy();
    for (k, stage) in stages(Norm::Linf, EPS, AutoAttackVersion::Standard, 4)
        .iter()
        .enumerate()
    {
        let idx = robust.nonzero().flatten(0, -1);
        if idx.size()[0] == 0 {
            continue;
        }
        let (xs, ys) = (x.index_select(0, &idx), y.index_select(0, &idx));
        let ctx = AttackContext {
            seed: mix_seed(mix_seed(SEED, k as i64), 0),
            cancel: None,
        };
        let x_adv = stage.attack.perturb(net, &xs, &ys, &ctx);
        let fooled = correct(net, &x_adv, &ys).logical_not();
        let broken = idx.masked_select(&fooled);
        if broken.size()[0] > 0 {
            let sel = fooled.nonzero().flatten(0, -1);
            let _ = adversarial.index_copy_(0, &broken, &x_adv.detach().index_select(0, &sel));
            let _ = robust.index_fill_(0, &broken, 0);
        }
    }
    (robust, adversarial)
}

#[test]
fn progress_moves_inside_a_single_batch_stage_and_changes_no_result() {
    let _g = seeded(0);
    let (_vs, net) = trained_mlp();
    // Every report sent, one batch holding every point of each stage.
    let mut events = Vec::new();
    let t = table(&net, &[aa()], 64, Duration::ZERO, &mut events);
    let mut stages_seen = 0;
    for (i, e) in events.iter().enumerate() {
        let EvalEvent::Stage { stage, points, .. } = e else {
            continue;
        };
        // The stage's events, up to the next stage or the result.
        let rest = &events[i + 1..];
        let span = &rest[..rest
            .iter()
            .position(|e| matches!(e, EvalEvent::Stage { .. } | EvalEvent::Attack(_)))
            .unwrap_or(rest.len())];
        let batches: Vec<usize> = span
            .iter()
            .enumerate()
            .filter(|(_, e)| matches!(e, EvalEvent::Batch { .. }))
            .map(|(j, _)| j)
            .collect();
        if *points == 0 {
            assert!(batches.is_empty() && progress(span).is_empty(), "{stage}");
            continue;
        }
        stages_seen += 1;
        assert_eq!(batches.len(), 1, "{stage}: one batch per stage");
        let inside = progress(&span[..batches[0]]);
        assert!(progress(&span[batches[0]..]).is_empty(), "{stage}");
        assert!(
            inside.iter().any(|p| p.1 > 0.0 && p.1 < *points as f64),
            "{stage}: no progress before the stage's only batch ended: {inside:?}"
        );
        for p in &inside {
            assert_eq!(p.0.as_deref(), Some(stage.as_str()));
            assert_eq!(p.2, *points);
        }
        for w in inside.windows(2) {
            assert!(w[1].1 >= w[0].1, "{stage}: progress went back: {w:?}");
        }
        assert_eq!(
            inside.last().unwrap().1,
            *points as f64,
            "{stage}: ends at total"
        );
    }
    assert!(stages_seen >= 2, "too few stages with points to check");

    // The same table with plain `perturb` calls: bit-identical.
    let (robust, adversarial) = autoattack_by_hand(&net);
    assert!(t.correct[0].equal(&robust.logical_and(&t.clean)));
    assert!(t.adversarial[0].as_ref().unwrap().equal(&adversarial));
}

/// The perceptron, `delay` slower per forward pass: long batches, quickly.
struct Slow {
    net: Mlp,
    delay: Duration,
}

impl Classifier for Slow {
    fn forward(&self, xs: &Tensor, mode: &Mode) -> Tensor {
        std::thread::sleep(self.delay);
        self.net.forward(xs, mode)
    }
}

#[test]
fn progress_is_throttled_across_batches() {
    let _g = seeded(0);
    let (_vs, net) = trained_mlp();
    let slow = Slow {
        net,
        delay: Duration::from_millis(2),
    };
    // A tiny radius: points stay robust, so every step runs.
    let pgd = AttackSpec::Pgd {
        name: "pgd".into(),
        norm: Norm::Linf,
        epsilon: 0.001,
        step_size: 0.0005,
        steps: 60,
        restarts: 1,
        random_start: true,
        keep: Keep::Best,
    };
    let every = Duration::from_millis(40);
    let mut events = Vec::new();
    let t = table(&slow, &[pgd], 12, every, &mut events);
    let p = progress(&events);
    // Two batches of 60 steps, 61 passes each of at least 2 ms: at least
    // 240 ms, 120 reports; at most one event per 40 ms gets through.
    let seconds = t.results[0].seconds;
    assert!(seconds >= 0.24, "{seconds}");
    assert!(p.len() >= 2, "{p:?}");
    assert!(
        p.len() as f64 <= seconds / every.as_secs_f64() + 1.0,
        "{} events in {seconds} s",
        p.len()
    );
    assert!(
        p[0].3 >= every.as_secs_f64(),
        "the first one came early: {p:?}"
    );
    for w in p.windows(2) {
        assert!(w[1].3 - w[0].3 >= every.as_secs_f64() - 1e-9, "{w:?}");
        assert!(w[1].1 >= w[0].1, "{w:?}");
        assert_eq!(w[1].0, None);
    }
    assert!(p.iter().all(|e| e.2 == N && e.1 <= N as f64));
    // Inside a batch: some event falls strictly between two batch ends.
    assert!(p.iter().any(|e| e.1 != 12.0 && e.1 != 24.0), "{p:?}");
}

/// Each attack's reports: never back, within the total, ending at it; and
/// the inputs are `perturb`'s bit for bit.
#[test]
fn perturb_reporting_reports_monotone_work_and_returns_perturbs_inputs() {
    let _g = seeded(0);
    let (_vs, net) = trained_mlp();
    let (x, y) = split(16, 8).slice(0, 16);
    let mut attacks: Vec<(String, Box<dyn Attack>)> =
        stages(Norm::Linf, EPS, AutoAttackVersion::Standard, 4)
            .into_iter()
            .map(|s| (s.name.to_string(), s.attack))
            .collect();
    attacks.push((
        "apgd-dlr restarts".into(),
        Box::new(Apgd {
            norm: Norm::L2,
            epsilon: 0.5,
            steps: 20,
            restarts: 3,
            loss: ApgdLoss::Dlr,
            eot_iter: 1,
            rho: 0.75,
        }),
    ));
    for spec in [
        AttackSpec::Pgd {
            name: "pgd".into(),
            norm: Norm::L2,
            epsilon: 0.5,
            step_size: 0.1,
            steps: 10,
            restarts: 2,
            random_start: true,
            keep: Keep::Best,
        },
        AttackSpec::Fgsm {
            name: "fgsm".into(),
            norm: Norm::Linf,
            epsilon: EPS,
            keep: Keep::Last,
        },
        AttackSpec::Cw {
            name: "cw".into(),
            epsilon: EPS,
            step_size: 0.02,
            steps: 10,
            restarts: 1,
            random_start: true,
            keep: Keep::Best,
        },
    ] {
        attacks.push((spec.name().to_string(), spec.build().unwrap()));
    }
    for (name, a) in &attacks {
        let ctx = AttackContext {
            seed: 11,
            cancel: None,
        };
        let plain = a.perturb(&net, &x, &y, &ctx);
        let mut reports: Vec<Work> = Vec::new();
        let reported = a.perturb_reporting(&net, &x, &y, &ctx, &mut |w| reports.push(w));
        assert!(
            plain.equal(&reported),
            "{name}: reporting changed the inputs"
        );
        assert!(reports.len() >= 2, "{name}: {reports:?}");
        let total = reports[0].total;
        assert!(total > 0, "{name}");
        for w in reports.windows(2) {
            assert!(
                w[1].done >= w[0].done && w[1].total == total,
                "{name}: {w:?}"
            );
        }
        assert!(reports.iter().all(|w| w.done <= w.total), "{name}");
        assert_eq!(reports.last().unwrap().done, total, "{name}");
        assert_eq!(reported.device(), Device::Cpu);
        assert_eq!(reported.kind(), Kind::Float);
    }
}

/// The run's own evaluation (the per-epoch PGD, `evaluate_observed`) moves
/// inside its only batch too: counts after every PGD step, never back,
/// below the batch's end until the batch's own report, and the result is
/// `evaluate`'s bit for bit.
#[test]
fn the_runs_evaluation_reports_progress_inside_its_only_batch() {
    use st_core::config::EvalConfig;
    use st_core::eval::{evaluate, evaluate_observed};
    use st_core::events::EvalSplit;
    let _g = seeded(0);
    let (_vs, net) = trained_mlp();
    let data = split(N, 5);
    let cfg = EvalConfig {
        epsilon: EPS,
        step_size: EPS / 4.0,
        steps: 8,
        random_start: true,
        batch_size: 64,
        max_samples: None,
        precision: Default::default(),
    };
    let mut seen = Vec::new();
    let observed = evaluate_observed(
        &net,
        &data,
        EvalSplit::Test,
        &cfg,
        11,
        2,
        None,
        &mut |done, total| {
            assert_eq!(total, N);
            seen.push(done);
        },
    )
    .expect("not cancelled");
    let plain = evaluate(&net, &data, EvalSplit::Test, &cfg, 11, 2, None).expect("not cancelled");
    assert_eq!(observed.clean_acc, plain.clean_acc);
    assert_eq!(observed.robust_acc, plain.robust_acc);
    // Start, one count per step (3 images per step of 8 over 24), the end.
    assert_eq!(seen.first(), Some(&0));
    assert_eq!(seen.last(), Some(&N));
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "went back: {seen:?}");
    let inside: Vec<i64> = seen.iter().copied().filter(|&d| d > 0 && d < N).collect();
    assert_eq!(inside, vec![3, 6, 9, 12, 15, 18, 21], "{seen:?}");
    assert_eq!(seen.iter().filter(|&&d| d == N).count(), 1, "{seen:?}");
}
