//! Data-parallel training over c10d's Gloo on loopback: each test spawns
//! this test binary twice as ranks 0 and 1 (a `child_*` test selected by
//! name, with RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT set as torchrun sets
//! them) and checks how both end. The `child_*` tests do nothing unless
//! ST_DDP_TEST_ROLE names them.

mod common;

use st_core::config::{OptimizerConfig, TrainConfig};
use st_core::distributed::{shard, DataParallel};
use st_core::events::{Event, RunStatus};
use st_core::methods::cross_entropy;
use st_core::models::{Branches, Classifier, Mode};
use st_core::optim::Sgd;
use st_core::train::{train, TrainData};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};
use tch::{Device, Kind, Tensor};

const ROLE: &str = "ST_DDP_TEST_ROLE";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `rank` of 2 running the child test `role`.
fn spawn(role: &str, rank: usize, port: u16, extra: &[(&str, String)]) -> Child {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args([role, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env("RANK", rank.to_string())
        .env("LOCAL_RANK", rank.to_string())
        .env("WORLD_SIZE", "2")
        .env("MASTER_ADDR", "127.0.0.1")
        .env("MASTER_PORT", port.to_string())
        .env("OMP_NUM_THREADS", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// Waits for `child` at most `limit`; returns (success, output).
fn finish(mut child: Child, limit: Duration) -> (bool, String) {
    let start = Instant::now();
    loop {
        if let Some(_status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            return (out.status.success(), text);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "a rank ran past {limit:?}:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run_pair(role: &str, extra: &[(&str, String)], limit: Duration) -> [(bool, String); 2] {
    let port = free_port();
    let a = spawn(role, 0, port, extra);
    let b = spawn(role, 1, port, extra);
    [finish(a, limit), finish(b, limit)]
}

fn is_child(role: &str) -> bool {
    std::env::var(ROLE).is_ok_and(|r| r == role)
}

fn join() -> DataParallel {
    DataParallel::join(Device::Cpu).unwrap().unwrap().0
}

// ---- collectives ------------------------------------------------------

#[test]
fn two_ranks_sum_broadcast_and_meet_at_a_barrier() {
    for (rank, (ok, out)) in run_pair("child_collectives", &[], Duration::from_secs(30))
        .iter()
        .enumerate()
    {
        assert!(ok, "rank {rank} failed:\n{out}");
        assert!(out.contains("collectives ok"), "rank {rank}:\n{out}");
    }
}

#[test]
fn child_collectives() {
    if !is_child("child_collectives") {
        return;
    }
    let dp = join();
    let r = dp.rank() as f64;
    assert_eq!(dp.world_size(), 2);
    // Several tensors of several kinds and shapes in one call.
    let a = Tensor::from_slice(&[1.0f32, 2.0, 3.0]) * (r + 1.0);
    let b = Tensor::from_slice(&[10.0f64]).view([1, 1]) * (r + 1.0);
    dp.group
        .all_reduce_sum(&[a.shallow_clone(), b.shallow_clone()])
        .unwrap();
    assert_eq!(Vec::<f32>::try_from(&a).unwrap(), vec![3.0, 6.0, 9.0]);
    assert_eq!(b.double_value(&[0, 0]), 30.0);
    let c = Tensor::from_slice(&[r as f32, r as f32]);
    dp.group.broadcast(&[c.shallow_clone()], 1).unwrap();
    assert_eq!(Vec::<f32>::try_from(&c).unwrap(), vec![1.0, 1.0]);
    assert!(dp.any(dp.rank() == 1, Device::Cpu).unwrap());
    assert!(!dp.any(false, Device::Cpu).unwrap());
    dp.group.barrier().unwrap();
    println!("collectives ok");
}

// ---- gradient averaging = one process on the concatenated batch --------

const STEPS: [i64; 4] = [12, 12, 11, 12];

fn sgd_config() -> OptimizerConfig {
    serde_json::from_str(
        r#"{"lr": 0.05, "momentum": 0.9, "weightDecay": 0.0005, "nesterov": false, "milestones": [], "gamma": 0.1}"#,
    )
    .unwrap()
}

fn params(vs: &tch::nn::VarStore) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn two_ranks_train_as_one_process_on_the_concatenated_batch() {
    for (rank, (ok, out)) in run_pair("child_equivalence", &[], Duration::from_secs(60))
        .iter()
        .enumerate()
    {
        assert!(ok, "rank {rank} failed:\n{out}");
        assert!(
            out.contains("equivalent after 4 steps"),
            "rank {rank}:\n{out}"
        );
    }
}

#[test]
fn child_equivalence() {
    if !is_child("child_equivalence") {
        return;
    }
    let dp = join();
    // Different initial weights per rank: the broadcast makes them rank 0's.
    tch::manual_seed(7 + dp.rank() as i64);
    let (vs, net) = common::small_cnn_no_dropout();
    dp.broadcast_variables(&vs).unwrap();
    // The single-process reference starts from the same (broadcast) weights.
    let (ref_vs, ref_net) = common::small_cnn_no_dropout();
    tch::no_grad(|| {
        for ((_, r), (_, v)) in params(&ref_vs).iter().zip(params(&vs)) {
            r.shallow_clone().copy_(&v);
        }
    });
    // The same data on both ranks (same seed), as a shared dataset.
    tch::manual_seed(11);
    let total: i64 = STEPS.iter().sum();
    let x = Tensor::rand([total, 1, 28, 28], (Kind::Float, Device::Cpu));
    let y = Tensor::randint(10, [total], (Kind::Int64, Device::Cpu));
    let mut opt = Sgd::new(&vs, &sgd_config());
    let mut ref_opt = Sgd::new(&ref_vs, &sgd_config());
    let mut start = 0;
    for (step, &global) in STEPS.iter().enumerate() {
        // This rank: its part of the global batch, gradients averaged.
        let (offset, len) = shard(global, dp.rank(), 2);
        let xs = x.narrow(0, start + offset, len);
        let ys = y.narrow(0, start + offset, len);
        let loss = cross_entropy(&net.forward(&xs, &Mode::Train(Branches::single(true))), &ys);
        opt.zero_grad();
        loss.backward();
        dp.average_gradients(&opt.grads(), len as f64 / global as f64)
            .unwrap();
        opt.step();
        // The reference: one process, the whole global batch.
        let xg = x.narrow(0, start, global);
        let yg = y.narrow(0, start, global);
        ref_opt.backward_step(&cross_entropy(
            &ref_net.forward(&xg, &Mode::Train(Branches::single(true))),
            &yg,
        ));
        for ((name, a), (_, b)) in params(&vs).iter().zip(params(&ref_vs)) {
            let err = common::rel_err(a, &b);
            assert!(err < 1e-5, "step {}: {name} differs by {err:e}", step + 1);
        }
        // And the update was not trivially zero.
        start += global;
    }
    let moved = params(&vs)
        .iter()
        .map(|(_, t)| t.abs().sum(Kind::Double).double_value(&[]))
        .sum::<f64>();
    assert!(moved.is_finite() && moved > 0.0);
    println!("equivalent after {} steps", STEPS.len());
}

// ---- the training loop ------------------------------------------------

const TRAIN_CONFIG: &str = r#"{
    "model": "small_cnn", "numClasses": 10, "method": {"name": "natural"}, "epochs": 2, "batchSize": 8,
    "optimizer": {"lr": 0.01, "momentum": 0.9, "weightDecay": 0.0005, "nesterov": false, "milestones": [], "gamma": 0.1},
    "augment": {"randomCropPadding": 2, "horizontalFlip": true},
    "eval": {"epsilon": 0.1, "stepSize": 0.02, "steps": 1, "randomStart": true, "batchSize": 8, "maxSamples": 8},
    "seed": 3, "device": "cpu", "threads": 1, "outDir": "OUT", "initCheckpoint": null
}"#;

fn out_dir(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("st-ddp-{tag}"))
}

fn train_data(n: usize) -> (Vec<u8>, Vec<u8>) {
    (
        (0..n * 784).map(|i| ((i * 7919) % 256) as u8).collect(),
        (0..n).map(|i| (i % 10) as u8).collect(),
    )
}

fn child_train_run(epochs: usize) -> (st_core::Result<st_core::events::TrainSummary>, Vec<Event>) {
    let dir = PathBuf::from(std::env::var("ST_DDP_OUT").unwrap());
    std::fs::create_dir_all(&dir).unwrap();
    let resume = match std::env::var("ST_DDP_RESUME") {
        Ok(p) => format!("\"{p}\""),
        Err(_) => "null".into(),
    };
    let json = TRAIN_CONFIG
        .replace("OUT", dir.to_str().unwrap())
        .replace("\"epochs\": 2", &format!("\"epochs\": {epochs}"))
        .replace(
            "\"initCheckpoint\": null",
            &format!("\"initCheckpoint\": null, \"resume\": {resume}"),
        );
    let cfg = TrainConfig::from_json(&json).unwrap();
    let (images, labels) = train_data(40);
    let data = TrainData {
        train_images: &images,
        train_labels: &labels,
        test_images: &images,
        test_labels: &labels,
        validation: None,
        shape: [1, 28, 28],
    };
    // A marker file once the first step is done (the kill test waits for it).
    let marker = dir.with_extension("started");
    let mut events = Vec::new();
    // ST_DDP_STOP_AFTER_STEP: this rank alone asks to stop after that step.
    let stop_after: Option<usize> = std::env::var("ST_DDP_STOP_AFTER_STEP")
        .ok()
        .map(|v| v.parse().unwrap());
    let cancel = AtomicBool::new(false);
    let mut sink = |e: Event| {
        if let (Event::Step { step, .. }, Some(at)) = (&e, stop_after) {
            if *step >= at {
                cancel.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        if matches!(e, Event::Step { .. }) && !marker.exists() {
            std::fs::write(&marker, b"").unwrap();
        }
        events.push(e);
    };
    let result = train(&cfg, &data, &mut sink, &cancel);
    (result, events)
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Runs `child_train` on two ranks writing under `base/rank{r}`, training
/// `epochs` in all (resuming from `resume` if given); returns their output.
fn train_pair(base: &Path, epochs: usize, resume: Option<&Path>) -> [String; 2] {
    let port = free_port();
    let spawn_rank = |rank: usize| {
        let mut env = vec![
            (
                "ST_DDP_OUT",
                base.join(format!("rank{rank}")).display().to_string(),
            ),
            ("ST_DDP_EPOCHS", epochs.to_string()),
        ];
        if let Some(r) = resume {
            env.push(("ST_DDP_RESUME", r.display().to_string()));
        }
        spawn("child_train", rank, port, &env)
    };
    let (a, b) = (spawn_rank(0), spawn_rank(1));
    let outs = [
        finish(a, Duration::from_secs(90)),
        finish(b, Duration::from_secs(90)),
    ];
    outs.map(|(ok, out)| {
        assert!(ok, "a rank failed:\n{out}");
        out
    })
}

fn weights(path: &Path) -> Vec<(String, Tensor)> {
    let mut v = Tensor::read_safetensors(path).unwrap();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn the_training_loop_runs_on_two_ranks_rank_0_alone_writes_and_resume_needs_as_many() {
    let base = out_dir(&format!("loop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let full = base.join("full");
    let outs = train_pair(&full, 2, None);
    for (rank, out) in outs.iter().enumerate() {
        // 40 images in global batches of 2 × 8: 16 + 16 + 8.
        assert!(
            out.contains("steps per epoch 3, evals"),
            "rank {rank}:\n{out}"
        );
    }
    let epoch_lines = |out: &str| -> Vec<String> {
        out.lines()
            .filter(|l| l.starts_with("epoch "))
            .map(String::from)
            .collect()
    };
    assert_eq!(epoch_lines(&outs[0]).len(), 2, "{}", outs[0]);
    assert_eq!(epoch_lines(&outs[0]), epoch_lines(&outs[1]));
    assert!(outs[0].contains("evals 2"), "{}", outs[0]);
    assert!(outs[1].contains("evals 0"), "{}", outs[1]);
    let written = files_in(&full.join("rank0"));
    for f in ["best.safetensors", "last.safetensors", "resume.safetensors"] {
        assert!(written.contains(&f.to_string()), "rank 0 wrote {written:?}");
    }
    assert!(
        files_in(&full.join("rank1")).is_empty(),
        "rank 1 wrote files"
    );

    // One epoch, then resumed for the second by two ranks: the same weights
    // as the uninterrupted run, bit for bit.
    let part = base.join("part");
    train_pair(&part, 1, None);
    let resume_file = part.join("rank0").join("resume.safetensors");
    train_pair(&part, 2, Some(&resume_file));
    let a = weights(&full.join("rank0/last.safetensors"));
    let b = weights(&part.join("rank0/last.safetensors"));
    assert_eq!(a.len(), b.len());
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert!(x.equal(y), "{name} differs after resuming");
    }

    // Resumed by one process: refused, naming both counts.
    let one = base.join("one");
    let mut cfg =
        TrainConfig::from_json(&TRAIN_CONFIG.replace("OUT", one.to_str().unwrap())).unwrap();
    cfg.resume = Some(resume_file.display().to_string());
    let (images, labels) = train_data(40);
    let data = TrainData {
        train_images: &images,
        train_labels: &labels,
        test_images: &images,
        test_labels: &labels,
        validation: None,
        shape: [1, 28, 28],
    };
    let mut sink = |_: Event| {};
    let e = train(&cfg, &data, &mut sink, &AtomicBool::new(false))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("trained by 2 process(es) and is resumed by 1"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn a_stop_asked_on_one_rank_stops_both_before_the_same_step() {
    let base = out_dir(&format!("stop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let port = free_port();
    let spawn_rank = |rank: usize| {
        let mut env = vec![
            (
                "ST_DDP_OUT",
                base.join(format!("rank{rank}")).display().to_string(),
            ),
            ("ST_DDP_EPOCHS", "2".to_string()),
            ("ST_DDP_EXPECT_STOP", "1".to_string()),
        ];
        // Rank 1 alone is asked to stop, after the first step.
        if rank == 1 {
            env.push(("ST_DDP_STOP_AFTER_STEP", "1".to_string()));
        }
        spawn("child_train", rank, port, &env)
    };
    let (a, b) = (spawn_rank(0), spawn_rank(1));
    for (rank, (ok, out)) in [
        finish(a, Duration::from_secs(60)),
        finish(b, Duration::from_secs(60)),
    ]
    .iter()
    .enumerate()
    {
        assert!(ok, "rank {rank} failed:\n{out}");
        // Both stop within epoch 1 (had rank 0 gone on, it would wait for
        // rank 1 at the next step's vote and fail when rank 1 exits).
        assert!(
            out.contains("status Cancelled after 0 epochs"),
            "rank {rank}:\n{out}"
        );
    }
    assert_eq!(
        files_in(&base.join("rank0")),
        vec!["interrupted.safetensors"]
    );
    assert!(files_in(&base.join("rank1")).is_empty());
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn child_train() {
    if !is_child("child_train") {
        return;
    }
    let epochs: usize = std::env::var("ST_DDP_EPOCHS").unwrap().parse().unwrap();
    let (result, events) = child_train_run(epochs);
    let summary = result.unwrap();
    if std::env::var("ST_DDP_EXPECT_STOP").is_err() {
        assert_eq!(summary.status, RunStatus::Completed);
        assert_eq!(summary.epochs_completed, epochs);
    }
    let steps_run = events
        .iter()
        .filter(|e| matches!(e, Event::Step { .. }))
        .count();
    println!(
        "status {:?} after {} epochs, {steps_run} step events",
        summary.status, summary.epochs_completed
    );
    // The epoch figures, summed over the ranks: the same on both.
    for e in &events {
        if let Event::Epoch {
            epoch,
            loss,
            train_acc,
            ..
        } = e
        {
            println!("epoch {epoch}: loss {loss:.12} acc {train_acc:.12}");
        }
    }
    let steps = events.iter().find_map(|e| match e {
        Event::Start {
            steps_per_epoch, ..
        } => Some(*steps_per_epoch),
        _ => None,
    });
    let evals = events
        .iter()
        .filter(|e| matches!(e, Event::Eval(_)))
        .count();
    println!("steps per epoch {}, evals {evals}", steps.unwrap());
}

// ---- failures ---------------------------------------------------------

#[test]
fn a_killed_rank_ends_the_other_with_a_clear_error() {
    let base = out_dir(&format!("kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let port = free_port();
    let env = |rank: usize| {
        [(
            "ST_DDP_OUT",
            base.join(format!("r{rank}")).display().to_string(),
        )]
    };
    let survivor = spawn("child_killed", 0, port, &env(0));
    let mut victim = spawn("child_killed", 1, port, &env(1));
    // Once rank 1 has trained a step, kill it outright (SIGKILL).
    let marker = base.join("r1").with_extension("started");
    let waiting = Instant::now();
    while !marker.exists() {
        assert!(
            waiting.elapsed() < Duration::from_secs(60),
            "rank 1 never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    victim.kill().unwrap();
    let _ = victim.wait();
    let killed_at = Instant::now();
    let (ok, out) = finish(survivor, Duration::from_secs(60));
    println!("rank 0 (survivor):\n{out}");
    assert!(ok, "rank 0 did not report the failure as expected:\n{out}");
    assert!(
        out.contains("rank 0 ended: data-parallel: rank 0 of 2:"),
        "{out}"
    );
    assert!(killed_at.elapsed() < Duration::from_secs(30));
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn child_killed() {
    if !is_child("child_killed") {
        return;
    }
    // Long enough that rank 1 is killed mid-run.
    let (result, _) = child_train_run(1000);
    let e = result.expect_err("training went on without rank 1");
    println!("rank 0 ended: {e}");
}

#[test]
fn a_rank_that_stops_answering_fails_the_others_after_the_timeout() {
    let env = [("ST_DIST_TIMEOUT", "5".to_string())];
    let [(ok0, out0), (ok1, out1)] = run_pair("child_silent", &env, Duration::from_secs(40));
    println!("rank 0:\n{out0}");
    assert!(ok0, "rank 0:\n{out0}");
    assert!(ok1, "rank 1:\n{out1}");
    assert!(out0.contains("timed out after"), "{out0}");
}

#[test]
fn child_silent() {
    if !is_child("child_silent") {
        return;
    }
    let dp = join();
    let t = Tensor::ones([4], (Kind::Float, Device::Cpu));
    dp.group.all_reduce_sum(&[t.shallow_clone()]).unwrap();
    if dp.rank() == 1 {
        // Alive but silent past rank 0's timeout, then gone.
        std::thread::sleep(Duration::from_secs(9));
        return;
    }
    let started = Instant::now();
    let e = dp.group.all_reduce_sum(&[t]).unwrap_err().to_string();
    let waited = started.elapsed();
    assert!(e.contains("rank 0 of 2: all-reduce failed"), "{e}");
    assert!(
        waited >= Duration::from_secs(4) && waited < Duration::from_secs(8),
        "{waited:?}: {e}"
    );
    println!("timed out after {waited:?}: {e}");
}
