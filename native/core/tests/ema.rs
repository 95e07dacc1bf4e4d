//! Weight averaging (EMA): the recursion against a float64 recomputation of
//! its closed form from the recorded raw weights, BatchNorm buffers copied
//! (not averaged), and a run with `ema` resumed bit for bit with both its
//! checkpoints.

mod common;
use common::{seeded, tiny_resnet};
use st_core::config::{EmaConfig, EmaEvalWith, OptimizerConfig, TrainConfig};
use st_core::ema::{decay_at, Ema};
use st_core::events::{Event, RunStatus, VecSink};
use st_core::models::{Branches, Mode, Model};
use st_core::optim::Sgd;
use st_core::train::{train, TrainData};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use tch::{Kind, Tensor};

fn tiny_model() -> Model {
    let (vs, net) = tiny_resnet(Kind::Float);
    Model {
        name: "tiny_resnet".into(),
        vs,
        net: Box::new(net),
        input_shape: [3, 8, 8],
        activations_per_sample: 0,
    }
}

fn snapshot(vs: &tch::nn::VarStore) -> BTreeMap<String, Tensor> {
    vs.variables()
        .into_iter()
        .map(|(n, t)| (n, t.to_kind(Kind::Double).detach().copy()))
        .collect()
}

#[test]
fn the_warm_up_copies_then_ramps_as_tensorflow_then_holds_the_decay() {
    let cfg = EmaConfig {
        decay: 0.3,
        warmup_steps: 2,
        eval_with: EmaEvalWith::Ema,
    };
    assert_eq!(decay_at(&cfg, 0), 0.0);
    assert_eq!(decay_at(&cfg, 1), 0.0);
    assert_eq!(decay_at(&cfg, 2), 1.0 / 10.0);
    assert_eq!(decay_at(&cfg, 3), 2.0 / 11.0);
    assert_eq!(decay_at(&cfg, 4), 3.0 / 12.0);
    assert_eq!(decay_at(&cfg, 5), 0.3, "min(0.3, 4/13)");
    assert_eq!(decay_at(&cfg, 1_000_000), 0.3);
}

#[test]
fn the_average_after_k_steps_is_the_closed_form_of_the_recursion_and_buffers_are_copied() {
    let _rng = seeded(3);
    let raw = tiny_model();
    let shell = tiny_model();
    let cfg = EmaConfig {
        decay: 0.3,
        warmup_steps: 2,
        eval_with: EmaEvalWith::Ema,
    };
    let mut ema = Ema::new(cfg.clone(), &raw.vs, shell);
    let opt_cfg = OptimizerConfig {
        lr: 0.1,
        momentum: 0.9,
        weight_decay: 5e-4,
        nesterov: false,
        milestones: vec![],
        gamma: 0.1,
        schedule: Default::default(),
    };
    let mut opt = Sgd::new(&raw.vs, &opt_cfg);
    let trainable: Vec<String> = {
        let ptrs: Vec<usize> = raw
            .vs
            .trainable_variables()
            .iter()
            .map(|t| t.data_ptr() as usize)
            .collect();
        raw.vs
            .variables()
            .into_iter()
            .filter(|(_, t)| ptrs.contains(&(t.data_ptr() as usize)))
            .map(|(n, _)| n)
            .collect()
    };
    let mut weights = vec![snapshot(&raw.vs)]; // w_0: the start
    let k = 9;
    for _ in 0..k {
        let x = Tensor::rand([6, 3, 8, 8], (Kind::Float, tch::Device::Cpu));
        let y = Tensor::randint(5, [6], (Kind::Int64, tch::Device::Cpu));
        let loss = raw
            .net
            .forward(&x, &Mode::Train(Branches::single(true)))
            .cross_entropy_for_logits(&y);
        opt.backward_step(&loss);
        ema.update(&raw.vs);
        weights.push(snapshot(&raw.vs));
    }
    assert_eq!(ema.updates, k as u64);
    let got = snapshot(&ema.model.vs);
    let mut buffers = 0;
    for (name, g) in &got {
        if trainable.contains(name) {
            // ema_k = prod_{n<k} d_n * w_0 + sum_n (1 - d_n) prod_{m>n} d_m * w_{n+1}
            let d: Vec<f64> = (0..k as u64).map(|n| decay_at(&cfg, n)).collect();
            let tail = |from: usize| d[from..].iter().product::<f64>();
            let mut want = &weights[0][name] * tail(0);
            for n in 0..k {
                want += &weights[n + 1][name] * ((1.0 - d[n]) * tail(n + 1));
            }
            let err = (g - &want).abs().max().double_value(&[]);
            assert!(err < 1e-6, "{name}: |ema - closed form| = {err}");
            let moved = (g - &weights[k][name]).abs().max().double_value(&[]);
            assert!(moved > 1e-6, "{name}: the average is not just the weights");
        } else {
            buffers += 1;
            assert!(
                g.equal(&weights[k][name]),
                "{name}: a buffer is the raw model's, copied"
            );
        }
    }
    assert!(buffers > 0, "the model has BatchNorm buffers");
}

