//! FAB (Croce & Hein, ICML 2020, "Minimally distorted adversarial examples
//! with a Fast Adaptive Boundary attack"): a minimum-norm attack that
//! linearises the decision boundary at the current iterate, projects both
//! the iterate and the clean point onto that hyperplane (inside the [0,1]
//! box), and steps to a convex combination of the two projections. Its
//! targeted version FAB-T (one run per target class, each on the points
//! still robust) is the third attack of AutoAttack's standard version.
//!
//! Written after the authors' code (fra31/auto-attack, `fab_base.py`,
//! `fab_pt.py`, `fab_projections.py`) and its torchattacks 3.5.1 port:
//!
//! * per run (one target, one restart), `steps` iterations from x itself
//!   (restart 0) or from a random point at distance eps/2 (restarts > 0);
//! * per iteration: one forward and one backward for the gradient of
//!   z_target − z_y (targeted; all K−1 differences for the untargeted
//!   version, where the nearest linearised boundary is chosen), the two
//!   projections, the step x1 ← clip((x1 + η d1)(1−α) + (x0 + η d2)α) with
//!   α = min(‖d1‖/(‖d1‖+‖d2‖), α_max), one forward to classify x1; where
//!   x1 is misclassified, it is kept if it is the smallest seen and x1 is
//!   pulled back towards x0 by the factor β;
//! * per point the smallest adversarial of the run; in `perturb` it is kept
//!   only if it is misclassified and within eps (else x), and later runs
//!   (targets, restarts) only attack the points still robust.
//!
//! Speed-up (documented deviation, no effect on which points `perturb`
//! reports as broken): once a point has an adversarial within eps, it is
//! broken whatever the rest of the run finds, so `perturb` drops it from
//! the active batch (compaction every `COMPACT_EVERY` iterations) and keeps
//! that adversarial instead of continuing towards a smaller one. The
//! authors' full minimum-norm search is `Fab::minimum_norm`.
//!
//! Other small differences: the projections find the optimal multiplier by
//! counting breakpoints on a sorted prefix sum instead of a bisection over
//! the sorted breakpoints (the same point in exact arithmetic); random
//! starts are drawn from `mix_seed(ctx.seed, run)` for each run.

use super::{mix_seed, Attack, AttackContext, Norm, Work};
use crate::models::{Classifier, Mode};
use tch::{Kind, Tensor};

#[derive(Debug, Clone)]
pub struct Fab {
    pub norm: Norm,
    pub epsilon: f64,
    /// Iterations per run (100 in the standard version).
    pub steps: usize,
    /// Restarts per target (1 in the standard version).
    pub restarts: usize,
    /// Some(k): targeted, one run per target class (the k classes with the
    /// highest clean logits after the true one), each only on the points
    /// still robust (FAB-T, k = 9 in the standard version). None: untargeted.
    pub targets: Option<usize>,
    pub alpha_max: f64,
    pub eta: f64,
    pub beta: f64,
}

/// In `perturb`, how often (in iterations) the points already broken
/// within eps are dropped from the active batch. Each check reads one
/// number back from the device.
const COMPACT_EVERY: usize = 5;

/// Breakpoint standing for "never" in the projections (finite, so that
/// products with zero weights stay zero).
const NEVER: f64 = 1e30;

/// Per-row norm of an r×n matrix (the threat model's norm).
fn row_norms(norm: Norm, d: &Tensor) -> Tensor {
    match norm {
        Norm::Linf => d.abs().amax([1i64].as_slice(), false),
        Norm::L2 => d
            .square()
            .sum_dim_intlist([1i64].as_slice(), false, None::<Kind>)
            .sqrt(),
    }
}

/// Row-wise dot product of two r×n matrices.
fn row_dot(a: &Tensor, b: &Tensor) -> Tensor {
    (a * b).sum_dim_intlist([1i64].as_slice(), false, None::<Kind>)
}

