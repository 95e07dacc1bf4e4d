//! The training loop end to end on tiny synthetic data: events, checkpoints,
//! cancellation, refusal of foreign checkpoints, bad configs.

mod common;
use common::seeded;
use st_core::checkpoint;
use st_core::config::TrainConfig;
use st_core::events::{EvalSplit, Event, RunStatus, VecSink};
use st_core::models::build_model;
use st_core::train::{train, TrainData};
use std::sync::atomic::{AtomicBool, Ordering};
use tch::Device;

fn config(out_dir: &str, method: &str, epochs: usize) -> TrainConfig {
    let json = format!(
        r#"{{
        "model": "small_cnn", "numClasses": 10, "method": {method}, "epochs": {epochs}, "batchSize": 16,
        "optimizer": {{"lr": 0.01, "momentum": 0.9, "weightDecay": 0.0005, "nesterov": false, "milestones": [1], "gamma": 0.1}},
        "augment": {{"randomCropPadding": 2, "horizontalFlip": false}},
        "eval": {{"epsilon": 0.1, "stepSize": 0.02, "steps": 2, "randomStart": true, "batchSize": 8, "maxSamples": 12}},
        "seed": 0, "device": "cpu", "threads": null, "outDir": "{out_dir}", "initCheckpoint": null
    }}"#
    );
    TrainConfig::from_json(&json).unwrap()
}

const ST: &str = r#"{"name": "st", "reg": "symmkl", "beta": 1.0, "epsilon": 0.1, "stepSize": 0.05, "steps": 2, "branches": "batched"}"#;

struct Data {
    images: Vec<u8>,
    labels: Vec<u8>,
}

fn data(n: usize) -> Data {
    Data {
        images: (0..n * 784).map(|i| ((i * 7919) % 256) as u8).collect(),
        labels: (0..n).map(|i| (i % 10) as u8).collect(),
    }
}

fn view(d: &Data) -> TrainData<'_> {
    TrainData {
        train_images: &d.images,
        train_labels: &d.labels,
        test_images: &d.images,
        test_labels: &d.labels,
        validation: None,
        shape: [1, 28, 28],
    }
}

fn tmp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("st-core-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn a_run_emits_events_in_order_and_writes_loadable_checkpoints() {
    let _rng = seeded(0);
    let dir = tmp_dir("run");
    let cfg = config(dir.to_str().unwrap(), ST, 2);
    let d = data(40);
    let mut sink = VecSink::default();
    let summary = train(&cfg, &view(&d), &mut sink, &AtomicBool::new(false)).unwrap();
    assert_eq!(summary.status, RunStatus::Completed);
    assert_eq!(summary.epochs_completed, 2);
    assert_eq!(summary.selected_on, EvalSplit::Test);
    assert_eq!(summary.test, summary.best);
    let kinds: Vec<&str> = sink
        .0
        .iter()
        .map(|e| match e {
            Event::Start { .. } => "start",
            Event::Step { .. } => "step",
            Event::EvalProgress { .. } => "evalProgress",
            Event::Epoch { .. } => "epoch",
            Event::Eval(_) => "eval",
            Event::Checkpoint { .. } => "checkpoint",
            Event::Done(_) => "done",
        })
        .collect();
    assert_eq!(kinds.first(), Some(&"start"));
    assert_eq!(kinds.last(), Some(&"done"));
    assert_eq!(kinds.iter().filter(|k| **k == "eval").count(), 2);
    // The last step event of each epoch is always sent, with ST's four parts.
    let last_step = sink.0.iter().rev().find_map(|e| match e {
        Event::Step {
            step,
            steps_per_epoch,
            parts,
            lr,
            ..
        } => Some((*step, *steps_per_epoch, parts.clone(), *lr)),
        _ => None,
    });
    let (step, steps, parts, lr) = last_step.unwrap();
    assert_eq!((step, steps), (3, 3));
    assert!(
        parts.ce_adv.is_some()
            && parts.ce_benign.is_some()
            && parts.ce_col.is_some()
            && parts.reg.is_some()
    );
    assert!(
        (lr - 0.001).abs() < 1e-12,
        "milestone [1] decays epoch 2: {lr}"
    );
    let best = summary.best.unwrap();
    assert_eq!(best.samples, 12);
    // Re-evaluating the best checkpoint reproduces the run's evaluation exactly.
    let again = st_core::eval::evaluate_checkpoint(
        summary.best_checkpoint.as_ref().unwrap(),
        "small_cnn",
        10,
        &d.images,
        &d.labels,
        [1, 28, 28],
        &cfg.eval,
        st_core::config::DeviceChoice::Cpu,
        cfg.seed,
        best.epoch,
    )
    .unwrap();
    assert_eq!(
        (again.clean_acc, again.robust_acc, again.epoch),
        (best.clean_acc, best.robust_acc, best.epoch)
    );
    let mut m = build_model("small_cnn", 10, [1, 28, 28], Device::Cpu).unwrap();
    checkpoint::load(
        &mut m.vs,
        std::path::Path::new(summary.last_checkpoint.as_ref().unwrap()),
        "small_cnn",
    )
    .unwrap();
    assert!(std::fs::read_dir(&dir).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .contains(".tmp")));
}

