//! Progress during a run's evaluations, stops that come while it evaluates,
//! and the best marker on ties, on tiny synthetic data (as train_loop.rs).

mod common;
use common::seeded;
use st_core::checkpoint;
use st_core::config::TrainConfig;
use st_core::events::{CheckpointKind, EvalPhase, EvalSplit, Event, RunStatus, VecSink};
use st_core::train::{train, TrainData};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

const NATURAL: &str = r#"{"name": "natural"}"#;

/// A run of `epochs` with evaluations of 12 images in batches of 5 (three
/// batches: 5, 10, 12).
fn config(out_dir: &str, epochs: usize) -> TrainConfig {
    let json = format!(
        r#"{{
        "model": "small_cnn", "numClasses": 10, "method": {NATURAL}, "epochs": {epochs}, "batchSize": 16,
        "optimizer": {{"lr": 0.01, "momentum": 0.9, "weightDecay": 0.0005, "nesterov": false, "milestones": [], "gamma": 0.1}},
        "augment": {{"randomCropPadding": 2, "horizontalFlip": false}},
        "eval": {{"epsilon": 0.1, "stepSize": 0.02, "steps": 2, "randomStart": true, "batchSize": 5, "maxSamples": 12}},
        "seed": 0, "device": "cpu", "threads": null, "outDir": "{out_dir}", "initCheckpoint": null
    }}"#
    );
    TrainConfig::from_json(&json).unwrap()
}

struct Data {
    images: Vec<u8>,
    labels: Vec<u8>,
}

fn data(n: usize, salt: usize) -> Data {
    Data {
        images: (0..n * 784)
            .map(|i| (((i + salt) * 7919) % 256) as u8)
            .collect(),
        labels: (0..n).map(|i| ((i + salt) % 10) as u8).collect(),
    }
}

/// Training and test on `d`, selection on `val` when given.
fn view<'a>(d: &'a Data, val: Option<&'a Data>) -> TrainData<'a> {
    TrainData {
        train_images: &d.images,
        train_labels: &d.labels,
        test_images: &d.images,
        test_labels: &d.labels,
        validation: val.map(|v| (&v.images[..], &v.labels[..])),
        shape: [1, 28, 28],
    }
}

fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("st-core-progress-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// (phase, epoch, split, done, total, elapsed) of every progress event.
type Progress = (EvalPhase, usize, EvalSplit, i64, i64, f64);

fn progress_of(events: &[Event]) -> Vec<Progress> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::EvalProgress {
                phase,
                epoch,
                split,
                done,
                total,
                elapsed_sec,
            } => Some((*phase, *epoch, *split, *done, *total, *elapsed_sec)),
            _ => None,
        })
        .collect()
}

