//! Batches that mix the labelled split with extra (pseudo-labelled) images,
//! as RST's `SemiSupervisedSampler` draws them (yaircarmon/semisup-adv,
//! `datasets.py`, with `robust_self_training.py`'s `num_batches`):
//!
//! - a batch of B holds `B - floor(B * fraction)` labelled images, taken in
//!   order from a permutation of the labelled split drawn at the start of
//!   the epoch, and is filled up to B with extra images drawn uniformly
//!   *with replacement* (their `torch.randint`), so the last batch of a
//!   short labelled pass is filled with more extra images, never short;
//! - an epoch is `ceil(N / B)` batches, N the labelled split's size: their
//!   `num_batches = ceil(50000 / batch_size)`, "a pass through 50K
//!   datapoints", 50K being CIFAR-10's training set. Each epoch thus sees
//!   about `1 - fraction` of the labelled images (a fresh permutation each
//!   epoch, as their `__iter__` draws one per epoch) and as many draws of
//!   extra images;
//! - their final `np.random.shuffle(batch)` only spreads the two sources
//!   over DataParallel's replicas; here a batch runs on one device, and
//!   BatchNorm's statistics and every loss are invariant to the order of a
//!   batch, so the labelled images simply come first.
//!
//! Every draw comes from libtorch's generator, which the training loop
//! reseeds from (seed, epoch) at each epoch boundary: the batches of an
//! epoch are the same whether or not the run was stopped and resumed
//! before it (see `crate::resume`). The permutation is drawn on the run's
//! device as the unmixed loop draws it; the extra indices on the CPU, where
//! the file is read.

use crate::data::Split;
use crate::error::Result;
use crate::extra::ExtraFile;
use tch::{Device, Kind, Tensor};

/// RST's `int(batch_size * unsup_fraction)`: extra images per batch.
pub fn extra_per_batch(batch_size: i64, fraction: f64) -> i64 {
    (batch_size as f64 * fraction).floor() as i64
}

/// Batches of `batch_size` per epoch over a labelled split of `n` images
/// (the same with or without extra data).
pub fn steps_per_epoch(n: i64, batch_size: i64) -> usize {
    ((n + batch_size - 1) / batch_size) as usize
}

/// The mixed batches of a run.
pub struct MixedSampler {
    pub extra: ExtraFile,
    pub batch_size: i64,
    /// Labelled images per batch (RST's `sup_batch_size`).
    pub labelled: i64,
}

impl MixedSampler {
    pub fn new(extra: ExtraFile, batch_size: i64, fraction: f64) -> Self {
        MixedSampler {
            extra,
            batch_size,
            labelled: batch_size - extra_per_batch(batch_size, fraction),
        }
    }

    /// Which images batch `step` (1-based) takes: the labelled ones (a view
    /// of `order`, the epoch's permutation of the labelled split) and the
    /// extra ones (drawn now, from the CPU generator).
    pub fn draw(&self, order: &Tensor, step: usize) -> (Tensor, Vec<i64>) {
        let n = order.size()[0];
        // Never past the end: step <= ceil(n / B) and labelled <= B.
        let start = (step as i64 - 1) * self.labelled;
        let len = self.labelled.min(n - start);
        let extra = Tensor::randint(
            self.extra.len(),
            [self.batch_size - len],
            (Kind::Int64, Device::Cpu),
        );
        (
            order.narrow(0, start, len),
            Vec::<i64>::try_from(&extra).expect("int64 indices"),
        )
    }

    /// Batch `step` as floats in [0,1] with its labels: the labelled images
    /// of `split` first, then the extra ones.
    pub fn batch(&self, split: &Split, order: &Tensor, step: usize) -> Result<(Tensor, Tensor)> {
        let (labelled, extra) = self.draw(order, step);
        let device = split.images.device();
        let (xe, ye) = self.extra.gather(&extra, device)?;
        let (xl, yl) = split.batch(&labelled);
        let x = Tensor::cat(&[xl, xe.to_kind(Kind::Float) / 255.0], 0);
        Ok((x, Tensor::cat(&[yl, ye], 0)))
    }
}
