//! FGSM (Goodfellow et al.): one ascent step of size eps on cross-entropy
//! from the clean point, no random start (L-inf: the gradient's sign; L2:
//! the normalised gradient).

use super::pgd::{AttackLoss, Descent};
use super::{Attack, AttackContext, Keep, Norm, Work};
use crate::models::Classifier;
use tch::Tensor;

#[derive(Debug, Clone)]
pub struct Fgsm {
    pub norm: Norm,
    pub epsilon: f64,
    /// `Best` also keeps the clean point where the step made the loss lower
    /// (so FGSM never scores above clean); `Last` is the textbook step.
    pub keep: Keep,
}

impl Attack for Fgsm {
    fn norm(&self) -> Norm {
        self.norm
    }
    fn epsilon(&self) -> f64 {
        self.epsilon
    }
    fn perturb_reporting(
        &self,
        net: &dyn Classifier,
        x: &Tensor,
        y: &Tensor,
        ctx: &AttackContext,
        report: &mut dyn FnMut(Work),
    ) -> Tensor {
        Descent {
            norm: self.norm,
            epsilon: self.epsilon,
            step_size: self.epsilon,
            steps: 1,
            restarts: 1,
            random_start: false,
            loss: AttackLoss::CrossEntropy,
            keep: self.keep,
        }
        .run_reporting(net, x, y, ctx, report)
    }
}