/// Shared solver of both projections. For each row, with the sign of the
/// hyperplane flipped so that the point lies on its non-negative side
/// (c = w·t − b ≥ 0), moving coordinate i against the sign of w_i lowers
/// w·z by |w_i| per unit, and it can move by at most p_i before it leaves
/// [0,1] (p_i = t_i when w_i > 0, 1 − t_i when w_i < 0). For a multiplier
/// λ ≥ 0 the candidate displacement is d_i(λ) = −sign(w_i)·min(λ·k_i, p_i)
/// (k_i = 1 for L-inf, k_i = |w_i| for L2), and w·d(λ) = −G(λ) with
///
///   G(λ) = Σ_i |w_i| · min(λ·k_i, p_i),
///
/// continuous, non-decreasing and piecewise linear, with a breakpoint where
/// coordinate i saturates (λ = p_i / k_i). The projection is d(λ*) for the
/// λ* with G(λ*) = c: sorting the breakpoints r_(0) ≤ … ≤ r_(n−1),
/// G(r_(j)) = A_j + r_(j)·S_j with A_j the saturated part Σ_{l<j} |w|p and
/// S_j the slope Σ_{l≥j} |w|k; λ* lies on the segment before the first
/// breakpoint with G > c, where G is linear: λ* = (c − A_j)/S_j. If even
/// the whole box cannot reach the hyperplane (G(∞) < c), every coordinate
/// moves to its bound (the closest the box allows), as the authors' code.
/// `weights` are |w| with the coordinates to ignore set to 0.
fn solve_box_hyperplane(t: &Tensor, w: &Tensor, b: &Tensor, l2: bool, weights: &Tensor) -> Tensor {
    let n = t.size()[1];
    let c = row_dot(w, t) - b;
    let flip = c.lt(0.0);
    let c = c.abs().unsqueeze(1);
    // Direction of motion of coordinate i: −sign(w_i), with w's sign flipped
    // on the rows whose point lies on the negative side.
    let sign = w
        .sign()
        .where_self(&flip.logical_not().unsqueeze(1), &w.sign().neg());
    // Room before the box in that direction.
    let room = t.where_self(&sign.gt(0.0), &(1.0 - t));
    let active = weights.gt(0.0);
    let (rate, slope) = if l2 {
        (weights.shallow_clone(), weights.square())
    } else {
        (active.to_kind(t.kind()), weights.shallow_clone())
    };
    // Breakpoints; ignored coordinates never saturate (and weigh nothing).
    let breaks = (&room / rate.where_self(&active, &rate.ones_like()))
        .where_self(&active, &Tensor::full_like(&room, NEVER));
    let (sorted, order) = breaks.sort(1, false);
    let saturated = (weights * &room).gather(1, &order, false);
    let slope = slope.gather(1, &order, false);
    // A_j: exclusive prefix sum of the saturated contributions.
    let prefix = Tensor::cat(
        &[
            saturated.zeros_like().narrow(1, 0, 1),
            saturated.cumsum(1, None::<Kind>).narrow(1, 0, n - 1),
        ],
        1,
    );
    // S_j: suffix sum of the slopes (summed from the end, so that a tail of
    // zero slopes sums to exactly zero).
    let suffix = slope.flip([1i64]).cumsum(1, None::<Kind>).flip([1i64]);
    let at_breaks = &prefix + &sorted * &suffix;
    // Segment index: the number of breakpoints with G ≤ c (capped at the
    // last one; past it, λ* ≥ the last breakpoint saturates everything).
    let j = at_breaks
        .le_tensor(&c)
        .sum_dim_intlist([1i64].as_slice(), true, Kind::Int64)
        .clamp_max(n - 1);
    let a_j = prefix.gather(1, &j, false);
    let s_j = suffix.gather(1, &j, false);
    let lambda = ((&c - a_j) / s_j.where_self(&s_j.gt(0.0), &s_j.ones_like()))
        .where_self(&s_j.gt(0.0), &Tensor::full_like(&c, NEVER))
        .clamp_min(0.0);
    let step = (lambda * rate).minimum(&room);
    (-sign * step).where_self(&active, &t.zeros_like())
}

