//! APGD (Croce & Hein, ICML 2020): PGD with momentum and a step size that
//! halves at checkpoints, the first two components of AutoAttack (APGD-CE,
//! APGD-T), written after the official code (fra31/auto-attack,
//! `autopgd_base.py`), L-inf and L2.
//!
//! One run of `steps` iterations on a batch (`Run::attack`):
//! - start `x + eps·t/‖t‖` (L-inf: t uniform in [-1,1]^d and ‖t‖ = max|t|;
//!   L2: t Gaussian, its L2 norm; +1e-12 in the norm), clipped to [0,1];
//! - step size 2·eps per point; the first step is a projected steepest
//!   ascent step z, later ones `x + 0.75·(z - x) + 0.25·(x - x_prev)`
//!   projected again (momentum);
//! - per point the iterate of highest loss (`x_best`, with its gradient) and
//!   the latest misclassified iterate (the output of a broken point);
//! - checkpoints after `n_iter_2 = max(⌊0.22·n⌋,1)` iterations, then every
//!   k iterations with k shrinking by `max(⌊0.03·n⌋,1)` down to
//!   `max(⌊0.06·n⌋,1)`: a point halves its step and goes back to `x_best`
//!   (and its gradient) if the loss increased in at most rho·k of the last
//!   k steps, or if its step was not halved at the previous checkpoint and
//!   its best loss has not improved since.
//!
//! Restarts (untargeted) and targets (APGD-T) each run only on the points
//! still robust; the k-th run is seeded with `mix_seed(ctx.seed, k)`.
//!
//! Official code vs torchattacks 3.5.1 (the reference we are measured
//! against), and what we follow:
//! - The L-inf start divides by `max|t|`; the official code adds 1e-12,
//!   torchattacks does not. We add it (never matters).
//! - APGD-T with L2: torchattacks steps every point with the first point's
//!   step size (`step_size[0]`), the official code with each point's own.
//!   We follow the official code.
//! - In the L2 projection after the momentum step torchattacks adds 1e-12
//!   to the norm inside `min(eps, ‖d‖)`; the official code does not. We
//!   follow the official code (the output stays within eps exactly).
//! - Seeding: both seed the generator once per call and let restarts and
//!   targets draw from one stream; we reseed each run (contract of
//!   `Attack`) and draw the start for every point of the batch, keeping the
//!   active ones, so a point's start depends only on (seed, run, position)
//!   and not on which other points are still robust.
//! - Both count, at the first checkpoint, the first iteration's loss as an
//!   increase iff it is > 0 (the comparison reads `loss_steps[-1]`, a row
//!   not yet written, i.e. 0). We do the same.
//!
//! Speed-up that changes no outcome: once a point is misclassified it is
//! broken for good (the attack reports it broken whatever follows). Every
//! `COMPACT_EVERY` iterations and at checkpoints the broken points leave the
//! active batch (index_select of the whole state), keeping the misclassified
//! iterate they had then as their output; the official code keeps them
//! and reports the last misclassified iterate of the whole run. The points
//! still in the batch evolve exactly as before (points are independent in
//! eval mode), and a run stops as soon as no point is left.

use super::{l2_norms, mix_seed, Attack, AttackContext, Norm, Work};
use crate::models::{Classifier, Mode};
use tch::{Kind, Tensor};

/// The loss APGD ascends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApgdLoss {
    /// Cross-entropy (APGD-CE).
    CrossEntropy,
    /// Untargeted difference-of-logits ratio (APGD-DLR, the `rand` version).
    Dlr,
    /// Targeted DLR (APGD-T): one run per target class, the `targets` classes
    /// with the highest clean logits after the true one, each run only on the
    /// points still classified correctly.
    DlrTargeted { targets: usize },
}

#[derive(Debug, Clone)]
pub struct Apgd {
    pub norm: Norm,
    pub epsilon: f64,
    /// Iterations per run (100 in the standard version).
    pub steps: usize,
    /// Random restarts per run (1 in the standard version).
    pub restarts: usize,
    pub loss: ApgdLoss,
    /// Gradient averaged over this many forward/backward passes (1; 20 in
    /// the `rand` version, for randomised models).
    pub eot_iter: usize,
    /// The checkpoint condition's fraction (0.75).
    pub rho: f64,
}

