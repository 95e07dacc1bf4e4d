//! TRADES (Zhang, Yu, Jiao, Xing, El Ghaoui, Jordan, ICML 2019), as the
//! authors' `trades_loss` computes it (github.com/yaodongyu/TRADES):
//!
//! - inner loop, model in EVAL mode (`model.eval()`: running statistics, no
//!   dropout): x' = x + 0.001 * N(0, I), then K times
//!   x' <- Proj_{B_eps[x] ∩ [0,1]}(x' + alpha * sign(grad_x' KL_sum)), with
//!   KL_sum = sum over the batch of KL(f(x) || f(x')) (`KLDivLoss(size_average=False)`);
//!   finally clamp to [0,1] (a no-op after any step);
//! - outer loss, TRAIN mode: CE(f(x), y) + beta * KL_sum(f(x) || f(x')) / B,
//!   with gradients through both sides of the KL (the reference does not
//!   detach its target), and the reference's three training forwards in its
//!   order — x (for CE), x', x (the KL target) — each normalised with its own
//!   batch statistics and each updating the BatchNorm running statistics.
//!   They run as one stacked forward with per-branch statistics (the same
//!   numbers as separate forwards, checked in the parity test). Inside AWP
//!   the order is the TRADES-AWP code's instead: x', x (KL target), x (CE);
//!   only the order of the running-statistics updates differs.

use super::st::{forward_branches, START_NOISE};
use super::{correct_count, cross_entropy, kl_div_sum, Method, PartTensors, StepLoss, TwoStage};
use crate::attacks::project;
use crate::config::{Branches as BranchMode, TradesConfig};
use crate::models::{Classifier, Mode};
use tch::{Kind, Tensor};

pub struct Trades {
    cfg: TradesConfig,
    /// Forward order of the outer loss: the AWP code's (x' first) when set.
    adversarial_first: bool,
}

impl Trades {
    pub fn new(cfg: TradesConfig) -> Self {
        Trades {
            cfg,
            adversarial_first: false,
        }
    }

    /// TRADES with the outer forwards in the TRADES-AWP code's order.
    pub fn in_awp_order(cfg: TradesConfig) -> Self {
        Trades {
            cfg,
            adversarial_first: true,
        }
    }

    /// The inner maximisation: the adversarial point x', in B_eps[x] ∩ [0,1].
    pub fn inner(&self, net: &dyn Classifier, x: &Tensor) -> Tensor {
        let c = &self.cfg;
        let x = x.detach();
        let mut x_adv = &x + x.randn_like() * START_NOISE;
        // The reference recomputes f(x) at every step; in eval mode it is
        // the same each time (and it only enters as the KL's target).
        let target = tch::no_grad(|| net.forward(&x, &Mode::Eval).softmax(-1, None::<Kind>));
        for _ in 0..c.steps {
            let xa = x_adv.detach().set_requires_grad(true);
            let log_p = net.forward(&xa, &Mode::Eval).log_softmax(-1, None::<Kind>);
            let kl = kl_div_sum(&log_p, &target);
            let grad = Tensor::run_backward(&[&kl], &[&xa], false, false)
                .pop()
                .expect("one input");
            x_adv = project(&(xa.detach() + grad.sign() * c.step_size), &x, c.epsilon);
        }
        x_adv.clamp(0.0, 1.0).detach()
    }

    /// The outer loss at the adversarial point.
    pub fn outer(&self, net: &dyn Classifier, x: &Tensor, y: &Tensor, x_adv: &Tensor) -> StepLoss {
        let order = if self.adversarial_first {
            [x_adv, x, x]
        } else {
            [x, x_adv, x]
        };
        let out = forward_branches(net, &order, &[true, true, true], BranchMode::Batched);
        let (benign, adv, target) = if self.adversarial_first {
            (&out[2], &out[0], &out[1])
        } else {
            (&out[0], &out[1], &out[2])
        };
        let batch = x.size()[0] as f64;
        let ce_benign = cross_entropy(benign, y);
        let kl = kl_div_sum(
            &adv.log_softmax(-1, None::<Kind>),
            &target.softmax(-1, None::<Kind>),
        ) * (1.0 / batch);
        let loss = &ce_benign + &kl * self.cfg.beta;
        let parts = tch::no_grad(|| PartTensors {
            ce_adv: Some(cross_entropy(adv, y)),
            ce_benign: Some(ce_benign.detach()),
            ce_col: None,
            reg: Some(kl.detach()),
        });
        StepLoss {
            correct: correct_count(benign, y),
            loss,
            parts,
        }
    }
}

impl Method for Trades {
    fn name(&self) -> &'static str {
        "trades"
    }

    fn loss(&self, net: &dyn Classifier, x: &Tensor, y: &Tensor) -> StepLoss {
        let x_adv = self.inner(net, x);
        self.outer(net, x, y, &x_adv)
    }
}

impl TwoStage for Trades {
    fn name(&self) -> &'static str {
        "trades"
    }

    fn points(&self, net: &dyn Classifier, x: &Tensor, _y: &Tensor) -> Vec<Tensor> {
        vec![self.inner(net, x)]
    }

    fn outer_loss(
        &self,
        net: &dyn Classifier,
        x: &Tensor,
        y: &Tensor,
        points: &[Tensor],
    ) -> StepLoss {
        self.outer(net, x, y, &points[0])
    }
}