#[test]
fn every_evaluation_reports_its_progress_from_zero_to_its_total_at_a_bounded_rate() {
    let _rng = seeded(0);
    let dir = tmp_dir("events");
    let cfg = config(dir.to_str().unwrap(), 2);
    let (d, val) = (data(40, 0), data(20, 3));
    let mut sink = VecSink::default();
    let summary = train(
        &cfg,
        &view(&d, Some(&val)),
        &mut sink,
        &AtomicBool::new(false),
    )
    .unwrap();
    assert_eq!(summary.status, RunStatus::Completed);
    let events = sink.0;
    match &events[0] {
        Event::Start {
            eval_epochs,
            final_test_size,
            test_size,
            ..
        } => {
            assert_eq!(eval_epochs, &vec![1, 2]);
            assert_eq!((*test_size, *final_test_size), (12, Some(12)));
        }
        e => panic!("first event {e:?}"),
    }
    // The evaluations, in order, each as the progress events before its result.
    let mut evaluations: Vec<(Vec<Progress>, st_core::events::EvalResult)> = Vec::new();
    let mut pending = Vec::new();
    for e in &events {
        match e {
            Event::EvalProgress { .. } => pending.extend(progress_of(std::slice::from_ref(e))),
            Event::Eval(r) => evaluations.push((std::mem::take(&mut pending), r.clone())),
            Event::Step { .. } | Event::Epoch { .. } => {
                assert!(pending.is_empty(), "progress without a result")
            }
            _ => {}
        }
    }
    assert!(pending.is_empty());
    let best_epoch = summary.best.as_ref().unwrap().epoch;
    let expected = [
        (EvalPhase::Epoch, 1, EvalSplit::Validation),
        (EvalPhase::Epoch, 2, EvalSplit::Validation),
        (EvalPhase::FinalTest, best_epoch, EvalSplit::Test),
    ];
    assert_eq!(evaluations.len(), expected.len());
    for ((progress, result), (phase, epoch, split)) in evaluations.iter().zip(expected) {
        assert_eq!((result.epoch, result.split), (epoch, split));
        assert!(progress
            .iter()
            .all(|p| (p.0, p.1, p.2, p.4) == (phase, epoch, split, 12)));
        // Starts at 0, ends at the total, never goes back; done counts are
        // batch ends (5, 10, 12).
        let done: Vec<i64> = progress.iter().map(|p| p.3).collect();
        assert_eq!(done.first(), Some(&0), "{done:?}");
        assert_eq!(done.last(), Some(&12), "{done:?}");
        assert!(done.windows(2).all(|w| w[0] < w[1]), "{done:?}");
        assert!(done.iter().all(|d| [0, 5, 10, 12].contains(d)), "{done:?}");
        // At most four a second, besides the last batch's, which always goes.
        let times: Vec<f64> = progress.iter().map(|p| p.5).collect();
        assert!(times.windows(2).all(|w| w[1] >= w[0]));
        let paced = &times[..times.len() - 1];
        assert!(paced.windows(2).all(|w| w[1] - w[0] >= 0.25), "{times:?}");
        assert!(*times.last().unwrap() <= result.seconds + 1e-6);
    }
    // With a schedule, the start names the evaluated epochs.
    let mut cfg = config(tmp_dir("schedule").to_str().unwrap(), 3);
    cfg.eval_schedule.every = 2;
    let mut sink = VecSink::default();
    train(&cfg, &view(&d, None), &mut sink, &AtomicBool::new(false)).unwrap();
    assert!(matches!(
        &sink.0[0],
        Event::Start { eval_epochs, final_test_size: None, .. } if eval_epochs == &vec![2, 3]
    ));
    assert_eq!(
        progress_of(&sink.0)
            .iter()
            .map(|p| p.1)
            .collect::<std::collections::BTreeSet<_>>(),
        [2, 3].into()
    );
}

/// Runs `cfg` and raises the stop flag at the first progress event that
/// `when` picks.
fn run_stopping_at(
    cfg: &TrainConfig,
    input: &TrainData,
    when: impl Fn(&Progress) -> bool + Sync,
) -> (st_core::events::TrainSummary, Vec<Event>) {
    let cancel = AtomicBool::new(false);
    let mut events = Vec::new();
    let mut sink = |e: Event| {
        if progress_of(std::slice::from_ref(&e))
            .first()
            .is_some_and(&when)
        {
            cancel.store(true, Ordering::Relaxed);
        }
        events.push(e);
    };
    let summary = train(cfg, input, &mut sink, &cancel).unwrap();
    (summary, events)
}

/// The run ended cancelled, its last checkpoint `interrupted` holding the
/// weights after `trained` epochs, announced just before the end.
fn assert_stopped_with_a_checkpoint(
    summary: &st_core::events::TrainSummary,
    events: &[Event],
    trained: usize,
) {
    assert_eq!(summary.status, RunStatus::Cancelled);
    let path = summary.last_checkpoint.as_ref().unwrap();
    assert!(path.ends_with("interrupted.safetensors"), "{path}");
    let info = checkpoint::inspect(std::path::Path::new(path)).unwrap();
    assert_eq!(info.epoch, Some(trained));
    assert!(matches!(
        events.iter().rev().nth(1),
        Some(Event::Checkpoint {
            kind: CheckpointKind::Interrupted,
            ..
        })
    ));
    assert!(matches!(events.last(), Some(Event::Done(s)) if s == summary));
}

#[test]
fn a_stop_during_the_last_epochs_evaluation_ends_the_run_cancelled() {
    let _rng = seeded(0);
    let d = data(40, 0);
    // Before its first batch: the evaluation is abandoned, epoch 2 is not committed.
    let dir = tmp_dir("stop-eval-start");
    let cfg = config(dir.to_str().unwrap(), 2);
    let (summary, events) = run_stopping_at(&cfg, &view(&d, None), |p| p.1 == 2 && p.3 == 0);
    // The interrupted weights are epoch 2's: its training had ended.
    assert_stopped_with_a_checkpoint(&summary, &events, 2);
    assert_eq!(summary.epochs_completed, 1);
    assert_eq!(summary.last.as_ref().map(|r| r.epoch), Some(1));
    // After its last batch: the evaluation and epoch 2 are complete, but the
    // run was asked to stop and says so.
    let dir = tmp_dir("stop-eval-end");
    let cfg = config(dir.to_str().unwrap(), 2);
    let (summary, events) = run_stopping_at(&cfg, &view(&d, None), |p| p.1 == 2 && p.3 == p.4);
    assert_stopped_with_a_checkpoint(&summary, &events, 2);
    assert_eq!(summary.epochs_completed, 2);
    assert_eq!(summary.last.as_ref().map(|r| r.epoch), Some(2));
    assert!(dir.join("resume.safetensors").exists());
}

