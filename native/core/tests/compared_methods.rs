//! Properties of the methods ST is compared with (TRADES, MART, collaborative
//! only, AWP) that hold whatever the weights: the inner loops stay in the
//! ball, TRADES' KL vanishes for a model that ignores its input, MART's weight
//! is a probability complement, AWP's perturbation has the relative size it
//! claims and is gone after the step. Their numbers against the authors' code
//! are checked by the PyTorch parity (examples/st_parity.rs +
//! benches/reference/methods_reference.py, run by `npm test`).

mod common;
use common::*;
use st_core::checkpoint;
use st_core::config::{
    AwpConfig, AwpInner, Branches as BranchMode, CollaborativeConfig, MartConfig, OptimizerConfig,
    StConfig, TradesConfig, TrainConfig,
};
use st_core::divergence::Reg;
use st_core::events::{Event, RunStatus, VecSink};
use st_core::methods::awp::{perturbed_variables, Awp};
use st_core::methods::collaborative::Collaborative;
use st_core::methods::mart::{self, Mart};
use st_core::methods::trades::Trades;
use st_core::methods::{build_method, cross_entropy, Method};
use st_core::models::{Branches, Classifier, Mode};
use st_core::optim::Sgd;
use st_core::train::{train, TrainData};
use std::sync::atomic::{AtomicBool, Ordering};
use tch::{nn::VarStore, Device, Kind, Tensor};

const EPS: f64 = 0.1;

fn trades_cfg() -> TradesConfig {
    TradesConfig {
        beta: 6.0,
        epsilon: EPS,
        step_size: 0.03,
        steps: 5,
    }
}

fn mart_cfg() -> MartConfig {
    MartConfig {
        beta: 5.0,
        epsilon: EPS,
        step_size: 0.03,
        steps: 5,
    }
}

fn col_cfg() -> CollaborativeConfig {
    CollaborativeConfig {
        beta: 6.0,
        epsilon: EPS,
        step_size: 0.03,
        steps: 5,
    }
}

fn st_cfg() -> StConfig {
    StConfig {
        reg: Reg::Symmkl,
        beta: 6.0,
        epsilon: EPS,
        step_size: 0.03,
        steps: 3,
        branches: BranchMode::Batched,
    }
}

/// Images with a quarter of the pixels at exactly 0 or 1, so that the
/// [0,1] clamp is exercised on both sides.
fn edgy_images(n: i64, shape: [i64; 3]) -> Tensor {
    let x = images(n, shape, Kind::Float);
    let r = x.rand_like();
    let x = x.where_self(&r.gt(0.125), &x.zeros_like());
    x.where_self(&r.lt(0.875), &x.ones_like())
}

fn assert_in_ball(p: &Tensor, x: &Tensor, what: &str) {
    let dist = (p - x).abs().max().double_value(&[]);
    assert!(dist <= EPS + 1e-6, "{what} leaves the ball: {dist}");
    let (lo, hi) = (p.min().double_value(&[]), p.max().double_value(&[]));
    assert!(lo >= 0.0 && hi <= 1.0, "{what} leaves [0,1]: [{lo}, {hi}]");
    assert!(dist > 0.0, "{what} did not move");
}

fn p_true(logits: &Tensor, y: &Tensor) -> Tensor {
    logits
        .softmax(-1, None::<Kind>)
        .gather(1, &y.view([-1, 1]), false)
        .squeeze_dim(1)
}

#[test]
fn every_inner_loop_stays_in_the_eps_ball_and_the_unit_box() {
    let _rng = seeded(21);
    let (_vs, resnet) = tiny_resnet(Kind::Float);
    let (_vs2, cnn) = small_cnn_no_dropout();
    let nets: [(&dyn Classifier, [i64; 3], i64); 2] =
        [(&resnet, [3, 8, 8], 5), (&cnn, [1, 28, 28], 10)];
    for (net, shape, classes) in nets {
        let x = edgy_images(16, shape);
        let y = labels(16, classes);
        assert_in_ball(&Trades::new(trades_cfg()).inner(net, &x), &x, "trades x'");
        assert_in_ball(&Mart::new(mart_cfg()).inner(net, &x, &y), &x, "mart x'");
        let x_col = Collaborative::new(col_cfg()).inner(net, &x, &y);
        assert_in_ball(&x_col, &x, "collaborative x''");
        // Descent on CE: the collaborative point has lower loss than x.
        let frozen = Mode::Train(Branches::single(false));
        let (ce_col, ce_x) = (
            cross_entropy(&net.forward(&x_col, &frozen), &y).double_value(&[]),
            cross_entropy(&net.forward(&x, &frozen), &y).double_value(&[]),
        );
        assert!(ce_col < ce_x, "collaborative CE {ce_col} >= benign {ce_x}");
    }
}

