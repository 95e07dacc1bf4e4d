//! APGD (APGD-CE, APGD-DLR, APGD-T): the threat model's invariants and
//! seeding on a small trained perceptron; exact robust accuracy on linear
//! classifiers, whose worst case has a closed form; a point's outcome does
//! not depend on the rest of the batch; APGD-T attacks only towards its
//! top-k targets; the DLR losses against hand-computed values.

mod common;

use common::seeded;
use st_core::attacks::apgd::{dlr_loss, dlr_targeted_loss, Apgd, ApgdLoss};
use st_core::attacks::{l2_norms, Attack, AttackContext, Norm};
use st_core::models::{Classifier, Mode};
use std::sync::atomic::AtomicBool;
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

// ------------------------------------------------------------ fixtures

/// A two-layer perceptron on 1×8×8 images.
struct Mlp {
    l1: nn::Linear,
    l2: nn::Linear,
}

impl Classifier for Mlp {
    fn forward(&self, xs: &Tensor, _mode: &Mode) -> Tensor {
        self.l2.forward(&self.l1.forward(&xs.flatten(1, -1)).relu())
    }
}

const CLASSES: i64 = 4;

/// Noisy copies of one fixed random pattern per class.
fn synthetic(n: i64, seed: i64, kind: Kind) -> (Tensor, Tensor) {
    tch::manual_seed(1234);
    let patterns = Tensor::rand([CLASSES, 64], (Kind::Float, Device::Cpu)) * 0.6 + 0.2;
    tch::manual_seed(seed);
    let y = Tensor::randint(CLASSES, [n], (Kind::Int64, Device::Cpu));
    let x = (patterns.index_select(0, &y)
        + Tensor::randn([n, 64], (Kind::Float, Device::Cpu)) * 0.12)
        .clamp(0.0, 1.0)
        .view([n, 1, 8, 8]);
    (x.to_kind(kind), y)
}

/// A naturally trained perceptron (clean accuracy near 100%), in `kind`.
fn trained_mlp(kind: Kind) -> (nn::VarStore, Mlp) {
    let mut vs = nn::VarStore::new(Device::Cpu);
    let p = vs.root();
    tch::manual_seed(7);
    let net = Mlp {
        l1: nn::linear(&p / "l1", 64, 32, Default::default()),
        l2: nn::linear(&p / "l2", 32, CLASSES, Default::default()),
    };
    let (x, y) = synthetic(512, 99, Kind::Float);
    let mut opt = nn::Adam::default().build(&vs, 1e-2).unwrap();
    for _ in 0..300 {
        let loss = net.forward(&x, &Mode::Eval).cross_entropy_for_logits(&y);
        opt.backward_step(&loss);
    }
    if kind == Kind::Double {
        vs.double();
    }
    (vs, net)
}

/// z = W·flatten(x) + b.
struct Linear {
    w: Tensor,
    b: Tensor,
}

impl Classifier for Linear {
    fn forward(&self, xs: &Tensor, _mode: &Mode) -> Tensor {
        xs.flatten(1, -1).matmul(&self.w.tr()) + &self.b
    }
}

fn apgd(norm: Norm, eps: f64, loss: ApgdLoss) -> Apgd {
    Apgd {
        norm,
        epsilon: eps,
        steps: 100,
        restarts: 1,
        loss,
        eot_iter: 1,
        rho: 0.75,
    }
}

fn run(a: &Apgd, net: &dyn Classifier, x: &Tensor, y: &Tensor, seed: i64) -> Tensor {
    a.perturb(net, x, y, &AttackContext { seed, cancel: None })
}

fn correct(net: &dyn Classifier, x: &Tensor, y: &Tensor) -> Tensor {
    tch::no_grad(|| net.forward(x, &Mode::Eval))
        .argmax(-1, false)
        .eq_tensor(y)
}

fn count(t: &Tensor) -> i64 {
    t.sum(Kind::Int64).int64_value(&[])
}

fn bools(t: &Tensor) -> Vec<bool> {
    Vec::<bool>::try_from(t).unwrap()
}

/// Largest per-point distance in `norm`.
fn distance(norm: Norm, a: &Tensor, b: &Tensor) -> f64 {
    let d = a - b;
    match norm {
        Norm::Linf => d.abs().max().double_value(&[]),
        Norm::L2 => l2_norms(&d).max().double_value(&[]),
    }
}

// ------------------------------------------------------------ invariants

