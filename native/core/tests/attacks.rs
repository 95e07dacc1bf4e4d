//! The evaluation attacks and the attack table, on small models trained in
//! the test: properties any correct attack evaluation has (monotone in
//! steps, restarts and eps; worst case below each attack; perturbations in
//! the ball and in [0,1]; eval mode), re-scoring the saved inputs, the
//! run's own evaluation, seeding, out-of-memory halving and cancellation.

mod common;

use common::{seeded, small_cnn_checkpoint};
use st_core::attacks::{Attack, AttackContext, AttackSpec, Keep, Norm};
use st_core::config::{DeviceChoice, EvalConfig};
use st_core::data::Split;
use st_core::eval::{
    attack_table, evaluate, evaluate_attacks, EvalEvent, EvalRequest, Normalization, Normalized,
    RunEval, Table, TableSettings,
};
use st_core::events::EvalSplit;
use st_core::models::{Classifier, Mode};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tch::nn;
use tch::{Device, Kind, Tensor};

// ------------------------------------------------------------ fixtures

use common::mlp::{split, trained_mlp, Mlp};

fn pgd(name: &str, eps: f64, step: f64, steps: usize, restarts: usize) -> AttackSpec {
    AttackSpec::Pgd {
        name: name.into(),
        norm: Norm::Linf,
        epsilon: eps,
        step_size: step,
        steps,
        restarts,
        random_start: true,
        keep: Keep::Best,
    }
}

fn table(net: &dyn Classifier, s: &Split, attacks: &[AttackSpec], batch: i64) -> Table {
    let settings = TableSettings {
        attacks,
        batch_size: batch,
        seed: 5,
        keep_images: true,
        run: None,
        resume: None,
    };
    attack_table(net, s, &settings, None, &mut |_| {})
        .unwrap()
        .unwrap()
}

fn acc(t: &Table, name: &str) -> f64 {
    t.results.iter().find(|r| r.name == name).unwrap().accuracy
}

fn correct_of<'a>(t: &'a Table, name: &str) -> &'a Tensor {
    let i = t.results.iter().position(|r| r.name == name).unwrap();
    &t.correct[i]
}

/// Every point correct under `a` is correct under `b` (a ⊆ b).
fn subset(a: &Tensor, b: &Tensor) -> bool {
    a.logical_and(&b.logical_not())
        .sum(Kind::Int64)
        .int64_value(&[])
        == 0
}

// ------------------------------------------------------------ properties

#[test]
fn more_steps_or_restarts_never_raise_accuracy_point_by_point() {
    let _g = seeded(0);
    let (_vs, net) = trained_mlp();
    let s = split(400, 1);
    let eps = 0.08;
    let attacks = [
        pgd("pgd1", eps, eps / 4.0, 1, 1),
        pgd("pgd3", eps, eps / 4.0, 3, 1),
        pgd("pgd10", eps, eps / 4.0, 10, 1),
        pgd("pgd40", eps, eps / 4.0, 40, 1),
        pgd("pgd10x3", eps, eps / 4.0, 10, 3),
        pgd("pgd10x6", eps, eps / 4.0, 10, 6),
    ];
    let t = table(&net, &s, &attacks, 64);
    let chain = ["pgd1", "pgd3", "pgd10", "pgd40"];
    for w in chain.windows(2) {
        assert!(
            subset(correct_of(&t, w[1]), correct_of(&t, w[0])),
            "{} robust where {} was not",
            w[1],
            w[0]
        );
    }
    for w in [["pgd10", "pgd10x3"], ["pgd10x3", "pgd10x6"]] {
        assert!(subset(correct_of(&t, w[1]), correct_of(&t, w[0])));
    }
    // The model is not trivially robust or trivially broken at this radius,
    // so the chain says something.
    let (first, last) = (acc(&t, "pgd1"), acc(&t, "pgd40"));
    assert!(first > 0.3 && last < first, "pgd1 {first}, pgd40 {last}");
    assert!(acc(&t, "pgd10x6") <= acc(&t, "pgd10"));
}

#[test]
fn a_larger_radius_never_raises_accuracy() {
    let _g = seeded(0);
    let (_vs, net) = trained_mlp();
    let s = split(400, 2);
    let radii = [0.0, 0.02, 0.05, 0.08, 0.12, 0.2, 0.3];
    let attacks: Vec<AttackSpec> = radii
        .iter()
        .map(|&e| pgd(&format!("pgd-{e}"), e, e / 4.0, 20, 1))
        .collect();
    let t = table(&net, &s, &attacks, 100);
    let accs: Vec<f64> = t.results.iter().map(|r| r.accuracy).collect();
    for w in accs.windows(2) {
        assert!(w[1] <= w[0], "accuracy rose with eps: {accs:?}");
    }
    assert_eq!(accs[0], t.clean_accuracy);
}

