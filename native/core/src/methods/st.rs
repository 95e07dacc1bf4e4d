//! Squeeze Training (Li et al., ICLR 2023), Algorithm 1 exactly as the method
//! page (§3, §4) specifies.
//!
//! Slots, in the reference's order (ties go to the first): 0 = the benign
//! point x, 1 = the collaborative slot x'', 2 = the adversarial slot x'.
//! Each inner step forwards the two slots (train mode, per-branch batch
//! statistics, running statistics frozen), picks per sample the point with the
//! lowest p(y|.) as x_adv and the highest as x_col from {x, x'', x'}, and moves
//! each selected point one sign-gradient step up the discrepancy
//! reg(f(x_adv), f(x_col)) *from the point itself, with the gradient taken at
//! that point* (the reference's unswapped update is a known quirk we do not
//! copy). The final loss re-selects from fresh forwards:
//! CE(f(x), y) + beta * reg(f(x_adv), f(x_col)).

use super::{correct_count, cross_entropy, Method, PartTensors, StepLoss};
use crate::attacks::project;
use crate::config::{Branches as BranchMode, StConfig};
use crate::divergence::reg_loss;
use crate::models::{Branches, Classifier, Mode};
use tch::{Kind, Tensor};

pub const SLOT_BENIGN: i64 = 0;
pub const SLOT_COL: i64 = 1;
pub const SLOT_ADV: i64 = 2;

/// Scale of the two small Gaussian starts.
pub(crate) const START_NOISE: f64 = 0.001;

pub struct SqueezeTraining {
    cfg: StConfig,
}

/// Per-sample choice from the triplet {x, x'', x'}: the slot with the lowest
/// p(y|.) (x_adv, "upper" loss) and with the highest (x_col, "lower" loss).
pub struct Selection {
    pub adv: Tensor,
    pub col: Tensor,
}

/// Selects from logits of the three slots (no gradient). Ties go to the
/// lowest slot index, so a sample whose three points agree picks x twice
/// and gets zero discrepancy, as in the reference.
pub fn select(benign: &Tensor, col: &Tensor, adv: &Tensor, y: &Tensor) -> Selection {
    tch::no_grad(|| {
        let p_true = |l: &Tensor| {
            l.softmax(-1, None::<Kind>)
                .gather(1, &y.view([-1, 1]), false)
                .squeeze_dim(1)
        };
        let ps = Tensor::stack(&[p_true(benign), p_true(col), p_true(adv)], 0);
        Selection {
            adv: first_arg(&ps, false),
            col: first_arg(&ps, true),
        }
    })
}

/// Index of the first minimum (or maximum) along dim 0 of a [3, B] tensor.
/// Written out rather than relying on argmin's tie order.
fn first_arg(ps: &Tensor, max: bool) -> Tensor {
    let best = if max {
        ps.amax([0], true)
    } else {
        ps.amin([0], true)
    };
    let hits = ps.eq_tensor(&best).to_kind(Kind::Int64);
    // The first hit has the largest value of hits * (3 - index).
    let rank = Tensor::arange(3, (Kind::Int64, ps.device()))
        .view([3, 1])
        .neg()
        + 3;
    (hits * rank).argmax(0, false)
}

/// Per-sample pick from three candidates (same shape [B, ...]) by slot index;
/// gradients flow back to the picked candidate only.
pub fn pick(candidates: [&Tensor; 3], slot: &Tensor) -> Tensor {
    let shape = candidates[0].size();
    let b = shape[0];
    // reshape, not view: channels-last candidates (memoryFormat
    // channels_last, and their input gradients) stack into a tensor that no
    // view can flatten; for contiguous ones reshape is the same view.
    let stacked = Tensor::stack(&candidates, 0).reshape([3, b, -1]);
    let d = stacked.size()[2];
    let index = slot.view([1, b, 1]).expand([1, b, d], false);
    stacked.gather(0, &index, false).view(shape.as_slice())
}

/// Forwards several equal-size batches, each with its own BatchNorm batch
/// statistics; `updates[i]` says whether batch i updates the running
/// statistics (in order). Batched: one stacked forward; separate: one each.
pub fn forward_branches(
    net: &dyn Classifier,
    inputs: &[&Tensor],
    updates: &[bool],
    mode: BranchMode,
) -> Vec<Tensor> {
    match mode {
        BranchMode::Batched if inputs.len() > 1 => {
            let stacked = Tensor::cat(inputs, 0);
            let logits = net.forward(&stacked, &Mode::Train(Branches::new(updates.to_vec())));
            logits.chunk(inputs.len() as i64, 0)
        }
        _ => inputs
            .iter()
            .zip(updates)
            .map(|(x, &u)| net.forward(x, &Mode::Train(Branches::single(u))))
            .collect(),
    }
}

