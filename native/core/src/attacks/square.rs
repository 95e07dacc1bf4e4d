//! Square Attack (Andriushchenko et al., ECCV 2020): score-based random
//! search with square-shaped updates.
//! STUB: to be implemented (see the struct's fields for the contract).

use super::{Attack, AttackContext, Norm};
use crate::models::Classifier;
use tch::Tensor;

#[derive(Debug, Clone)]
pub struct Square {
    pub norm: Norm,
    pub epsilon: f64,
    /// Queries (model evaluations) per point (5000 in the standard version).
    pub queries: usize,
    pub restarts: usize,
    /// Initial fraction of pixels changed per update (0.8).
    pub p_init: f64,
}

impl Attack for Square {
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