#[test]
fn the_worst_case_is_the_points_robust_to_every_attack_and_at_most_each() {
    let _g = seeded(0);
    let (_vs, net) = trained_mlp();
    let s = split(300, 3);
    let eps = 0.08;
    let attacks = [
        AttackSpec::Clean {
            name: "clean".into(),
        },
        AttackSpec::Fgsm {
            name: "fgsm".into(),
            norm: Norm::Linf,
            epsilon: eps,
            keep: Keep::Best,
        },
        pgd("pgd20", eps, eps / 4.0, 20, 1),
        AttackSpec::Cw {
            name: "cw".into(),
            epsilon: eps,
            step_size: eps / 4.0,
            steps: 20,
            restarts: 1,
            random_start: true,
            keep: Keep::Best,
        },
    ];
    let t = table(&net, &s, &attacks, 128);
    let mut all = t.clean.shallow_clone();
    for c in &t.correct {
        all = all.logical_and(c);
    }
    assert!(all.equal(&t.robust));
    for r in &t.results {
        assert!(t.worst_case.accuracy <= r.accuracy, "{}", r.name);
    }
    assert_eq!(t.worst_case.over, ["clean", "fgsm", "pgd20", "cw"]);
    assert_eq!(
        t.worst_case.correct,
        t.robust.sum(Kind::Int64).int64_value(&[])
    );
    // FGSM (keep best) never scores above clean.
    assert!(acc(&t, "fgsm") <= acc(&t, "clean"));
}

#[test]
fn a_naturally_trained_model_falls_near_zero_under_pgd() {
    let _g = seeded(0);
    let (_vs, net) = trained_mlp();
    let s = split(300, 4);
    let t = table(&net, &s, &[pgd("pgd20", 0.3, 0.3 / 4.0, 20, 1)], 100);
    assert!(t.clean_accuracy > 0.95, "clean {}", t.clean_accuracy);
    assert!(acc(&t, "pgd20") < 0.03, "pgd20 {}", acc(&t, "pgd20"));
}

#[test]
fn adversarial_inputs_stay_in_the_ball_and_in_the_unit_box() {
    let _g = seeded(0);
    let (_vs, net) = trained_mlp();
    let s = split(200, 5);
    let (x, _) = s.slice(0, 200);
    let l2 = AttackSpec::Pgd {
        name: "l2pgd".into(),
        norm: Norm::L2,
        epsilon: 0.5,
        step_size: 0.125,
        steps: 10,
        restarts: 2,
        random_start: true,
        keep: Keep::Best,
    };
    let l2_fgsm = AttackSpec::Fgsm {
        name: "l2fgsm".into(),
        norm: Norm::L2,
        epsilon: 0.5,
        keep: Keep::Last,
    };
    let cw = AttackSpec::Cw {
        name: "cw".into(),
        epsilon: 0.1,
        step_size: 0.05,
        steps: 10,
        restarts: 1,
        random_start: true,
        keep: Keep::Last,
    };
    let attacks = [pgd("pgd", 0.1, 0.05, 10, 2), l2, l2_fgsm, cw];
    let t = table(&net, &s, &attacks, 64);
    for (r, adv) in t.results.iter().zip(&t.adversarial) {
        let adv = adv.as_ref().unwrap();
        assert_eq!(adv.size(), x.size());
        assert!(adv.min().double_value(&[]) >= 0.0 && adv.max().double_value(&[]) <= 1.0);
        let (norm, eps) = match r.spec {
            AttackSpec::Pgd { norm, epsilon, .. } | AttackSpec::Fgsm { norm, epsilon, .. } => {
                (norm, epsilon)
            }
            AttackSpec::Cw { epsilon, .. } => (Norm::Linf, epsilon),
            _ => unreachable!(),
        };
        let d = norm.max_distance(adv, &x);
        assert!(d <= eps + 1e-5, "{}: {d} > {eps}", r.name);
        assert!(d > eps * 0.5, "{}: barely moved ({d})", r.name);
        assert!((r.max_perturbation - d).abs() < 1e-6);
    }
}

