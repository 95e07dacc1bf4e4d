//! Attacks: an attack turns (network, batch) into adversarial inputs inside
//! the L-inf ball around the batch and inside [0,1].

pub mod pgd;

use tch::Tensor;

/// Projection onto B_eps[x] ∩ [0,1].
pub fn project(x_new: &Tensor, x: &Tensor, epsilon: f64) -> Tensor {
    x_new
        .min_other(&(x + epsilon))
        .max_other(&(x - epsilon))
        .clamp(0.0, 1.0)
}