#[test]
fn cancelling_stops_within_a_step_and_leaves_a_loadable_checkpoint() {
    let _rng = seeded(0);
    let dir = tmp_dir("cancel");
    let cfg = config(dir.to_str().unwrap(), ST, 3);
    let d = data(64);
    let cancel = AtomicBool::new(false);
    let mut steps_after_cancel = 0;
    let mut sink = |e: Event| {
        // The first step event is always sent (later ones are coalesced).
        if let Event::Step { .. } = e {
            if cancel.load(Ordering::Relaxed) {
                steps_after_cancel += 1;
            }
            cancel.store(true, Ordering::Relaxed);
        }
    };
    let summary = train(&cfg, &view(&d), &mut sink, &cancel).unwrap();
    assert_eq!(summary.status, RunStatus::Cancelled);
    assert_eq!(summary.epochs_completed, 0);
    assert_eq!(steps_after_cancel, 0);
    let path = summary.last_checkpoint.unwrap();
    assert!(path.ends_with("interrupted.safetensors"));
    let mut m = build_model("small_cnn", 10, [1, 28, 28], Device::Cpu).unwrap();
    checkpoint::load(&mut m.vs, std::path::Path::new(&path), "small_cnn").unwrap();
}

fn train_err(cfg: &TrainConfig, d: &Data) -> st_core::CoreError {
    match train(
        cfg,
        &view(d),
        &mut VecSink::default(),
        &AtomicBool::new(false),
    ) {
        Ok(_) => panic!("training should fail"),
        Err(e) => e,
    }
}

#[test]
fn diverging_training_stops_with_a_clear_error_and_keeps_checkpoints() {
    let _rng = seeded(0);
    let dir = tmp_dir("nan");
    let d = data(64);
    let mut cfg = config(dir.to_str().unwrap(), r#"{"name": "natural"}"#, 1);
    train(
        &cfg,
        &view(&d),
        &mut VecSink::default(),
        &AtomicBool::new(false),
    )
    .unwrap();
    let last = dir.join("last.safetensors");
    let before = std::fs::read(&last).unwrap();
    // Resume into the same folder from a copy of it whose weights are scaled
    // to the edge of float32 (finite, so it loads): the first step diverges.
    let mut m = build_model("small_cnn", 10, [1, 28, 28], Device::Cpu).unwrap();
    checkpoint::load(&mut m.vs, &last, "small_cnn").unwrap();
    tch::no_grad(|| {
        for (_, mut t) in m.vs.variables() {
            let _ = t.f_mul_scalar_(1e30).unwrap();
        }
    });
    let huge = dir.join("huge.safetensors");
    let meta = checkpoint::SaveMeta {
        model: "small_cnn",
        num_classes: 10,
        epoch: 1,
        seed: 0,
        kind: "last",
    };
    checkpoint::save(&m.vs, &huge, &meta).unwrap();
    cfg.init_checkpoint = Some(huge.display().to_string());
    cfg.optimizer.lr = 10.0;
    cfg.optimizer.milestones.clear();
    let e = train_err(&cfg, &d);
    assert_eq!(e.code(), "ERR_NONFINITE_LOSS", "{e}");
    assert!(e.to_string().contains("at epoch 1, step"), "{e}");
    assert_eq!(
        std::fs::read(&last).unwrap(),
        before,
        "the good checkpoint was overwritten"
    );
}

#[test]
fn configs_with_unknown_fields_or_bad_values_are_refused_naming_the_field() {
    let _rng = seeded(0);
    let good = serde_json::to_value(config("/tmp/x", ST, 1)).unwrap();
    let mut bad = good.clone();
    bad["method"]["betaa"] = 1.into();
    let e = TrainConfig::from_json(&bad.to_string())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("betaa"), "{e}");
    let mut bad = good.clone();
    bad["method"]["epsilon"] = 2.0.into();
    let e = TrainConfig::from_json(&bad.to_string())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("method.epsilon: expected a number in [0, 1]"),
        "{e}"
    );
    let mut bad = good;
    bad["model"] = "vgg".into();
    let d = data(32);
    let cfg: TrainConfig = serde_json::from_value(bad).unwrap();
    let e = train_err(&cfg, &d).to_string();
    assert!(e.contains("unknown model \"vgg\""), "{e}");
}

#[test]
fn with_a_validation_split_selection_uses_it_and_the_best_checkpoint_is_tested_once() {
    let _rng = seeded(0);
    let dir = tmp_dir("validation");
    let cfg = config(dir.to_str().unwrap(), ST, 2);
    let d = data(40);
    let val = data(24);
    let mut input = view(&d);
    input.validation = Some((&val.images[..20 * 784], &val.labels[..20]));
    let mut sink = VecSink::default();
    let summary = train(&cfg, &input, &mut sink, &AtomicBool::new(false)).unwrap();
    assert_eq!(summary.selected_on, EvalSplit::Validation);
    let splits: Vec<EvalSplit> = sink
        .0
        .iter()
        .filter_map(|e| match e {
            Event::Eval(r) => Some(r.split),
            _ => None,
        })
        .collect();
    assert_eq!(
        splits,
        vec![
            EvalSplit::Validation,
            EvalSplit::Validation,
            EvalSplit::Test
        ]
    );
    let best = summary.best.unwrap();
    let test = summary.test.unwrap();
    assert_eq!(
        (best.split, test.split),
        (EvalSplit::Validation, EvalSplit::Test)
    );
    assert_eq!(test.epoch, best.epoch);
    // eval.maxSamples is 12: both splits are cut to it.
    assert_eq!((best.samples, test.samples), (12, 12));
}