#[test]
fn attacks_use_eval_mode_batchnorm_and_no_dropout() {
    let _g = seeded(3);
    // BatchNorm: running statistics are used and left alone, so a point's
    // adversarial input does not depend on the rest of its batch.
    let (vs, net) = common::tiny_resnet(Kind::Float);
    tch::no_grad(|| {
        for (name, mut t) in vs.variables() {
            if name.ends_with("running_mean") {
                t.copy_(&(t.randn_like() * 0.1));
            } else if name.ends_with("running_var") {
                t.copy_(&(t.rand_like() + 0.5));
            }
        }
    });
    let before: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(n, t)| (n, t.copy()))
        .collect();
    let x = common::images(8, [3, 8, 8], Kind::Float);
    let y = common::labels(8, 5);
    let fgsm = st_core::attacks::fgsm::Fgsm {
        norm: Norm::Linf,
        epsilon: 0.03,
        keep: Keep::Last,
    };
    let ctx = AttackContext {
        seed: 1,
        cancel: None,
    };
    let whole = fgsm.perturb(&net, &x, &y, &ctx);
    let part = fgsm.perturb(&net, &x.narrow(0, 0, 3), &y.narrow(0, 0, 3), &ctx);
    assert!(whole.narrow(0, 0, 3).allclose(&part, 1e-6, 1e-6, false));
    let p = st_core::attacks::pgd::PgdAttack {
        norm: Norm::Linf,
        epsilon: 0.03,
        step_size: 0.01,
        steps: 3,
        restarts: 2,
        random_start: true,
        keep: Keep::Best,
    };
    let _ = p.perturb(&net, &x, &y, &ctx);
    for (name, t) in &before {
        assert!(
            t.equal(&vs.variables()[name]),
            "{name} changed during the attack"
        );
    }
    // Dropout (SmallCNN has p = 0.5) is off: two runs agree exactly.
    let vs2 = nn::VarStore::new(Device::Cpu);
    let cnn = st_core::models::small_cnn::SmallCnn::new(&vs2.root(), 1, 10, 0.5);
    let xs = common::images(4, [1, 28, 28], Kind::Float);
    let ys = common::labels(4, 10);
    let a = fgsm.perturb(&cnn, &xs, &ys, &ctx);
    let b = fgsm.perturb(&cnn, &xs, &ys, &ctx);
    assert!(a.equal(&b));
}

#[test]
fn fgsm_is_one_signed_step_of_eps_from_the_clean_point() {
    let _g = seeded(0);
    let (_vs, net) = trained_mlp();
    let s = split(50, 6);
    let (x, y) = s.slice(0, 50);
    let eps = 0.05;
    let xv = x.set_requires_grad(true);
    let loss = net
        .forward(&xv, &Mode::Eval)
        .log_softmax(-1, Kind::Float)
        .nll_loss_nd::<Tensor>(&y, None, tch::Reduction::Sum, -100);
    let g = Tensor::run_backward(&[&loss], &[&xv], false, false)
        .pop()
        .unwrap();
    let want = (&x + g.sign() * eps).clamp(0.0, 1.0);
    let fgsm = st_core::attacks::fgsm::Fgsm {
        norm: Norm::Linf,
        epsilon: eps,
        keep: Keep::Last,
    };
    let ctx = AttackContext {
        seed: 0,
        cancel: None,
    };
    let got = fgsm.perturb(&net, &x, &y, &ctx);
    assert!(got.allclose(&want, 1e-6, 1e-6, false));
}

#[test]
fn the_same_seed_gives_the_same_table_and_another_seed_another() {
    let _g = seeded(0);
    let (_vs, net) = trained_mlp();
    let s = split(200, 7);
    let attacks = [pgd("pgd5", 0.1, 0.02, 5, 1)];
    let run = |seed| {
        let settings = TableSettings {
            attacks: &attacks,
            batch_size: 50,
            seed,
            keep_images: true,
            run: None,
            resume: None,
        };
        attack_table(&net, &s, &settings, None, &mut |_| {})
            .unwrap()
            .unwrap()
    };
    let (a, b, c) = (run(1), run(1), run(2));
    assert!(a.adversarial[0]
        .as_ref()
        .unwrap()
        .equal(b.adversarial[0].as_ref().unwrap()));
    assert!(!a.adversarial[0]
        .as_ref()
        .unwrap()
        .equal(c.adversarial[0].as_ref().unwrap()));
    assert_eq!(a.results[0].seed, 1);
}

