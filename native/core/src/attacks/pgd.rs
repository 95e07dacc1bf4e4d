//! L-inf PGD with sign-gradient steps; FGSM and CW-inf are configurations of it
//! (`Pgd::fgsm`, `AttackLoss::CwMargin`).

use super::project;
use crate::models::{Classifier, Mode};
use tch::{Kind, Tensor};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttackLoss {
    CrossEntropy,
    /// Carlini-Wagner margin: largest other logit minus the true logit.
    CwMargin,
}

#[derive(Debug, Clone)]
pub struct Pgd {
    pub epsilon: f64,
    pub step_size: f64,
    pub steps: usize,
    /// Uniform random start in the eps-ball (PGD); none for FGSM.
    pub random_start: bool,
    pub loss: AttackLoss,
}

impl Pgd {
    /// One step of size eps from the clean point.
    pub fn fgsm(epsilon: f64) -> Self {
        Pgd {
            epsilon,
            step_size: epsilon,
            steps: 1,
            random_start: false,
            loss: AttackLoss::CrossEntropy,
        }
    }

    pub fn name(&self) -> String {
        match (self.loss, self.steps, self.random_start) {
            (AttackLoss::CrossEntropy, 1, false) => "fgsm".into(),
            (AttackLoss::CrossEntropy, k, _) => format!("pgd-{k}"),
            (AttackLoss::CwMargin, k, _) => format!("cw-{k}"),
        }
    }

    fn objective(&self, logits: &Tensor, y: &Tensor) -> Tensor {
        match self.loss {
            // Sum, not mean: the sign of the gradient is the same and it does
            // not shrink with the batch size.
            AttackLoss::CrossEntropy => {
                logits.log_softmax(-1, None::<Kind>).nll_loss_nd::<Tensor>(
                    y,
                    None,
                    tch::Reduction::Sum,
                    -100,
                ) * -1.0
            }
            AttackLoss::CwMargin => {
                let true_logit = logits.gather(1, &y.view([-1, 1]), false).squeeze_dim(1);
                let onehot = y.one_hot(logits.size()[1]).to_kind(Kind::Bool);
                let others = logits
                    .masked_fill(&onehot, f64::NEG_INFINITY)
                    .amax([1], false);
                (others - true_logit).sum(None::<Kind>)
            }
        }
    }

    /// Adversarial inputs for (x, y), with the network in `mode` (Eval for
    /// evaluation; train mode without running-stat updates inside training).
    pub fn run(&self, net: &dyn Classifier, x: &Tensor, y: &Tensor, mode: &Mode) -> Tensor {
        let x = x.detach();
        let mut x_adv = if self.random_start {
            project(
                &(&x + x.rand_like() * (2.0 * self.epsilon) - self.epsilon),
                &x,
                self.epsilon,
            )
        } else {
            x.shallow_clone()
        };
        for _ in 0..self.steps {
            let xv = x_adv.detach().set_requires_grad(true);
            let obj = self.objective(&net.forward(&xv, mode), y);
            let grad = Tensor::run_backward(&[&obj], &[&xv], false, false)
                .pop()
                .expect("one input");
            x_adv = project(
                &(xv.detach() + grad.sign() * self.step_size),
                &x,
                self.epsilon,
            );
        }
        x_adv
    }
}
