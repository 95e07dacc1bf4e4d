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
//!
//! Data-parallel runs (`torchrun`, `srun`; see `crate::distributed`): every
//! rank trains on its part of each global batch with the gradients averaged
//! over ranks; rank 0 alone evaluates (the others wait for it in the vote
//! that follows, within the job's timeout) and writes checkpoints and the
//! resume file. Every rank emits its own events; the caller decides who
//! shows them (the TS layer: rank 0 only, the others plainly).

mod checkpoints;
mod epoch;
mod evaluation;
mod pacing;
mod preflight;
mod step;

pub use preflight::{preflight, DataSizes, TrainData};

use crate::checkpoint;
use crate::config::{EmaEvalWith, MethodConfig, TrainConfig};
use crate::data::Split;
use crate::device;
use crate::distributed::DataParallel;
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
use crate::sampler::MixedSampler;
use checkpoints::Checkpoints;
use epoch::{steps_per_epoch, train_epoch, training_seed, EpochRun, Trained};
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
    // A data-parallel job (launcher variables set) joins its process group
    // here; on CUDA each rank takes the device of its local rank.
    let (dp, device) = match DataParallel::join(device)? {
        Some((dp, device)) => (Some(dp), device),
        None => (None, device),
    };
    if dp.is_some() && matches!(cfg.method, MethodConfig::Awp(_)) {
        return Err(crate::error::CoreError::config(
            "method",
            "awp is not supported in data-parallel runs (its weight perturbation comes from a gradient of its own, which would need averaging over the ranks too); train it in a single process",
        ));
    }
    if dp.is_some() && cfg.extra.is_some() {
        return Err(crate::error::CoreError::config(
            "dataset.extra",
            "extra data (RST's mixed batches) is not supported in data-parallel runs yet; train it in a single process",
        ));
    }
    let world = dp.as_ref().map_or(1, |d| d.world_size());
    let main = dp.as_ref().is_none_or(|d| d.is_main());
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
    if let Some(point) = &resumed {
        let saved = point.world_size.unwrap_or(1);
        if saved != world {
            return Err(crate::error::CoreError::config(
                "resume",
                format!("the run was trained by {saved} process(es) and is resumed by {world}; resume it with the same number (each rank's part of every epoch depends on it)"),
            ));
        }
    }
    // After every load (they copy into the variables, keeping their layout).
    precision::apply_memory_format(&model.vs, cfg.memory_format);
    if let Some(a) = &ema {
        precision::apply_memory_format(&a.model.vs, cfg.memory_format);
    }
    // Every rank starts from rank 0's weights and buffers (and average).
    if let Some(d) = &dp {
        d.broadcast_variables(&model.vs)?;
        if let Some(a) = &ema {
            d.broadcast_variables(&a.model.vs)?;
        }
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
        // One rank: ceil(n / batch), as RST's sampler counts an epoch too.
        steps_per_epoch: steps_per_epoch(n, cfg.batch_size * world as i64, world),
        dp: dp.as_ref(),
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
        // Rank 0 alone evaluates in a data-parallel run.
        eval_epochs: (start_epoch..=cfg.epochs)
            .filter(|&e| main && cfg.eval_schedule.runs_after(e, cfg.epochs))
            .collect(),
        final_test_size: validation_split
            .as_ref()
            .filter(|_| main)
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
            stop_run(
                main,
                &files,
                &model.vs,
                &mut summary,
                sink,
                epoch,
                epoch - 1,
            )?;
            break;
        }
        // Rank 0 alone evaluates; the others wait for it in the vote below.
        let mut eval_stopped = false;
        let result = if main && cfg.eval_schedule.runs_after(epoch, cfg.epochs) {
            let e = Evaluation {
                phase: EvalPhase::Epoch,
                split: selection_split,
                which: selected_on,
                epoch,
                cfg: &cfg.eval,
                seed: cfg.seed,
            };
            let net = eval_net(cfg, model.net.as_ref());
            match run_evaluation(&e, &net, sink, cancel) {
                // Stopped during evaluation: the epoch's training is complete.
                None => {
                    eval_stopped = true;
                    None
                }
                Some(result) => {
                    sink.emit(Event::Eval(result.clone()));
                    // The average is evaluated on the same split with the same
                    // attack seed, so the two results compare like for like.
                    let averaged = match &ema {
                        Some(a) => {
                            let net = eval_net(cfg, a.model.net.as_ref());
                            let r = run_evaluation(&e, &net, sink, cancel);
                            eval_stopped = r.is_none();
                            r.map(|mut r| {
                                r.ema = Some(true);
                                sink.emit(Event::Eval(r.clone()));
                                r
                            })
                        }
                        None => None,
                    };
                    Some((result, averaged))
                }
            }
        } else {
            None
        };
        if let Some(d) = &dp {
            eval_stopped = d.any(eval_stopped, device)?;
        }
        if eval_stopped {
            stop_run(main, &files, &model.vs, &mut summary, sink, epoch, epoch)?;
            break;
        }
        // Evaluation reseeded the generator; give training its own stream
        // back, distinct per epoch and deterministic given the run's seed,
        // whether or not this epoch was evaluated: a resumed run reseeds the
        // same way (see `resume`).
        tch::manual_seed(training_seed(cfg.seed, epoch));
        summary.epochs_completed = epoch;
        if !main {
            continue;
        }
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
        // The commit point of the epoch: written last, so a kill before it
        // re-runs this (deterministic) epoch on resume.
        let point = resume::ResumePoint {
            model: cfg.model.clone(),
            seed: cfg.seed,
            epochs_completed: epoch,
            summary: summary.clone(),
            ema_updates: ema.as_ref().map(|a| a.updates),
            world_size: dp.as_ref().map(|d| d.world_size()),
            extra: extra_mark.clone(),
        };
        resume::save(&resume_path, &model.vs, &opt, ema.as_ref(), &point)?;
    }

    let stopping =
        |s: &TrainSummary| s.status == RunStatus::Cancelled || cancel.load(Ordering::Relaxed);
    summary.test = match (selected_on, &summary.best_checkpoint) {
        (EvalSplit::Test, _) => summary.best.clone(),
        // Selected on validation: report the best checkpoint on the test split.
        (EvalSplit::Validation, Some(best_path)) if main && !stopping(&summary) => {
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
        stop_run(
            main,
            &files,
            &model.vs,
            &mut summary,
            sink,
            trained,
            trained,
        )?;
    }
    summary.seconds = started.elapsed().as_secs_f64();
    sink.emit(Event::Done(summary.clone()));
    Ok(summary)
}

/// Ends a stopped run: rank 0 (or a single process) saves the `interrupted`
/// checkpoint; other ranks of a data-parallel run write nothing.
fn stop_run(
    main: bool,
    files: &Checkpoints,
    vs: &tch::nn::VarStore,
    summary: &mut TrainSummary,
    sink: &mut dyn EventSink,
    epoch: usize,
    trained: usize,
) -> Result<()> {
    if main {
        files.interrupt(vs, summary, sink, epoch, trained)
    } else {
        summary.status = RunStatus::Cancelled;
        Ok(())
    }
}
