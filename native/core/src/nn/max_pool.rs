//! k×k max pooling with stride k (SmallCNN's 2×2 pools) that gives, on the
//! CPU, the same outputs and the same input gradients as libtorch's
//! `max_pool2d`, bit for bit, in a fraction of its time.
//!
//! Why: for contiguous (NCHW) tensors libtorch's CPU max-pool kernel walks
//! each window element by element. On the 2-core machine it took 6.2 ms
//! for SmallCNN's first pool on 94 digits (94×32×24×24), a sixth of a whole
//! forward pass, where its channels-last kernel, which vectorises across
//! channels, took 0.44 ms and the layout copy 1.1 ms. Every SmallCNN pass
//! pays it: the ST step, and each iteration of APGD and FAB.
//!
//! How: without a gradient, the pool runs on a channels-last copy and its
//! output is laid out NCHW again. With one, the positions of the window
//! maxima come from that kernel (no gradient), and the outputs are gathered
//! from the input at those positions. Gather's backward adds each output's
//! gradient onto zeros at its position, as max-pool's backward does with
//! its indices, and returns an NCHW gradient, so the layers below see the
//! same tensor in the same layout. The positions agree because both
//! kernels keep the first maximum of a window in row-major order (a later
//! element replaces it only if greater, or NaN); ties are common here, as
//! ReLU maps whole regions of a digit's blank background to zero.
//! `tests/max_pool.rs` checks outputs, gradients and sign bits against
//! `max_pool2d` with such ties.
//!
//! Elsewhere (CUDA, inputs already channels-last, other dimensions) it is
//! `max_pool2d` itself.

use super::layout::{channels_last, is_channels_last};
use tch::{Device, Tensor};

/// Max pooling with a k×k window and stride k, no padding, floor mode.
pub fn max_pool2d(xs: &Tensor, k: i64) -> Tensor {
    let plain = || xs.max_pool2d([k, k], [k, k], [0, 0], [1, 1], false);
    if xs.device() != Device::Cpu || xs.dim() != 4 || is_channels_last(xs) {
        return plain();
    }
    // (Under no_grad a layer's output does not require a gradient.)
    let (pooled, indices) = tch::no_grad(|| {
        channels_last(xs).max_pool2d_with_indices([k, k], [k, k], [0, 0], [1, 1], false)
    });
    if !xs.requires_grad() {
        return pooled.contiguous();
    }
    xs.flatten(2, -1)
        .gather(2, &indices.flatten(2, -1), false)
        .view(pooled.size().as_slice())
}
