//! Plain cross-entropy training: the "normally trained" baseline.

use super::{correct_count, cross_entropy, Method, PartTensors, StepLoss};
use crate::models::{Branches, Classifier, Mode};
use tch::Tensor;

pub struct Natural;

impl Method for Natural {
    fn name(&self) -> &'static str {
        "natural"
    }

    fn loss(&self, net: &dyn Classifier, x: &Tensor, y: &Tensor) -> StepLoss {
        let logits = net.forward(x, &Mode::Train(Branches::single(true)));
        let loss = cross_entropy(&logits, y);
        let parts = PartTensors {
            ce_benign: Some(loss.detach()),
            ..Default::default()
        };
        StepLoss {
            correct: correct_count(&logits, y),
            loss,
            parts,
        }
    }
}