fn config(out_dir: &str, epochs: usize) -> TrainConfig {
    let json = format!(
        r#"{{
        "model": "small_cnn", "numClasses": 10, "method": {{"name": "st", "reg": "symmkl", "beta": 1.0, "epsilon": 0.1, "stepSize": 0.05, "steps": 2, "branches": "batched"}}, "epochs": {epochs}, "batchSize": 16,
        "optimizer": {{"lr": 0.01, "momentum": 0.9, "weightDecay": 0.0005, "nesterov": false, "milestones": [1], "gamma": 0.1}},
        "augment": {{"randomCropPadding": 2, "horizontalFlip": false}},
        "eval": {{"epsilon": 0.1, "stepSize": 0.02, "steps": 2, "randomStart": true, "batchSize": 8, "maxSamples": 12}},
        "seed": 0, "device": "cpu", "threads": null, "outDir": "{out_dir}", "initCheckpoint": null,
        "ema": {{"decay": 0.9, "warmupSteps": 1, "evalWith": "ema"}}
    }}"#
    );
    TrainConfig::from_json(&json).unwrap()
}

fn tmp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("st-core-ema-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn tensors_of(path: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut t = Tensor::read_safetensors(path).unwrap();
    t.sort_by(|a, b| a.0.cmp(&b.0));
    t.into_iter()
        .map(|(n, t)| {
            let numel = t.numel();
            let mut bytes = vec![0u8; numel * t.kind().elt_size_in_bytes()];
            t.copy_data_u8(&mut bytes, numel);
            (n, bytes)
        })
        .collect()
}