#[test]
fn the_inner_maximisations_raise_their_objectives() {
    let _rng = seeded(22);
    let (_vs, net) = small_cnn_no_dropout();
    let x = images(32, [1, 28, 28], Kind::Float);
    let y = labels(32, 10);
    let eval = |t: &Tensor| net.forward(t, &Mode::Eval);
    let kl = |t: &Tensor| {
        eval(t)
            .log_softmax(-1, None::<Kind>)
            .kl_div(
                &eval(&x).softmax(-1, None::<Kind>),
                tch::Reduction::Sum,
                false,
            )
            .double_value(&[])
    };
    let trades = |steps| {
        Trades::new(TradesConfig {
            steps,
            ..trades_cfg()
        })
    };
    tch::manual_seed(1);
    let (k0, k5) = (
        kl(&trades(0).inner(&net, &x)),
        kl(&trades(5).inner(&net, &x)),
    );
    assert!(k5 > 100.0 * k0, "TRADES KL {k0} -> {k5}");
    let mart = |steps| {
        Mart::new(MartConfig {
            steps,
            ..mart_cfg()
        })
    };
    let ce = |t: &Tensor| cross_entropy(&eval(t), &y).double_value(&[]);
    let (c0, c5) = (
        ce(&mart(0).inner(&net, &x, &y)),
        ce(&mart(5).inner(&net, &x, &y)),
    );
    assert!(c5 > c0 + 1e-3, "MART CE {c0} -> {c5}");
}

/// A classifier whose logits do not depend on its input (but are on the
/// autograd graph of it, so input gradients exist and are zero).
struct IgnoresInput {
    logits: Tensor,
}

impl Classifier for IgnoresInput {
    fn forward(&self, xs: &Tensor, _mode: &Mode) -> Tensor {
        let n = xs.size()[0];
        let zero = xs.flatten(1, -1).sum_dim_intlist(1, true, None::<Kind>) * 0.0;
        self.logits.expand([n, -1], false) + zero
    }
}

#[test]
fn trades_kl_is_zero_when_the_model_ignores_its_input() {
    let _rng = seeded(23);
    let net = IgnoresInput {
        logits: Tensor::randn([1, 7], (Kind::Double, Device::Cpu)) * 3.0,
    };
    let x = images(10, [1, 6, 6], Kind::Double);
    let y = labels(10, 7);
    let m = Trades::new(trades_cfg());
    tch::manual_seed(4);
    let out = m.loss(&net, &x, &y);
    let kl = out.parts.reg.unwrap().double_value(&[]);
    assert!(kl.abs() < 1e-12, "KL {kl}");
    let ce = cross_entropy(&net.forward(&x, &Mode::Eval), &y).double_value(&[]);
    assert!((out.loss.double_value(&[]) - ce).abs() < 1e-12);
    // Zero input gradients: the point stays at its noisy start (clamped).
    tch::manual_seed(4);
    let start = (&x + x.randn_like() * 0.001).clamp(0.0, 1.0);
    tch::manual_seed(4);
    let x_adv = m.inner(&net, &x);
    let moved = (&x_adv - &start).abs().max().double_value(&[]);
    assert!(moved < 1e-15, "{moved}");
}

#[test]
fn mart_weight_is_one_minus_the_true_class_probability() {
    let _rng = seeded(24);
    // Ordinary, very confident and very wrong logits.
    let y = labels(300, 10);
    let ordinary = Tensor::randn([100, 10], (Kind::Double, Device::Cpu));
    let onehot = y.narrow(0, 100, 100).one_hot(10).to_kind(Kind::Double);
    let confident = &onehot * 80.0;
    let wrong = &onehot * -80.0;
    let logits = Tensor::cat(&[ordinary, confident, wrong], 0);
    let w = mart::weight(&logits, &y);
    let (lo, hi) = (w.min().double_value(&[]), w.max().double_value(&[]));
    // [0, 1] up to the reference's 1e-7 offset (1.0000001 - p).
    assert!(lo >= 0.0 && hi <= 1.0 + 1.0e-7 + 1e-15, "[{lo}, {hi}]");
    assert!(
        lo < 1e-6 && hi > 1.0 - 1e-6,
        "extremes reached: [{lo}, {hi}]"
    );
    let want = p_true(&logits, &y).neg() + 1.0000001;
    assert!(w.allclose(&want, 0.0, 1e-15, false));
    // The runner-up class is never y and has the largest other probability.
    let probs = logits.softmax(-1, None::<Kind>);
    let r = mart::runner_up(&probs, &y);
    assert!(!bool::try_from(r.eq_tensor(&y).any()).unwrap());
    let masked = probs.scatter_value(1, &y.view([-1, 1]), -1.0);
    let best_other = masked.amax([1], false);
    let picked = probs.gather(1, &r.view([-1, 1]), false).squeeze_dim(1);
    assert!(picked.equal(&best_other));
}

