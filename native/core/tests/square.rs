//! Square Attack: invariants (ball, [0,1], L-inf vertices, monotone
//! acceptance, never more accurate than clean, determinism), the paper's
//! schedule, a linear classifier whose L-inf optimum has a closed form, the
//! anytime property (a longer run never breaks fewer points), query
//! accounting and cancellation.

mod common;

use common::seeded;
use st_core::attacks::square::Square;
use st_core::attacks::{mix_seed, Attack, AttackContext, Norm};
use st_core::models::{Classifier, Mode};
use std::cell::Cell;
use std::sync::atomic::AtomicBool;
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

// ------------------------------------------------------------ fixtures

/// Logits W x + b on flattened inputs; counts the rows it is asked for.
struct Linear {
    w: Tensor,
    b: Tensor,
    rows: Cell<i64>,
}

impl Classifier for Linear {
    fn forward(&self, xs: &Tensor, _mode: &Mode) -> Tensor {
        self.rows.set(self.rows.get() + xs.size()[0]);
        xs.flatten(1, -1).matmul(&self.w.tr()) + &self.b
    }
}

impl Linear {
    fn margin(&self, x: &Tensor, y: &Tensor) -> Tensor {
        let z = x.flatten(1, -1).matmul(&self.w.tr()) + &self.b;
        let onehot = y.one_hot(z.size()[1]).to_kind(Kind::Bool);
        z.gather(1, &y.view([-1, 1]), false).squeeze_dim(1)
            - z.masked_fill(&onehot, f64::NEG_INFINITY).amax([1], false)
    }
}

/// A random two-layer perceptron on 1×8×8 images, 4 classes.
struct Mlp {
    _vs: nn::VarStore,
    l1: nn::Linear,
    l2: nn::Linear,
}

impl Classifier for Mlp {
    fn forward(&self, xs: &Tensor, _mode: &Mode) -> Tensor {
        self.l2.forward(&self.l1.forward(&xs.flatten(1, -1)).relu())
    }
}

fn mlp() -> Mlp {
    tch::manual_seed(3);
    let vs = nn::VarStore::new(Device::Cpu);
    let p = vs.root();
    let l1 = nn::linear(&p / "l1", 64, 32, Default::default());
    let l2 = nn::linear(&p / "l2", 32, 4, Default::default());
    Mlp { _vs: vs, l1, l2 }
}

fn predict(net: &dyn Classifier, x: &Tensor) -> Tensor {
    tch::no_grad(|| net.forward(x, &Mode::Eval).argmax(-1, false))
}

/// Inputs for the perceptron: labels are its clean predictions except every
/// fifth, which is shifted (so some points are misclassified on input).
fn mlp_batch(net: &Mlp, n: i64) -> (Tensor, Tensor, Tensor) {
    tch::manual_seed(11);
    let x = Tensor::rand([n, 1, 8, 8], (Kind::Float, Device::Cpu));
    let pred = predict(net, &x);
    let wrong = Tensor::arange(n, (Kind::Int64, Device::Cpu))
        .remainder(5)
        .eq(0);
    let y = (&pred + 1).remainder(4).where_self(&wrong, &pred);
    (x, y, wrong)
}

fn ctx(seed: i64) -> AttackContext<'static> {
    AttackContext { seed, cancel: None }
}

fn square(norm: Norm, epsilon: f64, queries: usize) -> Square {
    Square {
        norm,
        epsilon,
        queries,
        restarts: 1,
        p_init: 0.8,
    }
}

fn all(t: Tensor) -> bool {
    bool::try_from(t.all()).unwrap()
}

fn count(t: &Tensor) -> i64 {
    t.to_kind(Kind::Int64).sum(Kind::Int64).int64_value(&[])
}

fn margin_of(net: &dyn Classifier, x: &Tensor, y: &Tensor) -> Tensor {
    tch::no_grad(|| {
        let z = net.forward(x, &Mode::Eval);
        let onehot = y.one_hot(z.size()[1]).to_kind(Kind::Bool);
        z.gather(1, &y.view([-1, 1]), false).squeeze_dim(1)
            - z.masked_fill(&onehot, f64::NEG_INFINITY).amax([1], false)
    })
}

// ------------------------------------------------------------ invariants