/// L-inf projection onto a hyperplane inside the box: for each row i of the
/// r×n matrices `t` (points in [0,1]^n) and `w`, and `b` (r), the
/// displacement d of smallest ‖d‖∞ with w_i·(t_i + d) = b_i and
/// t_i + d ∈ [0,1]^n. Optimal displacements move every coordinate that
/// matters (w_j ≠ 0) by the same amount λ against the sign of w_j, or to
/// its bound if that is closer; coordinates with w_j = 0 stay. Where the
/// box cannot reach the hyperplane, every coordinate goes to its bound.
pub fn project_linf(t: &Tensor, w: &Tensor, b: &Tensor) -> Tensor {
    let weights = w.abs();
    solve_box_hyperplane(t, w, b, false, &weights)
}

/// L2 projection onto a hyperplane inside the box: as `project_linf`, the
/// displacement of smallest ‖d‖₂. By the KKT conditions it is
/// d_j = clip(−λ·w_j, −t_j, 1 − t_j) for the λ ≥ 0 that reaches the
/// hyperplane. Coordinates with |w_j| ≤ 1e-8 stay (as the authors' code).
pub fn project_l2(t: &Tensor, w: &Tensor, b: &Tensor) -> Tensor {
    let aw = w.abs();
    let weights = aw.where_self(&aw.gt(1e-8), &aw.zeros_like());
    solve_box_hyperplane(t, w, b, true, &weights)
}

fn project_norm(norm: Norm, t: &Tensor, w: &Tensor, b: &Tensor) -> Tensor {
    match norm {
        Norm::Linf => project_linf(t, w, b),
        Norm::L2 => project_l2(t, w, b),
    }
}

/// The linearised boundary at x1 (flattened m×n): (f, ∇f) of the margin
/// f = z_target − z_y (targeted: one backward), or of the class j whose
/// linearised boundary is nearest in the threat model's norm (untargeted:
/// one backward per class).
fn boundary(
    norm: Norm,
    net: &dyn Classifier,
    x1: &Tensor,
    y: &Tensor,
    target: Option<&Tensor>,
) -> (Tensor, Tensor) {
    let m = x1.size()[0];
    let xv = x1.detach().set_requires_grad(true);
    let logits = net.forward(&xv, &Mode::Eval);
    assert!(
        logits.requires_grad(),
        "FAB needs input gradients (grad mode is off)"
    );
    let true_logit = logits.gather(1, &y.view([-1, 1]), false).squeeze_dim(1);
    match target {
        Some(t) => {
            let diff = logits.gather(1, &t.view([-1, 1]), false).squeeze_dim(1) - true_logit;
            let g = Tensor::run_backward(&[&diff.sum(None::<Kind>)], &[&xv], false, false)
                .pop()
                .expect("one input");
            (diff.detach(), g.reshape([m, -1]))
        }
        None => {
            let classes = logits.size()[1];
            let grads: Vec<Tensor> = (0..classes)
                .map(|k| {
                    let zk = logits.select(1, k).sum(None::<Kind>);
                    Tensor::run_backward(&[&zk], &[&xv], k + 1 < classes, false)
                        .pop()
                        .expect("one input")
                        .reshape([m, -1])
                })
                .collect();
            let jac = Tensor::stack(&grads, 1); // m×K×n
            let n = jac.size()[2];
            let logits = logits.detach();
            let df = &logits - logits.gather(1, &y.view([-1, 1]), false);
            let dg = &jac - jac.gather(1, &y.view([-1, 1, 1]).expand([m, 1, n], false), false);
            let dual = match norm {
                Norm::Linf => dg
                    .abs()
                    .sum_dim_intlist([2i64].as_slice(), false, None::<Kind>),
                Norm::L2 => dg
                    .square()
                    .sum_dim_intlist([2i64].as_slice(), false, None::<Kind>)
                    .sqrt(),
            };
            // The true class is never the nearest boundary.
            let onehot = y.one_hot(classes).to_kind(Kind::Bool);
            let dist = (df.abs() / (dual + 1e-12)).masked_fill(&onehot, f64::INFINITY);
            let j = dist.argmin(1, true);
            let f = df.gather(1, &j, false).squeeze_dim(1);
            let g = dg
                .gather(1, &j.unsqueeze(2).expand([m, 1, n], false), false)
                .squeeze_dim(1);
            (f, g)
        }
    }
}

