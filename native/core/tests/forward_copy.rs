//! The channels-last copy for gradient-free passes (models/forward_copy.rs):
//! outside `on_forward_copy`, and inside it for inputs that need a gradient
//! or in train mode, the network itself runs (bit for bit); inside it,
//! gradient-free passes run on the copy and agree with the network within
//! float rounding; Square's passes go to the copy and the scope ends with
//! the attack; on another device no copy is made.

mod common;

use common::seeded;
use st_core::attacks::square::Square;
use st_core::attacks::{Attack, AttackContext, Norm};
use st_core::models::forward_copy::{channels_last_copy, on_forward_copy, WithForwardCopy};
use st_core::models::{build_model, Branches, Classifier, Mode, Model};
use tch::{Device, Kind, Tensor};

/// `name` with random weights (the registry's SmallCNN starts with a zero
/// last layer, whose logits would agree trivially).
fn random_model(name: &str, shape: [i64; 3]) -> Model {
    let m = build_model(name, 10, shape, Device::Cpu).unwrap();
    tch::no_grad(|| {
        // Weights and biases only: BatchNorm's running statistics stay
        // valid (a positive variance) and its step counter is an integer.
        for (name, mut v) in m.vs.variables() {
            if name.ends_with("weight") || name.ends_with("bias") {
                let r = v.randn_like() * 0.1;
                v.copy_(&r);
            }
        }
    });
    m
}

fn with_copy(m: Model, name: &str, shape: [i64; 3]) -> Box<dyn Classifier> {
    let vs = m.vs;
    WithForwardCopy::on_cpu(m.net, Device::Cpu, || {
        channels_last_copy(name, 10, shape, &vs)
    })
    .unwrap()
}

#[test]
fn gradient_free_passes_in_the_scope_run_on_the_copy_everything_else_on_the_network() {
    let _g = seeded(0);
    for (name, shape) in [("small_cnn", [1, 28, 28]), ("resnet18", [3, 32, 32])] {
        let m = random_model(name, shape);
        let copy = channels_last_copy(name, 10, shape, &m.vs).unwrap();
        let plain = build_model(name, 10, shape, Device::Cpu).unwrap();
        let mut plain_vs = plain.vs;
        plain_vs.copy(&m.vs).unwrap();
        let net = with_copy(m, name, shape);
        let x = Tensor::rand(
            [3, shape[0], shape[1], shape[2]],
            (Kind::Float, Device::Cpu),
        );
        let eval = |n: &dyn Classifier, x: &Tensor| tch::no_grad(|| n.forward(x, &Mode::Eval));

        let reference = eval(plain.net.as_ref(), &x);
        assert!(
            eval(net.as_ref(), &x).equal(&reference),
            "{name}: outside the scope"
        );
        let inside = on_forward_copy(|| eval(net.as_ref(), &x));
        assert!(
            inside.equal(&eval(copy.as_ref(), &x)),
            "{name}: the copy ran"
        );
        let gap = (&inside - &reference).abs().max().double_value(&[]);
        assert!(gap < 1e-5, "{name}: the copy's logits differ by {gap}");
        eprintln!("{name}: channels-last copy within {gap:e} of the network");

        // In the scope, a pass that needs a gradient stays on the network.
        let xg = x.copy().set_requires_grad(true);
        let with_grad = on_forward_copy(|| net.forward(&xg, &Mode::Eval));
        assert!(
            with_grad.detach().equal(&reference),
            "{name}: gradient pass"
        );
        // So does a training-mode pass (same batch statistics either way).
        let train = Mode::Train(Branches::single(false));
        let t_net = on_forward_copy(|| tch::no_grad(|| net.forward(&x, &train)));
        let t_plain = tch::no_grad(|| plain.net.forward(&x, &train));
        if name == "resnet18" {
            assert!(t_net.equal(&t_plain), "{name}: train mode");
        }
        assert!(
            eval(net.as_ref(), &x).equal(&reference),
            "{name}: the scope ended"
        );
    }
}

#[test]
fn square_runs_on_the_copy_and_leaves_the_scope_closed() {
    let shape = [1, 28, 28];
    let _g = seeded(1);
    let m = random_model("small_cnn", shape);
    let copy = channels_last_copy("small_cnn", 10, shape, &m.vs).unwrap();
    let plain = build_model("small_cnn", 10, shape, Device::Cpu).unwrap();
    let mut plain_vs = plain.vs;
    plain_vs.copy(&m.vs).unwrap();
    let net = with_copy(m, "small_cnn", shape);
    let x = Tensor::rand([6, 1, 28, 28], (Kind::Float, Device::Cpu));
    // Labels the network predicts, so that every point is attacked.
    let y = tch::no_grad(|| net.forward(&x, &Mode::Eval)).argmax(-1, false);
    let square = Square {
        norm: Norm::Linf,
        epsilon: 0.1,
        queries: 40,
        restarts: 1,
        p_init: 0.8,
    };
    let ctx = AttackContext {
        seed: 5,
        cancel: None,
    };
    let through_copy = square.perturb(net.as_ref(), &x, &y, &ctx);
    let on_copy_itself = square.perturb(copy.as_ref(), &x, &y, &ctx);
    assert!(
        through_copy.equal(&on_copy_itself),
        "Square's passes ran on the copy"
    );
    // The attack's scope ended with it: a pass after it runs on the network.
    let after = tch::no_grad(|| net.forward(&x, &Mode::Eval));
    assert!(after.equal(&tch::no_grad(|| plain.net.forward(&x, &Mode::Eval))));
}

#[test]
fn no_copy_is_made_off_the_cpu() {
    let m = build_model("small_cnn", 10, [1, 28, 28], Device::Cpu).unwrap();
    let mut made = false;
    let _net = WithForwardCopy::on_cpu(m.net, Device::Cuda(0), || {
        made = true;
        channels_last_copy("small_cnn", 10, [1, 28, 28], &m.vs)
    })
    .unwrap();
    assert!(!made);
}
