//! The training loop: SGD with momentum and weight decay, a piecewise learning
//! rate, per-epoch held-out evaluation (clean + PGD), a checkpoint each epoch
//! plus the best-by-PGD one, typed events, and cancellation within one step.

use crate::checkpoint;
use crate::config::TrainConfig;
use crate::data::{augment, Split};
use crate::device;
use crate::error::{CoreError, Result};
use crate::eval::{eval_seed, evaluate};
use crate::events::{
    CheckpointKind, EvalResult, EvalSplit, Event, EventSink, LossParts, RunStatus, TrainSummary,
};
use crate::memory;
use crate::methods::{build_method, PartTensors};
use crate::models::build_model;
use crate::optim::Sgd;
use crate::resume;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tch::{Kind, Tensor};

/// Raw dataset buffers, as TS hands them over (validated on upload).
pub struct TrainData<'a> {
    pub train_images: &'a [u8],
    pub train_labels: &'a [u8],
    pub test_images: &'a [u8],
    pub test_labels: &'a [u8],
    /// Optional validation split (images, labels) for model selection; the
    /// best checkpoint is then evaluated once on the test split at the end.
    pub validation: Option<(&'a [u8], &'a [u8])>,
    /// C, H, W of every image.
    pub shape: [i64; 3],
}

/// Sample counts of a run's splits, for checks that need no pixels.
#[derive(Debug, Clone, Copy)]
pub struct DataSizes {
    pub train: i64,
    pub test: i64,
    pub validation: Option<i64>,
}

impl TrainData<'_> {
    pub fn sizes(&self) -> DataSizes {
        DataSizes {
            train: self.train_labels.len() as i64,
            test: self.test_labels.len() as i64,
            validation: self.validation.map(|(_, l)| l.len() as i64),
        }
    }
}

/// Everything that can be checked before a run starts, without touching its
/// data: the config's ranges, the values that depend on the data's shape and
/// size, the memory the run needs (CPU), the device, and the initial
/// checkpoint. The binding calls it (with `check_memory`) before the run
/// folder exists, so a run that cannot start leaves nothing behind; `train`
/// calls it again without the memory check, whose reading would by then
/// include the run's own data.
pub fn preflight(
    cfg: &TrainConfig,
    shape: [i64; 3],
    sizes: DataSizes,
    check_memory: bool,
) -> Result<tch::Device> {
    cfg.validate()?;
    let [_, h, w] = shape;
    if cfg.augment.random_crop_padding > h.min(w) {
        return Err(CoreError::config(
            "augment.randomCropPadding",
            format!(
                "{} is larger than the images ({h}×{w}); expected at most {}",
                cfg.augment.random_crop_padding,
                h.min(w)
            ),
        ));
    }
    if cfg.batch_size > sizes.train {
        return Err(CoreError::config(
            "batchSize",
            format!(
                "{} is larger than the training split ({} images)",
                cfg.batch_size, sizes.train
            ),
        ));
    }
    let device = device::resolve(cfg.device)?;
    // Built on CPU whatever the device: only its sizes are needed here.
    let probe = build_model(&cfg.model, cfg.num_classes, shape, tch::Device::Cpu)?;
    if check_memory && device == tch::Device::Cpu {
        let per_image: i64 = shape.iter().product();
        let images = sizes
            .train
            .saturating_add(sizes.test)
            .saturating_add(sizes.validation.unwrap_or(0));
        let needed = memory::training_bytes(
            cfg,
            probe.parameter_count(),
            probe.activations_per_sample,
            images.saturating_mul(per_image) as u64,
        );
        memory::check_fits(needed, cfg)?;
    }
    if let Some(path) = &cfg.resume {
        // Damaged or foreign resume files are refused before anything runs.
        checkpoint::inspect(Path::new(path))?;
    }
    if let Some(path) = &cfg.init_checkpoint {
        let info = checkpoint::inspect(Path::new(path))?;
        if let Some(m) = info.model.filter(|m| m != &cfg.model) {
            return Err(CoreError::Checkpoint {
                path: path.clone(),
                message: format!("written for model {m}, the config trains {}", cfg.model),
            });
        }
    }
    Ok(device)
}

/// Step events are coalesced to at most one per interval (the UI needs no more).
const STEP_EVENT_INTERVAL: Duration = Duration::from_millis(100);

/// Running sums of an epoch's loss parts, kept on the device.
#[derive(Default)]
struct PartSums {
    ce_adv: Option<Tensor>,
    ce_benign: Option<Tensor>,
    ce_col: Option<Tensor>,
    reg: Option<Tensor>,
}

impl PartSums {
    fn add(&mut self, p: &PartTensors, weight: f64) {
        fn acc(sum: &mut Option<Tensor>, part: &Option<Tensor>, w: f64) {
            if let Some(v) = part {
                let v = v.to_kind(Kind::Double) * w;
                *sum = Some(match sum.take() {
                    Some(s) => s + v,
                    None => v,
                });
            }
        }
        acc(&mut self.ce_adv, &p.ce_adv, weight);
        acc(&mut self.ce_benign, &p.ce_benign, weight);
        acc(&mut self.ce_col, &p.ce_col, weight);
        acc(&mut self.reg, &p.reg, weight);
    }