/// Broken points leave the active batch every this many iterations (and at
/// checkpoints). One host read of a count each time.
const COMPACT_EVERY: usize = 4;

/// Column `j` of the logits sorted in descending order; a model with fewer
/// than j+1 classes reads its smallest logit instead.
fn sorted_column(top: &Tensor, j: i64) -> Tensor {
    let c = top.size()[1];
    top.select(1, j.min(c - 1))
}

fn true_logit(logits: &Tensor, y: &Tensor) -> Tensor {
    logits.gather(1, &y.view([-1, 1]), false).squeeze_dim(1)
}

/// Per-point cross-entropy.
pub fn ce_loss(logits: &Tensor, y: &Tensor) -> Tensor {
    logits
        .log_softmax(-1, None::<Kind>)
        .nll_loss_nd::<Tensor>(y, None, tch::Reduction::None, -100)
}

/// Per-point untargeted DLR loss, to be maximised:
/// `-(z_y - max_{i≠y} z_i) / (z_π1 - z_π3 + 1e-12)` with π the classes
/// sorted by decreasing logit. (The official code picks the runner-up from
/// the sort; the value is the same, only an exact tie splits the gradient.)
pub fn dlr_loss(logits: &Tensor, y: &Tensor) -> Tensor {
    let c = logits.size()[1];
    let top = logits.topk(c.min(3), 1, true, true).0;
    let onehot = y.one_hot(c).to_kind(Kind::Bool);
    let other = logits
        .masked_fill(&onehot, f64::NEG_INFINITY)
        .amax([1], false);
    let denom = sorted_column(&top, 0) - sorted_column(&top, 2) + 1e-12;
    (other - true_logit(logits, y)) / denom
}

/// Per-point targeted DLR loss towards `target`, to be maximised:
/// `-(z_y - z_t) / (z_π1 - (z_π3 + z_π4)/2 + 1e-12)`.
pub fn dlr_targeted_loss(logits: &Tensor, y: &Tensor, target: &Tensor) -> Tensor {
    let c = logits.size()[1];
    let top = logits.topk(c.min(4), 1, true, true).0;
    let denom =
        sorted_column(&top, 0) - (sorted_column(&top, 2) + sorted_column(&top, 3)) * 0.5 + 1e-12;
    (true_logit(logits, target) - true_logit(logits, y)) / denom
}

/// `max(⌊f·n⌋, 1)` as the official code computes it (`int(f * n)`).
fn fraction(f: f64, n: usize) -> usize {
    ((f * n as f64) as usize).max(1)
}

/// One APGD run's settings.
struct Run<'a> {
    net: &'a dyn Classifier,
    norm: Norm,
    eps: f64,
    steps: usize,
    rho: f64,
    eot_iter: usize,
    targeted: bool,
}

/// The state of the points still in a run, all indexed alike along dim 0.
struct Active {
    /// Position of each point in the run's batch.
    pos: Tensor,
    x: Tensor,
    /// L-inf: the box [max(x-eps,0), min(x+eps,1)]; unused for L2.
    lo: Tensor,
    hi: Tensor,
    y: Tensor,
    /// Target classes (APGD-T) or y again.
    target: Tensor,
    x_adv: Tensor,
    x_adv_old: Tensor,
    grad: Tensor,
    x_best: Tensor,
    grad_best: Tensor,
    x_best_adv: Tensor,
    loss_best: Tensor,
    loss_best_last_check: Tensor,
    /// Loss of the previous iterate (for counting increases).
    loss_prev: Tensor,
    /// Increases of the loss since the last checkpoint.
    increases: Tensor,
    reduced_last_check: Tensor,
    step: Tensor,
    /// Still correctly classified at every iterate so far.
    robust: Tensor,
}

impl Active {
    fn select(&self, keep: &Tensor) -> Active {
        let s = |t: &Tensor| t.index_select(0, keep);
        Active {
            pos: s(&self.pos),
            x: s(&self.x),
            lo: s(&self.lo),
            hi: s(&self.hi),
            y: s(&self.y),
            target: s(&self.target),
            x_adv: s(&self.x_adv),
            x_adv_old: s(&self.x_adv_old),
            grad: s(&self.grad),
            x_best: s(&self.x_best),
            grad_best: s(&self.grad_best),
            x_best_adv: s(&self.x_best_adv),
            loss_best: s(&self.loss_best),
            loss_best_last_check: s(&self.loss_best_last_check),
            loss_prev: s(&self.loss_prev),
            increases: s(&self.increases),
            reduced_last_check: s(&self.reduced_last_check),
            step: s(&self.step),
            robust: s(&self.robust),
        }
    }
}

