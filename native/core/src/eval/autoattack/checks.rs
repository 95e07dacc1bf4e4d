//! The official package's `checks.py`, run on a batch of clean-correct
//! images before the attack: outputs that change between two passes
//! (randomised model), probabilities instead of logits, non-finite outputs,
//! and zero or non-finite input gradients. Each failure is a warning.

use crate::attacks::AutoAttackVersion;
use crate::models::{Classifier, Mode};
use tch::{Kind, Tensor};

/// The official package's checks on a batch of images, as warnings.
pub fn sanity_checks(
    net: &dyn Classifier,
    x: &Tensor,
    y: &Tensor,
    version: AutoAttackVersion,
) -> Vec<String> {
    let mut warnings = Vec::new();
    let (a, b) = tch::no_grad(|| (net.forward(x, &Mode::Eval), net.forward(x, &Mode::Eval)));
    let scale = a.abs().max().double_value(&[]).max(1e-12);
    let changed = (&a - &b).abs().max().double_value(&[]) / scale;
    let randomised = changed > 1e-5;
    if randomised && version == AutoAttackVersion::Standard {
        warnings.push(format!(
            "the model's outputs change between two passes on the same images (by {changed:.1e} relative): it looks randomised, and the standard version assumes a deterministic model; use version rand (expectation over transformation)"
        ));
    }
    if !randomised && version == AutoAttackVersion::Rand {
        warnings.push("the model's outputs do not change between two passes: it is deterministic, and the standard version is the stronger evaluation for it".into());
    }
    if a.isfinite().logical_not().any().int64_value(&[]) != 0 {
        warnings.push("the model's outputs contain NaN or infinity".into());
    }
    let sums = a.sum_dim_intlist([1i64].as_slice(), false, None::<Kind>);
    let in_unit = a.min().double_value(&[]) >= 0.0 && a.max().double_value(&[]) <= 1.0;
    if in_unit && (sums - 1.0).abs().max().double_value(&[]) < 1e-4 {
        warnings.push("the model's outputs are in [0,1] and sum to 1: probabilities, not logits; the DLR and margin losses expect logits, and a softmax at the end can mask gradients".into());
    }
    let xg = x.detach().set_requires_grad(true);
    let loss = net
        .forward(&xg, &Mode::Eval)
        .log_softmax(-1, None::<Kind>)
        .nll_loss_nd::<Tensor>(y, None, tch::Reduction::Sum, -100);
    let g = Tensor::run_backward(&[loss], &[&xg], false, false).remove(0);
    let n = x.size()[0];
    let flat = g.reshape([n, -1]);
    if flat.isfinite().logical_not().any().int64_value(&[]) != 0 {
        warnings.push("the gradient of the loss contains NaN or infinity".into());
    }
    let zero = flat
        .abs()
        .amax([1i64].as_slice(), false)
        .eq(0.0)
        .sum(Kind::Int64)
        .int64_value(&[]);
    if zero > 0 {
        warnings.push(format!(
            "{zero} of {n} images have a zero gradient of the loss (gradient masking?): gradient-based attacks cannot move them, and their robustness may be overestimated"
        ));
    }
    warnings
}
