//! Image classifiers with PyTorch reference tensor names, and the registry
//! that builds them by name.

pub mod forward_copy;
pub mod preact_resnet;
pub mod registry;
pub mod resnet;
pub mod small_cnn;
pub mod wide_resnet;

pub use registry::{build_model, ignored_prefixes, list_models, Model, ModelInfo};

use tch::Tensor;

/// Branches stacked along dim 0 of a train-mode batch: one entry per
/// equal-size chunk, saying whether that chunk's batch statistics update
/// the BatchNorm running statistics (applied in order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Branches(Vec<bool>);

impl Branches {
    pub fn new(updates: Vec<bool>) -> Self {
        assert!(!updates.is_empty(), "a batch has at least one branch");
        Branches(updates)
    }
    /// A single branch.
    pub fn single(update_running_stats: bool) -> Self {
        Branches(vec![update_running_stats])
    }
    pub fn updates(&self) -> &[bool] {
        &self.0
    }
    pub fn count(&self) -> usize {
        self.0.len()
    }
}

/// How a forward pass treats BatchNorm and dropout, mirroring PyTorch's
/// `model.eval()` / `model.train()` plus the branch structure ST needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Running statistics, no dropout (evaluation and attacks).
    Eval,
    /// Batch statistics per branch, dropout on.
    Train(Branches),
}

impl Mode {
    pub fn is_train(&self) -> bool {
        matches!(self, Mode::Train(_))
    }
}

/// A network: images in [0,1] (N×C×H×W, float) to logits (N×classes).
pub trait Classifier: Send {
    fn forward(&self, xs: &Tensor, mode: &Mode) -> Tensor;
}
