//! APGD (Croce & Hein, ICML 2020): step-size-free PGD with momentum.
//! STUB: to be implemented (see the struct's fields for the contract).

use super::{Attack, AttackContext, Norm};
use crate::models::Classifier;
use tch::Tensor;

/// The loss APGD ascends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApgdLoss {
    /// Cross-entropy (APGD-CE).
    CrossEntropy,
    /// Untargeted difference-of-logits ratio (APGD-DLR, the `rand` version).
    Dlr,
    /// Targeted DLR (APGD-T): one run per target class, the `targets` classes
    /// with the highest clean logits after the true one, each run only on the
    /// points still classified correctly.
    DlrTargeted { targets: usize },
}

#[derive(Debug, Clone)]
pub struct Apgd {
    pub norm: Norm,
    pub epsilon: f64,
    /// Iterations per run (100 in the standard version).
    pub steps: usize,
    /// Random restarts per run (1 in the standard version).
    pub restarts: usize,
    pub loss: ApgdLoss,
    /// Gradient averaged over this many forward/backward passes (1; 20 in
    /// the `rand` version, for randomised models).
    pub eot_iter: usize,
    /// The checkpoint condition's fraction (0.75).
    pub rho: f64,
}

impl Attack for Apgd {
    fn norm(&self) -> Norm {
        self.norm
    }
    fn epsilon(&self) -> f64 {
        self.epsilon
    }
    fn perturb(
        &self,
        _net: &dyn Classifier,
        x: &Tensor,
        _y: &Tensor,
        _ctx: &AttackContext,
    ) -> Tensor {
        x.shallow_clone()
    }
}
