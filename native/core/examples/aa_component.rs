//! One AutoAttack component (or the whole standard AutoAttack) on a small_cnn
//! checkpoint and an images file, for the agreement checks and the bench:
//! prints one JSON line with the accuracy over all `n` images (a point counts
//! as correct only if it is classified correctly after the attack), the time
//! and the largest perturbation. `benches/reference/autoattack_reference.py`
//! prints the same line for torchattacks on the same inputs.
//!
//!     cargo run --release --example aa_component -- CHECKPOINT IMAGES COMPONENT \
//!         [--eps 0.3] [--n 500] [--seed 0] [--batch 500] [--steps 100] \
//!         [--queries 5000] [--norm linf|l2] [--threads 0] [--model small_cnn]
//!
//! COMPONENT: apgd-ce | apgd-dlr | apgd-t | fab-t | square | aa (the whole
//! standard AutoAttack as `st-native eval --attacks aa` runs it, with the
//! accuracy after each stage)
//! IMAGES: a safetensors file with `images` (N×C×H×W float in [0,1]) and
//! `labels` (N, integer), as `st-native eval --save-adversarial` writes.

use st_core::attacks::apgd::{Apgd, ApgdLoss};
use st_core::attacks::fab::Fab;
use st_core::attacks::square::Square;
use st_core::attacks::{Attack, AttackContext, Norm};
use st_core::models::forward_copy::{channels_last_copy, WithForwardCopy};
use st_core::models::{build_model, Mode};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

