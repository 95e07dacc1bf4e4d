//! Models by name: the one place that knows which architectures exist.
//! Adding a model touches this file and its own file, nothing else.

use super::{
    preact_resnet::PreActResNet, resnet::ResNet, small_cnn::SmallCnn, wide_resnet::WideResNet,
    Classifier,
};
use crate::error::{CoreError, Result};
use serde::Serialize;
use tch::{nn::VarStore, Device};

struct Entry {
    name: &'static str,
    description: &'static str,
    input_shape: [i64; 3],
    build: fn(&tch::nn::Path, [i64; 3], i64) -> Box<dyn Classifier>,
    /// Floats one sample keeps alive for the backward pass (see `memory`).
    activations: fn([i64; 3]) -> i64,
    /// Name prefixes of tensors that reference state dicts of this model
    /// carry but the model does not use: `checkpoint::load` skips them.
    ignored_prefixes: &'static [&'static str],
}

/// SmallCNN: two pairs of valid 3×3 convolutions, each pair followed by a
/// 2×2 max-pool; each conv output is kept twice (before and after ReLU).
fn small_cnn_activations([_, h, w]: [i64; 3]) -> i64 {
    let (h1, w1) = (h - 2, w - 2);
    let (h2, w2) = (h1 - 2, w1 - 2);
    let (h3, w3) = (h2 / 2, w2 / 2);
    let (h4, w4) = (h3 - 2, w3 - 2);
    let (h5, w5) = (h4 - 2, w4 - 2);
    2 * (32 * h1 * w1 + 32 * h2 * w2 + 64 * h4 * w4 + 64 * h5 * w5)
        + 32 * h3 * w3
        + 64 * (h5 / 2) * (w5 / 2)
        + 4 * 200
}

/// CIFAR ResNet-18: the stem and every conv keep conv, BatchNorm and ReLU
/// outputs (3 each); a block adds its sum; a strided block its shortcut.
fn resnet18_activations([_, h, w]: [i64; 3]) -> i64 {
    let mut total = 3 * 64 * h * w;
    for stage in 0..4 {
        let c = 64 << stage;
        let s = (h >> stage) * (w >> stage);
        let shortcut = if stage > 0 { 2 } else { 0 };
        total += (2 * 7 + shortcut) * c * s;
    }
    total
}

/// PreAct ResNet-18: the stem keeps its conv output; each block keeps its
/// input's BatchNorm and ReLU outputs (2 at the input's width and size), and
/// at its output's: conv1, BatchNorm, ReLU (3), conv2 and the sum (2), plus
/// the 1×1 shortcut's output where the shape changes; then the final
/// BatchNorm and ReLU (2).
fn preact_resnet18_activations([_, h, w]: [i64; 3]) -> i64 {
    let mut total = 64 * h * w;
    let (mut cin, mut sin) = (64, h * w);
    for stage in 0..4 {
        let c = 64 << stage;
        let s = (h >> stage) * (w >> stage);
        for _ in 0..2 {
            total += 2 * cin * sin + 5 * c * s + if cin != c { c * s } else { 0 };
            (cin, sin) = (c, s);
        }
    }
    total + 2 * cin * sin
}

/// WRN-depth-k (TRADES layout): the stem keeps its conv output; each block
/// keeps its input's BatchNorm and ReLU outputs (2 at the input's width and
/// size), and at its output's: conv1, BatchNorm, ReLU (3), conv2 and the sum
/// (2), plus the 1×1 shortcut's output where the width changes; then the
/// final BatchNorm and ReLU (2). Dropout is off (rate 0), so it keeps nothing.
fn wide_resnet_activations(depth: i64, k: i64, [_, h, w]: [i64; 3]) -> i64 {
    let n = (depth - 4) / 6;
    let mut total = 16 * h * w;
    let (mut cin, mut sin) = (16, h * w);
    for (stage, c) in [16 * k, 32 * k, 64 * k].into_iter().enumerate() {
        let s = (h >> stage) * (w >> stage);
        for _ in 0..n {
            total += 2 * cin * sin + 5 * c * s + if cin != c { c * s } else { 0 };
            (cin, sin) = (c, s);
        }
    }
    total + 2 * cin * sin
}

/// The reference WRN code builds a `sub_block1` its forward never uses.
const WRN_IGNORED: &[&str] = &["sub_block1."];

