//! CIFAR ResNet-18 (3×3 stem, no max-pool), as in the ST/TRADES/MART
//! reference code: 11,173,962 parameters for 10 classes. Names follow it:
//! `conv1.weight`, `layer1.0.bn1.running_mean`, `layer2.0.shortcut.0.weight`,
//! `linear.weight`, ...
//!
//! Initialisation: the reference sets none, so every conv and the linear
//! layer get PyTorch's defaults (`crate::nn::init`); BatchNorm weight 1, bias 0.

use super::{Classifier, Mode};
use crate::nn::init::{torch_default_conv, torch_default_linear};
use crate::nn::BatchNorm2d;
use tch::nn::{self, Module};
use tch::Tensor;

fn conv3x3(p: nn::Path, cin: i64, cout: i64, stride: i64) -> nn::Conv2D {
    nn::conv2d(
        p,
        cin,
        cout,
        3,
        torch_default_conv(
            cin,
            3,
            nn::ConvConfig {
                stride,
                padding: 1,
                bias: false,
                ..Default::default()
            },
        ),
    )
}

struct BasicBlock {
    conv1: nn::Conv2D,
    bn1: BatchNorm2d,
    conv2: nn::Conv2D,
    bn2: BatchNorm2d,
    shortcut: Option<(nn::Conv2D, BatchNorm2d)>,
}

impl BasicBlock {
    fn new(p: &nn::Path, cin: i64, cout: i64, stride: i64) -> Self {
        let shortcut = (stride != 1 || cin != cout).then(|| {
            let s = p / "shortcut";
            let cfg = torch_default_conv(
                cin,
                1,
                nn::ConvConfig {
                    stride,
                    bias: false,
                    ..Default::default()
                },
            );
            (
                nn::conv2d(&s / "0", cin, cout, 1, cfg),
                BatchNorm2d::new(&(&s / "1"), cout),
            )
        });
        BasicBlock {
            conv1: conv3x3(p / "conv1", cin, cout, stride),
            bn1: BatchNorm2d::new(&(p / "bn1"), cout),
            conv2: conv3x3(p / "conv2", cout, cout, 1),
            bn2: BatchNorm2d::new(&(p / "bn2"), cout),
            shortcut,
        }
    }

    fn forward(&self, xs: &Tensor, mode: &Mode) -> Tensor {
        let h = self.bn1.forward(&self.conv1.forward(xs), mode).relu();
        let h = self.bn2.forward(&self.conv2.forward(&h), mode);
        let skip = match &self.shortcut {
            Some((conv, bn)) => bn.forward(&conv.forward(xs), mode),
            None => xs.shallow_clone(),
        };
        (h + skip).relu()
    }
}

pub struct ResNet {
    conv1: nn::Conv2D,
    bn1: BatchNorm2d,
    layers: Vec<BasicBlock>,
    linear: nn::Linear,
}

impl ResNet {
    /// ResNet-18: [2, 2, 2, 2] basic blocks. `width` is 64 in the paper;
    /// tests use narrower nets of the same shape.
    pub fn resnet18(p: &nn::Path, in_channels: i64, num_classes: i64, width: i64) -> Self {
        Self::new(p, in_channels, num_classes, width, [2, 2, 2, 2])
    }

    fn new(
        p: &nn::Path,
        in_channels: i64,
        num_classes: i64,
        width: i64,
        blocks: [usize; 4],
    ) -> Self {
        let mut layers = Vec::new();
        let mut cin = width;
        for (i, &n) in blocks.iter().enumerate() {
            let cout = width << i;
            let lp = p / format!("layer{}", i + 1);
            for b in 0..n {
                let stride = if b == 0 && i > 0 { 2 } else { 1 };
                layers.push(BasicBlock::new(&(&lp / b), cin, cout, stride));
                cin = cout;
            }
        }
        ResNet {
            conv1: conv3x3(p / "conv1", in_channels, width, 1),
            bn1: BatchNorm2d::new(&(p / "bn1"), width),
            layers,
            linear: nn::linear(p / "linear", cin, num_classes, torch_default_linear(cin)),
        }
    }
}

impl Classifier for ResNet {
    fn forward(&self, xs: &Tensor, mode: &Mode) -> Tensor {
        let mut h = self.bn1.forward(&self.conv1.forward(xs), mode).relu();
        for block in &self.layers {
            h = block.forward(&h, mode);
        }
        // Global average pooling: the reference's avg_pool2d(4) on 32×32 inputs.
        let h = h.adaptive_avg_pool2d([1, 1]).flatten(1, -1);
        self.linear.forward(&h)
    }
}
