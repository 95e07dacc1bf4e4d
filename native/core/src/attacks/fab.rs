//! FAB (Croce & Hein, ICML 2020): minimum-norm attack by linear
//! approximation of the decision boundary, targeted version (FAB-T).
//! STUB: to be implemented (see the struct's fields for the contract).

use super::{Attack, AttackContext, Norm};
use crate::models::Classifier;
use tch::Tensor;

#[derive(Debug, Clone)]
pub struct Fab {
    pub norm: Norm,
    pub epsilon: f64,
    /// Iterations per run (100 in the standard version).
    pub steps: usize,
    /// Restarts per target (1 in the standard version).
    pub restarts: usize,
    /// Some(k): targeted, one run per target class (the k classes with the
    /// highest clean logits after the true one), each only on the points
    /// still robust (FAB-T, k = 9 in the standard version). None: untargeted.
    pub targets: Option<usize>,
    pub alpha_max: f64,
    pub eta: f64,
    pub beta: f64,
}

impl Attack for Fab {
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
