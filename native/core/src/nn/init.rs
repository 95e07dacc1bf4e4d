//! PyTorch's default initialisation, for layers whose reference code relies
//! on it.
//!
//! `nn.Conv2d` and `nn.Linear` call `reset_parameters`:
//! `kaiming_uniform_(weight, a=√5)`, i.e. gain √(2/(1+5)) and bound
//! gain·√(3/fan_in) = 1/√fan_in, and a bias uniform in ±1/√fan_in. tch's
//! defaults differ: Kaiming-uniform with the ReLU gain (bound √6/√fan_in,
//! √6 ≈ 2.45 times larger) for both, and a zero conv bias. These configs
//! give tch layers PyTorch's defaults.

use tch::nn::{ConvConfig, Init, LinearConfig};

/// PyTorch's default bound for a layer with `fan_in` inputs per output:
/// 1/√fan_in (weights and biases alike).
pub fn torch_default_bound(fan_in: i64) -> f64 {
    assert!(fan_in > 0, "fan_in must be positive, got {fan_in}");
    1.0 / (fan_in as f64).sqrt()
}

fn uniform(bound: f64) -> Init {
    Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

/// `cfg` (stride, padding, bias, groups) with PyTorch's default `nn.Conv2d`
/// initialisation for a square `kernel` over `in_channels` inputs:
/// fan_in = in_channels / groups · kernel².
pub fn torch_default_conv(in_channels: i64, kernel: i64, cfg: ConvConfig) -> ConvConfig {
    let fan_in = in_channels / cfg.groups * kernel * kernel;
    let b = uniform(torch_default_bound(fan_in));
    ConvConfig {
        ws_init: b,
        bs_init: b,
        ..cfg
    }
}

/// PyTorch's default `nn.Linear(in_dim, _)` initialisation, with a bias.
pub fn torch_default_linear(in_dim: i64) -> LinearConfig {
    let b = uniform(torch_default_bound(in_dim));
    LinearConfig {
        ws_init: b,
        bs_init: Some(b),
        bias: true,
    }
}

/// The fan-out normal of the common WideResNet code
/// (`weight.normal_(0, sqrt(2 / n))`, n = kernel² · out_channels).
pub fn fan_out_normal(out_channels: i64, kernel: i64) -> Init {
    let n = kernel * kernel * out_channels;
    assert!(n > 0, "a conv has at least one output");
    Init::Randn {
        mean: 0.0,
        stdev: (2.0 / n as f64).sqrt(),
    }
}
