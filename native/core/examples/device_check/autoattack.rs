//! AutoAttack (standard, L-inf) on a CIFAR-shaped model, timed, on the same
//! model and images the torchattacks reference then attacks.
//!
//! No dataset travels to the device, and an untrained model's points all
//! fall at the first stage (which would time almost nothing), so the model
//! is first trained briefly with PGD-AT on synthetic, separable CIFAR-shaped
//! data: class c is a fixed random 4×4 pattern per channel, upsampled, at
//! amplitude `--amplitude` around grey, plus uniform noise. Then the
//! checkpoint and the evaluated images are written to `--out` (model.safetensors,
//! images.safetensors: what `benches/reference/autoattack_reference.py`
//! reads), before AutoAttack runs, so the reference can run even if this
//! step is stopped.

use crate::common::*;
use serde_json::json;
use st_core::attacks::{AttackSpec, AutoAttackVersion, Norm};
use st_core::checkpoint::{save, save_named, SaveMeta};
use st_core::data::Split;
use st_core::eval::{attack_table, TableSettings};
use st_core::optim::Sgd;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// `n` synthetic images (uint8, CPU) and labels (int64, CPU) from `seed`;
/// the class patterns come from a fixed seed, the same for every call.
pub fn synthetic(n: i64, shape: [i64; 3], amplitude: f64, seed: i64) -> (Tensor, Tensor) {
    let [c, h, w] = shape;
    tch::manual_seed(1234);
    let coarse = Tensor::randint(2, [10, c, 4, 4], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
    let patterns = coarse
        .repeat_interleave_self_int((h + 3) / 4, 2, None)
        .repeat_interleave_self_int((w + 3) / 4, 3, None)
        .narrow(2, 0, h)
        .narrow(3, 0, w);
    tch::manual_seed(seed);
    let y = Tensor::randint(10, [n], (Kind::Int64, Device::Cpu));
    let noise = Tensor::rand([n, c, h, w], (Kind::Float, Device::Cpu)) * 0.3 - 0.15;
    let x = (patterns.index_select(0, &y) * amplitude + 0.5 + noise).clamp(0.0, 1.0);
    ((x * 255.0).round().to_kind(Kind::Uint8), y)
}

pub fn run(flags: &Flags) {
    let dev = device(flags);
    let spec = flags.str("model", "resnet18");
    let width = flags.get("width", 64i64);
    let shape = shape(flags, 32);
    let n = flags.get("n", 500i64);
    let aa_batch = flags.get("aa-batch", n);
    let eps = flags.fraction("eps", 8.0 / 255.0);
    let seed = flags.get("seed", 0i64);
    let amplitude = flags.get("amplitude", 0.1f64);
    let train_steps = flags.get("train-steps", 100usize);
    let train_batch = flags.get("train-batch", 128i64);
    let train_pgd = flags.get("train-pgd-steps", 5usize);
    let out = PathBuf::from(flags.str("out", ""));
    if out.as_os_str().is_empty() {
        fail("autoattack: --out DIR is required (where the model and images go)");
    }
    std::fs::create_dir_all(&out)
        .unwrap_or_else(|e| fail(&format!("--out {}: {e}", out.display())));
    emit(
        json!({ "check": "setup", "part": "autoattack", "model": spec, "width": width, "shape": shape,
                 "n": n, "epsilon": eps, "seed": seed, "amplitude": amplitude,
                 "trainSteps": train_steps, "trainBatch": train_batch, "trainPgdSteps": train_pgd,
                 "env": describe(dev) }),
    );

    // Brief PGD-AT on the synthetic data (a pool of batches on the device).
    let started = Instant::now();
    tch::manual_seed(seed);
    let net = build(&spec, width, shape, dev);
    let pool = (train_batch * 16).max(n);
    let (px, py) = synthetic(pool, shape, amplitude, seed + 100);
    let (px, py) = (
        (px.to_kind(Kind::Float) / 255.0).to_device(dev),
        py.to_device(dev),
    );
    let mut opt = Sgd::new(&net.vs, &crate::speed::sgd());
    let m = crate::speed::method(
        "pgd_at",
        eps,
        2.5 * eps / train_pgd.max(1) as f64,
        train_pgd,
    );
    let mut last = f64::NAN;
    for step in 0..train_steps as i64 {
        let start = (step * train_batch) % (pool - train_batch + 1).max(1);
        let len = train_batch.min(pool);
        let (x, y) = (px.narrow(0, start, len), py.narrow(0, start, len));
        let out = m.loss(net.net.as_ref(), &x, &y);
        opt.zero_grad();
        out.loss.backward();
        opt.step();
        if step + 1 == train_steps as i64 {
            last = out.loss.double_value(&[]);
        }
    }
    sync(dev);
    let train_seconds = started.elapsed().as_secs_f64();

    let (images, labels) = synthetic(n, shape, amplitude, seed + 200);
    let model_path = out.join("model.safetensors");
    let images_path = out.join("images.safetensors");
    let model_name = if spec == "resnet18" && width != 64 {
        "resnet18"
    } else {
        spec.as_str()
    };
    save(
        &net.vs,
        &model_path,
        &SaveMeta {
            model: model_name,
            num_classes: 10,
            epoch: 0,
            seed,
            kind: "last",
        },
    )
    .unwrap_or_else(|e| fail(&format!("writing {}: {e}", model_path.display())));
    save_named(
        vec![
            ("images".into(), images.to_kind(Kind::Float) / 255.0),
            ("labels".into(), labels.shallow_clone()),
        ],
        &images_path,
        HashMap::new(),
    )
    .unwrap_or_else(|e| fail(&format!("writing {}: {e}", images_path.display())));
    emit(
        json!({ "check": "autoattack-model", "trainSeconds": train_seconds, "lastLoss": last,
                 "model": model_path, "images": images_path, "width": width }),
    );

    let bytes = Vec::<u8>::try_from(images.flatten(0, -1)).expect("uint8 images");
    let label_bytes: Vec<u8> = Vec::<i64>::try_from(&labels)
        .expect("labels")
        .into_iter()
        .map(|l| l as u8)
        .collect();
    let split = Split::from_bytes("device-check images", &bytes, &label_bytes, shape, 10, dev)
        .unwrap_or_else(|e| fail(&e.to_string()));
    let attacks = [AttackSpec::AutoAttack {
        name: "aa".into(),
        norm: Norm::Linf,
        epsilon: eps,
        version: AutoAttackVersion::Standard,
    }];
    let settings = TableSettings {
        attacks: &attacks,
        batch_size: aa_batch,
        seed,
        keep_images: false,
        run: None,
        resume: None,
    };
    let started = Instant::now();
    let t = attack_table(net.net.as_ref(), &split, &settings, None, &mut |_| {})
        .unwrap_or_else(|e| fail(&format!("AutoAttack: {e}")))
        .expect("not cancelled");
    sync(dev);
    let seconds = started.elapsed().as_secs_f64();
    let r = &t.results[0];
    let stages = r.stages.as_deref().unwrap_or_default();
    emit(json!({
        "check": "autoattack", "impl": "st-native", "n": n, "epsilon": eps, "seed": seed,
        "batch": aa_batch, "clean": t.clean_accuracy, "accuracy": r.accuracy, "seconds": seconds,
        "maxPerturbation": r.max_perturbation,
        "stages": stages.iter().map(|s| (s.name.clone(), json!(s.accuracy))).collect::<serde_json::Map<_, _>>(),
        "stageSeconds": stages.iter().map(|s| (s.name.clone(), json!(s.seconds))).collect::<serde_json::Map<_, _>>(),
        "notices": t.notices,
    }));
}