/// Panics as libtorch does when the device is out of memory, for batches
/// larger than `limit`.
struct Oom<'a> {
    net: &'a Mlp,
    limit: i64,
    hits: &'a AtomicUsize,
}

impl Classifier for Oom<'_> {
    fn forward(&self, xs: &Tensor, mode: &Mode) -> Tensor {
        if xs.size()[0] > self.limit {
            self.hits.fetch_add(1, Ordering::Relaxed);
            panic!(
                "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.10 GiB total capacity)"
            );
        }
        self.net.forward(xs, mode)
    }
}

// SAFETY of Send: the test runs on one thread.
unsafe impl Send for Oom<'_> {}

#[test]
fn out_of_memory_halves_the_batch_with_a_notice_and_the_same_numbers() {
    let _g = seeded(0);
    let (_vs, net) = trained_mlp();
    let s = split(100, 8);
    let hits = AtomicUsize::new(0);
    let oom = Oom {
        net: &net,
        limit: 16,
        hits: &hits,
    };
    let attacks = [
        AttackSpec::Clean {
            name: "clean".into(),
        },
        pgd("pgd5", 0.1, 0.02, 5, 1),
    ];
    let mut events = Vec::new();
    let settings = TableSettings {
        attacks: &attacks,
        batch_size: 64,
        seed: 5,
        keep_images: false,
        run: None,
        resume: None,
    };
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let t = attack_table(&oom, &s, &settings, None, &mut |e| events.push(e))
        .unwrap()
        .unwrap();
    std::panic::set_hook(prev);
    assert!(hits.load(Ordering::Relaxed) >= 2);
    assert_eq!(t.results[0].batch_size, 16);
    assert_eq!(t.results[1].batch_size, 16);
    assert_eq!(t.notices.len(), 2, "{:?}", t.notices);
    assert!(
        t.notices[0].contains("out of memory at batch size 64; running it again at batch size 32")
    );
    assert!(events
        .iter()
        .any(|e| matches!(e, EvalEvent::Notice { message } if message.contains("batch size 16"))));
    // The same numbers as asking for batch 16 directly.
    let direct = table(&net, &s, &attacks, 16);
    assert_eq!(direct.results[1].correct, t.results[1].correct);
    assert!(direct.correct[1].equal(&t.correct[1]));
}

#[test]
fn cancelling_stops_between_batches_with_no_result() {
    let _g = seeded(0);
    let (_vs, net) = trained_mlp();
    let s = split(200, 9);
    let cancel = AtomicBool::new(false);
    let attacks = [pgd("pgd5", 0.1, 0.02, 5, 1)];
    let settings = TableSettings {
        attacks: &attacks,
        batch_size: 20,
        seed: 0,
        keep_images: false,
        run: None,
        resume: None,
    };
    let mut batches = 0;
    let out = attack_table(&net, &s, &settings, Some(&cancel), &mut |e| {
        if let EvalEvent::Batch { .. } = e {
            batches += 1;
            cancel.store(true, Ordering::Relaxed);
        }
    })
    .unwrap();
    assert!(out.is_none());
    assert_eq!(batches, 1);
}

#[test]
fn normalisation_is_folded_in_front_of_the_model() {
    let _g = seeded(0);
    let (vs, net) = trained_mlp();
    let _ = vs;
    let x = split(10, 10).slice(0, 10).0;
    let norm = Normalization {
        mean: vec![0.4],
        std: vec![0.2],
    };
    let boxed: Box<dyn Classifier> = Box::new(net);
    let want = boxed.forward(&((&x - 0.4) / 0.2), &Mode::Eval);
    let wrapped = Normalized::new(boxed, &norm, 1, Device::Cpu);
    assert!(wrapped
        .forward(&x, &Mode::Eval)
        .allclose(&want, 1e-6, 1e-6, false));
    assert!(norm.validate(1).is_ok());
    assert!(norm.validate(3).is_ok());
    let bad = Normalization {
        mean: vec![0.5, 0.5],
        std: vec![0.0],
    };
    assert!(bad
        .validate(3)
        .unwrap_err()
        .to_string()
        .contains("normalize.mean"));
}

// ------------------------------------------------------------ checkpoints

fn tmp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("st-attacks-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn request(path: &std::path::Path, attacks: Vec<AttackSpec>) -> EvalRequest {
    EvalRequest {
        checkpoint: path.display().to_string(),
        model: "small_cnn".into(),
        num_classes: 10,
        attacks,
        batch_size: 25,
        max_samples: Some(50),
        seed: 4,
        normalize: None,
        device: DeviceChoice::Cpu,
        save_adversarial: None,
        run: None,
        resume_prefix: None,
        data_source: None,
    }
}

