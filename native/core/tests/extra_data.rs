//! Extra (pseudo-labelled) data mixed into the batches, as RST does: the
//! `.stextra` reader in both layouts and its refusals, the exact make-up of
//! every batch (labelled images once each, `floor(B * fraction)` extra images
//! or more in a short last batch), determinism given the seed, a run stopped
//! and resumed bit for bit, and RST's cosine learning rate.

mod common;
use common::seeded;
use st_core::config::{LrSchedule, OptimizerConfig, TrainConfig};
use st_core::data::Split;
use st_core::events::{Event, RunStatus, VecSink};
use st_core::extra::ExtraFile;
use st_core::sampler::{extra_per_batch, steps_per_epoch, MixedSampler};
use st_core::train::{train, TrainData};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use tch::{Device, Kind, Tensor};

fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("st-core-extra-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Writes a `.stextra` file as the README documents it.
fn write_stextra(path: &Path, header: &str, pixels: &[u8], labels: &[u8]) {
    let mut bytes = b"STEXTRA1".to_vec();
    bytes.extend((header.len() as u32).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend(pixels);
    bytes.extend(labels);
    std::fs::write(path, bytes).unwrap();
}

fn header(count: usize, shape: [usize; 3], layout: &str) -> String {
    format!(
        r#"{{"count":{count},"channels":{},"height":{},"width":{},"layout":"{layout}","numClasses":10,"source":"test"}}"#,
        shape[0], shape[1], shape[2]
    )
}

/// Extra image j of C×H×W: pixel (c, y, x) = (j * 7 + c * 31 + y * 5 + x) mod 256.
fn pixel(j: usize, c: usize, y: usize, x: usize) -> u8 {
    ((j * 7 + c * 31 + y * 5 + x) % 256) as u8
}

fn pixels(count: usize, [c, h, w]: [usize; 3], nhwc: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(count * c * h * w);
    for j in 0..count {
        if nhwc {
            for y in 0..h {
                for x in 0..w {
                    for ch in 0..c {
                        out.push(pixel(j, ch, y, x));
                    }
                }
            }
        } else {
            for ch in 0..c {
                for y in 0..h {
                    for x in 0..w {
                        out.push(pixel(j, ch, y, x));
                    }
                }
            }
        }
    }
    out
}

#[test]
fn images_come_back_as_written_in_both_layouts_with_their_labels() {
    let dir = tmp_dir("layouts");
    let shape = [3, 4, 5];
    let labels: Vec<u8> = (0..9).map(|j| (j * 3 % 10) as u8).collect();
    for (layout, nhwc) in [("NCHW", false), ("NHWC", true)] {
        let path = dir.join(format!("{layout}.stextra"));
        write_stextra(
            &path,
            &header(9, shape, layout),
            &pixels(9, shape, nhwc),
            &labels,
        );
        let f = ExtraFile::open(&path).unwrap();
        assert_eq!(f.len(), 9);
        let index = [8i64, 0, 3, 3];
        let (x, y) = f.gather(&index, Device::Cpu).unwrap();
        assert_eq!(x.size(), vec![4, 3, 4, 5]);
        assert_eq!(x.kind(), Kind::Uint8);
        for (k, &j) in index.iter().enumerate() {
            assert_eq!(y.int64_value(&[k as i64]), labels[j as usize] as i64);
            for c in 0..3 {
                for yy in 0..4 {
                    for xx in 0..5 {
                        let got = x.int64_value(&[k as i64, c as i64, yy as i64, xx as i64]);
                        assert_eq!(
                            got,
                            pixel(j as usize, c, yy, xx) as i64,
                            "{layout} image {j}"
                        );
                    }
                }
            }
        }
        f.check_fits([3, 4, 5], 10).unwrap();
        let e = f.check_fits([3, 5, 4], 10).unwrap_err().to_string();
        assert!(
            e.contains(&path.display().to_string()) && e.contains("3×4×5"),
            "{e}"
        );
        let e = f.check_fits([3, 4, 5], 5).unwrap_err().to_string();
        assert!(e.contains("label 9") && e.contains("5 classes"), "{e}");
    }
}

#[test]
fn wrong_truncated_and_corrupt_files_are_refused_naming_the_file() {
    let dir = tmp_dir("corrupt");
    let shape = [1, 2, 2];
    let good_pixels = pixels(3, shape, false);
    let labels = [1u8, 2, 3];
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "magic",
            b"NOTEXTRA\0\0\0\0".to_vec(),
            "not an extra-data file",
        ),
        ("empty", vec![], "not an extra-data file"),
        (
            "hlen",
            {
                let mut b = b"STEXTRA1".to_vec();
                b.extend(5000u32.to_le_bytes());
                b
            },
            "truncated or corrupt",
        ),
    ];
    for (name, bytes, want) in cases {
        let path = dir.join(format!("{name}.stextra"));
        std::fs::write(&path, bytes).unwrap();
        let e = ExtraFile::open(&path).err().unwrap().to_string();
        assert!(
            e.contains(&path.display().to_string()) && e.contains(want),
            "{name}: {e}"
        );
    }
    // (case, header JSON, pixels, labels, what the error must say)
    type Case<'a> = (&'a str, String, Vec<u8>, Vec<u8>, &'a str);
    let file_cases: Vec<Case> = vec![
        (
            "truncated",
            header(3, shape, "NCHW"),
            good_pixels[..10].to_vec(),
            labels.to_vec(),
            "truncated",
        ),
        (
            "long",
            header(3, shape, "NCHW"),
            good_pixels.clone(),
            vec![1, 2, 3, 4],
            "too long",
        ),
        (
            "label",
            header(3, shape, "NCHW"),
            good_pixels.clone(),
            vec![1, 10, 3],
            "label 1 is 10",
        ),
        (
            "json",
            "{not json".to_string(),
            good_pixels.clone(),
            labels.to_vec(),
            "not the expected JSON",
        ),
        (
            "layout",
            header(3, shape, "CHWN"),
            good_pixels.clone(),
            labels.to_vec(),
            "not the expected JSON",
        ),
        (
            "zero",
            header(0, shape, "NCHW"),
            vec![],
            vec![],
            "\"count\" must be a positive",
        ),
    ];
    for (name, h, px, lb, want) in file_cases {
        let path = dir.join(format!("{name}.stextra"));
        write_stextra(&path, &h, &px, &lb);
        let e = ExtraFile::open(&path).err().unwrap().to_string();
        assert!(
            e.contains(&path.display().to_string()) && e.contains(want),
            "{name}: {e}"
        );
    }
    let missing = dir.join("absent.stextra");
    let e = ExtraFile::open(&missing).err().unwrap().to_string();
    assert!(e.contains(&missing.display().to_string()), "{e}");
}

