//! MART (Wang, Zou, Yi, Bailey, Ma, Gu, ICLR 2020), as the authors'
//! `mart_loss` computes it (github.com/YisenWang/MART):
//!
//! - inner loop, model in EVAL mode (`model.eval()`): x' = x + 0.001 * N(0, I),
//!   then K sign-ascent steps on the mean CE(f(x'), y), each projected onto
//!   B_eps[x] ∩ [0,1]; finally clamp to [0,1];
//! - outer loss, TRAIN mode, forwards in the reference's order x then x'
//!   (both update the BatchNorm running statistics), loss = BCE + beta * KL_w:
//!
//!   BCE  = CE(f(x'), y) + mean_i -log(1.0001 - p_{y'_i}(x'_i) + 1e-12), with
//!   y'_i the most likely class other than y_i at x' (the reference takes it
//!   from `argsort`, whose tie order we share by using it);
//!
//!   KL_w = (1/B) sum_i (1.0000001 - p_{y_i}(x_i)) * sum_k KL_k(p(x_i) || p(x'_i) + 1e-12);
//!
//!   with gradients through every term, the weight and the KL's target
//!   included, as in the reference. The constants 1.0001, 1e-12 and
//!   1.0000001 are the reference's.

use super::st::{forward_branches, START_NOISE};
use super::{correct_count, cross_entropy, Method, PartTensors, StepLoss};
use crate::attacks::project;
use crate::config::{Branches as BranchMode, MartConfig};
use crate::models::{Classifier, Mode};
use tch::{Kind, Reduction, Tensor};

pub struct Mart {
    cfg: MartConfig,
}

/// MART's per-sample weight 1.0000001 - p(y|x) from benign logits: in
/// [1e-7, 1 + 1e-7] (the reference's 1e-7 keeps it off zero).
pub fn weight(benign_logits: &Tensor, y: &Tensor) -> Tensor {
    let p_true = benign_logits
        .softmax(-1, None::<Kind>)
        .gather(1, &y.view([-1, 1]), false)
        .squeeze_dim(1);
    p_true.neg() + 1.0000001
}

/// The most likely class other than y, per sample, as the reference picks
/// it: the last two of `argsort(probs)`, the top one unless it is y.
pub fn runner_up(probs: &Tensor, y: &Tensor) -> Tensor {
    let c = probs.size()[1];
    let top2 = probs.argsort(1, false).narrow(1, c - 2, 2);
    let (second, first) = (top2.select(1, 0), top2.select(1, 1));
    second.where_self(&first.eq_tensor(y), &first)
}

impl Mart {
    pub fn new(cfg: MartConfig) -> Self {
        Mart { cfg }
    }

    /// The inner maximisation: the adversarial point x', in B_eps[x] ∩ [0,1].
    pub fn inner(&self, net: &dyn Classifier, x: &Tensor, y: &Tensor) -> Tensor {
        let c = &self.cfg;
        let x = x.detach();
        let mut x_adv = &x + x.randn_like() * START_NOISE;
        for _ in 0..c.steps {
            let xa = x_adv.detach().set_requires_grad(true);
            let ce = cross_entropy(&net.forward(&xa, &Mode::Eval), y);
            let grad = Tensor::run_backward(&[&ce], &[&xa], false, false)
                .pop()
                .expect("one input");
            x_adv = project(&(xa.detach() + grad.sign() * c.step_size), &x, c.epsilon);
        }
        x_adv.clamp(0.0, 1.0).detach()
    }

    /// The outer loss at the adversarial point.
    pub fn outer(&self, net: &dyn Classifier, x: &Tensor, y: &Tensor, x_adv: &Tensor) -> StepLoss {
        let out = forward_branches(net, &[x, x_adv], &[true, true], BranchMode::Batched);
        let (benign, adv) = (&out[0], &out[1]);
        let batch = x.size()[0] as f64;
        let adv_probs = adv.softmax(-1, None::<Kind>);
        let new_y = tch::no_grad(|| runner_up(&adv_probs, y));
        let ce_adv = cross_entropy(adv, y);
        let boost = (adv_probs.neg() + 1.0001 + 1e-12).log().nll_loss(&new_y);
        let nat_probs = benign.softmax(-1, None::<Kind>);
        let kl = (&adv_probs + 1e-12)
            .log()
            .kl_div(&nat_probs, Reduction::None, false)
            .sum_dim_intlist(1, false, None::<Kind>);
        let reg = (kl * weight(benign, y)).sum(None::<Kind>) * (1.0 / batch);
        let loss = &ce_adv + &boost + &reg * self.cfg.beta;
        let parts = tch::no_grad(|| PartTensors {
            ce_adv: Some(ce_adv.detach()),
            ce_benign: Some(cross_entropy(benign, y)),
            ce_col: None,
            reg: Some(reg.detach()),
        });
        StepLoss {
            correct: correct_count(adv, y),
            loss,
            parts,
        }
    }
}

impl Method for Mart {
    fn name(&self) -> &'static str {
        "mart"
    }

    fn loss(&self, net: &dyn Classifier, x: &Tensor, y: &Tensor) -> StepLoss {
        let x_adv = self.inner(net, x, y);
        self.outer(net, x, y, &x_adv)
    }
}
