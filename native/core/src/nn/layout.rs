//! Tensor layouts: channels-last (NHWC strides with NCHW shapes) and the
//! test for it. A leaf, so that layers and models can use it without
//! depending on precision.rs (which depends on models).

use tch::Tensor;

/// `t` in channels-last layout when it is 4-d (NCHW shape, NHWC strides, as
/// PyTorch's `contiguous(memory_format=torch.channels_last)`); otherwise `t`.
pub fn channels_last(t: &Tensor) -> Tensor {
    if t.dim() == 4 {
        t.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
    } else {
        t.shallow_clone()
    }
}

/// Whether a 4-d tensor has channels-last strides (NHWC order is dense;
/// as in libtorch, strides of size-1 dims do not count, so a 1-channel
/// tensor is both contiguous and channels-last).
pub fn is_channels_last(t: &Tensor) -> bool {
    t.dim() == 4 && t.permute([0, 2, 3, 1]).is_contiguous()
}
