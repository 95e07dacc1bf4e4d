//! Collaborative examples alone: the ST paper's Eq. 5 variant (method page
//! §8), trained with ST's machinery restricted to its collaborative branch.
//!
//! - inner loop as ST's (method page §4: train mode, each forward with its
//!   own batch statistics, running statistics frozen): x'' = x + 0.001 * N(0, I),
//!   then K sign-DESCENT steps on CE(f(x''), y), each projected onto
//!   B_eps[x] ∩ [0,1] — the collaborative point, of lower loss than x;
//! - outer loss: CE(f(x), y) + beta * KL(f(x'') || f(x)), batch-mean
//!   (`kl_div(log_softmax(f(x)), softmax(f(x'')), "batchmean")`), with
//!   gradients through both arguments: the paper's formula as written, as
//!   TRADES' KL term has them. BatchNorm as in ST's final step: the benign
//!   forward updates the running statistics, the collaborative one does not.
//!
//! The authors released no code for this variant; the method page is the
//! spec. Its formula does not say whether f(x'') is a detached target (as
//! in the KL terms of ST's released code); we keep the gradient through it.
//! Measured on the MNIST digits (README), the detached variant was even less
//! robust than plain training.

use super::st::{forward_branches, START_NOISE};
use super::{correct_count, cross_entropy, kl_div_sum, Method, PartTensors, StepLoss};
use crate::attacks::project;
use crate::config::{Branches as BranchMode, CollaborativeConfig};
use crate::models::{Branches, Classifier, Mode};
use tch::{Kind, Tensor};

pub struct Collaborative {
    cfg: CollaborativeConfig,
}

impl Collaborative {
    pub fn new(cfg: CollaborativeConfig) -> Self {
        Collaborative { cfg }
    }

    /// The collaborative point x'', in B_eps[x] ∩ [0,1] after the first step.
    pub fn inner(&self, net: &dyn Classifier, x: &Tensor, y: &Tensor) -> Tensor {
        let c = &self.cfg;
        let x = x.detach();
        let frozen = Mode::Train(Branches::single(false));
        let mut x_col = &x + x.randn_like() * START_NOISE;
        for _ in 0..c.steps {
            let xc = x_col.detach().set_requires_grad(true);
            let ce = cross_entropy(&net.forward(&xc, &frozen), y);
            let grad = Tensor::run_backward(&[&ce], &[&xc], false, false)
                .pop()
                .expect("one input");
            x_col = project(&(xc.detach() - grad.sign() * c.step_size), &x, c.epsilon);
        }
        x_col.detach()
    }

    /// The outer loss at the collaborative point.
    pub fn outer(&self, net: &dyn Classifier, x: &Tensor, y: &Tensor, x_col: &Tensor) -> StepLoss {
        let out = forward_branches(net, &[x, x_col], &[true, false], BranchMode::Batched);
        let (benign, col) = (&out[0], &out[1]);
        let batch = x.size()[0] as f64;
        let ce_benign = cross_entropy(benign, y);
        let kl = kl_div_sum(
            &benign.log_softmax(-1, None::<Kind>),
            &col.softmax(-1, None::<Kind>),
        ) / batch;
        let loss = &ce_benign + &kl * self.cfg.beta;
        let parts = tch::no_grad(|| PartTensors {
            ce_adv: None,
            ce_benign: Some(ce_benign.detach()),
            ce_col: Some(cross_entropy(col, y)),
            reg: Some(kl.detach()),
        });
        StepLoss {
            correct: correct_count(benign, y),
            loss,
            parts,
        }
    }
}

impl Method for Collaborative {
    fn name(&self) -> &'static str {
        "collaborative"
    }

    fn loss(&self, net: &dyn Classifier, x: &Tensor, y: &Tensor) -> StepLoss {
        let x_col = self.inner(net, x, y);
        self.outer(net, x, y, &x_col)
    }
}