#[test]
fn saved_adversarial_inputs_rescore_to_exactly_the_reported_accuracy() {
    let _g = seeded(0);
    let dir = tmp_dir("rescore");
    let (path, images, labels) = small_cnn_checkpoint(&dir);
    let adv_file = dir.join("adv.safetensors");
    let mut req = request(
        &path,
        vec![
            AttackSpec::Clean {
                name: "clean".into(),
            },
            AttackSpec::Fgsm {
                name: "fgsm".into(),
                norm: Norm::Linf,
                epsilon: 0.1,
                keep: Keep::Best,
            },
            pgd("pgd5", 0.1, 0.03, 5, 2),
        ],
    );
    req.save_adversarial = Some(adv_file.display().to_string());
    let report = evaluate_attacks(&req, &images, &labels, [1, 28, 28], &mut |_| {}, None)
        .unwrap()
        .unwrap();
    assert_eq!(report.samples, 50);
    assert_eq!(report.seed, 4);
    assert_eq!(report.epoch, Some(3));
    assert!(report.verified);
    // The checksum is the one our checkpoint carries.
    let (_, meta) = st_core::checkpoint::read_named(&path).unwrap();
    assert_eq!(report.checkpoint_crc32, meta["st_native.crc32"]);
    // Re-score the file with a freshly loaded model, at another batch size.
    let (tensors, adv_meta) = st_core::checkpoint::read_named(&adv_file).unwrap();
    let get = |n: &str| &tensors.iter().find(|(k, _)| k == n).unwrap().1;
    let mut m = st_core::models::build_model("small_cnn", 10, [1, 28, 28], Device::Cpu).unwrap();
    st_core::checkpoint::load(&mut m.vs, &path, "small_cnn").unwrap();
    let y = get("labels");
    assert_eq!(y.size(), [50]);
    let score = |x: &Tensor| -> i64 {
        let mut total = 0;
        for start in (0..50).step_by(7) {
            let len = 7.min(50 - start);
            let logits = tch::no_grad(|| m.net.forward(&x.narrow(0, start, len), &Mode::Eval));
            total += logits
                .argmax(-1, false)
                .eq_tensor(&y.narrow(0, start, len))
                .sum(Kind::Int64)
                .int64_value(&[]);
        }
        total
    };
    for r in &report.attacks {
        let x = if r.name == "clean" {
            get("images")
        } else {
            get(&format!("adversarial.{}", r.name))
        };
        assert_eq!(x.kind(), Kind::Float);
        assert_eq!(score(x), r.correct, "{}", r.name);
        assert_eq!(r.correct as f64 / 50.0, r.accuracy);
    }
    let worst = get("correct.worst_case").sum(Kind::Int64).int64_value(&[]);
    assert_eq!(worst, report.worst_case.correct);
    let recorded: st_core::eval::EvalReport =
        serde_json::from_str(&adv_meta["st_native.eval_report"]).unwrap();
    assert_eq!(recorded.attacks.len(), report.attacks.len());
    for (a, b) in recorded.attacks.iter().zip(&report.attacks) {
        assert_eq!((&a.name, a.correct, &a.spec), (&b.name, b.correct, &b.spec));
    }
    // Seeded: the same request gives the same numbers.
    req.save_adversarial = None;
    let again = evaluate_attacks(&req, &images, &labels, [1, 28, 28], &mut |_| {}, None)
        .unwrap()
        .unwrap();
    for (a, b) in again.attacks.iter().zip(&report.attacks) {
        assert_eq!((a.correct, a.seed), (b.correct, b.seed));
    }
}