/// The shape N×1×…×1 (dim axes) of per-point factors.
fn per_point_shape(n: i64, dim: usize) -> Vec<i64> {
    let mut shape = vec![n];
    shape.extend(std::iter::repeat_n(1, dim - 1));
    shape
}

/// A per-point vector shaped N×1×…×1 for broadcasting against x.
fn per_point(v: &Tensor, dim: usize) -> Tensor {
    v.view(per_point_shape(-1, dim).as_slice())
}

impl Run<'_> {
    fn loss(&self, logits: &Tensor, y: &Tensor, target: &Tensor, ce: bool) -> Tensor {
        if self.targeted {
            dlr_targeted_loss(logits, y, target)
        } else if ce {
            ce_loss(logits, y)
        } else {
            dlr_loss(logits, y)
        }
    }

    /// Logits and per-point loss at `x_adv` (of the last EOT pass, as the
    /// official code) and the gradient of the summed loss, averaged over
    /// `eot_iter` passes.
    fn evaluate(
        &self,
        x_adv: &Tensor,
        y: &Tensor,
        target: &Tensor,
        ce: bool,
    ) -> (Tensor, Tensor, Tensor) {
        tch::with_grad(|| {
            let mut grad: Option<Tensor> = None;
            let mut last = None;
            for _ in 0..self.eot_iter.max(1) {
                let xv = x_adv.detach().set_requires_grad(true);
                let logits = self.net.forward(&xv, &Mode::Eval);
                let loss = self.loss(&logits, y, target, ce);
                let g = Tensor::run_backward(&[&loss.sum(None::<Kind>)], &[&xv], false, false)
                    .pop()
                    .expect("one input");
                grad = Some(match grad {
                    None => g,
                    Some(acc) => acc + g,
                });
                last = Some((logits.detach(), loss.detach()));
            }
            let mut grad = grad.expect("at least one pass");
            if self.eot_iter > 1 {
                grad /= self.eot_iter as f64;
            }
            let (logits, loss) = last.expect("at least one pass");
            (logits, loss, grad)
        })
    }

    /// Projection onto B_eps[x] ∩ [0,1] as the official code writes it.
    fn project(&self, v: &Tensor, s: &Active) -> Tensor {
        match self.norm {
            Norm::Linf => v.max_other(&s.lo).min_other(&s.hi),
            Norm::L2 => {
                let d = v - &s.x;
                let n = l2_norms(&d);
                (&s.x + d / (&n + 1e-12) * n.clamp_max(self.eps)).clamp(0.0, 1.0)
            }
        }
    }

    /// One run on (x, y): per point of the batch, whether some iterate was
    /// misclassified, and (where so) a misclassified iterate. None when
    /// cancelled. `report` gets the iterations done.
    #[allow(clippy::too_many_arguments)]
    fn attack(
        &self,
        x: &Tensor,
        y: &Tensor,
        target: &Tensor,
        ce: bool,
        noise: &Tensor,
        ctx: &AttackContext,
        report: &mut dyn FnMut(usize),
    ) -> Option<(Tensor, Tensor)> {
        let n = x.size()[0];
        let dim = x.dim();
        let eps = self.eps;
        let (n_iter_2, n_iter_min, size_decr) = (
            fraction(0.22, self.steps),
            fraction(0.06, self.steps),
            fraction(0.03, self.steps),
        );
        let mut out_adv = x.copy();
        let mut out_broken = Tensor::zeros([n], (Kind::Bool, x.device()));

        let mut s = tch::no_grad(|| {
            let x_adv = (x + noise * eps).clamp(0.0, 1.0);
            let (lo, hi) = match self.norm {
                Norm::Linf => ((x - eps).clamp_min(0.0), (x + eps).clamp_max(1.0)),
                Norm::L2 => (x.shallow_clone(), x.shallow_clone()),
            };
            let (logits, loss, grad) = self.evaluate(&x_adv, y, target, ce);
            let robust = logits.argmax(-1, false).eq_tensor(y);
            Active {
                pos: Tensor::arange(n, (Kind::Int64, x.device())),
                x: x.shallow_clone(),
                lo,
                hi,
                y: y.shallow_clone(),
                target: target.shallow_clone(),
                x_adv_old: x_adv.shallow_clone(),
                x_best: x_adv.shallow_clone(),
                x_best_adv: x_adv.shallow_clone(),
                x_adv,
                grad_best: grad.shallow_clone(),
                grad,
                loss_best_last_check: loss.shallow_clone(),
                loss_prev: if self.steps == 1 {
                    // With one iteration the comparison is of the row with itself.
                    Tensor::full([n], f64::INFINITY, (loss.kind(), loss.device()))
                } else {
                    loss.zeros_like()
                },
                increases: loss.zeros_like(),
                loss_best: loss,
                reduced_last_check: Tensor::ones([n], (Kind::Bool, x.device())),
                step: Tensor::full(
                    per_point_shape(n, dim).as_slice(),
                    2.0 * eps,
                    (x.kind(), x.device()),
                ),
                robust,
            }
        });

        let flush = |s: &Active, out_adv: &mut Tensor, out_broken: &mut Tensor, gone: &Tensor| {
            let pos = s.pos.index_select(0, gone);
            let _ = out_adv.index_copy_(0, &pos, &s.x_best_adv.index_select(0, gone));
            let _ = out_broken.index_fill_(0, &pos, 1i64);
        };

        let mut k = n_iter_2;
        let mut since_check = 0usize;
        for i in 0..self.steps {
            if ctx.cancelled() {
                return None;
            }
            let next = tch::no_grad(|| {
                // The step.
                let x_adv = &s.x_adv;
                let x1 = match self.norm {
                    Norm::Linf => x_adv + s.grad.sign() * &s.step,
                    Norm::L2 => x_adv + &s.grad / (l2_norms(&s.grad) + 1e-12) * &s.step,
                };
                let x1 = self.project(&x1, &s);
                if i == 0 {
                    x1
                } else {
                    let m = x_adv + (x1 - x_adv) * 0.75 + (x_adv - &s.x_adv_old) * 0.25;
                    self.project(&m, &s)
                }
            });
            s.x_adv_old = std::mem::replace(&mut s.x_adv, next);
            let (logits, loss, grad) = self.evaluate(&s.x_adv, &s.y, &s.target, ce);
            tch::no_grad(|| {
                let pred_ok = logits.argmax(-1, false).eq_tensor(&s.y);
                s.robust = s.robust.logical_and(&pred_ok);
                s.x_best_adv = s.x_best_adv.where_self(&per_point(&pred_ok, dim), &s.x_adv);
                s.increases += loss.gt_tensor(&s.loss_prev).to_kind(loss.kind());
                let improved = loss.gt_tensor(&s.loss_best);
                let improved_x = per_point(&improved, dim);
                s.x_best = s.x_adv.where_self(&improved_x, &s.x_best);
                s.grad_best = grad.where_self(&improved_x, &s.grad_best);
                s.loss_best = loss.where_self(&improved, &s.loss_best);
                s.loss_prev = loss;
                s.grad = grad;
                since_check += 1;
                let checkpoint = since_check == k;
                if checkpoint {
                    let oscillating = s.increases.le(k as f64 * self.rho);
                    let no_improvement = s
                        .reduced_last_check
                        .logical_not()
                        .logical_and(&s.loss_best_last_check.ge_tensor(&s.loss_best));
                    let reduce = oscillating.logical_or(&no_improvement);
                    let reduce_x = per_point(&reduce, dim);
                    s.step = (&s.step * 0.5).where_self(&reduce_x, &s.step);
                    s.x_adv = s.x_best.where_self(&reduce_x, &s.x_adv);
                    s.grad = s.grad_best.where_self(&reduce_x, &s.grad);
                    s.reduced_last_check = reduce;
                    s.loss_best_last_check = s.loss_best.shallow_clone();
                    s.increases = s.increases.zeros_like();
                    since_check = 0;
                    k = k.saturating_sub(size_decr).max(n_iter_min);
                }
                if checkpoint || (i + 1) % COMPACT_EVERY == 0 {
                    let left = s.robust.sum(Kind::Int64).int64_value(&[]);
                    if left < s.pos.size()[0] {
                        let gone = s.robust.logical_not().nonzero().squeeze_dim(1);
                        flush(&s, &mut out_adv, &mut out_broken, &gone);
                        let keep = s.robust.nonzero().squeeze_dim(1);
                        s = s.select(&keep);
                    }
                }
            });
            report(i + 1);
            if s.pos.size()[0] == 0 {
                break;
            }
        }
        tch::no_grad(|| {
            let gone = s.robust.logical_not().nonzero().squeeze_dim(1);
            if gone.size()[0] > 0 {
                flush(&s, &mut out_adv, &mut out_broken, &gone);
            }
        });
        Some((out_broken, out_adv))
    }
}

