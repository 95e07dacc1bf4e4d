//! The training loop: SGD with momentum and weight decay, a piecewise learning
//! rate, per-epoch held-out evaluation (clean + PGD), a checkpoint each epoch
//! plus the best-by-PGD one, typed events, and cancellation within one step
//! (or one evaluation batch).
//!
//! One job per file, imported only from here down: `preflight` (the inputs
//! and their checks), `epoch` (one epoch's pass, which runs `step`, one
//! optimisation step), `evaluation` (the evaluations with their progress, and
//! model selection), `checkpoints` (the files and the end of a stopped run),
//! `pacing` (how often progress events go out). This file sets a run up and
//! runs its epochs in order, each committed by the resume file.

mod checkpoints;
mod epoch;
mod evaluation;
mod pacing;
mod preflight;
mod step;

pub use preflight::{preflight, DataSizes, TrainData};

use crate::checkpoint;
use crate::config::{EmaEvalWith, TrainConfig};
use crate::data::Split;
use crate::device;
use crate::ema::Ema;
use crate::error::Result;
use crate::eval::eval_samples;
use crate::events::{
    CheckpointKind, EvalPhase, EvalSplit, Event, EventSink, RunStatus, TrainSummary,
};
use crate::methods::build_method;
use crate::models::build_model;
use crate::optim::Sgd;
use crate::precision::{self, GradScaler, Precise};
use crate::resume;
use crate::sampler::{self, MixedSampler};
use checkpoints::Checkpoints;
use epoch::{train_epoch, training_seed, EpochRun, Trained};
use evaluation::{run_evaluation, select, Evaluation, Selection};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// The net as the evaluation runs it: the run's layout, `eval.precision`
/// (f32 unless asked: attacks in bf16/f16 understate robustness).
fn eval_net<'a>(cfg: &TrainConfig, net: &'a dyn crate::models::Classifier) -> Precise<'a> {
    Precise {
        net,
        precision: cfg.eval.precision,
        format: cfg.memory_format,
    }
}

