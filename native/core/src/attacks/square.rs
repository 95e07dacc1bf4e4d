//! Square Attack (Andriushchenko, Croce, Flammarion, Hein, ECCV 2020):
//! score-based random search with square-shaped updates, the fourth attack
//! of AutoAttack's standard version. It queries the network only (no
//! gradients) and minimises the margin z_y − max_{j≠y} z_j.
//!
//! As AutoAttack's code (fra31/auto-attack `square.py`) and its port in
//! torchattacks 3.5.1 run it:
//!
//! * L-inf starts from vertical stripes (x ± eps, one random sign per point,
//!   channel and column), L2 from a 5×5 grid of the paper's "ring" blocks
//!   with random signs, scaled to norm eps.
//! * Each iteration is one query: one square of side s (from `p_selection`,
//!   the iteration rescaled to a 10,000-query budget) at a random position,
//!   with a random sign per channel (L-inf: the square is set to x ± eps,
//!   i.e. x_best + 2·eps·sign projected onto the ball; L2: a ring block moved
//!   from a second random square, the mass kept at norm eps). The position,
//!   the signs (L-inf) and the block's orientation are shared by every point
//!   of the batch in an iteration, as in the reference code; so a point's
//!   draws do not depend on which other points are still being attacked.
//! * A candidate is accepted only if it lowers the point's margin (the loss
//!   is the margin itself, so "lower loss or misclassified" reduces to this).
//! * Only points whose best margin is still positive are queried; the run
//!   stops when every point is fooled.
//! * A square's corner is drawn uniformly in [0, h−s) × [0, w−s), as in the
//!   reference (and the original code), so the last row and column keep
//!   their starting values.
//!
//! Speed: the forward pass is nearly all the cost, so queries whose answer
//! is known are not sent. An L-inf candidate is x_best with the square set
//! to x ± eps; where that leaves a point unchanged, or repeats a candidate
//! (same side, position and signs) the point refused since its best input
//! last changed, the answer would be the point's own margin or one it
//! already refused, so the point is left out of that forward pass. The
//! outcome is the reference's (up to float differences between batch
//! sizes); the queries counted are the reference's, the forward rows fewer.
//! The candidate is built in place in the active set's best inputs and
//! undone where refused; fooled points leave the active set as soon as
//! they are fooled (one host synchronisation per iteration, which also
//! decides which rows to forward).
//!
//! Queries: `queries` is the number of iterations (torchattacks'
//! `n_queries`); each point also has its initial query, so a point that
//! survives costs `queries + 1` forward passes, as in the reference.
//!
//! Deviations from the reference: restart `k` is seeded with
//! `mix_seed(ctx.seed, k)` (the reference seeds once before all restarts);
//! the random numbers are drawn differently (so runs agree in distribution,
//! not bit for bit); per point the output is the lowest-margin input found
//! over all restarts, even where it is not adversarial (the reference
//! returns the clean input there); the L-inf side is capped at h−1 as in the
//! original code (max-andr/square-attack; fra31 caps at min(h, w), which
//! only differs for p_init above (h−1)²/(h·w)); the L2 start grid skips the
//! blocks that do not fit in the image (the reference fails on such sizes).
//! The original numpy code redraws the signs of a point's square while they
//! would not change it; AutoAttack's batched code (one square for the whole
//! batch) does not, and neither does this one.

use super::{mix_seed, Attack, AttackContext, Norm, Work};
use crate::models::forward_copy::on_forward_copy;
use crate::models::{Classifier, Mode};
use tch::{Device, Kind, Tensor};

#[derive(Debug, Clone)]
pub struct Square {
    pub norm: Norm,
    pub epsilon: f64,
    /// Queries (model evaluations) per point (5000 in the standard version).
    pub queries: usize,
    pub restarts: usize,
    /// Initial fraction of pixels changed per update (0.8).
    pub p_init: f64,
}

/// Largest table of refused candidates kept (points × candidates, bytes).
const MAX_REFUSED_TABLE: i64 = 1 << 26;

/// What `Square::attack` finds: per point the input it reports and that
/// input's margin z_y − max_{j≠y} z_j (≤ 0: adversarial).
pub struct SquareOutcome {
    pub x_adv: Tensor,
    pub margin: Tensor,
}

/// Margin z_y − max_{j≠y} z_j per row (`true_class`: one-hot, Bool).
fn margin(logits: &Tensor, y: &Tensor, true_class: &Tensor) -> Tensor {
    let z_y = logits.gather(1, &y.view([-1, 1]), false).squeeze_dim(1);
    let z_other = logits
        .masked_fill(true_class, f64::NEG_INFINITY)
        .amax([1], false);
    z_y - z_other
}