/// A labelled split of `n` 1×2×2 images whose first pixel is 0 and second
/// the image's index (mod 256), labelled index mod 10; and an extra file of
/// `m` whose first pixel is 255, second the index, third index / 256,
/// labelled (index * 3) mod 10.
fn sources(dir: &Path, n: usize, m: usize) -> (Split, PathBuf) {
    let mut li = Vec::new();
    for i in 0..n {
        li.extend([0u8, (i % 256) as u8, (i / 256) as u8, 0]);
    }
    let ll: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    let split = Split::from_bytes("train", &li, &ll, [1, 2, 2], 10, Device::Cpu).unwrap();
    let mut ei = Vec::new();
    for j in 0..m {
        ei.extend([255u8, (j % 256) as u8, (j / 256) as u8, 7]);
    }
    let el: Vec<u8> = (0..m).map(|j| (j * 3 % 10) as u8).collect();
    let path = dir.join("extra.stextra");
    write_stextra(&path, &header(m, [1, 2, 2], "NCHW"), &ei, &el);
    (split, path)
}

#[test]
fn every_batch_is_labelled_then_extra_images_in_rst_proportions() {
    let _rng = seeded(5);
    let dir = tmp_dir("mix");
    let (n, m) = (70usize, 300usize);
    let (split, path) = sources(&dir, n, m);
    // (16, 0.1): 15 labelled a batch, so the 5th batch has only 10 left and takes 6 extra.
    for (batch, fraction) in [(16i64, 0.5), (10, 0.3), (9, 0.5), (12, 0.75), (16, 0.1)] {
        let sampler = MixedSampler::new(ExtraFile::open(&path).unwrap(), batch, fraction);
        let extra = extra_per_batch(batch, fraction);
        assert_eq!(extra, (batch as f64 * fraction) as i64, "RST's int()");
        assert_eq!(sampler.labelled, batch - extra);
        let steps = steps_per_epoch(n as i64, batch);
        assert_eq!(steps, n.div_ceil(batch as usize), "ceil(N / B) batches");
        for _epoch in 0..2 {
            let order = Tensor::randperm(n as i64, (Kind::Int64, Device::Cpu));
            let mut seen = HashSet::new();
            for step in 1..=steps {
                let (x, y) = sampler.batch(&split, &order, step).unwrap();
                assert_eq!(x.size(), vec![batch, 1, 2, 2], "every batch is full");
                let start = (step as i64 - 1) * sampler.labelled;
                let want_labelled = sampler.labelled.min(n as i64 - start);
                assert!(want_labelled >= 1, "the labelled pass never runs out");
                let px = (x * 255.0).round().to_kind(Kind::Int64);
                let mut labelled = 0;
                for r in 0..batch {
                    let first = px.int64_value(&[r, 0, 0, 0]);
                    let idx = (px.int64_value(&[r, 0, 0, 1]) + 256 * px.int64_value(&[r, 0, 1, 0]))
                        as usize;
                    let label = y.int64_value(&[r]);
                    if first == 0 {
                        // Labelled images first, each from the epoch's permutation, once.
                        assert_eq!(r, labelled, "labelled images come first");
                        let i = order.int64_value(&[start + r]) as usize;
                        assert_eq!(idx, i, "the permutation's next labelled image");
                        assert_eq!(label, (i % 10) as i64);
                        assert!(seen.insert(i), "labelled image {i} twice in an epoch");
                        labelled += 1;
                    } else {
                        assert_eq!(first, 255);
                        assert!(idx < m);
                        assert_eq!(px.int64_value(&[r, 0, 1, 1]), 7);
                        assert_eq!(label, (idx * 3 % 10) as i64, "the extra image's own label");
                    }
                }
                assert_eq!(
                    labelled, want_labelled,
                    "B {batch} f {fraction} step {step}"
                );
            }
            // An epoch takes ceil(N/B) * labelled-per-batch images of the split at most.
            assert_eq!(
                seen.len() as i64,
                (steps as i64 * sampler.labelled).min(n as i64)
            );
        }
    }
}

