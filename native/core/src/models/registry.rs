//! Models by name: the one place that knows which architectures exist.
//! Adding a model touches this file and its own file, nothing else.

use super::{resnet::ResNet, small_cnn::SmallCnn, Classifier};
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

const MODELS: &[Entry] = &[
    Entry {
        name: "small_cnn",
        description: "SmallCNN of TRADES/MART/ST for MNIST: 4 conv + 3 linear, dropout 0.5",
        input_shape: [1, 28, 28],
        build: |p, shape, classes| Box::new(SmallCnn::new(p, shape[0], classes, 0.5)),
        activations: small_cnn_activations,
    },
    Entry {
        name: "resnet18",
        description: "CIFAR ResNet-18 (3x3 stem, no max-pool), as in the ST paper",
        input_shape: [3, 32, 32],
        build: |p, shape, classes| Box::new(ResNet::resnet18(p, shape[0], classes, 64)),
        activations: resnet18_activations,
    },
];

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