fn not_class(net: &dyn Classifier, x: &Tensor, y: &Tensor) -> Tensor {
    tch::no_grad(|| net.forward(x, &Mode::Eval))
        .argmax(-1, false)
        .ne_tensor(y)
}

/// `t` (length m) shaped m×1×…×1 like `like`, for broadcasting.
fn per_point(t: &Tensor, like: &Tensor) -> Tensor {
    let mut shape = vec![-1i64];
    shape.extend(std::iter::repeat_n(1, like.dim() - 1));
    t.view(shape.as_slice())
}

fn flat(t: &Tensor) -> Tensor {
    t.reshape([t.size()[0], -1])
}

impl Fab {
    /// Both norms are implemented.
    pub fn supports(norm: Norm) -> bool {
        matches!(norm, Norm::Linf | Norm::L2)
    }

    /// One run (one target, one restart) on the points x0 (all correctly
    /// classified): per point the smallest adversarial found and its norm
    /// (x0 and +inf where none). With `drop_within`, a point leaves the
    /// active batch once it has an adversarial of norm ≤ that radius.
    #[allow(clippy::too_many_arguments)]
    fn single_run(
        &self,
        net: &dyn Classifier,
        x0: &Tensor,
        y: &Tensor,
        target: Option<&Tensor>,
        random_start: bool,
        drop_within: Option<f64>,
        ctx: &AttackContext,
        report: &mut dyn FnMut(usize),
    ) -> (Tensor, Tensor) {
        let m = x0.size()[0];
        let shape = x0.size();
        // Results for the whole run, written back from the active set.
        let mut best_all = x0.copy();
        let mut norm_all = Tensor::full([m], f64::INFINITY, (x0.kind(), x0.device()));
        // The active set: its rows in the run, its inputs, labels, targets.
        let mut rows = Tensor::arange(m, (Kind::Int64, x0.device()));
        let mut x0a = x0.shallow_clone();
        let mut ya = y.shallow_clone();
        let mut ta = target.map(|t| t.shallow_clone());
        let mut x1 = if random_start {
            // A random point at distance eps/2 (the authors' code: half of
            // min(eps, best norm so far), which is eps at a run's start).
            let t = match self.norm {
                Norm::Linf => x0.rand_like() * 2.0 - 1.0,
                Norm::L2 => x0.randn_like(),
            };
            let tn = per_point(&row_norms(self.norm, &flat(&t)), x0);
            (x0 + t / tn * (0.5 * self.epsilon)).clamp(0.0, 1.0)
        } else {
            x0.shallow_clone()
        };
        let mut best = x0.copy();
        let mut best_norm = norm_all.copy();
        for it in 0..self.steps {
            if ctx.cancelled() {
                break;
            }
            if let Some(radius) = drop_within {
                if it > 0 && it % COMPACT_EVERY == 0 {
                    let keep = best_norm.gt(radius);
                    let kept = keep.sum(Kind::Int64).int64_value(&[]);
                    if kept < rows.size()[0] {
                        best_all = best_all.index_copy(0, &rows, &best);
                        norm_all = norm_all.index_copy(0, &rows, &best_norm);
                        if kept == 0 {
                            return (best_all, norm_all);
                        }
                        let idx = keep.nonzero().squeeze_dim(1);
                        rows = rows.index_select(0, &idx);
                        x0a = x0a.index_select(0, &idx);
                        ya = ya.index_select(0, &idx);
                        ta = ta.map(|t| t.index_select(0, &idx));
                        x1 = x1.index_select(0, &idx);
                        best = best.index_select(0, &idx);
                        best_norm = best_norm.index_select(0, &idx);
                    }
                }
            }
            let ma = x1.size()[0];
            let (f, w) = boundary(self.norm, net, &x1, &ya, ta.as_ref());
            let x1f = flat(&x1);
            let x0f = flat(&x0a);
            // The linearised boundary {z : f + w·(z − x1) = 0} = {w·z = b}.
            let b = row_dot(&w, &x1f) - f;
            // Both projections in one batch: the iterate's and the clean
            // point's.
            let d = tch::no_grad(|| {
                project_norm(
                    self.norm,
                    &Tensor::cat(&[&x1f, &x0f], 0),
                    &Tensor::cat(&[&w, &w], 0),
                    &Tensor::cat(&[&b, &b], 0),
                )
            });
            let d1 = d.narrow(0, 0, ma);
            let d2 = d.narrow(0, ma, ma);
            let a = row_norms(self.norm, &d).clamp_min(1e-8);
            let (a1, a2) = (a.narrow(0, 0, ma), a.narrow(0, ma, ma));
            // Bias towards the clean point's projection, capped at alpha_max.
            let alpha = (&a1 / (&a1 + &a2)).clamp(0.0, self.alpha_max).unsqueeze(1);
            let stay: Tensor = alpha.neg() + 1.0;
            let next = ((&x1f + &d1 * self.eta) * &stay + (&x0f + &d2 * self.eta) * &alpha)
                .clamp(0.0, 1.0);
            let mut dims = vec![ma];
            dims.extend_from_slice(&shape[1..]);
            let next = next.reshape(dims.as_slice());
            let wrong = not_class(net, &next, &ya);
            let dist = row_norms(self.norm, &flat(&(&next - &x0a)));
            let better = wrong.logical_and(&dist.lt_tensor(&best_norm));
            best = next.where_self(&per_point(&better, &next), &best);
            best_norm = dist.where_self(&better, &best_norm);
            // Where x1 crossed the boundary, pull it back towards x0.
            let back = &x0a + (&next - &x0a) * self.beta;
            x1 = back.where_self(&per_point(&wrong, &next), &next);
            report(it + 1);
        }
        best_all = best_all.index_copy(0, &rows, &best);
        norm_all = norm_all.index_copy(0, &rows, &best_norm);
        (best_all, norm_all)
    }

