//! Training methods: a method turns (network, batch) into a loss and its
//! parts. One file per method behind one trait; `build_method` is the registry.

pub mod natural;
pub mod pgd_at;
pub mod st;

use crate::config::MethodConfig;
use crate::models::Classifier;
use tch::Tensor;

/// Loss parts as detached scalar tensors, read on the host only when an event
/// is emitted (no per-step device syncs for bookkeeping).
#[derive(Debug, Default)]
pub struct PartTensors {
    pub ce_adv: Option<Tensor>,
    pub ce_benign: Option<Tensor>,
    pub ce_col: Option<Tensor>,
    pub reg: Option<Tensor>,
}

pub struct StepLoss {
    /// The scalar to minimise (with graph).
    pub loss: Tensor,
    pub parts: PartTensors,
    /// Number of samples of the batch the trained-on logits classify
    /// correctly (detached scalar), for training accuracy.
    pub correct: Tensor,
}

pub trait Method: Send {
    fn name(&self) -> &'static str;
    /// Builds the loss for one mini-batch: x in [0,1] (N×C×H×W), y class indices.
    /// Forward passes run in train mode; BatchNorm running statistics are
    /// updated exactly as the method's reference does.
    fn loss(&self, net: &dyn Classifier, x: &Tensor, y: &Tensor) -> StepLoss;
}

pub fn build_method(cfg: &MethodConfig) -> Box<dyn Method> {
    match cfg {
        MethodConfig::St(c) => Box::new(st::SqueezeTraining::new(c.clone())),
        MethodConfig::Natural {} => Box::new(natural::Natural),
        MethodConfig::PgdAt(c) => Box::new(pgd_at::PgdAt::new(c.clone())),
    }
}

/// Count of rows of `logits` whose argmax is `y`.
pub(crate) fn correct_count(logits: &Tensor, y: &Tensor) -> Tensor {
    logits
        .detach()
        .argmax(-1, false)
        .eq_tensor(y)
        .sum(tch::Kind::Int64)
}

/// Mean cross-entropy of logits against class indices, in the logits' own
/// precision (tch's `cross_entropy_for_logits` always computes in float32).
pub fn cross_entropy(logits: &Tensor, y: &Tensor) -> Tensor {
    logits.log_softmax(-1, None::<tch::Kind>).nll_loss(y)
}