#[test]
fn linf_outputs_are_vertices_of_the_ball_and_never_help_the_model() {
    let _g = seeded(0);
    let net = mlp();
    let (x, y, wrong) = mlp_batch(&net, 40);
    let eps = 0.08;
    let atk = square(Norm::Linf, eps, 300);
    let out = atk.attack(&net, &x, &y, &ctx(5), atk.queries);
    let adv = &out.x_adv;
    assert_eq!(adv.size(), x.size());
    let d = (adv - &x).abs();
    assert!(d.max().double_value(&[]) <= eps + 1e-6);
    assert!(adv.min().double_value(&[]) >= 0.0 && adv.max().double_value(&[]) <= 1.0);
    // Attacked points: every pixel at x ± eps, or clipped to 0 or 1.
    let attacked = wrong.logical_not().view([-1, 1, 1, 1]);
    let vertex = (d - eps)
        .abs()
        .le(1e-6)
        .logical_or(&adv.eq(0.0))
        .logical_or(&adv.eq(1.0));
    assert!(all(vertex.logical_or(&attacked.logical_not())));
    // Points misclassified on input are returned as they are.
    let w = wrong.nonzero().squeeze_dim(1);
    assert!(adv.index_select(0, &w).equal(&x.index_select(0, &w)));
    // Never more accurate than clean; some points broken.
    let acc = |t: &Tensor| count(&predict(&net, t).eq_tensor(&y));
    assert!(acc(adv) <= acc(&x));
    assert!(acc(adv) < acc(&x), "no point broken: {}", acc(adv));
    // The reported margin is the output's margin.
    let m = margin_of(&net, adv, &y);
    assert!(out.margin.allclose(&m, 1e-5, 1e-5, false));
    // Monotone acceptance: the output's margin never exceeds the start's
    // (a run stopped after 0 iterations reports the vertical stripes).
    let start = atk.attack(&net, &x, &y, &ctx(5), 0);
    assert!(all(out.margin.le_tensor(&(start.margin + 1e-6))));
    // The stripes: per attacked point, channel and column one sign.
    let sd = (&start.x_adv - &x).sign();
    let clipped = start.x_adv.eq(0.0).logical_or(&start.x_adv.eq(1.0));
    let col = sd.masked_fill(&clipped, 0.0);
    let top = col.amax([2], true);
    let bottom = col.amin([2], true);
    assert!(all((top * bottom)
        .ge(0.0)
        .logical_or(&attacked.logical_not())));
}

#[test]
fn the_same_seed_gives_the_same_inputs() {
    let _g = seeded(0);
    let net = mlp();
    let (x, y, _) = mlp_batch(&net, 24);
    for norm in [Norm::Linf, Norm::L2] {
        let eps = if norm == Norm::Linf { 0.05 } else { 0.5 };
        let atk = square(norm, eps, 120);
        let a = atk.perturb(&net, &x, &y, &ctx(9));
        tch::manual_seed(1234); // the attack reseeds itself
        let b = atk.perturb(&net, &x, &y, &ctx(9));
        assert!(a.equal(&b), "{norm:?}");
        let c = atk.perturb(&net, &x, &y, &ctx(10));
        assert!(!a.equal(&c), "{norm:?}: another seed, other draws");
    }
}

#[test]
fn l2_outputs_stay_in_the_ball_and_lower_the_margin() {
    let _g = seeded(0);
    let net = mlp();
    let (x, y, wrong) = mlp_batch(&net, 32);
    let eps = 1.0;
    let atk = square(Norm::L2, eps, 200);
    let out = atk.attack(&net, &x, &y, &ctx(2), atk.queries);
    let adv = &out.x_adv;
    let norms = (adv - &x)
        .square()
        .sum_dim_intlist([1i64, 2, 3].as_slice(), false, None::<Kind>)
        .sqrt();
    assert!(norms.max().double_value(&[]) <= eps + 1e-5);
    assert!(adv.min().double_value(&[]) >= 0.0 && adv.max().double_value(&[]) <= 1.0);
    let w = wrong.nonzero().squeeze_dim(1);
    assert!(adv.index_select(0, &w).equal(&x.index_select(0, &w)));
    let acc = |t: &Tensor| count(&predict(&net, t).eq_tensor(&y));
    assert!(acc(adv) < acc(&x), "{} vs {}", acc(adv), acc(&x));
    let start = atk.attack(&net, &x, &y, &ctx(2), 0);
    assert!(all(out.margin.le_tensor(&(&start.margin + 1e-6))));
    assert!(
        out.margin.sum(Kind::Double).double_value(&[])
            < start.margin.sum(Kind::Double).double_value(&[])
    );
    // The start spends the whole budget (up to clipping at 0 and 1).
    let attacked = wrong.logical_not();
    let start_norms = (&start.x_adv - &x)
        .square()
        .sum_dim_intlist([1i64, 2, 3].as_slice(), false, None::<Kind>)
        .sqrt();
    assert!(start_norms.masked_select(&attacked).min().double_value(&[]) > 0.5 * eps);
}

