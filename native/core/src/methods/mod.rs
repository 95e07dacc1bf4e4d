//! Training methods: a method turns (network, batch) into a loss and its
//! parts. One file per method behind one trait; `build_method` is the registry.

pub mod awp;
pub mod collaborative;
pub mod mart;
pub mod natural;
pub mod pgd_at;
pub mod st;
pub mod trades;

use crate::config::MethodConfig;
use crate::models::Classifier;
use tch::{nn::VarStore, Tensor};

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
    /// Called before the first step of each (1-based) epoch. Methods whose
    /// step depends on the epoch (AWP's warm-up) read it here.
    fn begin_epoch(&mut self, _epoch: usize) {}
    /// Called once the optimiser step that used `loss` is done (or when the
    /// step is abandoned): methods that perturbed the weights inside `loss`
    /// (AWP) remove the perturbation here, after the step, as their
    /// reference code orders it.
    fn after_step(&self) {}
}

/// A method whose step is an inner search for points around x (with the
/// current weights) followed by an outer loss at those points. AWP wraps
/// these: it perturbs the weights between the two.
pub trait TwoStage: Send {
    fn name(&self) -> &'static str;
    /// The inner loop's points, detached (method-specific order).
    fn points(&self, net: &dyn Classifier, x: &Tensor, y: &Tensor) -> Vec<Tensor>;
    /// The outer loss at `points`, with the method's BatchNorm updates.
    fn outer_loss(
        &self,
        net: &dyn Classifier,
        x: &Tensor,
        y: &Tensor,
        points: &[Tensor],
    ) -> StepLoss;
}

/// The method a config names. `vs` holds the network's variables (AWP
/// perturbs the weights in place; the other methods ignore it).
pub fn build_method(cfg: &MethodConfig, vs: &VarStore) -> Box<dyn Method> {
    match cfg {
        MethodConfig::St(c) => Box::new(st::SqueezeTraining::new(c.clone())),
        MethodConfig::Natural {} => Box::new(natural::Natural),
        MethodConfig::PgdAt(c) => Box::new(pgd_at::PgdAt::new(c.clone())),
        MethodConfig::Trades(c) => Box::new(trades::Trades::new(c.clone())),
        MethodConfig::Mart(c) => Box::new(mart::Mart::new(c.clone())),
        MethodConfig::Collaborative(c) => Box::new(collaborative::Collaborative::new(c.clone())),
        MethodConfig::Awp(c) => Box::new(awp::Awp::new(c.clone(), vs)),
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

/// PyTorch's `F.kl_div(input, target, reduction="sum")`: sum over all
/// elements of target * (log target - input), with 0 log 0 = 0 (xlogy) and
/// gradients through both arguments. `input` holds log-probabilities.
pub(crate) fn kl_div_sum(input: &Tensor, target: &Tensor) -> Tensor {
    input.kl_div(target, tch::Reduction::Sum, false)
}

/// Mean cross-entropy of logits against class indices, in the logits' own
/// precision (tch's `cross_entropy_for_logits` always computes in float32).
pub fn cross_entropy(logits: &Tensor, y: &Tensor) -> Tensor {
    logits.log_softmax(-1, None::<tch::Kind>).nll_loss(y)
}
