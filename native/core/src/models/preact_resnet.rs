//! PreAct ResNet-18 in the layout of the AWP reference code
//! (`AT_AWP/preactresnet.py`): a 3×3 stem conv without BatchNorm, four stages
//! of two pre-activation blocks, a final BatchNorm + ReLU before global
//! average pooling and the classifier. 11,172,170 parameters for 10 classes.
//!
//! Names follow its state_dict: `conv1.weight`, `layer1.0.bn1.weight`,
//! `layer2.0.shortcut.0.weight` (a 1×1 conv without BatchNorm, applied to the
//! pre-activated input), `bn.running_var`, `linear.bias`, ...
//!
//! Initialisation: the reference sets none, so every conv and the linear
//! layer get PyTorch's defaults (`crate::nn::init`); BatchNorm weight 1, bias 0.

use super::{Classifier, Mode};
use crate::nn::init::{torch_default_conv, torch_default_linear};
use crate::nn::BatchNorm2d;
use tch::nn::{self, Module};
use tch::Tensor;

fn conv(p: nn::Path, cin: i64, cout: i64, kernel: i64, stride: i64) -> nn::Conv2D {
    nn::conv2d(
        p,
        cin,
        cout,
        kernel,
        torch_default_conv(
            cin,
            kernel,
            nn::ConvConfig {
                stride,
                padding: kernel / 2,
                bias: false,
                ..Default::default()
            },
        ),
    )
}

/// `PreActBlock`: relu(bn1(x)) feeds conv1 and, when the shape changes, the
/// 1×1 shortcut conv; otherwise the shortcut is x itself.
struct PreActBlock {
    bn1: BatchNorm2d,
    conv1: nn::Conv2D,
    bn2: BatchNorm2d,
    conv2: nn::Conv2D,
    shortcut: Option<nn::Conv2D>,
}

impl PreActBlock {
    fn new(p: &nn::Path, cin: i64, cout: i64, stride: i64) -> Self {
        let shortcut =
            (stride != 1 || cin != cout).then(|| conv(p / "shortcut" / "0", cin, cout, 1, stride));
        PreActBlock {
            bn1: BatchNorm2d::new(&(p / "bn1"), cin),
            conv1: conv(p / "conv1", cin, cout, 3, stride),
            bn2: BatchNorm2d::new(&(p / "bn2"), cout),
            conv2: conv(p / "conv2", cout, cout, 3, 1),
            shortcut,
        }
    }

    fn forward(&self, xs: &Tensor, mode: &Mode) -> Tensor {
        let out = self.bn1.forward(xs, mode).relu();
        let skip = match &self.shortcut {
            Some(c) => c.forward(&out),
            None => xs.shallow_clone(),
        };
        let h = self.conv1.forward(&out);
        let h = self.conv2.forward(&self.bn2.forward(&h, mode).relu());
        h + skip
    }
}

pub struct PreActResNet {
    conv1: nn::Conv2D,
    layers: Vec<PreActBlock>,
    bn: BatchNorm2d,
    linear: nn::Linear,
}

impl PreActResNet {
    /// PreAct ResNet-18: [2, 2, 2, 2] blocks. `width` is 64 in the reference;
    /// tests may use narrower nets of the same shape.
    pub fn preact_resnet18(p: &nn::Path, in_channels: i64, num_classes: i64, width: i64) -> Self {
        let mut layers = Vec::new();
        let mut cin = width;
        for stage in 0..4 {
            let cout = width << stage;
            let lp = p / format!("layer{}", stage + 1);
            for b in 0..2 {
                let stride = if b == 0 && stage > 0 { 2 } else { 1 };
                layers.push(PreActBlock::new(&(&lp / b), cin, cout, stride));
                cin = cout;
            }
        }
        PreActResNet {
            conv1: conv(p / "conv1", in_channels, width, 3, 1),
            layers,
            bn: BatchNorm2d::new(&(p / "bn"), cin),
            linear: nn::linear(p / "linear", cin, num_classes, torch_default_linear(cin)),
        }
    }
}

impl Classifier for PreActResNet {
    fn forward(&self, xs: &Tensor, mode: &Mode) -> Tensor {
        let mut h = self.conv1.forward(xs);
        for block in &self.layers {
            h = block.forward(&h, mode);
        }
        let h = self.bn.forward(&h, mode).relu();
        // Global average pooling: the reference's avg_pool2d(4) on 32×32 inputs.
        let h = h.adaptive_avg_pool2d([1, 1]).flatten(1, -1);
        self.linear.forward(&h)
    }
}