// ------------------------------------------------------------ schedule

#[test]
fn the_schedule_halves_p_at_the_papers_iterations() {
    // The paper (Sec. 3 / App.): p halved at i ∈ {10, 50, 200, 500, 1000,
    // 2000, 4000, 6000, 8000} of a 10,000-query budget, rescaled for others.
    let table_10k: [(usize, f64); 20] = [
        (0, 0.8),
        (10, 0.8),
        (11, 0.4),
        (50, 0.4),
        (51, 0.2),
        (200, 0.2),
        (201, 0.1),
        (500, 0.1),
        (501, 0.05),
        (1000, 0.05),
        (1001, 0.025),
        (2000, 0.025),
        (2001, 0.0125),
        (4000, 0.0125),
        (4001, 0.00625),
        (6000, 0.00625),
        (6001, 0.003125),
        (8000, 0.003125),
        (8001, 0.0015625),
        (9999, 0.0015625),
    ];
    let a = square(Norm::Linf, 0.3, 10_000);
    for (it, p) in table_10k {
        assert_eq!(a.p_selection(it), p, "10k, iteration {it}");
    }
    // 5000 queries: iteration i is i·2 on the 10k scale.
    let table_5k: [(usize, f64); 19] = [
        (0, 0.8),
        (5, 0.8),
        (6, 0.4),
        (25, 0.4),
        (26, 0.2),
        (100, 0.2),
        (101, 0.1),
        (250, 0.1),
        (251, 0.05),
        (500, 0.05),
        (501, 0.025),
        (1000, 0.025),
        (1001, 0.0125),
        (2000, 0.0125),
        (2001, 0.00625),
        (3000, 0.00625),
        (3001, 0.003125),
        (4001, 0.0015625),
        (4999, 0.0015625),
    ];
    let b = square(Norm::Linf, 0.3, 5_000);
    for (it, p) in table_5k {
        assert_eq!(b.p_selection(it), p, "5k, iteration {it}");
    }
}

#[test]
fn the_square_side_follows_p_and_stays_in_the_image() {
    let a = square(Norm::Linf, 0.3, 5_000);
    // 28×28: round(sqrt(0.8·784)) = 25 at the start, 1 at the end.
    assert_eq!(a.side(0, 1, 28, 28), 25);
    assert_eq!(a.side(6, 1, 28, 28), 18); // sqrt(0.4·784) = 17.7
    assert_eq!(a.side(4999, 1, 28, 28), 1);
    // 3×32×32 (channels do not count): sqrt(0.8·1024) = 28.6.
    assert_eq!(a.side(0, 3, 32, 32), 29);
    let l2 = square(Norm::L2, 0.5, 5_000);
    for (c, h) in [(1, 28), (3, 32), (1, 6)] {
        let mut prev = i64::MAX;
        for it in 0..5_000 {
            let s = a.side(it, c, h, h);
            assert!((1..h).contains(&s), "side {s} at {it}");
            assert!(s <= prev);
            prev = s;
            let t = l2.side(it, c, h, h);
            assert!(t <= h && (t >= 3 || t == h) && (t % 2 == 1 || t == h));
        }
    }
    // p_init close to 1 on a small image: capped at h − 1.
    let big = Square {
        p_init: 1.0,
        ..square(Norm::Linf, 0.3, 100)
    };
    assert_eq!(big.side(0, 1, 6, 6), 5);
}

// ------------------------------------------------------------ known answer

/// Two classes on 1×6×6 inputs away from 0 and 1: the L-inf ball's worst
/// case is the vertex x + eps·sign(w_o − w_y), margin m − eps·|w_y − w_o|₁.
fn linear_case(n: i64) -> (Linear, Tensor, f64) {
    tch::manual_seed(21);
    let opts = (Kind::Double, Device::Cpu);
    let w = Tensor::randn([2, 36], opts);
    let b = Tensor::zeros([2], opts);
    let x = Tensor::rand([n, 1, 6, 6], opts) * 0.5 + 0.25;
    let net = Linear {
        w,
        b,
        rows: Cell::new(0),
    };
    (net, x, 0.04)
}