    /// Means over `count` samples, read on the host.
    fn means(&self, count: f64) -> LossParts {
        let m = |s: &Option<Tensor>| s.as_ref().map(|t| t.double_value(&[]) / count);
        LossParts {
            ce_adv: m(&self.ce_adv),
            ce_benign: m(&self.ce_benign),
            ce_col: m(&self.ce_col),
            reg: m(&self.reg),
        }
    }
}

/// The seed of the training stream of the epoch after `epoch`.
fn training_seed(seed: i64, epoch: usize) -> i64 {
    eval_seed(seed, epoch).wrapping_add(1 << 40)
}

/// Model selection as the authors' code does it (`robust_accuracy >=
/// best_robust_acc`): a tie goes to the later epoch.
fn better(candidate: &EvalResult, best: &Option<EvalResult>) -> bool {
    best.as_ref()
        .is_none_or(|b| candidate.robust_acc >= b.robust_acc)
}

/// Runs a whole training job. Returns the summary (also emitted as `Done`);
/// on cancellation it saves an `interrupted` checkpoint and returns with
/// status `Cancelled`.
pub fn train(
    cfg: &TrainConfig,
    data: &TrainData,
    sink: &mut dyn EventSink,
    cancel: &AtomicBool,
) -> Result<TrainSummary> {
    let device = preflight(cfg, data.shape, data.sizes(), false)?;
    let started = Instant::now();
    if let Some(t) = cfg.threads {
        tch::set_num_threads(t);
    }
    tch::manual_seed(cfg.seed);
    let train_split = Split::from_bytes(
        "train",
        data.train_images,
        data.train_labels,
        data.shape,
        cfg.num_classes,
        device,
    )?;
    let test_split = Split::from_bytes(
        "test",
        data.test_images,
        data.test_labels,
        data.shape,
        cfg.num_classes,
        device,
    )?;

    let validation_split = match data.validation {
        Some((images, labels)) => Some(Split::from_bytes(
            "validation",
            images,
            labels,
            data.shape,
            cfg.num_classes,
            device,
        )?),
        None => None,
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
    let o = &cfg.optimizer;
    let mut opt = Sgd::new(&model.vs, o);
    let resumed = match &cfg.resume {
        Some(path) => Some(resume::load(
            Path::new(path),
            &mut model.vs,
            &mut opt,
            &cfg.model,
        )?),
        None => None,
    };
    let start_epoch = resumed.as_ref().map_or(1, |p| p.epochs_completed + 1);
    if start_epoch > 1 {
        // The training stream of epoch `start_epoch`, as the uninterrupted
        // run reseeded it at the end of the epoch before (see below).
        tch::manual_seed(training_seed(cfg.seed, start_epoch - 1));
    }

    let out_dir = PathBuf::from(&cfg.out_dir);
    let ckpt_path = |kind: &str| out_dir.join(format!("{kind}.safetensors"));
    let save = |vs: &tch::nn::VarStore, kind: &str, epoch: usize| -> Result<PathBuf> {
        let path = ckpt_path(kind);
        let meta = checkpoint::SaveMeta {
            model: &cfg.model,
            num_classes: cfg.num_classes,
            epoch,
            seed: cfg.seed,
            kind,
        };
        checkpoint::save(vs, &path, &meta)?;
        Ok(path)
    };
    let n = train_split.len();
    let steps_per_epoch = ((n + cfg.batch_size - 1) / cfg.batch_size) as usize;
    sink.emit(Event::Start {
        model: cfg.model.clone(),
        parameters: model.parameter_count(),
        device: device::describe(device),
        method: method.name().to_string(),
        train_size: n,
        test_size: cfg
            .eval
            .max_samples
            .map_or(selection_split.len(), |m| m.min(selection_split.len())),
        epochs: cfg.epochs,
        steps_per_epoch,
        start_epoch,
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
    let resume_path = out_dir.join(resume::FILE_NAME);
    // `trained`: the epochs whose training the weights have completed (the
    // checkpoint's metadata; evaluation seeds from it).
    let cancelled = |summary: &mut TrainSummary,
                     sink: &mut dyn EventSink,
                     epoch: usize,
                     trained: usize|
     -> Result<()> {
        let path = save(&model.vs, "interrupted", trained)?;
        sink.emit(Event::Checkpoint {
            epoch,
            kind: CheckpointKind::Interrupted,
            path: path.display().to_string(),
        });
        summary.status = RunStatus::Cancelled;
        summary.last_checkpoint = Some(path.display().to_string());
        Ok(())
    };

    'epochs: for epoch in start_epoch..=cfg.epochs {
        let lr = o.lr_at(epoch);
        opt.set_lr(lr);
        method.begin_epoch(epoch);
        let epoch_start = Instant::now();
        let order = Tensor::randperm(n, (Kind::Int64, device));
        let mut sums = PartSums::default();
        let mut loss_sum = 0.0;
        let mut correct = Tensor::zeros([], (Kind::Int64, device));
        let mut seen = 0i64;
        // So that the first step of an epoch always sends an event.
        let mut last_event = Instant::now()
            .checked_sub(STEP_EVENT_INTERVAL)
            .unwrap_or_else(Instant::now);
        for step in 1..=steps_per_epoch {
            if cancel.load(Ordering::Relaxed) {
                cancelled(&mut summary, sink, epoch, epoch - 1)?;
                break 'epochs;
            }
            let start = (step as i64 - 1) * cfg.batch_size;
            let len = cfg.batch_size.min(n - start);
            let (x, y) = train_split.batch(&order.narrow(0, start, len));
            let x = augment(&x, &cfg.augment);
            let out = method.loss(model.net.as_ref(), &x, &y);
            // Read before stepping so a diverged step never reaches the weights.
            let loss = out.loss.double_value(&[]);
            if !loss.is_finite() {
                method.after_step();
                return Err(CoreError::NonFiniteLoss {
                    epoch,
                    step,
                    value: loss,
                });
            }
            opt.backward_step(&out.loss);
            // AWP removes its weight perturbation here, after the step.
            method.after_step();
            loss_sum += loss * len as f64;
            sums.add(&out.parts, len as f64);
            correct += out.correct;
            seen += len;
            if step == steps_per_epoch || last_event.elapsed() >= STEP_EVENT_INTERVAL {
                last_event = Instant::now();
                let secs = epoch_start.elapsed().as_secs_f64();
                sink.emit(Event::Step {
                    epoch,
                    step,
                    steps_per_epoch,
                    lr,
                    loss: loss_sum / seen as f64,
                    parts: sums.means(seen as f64),
                    images_per_sec: seen as f64 / secs.max(1e-9),
                    elapsed_sec: started.elapsed().as_secs_f64(),
                });
            }
        }
        let train_seconds = epoch_start.elapsed().as_secs_f64();
        sink.emit(Event::Epoch {
            epoch,
            loss: loss_sum / seen as f64,
            parts: sums.means(seen as f64),
            train_acc: correct.int64_value(&[]) as f64 / seen as f64,
            seconds: train_seconds,
            images_per_sec: seen as f64 / train_seconds.max(1e-9),
        });

        let result = if cfg.eval_schedule.runs_after(epoch, cfg.epochs) {
            let Some(result) = evaluate(
                model.net.as_ref(),
                selection_split,
                selected_on,
                &cfg.eval,
                cfg.seed,
                epoch,
                Some(cancel),
            ) else {
                // Cancelled during evaluation: the epoch's training is complete.
                cancelled(&mut summary, sink, epoch, epoch)?;
                break 'epochs;
            };
            sink.emit(Event::Eval(result.clone()));
            Some(result)
        } else {
            None
        };
        // Evaluation reseeded the generator; give training its own stream
        // back, distinct per epoch and deterministic given the run's seed,
        // whether or not this epoch was evaluated: a resumed run reseeds the
        // same way (see `resume`).
        tch::manual_seed(training_seed(cfg.seed, epoch));
        let last = save(&model.vs, "last", epoch)?;
        sink.emit(Event::Checkpoint {
            epoch,
            kind: CheckpointKind::Last,
            path: last.display().to_string(),
        });
        summary.last_checkpoint = Some(last.display().to_string());
        if let Some(result) = result {
            if better(&result, &summary.best) {
                let best = save(&model.vs, "best", epoch)?;
                sink.emit(Event::Checkpoint {
                    epoch,
                    kind: CheckpointKind::Best,
                    path: best.display().to_string(),
                });
                summary.best_checkpoint = Some(best.display().to_string());
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
        };
        resume::save(&resume_path, &model.vs, &opt, &point)?;
    }
    summary.test = match (selected_on, &summary.best_checkpoint) {
        (EvalSplit::Test, _) => summary.best.clone(),
        // Selected on validation: report the best checkpoint on the test split.
        (EvalSplit::Validation, Some(best_path)) => {
            let mut best = build_model(&cfg.model, cfg.num_classes, data.shape, device)?;
            checkpoint::load(&mut best.vs, Path::new(best_path), &cfg.model)?;
            let epoch = summary.best.as_ref().map_or(0, |b| b.epoch);
            let result = evaluate(
                best.net.as_ref(),
                &test_split,
                EvalSplit::Test,
                &cfg.eval,
                cfg.seed,
                epoch,
                Some(cancel),
            );
            if let Some(r) = &result {
                sink.emit(Event::Eval(r.clone()));
            }
            result
        }
        (EvalSplit::Validation, None) => None,
    };
    summary.seconds = started.elapsed().as_secs_f64();
    sink.emit(Event::Done(summary.clone()));
    Ok(summary)
}