#[test]
fn the_draws_are_the_seeds_and_the_extra_indices_cover_the_file() {
    let _rng = seeded(0);
    let dir = tmp_dir("seed");
    let (_split, path) = sources(&dir, 20, 50);
    let sampler = MixedSampler::new(ExtraFile::open(&path).unwrap(), 8, 0.5);
    let draws = |seed: i64| {
        tch::manual_seed(seed);
        let order = Tensor::randperm(20, (Kind::Int64, Device::Cpu));
        (1..=3)
            .map(|s| {
                let (l, e) = sampler.draw(&order, s);
                (Vec::<i64>::try_from(&l).unwrap(), e)
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(draws(11), draws(11));
    assert_ne!(draws(11), draws(12));
    // With replacement, uniform over the file: 4,000 draws reach every one of 50.
    tch::manual_seed(1);
    let order = Tensor::randperm(20, (Kind::Int64, Device::Cpu));
    let mut hit = HashSet::new();
    for _ in 0..1000 {
        hit.extend(sampler.draw(&order, 1).1);
    }
    assert_eq!(hit.len(), 50);
}

#[test]
fn rsts_cosine_rate_per_epoch_and_no_milestones_with_it() {
    let o = OptimizerConfig {
        lr: 0.1,
        momentum: 0.9,
        weight_decay: 5e-4,
        nesterov: true,
        milestones: vec![],
        gamma: 0.1,
        schedule: LrSchedule::Cosine,
    };
    // 0.5 (1 + cos(pi (e-1)/E)) = cos^2(pi (e-1) / 2E).
    assert_eq!(o.lr_at(1, 200), 0.1);
    assert!((o.lr_at(101, 200) - 0.05).abs() < 1e-15);
    let last = 0.1 * (std::f64::consts::PI * 199.0 / 400.0).cos().powi(2);
    assert!((o.lr_at(200, 200) - last).abs() < 1e-15);
    assert!(o.lr_at(200, 200) > 0.0 && o.lr_at(200, 200) < 1e-5);
    let mut json = config("/tmp/x", 2, None);
    json.optimizer.schedule = LrSchedule::Cosine;
    json.optimizer.milestones = vec![1];
    let e = json.validate().unwrap_err().to_string();
    assert!(
        e.contains("optimizer.milestones") && e.contains("cosine"),
        "{e}"
    );
}

fn config(out_dir: &str, epochs: usize, extra: Option<(&Path, f64)>) -> TrainConfig {
    let extra = extra.map_or("null".to_string(), |(p, f)| {
        format!(r#"{{"file": "{}", "fraction": {f}}}"#, p.display())
    });
    let json = format!(
        r#"{{
        "model": "small_cnn", "numClasses": 10, "method": {{"name": "st", "reg": "symmkl", "beta": 1.0, "epsilon": 0.1, "stepSize": 0.05, "steps": 1, "branches": "batched"}}, "epochs": {epochs}, "batchSize": 16,
        "optimizer": {{"lr": 0.01, "momentum": 0.9, "weightDecay": 0.0005, "nesterov": true, "milestones": [], "gamma": 0.1, "schedule": "cosine"}},
        "augment": {{"randomCropPadding": 2, "horizontalFlip": true}},
        "eval": {{"epsilon": 0.1, "stepSize": 0.02, "steps": 1, "randomStart": true, "batchSize": 8, "maxSamples": 8}},
        "seed": 0, "device": "cpu", "threads": null, "outDir": "{out_dir}", "initCheckpoint": null,
        "extra": {extra}
    }}"#
    );
    TrainConfig::from_json(&json).unwrap()
}

struct Digits {
    images: Vec<u8>,
    labels: Vec<u8>,
}

fn digits(n: usize, salt: usize) -> Digits {
    Digits {
        images: (0..n * 784)
            .map(|i| ((i * 7919 + salt) % 256) as u8)
            .collect(),
        labels: (0..n).map(|i| ((i + salt) % 10) as u8).collect(),
    }
}

fn view(d: &Digits) -> TrainData<'_> {
    TrainData {
        train_images: &d.images,
        train_labels: &d.labels,
        test_images: &d.images,
        test_labels: &d.labels,
        validation: None,
        shape: [1, 28, 28],
    }
}

fn extra_digits(dir: &Path, m: usize) -> PathBuf {
    let e = digits(m, 13);
    let path = dir.join("digits.stextra");
    write_stextra(&path, &header(m, [1, 28, 28], "NCHW"), &e.images, &e.labels);
    path
}

fn weights(path: &Path) -> Vec<(String, Vec<u8>)> {
    let (named, _) = st_core::checkpoint::read_named(path).unwrap();
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
fn a_mixed_run_is_deterministic_resumes_bit_for_bit_and_differs_from_an_unmixed_one() {
    let _rng = seeded(0);
    let d = digits(40, 0);
    let dir = tmp_dir("run");
    let extra = extra_digits(&dir, 64);
    let run = |name: &str, x: Option<(&Path, f64)>| {
        let out = dir.join(name);
        let cfg = config(out.to_str().unwrap(), 3, x);
        let s = train(
            &cfg,
            &view(&d),
            &mut VecSink::default(),
            &AtomicBool::new(false),
        )
        .unwrap();
        assert_eq!(s.status, RunStatus::Completed);
        weights(&out.join("last.safetensors"))
    };
    let a = run("a", Some((&extra, 0.5)));
    let b = run("b", Some((&extra, 0.5)));
    assert!(a == b, "same seed, same extra data: the same weights");
    let plain = run("plain", None);
    assert!(a != plain, "the extra images change the training");

    // Stopped once epoch 1 is committed, then resumed: the same weights as run "a".
    let out = dir.join("stopped");
    let mut cfg = config(out.to_str().unwrap(), 3, Some((&extra, 0.5)));
    let cancel = AtomicBool::new(false);
    let mut sink = |e: Event| {
        if let Event::Checkpoint { epoch: 1, .. } = e {
            cancel.store(true, Ordering::Relaxed);
        }
    };
    let stopped = train(&cfg, &view(&d), &mut sink, &cancel).unwrap();
    assert_eq!(stopped.status, RunStatus::Cancelled);
    assert_eq!(stopped.epochs_completed, 1);
    let resume_file = out.join("resume.safetensors").display().to_string();
    // Other extra data (another fraction) than the run's is refused.
    let mut other = cfg.clone();
    other.extra.as_mut().unwrap().fraction = 0.25;
    other.resume = Some(resume_file.clone());
    let e = train(
        &other,
        &view(&d),
        &mut VecSink::default(),
        &AtomicBool::new(false),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("extra data") && e.contains("fraction 0.5"),
        "{e}"
    );
    let mut none = other.clone();
    none.extra = None;
    let e = train(
        &none,
        &view(&d),
        &mut VecSink::default(),
        &AtomicBool::new(false),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("the config has none"), "{e}");

    cfg.resume = Some(resume_file);
    let mut events = VecSink::default();
    let resumed = train(&cfg, &view(&d), &mut events, &AtomicBool::new(false)).unwrap();
    assert!(matches!(
        events.0[0],
        Event::Start {
            start_epoch: 2,
            steps_per_epoch: 3,
            ..
        }
    ));
    assert_eq!(resumed.epochs_completed, 3);
    assert!(
        weights(&out.join("last.safetensors")) == a,
        "resumed bit for bit"
    );
}

#[test]
fn a_run_refuses_extra_data_that_does_not_fit_before_it_starts() {
    let _rng = seeded(0);
    let d = digits(40, 0);
    let dir = tmp_dir("refuse");
    let wrong = dir.join("rgb.stextra");
    write_stextra(
        &wrong,
        &header(2, [3, 28, 28], "NHWC"),
        &pixels(2, [3, 28, 28], true),
        &[0, 1],
    );
    let cfg = config(dir.join("out").to_str().unwrap(), 1, Some((&wrong, 0.5)));
    let e = st_core::train::preflight(&cfg, [1, 28, 28], view(&d).sizes(), false)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&wrong.display().to_string()) && e.contains("3×28×28"),
        "{e}"
    );
    // A fraction that puts no extra image in a batch of 16 is a config error.
    let extra = extra_digits(&dir, 4);
    let mut cfg = config(dir.join("out").to_str().unwrap(), 1, Some((&extra, 0.5)));
    cfg.extra.as_mut().unwrap().fraction = 0.05;
    let e = cfg.validate().unwrap_err().to_string();
    assert!(
        e.contains("extra.fraction") && e.contains("at least 1"),
        "{e}"
    );
    assert!(!dir.join("out").exists(), "nothing written");
}