#[test]
fn on_a_linear_model_square_finds_the_vertex_optimum() {
    let _g = seeded(0);
    let (net, x, eps) = linear_case(64);
    let y = predict(&net, &x);
    let m0 = net.margin(&x, &y);
    let diff = net.w.get(0) - net.w.get(1); // w_0 − w_1
    let l1 = diff.abs().sum(Kind::Double).double_value(&[]);
    // No input in the ball has a lower margin than the vertex.
    let optimum = &m0 - eps * l1;
    let atk = square(Norm::Linf, eps, 1_000);
    let out = atk.attack(&net, &x, &y, &ctx(4), atk.queries);
    let start = atk.attack(&net, &x, &y, &ctx(4), 0);
    // The vertex x + eps·sign(w_other − w_y). As in the reference code, a
    // square's corner is drawn in [0, h − s), so the last row and column
    // keep their start (the stripes): what the search can reach is the
    // vertex elsewhere and the start there.
    let dir = (diff.view([1, -1]) * (y.view([-1, 1]) * 2 - 1).to_kind(Kind::Double)).sign();
    let vertex = &x + (dir * eps).view([-1, 1, 6, 6]);
    let inner = Tensor::ones([1, 1, 6, 6], (Kind::Bool, Device::Cpu));
    let _ = inner.narrow(2, 5, 1).fill_(0);
    let _ = inner.narrow(3, 5, 1).fill_(0);
    let reachable = vertex.where_self(&inner, &start.x_adv);
    let best = net.margin(&reachable, &y);
    assert!(all(best.ge_tensor(&(&optimum - 1e-9))));
    let breakable = best.lt(-0.3);
    let safe = optimum.gt(0.3);
    assert!(
        count(&breakable) >= 8 && count(&safe) >= 8,
        "fixture spread"
    );
    let fooled = predict(&net, &out.x_adv).ne_tensor(&y);
    assert!(
        all(fooled.logical_or(&breakable.logical_not())),
        "a breakable point survived"
    );
    assert!(!bool::try_from(fooled.logical_and(&safe).any()).unwrap());
    // Survivors end at the reachable optimum, input and margin.
    let survived = fooled.logical_not();
    let gap = (&out.margin - &best).masked_select(&survived);
    assert!(gap.abs().max().double_value(&[]) < 1e-9, "{gap:?}");
    let rows = survived.nonzero().squeeze_dim(1);
    assert!(out.x_adv.index_select(0, &rows).allclose(
        &reachable.index_select(0, &rows),
        1e-12,
        1e-12,
        false
    ));
}

/// The search as the reference code states it, on the whole batch every
/// iteration (no active set, every candidate forwarded, a copy per
/// candidate), drawing the same random numbers as `Square` does: the
/// optimised run must give the same inputs.
fn plain_linf(atk: &Square, net: &dyn Classifier, x: &Tensor, y: &Tensor, seed: i64) -> Tensor {
    let (n, c, h, w) = x.size4().unwrap();
    let eps = atk.epsilon;
    tch::manual_seed(mix_seed(seed, 0));
    let plus = (x + eps).clamp(0.0, 1.0);
    let minus = (x - eps).clamp(0.0, 1.0);
    let up = Tensor::rand([n, c, 1, w], (x.kind(), Device::Cpu)).ge(0.5);
    let mut best = plus.where_self(&up, &minus);
    let mut best_m = margin_of(net, &best, y);
    let u = Tensor::rand([atk.queries as i64, 2 + c], (Kind::Double, Device::Cpu));
    for it in 0..atk.queries {
        let s = atk.side(it, c, h, w);
        let at = |k: i64, span: i64| {
            ((u.double_value(&[it as i64, k]) * span as f64) as i64).min((span - 1).max(0))
        };
        let (vh, vw) = (at(0, h - s), at(1, w - s));
        let cand = best.copy();
        for ch in 0..c {
            let src = if u.double_value(&[it as i64, 2 + ch]) >= 0.5 {
                &plus
            } else {
                &minus
            };
            cand.narrow(1, ch, 1)
                .narrow(2, vh, s)
                .narrow(3, vw, s)
                .copy_(&src.narrow(1, ch, 1).narrow(2, vh, s).narrow(3, vw, s));
        }
        let m = margin_of(net, &cand, y);
        let accept = m.lt_tensor(&best_m).logical_and(&best_m.gt(0.0));
        best = cand.where_self(&accept.view([-1, 1, 1, 1]), &best);
        best_m = m.where_self(&accept, &best_m);
    }
    best
}