/// Runs a whole training job. Returns the summary (also emitted as `Done`).
/// A stop requested before the run's end (`cancel`), whether during an
/// epoch, its evaluation or the final test, saves an `interrupted`
/// checkpoint and ends the run with status `Cancelled`.
pub fn train(
    cfg: &TrainConfig,
    data: &TrainData,
    sink: &mut dyn EventSink,
    cancel: &AtomicBool,
) -> Result<TrainSummary> {
    let device = preflight(cfg, data.shape, data.sizes(), false)?;
    if cfg.precision == crate::config::Precision::Tf32 {
        precision::allow_tf32();
    }
    let started = Instant::now();
    if let Some(t) = cfg.threads {
        tch::set_num_threads(t);
    }
    tch::manual_seed(cfg.seed);
    let split = |name: &str, images: &[u8], labels: &[u8]| {
        Split::from_bytes(name, images, labels, data.shape, cfg.num_classes, device)
    };
    let train_split = split("train", data.train_images, data.train_labels)?;
    let test_split = split("test", data.test_images, data.test_labels)?;
    let validation_split = match data.validation {
        Some((images, labels)) => Some(split("validation", images, labels)?),
        None => None,
    };
    let mixed = match &cfg.extra {
        Some(x) => Some(MixedSampler::new(
            preflight::open_extra(cfg, data.shape)?,
            cfg.batch_size,
            x.fraction,
        )),
        None => None,
    };
    let extra_mark = match (&mixed, &cfg.extra) {
        (Some(m), Some(x)) => Some(m.extra.fingerprint(x.fraction)),
        _ => None,
    };
    let (selection_split, selected_on) = match &validation_split {
        Some(v) => (v, EvalSplit::Validation),
        None => (&test_split, EvalSplit::Test),
    };

    let mut model = build_model(&cfg.model, cfg.num_classes, data.shape, device)?;
    if let Some(path) = &cfg.init_checkpoint {
        checkpoint::load(&mut model.vs, Path::new(path), &cfg.model)?;
    }
    let mut method = build_method(&cfg.method, &model.vs);
    let mut opt = Sgd::new(&model.vs, &cfg.optimizer);
    // Built after the raw model and its optimiser, so a run without `ema`
    // draws the same initialisation and the same stream as before.
    let mut ema = match &cfg.ema {
        Some(e) => {
            let shell = build_model(&cfg.model, cfg.num_classes, data.shape, device)?;
            Some(Ema::new(e.clone(), &model.vs, shell))
        }
        None => None,
    };
    let resumed = match &cfg.resume {
        Some(path) => Some(resume::load(
            Path::new(path),
            &mut model.vs,
            &mut opt,
            ema.as_mut(),
            &cfg.model,
            extra_mark.as_deref(),
        )?),
        None => None,
    };
    // After every load (they copy into the variables, keeping their layout).
    precision::apply_memory_format(&model.vs, cfg.memory_format);
    if let Some(a) = &ema {
        precision::apply_memory_format(&a.model.vs, cfg.memory_format);
    }
    let start_epoch = resumed.as_ref().map_or(1, |p| p.epochs_completed + 1);
    if start_epoch > 1 {
        // The training stream of epoch `start_epoch`, as the uninterrupted
        // run reseeded it at the end of the epoch before.
        tch::manual_seed(training_seed(cfg.seed, start_epoch - 1));
    }

    // f16 only; starts afresh on resume (it settles within a few steps).
    let mut scaler = (cfg.precision == crate::config::Precision::F16).then(GradScaler::new);
    let files = Checkpoints::new(cfg);
    let n = train_split.len();
    let run = EpochRun {
        cfg,
        split: &train_split,
        mixed: mixed.as_ref(),
        steps_per_epoch: sampler::steps_per_epoch(n, cfg.batch_size),
        run_started: started,
    };
    sink.emit(Event::Start {
        model: cfg.model.clone(),
        parameters: model.parameter_count(),
        device: device::describe(device),
        method: method.name().to_string(),
        train_size: n,
        test_size: eval_samples(selection_split, &cfg.eval),
        epochs: cfg.epochs,
        steps_per_epoch: run.steps_per_epoch,
        start_epoch,
        eval_epochs: (start_epoch..=cfg.epochs)
            .filter(|&e| cfg.eval_schedule.runs_after(e, cfg.epochs))
            .collect(),
        final_test_size: validation_split
            .as_ref()
            .map(|_| eval_samples(&test_split, &cfg.eval)),
    });

    let mut summary = match resumed {
        Some(point) => TrainSummary {
            status: RunStatus::Completed,
            seconds: 0.0,
            ..point.summary
        },
        None => TrainSummary {
            status: RunStatus::Completed,
            epochs_completed: 0,
            selected_on,
            best: None,
            last: None,
            test: None,
            last_checkpoint: None,
            best_checkpoint: None,
            seconds: 0.0,
        },
    };
    let resume_path = Path::new(&cfg.out_dir).join(resume::FILE_NAME);

    for epoch in start_epoch..=cfg.epochs {
        let trained = train_epoch(
            &run,
            epoch,
            &model,
            method.as_mut(),
            &mut opt,
            scaler.as_mut(),
            ema.as_mut(),
            sink,
            cancel,
        )?;
        if let Trained::Stopped = trained {
            files.interrupt(&model.vs, &mut summary, sink, epoch, epoch - 1)?;
            break;
        }
        let result = if cfg.eval_schedule.runs_after(epoch, cfg.epochs) {
            let e = Evaluation {
                phase: EvalPhase::Epoch,
                split: selection_split,
                which: selected_on,
                epoch,
                cfg: &cfg.eval,
                seed: cfg.seed,
            };
            let net = eval_net(cfg, model.net.as_ref());
            let Some(result) = run_evaluation(&e, &net, sink, cancel) else {
                // Stopped during evaluation: the epoch's training is complete.
                files.interrupt(&model.vs, &mut summary, sink, epoch, epoch)?;
                break;
            };
            sink.emit(Event::Eval(result.clone()));
            // The average is evaluated on the same split with the same
            // attack seed, so the two results compare like for like.
            let averaged = match &ema {
                Some(a) => {
                    let Some(mut r) =
                        run_evaluation(&e, &eval_net(cfg, a.model.net.as_ref()), sink, cancel)
                    else {
                        files.interrupt(&model.vs, &mut summary, sink, epoch, epoch)?;
                        break;
                    };
                    r.ema = Some(true);
                    sink.emit(Event::Eval(r.clone()));
                    Some(r)
                }
                None => None,
            };
            Some((result, averaged))
        } else {
            None
        };
        // Evaluation reseeded the generator; give training its own stream
        // back, distinct per epoch and deterministic given the run's seed,
        // whether or not this epoch was evaluated: a resumed run reseeds the
        // same way (see `resume`).
        tch::manual_seed(training_seed(cfg.seed, epoch));
        let last = files.write(&model.vs, CheckpointKind::Last, epoch, epoch, false, sink)?;
        summary.last_checkpoint = Some(last);
        if let Some(a) = &ema {
            files.write_ema(&a.model.vs, CheckpointKind::Last, epoch)?;
        }
        if let Some((raw, averaged)) = result {
            // `evalWith: ema` selects (and reports) by the average's result,
            // and the best checkpoint is then the average's file.
            let by_ema = cfg
                .ema
                .as_ref()
                .is_some_and(|e| e.eval_with == EmaEvalWith::Ema);
            let result = match averaged {
                Some(r) if by_ema => r,
                _ => raw,
            };
            let selection = select(&result, summary.best.as_ref());
            if selection.selected() {
                let tied = selection == Selection::Tied;
                let best =
                    files.write(&model.vs, CheckpointKind::Best, epoch, epoch, tied, sink)?;
                summary.best_checkpoint = Some(best);
                if let Some(a) = &ema {
                    let ema_best = files.write_ema(&a.model.vs, CheckpointKind::Best, epoch)?;
                    if by_ema {
                        summary.best_checkpoint = Some(ema_best);
                    }
                }
                summary.best = Some(result.clone());
            }
            summary.last = Some(result);
        }
        summary.epochs_completed = epoch;
        // The commit point of the epoch: written last, so a kill before it
        // re-runs this (deterministic) epoch on resume.
        let point = resume::ResumePoint {
            model: cfg.model.clone(),
            seed: cfg.seed,
            epochs_completed: epoch,
            summary: summary.clone(),
            ema_updates: ema.as_ref().map(|a| a.updates),
            extra: extra_mark.clone(),
        };
        resume::save(&resume_path, &model.vs, &opt, ema.as_ref(), &point)?;
    }

    let stopping =
        |s: &TrainSummary| s.status == RunStatus::Cancelled || cancel.load(Ordering::Relaxed);
    summary.test = match (selected_on, &summary.best_checkpoint) {
        (EvalSplit::Test, _) => summary.best.clone(),
        // Selected on validation: report the best checkpoint on the test split.
        (EvalSplit::Validation, Some(best_path)) if !stopping(&summary) => {
            let mut best = build_model(&cfg.model, cfg.num_classes, data.shape, device)?;
            checkpoint::load(&mut best.vs, Path::new(best_path), &cfg.model)?;
            let e = Evaluation {
                phase: EvalPhase::FinalTest,
                split: &test_split,
                which: EvalSplit::Test,
                epoch: summary.best.as_ref().map_or(0, |b| b.epoch),
                cfg: &cfg.eval,
                seed: cfg.seed,
            };
            let result = run_evaluation(&e, &eval_net(cfg, best.net.as_ref()), sink, cancel);
            if let Some(r) = &result {
                sink.emit(Event::Eval(r.clone()));
            }
            result
        }
        (EvalSplit::Validation, _) => None,
    };
    // A stop that came after the last step's check (during the last
    // evaluation, its checkpoints or the final test) still ends the run as
    // stopped: the caller asked for it, and the run may lack its final test.
    if summary.status == RunStatus::Completed && cancel.load(Ordering::Relaxed) {
        let trained = summary.epochs_completed;
        files.interrupt(&model.vs, &mut summary, sink, trained, trained)?;
    }
    summary.seconds = started.elapsed().as_secs_f64();
    sink.emit(Event::Done(summary.clone()));
    Ok(summary)
}
