//! CW-inf (as TRADES, MART and ST evaluate it): PGD on the Carlini-Wagner
//! margin loss, largest other logit minus the true logit, L-inf, from a
//! uniform random start (100 steps of 2/255 at eps 8/255 in the paper).
//! The margin does not saturate the way cross-entropy does on confident
//! points, so it finds points PGD on cross-entropy misses.

use super::pgd::{AttackLoss, Descent};
use super::{Attack, AttackContext, Keep, Norm, Work};
use crate::models::Classifier;
use tch::Tensor;

#[derive(Debug, Clone)]
pub struct CwInf {
    pub epsilon: f64,
    pub step_size: f64,
    pub steps: usize,
    pub restarts: usize,
    pub random_start: bool,
    pub keep: Keep,
}

impl Attack for CwInf {
    fn norm(&self) -> Norm {
        Norm::Linf
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
            norm: Norm::Linf,
            epsilon: self.epsilon,
            step_size: self.step_size,
            steps: self.steps,
            restarts: self.restarts,
            random_start: self.random_start,
            loss: AttackLoss::CwMargin,
            keep: self.keep,
        }
        .run_reporting(net, x, y, ctx, report)
    }
}