impl Attack for Apgd {
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
        let y = &y.to_kind(Kind::Int64);
        let n = x.size()[0];
        if n == 0 || self.steps == 0 {
            report(Work { done: 0, total: 0 });
            return x;
        }
        let mut adv = x.copy();
        let logits = tch::no_grad(|| net.forward(&x, &Mode::Eval));
        let classes = logits.size()[1];
        let mut robust = logits.argmax(-1, false).eq_tensor(y);
        // Classes by decreasing clean logit (APGD-T's targets).
        let ranked = match self.loss {
            ApgdLoss::DlrTargeted { .. } => Some(logits.argsort(1, true)),
            _ => None,
        };
        let (ce, runs) = match self.loss {
            ApgdLoss::CrossEntropy => (true, vec![None; self.restarts]),
            ApgdLoss::Dlr => (false, vec![None; self.restarts]),
            ApgdLoss::DlrTargeted { targets } => {
                let targets = (targets as i64).min(classes - 1).max(0);
                let mut runs = Vec::new();
                for t in 1..=targets {
                    runs.extend(std::iter::repeat_n(Some(t), self.restarts));
                }
                (false, runs)
            }
        };
        let run = Run {
            net,
            norm: self.norm,
            eps: self.epsilon,
            steps: self.steps,
            rho: self.rho,
            eot_iter: self.eot_iter,
            targeted: ranked.is_some(),
        };
        // Work: every run's iterations; a run that ends early (no point
        // left) or is not needed counts as done.
        let total = (runs.len() * self.steps) as u64;
        for (k, rank) in runs.into_iter().enumerate() {
            if ctx.cancelled() {
                break;
            }
            let idx = robust.nonzero().squeeze_dim(1);
            if idx.size()[0] == 0 {
                break;
            }
            tch::manual_seed(mix_seed(ctx.seed, k as i64));
            // The start of every point of the batch, so that a point's start
            // does not depend on which others are still robust.
            let noise = tch::no_grad(|| {
                let t = match self.norm {
                    Norm::Linf => {
                        let t = x.rand_like() * 2.0 - 1.0;
                        let m = t.abs().flatten(1, -1).amax([1], false);
                        &t / (per_point(&m, t.dim()) + 1e-12)
                    }
                    Norm::L2 => {
                        let t = x.randn_like();
                        &t / (l2_norms(&t) + 1e-12)
                    }
                };
                t.index_select(0, &idx)
            });
            let (xs, ys) = (x.index_select(0, &idx), y.index_select(0, &idx));
            let target = match (&ranked, rank) {
                (Some(r), Some(t)) => r.index_select(0, &idx).select(1, t),
                _ => ys.shallow_clone(),
            };
            let before = (k * self.steps) as u64;
            let mut tick = |i: usize| {
                report(Work {
                    done: before + i as u64,
                    total,
                })
            };
            let Some((broken, found)) = run.attack(&xs, &ys, &target, ce, &noise, ctx, &mut tick)
            else {
                break;
            };
            tch::no_grad(|| {
                let hit = broken.nonzero().squeeze_dim(1);
                if hit.size()[0] > 0 {
                    let at = idx.index_select(0, &hit);
                    let _ = adv.index_copy_(0, &at, &found.index_select(0, &hit));
                    let _ = robust.index_fill_(0, &at, 0i64);
                }
            });
        }
        report(Work { done: total, total });
        adv
    }
}
