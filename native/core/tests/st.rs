//! Squeeze Training invariants: selection order, the eps-ball, and the
//! batched dual-branch pass equal to separate passes.

mod common;
use common::*;
use st_core::config::{Branches as BranchMode, StConfig};
use st_core::divergence::{reg_loss, Reg};
use st_core::methods::st::{
    forward_branches, pick, select, SqueezeTraining, SLOT_ADV, SLOT_BENIGN, SLOT_COL,
};
use st_core::methods::Method;
use st_core::models::{Branches, Classifier, Mode};
use tch::{nn::VarStore, Kind, Tensor};

fn cfg(branches: BranchMode, reg: Reg) -> StConfig {
    StConfig {
        reg,
        beta: 6.0,
        epsilon: 8.0 / 255.0,
        step_size: 2.0 / 255.0,
        steps: 3,
        branches,
    }
}

fn p_true(logits: &Tensor, y: &Tensor) -> Tensor {
    logits
        .softmax(-1, None::<Kind>)
        .gather(1, &y.view([-1, 1]), false)
        .squeeze_dim(1)
}

#[test]
fn selection_orders_adv_benign_col_and_breaks_ties_towards_benign() {
    // Logits for 2 classes; y = 0. Sample 0: col slot best, adv slot worst.
    // Sample 1: all equal -> both picks are the benign slot.
    let y = Tensor::from_slice(&[0i64, 0]);
    let benign = Tensor::from_slice(&[0.0f32, 0.0, 1.0, 0.0]).view([2, 2]);
    let col = Tensor::from_slice(&[2.0f32, 0.0, 1.0, 0.0]).view([2, 2]);
    let adv = Tensor::from_slice(&[-2.0f32, 0.0, 1.0, 0.0]).view([2, 2]);
    let s = select(&benign, &col, &adv, &y);
    assert_eq!(
        Vec::<i64>::try_from(&s.adv).unwrap(),
        vec![SLOT_ADV, SLOT_BENIGN]
    );
    assert_eq!(
        Vec::<i64>::try_from(&s.col).unwrap(),
        vec![SLOT_COL, SLOT_BENIGN]
    );
    let picked = pick([&benign, &col, &adv], &s.col);
    assert!(picked.equal(&Tensor::from_slice(&[2.0f32, 0.0, 1.0, 0.0]).view([2, 2])));
}

#[test]
fn inner_points_stay_in_the_ball_and_unit_box_and_selection_is_ordered() {
    let _rng = seeded(7);
    for reg in [Reg::Symmkl, Reg::Js, Reg::L2] {
        tch::manual_seed(7);
        let (_vs, net) = tiny_resnet(Kind::Float);
        let x = images(16, [3, 8, 8], Kind::Float);
        let y = labels(16, 5);
        let c = cfg(BranchMode::Batched, reg);
        let st = SqueezeTraining::new(c.clone());
        let (x_adv, x_col) = st.inner(&net, &x, &y);
        for (name, p) in [("x_adv", &x_adv), ("x_col", &x_col)] {
            let dist = (p - &x).abs().max().double_value(&[]);
            assert!(
                dist <= c.epsilon + 1e-6,
                "{reg:?} {name} leaves the ball: {dist}"
            );
            assert!(
                p.min().double_value(&[]) >= 0.0 && p.max().double_value(&[]) <= 1.0,
                "{name} leaves [0,1]"
            );
        }
        // After selection from the final triplet: p(y|x_adv) <= p(y|x) <= p(y|x_col).
        let out = forward_branches(
            &net,
            &[&x, &x_adv, &x_col],
            &[false, false, false],
            BranchMode::Separate,
        );
        let s = select(&out[0], &out[2], &out[1], &y);
        let upper = pick([&out[0], &out[2], &out[1]], &s.adv);
        let lower = pick([&out[0], &out[2], &out[1]], &s.col);
        let (pu, pb, pl) = (p_true(&upper, &y), p_true(&out[0], &y), p_true(&lower, &y));
        assert!(
            bool::try_from(pu.le_tensor(&pb).all()).unwrap(),
            "{reg:?}: p(y|x_adv) > p(y|x)"
        );
        assert!(
            bool::try_from(pb.le_tensor(&pl).all()).unwrap(),
            "{reg:?}: p(y|x) > p(y|x_col)"
        );
        // And the search did something: the discrepancy grew from the start.
        assert!(reg_loss(reg, &upper, &lower).double_value(&[]) > 0.0);
    }
}

#[test]
fn inner_steps_increase_the_discrepancy() {
    let _rng = seeded(11);
    let (_vs, net) = small_cnn_no_dropout();
    let x = images(32, [1, 28, 28], Kind::Float);
    let y = labels(32, 10);
    let gap = |steps: usize| {
        tch::manual_seed(5);
        let st = SqueezeTraining::new(StConfig {
            steps,
            epsilon: 0.3,
            step_size: 0.05,
            ..cfg(BranchMode::Separate, Reg::Symmkl)
        });
        let (xa, xc) = st.inner(&net, &x, &y);
        let out = forward_branches(&net, &[&xa, &xc], &[false, false], BranchMode::Separate);
        reg_loss(Reg::Symmkl, &out[0], &out[1]).double_value(&[])
    };
    let (g0, g5) = (gap(0), gap(5));
    assert!(g5 > 10.0 * g0.max(1e-9), "discrepancy {g0} -> {g5}");
}