#[test]
fn outputs_stay_in_the_ball_and_the_box_never_beat_clean_and_follow_the_seed() {
    let _g = seeded(0);
    let (_vs, net) = trained_mlp(Kind::Float);
    let (x, y) = synthetic(48, 1, Kind::Float);
    let clean = correct(&net, &x, &y);
    for (norm, eps) in [(Norm::Linf, 0.1), (Norm::L2, 0.9)] {
        for loss in [
            ApgdLoss::CrossEntropy,
            ApgdLoss::Dlr,
            ApgdLoss::DlrTargeted { targets: 3 },
        ] {
            let mut a = apgd(norm, eps, loss);
            a.steps = 30;
            a.restarts = 2;
            let adv = run(&a, &net, &x, &y, 11);
            assert_eq!(adv.size(), x.size());
            let d = distance(norm, &adv, &x);
            assert!(d <= eps + 1e-6, "{norm:?} {loss:?}: distance {d} > {eps}");
            assert!(adv.min().double_value(&[]) >= 0.0 && adv.max().double_value(&[]) <= 1.0);
            let after = correct(&net, &adv, &y);
            // Correct after the attack only where correct clean.
            assert_eq!(count(&after.logical_and(&clean.logical_not())), 0);
            // The radius is such that the attack breaks some points, not all.
            let (c, r) = (count(&clean), count(&after));
            assert!(r < c && r > 0, "{norm:?} {loss:?}: clean {c}, robust {r}");
            // Same seed, same output; another seed, other starts.
            let again = run(&a, &net, &x, &y, 11);
            assert!(adv.equal(&again), "{norm:?} {loss:?}: not reproducible");
            let other = run(&a, &net, &x, &y, 12);
            assert!(!adv.equal(&other), "{norm:?} {loss:?}: the seed is ignored");
        }
    }
}

#[test]
fn points_wrong_clean_come_back_unchanged_and_a_cancelled_attack_returns() {
    let _g = seeded(0);
    let (_vs, net) = trained_mlp(Kind::Float);
    let (x, y) = synthetic(16, 2, Kind::Float);
    // Wrong labels: every point is misclassified before the attack.
    let wrong = (&y + 1).remainder(CLASSES);
    let a = apgd(Norm::Linf, 0.1, ApgdLoss::CrossEntropy);
    assert!(run(&a, &net, &x, &wrong, 0).equal(&x));
    let stop = AtomicBool::new(true);
    let adv = a.perturb(
        &net,
        &x,
        &y,
        &AttackContext {
            seed: 0,
            cancel: Some(&stop),
        },
    );
    assert_eq!(adv.size(), x.size());
}

// ------------------------------------------------------------ closed form

/// Four classes on 1×2×4 inputs in [0.3, 0.7], in double. With `binary`,
/// classes 2 and 3 sit 30 logits below (out of reach and of the softmax), so
/// each point competes with one class only, and the boundary between 0 and 1
/// passes near the centre of the data.
fn linear_problem(seed: i64, binary: bool) -> (Linear, Tensor) {
    tch::manual_seed(seed);
    let opts = (Kind::Double, Device::Cpu);
    let w = Tensor::randn([4, 8], opts) * 2.0;
    let mut b = Tensor::randn([4], opts) * 0.3;
    if binary {
        b = b
            - w.sum_dim_intlist([1i64].as_slice(), false, None::<Kind>) * 0.5
            - Tensor::from_slice(&[0.0, 0.0, 30.0, 30.0]).to_kind(Kind::Double);
    }
    let x = Tensor::rand([200, 1, 2, 4], opts) * 0.4 + 0.3;
    (Linear { w, b }, x)
}

/// Radii at which a fair share of `linear_problem`'s points is robust.
fn radius(norm: Norm, binary: bool) -> f64 {
    match (norm, binary) {
        (Norm::Linf, false) => 0.1,
        (Norm::L2, false) => 0.25,
        (Norm::Linf, true) => 0.05,
        (Norm::L2, true) => 0.15,
    }
}