impl SqueezeTraining {
    pub fn new(cfg: StConfig) -> Self {
        SqueezeTraining { cfg }
    }

    /// Algorithm 1's inner loop. Returns the final (adversarial slot,
    /// collaborative slot); both lie in B_eps[x] ∩ [0,1] after the first step.
    pub fn inner(&self, net: &dyn Classifier, x: &Tensor, y: &Tensor) -> (Tensor, Tensor) {
        let c = &self.cfg;
        let x = x.detach();
        let frozen = Mode::Train(Branches::single(false));
        // The reference draws the adversarial start's noise first.
        let mut x_adv = &x + x.randn_like() * START_NOISE;
        let mut x_col = &x + x.randn_like() * START_NOISE;
        let mut benign_logits = tch::no_grad(|| net.forward(&x, &frozen));
        for _ in 0..c.steps {
            let xc = x_col.detach().set_requires_grad(true);
            let xa = x_adv.detach().set_requires_grad(true);
            let out = forward_branches(net, &[&xc, &xa], &[false, false], c.branches);
            let (col_logits, adv_logits) = (&out[0], &out[1]);
            let sel = select(&benign_logits, col_logits, adv_logits, y);

            // The benign point needs a gradient only if some sample selected it.
            // (One host sync per inner step; the reference has the same branch.)
            let benign_selected = (sel.adv.eq(SLOT_BENIGN).logical_or(&sel.col.eq(SLOT_BENIGN)))
                .any()
                .int64_value(&[])
                != 0;
            let xb = x.detach().set_requires_grad(benign_selected);
            let benign_for_grad = if benign_selected {
                // Same values as the cached logits when the net has no dropout;
                // with dropout the reference also keeps the fresh ones.
                let l = net.forward(&xb, &frozen);
                benign_logits = l.detach();
                l
            } else {
                benign_logits.shallow_clone()
            };

            let upper = pick([&benign_for_grad, col_logits, adv_logits], &sel.adv);
            let lower = pick([&benign_for_grad, col_logits, adv_logits], &sel.col);
            let g = reg_loss(c.reg, &upper, &lower);
            let grads = if benign_selected {
                Tensor::run_backward(&[&g], &[&xb, &xc, &xa], false, false)
            } else {
                let mut gs = Tensor::run_backward(&[&g], &[&xc, &xa], false, false);
                gs.insert(0, x.zeros_like());
                gs
            };
            let points = [&x, &xc.detach(), &xa.detach()];
            let grads = [&grads[0], &grads[1], &grads[2]];
            let step = |slot: &Tensor| {
                let from = pick(points, slot);
                let dir = pick(grads, slot).sign();
                project(&(from + dir * c.step_size), &x, c.epsilon)
            };
            x_adv = step(&sel.adv);
            x_col = step(&sel.col);
        }
        (x_adv.detach(), x_col.detach())
    }

    /// The outer loss on the final slots, with the reference's BatchNorm
    /// updates: benign then adversarial forwards update running statistics,
    /// the collaborative forward does not.
    pub fn outer(
        &self,
        net: &dyn Classifier,
        x: &Tensor,
        y: &Tensor,
        x_adv: &Tensor,
        x_col: &Tensor,
    ) -> StepLoss {
        let c = &self.cfg;
        let out = forward_branches(net, &[x, x_adv, x_col], &[true, true, false], c.branches);
        let (benign, adv, col) = (&out[0], &out[1], &out[2]);
        let sel = select(benign, col, adv, y);
        let upper = pick([benign, col, adv], &sel.adv);
        let lower = pick([benign, col, adv], &sel.col);
        let ce_benign = cross_entropy(benign, y);
        let reg = reg_loss(c.reg, &upper, &lower);
        let loss = &ce_benign + &reg * c.beta;
        let parts = tch::no_grad(|| PartTensors {
            ce_adv: Some(cross_entropy(&upper, y)),
            ce_benign: Some(ce_benign.detach()),
            ce_col: Some(cross_entropy(&lower, y)),
            reg: Some(reg.detach()),
        });
        StepLoss {
            correct: correct_count(benign, y),
            loss,
            parts,
        }
    }
}

impl Method for SqueezeTraining {
    fn name(&self) -> &'static str {
        "st"
    }

    fn loss(&self, net: &dyn Classifier, x: &Tensor, y: &Tensor) -> StepLoss {
        let (x_adv, x_col) = self.inner(net, x, y);
        self.outer(net, x, y, &x_adv, &x_col)
    }
}