#[test]
fn the_run_attack_reproduces_the_per_epoch_evaluation() {
    let _g = seeded(0);
    let dir = tmp_dir("run");
    let (path, images, labels) = small_cnn_checkpoint(&dir);
    let cfg = EvalConfig {
        epsilon: 0.1,
        step_size: 0.02,
        steps: 3,
        random_start: true,
        batch_size: 20,
        max_samples: None,
        precision: Default::default(),
    };
    let mut req = request(
        &path,
        vec![
            AttackSpec::Run { name: "run".into() },
            pgd("pgd3", 0.1, 0.02, 3, 1),
        ],
    );
    req.run = Some(RunEval {
        eval: cfg.clone(),
        seed: 999,
        epoch: 999,
    });
    let report = evaluate_attacks(&req, &images, &labels, [1, 28, 28], &mut |_| {}, None)
        .unwrap()
        .unwrap();
    // The checkpoint's own seed (11) and epoch (3) win over the fallbacks.
    let mut m = st_core::models::build_model("small_cnn", 10, [1, 28, 28], Device::Cpu).unwrap();
    st_core::checkpoint::load(&mut m.vs, &path, "small_cnn").unwrap();
    let s = Split::from_bytes("t", &images, &labels, [1, 28, 28], 10, Device::Cpu)
        .unwrap()
        .prefix(50);
    let want = evaluate(m.net.as_ref(), &s, EvalSplit::Test, &cfg, 11, 3, None).unwrap();
    let got = report.run.clone().unwrap();
    assert_eq!(
        (
            got.epoch,
            got.clean_acc,
            got.robust_acc,
            got.attack.as_str(),
            got.samples
        ),
        (
            want.epoch,
            want.clean_acc,
            want.robust_acc,
            want.attack.as_str(),
            want.samples
        )
    );
    assert_eq!(report.attacks[0].accuracy, want.robust_acc);
    assert_eq!(report.clean_accuracy, want.clean_acc);
    // Without the run's settings the run attack is refused.
    req.run = None;
    let e = evaluate_attacks(&req, &images, &labels, [1, 28, 28], &mut |_| {}, None).unwrap_err();
    assert!(e.to_string().contains("attacks[0]"), "{e}");
}

#[test]
fn a_pytorch_state_dict_loads_unverified_with_its_checksum_computed() {
    let _g = seeded(0);
    let dir = tmp_dir("foreign");
    let (ours, images, labels) = small_cnn_checkpoint(&dir);
    // The same tensors without our metadata, as safetensors.torch.save_file writes them.
    let (tensors, meta) = st_core::checkpoint::read_named(&ours).unwrap();
    let foreign = dir.join("foreign.safetensors");
    let views: Vec<(String, Tensor)> = tensors;
    Tensor::write_safetensors(&views, &foreign).unwrap();
    let req = request(
        &foreign,
        vec![AttackSpec::Clean {
            name: "clean".into(),
        }],
    );
    let report = evaluate_attacks(&req, &images, &labels, [1, 28, 28], &mut |_| {}, None)
        .unwrap()
        .unwrap();
    assert!(!report.verified);
    assert_eq!(report.epoch, None);
    assert_eq!(report.checkpoint_crc32, meta["st_native.crc32"]);
    // The wrong class count names the tensor and both shapes.
    let mut wrong = request(
        &foreign,
        vec![AttackSpec::Clean {
            name: "clean".into(),
        }],
    );
    wrong.num_classes = 100;
    let labels100 = labels.clone();
    let e = evaluate_attacks(&wrong, &images, &labels100, [1, 28, 28], &mut |_| {}, None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("classifier.fc3.weight has shape [10, 200], model expects [100, 200]"),
        "{e}"
    );
}

#[test]
fn requests_are_checked_field_by_field() {
    let base = request(
        std::path::Path::new("x.safetensors"),
        vec![pgd("pgd", 0.1, 0.01, 2, 1)],
    );
    let json = serde_json::to_value(&base).unwrap();
    // Unknown fields, inside an attack too, are refused.
    let mut extra = json.clone();
    extra["attacks"][0]["stpes"] = 3.into();
    let e = serde_json::from_value::<EvalRequest>(extra).unwrap_err();
    assert!(e.to_string().contains("stpes"), "{e}");
    let mut twice = base.clone();
    twice.attacks.push(pgd("pgd", 0.1, 0.01, 2, 1));
    assert!(twice
        .validate()
        .unwrap_err()
        .to_string()
        .contains("attacks[1].name"));
    let mut big = base.clone();
    big.attacks = vec![pgd("pgd", 1.5, 0.01, 2, 1)];
    assert!(big
        .validate()
        .unwrap_err()
        .to_string()
        .contains("attacks[0].epsilon"));
    let mut none = base.clone();
    none.attacks = vec![pgd("pgd", 0.1, 0.01, 2, 0)];
    assert!(none
        .validate()
        .unwrap_err()
        .to_string()
        .contains("attacks[0].restarts"));
    let back: EvalRequest = serde_json::from_value(json).unwrap();
    assert_eq!(back.attacks, base.attacks);
}