    /// Per point, the target class of each targeted run: the classes with
    /// the 2nd, 3rd, … largest clean logits (one column per run); the
    /// number of runs per restart (1 untargeted).
    fn targets_of(&self, logits: &Tensor) -> (usize, Option<Tensor>) {
        let classes = logits.size()[1];
        match self.targets {
            Some(k) => {
                let k = (k as i64).min(classes - 1);
                (k as usize, Some(logits.argsort(1, true).narrow(1, 1, k)))
            }
            None => (1, None),
        }
    }

    /// The authors' minimum-norm search without the eps-based shortcut:
    /// every run (target × restart) on every correctly classified point,
    /// each for all `steps`. Returns per point the smallest adversarial
    /// found over all runs and its norm (x and +inf where none; x and 0
    /// for the points misclassified clean).
    pub fn minimum_norm(
        &self,
        net: &dyn Classifier,
        x: &Tensor,
        y: &Tensor,
        ctx: &AttackContext,
    ) -> (Tensor, Tensor) {
        let x = x.detach();
        let n = x.size()[0];
        let logits = tch::no_grad(|| net.forward(&x, &Mode::Eval));
        let correct = logits.argmax(-1, false).eq_tensor(y);
        let mut best = x.copy();
        let mut best_norm = Tensor::full([n], f64::INFINITY, (x.kind(), x.device()))
            .where_self(&correct, &x.new_zeros([n], (x.kind(), x.device())));
        let idx = correct.nonzero().squeeze_dim(1);
        if idx.size()[0] == 0 {
            return (best, best_norm);
        }
        let (xs, ys) = (x.index_select(0, &idx), y.index_select(0, &idx));
        let (count, cols) = self.targets_of(&logits.index_select(0, &idx));
        let restarts = self.restarts.max(1);
        for ti in 0..count {
            for r in 0..restarts {
                if ctx.cancelled() {
                    return (best, best_norm);
                }
                tch::manual_seed(mix_seed(ctx.seed, (ti * restarts + r) as i64));
                let tgt = cols.as_ref().map(|c| c.select(1, ti as i64));
                let (adv, norms) =
                    self.single_run(net, &xs, &ys, tgt.as_ref(), r > 0, None, ctx, &mut |_| {});
                let cur = best_norm.index_select(0, &idx);
                let better = norms.lt_tensor(&cur);
                let merged = adv.where_self(&per_point(&better, &adv), &best.index_select(0, &idx));
                best = best.index_copy(0, &idx, &merged);
                best_norm = best_norm.index_copy(0, &idx, &norms.where_self(&better, &cur));
            }
        }
        (best, best_norm)
    }
}

