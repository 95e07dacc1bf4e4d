//! The SmallCNN used for MNIST in adversarial-training papers (TRADES, MART,
//! ST): 4 conv + 3 linear layers, 312,202 parameters for 10 classes on 1×28×28.
//! Names follow the reference: `feature_extractor.conv1.weight`,
//! `classifier.fc3.bias`, ...

use super::{Classifier, Mode};
use crate::nn::init::torch_default_linear;
use crate::nn::max_pool::max_pool2d;
use tch::nn::{self, Init, Module};
use tch::Tensor;

pub struct SmallCnn {
    conv: [nn::Conv2D; 4],
    fc: [nn::Linear; 3],
    dropout: f64,
}

impl SmallCnn {
    /// `dropout` is 0.5 in the reference; tests use 0 to compare passes exactly.
    pub fn new(p: &nn::Path, in_channels: i64, num_classes: i64, dropout: f64) -> Self {
        let fe = p / "feature_extractor";
        let cl = p / "classifier";
        // Reference init: Kaiming-normal convolutions with zero bias, PyTorch
        // default linear layers, and a zero last layer (so training starts from
        // uniform predictions — the reason plain CE can sit on a plateau).
        let conv_cfg = nn::ConvConfig {
            ws_init: Init::Kaiming {
                dist: nn::init::NormalOrUniform::Normal,
                fan: nn::init::FanInOut::FanIn,
                non_linearity: nn::init::NonLinearity::ReLU,
            },
            bs_init: Init::Const(0.0),
            ..Default::default()
        };
        let conv = [
            nn::conv2d(&fe / "conv1", in_channels, 32, 3, conv_cfg),
            nn::conv2d(&fe / "conv2", 32, 32, 3, conv_cfg),
            nn::conv2d(&fe / "conv3", 32, 64, 3, conv_cfg),
            nn::conv2d(&fe / "conv4", 64, 64, 3, conv_cfg),
        ];
        let zero = nn::LinearConfig {
            ws_init: Init::Const(0.0),
            bs_init: Some(Init::Const(0.0)),
            bias: true,
        };
        let fc = [
            nn::linear(
                &cl / "fc1",
                64 * 4 * 4,
                200,
                torch_default_linear(64 * 4 * 4),
            ),
            nn::linear(&cl / "fc2", 200, 200, torch_default_linear(200)),
            nn::linear(&cl / "fc3", 200, num_classes, zero),
        ];
        SmallCnn { conv, fc, dropout }
    }
}

impl Classifier for SmallCnn {
    fn forward(&self, xs: &Tensor, mode: &Mode) -> Tensor {
        let [c1, c2, c3, c4] = &self.conv;
        let [f1, f2, f3] = &self.fc;
        // ReLU in place on each layer's fresh output: the same values as
        // the reference's `nn.ReLU()`, one buffer fewer per layer (a
        // convolution's or linear layer's backward needs its input, not its
        // output, and ReLU's backward reads the result it keeps).
        let relu = |mut t: Tensor| {
            let _ = t.relu_();
            t
        };
        let h = max_pool2d(&relu(c2.forward(&relu(c1.forward(xs)))), 2);
        let h = max_pool2d(&relu(c4.forward(&relu(c3.forward(&h)))), 2);
        let h = relu(f1.forward(&h.flatten(1, -1))).dropout(self.dropout, mode.is_train());
        f3.forward(&relu(f2.forward(&h)))
    }
}
