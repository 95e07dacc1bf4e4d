//! Wide ResNets in the layout of the TRADES reference code
//! (`models/wideresnet.py`, also used by MART, AWP and ST): WRN-depth-k has
//! a 3×3 stem conv, three `NetworkBlock`s of (depth − 4) / 6 pre-activation
//! `BasicBlock`s at widths 16k, 32k, 64k, then BatchNorm + ReLU, global
//! average pooling and the classifier. For 10 classes: WRN-34-10 46,160,474
//! parameters, WRN-34-5 11,554,074, WRN-28-10 36,479,194.
//!
//! Names follow its state_dict: `conv1.weight`,
//! `block1.layer.0.bn1.weight`, `block1.layer.0.convShortcut.weight`,
//! `block3.layer.4.conv2.weight`, `bn1.running_mean`, `fc.weight`, ...
//!
//! The reference also builds a `sub_block1` (a copy of `block1`) that its
//! forward never uses. It is not built here: the parameter counts above are
//! those without it (with it, WRN-34-10 would have 48,262,586), and
//! `checkpoint::load` ignores the `sub_block1.*` tensors of a reference
//! state dict (see the registry's `ignored_prefixes`).
//!
//! Initialisation as the reference sets it: every conv normal(0, √(2/n)) with
//! n = kernel² · out_channels (fan-out), BatchNorm weight 1 and bias 0, the
//! classifier's bias 0 and its weight PyTorch's default (uniform ±1/√fan_in).

use super::{Classifier, Mode};
use crate::nn::init::{fan_out_normal, torch_default_linear};
use crate::nn::BatchNorm2d;
use tch::nn::{self, Init, Module};
use tch::Tensor;

fn conv(p: nn::Path, cin: i64, cout: i64, kernel: i64, stride: i64) -> nn::Conv2D {
    nn::conv2d(
        p,
        cin,
        cout,
        kernel,
        nn::ConvConfig {
            stride,
            padding: kernel / 2,
            bias: false,
            ws_init: fan_out_normal(cout, kernel),
            ..Default::default()
        },
    )
}

/// The reference's `BasicBlock`. With equal widths the block adds
/// conv2(…relu(bn1(x))…) to x; otherwise relu(bn1(x)) replaces x, feeding
/// both conv1 and the 1×1 `convShortcut`.
struct BasicBlock {
    bn1: BatchNorm2d,
    conv1: nn::Conv2D,
    bn2: BatchNorm2d,
    conv2: nn::Conv2D,
    conv_shortcut: Option<nn::Conv2D>,
    drop_rate: f64,
}

impl BasicBlock {
    fn new(p: &nn::Path, cin: i64, cout: i64, stride: i64, drop_rate: f64) -> Self {
        BasicBlock {
            bn1: BatchNorm2d::new(&(p / "bn1"), cin),
            conv1: conv(p / "conv1", cin, cout, 3, stride),
            bn2: BatchNorm2d::new(&(p / "bn2"), cout),
            conv2: conv(p / "conv2", cout, cout, 3, 1),
            // As the reference: a shortcut conv exactly when the widths differ
            // (a strided block always changes the width in WRNs).
            conv_shortcut: (cin != cout).then(|| conv(p / "convShortcut", cin, cout, 1, stride)),
            drop_rate,
        }
    }

    fn forward(&self, xs: &Tensor, mode: &Mode) -> Tensor {
        let act = self.bn1.forward(xs, mode).relu();
        let h = self.bn2.forward(&self.conv1.forward(&act), mode).relu();
        let h = if self.drop_rate > 0.0 {
            h.dropout(self.drop_rate, mode.is_train())
        } else {
            h
        };
        let h = self.conv2.forward(&h);
        match &self.conv_shortcut {
            Some(c) => c.forward(&act) + h,
            None => xs + h,
        }
    }
}

pub struct WideResNet {
    conv1: nn::Conv2D,
    blocks: Vec<BasicBlock>,
    bn1: BatchNorm2d,
    fc: nn::Linear,
}

impl WideResNet {
    /// WRN-`depth`-`widen_factor`; `drop_rate` is 0 in TRADES and ST.
    pub fn new(
        p: &nn::Path,
        depth: i64,
        widen_factor: i64,
        in_channels: i64,
        num_classes: i64,
        drop_rate: f64,
    ) -> Self {
        assert!(
            depth >= 10 && (depth - 4) % 6 == 0,
            "a WideResNet's depth is 6n + 4 (n >= 1), got {depth}"
        );
        assert!(widen_factor >= 1, "widen factor must be at least 1");
        let n = (depth - 4) / 6;
        let widths = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor];
        let mut blocks = Vec::new();
        for (i, stride) in [1, 2, 2].into_iter().enumerate() {
            let lp = p / format!("block{}", i + 1) / "layer";
            for b in 0..n {
                let cin = if b == 0 { widths[i] } else { widths[i + 1] };
                let s = if b == 0 { stride } else { 1 };
                blocks.push(BasicBlock::new(
                    &(&lp / b),
                    cin,
                    widths[i + 1],
                    s,
                    drop_rate,
                ));
            }
        }
        let c = widths[3];
        WideResNet {
            conv1: conv(p / "conv1", in_channels, widths[0], 3, 1),
            blocks,
            bn1: BatchNorm2d::new(&(p / "bn1"), c),
            fc: nn::linear(
                p / "fc",
                c,
                num_classes,
                nn::LinearConfig {
                    bs_init: Some(Init::Const(0.0)),
                    ..torch_default_linear(c)
                },
            ),
        }
    }
}

impl Classifier for WideResNet {
    fn forward(&self, xs: &Tensor, mode: &Mode) -> Tensor {
        let mut h = self.conv1.forward(xs);
        for block in &self.blocks {
            h = block.forward(&h, mode);
        }
        let h = self.bn1.forward(&h, mode).relu();
        // Global average pooling: the reference's avg_pool2d(8) on 32×32 inputs.
        let h = h.adaptive_avg_pool2d([1, 1]).flatten(1, -1);
        self.fc.forward(&h)
    }
}