impl Attack for Fab {
    fn norm(&self) -> Norm {
        self.norm
    }
    fn epsilon(&self) -> f64 {
        self.epsilon
    }
    fn perturb_reporting(
        &self,
        net: &dyn Classifier,
        x: &Tensor,
        y: &Tensor,
        ctx: &AttackContext,
        report: &mut dyn FnMut(Work),
    ) -> Tensor {
        let x = x.detach();
        let logits = tch::no_grad(|| net.forward(&x, &Mode::Eval));
        let mut robust = logits.argmax(-1, false).eq_tensor(y);
        let mut out = x.copy();
        let (count, cols) = self.targets_of(&logits);
        let restarts = self.restarts.max(1);
        // Work: every run's iterations; runs not needed count as done.
        let total = (count * restarts * self.steps) as u64;
        'runs: for ti in 0..count {
            for r in 0..restarts {
                if ctx.cancelled() {
                    break 'runs;
                }
                let idx = robust.nonzero().squeeze_dim(1);
                let m = idx.size()[0];
                if m == 0 {
                    break 'runs;
                }
                tch::manual_seed(mix_seed(ctx.seed, (ti * restarts + r) as i64));
                let (xs, ys) = (x.index_select(0, &idx), y.index_select(0, &idx));
                let tgt = cols
                    .as_ref()
                    .map(|c| c.select(1, ti as i64).index_select(0, &idx));
                let drop = Some(self.epsilon);
                let before = ((ti * restarts + r) * self.steps) as u64;
                let mut tick = |it: usize| {
                    report(Work {
                        done: before + it as u64,
                        total,
                    })
                };
                let (adv, _) =
                    self.single_run(net, &xs, &ys, tgt.as_ref(), r > 0, drop, ctx, &mut tick);
                // As the authors' `perturb`: an adversarial counts only if it
                // is misclassified and within eps.
                let dist = row_norms(self.norm, &flat(&(&adv - &xs)));
                let broken = not_class(net, &adv, &ys).logical_and(&dist.le(self.epsilon));
                let hit = broken.nonzero().squeeze_dim(1);
                if hit.size()[0] > 0 {
                    let at = idx.index_select(0, &hit);
                    out = out.index_copy(0, &at, &adv.index_select(0, &hit));
                    robust = robust.index_fill(0, &at, 0);
                }
            }
        }
        report(Work { done: total, total });
        out
    }
}
