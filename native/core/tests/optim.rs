//! Our SGD (whose momentum buffers we can save) against libtorch's own
//! `torch::optim::SGD` (through tch), step by step, and its state round trip.

mod common;
use common::{images, labels, seeded, small_cnn_no_dropout};
use st_core::config::OptimizerConfig;
use st_core::models::{Classifier, Mode};
use st_core::optim::Sgd;
use tch::nn::{OptimizerConfig as _, VarStore};
use tch::{Device, Kind, Tensor};

fn cfg(momentum: f64, weight_decay: f64, nesterov: bool) -> OptimizerConfig {
    OptimizerConfig {
        lr: 0.05,
        momentum,
        weight_decay,
        nesterov,
        milestones: vec![],
        gamma: 0.1,
        schedule: Default::default(),
    }
}

fn loss(net: &dyn Classifier, x: &Tensor, y: &Tensor) -> Tensor {
    net.forward(x, &Mode::Train(st_core::models::Branches::single(true)))
        .cross_entropy_for_logits(y)
}

fn copy_weights(from: &VarStore, to: &mut VarStore) {
    to.copy(from).unwrap();
}

fn max_rel_diff(a: &VarStore, b: &VarStore) -> f64 {
    let bv = b.variables();
    a.variables()
        .iter()
        .map(|(n, t)| {
            let d = (t - &bv[n]).abs().max().double_value(&[]);
            d / t.abs().max().double_value(&[]).max(1e-12)
        })
        .fold(0.0, f64::max)
}

#[test]
fn matches_libtorch_sgd_step_by_step_in_float64() {
    let _rng = seeded(3);
    let x = images(16, [1, 28, 28], Kind::Double);
    let y = labels(16, 10);
    for (momentum, wd, nesterov) in [
        (0.9, 5e-4, false),
        (0.9, 5e-4, true),
        (0.0, 0.0, false),
        (0.5, 0.0, false),
    ] {
        let (mut vs_ours, net_ours) = small_cnn_no_dropout();
        vs_ours.double();
        let (mut vs_ref, net_ref) = small_cnn_no_dropout();
        vs_ref.double();
        copy_weights(&vs_ours, &mut vs_ref);
        let c = cfg(momentum, wd, nesterov);
        let mut ours = Sgd::new(&vs_ours, &c);
        let mut reference = tch::nn::Sgd {
            momentum,
            dampening: 0.0,
            wd,
            nesterov,
        }
        .build(&vs_ref, c.lr)
        .unwrap();
        for step in 0..6 {
            if step == 3 {
                ours.set_lr(0.01);
                reference.set_lr(0.01);
            }
            ours.backward_step(&loss(&net_ours, &x, &y));
            reference.backward_step(&loss(&net_ref, &x, &y));
            let d = max_rel_diff(&vs_ours, &vs_ref);
            assert!(
                d < 1e-12,
                "momentum {momentum} wd {wd} nesterov {nesterov} step {step}: {d}"
            );
        }
    }
}

#[test]
fn momentum_state_round_trips_so_training_continues_identically() {
    let _rng = seeded(4);
    let x = images(16, [1, 28, 28], Kind::Float);
    let y = labels(16, 10);
    let c = cfg(0.9, 5e-4, false);
    let (vs_a, net_a) = small_cnn_no_dropout();
    let (mut vs_b, net_b) = small_cnn_no_dropout();
    copy_weights(&vs_a, &mut vs_b);
    let mut a = Sgd::new(&vs_a, &c);
    for _ in 0..3 {
        a.backward_step(&loss(&net_a, &x, &y));
    }
    // B restarts from A's weights and state, then both go on.
    copy_weights(&vs_a, &mut vs_b);
    let mut b = Sgd::new(&vs_b, &c);
    let state: Vec<_> = a
        .state()
        .into_iter()
        .map(|(n, t)| (n, t.to_device(Device::Cpu).copy()))
        .collect();
    assert_eq!(state.len(), vs_a.trainable_variables().len());
    b.load_state(state).unwrap();
    for _ in 0..3 {
        a.backward_step(&loss(&net_a, &x, &y));
        b.backward_step(&loss(&net_b, &x, &y));
    }
    assert_eq!(
        max_rel_diff(&vs_a, &vs_b),
        0.0,
        "bit-exact after a state round trip"
    );
    assert!(b
        .load_state(vec![(
            "nope".into(),
            Tensor::zeros([1], (Kind::Float, Device::Cpu))
        )])
        .is_err());
}
