//! Weight averaging: an exponential moving average (EMA) of a model's
//! weights, kept in a second model of the same architecture so that it can
//! be evaluated and saved like the trained one (same tensor names, so its
//! checkpoints load anywhere the raw ones do, the PyTorch reference too).
//!
//! After every optimiser step, for each trainable tensor w:
//!   ema <- d_n * ema + (1 - d_n) * w,     n = updates before this one,
//!   d_n = 0                                      if n <  warmupSteps,
//!   d_n = min(decay, (1 + t) / (10 + t)),  t = n - warmupSteps, otherwise.
//! The (1 + t) / (10 + t) ramp is TensorFlow's
//! `tf.train.ExponentialMovingAverage(decay, num_updates=t)`: early averages
//! are not dominated by the random initialisation. The plain warm-up (copy
//! for the first `warmupSteps` steps) starts the average from weights that
//! have already moved, as "Fixing Data Augmentation to Improve Adversarial
//! Robustness" (Rebuffi et al., 2021) does with its EMA.
//!
//! BatchNorm running statistics (and any other non-trainable buffer) are
//! copied from the trained model after every update, not averaged: as with
//! Keras' `use_ema` (which averages the trainable variables only), the
//! averaged weights are evaluated with the trained model's current
//! statistics.

use crate::config::EmaConfig;
use crate::models::Model;
use std::collections::HashSet;
use tch::nn::VarStore;
use tch::Tensor;

/// The decay of update number `n` (0-based) under `cfg`.
pub fn decay_at(cfg: &EmaConfig, n: u64) -> f64 {
    let warmup = cfg.warmup_steps as u64;
    if n < warmup {
        return 0.0;
    }
    let t = (n - warmup) as f64;
    cfg.decay.min((1.0 + t) / (10.0 + t))
}

pub struct Ema {
    pub cfg: EmaConfig,
    /// The averaged weights, in a model of their own.
    pub model: Model,
    /// Updates so far (the `n` of the next one).
    pub updates: u64,
    /// The names of the trained (averaged) tensors: the VarStore's
    /// trainable variables, as the optimiser defines them; the rest are
    /// buffers (copied).
    averaged: HashSet<String>,
}

impl Ema {
    /// Starts the average at `raw`'s weights; `shell` is a freshly built
    /// model of the same architecture that will hold the average.
    pub fn new(cfg: EmaConfig, raw: &VarStore, shell: Model) -> Ema {
        let trainable: HashSet<usize> = raw
            .trainable_variables()
            .iter()
            .map(|t| t.data_ptr() as usize)
            .collect();
        let averaged = raw
            .variables()
            .into_iter()
            .filter(|(_, t)| trainable.contains(&(t.data_ptr() as usize)))
            .map(|(n, _)| n)
            .collect();
        let mut ema = Ema {
            cfg,
            model: shell,
            updates: 0,
            averaged,
        };
        ema.copy_from(raw);
        ema
    }

    fn copy_from(&mut self, raw: &VarStore) {
        let src = raw.variables();
        tch::no_grad(|| {
            for (name, mut dst) in self.model.vs.variables() {
                dst.copy_(&src[&name]);
            }
        });
    }

    /// One update after an optimiser step of `raw`.
    pub fn update(&mut self, raw: &VarStore) {
        let d = decay_at(&self.cfg, self.updates);
        let src = raw.variables();
        tch::no_grad(|| {
            for (name, mut dst) in self.model.vs.variables() {
                let w = &src[&name];
                if self.averaged.contains(&name) {
                    // d * ema + (1 - d) * w, in the weights' own dtype.
                    let _ = dst.g_mul_scalar_(d);
                    let _ = dst.g_add_(&(w * (1.0 - d)));
                } else {
                    dst.copy_(w);
                }
            }
        });
        self.updates += 1;
    }

    /// The averaged tensors by name (for the resume file).
    pub fn state(&self) -> Vec<(String, Tensor)> {
        self.model.vs.variables().into_iter().collect()
    }
}