/// Per point, min over j≠y of (margin to j) - eps·‖w_y - w_j‖_q, q dual to
/// the norm: the point is robust iff this is > 0 (the box never binds).
fn certified_gap(net: &Linear, x: &Tensor, y: &Tensor, norm: Norm, eps: f64) -> Tensor {
    let z = net.forward(x, &Mode::Eval);
    let zy = z.gather(1, &y.view([-1, 1]), false);
    let margins = &zy - &z; // N×C
    let wy = net.w.index_select(0, y).unsqueeze(1); // N×1×d
    let diff = wy - net.w.unsqueeze(0); // N×C×d
    let dual = match norm {
        Norm::Linf => diff
            .abs()
            .sum_dim_intlist([2i64].as_slice(), false, None::<Kind>),
        Norm::L2 => diff
            .square()
            .sum_dim_intlist([2i64].as_slice(), false, None::<Kind>)
            .sqrt(),
    };
    let gap = margins - dual * eps;
    let onehot = y.one_hot(4).to_kind(Kind::Bool);
    gap.masked_fill(&onehot, f64::INFINITY).amin([1], false)
}

/// The points (labelled with their clean prediction) whose certified gap is
/// not within 1e-3 of 0, and the expected robust mask.
fn decided_points(net: &Linear, x: &Tensor, norm: Norm, eps: f64) -> (Tensor, Tensor, Tensor) {
    let y = net.forward(x, &Mode::Eval).argmax(-1, false);
    let gap = certified_gap(net, x, &y, norm, eps);
    let keep = gap.abs().gt(1e-3).nonzero().squeeze_dim(1);
    let s = |t: &Tensor| t.index_select(0, &keep);
    (s(x), s(&y), s(&gap).gt(0.0))
}

/// APGD-T with every other class as a target reaches the certified robust
/// accuracy of a linear model exactly, point by point; APGD-CE does where
/// each point has one competing class. (With several competing classes the
/// CE maximiser in the ball need not cross the nearest boundary: on
/// `linear_problem(1, false)` APGD-CE and APGD-DLR leave a few breakable
/// points robust, and torchattacks, from the same starts, the very same.)
#[test]
fn linear_models_reach_exactly_the_certified_robust_accuracy() {
    let _g = seeded(0);
    let cases = [
        (false, ApgdLoss::DlrTargeted { targets: 3 }),
        (true, ApgdLoss::DlrTargeted { targets: 3 }),
        (true, ApgdLoss::CrossEntropy),
    ];
    for norm in [Norm::Linf, Norm::L2] {
        for seed in [1, 2] {
            for (binary, loss) in cases {
                let eps = radius(norm, binary);
                let (net, x) = linear_problem(seed, binary);
                let (x, y, robust) = decided_points(&net, &x, norm, eps);
                let (n, want) = (y.size()[0], count(&robust));
                assert!(
                    want > n / 10 && want < n * 9 / 10,
                    "{norm:?}: {want} of {n}"
                );
                let adv = run(&apgd(norm, eps, loss), &net, &x, &y, 3);
                assert!(distance(norm, &adv, &x) <= eps + 1e-9);
                let got = correct(&net, &adv, &y);
                assert_eq!(
                    bools(&got),
                    bools(&robust),
                    "{norm:?} eps {eps} {loss:?} problem {seed} binary {binary}: robust {} vs certified {want}",
                    count(&got)
                );
            }
        }
    }
}

// ------------------------------------------------------------ batch independence

#[test]
fn attacking_in_halves_breaks_the_same_points_as_the_whole_batch() {
    let _g = seeded(0);
    for norm in [Norm::Linf, Norm::L2] {
        for (binary, loss) in [
            (false, ApgdLoss::DlrTargeted { targets: 3 }),
            (true, ApgdLoss::CrossEntropy),
        ] {
            let eps = radius(norm, binary);
            let (net, x) = linear_problem(2, binary);
            let (x, y, _) = decided_points(&net, &x, norm, eps);
            let n = y.size()[0];
            let h = n / 2;
            let a = apgd(norm, eps, loss);
            let whole = correct(&net, &run(&a, &net, &x, &y, 9), &y);
            let (x1, y1) = (x.narrow(0, 0, h), y.narrow(0, 0, h));
            let (x2, y2) = (x.narrow(0, h, n - h), y.narrow(0, h, n - h));
            let halves = Tensor::cat(
                &[
                    correct(&net, &run(&a, &net, &x1, &y1, 9), &y1),
                    correct(&net, &run(&a, &net, &x2, &y2, 9), &y2),
                ],
                0,
            );
            assert_eq!(bools(&whole), bools(&halves), "{norm:?} {loss:?}");
            let broken = n - count(&whole);
            assert!(broken > n / 10 && broken < n * 9 / 10);
        }
    }
}

