//! Adversarial weight perturbation (Wu, Xia, Wang, NeurIPS 2020) around a
//! two-stage method's loss (TRADES-AWP, ST-AWP), as the authors' code orders
//! it (github.com/csdongxian/AWP, `trades_AWP/train_trades_cifar.py` and
//! `utils_awp.py`):
//!
//! 1. the inner method finds its points with the current weights w;
//! 2. `calc_awp`: the gradient g of the inner method's outer loss at w (the
//!    reference takes one SGD step on a proxy copy of the model with the
//!    negated loss and reads the weight difference; the proxy's BatchNorm
//!    updates never reach the model, so ours are undone after this pass);
//!    for every weight tensor with more than one dimension whose name
//!    contains "weight" (conv kernels, linear matrices; not BatchNorm or
//!    biases): v = gamma * ||w|| / (||g|| + 1e-20) * g (Frobenius norms);
//! 3. `perturb`: w <- w + v;
//! 4. the outer loss at the perturbed weights (its BatchNorm updates are
//!    kept), backward, optimiser step (weight decay and momentum see w + v);
//! 5. `restore`: w <- w - v, in `after_step`.
//!
//! The reference's proxy step size cancels in the normalisation; we use g
//! itself (the difference is rounding, and where g = 0 both give v = 0).
//! AWP is active from epoch `warmup + 1` on: the TRADES-AWP code's
//! `--awp-warmup 10` (AWP once the 1-based epoch is >= 10) is `warmup: 9`
//! here, the AT-AWP code's 0 (0-based epochs) is 0. gamma = 0 turns AWP
//! off, as in the reference.

use super::st::SqueezeTraining;
use super::trades::Trades;
use super::{Method, StepLoss, TwoStage};
use crate::config::{AwpConfig, AwpInner};
use crate::models::Classifier;
use std::cell::RefCell;
use tch::{nn::VarStore, Tensor};

/// The reference's EPS in `diff_in_weights`.
const NORM_EPS: f64 = 1e-20;

pub struct Awp {
    inner: Box<dyn TwoStage>,
    gamma: f64,
    warmup: usize,
    active: bool,
    /// The perturbed variables (shallow clones sharing the model's storage), by name.
    weights: Vec<(String, Tensor)>,
    /// BatchNorm buffers (every non-trainable variable), restored after the
    /// gradient pass as the reference's proxy leaves the model's alone.
    buffers: Vec<Tensor>,
    /// The perturbation currently added to `weights`, removed by `after_step`.
    applied: RefCell<Option<Vec<Tensor>>>,
}

/// The variables AWP perturbs, sorted by name: trainable, more than one
/// dimension, "weight" in the name (the reference's `diff_in_weights` filter).
pub fn perturbed_variables(vs: &VarStore) -> Vec<(String, Tensor)> {
    let trainable = vs.trainable_variables();
    let mut out: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .filter(|(name, t)| {
            t.dim() > 1
                && name.contains("weight")
                && trainable.iter().any(|v| v.data_ptr() == t.data_ptr())
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn buffer_variables(vs: &VarStore) -> Vec<Tensor> {
    let trainable = vs.trainable_variables();
    let mut out: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .filter(|(_, t)| !trainable.iter().any(|v| v.data_ptr() == t.data_ptr()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.into_iter().map(|(_, t)| t).collect()
}

impl Awp {
    pub fn new(cfg: AwpConfig, vs: &VarStore) -> Self {
        let inner: Box<dyn TwoStage> = match cfg.inner {
            AwpInner::Trades(c) => Box::new(Trades::in_awp_order(c)),
            AwpInner::St(c) => Box::new(SqueezeTraining::new(c)),
        };
        Awp {
            inner,
            gamma: cfg.gamma,
            warmup: cfg.warmup,
            active: false,
            weights: perturbed_variables(vs),
            buffers: buffer_variables(vs),
            applied: RefCell::new(None),
        }
    }

    /// Whether the current epoch perturbs the weights.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// The wrapped method's name ("trades" or "st").
    pub fn inner_name(&self) -> &'static str {
        self.inner.name()
    }

    /// `calc_awp`: the perturbation of each perturbed variable, from the
    /// gradient of the inner method's outer loss at the current weights.
    /// Leaves weights and BatchNorm buffers as they were.
    pub fn perturbation(
        &self,
        net: &dyn Classifier,
        x: &Tensor,
        y: &Tensor,
        points: &[Tensor],
    ) -> Vec<Tensor> {
        let saved: Vec<Tensor> = tch::no_grad(|| self.buffers.iter().map(|b| b.copy()).collect());
        let loss = self.inner.outer_loss(net, x, y, points).loss;
        let weights: Vec<&Tensor> = self.weights.iter().map(|(_, w)| w).collect();
        let grads = Tensor::run_backward(&[&loss], &weights, false, false);
        tch::no_grad(|| {
            for (b, s) in self.buffers.iter().zip(&saved) {
                b.shallow_clone().copy_(s);
            }
            weights
                .iter()
                .zip(&grads)
                .map(|(w, g)| {
                    if !g.defined() {
                        return w.zeros_like();
                    }
                    let scale = w.norm() / (g.norm() + NORM_EPS);
                    g * scale * self.gamma
                })
                .collect()
        })
    }

    fn add(&self, deltas: &[Tensor], sign: f64) {
        tch::no_grad(|| {
            for ((_, w), d) in self.weights.iter().zip(deltas) {
                let _ = w.shallow_clone().g_add_(&(d * sign));
            }
        });
    }
}

impl Method for Awp {
    fn name(&self) -> &'static str {
        "awp"
    }

    fn begin_epoch(&mut self, epoch: usize) {
        self.active = self.gamma > 0.0 && epoch > self.warmup;
    }

    fn loss(&self, net: &dyn Classifier, x: &Tensor, y: &Tensor) -> StepLoss {
        // A perturbation left by an abandoned step would compound: remove it.
        self.after_step();
        let points = self.inner.points(net, x, y);
        if self.active {
            let v = self.perturbation(net, x, y, &points);
            self.add(&v, 1.0);
            *self.applied.borrow_mut() = Some(v);
        }
        self.inner.outer_loss(net, x, y, &points)
    }

    fn after_step(&self) {
        if let Some(v) = self.applied.borrow_mut().take() {
            self.add(&v, -1.0);
        }
    }
}

impl TwoStage for SqueezeTraining {
    fn name(&self) -> &'static str {
        "st"
    }

    fn points(&self, net: &dyn Classifier, x: &Tensor, y: &Tensor) -> Vec<Tensor> {
        let (x_adv, x_col) = self.inner(net, x, y);
        vec![x_adv, x_col]
    }

    fn outer_loss(
        &self,
        net: &dyn Classifier,
        x: &Tensor,
        y: &Tensor,
        points: &[Tensor],
    ) -> StepLoss {
        self.outer(net, x, y, &points[0], &points[1])
    }
}