const MODELS: &[Entry] = &[
    Entry {
        name: "small_cnn",
        description: "SmallCNN of TRADES/MART/ST for MNIST: 4 conv + 3 linear, dropout 0.5",
        input_shape: [1, 28, 28],
        build: |p, shape, classes| Box::new(SmallCnn::new(p, shape[0], classes, 0.5)),
        activations: small_cnn_activations,
        ignored_prefixes: &[],
    },
    Entry {
        name: "resnet18",
        description: "CIFAR ResNet-18 (3x3 stem, no max-pool), as in the ST paper",
        input_shape: [3, 32, 32],
        build: |p, shape, classes| Box::new(ResNet::resnet18(p, shape[0], classes, 64)),
        activations: resnet18_activations,
        ignored_prefixes: &[],
    },
    Entry {
        name: "preact_resnet18",
        description: "PreAct ResNet-18 of the AWP code (final BatchNorm before the classifier)",
        input_shape: [3, 32, 32],
        build: |p, shape, classes| {
            Box::new(PreActResNet::preact_resnet18(p, shape[0], classes, 64))
        },
        activations: preact_resnet18_activations,
        ignored_prefixes: &[],
    },
    Entry {
        name: "wrn34_10",
        description: "WideResNet-34-10 of the TRADES code, dropout 0",
        input_shape: [3, 32, 32],
        build: |p, shape, classes| Box::new(WideResNet::new(p, 34, 10, shape[0], classes, 0.0)),
        activations: |shape| wide_resnet_activations(34, 10, shape),
        ignored_prefixes: WRN_IGNORED,
    },
    Entry {
        name: "wrn34_5",
        description: "WideResNet-34-5 of the TRADES code, dropout 0",
        input_shape: [3, 32, 32],
        build: |p, shape, classes| Box::new(WideResNet::new(p, 34, 5, shape[0], classes, 0.0)),
        activations: |shape| wide_resnet_activations(34, 5, shape),
        ignored_prefixes: WRN_IGNORED,
    },
    Entry {
        name: "wrn28_10",
        description: "WideResNet-28-10 of the TRADES code, dropout 0 (RST setting)",
        input_shape: [3, 32, 32],
        build: |p, shape, classes| Box::new(WideResNet::new(p, 28, 10, shape[0], classes, 0.0)),
        activations: |shape| wide_resnet_activations(28, 10, shape),
        ignored_prefixes: WRN_IGNORED,
    },
];

/// Name prefixes of tensors a reference state dict of `model` may carry
/// that the model does not use (empty for an unknown name).
pub fn ignored_prefixes(model: &str) -> &'static [&'static str] {
    entry(model).map(|e| e.ignored_prefixes).unwrap_or(&[])
}

fn entry(name: &str) -> Result<&'static Entry> {
    MODELS.iter().find(|e| e.name == name).ok_or_else(|| {
        let known: Vec<_> = MODELS.iter().map(|e| e.name).collect();
        CoreError::config(
            "model",
            format!(
                "unknown model \"{name}\"; expected one of {}",
                known.join(", ")
            ),
        )
    })
}

/// A built network with its variables.
pub struct Model {
    pub name: String,
    pub vs: VarStore,
    pub net: Box<dyn Classifier>,
    pub input_shape: [i64; 3],
    /// Floats one sample keeps alive for the backward pass (memory estimate).
    pub activations_per_sample: i64,
}

impl Model {
    /// Trainable parameters (PyTorch's `sum(p.numel() for p in model.parameters())`).
    pub fn parameter_count(&self) -> i64 {
        self.vs
            .trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum()
    }
}

/// Builds `name` for `num_classes` on `device`, checking that the data's
/// shape is one the architecture accepts.
pub fn build_model(
    name: &str,
    num_classes: i64,
    input_shape: [i64; 3],
    device: Device,
) -> Result<Model> {
    let e = entry(name)?;
    if input_shape != e.input_shape {
        return Err(CoreError::InvalidData(format!(
            "model {name} is built for inputs {:?} (C, H, W) but the dataset has {:?}",
            e.input_shape, input_shape
        )));
    }
    let vs = VarStore::new(device);
    let net = (e.build)(&vs.root(), input_shape, num_classes);
    Ok(Model {
        name: name.to_string(),
        vs,
        net,
        input_shape,
        activations_per_sample: (e.activations)(input_shape),
    })
}

/// A registered model, as `list_models` describes it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct ModelInfo {
    #[cfg_attr(test, ts(as = "crate::config::ts_contract::ModelName"))]
    pub name: String,
    pub description: String,
    /// Input shape [C, H, W] the model is built for.
    pub input_shape: [i64; 3],
    pub num_classes: i64,
    pub parameters: i64,
}

/// Every registered model with its parameter count (built once on CPU).
pub fn list_models(num_classes: i64) -> Vec<ModelInfo> {
    MODELS
        .iter()
        .map(|e| {
            let m = build_model(e.name, num_classes, e.input_shape, Device::Cpu)
                .expect("registered model builds");
            ModelInfo {
                name: e.name.to_string(),
                description: e.description.to_string(),
                input_shape: e.input_shape,
                num_classes,
                parameters: m.parameter_count(),
            }
        })
        .collect()
}