fn flag(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

fn component(name: &str, norm: Norm, eps: f64, steps: usize, queries: usize) -> Box<dyn Attack> {
    let apgd = |loss| -> Box<dyn Attack> {
        Box::new(Apgd {
            norm,
            epsilon: eps,
            steps,
            restarts: 1,
            loss,
            eot_iter: 1,
            rho: 0.75,
        })
    };
    match name {
        "apgd-ce" => apgd(ApgdLoss::CrossEntropy),
        "apgd-dlr" => apgd(ApgdLoss::Dlr),
        "apgd-t" => apgd(ApgdLoss::DlrTargeted { targets: 9 }),
        "fab-t" => Box::new(Fab {
            norm,
            epsilon: eps,
            steps,
            restarts: 1,
            targets: Some(9),
            alpha_max: 0.1,
            eta: 1.05,
            beta: 0.9,
        }),
        "square" => Box::new(Square {
            norm,
            epsilon: eps,
            queries,
            restarts: 1,
            p_init: 0.8,
        }),
        other => panic!("unknown component {other}"),
    }
}

/// The standard AutoAttack through the evaluation's attack table.
fn autoattack(
    net: &dyn st_core::models::Classifier,
    x: &Tensor,
    y: &Tensor,
    norm: Norm,
    eps: f64,
    seed: i64,
    batch: i64,
) {
    use st_core::attacks::{AttackSpec, AutoAttackVersion};
    use st_core::eval::{attack_table, TableSettings};
    let n = x.size()[0];
    let shape = x.size();
    let mut images = vec![0u8; x.numel()];
    (x * 255.0)
        .round()
        .to_kind(Kind::Uint8)
        .copy_data(&mut images, x.numel());
    let labels: Vec<u8> = Vec::<i64>::try_from(y)
        .unwrap()
        .into_iter()
        .map(|l| l as u8)
        .collect();
    let split = st_core::data::Split::from_bytes(
        "images",
        &images,
        &labels,
        [shape[1], shape[2], shape[3]],
        10,
        Device::Cpu,
    )
    .expect("split");
    let attacks = [AttackSpec::AutoAttack {
        name: "aa".into(),
        norm,
        epsilon: eps,
        version: AutoAttackVersion::Standard,
    }];
    let settings = TableSettings {
        attacks: &attacks,
        batch_size: batch,
        seed,
        keep_images: false,
        run: None,
        resume: None,
    };
    let started = Instant::now();
    let t = attack_table(net, &split, &settings, None, &mut |_| {})
        .expect("autoattack")
        .expect("not cancelled");
    let seconds = started.elapsed().as_secs_f64();
    let r = &t.results[0];
    let stages: serde_json::Map<String, serde_json::Value> = r
        .stages
        .as_ref()
        .unwrap()
        .iter()
        .map(|s| (s.name.clone(), serde_json::json!(s.accuracy)))
        .collect();
    let stage_seconds: serde_json::Map<String, serde_json::Value> = r
        .stages
        .as_ref()
        .unwrap()
        .iter()
        .map(|s| (s.name.clone(), serde_json::json!(s.seconds)))
        .collect();
    println!(
        "{}",
        serde_json::json!({
            "impl": "st-native",
            "component": "aa",
            "eps": eps,
            "n": n,
            "seed": seed,
            "clean": t.clean_accuracy,
            "accuracy": r.accuracy,
            "seconds": seconds,
            "maxPerturbation": r.max_perturbation,
            "threads": tch::get_num_threads(),
            "stages": stages,
            "stageSeconds": stage_seconds,
        })
    );
}

fn main() {
    // As the addon does when loaded (allocator.rs).
    st_core::allocator::setting();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: aa_component CHECKPOINT IMAGES COMPONENT [--eps E] [--n N] [--seed S] [--batch B] [--steps K] [--queries Q] [--norm linf|l2] [--threads T]");
        std::process::exit(2);
    }
    let (checkpoint, images, name) = (&args[0], &args[1], args[2].as_str());
    let eps: f64 = flag(&args, "--eps", "0.3").parse().unwrap();
    let n: i64 = flag(&args, "--n", "500").parse().unwrap();
    let seed: i64 = flag(&args, "--seed", "0").parse().unwrap();
    let batch: i64 = flag(&args, "--batch", "500").parse().unwrap();
    let steps: usize = flag(&args, "--steps", "100").parse().unwrap();
    let queries: usize = flag(&args, "--queries", "5000").parse().unwrap();
    let threads: i32 = flag(&args, "--threads", "0").parse().unwrap();
    let model = flag(&args, "--model", "small_cnn");
    let norm = match flag(&args, "--norm", "linf").as_str() {
        "l2" => Norm::L2,
        _ => Norm::Linf,
    };
    if threads > 0 {
        tch::set_num_threads(threads);
    }
    let tensors = Tensor::read_safetensors(images).expect("read the images file");
    let get = |k: &str| {
        tensors
            .iter()
            .find(|(n, _)| n == k)
            .unwrap_or_else(|| panic!("{images} has no `{k}`"))
            .1
            .shallow_clone()
    };
    let x_all = get("images").to_kind(Kind::Float);
    let y_all = get("labels").to_kind(Kind::Int64);
    let n = n.min(x_all.size()[0]);
    let (x_all, y_all) = (x_all.narrow(0, 0, n), y_all.narrow(0, 0, n));
    let shape = x_all.size();
    let m = build_model(&model, 10, [shape[1], shape[2], shape[3]], Device::Cpu).expect("model");
    let mut vs = m.vs;
    st_core::checkpoint::load(&mut vs, std::path::Path::new(checkpoint), &model)
        .expect("checkpoint");
    // As `eval` builds it: Square's passes on a channels-last copy.
    let net = WithForwardCopy::on_cpu(m.net, Device::Cpu, || {
        channels_last_copy(&model, 10, [shape[1], shape[2], shape[3]], &vs)
    })
    .expect("the channels-last copy");
    if name == "aa" {
        return autoattack(net.as_ref(), &x_all, &y_all, norm, eps, seed, batch);
    }
    let attack = component(name, norm, eps, steps, queries);
    let correct = |x: &Tensor, y: &Tensor| {
        tch::no_grad(|| net.forward(x, &Mode::Eval))
            .argmax(-1, false)
            .eq_tensor(y)
    };
    let clean = correct(&x_all, &y_all);
    let started = Instant::now();
    let (mut robust, mut max_perturbation) = (0i64, 0f64);
    let mut start = 0;
    while start < n {
        let len = batch.min(n - start);
        let (x, y) = (x_all.narrow(0, start, len), y_all.narrow(0, start, len));
        let ctx = AttackContext {
            seed: st_core::attacks::mix_seed(seed, start),
            cancel: None,
        };
        let x_adv = attack.perturb(net.as_ref(), &x, &y, &ctx);
        let ok = correct(&x_adv, &y).logical_and(&clean.narrow(0, start, len));
        robust += ok.sum(Kind::Int64).int64_value(&[]);
        max_perturbation = max_perturbation.max(norm.max_distance(&x_adv, &x));
        assert!(
            x_adv.min().double_value(&[]) >= 0.0 && x_adv.max().double_value(&[]) <= 1.0,
            "outside [0,1]"
        );
        start += len;
    }
    let seconds = started.elapsed().as_secs_f64();
    let clean_acc = clean.sum(Kind::Int64).int64_value(&[]) as f64 / n as f64;
    println!(
        "{}",
        serde_json::json!({
            "impl": "st-native",
            "component": name,
            "eps": eps,
            "n": n,
            "seed": seed,
            "clean": clean_acc,
            "accuracy": robust as f64 / n as f64,
            "seconds": seconds,
            "maxPerturbation": max_perturbation,
            "threads": tch::get_num_threads(),
        })
    );
}
