//! One optimisation step on one mini-batch, and the running sums an epoch
//! keeps of its steps (on the device: read on the host only for events).

use crate::config::AugmentConfig;
use crate::data::augment;
use crate::distributed::DataParallel;
use crate::error::{CoreError, Result};
use crate::events::LossParts;
use crate::methods::{Method, PartTensors};
use crate::models::Classifier;
use crate::optim::Sgd;
use crate::precision::GradScaler;
use tch::{Kind, Tensor};

/// Running sums of an epoch's loss parts, kept on the device.
#[derive(Default)]
pub(super) struct PartSums {
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
    pub fn means(&self, count: f64) -> LossParts {
        let m = |s: &Option<Tensor>| s.as_ref().map(|t| t.double_value(&[]) / count);
        LossParts {
            ce_adv: m(&self.ce_adv),
            ce_benign: m(&self.ce_benign),
            ce_col: m(&self.ce_col),
            reg: m(&self.reg),
        }
    }
}

/// What an epoch accumulates over its steps.
pub(super) struct EpochSums {
    pub parts: PartSums,
    /// Sum of batch-mean losses weighted by batch size.
    pub loss: f64,
    /// Correctly classified training samples (device scalar).
    pub correct: Tensor,
    pub seen: i64,
}

impl EpochSums {
    pub fn new(device: tch::Device) -> Self {
        EpochSums {
            parts: PartSums::default(),
            loss: 0.0,
            correct: Tensor::zeros([], (Kind::Int64, device)),
            seen: 0,
        }
    }

    pub fn mean_loss(&self) -> f64 {
        self.loss / self.seen as f64
    }

    /// Sums every rank's figures into this one's (all ranks end equal): one
    /// all-reduce of a float64 vector [loss, seen, correct, parts...].
    pub fn all_reduce(&mut self, dp: &DataParallel) -> Result<()> {
        let device = self.correct.device();
        let scalar = |v: f64| Tensor::from_slice(&[v]).to_device(device);
        let p = &mut self.parts;
        let mut parts: Vec<&mut Option<Tensor>> =
            vec![&mut p.ce_adv, &mut p.ce_benign, &mut p.ce_col, &mut p.reg];
        parts.retain(|t| t.is_some());
        let mut pieces = vec![
            scalar(self.loss),
            scalar(self.seen as f64),
            self.correct.to_kind(Kind::Double).reshape([1]),
        ];
        pieces.extend(parts.iter().map(|t| {
            t.as_ref()
                .expect("kept parts are present")
                .to_kind(Kind::Double)
                .reshape([1])
        }));
        let all = Tensor::cat(&pieces, 0);
        dp.group.all_reduce_sum(std::slice::from_ref(&all))?;
        let values = Vec::<f64>::try_from(all.to_device(tch::Device::Cpu))
            .map_err(|e| CoreError::Distributed(format!("epoch sums: {e}")))?;
        self.loss = values[0];
        self.seen = values[1].round() as i64;
        self.correct = Tensor::from_slice(&[values[2].round() as i64])
            .reshape([] as [i64; 0])
            .to_device(device);
        for (t, v) in parts.into_iter().zip(&values[3..]) {
            *t = Some(scalar(*v).reshape([] as [i64; 0]));
        }
        Ok(())
    }
}

/// Where a step stands in the run, for the error of a diverged step.
#[derive(Clone, Copy)]
pub(super) struct StepAt {
    pub epoch: usize,
    pub step: usize,
}

/// A data-parallel step's gradient averaging: this rank's group and its
/// part of the global batch (`len / total`).
#[derive(Clone, Copy)]
pub(super) struct Sync<'a> {
    pub dp: &'a DataParallel,
    pub weight: f64,
}

/// Trains on the batch (`x`, `y`) (augmented here) and adds it to `sums`.
/// A non-finite loss is refused before the optimiser steps, so a diverged
/// step never reaches the weights. With `sync`, the gradients are averaged
/// over the ranks between backward and the optimiser step.
#[allow(clippy::too_many_arguments)]
pub(super) fn train_step(
    method: &mut dyn Method,
    net: &dyn Classifier,
    opt: &mut Sgd,
    scaler: Option<&mut GradScaler>,
    sync: Option<Sync>,
    (x, y): (Tensor, Tensor),
    aug: &AugmentConfig,
    at: StepAt,
    sums: &mut EpochSums,
) -> Result<()> {
    let len = y.size()[0];
    let x = augment(&x, aug);
    let out = method.loss(net, &x, &y);
    let loss = out.loss.double_value(&[]);
    if !loss.is_finite() {
        method.after_step();
        return Err(CoreError::NonFiniteLoss {
            epoch: at.epoch,
            step: at.step,
            value: loss,
        });
    }
    // The forwards ran in `net`'s precision (autocast inside its forward);
    // f16 scales the backward and skips a step with non-finite gradients.
    let average = |grads: &[Tensor]| match sync {
        Some(s) => s.dp.average_gradients(grads, s.weight),
        None => Ok(()),
    };
    let stepped = match scaler {
        Some(s) => s.backward_sync_step(opt, &out.loss, &average).map(|_| ()),
        None => {
            opt.zero_grad();
            out.loss.backward();
            // The gradient handles are gathered only for a data-parallel run.
            let averaged = match sync {
                Some(_) => average(&opt.grads()),
                None => Ok(()),
            };
            averaged.map(|()| opt.step())
        }
    };
    // AWP removes its weight perturbation here, after the step.
    method.after_step();
    stepped?;
    sums.loss += loss * len as f64;
    sums.parts.add(&out.parts, len as f64);
    sums.correct += out.correct;
    sums.seen += len;
    Ok(())
}
