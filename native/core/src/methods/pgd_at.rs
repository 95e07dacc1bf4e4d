//! PGD adversarial training (Madry et al., 2018): cross-entropy on PGD points
//! found with a uniform random start. The attack runs in train mode without
//! updating BatchNorm running statistics (as ST's inner loop does); the
//! training forward updates them.

use super::{correct_count, cross_entropy, Method, PartTensors, StepLoss};
use crate::attacks::pgd::{AttackLoss, Pgd};
use crate::config::PgdAtConfig;
use crate::models::{Branches, Classifier, Mode};
use tch::Tensor;

pub struct PgdAt {
    attack: Pgd,
}

impl PgdAt {
    pub fn new(c: PgdAtConfig) -> Self {
        PgdAt {
            attack: Pgd {
                epsilon: c.epsilon,
                step_size: c.step_size,
                steps: c.steps,
                random_start: true,
                loss: AttackLoss::CrossEntropy,
            },
        }
    }
}

impl Method for PgdAt {
    fn name(&self) -> &'static str {
        "pgd_at"
    }

    fn loss(&self, net: &dyn Classifier, x: &Tensor, y: &Tensor) -> StepLoss {
        let x_adv = self
            .attack
            .run(net, x, y, &Mode::Train(Branches::single(false)));
        let logits = net.forward(&x_adv, &Mode::Train(Branches::single(true)));
        let loss = cross_entropy(&logits, y);
        let parts = PartTensors {
            ce_adv: Some(loss.detach()),
            ..Default::default()
        };
        StepLoss {
            correct: correct_count(&logits, y),
            loss,
            parts,
        }
    }
}