/// The points of one run still being attacked (rows of the run's batch).
struct Active {
    /// Row of each active point in the run's batch (Int64, on x's device).
    idx: Tensor,
    x: Tensor,
    /// Best input so far; for L-inf, the candidate while it is scored.
    best: Tensor,
    y: Tensor,
    true_class: Tensor,
    /// Best margin so far (> 0 while the point is active).
    margin: Tensor,
    /// L-inf only: the clean input moved by +eps and −eps, clipped to [0,1].
    plus: Option<Tensor>,
    minus: Option<Tensor>,
    /// L-inf only: per point, the candidates of the current square side
    /// (position and signs) it refused since its best input last changed
    /// (Bool, points × candidates); none where that table would be large.
    refused: Option<Tensor>,
}

impl Active {
    fn len(&self) -> i64 {
        self.idx.size()[0]
    }

    fn select(&mut self, rows: &Tensor) {
        let pick = |t: &Tensor| t.index_select(0, rows);
        self.idx = pick(&self.idx);
        self.x = pick(&self.x);
        self.best = pick(&self.best);
        self.y = pick(&self.y);
        self.true_class = pick(&self.true_class);
        self.margin = pick(&self.margin);
        self.plus = self.plus.as_ref().map(pick);
        self.minus = self.minus.as_ref().map(pick);
        self.refused = self.refused.as_ref().map(pick);
    }

    /// Writes the rows `rows` (of the active set) into the run's outputs.
    fn write_back(&self, rows: Option<&Tensor>, out_x: &mut Tensor, out_m: &mut Tensor) {
        match rows {
            None => {
                let _ = out_x.index_copy_(0, &self.idx, &self.best);
                let _ = out_m.index_copy_(0, &self.idx, &self.margin);
            }
            Some(r) => {
                let idx = self.idx.index_select(0, r);
                let _ = out_x.index_copy_(0, &idx, &self.best.index_select(0, r));
                let _ = out_m.index_copy_(0, &idx, &self.margin.index_select(0, r));
            }
        }
    }

    /// Moves the points fooled so far (margin ≤ 0) to the outputs and drops
    /// them; true when none is left. One host synchronisation.
    fn retire_fooled(&mut self, out_x: &mut Tensor, out_m: &mut Tensor) -> bool {
        let done = self.margin.le(0.0);
        let n_done = done.sum(Kind::Int64).int64_value(&[]);
        if n_done == 0 {
            return false;
        }
        if n_done == self.len() {
            self.write_back(None, out_x, out_m);
            return true;
        }
        self.write_back(Some(&done.nonzero().squeeze_dim(1)), out_x, out_m);
        self.select(&done.logical_not().nonzero().squeeze_dim(1));
        false
    }
}

/// The paper's L2 block: a square of side s, its top half one sign and its
/// bottom half the other, each half a sum of centred rectangles weighted
/// 1/(k+1)², unit L2 norm (row-major, s×s).
fn l2_block(s: usize) -> Vec<f64> {
    // Half of the block: an a×b sum of nested rectangles around the centre.
    fn half(a: usize, b: usize) -> Vec<f64> {
        let mut d = vec![0.0; a * b];
        let (a_i, b_i) = (a as i64, b as i64);
        let (cx, cy) = (a_i / 2 + 1, b_i / 2 + 1);
        let (mut r0, mut c0) = (cx - 1, cy - 1);
        for k in 0..cx.max(cy) {
            let (r_lo, r_hi) = (r0.max(0), (r0 + 2 * k + 1).min(a_i));
            let (c_lo, c_hi) = (c0.max(0), (c0 + 2 * k + 1).min(b_i));
            let v = 1.0 / ((k + 1) * (k + 1)) as f64;
            for r in r_lo..r_hi {
                for c in c_lo..c_hi {
                    d[(r * b_i + c) as usize] += v;
                }
            }
            r0 -= 1;
            c0 -= 1;
        }
        let n = d.iter().map(|v| v * v).sum::<f64>().sqrt();
        if n > 0.0 {
            d.iter_mut().for_each(|v| *v /= n);
        }
        d
    }
    let top = s / 2;
    let mut block = half(top, s);
    block.extend(half(s - top, s).into_iter().map(|v| -v));
    let n = block.iter().map(|v| v * v).sum::<f64>().sqrt();
    if n > 0.0 {
        block.iter_mut().for_each(|v| *v /= n);
    }
    block
}