#[test]
fn mart_loss_is_finite_and_bounded_below_by_its_cross_entropy() {
    let _rng = seeded(25);
    let (_vs, net) = tiny_resnet(Kind::Float);
    let x = images(16, [3, 8, 8], Kind::Float);
    let y = labels(16, 5);
    let out = Mart::new(mart_cfg()).loss(&net, &x, &y);
    let loss = out.loss.double_value(&[]);
    let ce_adv = out.parts.ce_adv.unwrap().double_value(&[]);
    assert!(loss.is_finite() && loss >= ce_adv, "{loss} < {ce_adv}");
    assert!(out.parts.reg.unwrap().double_value(&[]) >= 0.0);
}

fn awp_cfg(inner: AwpInner, warmup: usize) -> AwpConfig {
    AwpConfig {
        inner,
        gamma: 5e-3,
        warmup,
    }
}

fn snapshot(vs: &VarStore) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(n, t)| (n, t.detach().copy()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn awp_perturbs_each_weight_by_gamma_of_its_norm_and_restores_it_after_the_step() {
    let _rng = seeded(26);
    for inner in [AwpInner::Trades(trades_cfg()), AwpInner::St(st_cfg())] {
        let (vs, net) = tiny_resnet(Kind::Double);
        let x = images(8, [3, 8, 8], Kind::Double);
        let y = labels(8, 5);
        let mut awp = Awp::new(awp_cfg(inner.clone(), 0), &vs);
        let before = snapshot(&vs);
        let names: Vec<String> = perturbed_variables(&vs)
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        // Conv kernels and the linear matrix; no BatchNorm vectors or biases.
        assert_eq!(names.len(), 21, "{names:?}");
        assert!(names
            .iter()
            .all(|n| n.ends_with("weight") && !n.contains("bn")));

        // The proxy pass leaves the BatchNorm buffers as the plain method would.
        tch::manual_seed(3);
        let plain = build_method(
            &st_core::config::MethodConfig::Awp(awp_cfg(inner.clone(), 5)),
            &vs,
        );
        let _ = plain.loss(&net, &x, &y);
        let plain_buffers = snapshot(&vs);
        for ((n, t), (_, b)) in vs_restore(&vs, &before).iter().zip(&before) {
            assert!(t.equal(b), "{n} not restored by the test");
        }

        awp.begin_epoch(1);
        assert!(awp.is_active());
        tch::manual_seed(3);
        let out = awp.loss(&net, &x, &y);
        let during = snapshot(&vs);
        for ((n, a), (_, b)) in during.iter().zip(&before) {
            if names.contains(n) {
                let rel = (a - b).norm().double_value(&[]) / b.norm().double_value(&[]);
                assert!(
                    (rel - 5e-3).abs() < 1e-9,
                    "{n}: relative perturbation {rel}"
                );
            } else if n.contains("num_batches") {
                // As many running-statistics updates as the plain method makes:
                // the proxy pass's are undone.
                let p = &plain_buffers.iter().find(|(m, _)| m == n).unwrap().1;
                assert!(a.equal(p), "{n}: the proxy pass left a trace");
            } else if n.contains("running") {
                // Updated once per branch by the outer pass (at the perturbed weights).
            } else {
                assert!(a.equal(b), "{n} must not be perturbed");
            }
        }
        // lr 0: the step changes nothing, so the restore gives the weights back.
        let mut opt = Sgd::new(
            &vs,
            &OptimizerConfig {
                lr: 0.0,
                momentum: 0.0,
                weight_decay: 0.0,
                nesterov: false,
                milestones: vec![],
                gamma: 0.1,
                schedule: Default::default(),
            },
        );
        opt.backward_step(&out.loss);
        awp.after_step();
        for ((n, a), (_, b)) in snapshot(&vs).iter().zip(&before) {
            if !n.contains("running") && !n.contains("num_batches") {
                assert!(a.allclose(b, 1e-13, 1e-15, false), "{n} not restored");
            }
        }
        // A second after_step is a no-op.
        let again = snapshot(&vs);
        awp.after_step();
        for ((_, a), (_, b)) in snapshot(&vs).iter().zip(&again) {
            assert!(a.equal(b));
        }
    }
}

/// Puts `saved` back into `vs` and returns the variables afterwards.
fn vs_restore(vs: &VarStore, saved: &[(String, Tensor)]) -> Vec<(String, Tensor)> {
    tch::no_grad(|| {
        for (name, mut t) in vs.variables() {
            let s = &saved.iter().find(|(n, _)| n == &name).unwrap().1;
            t.copy_(s);
        }
    });
    snapshot(vs)
}

#[test]
fn awp_waits_for_its_warmup_and_gamma_zero_turns_it_off() {
    let _rng = seeded(27);
    let (vs, net) = small_cnn_no_dropout();
    let x = images(8, [1, 28, 28], Kind::Float);
    let y = labels(8, 10);
    let weights_changed = |awp: &Awp| {
        let before = snapshot(&vs);
        let _ = awp.loss(&net, &x, &y);
        let changed = snapshot(&vs)
            .iter()
            .zip(&before)
            .any(|((_, a), (_, b))| !a.equal(b));
        awp.after_step();
        changed
    };
    let mut awp = Awp::new(awp_cfg(AwpInner::Trades(trades_cfg()), 2), &vs);
    for (epoch, active) in [(1, false), (2, false), (3, true), (4, true)] {
        awp.begin_epoch(epoch);
        assert_eq!(awp.is_active(), active, "epoch {epoch}");
        assert_eq!(weights_changed(&awp), active, "epoch {epoch}");
    }
    let mut off = Awp::new(
        AwpConfig {
            gamma: 0.0,
            ..awp_cfg(AwpInner::Trades(trades_cfg()), 0)
        },
        &vs,
    );
    off.begin_epoch(1);
    assert!(!off.is_active() && !weights_changed(&off));
}

fn run_config(out_dir: &str, method: &str, epochs: usize) -> TrainConfig {
    let json = format!(
        r#"{{
        "model": "small_cnn", "numClasses": 10, "method": {method}, "epochs": {epochs}, "batchSize": 16,
        "optimizer": {{"lr": 0.01, "momentum": 0.9, "weightDecay": 0.0005, "nesterov": false, "milestones": [], "gamma": 0.1}},
        "augment": {{"randomCropPadding": 0, "horizontalFlip": false}},
        "eval": {{"epsilon": 0.1, "stepSize": 0.02, "steps": 2, "randomStart": true, "batchSize": 16, "maxSamples": 16}},
        "seed": 0, "device": "cpu", "threads": null, "outDir": "{out_dir}", "initCheckpoint": null
    }}"#
    );
    TrainConfig::from_json(&json).unwrap()
}