#[test]
fn values_that_do_not_fit_the_data_are_refused_before_any_work() {
    let _rng = seeded(0);
    let dir = tmp_dir("no-fit");
    let d = data(32);
    let mut cfg = config(dir.to_str().unwrap(), ST, 1);
    cfg.batch_size = 33;
    let e = train_err(&cfg, &d).to_string();
    assert!(
        e.contains("batchSize: 33 is larger than the training split (32 images)"),
        "{e}"
    );
    let mut cfg = config(dir.to_str().unwrap(), ST, 1);
    cfg.augment.random_crop_padding = 29;
    let e = train_err(&cfg, &d).to_string();
    assert!(
        e.contains("augment.randomCropPadding: 29 is larger than the images (28×28)"),
        "{e}"
    );
    let mut cfg = config(dir.to_str().unwrap(), ST, 1);
    cfg.threads = Some(st_core::config::available_cores() + 1);
    let e = train_err(&cfg, &d).to_string();
    assert!(
        e.contains("threads: expected null or an integer in [1, "),
        "{e}"
    );
    let mut cfg = config(dir.to_str().unwrap(), ST, 1);
    cfg.init_checkpoint = Some(dir.join("nope.safetensors").display().to_string());
    let e = train_err(&cfg, &d);
    assert_eq!(e.code(), "ERR_CHECKPOINT");
    assert!(e.to_string().contains("file not found"), "{e}");
    // Nothing was created for any of them.
    assert!(!dir.exists());
}

fn tensors_of(path: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let (named, _) = checkpoint::read_named(path).unwrap();
    named
        .into_iter()
        .map(|(n, t)| {
            let numel = t.numel();
            let mut bytes = vec![0u8; numel * t.kind().elt_size_in_bytes()];
            t.copy_data_u8(&mut bytes, numel);
            (n, bytes)
        })
        .collect()
}

#[test]
fn a_run_stopped_after_an_epoch_and_resumed_ends_with_the_same_weights_bit_for_bit() {
    let _rng = seeded(0);
    let d = data(48);
    let dir_a = tmp_dir("resume-a");
    let mut cfg_a = config(dir_a.to_str().unwrap(), ST, 3);
    cfg_a.eval_schedule.every = 2; // epochs 2 and 3 (the final one) evaluated
    let full = train(
        &cfg_a,
        &view(&d),
        &mut VecSink::default(),
        &AtomicBool::new(false),
    )
    .unwrap();

    let dir_b = tmp_dir("resume-b");
    let mut cfg_b = config(dir_b.to_str().unwrap(), ST, 3);
    cfg_b.eval_schedule.every = 2;
    // Stop as soon as epoch 1 is committed (its resume file written).
    let cancel = AtomicBool::new(false);
    let mut sink = |e: Event| {
        if let Event::Checkpoint { epoch: 1, .. } = e {
            cancel.store(true, Ordering::Relaxed);
        }
    };
    let stopped = train(&cfg_b, &view(&d), &mut sink, &cancel).unwrap();
    assert_eq!(stopped.status, RunStatus::Cancelled);
    assert_eq!(stopped.epochs_completed, 1);
    cfg_b.resume = Some(dir_b.join("resume.safetensors").display().to_string());
    let mut events = VecSink::default();
    let resumed = train(&cfg_b, &view(&d), &mut events, &AtomicBool::new(false)).unwrap();
    assert!(matches!(events.0[0], Event::Start { start_epoch: 2, .. }));
    assert_eq!(resumed.epochs_completed, 3);
    let key = |r: &Option<st_core::events::EvalResult>| {
        r.as_ref().map(|r| (r.epoch, r.clean_acc, r.robust_acc))
    };
    assert_eq!(
        key(&resumed.best),
        key(&full.best),
        "same evaluations, same selection"
    );
    assert_eq!(key(&resumed.last), key(&full.last));
    for kind in ["last", "best", "resume"] {
        let a = tensors_of(&dir_a.join(format!("{kind}.safetensors")));
        let b = tensors_of(&dir_b.join(format!("{kind}.safetensors")));
        assert_eq!(a.len(), b.len(), "{kind}");
        for ((na, ta), (nb, tb)) in a.iter().zip(&b) {
            assert_eq!(na, nb);
            assert!(ta == tb, "{kind}: {na} differs after resume");
        }
    }
    // A resume file of another model is refused.
    let mut other = cfg_b.clone();
    other.model = "resnet18".into();
    let e = train_err(&other, &d).to_string();
    assert!(!e.is_empty());
}