/// A random ±1 tensor of `shape` (each sign with probability 1/2).
fn random_signs(shape: &[i64], kind: Kind, device: Device) -> Tensor {
    Tensor::rand(shape, (kind, device)).ge(0.5).to_kind(kind) * 2.0 - 1.0
}

/// Per-point L2 norm, shaped N×1×1×1.
fn norms(t: &Tensor) -> Tensor {
    t.square()
        .sum_dim_intlist([1i64, 2, 3].as_slice(), true, None::<Kind>)
        .sqrt()
}

impl Square {
    /// Both norms are implemented.
    pub fn supports(norm: Norm) -> bool {
        matches!(norm, Norm::Linf | Norm::L2)
    }

    /// The fraction of pixels a square covers at iteration `it` (0-based):
    /// the iteration rescaled to a 10,000-query budget, `p_init` halved after
    /// 10, 50, 200, 500, 1000, 2000, 4000, 6000 and 8000 (the paper's
    /// schedule, as the reference code computes it).
    pub fn p_selection(&self, it: usize) -> f64 {
        let t = if self.queries > 0 {
            // int(it / n_queries * 10000), truncated as Python does.
            (it as f64 / self.queries as f64 * 10_000.0) as i64
        } else {
            it as i64
        };
        const KNOTS: [i64; 9] = [10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000];
        let halvings = KNOTS.iter().filter(|&&k| t > k).count();
        self.p_init / f64::from(1u32 << halvings)
    }

    /// The side of the square at iteration `it` for c×h×w inputs:
    /// round(sqrt(p·h·w)) (half to even, as Python's round) with p from
    /// `p_selection`; L-inf: at least 1 and at most h−1; L2: at least 3,
    /// odd, at most min(h, w).
    pub fn side(&self, it: usize, c: i64, h: i64, w: i64) -> i64 {
        let p = self.p_selection(it);
        let s = (p * (c * h * w) as f64 / c as f64).sqrt().round_ties_even() as i64;
        match self.norm {
            Norm::Linf => s.max(1).min((h - 1).max(1)),
            Norm::L2 => {
                let s = s.max(3);
                let s = if s % 2 == 0 { s + 1 } else { s };
                s.min(h.min(w))
            }
        }
    }

    /// Runs the attack with at most `stop_after` iterations per restart
    /// (the schedule stays the one of `queries`, so with the same seed a run
    /// stopped earlier sees exactly the first iterations of a longer one).
    /// `perturb` is `attack(.., self.queries).x_adv`. Points misclassified
    /// on input are returned unchanged, with their clean margin.
    pub fn attack(
        &self,
        net: &dyn Classifier,
        x: &Tensor,
        y: &Tensor,
        ctx: &AttackContext,
        stop_after: usize,
    ) -> SquareOutcome {
        self.attack_reporting(net, x, y, ctx, stop_after, &mut |_| {})
    }

    /// `attack`, reporting the iterations done over all restarts (a restart
    /// not needed, or a run that fooled every point, counts as done).
    pub fn attack_reporting(
        &self,
        net: &dyn Classifier,
        x: &Tensor,
        y: &Tensor,
        ctx: &AttackContext,
        stop_after: usize,
        report: &mut dyn FnMut(Work),
    ) -> SquareOutcome {
        let iterations = stop_after.min(self.queries);
        let total = (self.restarts.max(1) * iterations) as u64;
        // Every pass of Square is gradient-free: on the network's
        // channels-last copy where it has one (models/forward_copy.rs);
        // callers score the result on the network itself.
        let outcome = on_forward_copy(|| {
            self.attack_runs(net, x, y, ctx, stop_after, &mut |k, it| {
                report(Work {
                    done: (k * iterations + it) as u64,
                    total,
                })
            })
        });
        report(Work { done: total, total });
        outcome
    }