const TRADES_JSON: &str =
    r#"{"name": "trades", "beta": 6, "epsilon": 0.1, "stepSize": 0.03, "steps": 2}"#;

fn awp_json(gamma: f64, warmup: usize) -> String {
    format!(r#"{{"name": "awp", "inner": {TRADES_JSON}, "gamma": {gamma}, "warmup": {warmup}}}"#)
}

fn tmp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("st-core-methods-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn weights_of(dir: &std::path::Path, kind: &str) -> Vec<(String, Vec<u8>)> {
    let (named, _) = checkpoint::read_named(&dir.join(format!("{kind}.safetensors"))).unwrap();
    let mut v: Vec<(String, Vec<u8>)> = named
        .into_iter()
        .map(|(n, t)| {
            let numel = t.numel();
            let mut bytes = vec![0u8; numel * t.kind().elt_size_in_bytes()];
            t.copy_data_u8(&mut bytes, numel);
            (n, bytes)
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn data(n: usize) -> (Vec<u8>, Vec<u8>) {
    (
        (0..n * 784).map(|i| ((i * 7919) % 256) as u8).collect(),
        (0..n).map(|i| (i % 10) as u8).collect(),
    )
}

fn run(
    cfg: &TrainConfig,
    d: &(Vec<u8>, Vec<u8>),
    sink: &mut dyn st_core::events::EventSink,
    cancel: &AtomicBool,
) -> st_core::events::TrainSummary {
    let view = TrainData {
        train_images: &d.0,
        train_labels: &d.1,
        test_images: &d.0,
        test_labels: &d.1,
        validation: None,
        shape: [1, 28, 28],
    };
    train(cfg, &view, sink, cancel).unwrap()
}

#[test]
fn awp_in_the_training_loop_follows_its_warmup_and_resumes_bit_for_bit() {
    let _rng = seeded(0);
    let d = data(32);
    let go = AtomicBool::new(false);
    // Warm-up 1: epoch 1 is TRADES alone, epoch 2 perturbs. The baseline is
    // the same wrapper with gamma 0 (never perturbs): TRADES in the AWP
    // code's forward order, which with dropout draws other masks than
    // plain TRADES' order.
    let trades_dir = tmp_dir("trades");
    run(
        &run_config(trades_dir.to_str().unwrap(), &awp_json(0.0, 1), 2),
        &d,
        &mut VecSink::default(),
        &go,
    );
    let awp_dir = tmp_dir("awp");
    let cfg = run_config(awp_dir.to_str().unwrap(), &awp_json(0.005, 1), 2);
    let mut events = VecSink::default();
    let full = run(&cfg, &d, &mut events, &go);
    assert!(matches!(&events.0[0], Event::Start { method, .. } if method == "awp"));
    assert_eq!(full.status, RunStatus::Completed);
    let (t, a) = (
        weights_of(&trades_dir, "last"),
        weights_of(&awp_dir, "last"),
    );
    assert!(
        t.iter().zip(&a).any(|((_, x), (_, y))| x != y),
        "AWP changed nothing in epoch 2"
    );

    // Stopped after epoch 1 and resumed: the same weights as uninterrupted.
    let dir_b = tmp_dir("awp-resume");
    let mut cfg_b = run_config(dir_b.to_str().unwrap(), &awp_json(0.005, 1), 2);
    let cancel = AtomicBool::new(false);
    let mut sink = |e: Event| {
        if let Event::Checkpoint { epoch: 1, .. } = e {
            cancel.store(true, Ordering::Relaxed);
        }
    };
    let stopped = run(&cfg_b, &d, &mut sink, &cancel);
    assert_eq!(stopped.epochs_completed, 1);
    // Epoch 1 was the warm-up: unperturbed TRADES weights so far.
    let trades_1 = tmp_dir("trades-1");
    run(
        &run_config(trades_1.to_str().unwrap(), &awp_json(0.0, 1), 1),
        &d,
        &mut VecSink::default(),
        &go,
    );
    for ((n, x), (_, y)) in weights_of(&trades_1, "last")
        .iter()
        .zip(&weights_of(&dir_b, "last"))
    {
        assert!(x == y, "{n}: warm-up epoch differs from TRADES");
    }
    cfg_b.resume = Some(dir_b.join("resume.safetensors").display().to_string());
    run(&cfg_b, &d, &mut VecSink::default(), &go);
    for ((n, x), (_, y)) in a.iter().zip(&weights_of(&dir_b, "last")) {
        assert!(x == y, "{n} differs after resume");
    }
}

#[test]
fn method_configs_are_validated_naming_the_field() {
    let good = serde_json::to_value(run_config("/tmp/x", &awp_json(0.005, 0), 1)).unwrap();
    let err = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut v = good.clone();
        edit(&mut v);
        TrainConfig::from_json(&v.to_string())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    assert_eq!(err(&|_| {}), "");
    let e = err(&|v| v["method"]["gama"] = 1.into());
    assert!(e.contains("gama"), "{e}");
    let e = err(&|v| v["method"]["inner"]["betaa"] = 1.into());
    assert!(e.contains("betaa"), "{e}");
    let e = err(&|v| v["method"]["gamma"] = 2.0.into());
    assert!(
        e.contains("method.gamma: expected a number in [0, 1]"),
        "{e}"
    );
    let e = err(&|v| v["method"]["inner"]["epsilon"] = 2.0.into());
    assert!(e.contains("method.inner.epsilon"), "{e}");
    let e = err(
        &|v| v["method"]["inner"] = serde_json::json!({"name": "mart", "beta": 5, "epsilon": 0.1, "stepSize": 0.01, "steps": 1}),
    );
    assert!(e.contains("mart"), "AWP wraps trades or st only: {e}");
    for (name, extra) in [("trades", ""), ("mart", ""), ("collaborative", "")] {
        let m = format!(
            r#"{{"name": "{name}", "beta": -1, "epsilon": 0.1, "stepSize": 0.01, "steps": 1{extra}}}"#
        );
        let e = err(&|v| v["method"] = serde_json::from_str(&m).unwrap());
        assert!(
            e.contains("method.beta: expected a number in [0, 1000]"),
            "{name}: {e}"
        );
        let m = format!(
            r#"{{"name": "{name}", "beta": 1, "epsilon": 0.1, "stepSize": 0.01, "steps": 1, "branches": "batched"}}"#
        );
        let e = err(&|v| v["method"] = serde_json::from_str(&m).unwrap());
        assert!(e.contains("branches"), "{name}: {e}");
    }
}
