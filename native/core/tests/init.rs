//! Every layer's initial distribution against its PyTorch reference's formula.
//!
//! - PyTorch's default (`nn.Conv2d`/`nn.Linear.reset_parameters`): weight and
//!   bias uniform in ±1/√fan_in. The CIFAR ResNet-18 and the PreAct ResNet-18
//!   rely on it everywhere, the SmallCNN for fc1 and fc2, the WRNs for their
//!   classifier's weight.
//! - SmallCNN: Kaiming-normal convolutions (std √(2/fan_in)) with zero bias;
//!   fc3 all zero.
//! - WRN: convolutions normal(0, √(2/n)), n = kernel² · out_channels; the
//!   classifier's bias zero.
//! - BatchNorm everywhere: weight 1, bias 0, running mean 0, running var 1,
//!   num_batches_tracked 0.
//!
//! A sample's standard deviation is checked to within six standard errors
//! (≈ √((kurtosis − 1) / 4n) relative), so tch's default (a bound √6 times
//! larger) or a fan-in/fan-out mix-up fails while chance never does.

mod common;
use common::seeded;
use st_core::models::build_model;
use st_core::nn::init::{torch_default_bound, torch_default_conv, torch_default_linear};
use std::collections::HashMap;
use tch::nn::{self, Init};
use tch::{Device, Kind, Tensor};

#[derive(Debug, Clone, Copy)]
enum Dist {
    /// Uniform in ±bound.
    Uniform(f64),
    /// Normal(0, std).
    Normal(f64),
    Const(f64),
}

fn stats(t: &Tensor) -> (f64, f64, f64) {
    let t = t.to_kind(Kind::Double);
    (
        t.mean(Kind::Double).double_value(&[]),
        t.std(true).double_value(&[]),
        t.abs().max().double_value(&[]),
    )
}

fn check(model: &str, name: &str, t: &Tensor, dist: Dist) {
    let n = t.numel() as f64;
    match dist {
        Dist::Const(c) => {
            let t = t.to_kind(Kind::Double);
            let worst = (t - c).abs().max().double_value(&[]);
            assert!(worst == 0.0, "{model} {name}: expected all {c}");
        }
        Dist::Uniform(bound) => {
            let (mean, std, max) = stats(t);
            assert!(
                max <= bound * (1.0 + 1e-6),
                "{model} {name}: max |w| {max} > bound {bound}"
            );
            if n >= 100.0 {
                // The largest of n uniform draws is close to the bound.
                assert!(
                    max >= 0.9 * bound,
                    "{model} {name}: max |w| {max} ≪ {bound}"
                );
                let want = bound / 3f64.sqrt();
                let tol = 6.0 * (0.8 / (4.0 * n)).sqrt();
                assert!(
                    (std / want - 1.0).abs() <= tol,
                    "{model} {name}: std {std}, expected {want} (± {tol} relative)"
                );
                assert!(
                    mean.abs() <= 6.0 * want / n.sqrt(),
                    "{model} {name}: mean {mean}"
                );
            }
        }
        Dist::Normal(want) => {
            let (mean, std, _) = stats(t);
            let tol = 6.0 * (2.0 / (4.0 * n)).sqrt();
            assert!(
                (std / want - 1.0).abs() <= tol,
                "{model} {name}: std {std}, expected {want} (± {tol} relative)"
            );
            assert!(
                mean.abs() <= 6.0 * want / n.sqrt(),
                "{model} {name}: mean {mean}"
            );
        }
    }
}

/// BatchNorm tensors (modules with running statistics): PyTorch's
/// `nn.BatchNorm2d` defaults, which the WRN code also sets explicitly.
fn batch_norm(name: &str, vars: &HashMap<String, Tensor>) -> Option<Dist> {
    let (module, leaf) = name.rsplit_once('.').unwrap_or(("", name));
    if !vars.contains_key(&format!("{module}.running_mean")) {
        return None;
    }
    Some(match leaf {
        "weight" | "running_var" => Dist::Const(1.0),
        "bias" | "running_mean" | "num_batches_tracked" => Dist::Const(0.0),
        other => panic!("unknown BatchNorm tensor {other} in {name}"),
    })
}

/// fan_in of a conv or linear weight: in_channels · kernel area.
fn fan_in(shape: &[i64]) -> i64 {
    shape[1..].iter().product()
}

/// Checks every variable of `model` against `rule` (None: the rule does not
/// know the tensor, which fails the test), after BatchNorm's defaults.
fn check_model(model: &str, shape: [i64; 3], rule: impl Fn(&str, &[i64]) -> Option<Dist>) {
    let m = build_model(model, 10, shape, Device::Cpu).unwrap();
    let vars = m.vs.variables();
    let mut names: Vec<_> = vars.keys().cloned().collect();
    names.sort();
    for name in &names {
        let t = &vars[name];
        let dist = batch_norm(name, &vars)
            .or_else(|| rule(name, &t.size()))
            .unwrap_or_else(|| panic!("{model}: no reference rule for {name}"));
        check(model, name, t, dist);
    }
}

