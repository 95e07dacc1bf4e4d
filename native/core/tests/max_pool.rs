//! nn/max_pool.rs against libtorch's own `max_pool2d`: the same outputs,
//! the same input gradients (bit for bit, sign bits of zeros included) and
//! the same NCHW layout, on ReLU activations whose windows tie (zero
//! regions and repeated positive values), odd sizes (floor mode), with and
//! without a gradient; inputs already channels-last take libtorch's path.

use st_core::nn::max_pool::max_pool2d;
use st_core::precision::channels_last;
use tch::{Device, Kind, Tensor};

/// ReLU activations N×C×H×W with ties inside windows: negative (so zero
/// after ReLU) and constant positive regions.
fn tied_activations(shape: [i64; 4]) -> Tensor {
    tch::manual_seed(7);
    let x = Tensor::randn(shape, (Kind::Float, Device::Cpu));
    let _ = x.narrow(2, 0, 3).fill_(-1.0);
    let _ = x.narrow(3, 0, 4).fill_(0.7);
    // A value repeated in a window's later positions only.
    let _ = x.narrow(2, 4, 1).narrow(3, 5, 2).fill_(2.5);
    x.relu()
}

fn plain(x: &Tensor, k: i64) -> Tensor {
    x.max_pool2d([k, k], [k, k], [0, 0], [1, 1], false)
}

fn bitwise_equal(a: &Tensor, b: &Tensor) -> bool {
    a.size() == b.size() && a.equal(b) && a.signbit().equal(&b.signbit())
}

/// Input gradient of `pool` for the upstream gradient `up`.
fn input_grad(x: &Tensor, up: &Tensor, pool: impl Fn(&Tensor) -> Tensor) -> (Tensor, Tensor) {
    let xv = x.detach().set_requires_grad(true);
    let out = pool(&xv);
    let g = Tensor::run_backward(&[&(&out * up).sum(Kind::Float)], &[&xv], false, false)
        .pop()
        .unwrap();
    (out.detach(), g)
}

#[test]
fn outputs_and_gradients_equal_max_pool2d_bit_for_bit() {
    for (shape, k) in [([3, 5, 12, 14], 2), ([2, 4, 9, 11], 2), ([2, 3, 10, 9], 3)] {
        let x = tied_activations(shape);
        let up = Tensor::randn(plain(&x, k).size().as_slice(), (Kind::Float, Device::Cpu));
        // Negative zeros upstream: both backward passes add them onto +0.
        let _ = up.narrow(1, 0, 1).fill_(-0.0);
        let (ours, g_ours) = input_grad(&x, &up, |t| max_pool2d(t, k));
        let (theirs, g_theirs) = input_grad(&x, &up, |t| plain(t, k));
        assert!(
            bitwise_equal(&ours, &theirs),
            "outputs differ for {shape:?}, k={k}"
        );
        assert!(
            bitwise_equal(&g_ours, &g_theirs),
            "gradients differ for {shape:?}, k={k}"
        );
        assert!(g_ours.is_contiguous(), "the gradient keeps the NCHW layout");
        assert!(ours.is_contiguous());
    }
}

#[test]
fn ties_are_really_there() {
    // The test above would prove nothing about tie-breaking if no window
    // held two equal maxima.
    let x = tied_activations([3, 5, 12, 14]);
    let windows = x.unfold(2, 2, 2).unfold(3, 2, 2).flatten(4, -1);
    let max = windows.amax([4].as_slice(), true);
    let tied = windows
        .eq_tensor(&max)
        .sum_dim_intlist([4].as_slice(), false, Kind::Int64)
        .gt(1);
    let positive = max.squeeze_dim(4).gt(0.0);
    assert!(
        tied.logical_and(&positive).any().int64_value(&[]) == 1,
        "a positive tie"
    );
    assert!(
        tied.logical_and(&positive.logical_not())
            .any()
            .int64_value(&[])
            == 1,
        "a zero tie"
    );
}

#[test]
fn without_a_gradient_the_output_is_the_same_and_nchw() {
    let x = tied_activations([4, 6, 10, 10]);
    let ours = tch::no_grad(|| max_pool2d(&x, 2));
    assert!(bitwise_equal(&ours, &plain(&x, 2)));
    assert!(ours.is_contiguous());
    assert!(!ours.requires_grad());
}

#[test]
fn channels_last_inputs_take_libtorchs_path() {
    let x = channels_last(&tied_activations([2, 8, 8, 8]));
    let ours = max_pool2d(&x, 2);
    assert!(bitwise_equal(&ours, &plain(&x, 2)));
    assert!(
        !ours.is_contiguous(),
        "a channels-last input stays channels-last"
    );
}