#[test]
fn a_stop_during_the_final_test_ends_the_run_cancelled_and_resuming_runs_the_test() {
    let _rng = seeded(0);
    let (d, val) = (data(40, 0), data(20, 3));
    let full = {
        let dir = tmp_dir("final-full");
        let cfg = config(dir.to_str().unwrap(), 2);
        let s = train(
            &cfg,
            &view(&d, Some(&val)),
            &mut VecSink::default(),
            &AtomicBool::new(false),
        )
        .unwrap();
        assert_eq!(s.status, RunStatus::Completed);
        s
    };
    let key = |r: &Option<st_core::events::EvalResult>| {
        r.as_ref()
            .map(|r| (r.epoch, r.split, r.clean_acc, r.robust_acc))
    };
    for (name, at_end) in [("final-start", false), ("final-end", true)] {
        let dir = tmp_dir(name);
        let mut cfg = config(dir.to_str().unwrap(), 2);
        let (summary, events) = run_stopping_at(&cfg, &view(&d, Some(&val)), |p| {
            p.0 == EvalPhase::FinalTest && (p.3 == p.4) == at_end
        });
        assert_stopped_with_a_checkpoint(&summary, &events, 2);
        assert_eq!(summary.epochs_completed, 2, "{name}");
        assert_eq!(key(&summary.best), key(&full.best), "{name}");
        // A test that finished is reported; one cut short is not.
        assert_eq!(summary.test.is_some(), at_end, "{name}");
        // Resuming has no epoch left to train: it runs the final test.
        cfg.resume = Some(dir.join("resume.safetensors").display().to_string());
        let mut sink = VecSink::default();
        let resumed = train(
            &cfg,
            &view(&d, Some(&val)),
            &mut sink,
            &AtomicBool::new(false),
        )
        .unwrap();
        assert_eq!(resumed.status, RunStatus::Completed, "{name}");
        assert_eq!(key(&resumed.test), key(&full.test), "{name}");
        assert!(progress_of(&sink.0)
            .iter()
            .all(|p| p.0 == EvalPhase::FinalTest));
    }
}

#[test]
fn a_tie_is_still_selected_but_marked_as_a_tie_not_an_improvement() {
    let _rng = seeded(0);
    let dir = tmp_dir("tie");
    let mut cfg = config(dir.to_str().unwrap(), 3);
    // Weights that cannot move in float32 (no BatchNorm in small_cnn) and an
    // attack of radius 0: every epoch evaluates to the same accuracy.
    cfg.optimizer.lr = 1e-12;
    cfg.eval.epsilon = 0.0;
    let d = data(40, 0);
    let mut sink = VecSink::default();
    let summary = train(&cfg, &view(&d, None), &mut sink, &AtomicBool::new(false)).unwrap();
    let robust: Vec<f64> = sink
        .0
        .iter()
        .filter_map(|e| match e {
            Event::Eval(r) => Some(r.robust_acc),
            _ => None,
        })
        .collect();
    assert_eq!(robust.len(), 3);
    assert!(robust.iter().all(|r| *r == robust[0]), "{robust:?}");
    let best: Vec<(usize, bool)> = sink
        .0
        .iter()
        .filter_map(|e| match e {
            Event::Checkpoint {
                epoch,
                kind: CheckpointKind::Best,
                tied,
                ..
            } => Some((*epoch, *tied)),
            _ => None,
        })
        .collect();
    assert_eq!(best, vec![(1, false), (2, true), (3, true)]);
    // Selection is unchanged: a tie goes to the later epoch.
    assert_eq!(summary.best.unwrap().epoch, 3);
    // Only `best` checkpoints can be ties.
    assert!(sink.0.iter().all(|e| !matches!(
        e,
        Event::Checkpoint {
            kind: CheckpointKind::Last | CheckpointKind::Interrupted,
            tied: true,
            ..
        }
    )));
}