/// PyTorch's default for every conv and linear tensor (the ResNets).
fn torch_defaults(
    weights_of: &'static [(&'static str, i64)],
) -> impl Fn(&str, &[i64]) -> Option<Dist> {
    move |name, shape| {
        if name.ends_with(".weight") && (shape.len() == 4 || shape.len() == 2) {
            Some(Dist::Uniform(1.0 / (fan_in(shape) as f64).sqrt()))
        } else {
            // A bias: its layer's fan_in.
            weights_of
                .iter()
                .find(|(layer, _)| name.strip_suffix(".bias") == Some(*layer))
                .map(|&(_, fan)| Dist::Uniform(1.0 / (fan as f64).sqrt()))
        }
    }
}

#[test]
fn resnet18_initialises_as_pytorch_defaults() {
    let _rng = seeded(11);
    check_model("resnet18", [3, 32, 32], torch_defaults(&[("linear", 512)]));
}

#[test]
fn preact_resnet18_initialises_as_pytorch_defaults() {
    let _rng = seeded(12);
    check_model(
        "preact_resnet18",
        [3, 32, 32],
        torch_defaults(&[("linear", 512)]),
    );
}

#[test]
fn small_cnn_initialises_as_the_trades_code() {
    let _rng = seeded(13);
    check_model("small_cnn", [1, 28, 28], |name, shape| {
        if name.starts_with("feature_extractor.") {
            return Some(if name.ends_with(".weight") {
                // kaiming_normal_ (fan_in, gain √2) and a zero bias.
                Dist::Normal((2.0 / fan_in(shape) as f64).sqrt())
            } else {
                Dist::Const(0.0)
            });
        }
        Some(match name {
            "classifier.fc1.weight" | "classifier.fc1.bias" => Dist::Uniform(1.0 / 1024f64.sqrt()),
            "classifier.fc2.weight" | "classifier.fc2.bias" => Dist::Uniform(1.0 / 200f64.sqrt()),
            "classifier.fc3.weight" | "classifier.fc3.bias" => Dist::Const(0.0),
            _ => return None,
        })
    });
}

fn wrn_rule(name: &str, shape: &[i64]) -> Option<Dist> {
    match name {
        "fc.weight" => Some(Dist::Uniform(1.0 / (shape[1] as f64).sqrt())),
        "fc.bias" => Some(Dist::Const(0.0)),
        _ if name.ends_with(".weight") && shape.len() == 4 => {
            // normal_(0, sqrt(2 / n)), n = k·k·out_channels.
            let n = shape[0] * shape[2] * shape[3];
            Some(Dist::Normal((2.0 / n as f64).sqrt()))
        }
        _ => None,
    }
}

#[test]
fn wide_resnets_initialise_as_the_trades_code() {
    let _rng = seeded(14);
    for model in ["wrn34_10", "wrn34_5", "wrn28_10"] {
        check_model(model, [3, 32, 32], wrn_rule);
    }
}

#[test]
fn torch_default_helpers_match_pytorch_reset_parameters() {
    let _rng = seeded(15);
    // kaiming_uniform_(a=√5): gain √(2/(1+5)), bound gain·√(3/fan_in) = 1/√fan_in.
    for fan in [1, 27, 576, 4608] {
        let gain = (2.0f64 / (1.0 + 5.0)).sqrt();
        let bound = gain * (3.0 / fan as f64).sqrt();
        assert!((torch_default_bound(fan) - bound).abs() < 1e-12);
    }
    let vs = nn::VarStore::new(Device::Cpu);
    // fan_in = in_channels / groups · k²; the bias shares the bound.
    let cfg = torch_default_conv(
        64,
        3,
        nn::ConvConfig {
            groups: 2,
            ..Default::default()
        },
    );
    let conv = nn::conv2d(vs.root() / "c", 64, 128, 3, cfg);
    check(
        "conv",
        "weight",
        &conv.ws,
        Dist::Uniform(1.0 / 288f64.sqrt()),
    );
    check(
        "conv",
        "bias",
        conv.bs.as_ref().unwrap(),
        Dist::Uniform(1.0 / 288f64.sqrt()),
    );
    assert!(matches!(cfg.ws_init, Init::Uniform { .. }));
    let lin = nn::linear(vs.root() / "l", 300, 400, torch_default_linear(300));
    check(
        "linear",
        "weight",
        &lin.ws,
        Dist::Uniform(1.0 / 300f64.sqrt()),
    );
    check(
        "linear",
        "bias",
        lin.bs.as_ref().unwrap(),
        Dist::Uniform(1.0 / 300f64.sqrt()),
    );
    // tch's own default, for contrast, is √6 times wider: the check above
    // would refuse it.
    let wide = nn::linear(vs.root() / "t", 300, 400, Default::default());
    let (_, _, max) = stats(&wide.ws);
    assert!(max > 2.0 / 300f64.sqrt(), "{max}");
}