#[test]
fn a_run_with_ema_writes_both_checkpoints_selects_by_the_average_and_resumes_bit_for_bit() {
    let _rng = seeded(0);
    let images: Vec<u8> = (0..48 * 784).map(|i| ((i * 7919) % 256) as u8).collect();
    let labels: Vec<u8> = (0..48).map(|i| (i % 10) as u8).collect();
    let view = TrainData {
        train_images: &images,
        train_labels: &labels,
        test_images: &images,
        test_labels: &labels,
        validation: None,
        shape: [1, 28, 28],
    };
    let dir_a = tmp_dir("a");
    let cfg_a = config(dir_a.to_str().unwrap(), 3);
    let mut events = VecSink::default();
    let full = train(&cfg_a, &view, &mut events, &AtomicBool::new(false)).unwrap();
    assert_eq!(full.status, RunStatus::Completed);
    // Each evaluated epoch has the raw result and then the average's.
    let evals: Vec<_> = events
        .0
        .iter()
        .filter_map(|e| match e {
            Event::Eval(r) => Some((r.epoch, r.ema)),
            _ => None,
        })
        .collect();
    assert_eq!(
        evals,
        vec![
            (1, None),
            (1, Some(true)),
            (2, None),
            (2, Some(true)),
            (3, None),
            (3, Some(true))
        ]
    );
    let best = full.best.as_ref().unwrap();
    assert_eq!(best.ema, Some(true), "evalWith: ema selects by the average");
    assert!(full
        .best_checkpoint
        .as_ref()
        .unwrap()
        .ends_with("ema-best.safetensors"));
    for f in ["best", "last", "ema-best", "ema-last"] {
        let p = dir_a.join(format!("{f}.safetensors"));
        let info = st_core::checkpoint::inspect(&p).unwrap();
        assert_eq!(info.kind.as_deref(), Some(f), "{f}");
        assert!(info.verified, "{f}");
        // Loadable as a model of the run, as `st-native eval` loads it.
        let mut m =
            st_core::models::build_model("small_cnn", 10, [1, 28, 28], tch::Device::Cpu).unwrap();
        st_core::checkpoint::load(&mut m.vs, &p, "small_cnn").unwrap();
    }
    // Same tensor names as the raw model, different values.
    let raw = tensors_of(&dir_a.join("last.safetensors"));
    let avg = tensors_of(&dir_a.join("ema-last.safetensors"));
    let names = |v: &Vec<(String, Vec<u8>)>| v.iter().map(|p| p.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&raw), names(&avg));
    assert!(raw != avg);

    let dir_b = tmp_dir("b");
    let mut cfg_b = config(dir_b.to_str().unwrap(), 3);
    let cancel = AtomicBool::new(false);
    let mut sink = |e: Event| {
        if let Event::Checkpoint { epoch: 1, .. } = e {
            cancel.store(true, Ordering::Relaxed);
        }
    };
    let stopped = train(&cfg_b, &view, &mut sink, &cancel).unwrap();
    assert_eq!(stopped.epochs_completed, 1);
    cfg_b.resume = Some(dir_b.join("resume.safetensors").display().to_string());
    let resumed = train(
        &cfg_b,
        &view,
        &mut VecSink::default(),
        &AtomicBool::new(false),
    )
    .unwrap();
    assert_eq!(resumed.epochs_completed, 3);
    let key = |r: &Option<st_core::events::EvalResult>| {
        r.as_ref()
            .map(|r| (r.epoch, r.clean_acc, r.robust_acc, r.ema))
    };
    assert_eq!(key(&resumed.best), key(&full.best));
    assert_eq!(key(&resumed.last), key(&full.last));
    for kind in ["last", "best", "ema-last", "ema-best", "resume"] {
        let a = tensors_of(&dir_a.join(format!("{kind}.safetensors")));
        let b = tensors_of(&dir_b.join(format!("{kind}.safetensors")));
        assert_eq!(a.len(), b.len(), "{kind}");
        for ((na, ta), (nb, tb)) in a.iter().zip(&b) {
            assert_eq!(na, nb);
            assert!(ta == tb, "{kind}: {na} differs after resume");
        }
    }
    // The resume file of a run with `ema` is refused by a config without it.
    let mut plain = cfg_b.clone();
    plain.ema = None;
    let e = train(
        &plain,
        &view,
        &mut VecSink::default(),
        &AtomicBool::new(false),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("ema"), "{e}");
}

#[test]
fn ema_fields_out_of_range_are_refused_naming_the_field() {
    let good = config("/tmp/x", 1);
    for (ema, field) in [
        (
            r#"{"decay": 1.0, "warmupSteps": 0, "evalWith": "ema"}"#,
            "ema.decay",
        ),
        (
            r#"{"decay": 0.0, "warmupSteps": 0, "evalWith": "raw"}"#,
            "ema.decay",
        ),
        // Type errors come from serde, which names the value, not the
        // path (the zod schema names the path before the core sees it).
        (
            r#"{"decay": 0.9, "warmupSteps": -1, "evalWith": "ema"}"#,
            "`-1`",
        ),
        (
            r#"{"decay": 0.9, "warmupSteps": 0, "evalWith": "best"}"#,
            "`best`",
        ),
        (
            r#"{"decay": 0.9, "warmupSteps": 0, "evalWith": "ema", "x": 1}"#,
            "`x`",
        ),
    ] {
        let mut json = serde_json::to_value(&good).unwrap();
        json["ema"] = serde_json::from_str(ema).unwrap();
        let e = TrainConfig::from_json(&json.to_string())
            .unwrap_err()
            .to_string();
        assert!(e.contains(field), "{ema}: {e}");
    }
    assert!(TrainConfig::from_json(&serde_json::to_string(&good).unwrap()).is_ok());
}
