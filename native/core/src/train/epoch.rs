//! One epoch's training: the learning rate of the epoch, a shuffled pass
//! over the training split (mixed with extra images: `crate::sampler`) step
//! by step (cancellation checked before each), coalesced step ticks, and the
//! epoch's event.

use super::pacing::{Throttle, STEP_EVENT_INTERVAL};
use super::step::{train_step, EpochSums, StepAt, Sync};
use crate::config::TrainConfig;
use crate::data::Split;
use crate::distributed::{shard, DataParallel};
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

/// The seed of rank `rank`'s own stream during `epoch` of a data-parallel
/// run (augmentation, dropout, the inner loop's noise), drawn on once the
/// epoch's permutation (the same on every rank) is: without it, every rank
/// would draw the same crops and noise for its part of the batch.
fn rank_seed(seed: i64, epoch: usize, rank: usize) -> i64 {
    eval_seed(seed, epoch).wrapping_add(((rank as i64) + 1).wrapping_mul(1 << 41))
}

/// Steps per epoch for `n` samples in global batches of `global`
/// (= per-rank batch × ranks). A last global batch with fewer samples than
/// ranks is dropped (some rank would have none); otherwise it is kept.
pub(super) fn steps_per_epoch(n: i64, global: i64, world: usize) -> usize {
    let full = n / global;
    let rest = n % global;
    (full + i64::from(rest > 0 && rest >= world as i64)) as usize
}

/// What an epoch needs besides the weights it trains.
pub(super) struct EpochRun<'a> {
    pub cfg: &'a TrainConfig,
    pub split: &'a Split,
    /// Extra images mixed into every batch (RST), or none.
    pub mixed: Option<&'a MixedSampler>,
    pub steps_per_epoch: usize,
    /// The job this rank belongs to, in a data-parallel run.
    pub dp: Option<&'a DataParallel>,
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
    let device = model.vs.device();
    let order = Tensor::randperm(n, (Kind::Int64, device));
    let world = run.dp.map_or(1, |d| d.world_size());
    if let Some(d) = run.dp {
        tch::manual_seed(rank_seed(cfg.seed, epoch, d.rank()));
    }
    let global = cfg.batch_size * world as i64;
    let mut sums = EpochSums::new(model.vs.device());
    let mut ticks = Throttle::new(STEP_EVENT_INTERVAL);
    for step in 1..=run.steps_per_epoch {
        let stop = cancel.load(Ordering::Relaxed);
        // A stop on any rank stops every rank before the same step.
        let stop = match run.dp {
            Some(d) => d.any(stop, device)?,
            None => stop,
        };
        if stop {
            return Ok(Trained::Stopped);
        }
        // Extra images mixed in (RST: single-process only, refused with
        // data parallelism in `train`), or this rank's contiguous part of the
        // step's global batch.
        let (batch, sync) = match run.mixed {
            Some(m) => (m.batch(run.split, &order, step)?, None),
            None => {
                let start = (step as i64 - 1) * global;
                let total = global.min(n - start);
                let (offset, len) = match run.dp {
                    Some(d) => shard(total, d.rank(), world),
                    None => (0, total),
                };
                let sync = run.dp.map(|dp| Sync {
                    dp,
                    weight: len as f64 / total as f64,
                });
                (run.split.batch(&order.narrow(0, start + offset, len)), sync)
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
            sync,
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
    // The epoch's figures over every rank's images (the step ticks above
    // are this rank's own).
    if let Some(d) = run.dp {
        sums.all_reduce(d)?;
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

#[cfg(test)]
mod tests {
    use super::steps_per_epoch;

    #[test]
    fn a_last_global_batch_smaller_than_the_world_is_dropped() {
        assert_eq!(steps_per_epoch(10, 4, 1), 3);
        assert_eq!(steps_per_epoch(10, 4, 2), 3); // 4 + 4 + 2
        assert_eq!(steps_per_epoch(9, 4, 2), 2); // the 1 left over is dropped
        assert_eq!(steps_per_epoch(8, 4, 2), 2);
        assert_eq!(steps_per_epoch(50_000, 128, 8), 391);
    }
}
