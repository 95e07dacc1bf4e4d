//! One epoch's training: the learning rate of the epoch, a shuffled pass
//! over the training split (mixed with extra images: `crate::sampler`) step
//! by step (cancellation checked before each), coalesced step ticks, and the
//! epoch's event.

use super::pacing::{Throttle, STEP_EVENT_INTERVAL};
use super::step::{train_step, EpochSums, StepAt};
use crate::config::TrainConfig;
use crate::data::Split;
use crate::ema::Ema;
use crate::error::Result;
use crate::eval::eval_seed;
use crate::events::{Event, EventSink};
use crate::methods::Method;
use crate::models::Model;
use crate::optim::Sgd;
use crate::precision::{GradScaler, Precise};
use crate::sampler::MixedSampler;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tch::{Kind, Tensor};

/// The seed of the training stream of the epoch after `epoch`: the loop
/// reseeds with it at the end of every epoch (evaluation reseeds the
/// generator), and a resumed run does the same before its first epoch.
pub(super) fn training_seed(seed: i64, epoch: usize) -> i64 {
    eval_seed(seed, epoch).wrapping_add(1 << 40)
}

/// What an epoch needs besides the weights it trains.
pub(super) struct EpochRun<'a> {
    pub cfg: &'a TrainConfig,
    pub split: &'a Split,
    /// Extra images mixed into every batch (RST), or none.
    pub mixed: Option<&'a MixedSampler>,
    pub steps_per_epoch: usize,
    /// When the run started (for the step ticks' `elapsedSec`).
    pub run_started: Instant,
}

/// How an epoch's training ended.
pub(super) enum Trained {
    /// Every step ran; its `epoch` event was sent.
    Done,
    /// A stop was requested before one of its steps.
    Stopped,
}

/// Trains `epoch` (1-based) on the whole split.
// The scaler is per run state like the optimiser's, hence its own argument.
#[allow(clippy::too_many_arguments)]
pub(super) fn train_epoch(
    run: &EpochRun,
    epoch: usize,
    model: &Model,
    method: &mut dyn Method,
    opt: &mut Sgd,
    mut scaler: Option<&mut GradScaler>,
    mut ema: Option<&mut Ema>,
    sink: &mut dyn EventSink,
    cancel: &AtomicBool,
) -> Result<Trained> {
    let cfg = run.cfg;
    let lr = cfg.optimizer.lr_at(epoch, cfg.epochs);
    opt.set_lr(lr);
    method.begin_epoch(epoch);
    let epoch_start = Instant::now();
    let n = run.split.len();
    let order = Tensor::randperm(n, (Kind::Int64, model.vs.device()));
    let mut sums = EpochSums::new(model.vs.device());
    let mut ticks = Throttle::new(STEP_EVENT_INTERVAL);
    for step in 1..=run.steps_per_epoch {
        if cancel.load(Ordering::Relaxed) {
            return Ok(Trained::Stopped);
        }
        let batch = match run.mixed {
            Some(m) => m.batch(run.split, &order, step)?,
            None => {
                let start = (step as i64 - 1) * cfg.batch_size;
                let len = cfg.batch_size.min(n - start);
                run.split.batch(&order.narrow(0, start, len))
            }
        };
        let at = StepAt { epoch, step };
        // The step's forwards in the run's precision and layout; their logits
        // come back in f32, so ST's selection and perturbations stay f32.
        let net = Precise {
            net: model.net.as_ref(),
            precision: cfg.precision,
            format: cfg.memory_format,
        };
        train_step(
            method,
            &net,
            opt,
            scaler.as_deref_mut(),
            batch,
            &cfg.augment,
            at,
            &mut sums,
        )?;
        // The weight average follows every optimiser step (see `crate::ema`).
        if let Some(a) = ema.as_deref_mut() {
            a.update(&model.vs);
        }
        if ticks.ready(step == run.steps_per_epoch) {
            let secs = epoch_start.elapsed().as_secs_f64();
            sink.emit(Event::Step {
                epoch,
                step,
                steps_per_epoch: run.steps_per_epoch,
                lr,
                loss: sums.mean_loss(),
                parts: sums.parts.means(sums.seen as f64),
                images_per_sec: sums.seen as f64 / secs.max(1e-9),
                elapsed_sec: run.run_started.elapsed().as_secs_f64(),
            });
        }
    }
    let seconds = epoch_start.elapsed().as_secs_f64();
    let seen = sums.seen as f64;
    sink.emit(Event::Epoch {
        epoch,
        loss: sums.mean_loss(),
        parts: sums.parts.means(seen),
        train_acc: sums.correct.int64_value(&[]) as f64 / seen,
        seconds,
        images_per_sec: seen / seconds.max(1e-9),
    });
    Ok(Trained::Done)
}