    /// The restarts; `report` gets (restart, iterations done in it).
    fn attack_runs(
        &self,
        net: &dyn Classifier,
        x: &Tensor,
        y: &Tensor,
        ctx: &AttackContext,
        stop_after: usize,
        report: &mut dyn FnMut(usize, usize),
    ) -> SquareOutcome {
        let _guard = tch::no_grad_guard();
        let x = x.detach();
        assert_eq!(x.dim(), 4, "Square expects N×C×H×W inputs");
        if x.size()[0] == 0 {
            return SquareOutcome {
                x_adv: x.copy(),
                margin: Tensor::zeros([0], (x.kind(), x.device())),
            };
        }
        let logits = net.forward(&x, &Mode::Eval);
        let true_class = y.one_hot(logits.size()[1]).to_kind(Kind::Bool);
        let mut best_margin = margin(&logits, y, &true_class);
        let mut x_adv = x.copy();
        // Only points classified correctly on input are attacked.
        let correct = logits.argmax(-1, false).eq_tensor(y);
        let mut todo = correct;
        for k in 0..self.restarts.max(1) {
            if ctx.cancelled() {
                break;
            }
            let rows = todo.nonzero().squeeze_dim(1);
            if rows.size()[0] == 0 {
                break;
            }
            tch::manual_seed(mix_seed(ctx.seed, k as i64));
            let (run_x, run_m) = self.single_run(
                net,
                &x.index_select(0, &rows),
                &y.index_select(0, &rows),
                &true_class.index_select(0, &rows),
                ctx,
                stop_after,
                &mut |it| report(k, it),
            );
            // Per point the lower margin; restart 0 replaces the clean
            // input of every attacked point (with its start at least).
            let old = best_margin.index_select(0, &rows);
            let better = if k == 0 {
                old.ones_like().to_kind(Kind::Bool)
            } else {
                run_m.lt_tensor(&old)
            };
            let keep_rows = better.nonzero().squeeze_dim(1);
            let at = rows.index_select(0, &keep_rows);
            let _ = x_adv.index_copy_(0, &at, &run_x.index_select(0, &keep_rows));
            let _ = best_margin.index_copy_(0, &at, &run_m.index_select(0, &keep_rows));
            todo = todo.logical_and(&best_margin.gt(0.0));
        }
        SquareOutcome {
            x_adv,
            margin: best_margin,
        }
    }

