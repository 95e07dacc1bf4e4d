//! BatchNorm with the reference's branch semantics (method page §4).
//!
//! The reference forwards the adversarial, collaborative and benign batches
//! separately, so each gets its own batch statistics, and only some of those
//! forwards update the running statistics. The batched dual-branch pass stacks
//! branches along dim 0; this layer normalises each equal-size chunk with its
//! own statistics and updates the running statistics only for the chunks the
//! `Mode` says, in order — which makes one stacked forward equal to the
//! reference's separate forwards.

use crate::models::Mode;
use tch::{nn::Path, Kind, Tensor};

/// PyTorch defaults.
const MOMENTUM: f64 = 0.1;
const EPS: f64 = 1e-5;

#[derive(Debug)]
pub struct BatchNorm2d {
    weight: Tensor,
    bias: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
    num_batches_tracked: Tensor,
}

impl BatchNorm2d {
    /// Parameter names follow `torch.nn.BatchNorm2d` so checkpoints move both ways.
    pub fn new(p: &Path, channels: i64) -> Self {
        let weight = p.ones("weight", &[channels]);
        let bias = p.zeros("bias", &[channels]);
        let running_mean = p.zeros_no_train("running_mean", &[channels]);
        let running_var = p.ones_no_train("running_var", &[channels]);
        let num_batches_tracked = p.add(
            "num_batches_tracked",
            Tensor::zeros([], (Kind::Int64, p.device())),
            false,
        );
        BatchNorm2d {
            weight,
            bias,
            running_mean,
            running_var,
            num_batches_tracked,
        }
    }

    fn normalise(&self, xs: &Tensor, training: bool, update_running: bool) -> Tensor {
        let (rm, rv) = if !training || update_running {
            (Some(&self.running_mean), Some(&self.running_var))
        } else {
            // Batch statistics without touching the running ones.
            (None, None)
        };
        if training && update_running {
            tch::no_grad(|| {
                let _ = self.num_batches_tracked.shallow_clone().g_add_scalar_(1);
            });
        }
        xs.batch_norm(
            Some(&self.weight),
            Some(&self.bias),
            rm,
            rv,
            training,
            MOMENTUM,
            EPS,
            true,
        )
    }

    pub fn forward(&self, xs: &Tensor, mode: &Mode) -> Tensor {
        match mode {
            Mode::Eval => self.normalise(xs, false, false),
            Mode::Train(branches) => {
                let updates = branches.updates();
                if updates.len() == 1 {
                    return self.normalise(xs, true, updates[0]);
                }
                let chunks = xs.chunk(updates.len() as i64, 0);
                let outs: Vec<Tensor> = chunks
                    .iter()
                    .zip(updates)
                    .map(|(c, &u)| self.normalise(c, true, u))
                    .collect();
                Tensor::cat(&outs, 0)
            }
        }
    }
}
