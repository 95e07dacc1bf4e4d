//! A channels-last copy of an evaluated network's weights, for the forward
//! passes that need no gradient where an attack asks for it (Square, which
//! is gradient-free and nearly all forward passes).
//!
//! Why: on the CPU, libtorch's convolutions run faster on channels-last
//! weights and inputs, but their backward passes with respect to the input
//! ran slower there. Measured on the 2-core machine (SmallCNN trained one
//! epoch with ST, L-inf eps 0.2, 2 threads): Square on 100 digits took
//! 49.6 s with the contiguous weights, 46.8 s with only the inputs
//! channels-last, 34.7 s with a channels-last copy; inside AutoAttack on 200
//! digits the gradient stages were slower with channels-last weights
//! (APGD-T 40.4 s against 34.3 s, FAB-T 63.3 s against 59.4 s). So the
//! copy serves Square alone, and every pass that scores a result (clean
//! accuracy, whether an attack's output fools the model) stays on the
//! contiguous weights: the numbers a PyTorch model re-scores exactly.
//!
//! The two layouts give the same logits up to float rounding (within 1e-5
//! here); a Square run through the copy may therefore accept a different
//! candidate than one through the contiguous weights where two margins tie
//! to the last bits, as a run with another batch size may.

use super::{build_model, Classifier, Mode};
use crate::error::{CoreError, Result};
use crate::precision::channels_last;
use std::cell::Cell;
use tch::nn::VarStore;
use tch::{Device, Tensor};

thread_local! {
    /// Whether this thread's gradient-free passes go to the copy.
    static ON_COPY: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with this thread's forward passes in eval mode on inputs that
/// need no gradient sent to the channels-last copy, where the network has
/// one (`WithForwardCopy`); other networks are not affected.
pub fn on_forward_copy<T>(f: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            ON_COPY.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(ON_COPY.with(|c| c.replace(true)));
    f()
}

/// The network `name` with the weights of `vs` (loaded, frozen), its
/// four-dimensional weights laid out channels-last: the copy's inputs are
/// made channels-last on the way in.
pub fn channels_last_copy(
    name: &str,
    num_classes: i64,
    input_shape: [i64; 3],
    vs: &VarStore,
) -> Result<Box<dyn Classifier>> {
    let mut copy = build_model(name, num_classes, input_shape, vs.device())?;
    copy.vs
        .copy(vs)
        .map_err(|e| CoreError::Device(format!("copying {name}'s weights channels-last: {e}")))?;
    copy.vs.freeze();
    crate::precision::apply_memory_format(&copy.vs, crate::config::MemoryFormat::ChannelsLast);
    Ok(Box::new(ChannelsLastInputs(copy.net)))
}

struct ChannelsLastInputs(Box<dyn Classifier>);

impl Classifier for ChannelsLastInputs {
    fn forward(&self, xs: &Tensor, mode: &Mode) -> Tensor {
        self.0.forward(&channels_last(xs), mode)
    }
}

/// A network with a channels-last copy for gradient-free passes inside
/// `on_forward_copy`; everything else runs on the network itself.
pub struct WithForwardCopy {
    net: Box<dyn Classifier>,
    copy: Box<dyn Classifier>,
}

impl WithForwardCopy {
    /// `net` with `copy` (the same network, e.g. from `channels_last_copy`
    /// behind the same input normalisation) on the CPU; `net` alone on
    /// other devices, where the measurement above says nothing.
    pub fn on_cpu(
        net: Box<dyn Classifier>,
        device: Device,
        copy: impl FnOnce() -> Result<Box<dyn Classifier>>,
    ) -> Result<Box<dyn Classifier>> {
        if device != Device::Cpu {
            return Ok(net);
        }
        Ok(Box::new(WithForwardCopy { net, copy: copy()? }))
    }
}

impl Classifier for WithForwardCopy {
    fn forward(&self, xs: &Tensor, mode: &Mode) -> Tensor {
        let gradient_free = matches!(mode, Mode::Eval) && !xs.requires_grad();
        if gradient_free && ON_COPY.with(Cell::get) {
            self.copy.forward(xs, mode)
        } else {
            self.net.forward(xs, mode)
        }
    }
}