    /// One restart on the points given: per point the best input and its
    /// margin. `report` gets the iterations done.
    #[allow(clippy::too_many_arguments)]
    fn single_run(
        &self,
        net: &dyn Classifier,
        x: &Tensor,
        y: &Tensor,
        true_class: &Tensor,
        ctx: &AttackContext,
        stop_after: usize,
        report: &mut dyn FnMut(usize),
    ) -> (Tensor, Tensor) {
        let (n, c, h, w) = x.size4().expect("N×C×H×W inputs");
        let (kind, device) = (x.kind(), x.device());
        let eps = self.epsilon;
        let iterations = stop_after.min(self.queries);
        // The starting point.
        let (start, plus, minus) = match self.norm {
            Norm::Linf => {
                let plus = (x + eps).clamp(0.0, 1.0);
                let minus = (x - eps).clamp(0.0, 1.0);
                let up = Tensor::rand([n, c, 1, w], (kind, device)).ge(0.5);
                (plus.where_self(&up, &minus), Some(plus), Some(minus))
            }
            Norm::L2 => (self.l2_start(x), None, None),
        };
        let start_margin = margin(&net.forward(&start, &Mode::Eval), y, true_class);
        // Per iteration: the square's position (2 numbers; L2: 2 more for the
        // square it takes the mass from) and the signs per channel (L-inf) or
        // the block's orientation (L2). Drawn for the whole schedule at once,
        // so a run stopped earlier draws the same numbers.
        let per_iter = match self.norm {
            Norm::Linf => 2 + c as usize,
            Norm::L2 => 5,
        };
        let draws: Vec<f64> = if self.queries > 0 {
            Vec::<f64>::try_from(
                Tensor::rand(
                    [self.queries as i64, per_iter as i64],
                    (Kind::Double, Device::Cpu),
                )
                .view([-1]),
            )
            .expect("a CPU double tensor")
        } else {
            Vec::new()
        };
        let mut out_x = start.copy();
        let mut out_m = start_margin.copy();
        let mut act = Active {
            idx: Tensor::arange(n, (Kind::Int64, device)),
            x: x.shallow_clone(),
            best: start,
            y: y.shallow_clone(),
            true_class: true_class.shallow_clone(),
            margin: start_margin,
            plus,
            minus,
            refused: None,
        };
        if act.retire_fooled(&mut out_x, &mut out_m) {
            return (out_x, out_m);
        }
        let pos = |u: f64, span: i64| ((u * span as f64) as i64).clamp(0, (span - 1).max(0));
        let mut blocks: Vec<Option<(Tensor, Tensor)>> = Vec::new();
        let mut table_side = 0;
        for it in 0..iterations {
            if ctx.cancelled() {
                break;
            }
            report(it);
            let s = self.side(it, c, h, w);
            let u = &draws[it * per_iter..(it + 1) * per_iter];
            let (vh, vw) = (pos(u[0], h - s), pos(u[1], w - s));
            match self.norm {
                Norm::Linf => {
                    // Candidate in place: the square set to x ± eps per
                    // channel (x_best + 2·eps·sign, projected), the old
                    // values kept to undo it where it is not accepted.
                    let mut win = act.best.narrow(2, vh, s).narrow(3, vw, s);
                    let old = win.copy();
                    let plus = act.plus.as_ref().expect("L-inf state");
                    let minus = act.minus.as_ref().expect("L-inf state");
                    let pick = |ch: usize| if u[2 + ch] >= 0.5 { plus } else { minus };
                    if (1..c as usize).all(|ch| (u[2 + ch] >= 0.5) == (u[2] >= 0.5)) {
                        win.copy_(&pick(0).narrow(2, vh, s).narrow(3, vw, s));
                    } else {
                        for ch in 0..c as usize {
                            let chi = ch as i64;
                            win.narrow(1, chi, 1).copy_(
                                &pick(ch).narrow(1, chi, 1).narrow(2, vh, s).narrow(3, vw, s),
                            );
                        }
                    }
                    // Queries whose answer is known are not sent: a point
                    // whose square already holds these values is not
                    // changed, and a candidate the point refused since its
                    // best input last changed is the same input again;
                    // either would score the point's own margin or a higher
                    // one and be refused (the reference spends the query;
                    // the outcome is the same).
                    if s != table_side {
                        table_side = s;
                        let keys = ((h - s).max(1) * (w - s).max(1)) << c.min(16);
                        act.refused = (c < 16 && act.len() * keys <= MAX_REFUSED_TABLE)
                            .then(|| Tensor::zeros([act.len(), keys], (Kind::Bool, device)));
                    }
                    let bits = (0..c as usize)
                        .filter(|&ch| u[2 + ch] >= 0.5)
                        .fold(0i64, |b, ch| b | (1 << ch));
                    let key = ((vh * (w - s).max(1) + vw) << c) | bits;
                    let mut fresh = win.ne_tensor(&old).flatten(1, -1).any_dim(1, false);
                    if let Some(r) = &act.refused {
                        fresh = fresh.logical_and(&r.select(1, key).logical_not());
                    }
                    let n_fresh = fresh.sum(Kind::Int64).int64_value(&[]);
                    if n_fresh == 0 {
                        win.copy_(&old);
                        continue;
                    }
                    let m = if n_fresh == act.len() {
                        margin(
                            &net.forward(&act.best, &Mode::Eval),
                            &act.y,
                            &act.true_class,
                        )
                    } else {
                        let rows = fresh.nonzero().squeeze_dim(1);
                        let sub = margin(
                            &net.forward(&act.best.index_select(0, &rows), &Mode::Eval),
                            &act.y.index_select(0, &rows),
                            &act.true_class.index_select(0, &rows),
                        );
                        act.margin.index_copy(0, &rows, &sub)
                    };
                    let improved = m.lt_tensor(&act.margin);
                    let keep_new = improved.view([-1, 1, 1, 1]);
                    let merged = win.where_self(&keep_new, &old);
                    win.copy_(&merged);
                    if let Some(r) = &mut act.refused {
                        let _ = r
                            .select(1, key)
                            .logical_or_(&fresh.logical_and(&improved.logical_not()));
                        let moved = improved.nonzero().squeeze_dim(1);
                        if moved.size()[0] > 0 {
                            let _ = r.index_fill_(0, &moved, 0);
                        }
                    }
                    act.margin = m.where_self(&improved, &act.margin);
                }
                Norm::L2 => {
                    let (vh2, vw2) = (pos(u[2], h - s), pos(u[3], w - s));
                    let su = s as usize;
                    if blocks.len() <= su {
                        blocks.resize_with(su + 1, || None);
                    }
                    let (b, bt) = blocks[su].get_or_insert_with(|| {
                        let b = Tensor::from_slice(&l2_block(su))
                            .view([1, 1, s, s])
                            .to_kind(kind)
                            .to_device(device);
                        let bt = b.transpose(2, 3).contiguous();
                        (b, bt)
                    });
                    let block = if u[4] > 0.5 { &*bt } else { &*b };
                    let cand = self.l2_candidate(&act, block, s, (vh, vw), (vh2, vw2));
                    let m = margin(&net.forward(&cand, &Mode::Eval), &act.y, &act.true_class);
                    let improved = m.lt_tensor(&act.margin);
                    act.best = cand.where_self(&improved.view([-1, 1, 1, 1]), &act.best);
                    act.margin = m.where_self(&improved, &act.margin);
                }
            }
            if act.retire_fooled(&mut out_x, &mut out_m) {
                return (out_x, out_m);
            }
        }
        act.write_back(None, &mut out_x, &mut out_m);
        (out_x, out_m)
    }