#[test]
fn batched_forward_and_input_gradients_equal_separate_passes() {
    let _rng = seeded(3);
    let (_vs, net) = tiny_resnet(Kind::Float);
    let (xa, xc) = (
        images(8, [3, 8, 8], Kind::Float),
        images(8, [3, 8, 8], Kind::Float),
    );
    let run = |mode: BranchMode| {
        let a = xa.copy().set_requires_grad(true);
        let c = xc.copy().set_requires_grad(true);
        let out = forward_branches(&net, &[&a, &c], &[false, false], mode);
        let loss = reg_loss(Reg::Symmkl, &out[0], &out[1]);
        let g = Tensor::run_backward(&[&loss], &[&a, &c], false, false);
        (out[0].detach(), out[1].detach(), loss.detach(), g)
    };
    let (b0, b1, bl, bg) = run(BranchMode::Batched);
    let (s0, s1, sl, sg) = run(BranchMode::Separate);
    assert!(
        rel_err(&b0, &s0) < 1e-5 && rel_err(&b1, &s1) < 1e-5,
        "logits differ"
    );
    assert!(rel_err(&bl, &sl) < 1e-5, "loss differs");
    assert!(
        rel_err(&bg[0], &sg[0]) < 1e-5 && rel_err(&bg[1], &sg[1]) < 1e-5,
        "input gradients differ"
    );
}

/// The whole ST step (inner loop + outer loss + weight gradients + running
/// statistics), batched vs separate, in float64 so sign steps cannot flip on
/// rounding noise.
#[test]
fn batched_st_step_equals_separate_st_step() {
    let _rng = seeded(4);
    let (vs_a, net_a) = tiny_resnet(Kind::Double);
    let mut vs_b = VarStore::new(tch::Device::Cpu);
    let net_b = st_core::models::resnet::ResNet::resnet18(&vs_b.root(), 3, 5, 4);
    vs_b.double();
    vs_b.copy(&vs_a).unwrap();
    let x = images(8, [3, 8, 8], Kind::Double);
    let y = labels(8, 5);
    let step = |net: &dyn Classifier, vs: &VarStore, mode: BranchMode| {
        tch::manual_seed(99);
        let st = SqueezeTraining::new(cfg(mode, Reg::Symmkl));
        let out = st.loss(net, &x, &y);
        for t in vs.trainable_variables() {
            t.shallow_clone().zero_grad();
        }
        out.loss.backward();
        let grads: Vec<Tensor> = {
            let mut v: Vec<_> = vs
                .variables()
                .into_iter()
                .filter(|(_, t)| t.requires_grad())
                .collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v.into_iter().map(|(_, t)| t.grad().copy()).collect()
        };
        (out.loss.detach(), grads)
    };
    let (la, ga) = step(&net_a, &vs_a, BranchMode::Batched);
    let (lb, gb) = step(&net_b, &vs_b, BranchMode::Separate);
    assert!(
        rel_err(&la, &lb) < 1e-9,
        "loss {} vs {}",
        la.double_value(&[]),
        lb.double_value(&[])
    );
    for (a, b) in ga.iter().zip(&gb) {
        assert!(rel_err(a, b) < 1e-8);
    }
    let rm = |vs: &VarStore| vs.variables()["layer3.1.bn2.running_var"].copy();
    assert!(rel_err(&rm(&vs_a), &rm(&vs_b)) < 1e-9);
    // The final step updated running statistics twice (benign, adversarial).
    assert_eq!(
        vs_a.variables()["bn1.num_batches_tracked"].int64_value(&[]),
        2
    );
}

#[test]
fn outer_loss_is_ce_plus_beta_reg_of_the_reselected_pair() {
    let _rng = seeded(8);
    let (_vs, net) = small_cnn_no_dropout();
    let x = images(8, [1, 28, 28], Kind::Float);
    let y = labels(8, 10);
    let c = cfg(BranchMode::Batched, Reg::Symmkl);
    let st = SqueezeTraining::new(c.clone());
    let (xa, xc) = st.inner(&net, &x, &y);
    let out = st.outer(&net, &x, &y, &xa, &xc);
    // Independent recomputation without the method's helpers' batching.
    let f = |t: &Tensor| net.forward(t, &Mode::Train(Branches::single(false)));
    let (lb, la, lc) = (f(&x), f(&xa), f(&xc));
    let pb = p_true(&lb, &y);
    let (pa, pc) = (p_true(&la, &y), p_true(&lc, &y));
    let mut reg_sum = 0.0;
    for i in 0..8 {
        let cands = [
            (pb.double_value(&[i]), &lb),
            (pc.double_value(&[i]), &lc),
            (pa.double_value(&[i]), &la),
        ];
        let mut lo = 0;
        let mut hi = 0;
        for k in 1..3 {
            if cands[k].0 < cands[lo].0 {
                lo = k;
            }
            if cands[k].0 > cands[hi].0 {
                hi = k;
            }
        }
        reg_sum += reg_loss(
            Reg::Symmkl,
            &cands[lo].1.get(i).unsqueeze(0),
            &cands[hi].1.get(i).unsqueeze(0),
        )
        .double_value(&[]);
    }
    let want = lb.cross_entropy_for_logits(&y).double_value(&[]) + c.beta * reg_sum / 8.0;
    let got = out.loss.double_value(&[]);
    assert!(
        (got - want).abs() < 1e-4 * want.abs().max(1.0),
        "{got} vs {want}"
    );
}