#[test]
fn the_fast_search_gives_the_plain_searchs_inputs() {
    let _g = seeded(0);
    tch::manual_seed(31);
    let opts = (Kind::Double, Device::Cpu);
    for c in [1i64, 3] {
        let net = Linear {
            w: Tensor::randn([4, c * 64], opts),
            b: Tensor::randn([4], opts),
            rows: Cell::new(0),
        };
        let x = Tensor::rand([30, c, 8, 8], opts);
        let y = predict(&net, &x); // all correct on input
        let atk = square(Norm::Linf, 0.03, 600);
        net.rows.set(0);
        let fast = atk.perturb(&net, &x, &y, &ctx(6));
        let forwarded = net.rows.get();
        let plain = plain_linf(&atk, &net, &x, &y, 6);
        assert!(fast.equal(&plain), "c = {c}");
        let fooled = count(&predict(&net, &fast).ne_tensor(&y));
        assert!(fooled > 0 && fooled < 30, "c = {c}: {fooled} fooled");
        // Known answers are not asked again: fewer rows than the plain
        // search's 30 per query.
        assert!(forwarded < 30 * 600 * 3 / 4, "c = {c}: {forwarded}");
    }
}

// ------------------------------------------------------------ anytime

#[test]
fn longer_runs_and_more_restarts_never_break_fewer_points() {
    let _g = seeded(0);
    let net = mlp();
    let (x, y, _) = mlp_batch(&net, 40);
    let atk = square(Norm::Linf, 0.05, 400);
    let mut prev: Option<(Tensor, Tensor)> = None;
    for k in [0usize, 10, 60, 200, 400] {
        let out = atk.attack(&net, &x, &y, &ctx(8), k);
        let fooled = out.margin.le(0.0);
        if let Some((pf, pm)) = &prev {
            assert!(
                all(pf.logical_and(&fooled.logical_not()).logical_not()),
                "k = {k}"
            );
            // Survivors' margins only go down.
            assert!(all(out.margin.le_tensor(pm).logical_or(&fooled)), "k = {k}");
        }
        prev = Some((fooled, out.margin));
    }
    let one = atk.attack(&net, &x, &y, &ctx(8), 400);
    let three = Square {
        restarts: 3,
        ..atk.clone()
    }
    .attack(&net, &x, &y, &ctx(8), 400);
    assert!(all(three.margin.le_tensor(&one.margin)));
    // Restart 0 is the one-restart run: points it broke keep its input.
    let broke = one.margin.le(0.0).nonzero().squeeze_dim(1);
    assert!(three
        .x_adv
        .index_select(0, &broke)
        .equal(&one.x_adv.index_select(0, &broke)));
}

#[test]
fn queries_stop_for_fooled_points_and_cancel_stops_the_run() {
    let _g = seeded(0);
    let (net, x, eps) = linear_case(32);
    let y = predict(&net, &x);
    let q = 150;
    // Points that cannot be broken take every query; broken ones stop.
    let diff = net.w.get(0) - net.w.get(1);
    let l1 = diff.abs().sum(Kind::Double).double_value(&[]);
    let safe = count(&(net.margin(&x, &y) - eps * l1).gt(0.0));
    let atk = square(Norm::Linf, eps, q);
    net.rows.set(0);
    let out = atk.attack(&net, &x, &y, &ctx(1), q);
    let rows = net.rows.get();
    // One clean pass, one start, then at most q queries per point.
    assert!(rows <= 2 * 32 + 32 * q as i64, "{rows}");
    assert!(rows >= 2 * 32 + safe * q as i64, "{rows}");
    assert!(count(&out.margin.le(0.0)) < 32);
    // A huge radius: every point is broken by the start, no iteration runs.
    let big = square(Norm::Linf, 0.25, q);
    net.rows.set(0);
    let out = big.attack(&net, &x, &y, &ctx(1), q);
    assert!(net.rows.get() < 2 * 32 + 32 * q as i64 / 4);
    assert!(all(out.margin.le(0.0)));
    // Cancelled from the start: only the clean pass, inputs unchanged.
    let flag = AtomicBool::new(true);
    net.rows.set(0);
    let adv = atk.perturb(
        &net,
        &x,
        &y,
        &AttackContext {
            seed: 1,
            cancel: Some(&flag),
        },
    );
    assert_eq!(net.rows.get(), 32);
    assert!(adv.equal(&x));
    assert!(Square::supports(Norm::Linf) && Square::supports(Norm::L2));
}