    /// L2 start: ring blocks of side h/5 on a grid centred in the image,
    /// each with a random sign per point and channel and a random
    /// orientation, the sum scaled to norm eps and clipped to [0,1].
    fn l2_start(&self, x: &Tensor) -> Tensor {
        let (n, c, h, w) = x.size4().expect("N×C×H×W inputs");
        let (kind, device) = (x.kind(), x.device());
        let s = (h / 5).max(1);
        let start = (h - 5 * s).max(0) / 2;
        let block = Tensor::from_slice(&l2_block(s as usize))
            .view([1, 1, s, s])
            .to_kind(kind)
            .to_device(device);
        let delta = x.zeros_like();
        for i in 0..h / s {
            for j in 0..w / s {
                let (vh, vw) = (start + i * s, start + j * s);
                if vh + s > h || vw + s > w {
                    continue;
                }
                let flip = f64::try_from(Tensor::rand([1], (Kind::Double, Device::Cpu)))
                    .expect("one number")
                    > 0.5;
                let b = if flip {
                    block.transpose(2, 3)
                } else {
                    block.shallow_clone()
                };
                let signs = random_signs(&[n, c, 1, 1], kind, device);
                let _ = delta.narrow(2, vh, s).narrow(3, vw, s).g_add_(&(b * signs));
            }
        }
        (x + &delta / (norms(&delta) + 1e-12) * self.epsilon).clamp(0.0, 1.0)
    }

    /// L2 candidate (the reference's update): the square at `at` gets a new
    /// ring block with random signs per point and channel, added to the
    /// square's current perturbation (normalised), rescaled so that it holds
    /// the mass of both squares plus what is left of the budget; the
    /// square at `from` is emptied; the whole perturbation is scaled to norm
    /// eps and the point clipped to [0,1].
    fn l2_candidate(
        &self,
        act: &Active,
        block: &Tensor,
        s: i64,
        at: (i64, i64),
        from: (i64, i64),
    ) -> Tensor {
        let (n, c, h, w) = act.x.size4().expect("N×C×H×W inputs");
        let (kind, device) = (act.x.kind(), act.x.device());
        let eps = self.epsilon;
        let delta = &act.best - &act.x;
        let sq = delta.square();
        let dims = [2i64, 3];
        let image_norm2 = sq.sum_dim_intlist([1i64, 2, 3].as_slice(), true, None::<Kind>);
        let mask = Tensor::zeros([1, 1, h, w], (kind, device));
        let _ = mask.narrow(2, at.0, s).narrow(3, at.1, s).fill_(1.0);
        let _ = mask.narrow(2, from.0, s).narrow(3, from.1, s).fill_(1.0);
        let windows_norm2 = (&sq * &mask).sum_dim_intlist(dims.as_slice(), true, None::<Kind>);
        let cur = delta.narrow(2, at.0, s).narrow(3, at.1, s);
        let cur_norm = cur
            .square()
            .sum_dim_intlist(dims.as_slice(), true, None::<Kind>)
            .sqrt();
        let new = block * random_signs(&[n, c, 1, 1], kind, device) + &cur / (cur_norm + 1e-12);
        let new_norm = new
            .square()
            .sum_dim_intlist(dims.as_slice(), true, None::<Kind>)
            .sqrt();
        let room = ((-image_norm2 + eps * eps).clamp_min(0.0) / c as f64 + windows_norm2).sqrt();
        let new = new / (new_norm + 1e-12) * room;
        let _ = delta.narrow(2, from.0, s).narrow(3, from.1, s).fill_(0.0);
        delta.narrow(2, at.0, s).narrow(3, at.1, s).copy_(&new);
        (&act.x + &delta / (norms(&delta) + 1e-12) * eps).clamp(0.0, 1.0)
    }
}

impl Attack for Square {
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
        self.attack_reporting(net, x, y, ctx, self.queries, report)
            .x_adv
    }
}
