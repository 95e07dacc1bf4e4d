//! Per-branch BatchNorm: one stacked forward equals separate forwards,
//! including which running statistics are updated and in what order.

mod common;
use common::*;
use st_core::models::{Branches, Classifier, Mode};
use tch::{nn::VarStore, Kind, Tensor};

fn running_stats(vs: &VarStore) -> Vec<(String, Tensor)> {
    let mut v: Vec<_> = vs
        .variables()
        .into_iter()
        .filter(|(k, _)| k.contains("running") || k.contains("num_batches"))
        .map(|(k, t)| (k, t.copy()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn stacked_branches_equal_separate_forwards_and_updates() {
    tch::manual_seed(1);
    let (vs_a, net_a) = tiny_resnet(Kind::Float);
    let mut vs_b = VarStore::new(tch::Device::Cpu);
    let net_b = st_core::models::resnet::ResNet::resnet18(&vs_b.root(), 3, 5, 4);
    vs_b.copy(&vs_a).unwrap();
    let (x1, x2, x3) = (
        images(6, [3, 8, 8], Kind::Float),
        images(6, [3, 8, 8], Kind::Float) * 0.5,
        images(6, [3, 8, 8], Kind::Float) + 0.2,
    );

    let stacked = net_a.forward(
        &Tensor::cat(&[&x1, &x2, &x3], 0),
        &Mode::Train(Branches::new(vec![true, true, false])),
    );
    let sep = [
        net_b.forward(&x1, &Mode::Train(Branches::single(true))),
        net_b.forward(&x2, &Mode::Train(Branches::single(true))),
        net_b.forward(&x3, &Mode::Train(Branches::single(false))),
    ];
    assert!(rel_err(&stacked, &Tensor::cat(&sep, 0)) < 1e-5);
    for ((ka, ta), (kb, tb)) in running_stats(&vs_a).iter().zip(running_stats(&vs_b).iter()) {
        assert_eq!(ka, kb);
        assert!(rel_err(ta, tb) < 1e-5, "{ka} differs");
    }
    // Two updating branches: num_batches_tracked went up by two.
    assert_eq!(
        vs_a.variables()["bn1.num_batches_tracked"].int64_value(&[]),
        2
    );
}

#[test]
fn frozen_branches_leave_running_statistics_alone() {
    let (vs, net) = tiny_resnet(Kind::Float);
    let before = running_stats(&vs);
    let _ = net.forward(
        &images(4, [3, 8, 8], Kind::Float),
        &Mode::Train(Branches::new(vec![false, false])),
    );
    for ((k, a), (_, b)) in before.iter().zip(running_stats(&vs).iter()) {
        assert!(a.equal(b), "{k} changed");
    }
}

#[test]
fn branch_statistics_differ_from_joint_statistics() {
    // Guards the test above against a layer that ignores branches.
    let (_vs, net) = tiny_resnet(Kind::Float);
    let (x1, x2) = (
        images(4, [3, 8, 8], Kind::Float),
        images(4, [3, 8, 8], Kind::Float) * 3.0,
    );
    let xs = Tensor::cat(&[&x1, &x2], 0);
    let per_branch = net.forward(&xs, &Mode::Train(Branches::new(vec![false, false])));
    let joint = net.forward(&xs, &Mode::Train(Branches::single(false)));
    assert!(rel_err(&per_branch, &joint) > 1e-3);
}