/// A point's start is drawn by its position in the batch, so the first m
/// points of a batch, attacked alone with the same seed, start alike and
/// (in double, where batch size changes no decision) end alike, whatever
/// the other points do and whenever they leave the active batch.
#[test]
fn a_prefix_of_the_batch_attacked_alone_gets_the_same_outputs() {
    let _g = seeded(0);
    let (_vs, net) = trained_mlp(Kind::Double);
    let (x, y) = synthetic(40, 3, Kind::Double);
    for (norm, eps) in [(Norm::Linf, 0.1), (Norm::L2, 0.9)] {
        for loss in [ApgdLoss::CrossEntropy, ApgdLoss::DlrTargeted { targets: 3 }] {
            let mut a = apgd(norm, eps, loss);
            a.restarts = 2;
            let whole = run(&a, &net, &x, &y, 4);
            let (xp, yp) = (x.narrow(0, 0, 16), y.narrow(0, 0, 16));
            let part = run(&a, &net, &xp, &yp, 4);
            let diff = (whole.narrow(0, 0, 16) - &part)
                .abs()
                .max()
                .double_value(&[]);
            assert!(diff < 1e-9, "{norm:?} {loss:?}: prefix differs by {diff}");
            // Some of the prefix is broken, so the comparison says something.
            let (r, c) = (
                count(&correct(&net, &part, &yp)),
                count(&correct(&net, &xp, &yp)),
            );
            assert!(r < c, "{norm:?} {loss:?}: robust {r} of {c}");
        }
    }
}

// ------------------------------------------------------------ targets

/// Class 0 is true; the clean logits rank 1, 2, 3 next; only class 3 (the
/// lowest) can be reached within eps, and only with (nearly) the full
/// perturbation on every pixel, so no random start reaches it.
#[test]
fn apgd_t_attacks_only_towards_its_top_k_targets() {
    let _g = seeded(0);
    let opts = (Kind::Double, Device::Cpu);
    let w = Tensor::zeros([4, 8], opts);
    let _ = w.get(3).fill_(5.0);
    let b = Tensor::from_slice(&[0.0, -1.0, -2.0, -23.0]).to_kind(Kind::Double);
    let net = Linear { w, b };
    // z_3 = 5·Σx - 23 = -3 at x = 0.5, and +1 at x + 0.1.
    let x = Tensor::full([12, 1, 2, 4], 0.5, opts);
    let y = Tensor::zeros([12], (Kind::Int64, Device::Cpu));
    // Clean: z = (0, -1, -2, -3): correct, with the ranking above.
    assert_eq!(count(&correct(&net, &x, &y)), 12);
    for (targets, robust) in [(1, 12), (2, 12), (3, 0), (9, 0)] {
        let a = apgd(Norm::Linf, 0.1, ApgdLoss::DlrTargeted { targets });
        let adv = run(&a, &net, &x, &y, 0);
        assert_eq!(count(&correct(&net, &adv, &y)), robust, "targets {targets}");
    }
    // APGD-CE finds class 3 too. (APGD-DLR does not: its numerator
    // z_0 - z_1 is constant here and its denominator's gradient is zero.)
    let adv = run(
        &apgd(Norm::Linf, 0.1, ApgdLoss::CrossEntropy),
        &net,
        &x,
        &y,
        0,
    );
    assert_eq!(count(&correct(&net, &adv, &y)), 0);
}

// ------------------------------------------------------------ losses

#[test]
fn dlr_losses_match_hand_computed_values() {
    let z = Tensor::from_slice(&[3.0, 1.0, 2.0, 0.0, 3.0, 1.0, 2.0, 0.0]).view([2, 4]);
    let y = Tensor::from_slice(&[0i64, 1]);
    // Point 0: -(3 - 2)/(3 - 1); point 1: -(1 - 3)/(3 - 1).
    let got = Vec::<f64>::try_from(&dlr_loss(&z, &y)).unwrap();
    assert!(
        (got[0] + 0.5).abs() < 1e-9 && (got[1] - 1.0).abs() < 1e-9,
        "{got:?}"
    );
    // Targets 3 and 2: -(3 - 0)/(3 - (1+0)/2), -(1 - 2)/(3 - 0.5).
    let t = Tensor::from_slice(&[3i64, 2]);
    let got = Vec::<f64>::try_from(&dlr_targeted_loss(&z, &y, &t)).unwrap();
    assert!(
        (got[0] + 1.2).abs() < 1e-9 && (got[1] - 0.4).abs() < 1e-9,
        "{got:?}"
    );
}
