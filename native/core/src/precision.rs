//! Reduced precision and memory layout (`precision`, `memoryFormat`).
//!
//! - bf16/f16: the model's forward runs under libtorch autocast (the C++
//!   switches tch lacks, csrc/autocast.cpp) with f32 master weights; the
//!   logits leave the scope as f32, so everything downstream (ST's selection
//!   and losses, the perturbations and their projection, attacks) is f32.
//!   f16 training adds a dynamic gradient scaler (`GradScaler`).
//! - tf32: CUDA's matmul/cuDNN allow-TF32 flags; on CPU a no-op.
//! - channels_last: NHWC strides with NCHW shapes, for 4-d inputs and weights.
//!
//! Autocast state is thread-local in libtorch: a scope is entered and left on
//! the thread that runs the forward.

use crate::config::{MemoryFormat, Precision};
use crate::models::{Classifier, Mode};
use crate::optim::Sgd;
// The layout helpers live below models (nn/layout.rs), which use them too.
pub use crate::nn::layout::{channels_last, is_channels_last};
use tch::{nn::VarStore, Device, Kind, Tensor};

mod ffi {
    use std::os::raw::c_int;
    extern "C" {
        pub fn st_autocast_enter(
            cuda: c_int,
            enabled: c_int,
            half: c_int,
            prev_enabled: *mut c_int,
            prev_half: *mut c_int,
        ) -> c_int;
        pub fn st_autocast_exit(cuda: c_int, prev_enabled: c_int, prev_half: c_int) -> c_int;
        pub fn st_autocast_is_enabled(cuda: c_int) -> c_int;
        pub fn st_set_allow_tf32(allow: c_int) -> c_int;
        pub fn st_allow_tf32_cublas() -> c_int;
        pub fn st_allow_tf32_cudnn() -> c_int;
    }
}

/// The autocast dtype of a precision, or None when it runs without autocast.
pub fn autocast_kind(p: Precision) -> Option<Kind> {
    match p {
        Precision::Bf16 => Some(Kind::BFloat16),
        Precision::F16 => Some(Kind::Half),
        Precision::F32 | Precision::Tf32 => None,
    }
}

/// An open autocast scope; closing it (drop) restores the previous state.
struct Scope {
    cuda: i32,
    prev_enabled: i32,
    prev_half: i32,
}

impl Scope {
    fn enter(device: Device, kind: Kind) -> Scope {
        let cuda = i32::from(device.is_cuda());
        let half = i32::from(kind == Kind::Half);
        let (mut prev_enabled, mut prev_half) = (0, 0);
        // SAFETY: plain ints and two out-pointers to live locals; the shim
        // catches every C++ exception.
        let rc =
            unsafe { ffi::st_autocast_enter(cuda, 1, half, &mut prev_enabled, &mut prev_half) };
        assert_eq!(rc, 0, "libtorch refused to enable autocast");
        Scope {
            cuda,
            prev_enabled,
            prev_half,
        }
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        // SAFETY: as in `enter`.
        unsafe { ffi::st_autocast_exit(self.cuda, self.prev_enabled, self.prev_half) };
    }
}

/// Runs `f` under autocast for `device` when `p` asks for it (bf16/f16);
/// otherwise runs it as is. The scope closes even if `f` panics.
pub fn autocast<T>(p: Precision, device: Device, f: impl FnOnce() -> T) -> T {
    match autocast_kind(p) {
        Some(kind) => {
            let _scope = Scope::enter(device, kind);
            f()
        }
        None => f(),
    }
}

/// Whether autocast is on for `device` on this thread (for tests).
pub fn autocast_enabled(device: Device) -> bool {
    // SAFETY: no pointers; exceptions caught in the shim.
    unsafe { ffi::st_autocast_is_enabled(i32::from(device.is_cuda())) != 0 }
}

/// Allows TF32 in CUDA matmuls and cuDNN convolutions (`tf32`). Called only
/// for `tf32`, so `f32` keeps libtorch's defaults (and today's numbers).
/// Process-wide; no effect on CPU kernels.
pub fn allow_tf32() {
    set_allow_tf32(true);
}

/// Sets both TF32 flags (CUDA matmuls and cuDNN convolutions). libtorch
/// starts with matmuls off and cuDNN on (as PyTorch), so strict f32 on CUDA
/// needs `set_allow_tf32(false)`; the device check measures both.
pub fn set_allow_tf32(allow: bool) {
    // SAFETY: no pointers; exceptions caught in the shim.
    unsafe { ffi::st_set_allow_tf32(i32::from(allow)) };
}

/// Whether CUDA matmuls may use TF32 now (for tests).
pub fn tf32_allowed() -> bool {
    // SAFETY: no pointers; exceptions caught in the shim.
    unsafe { ffi::st_allow_tf32_cublas() != 0 }
}

/// Whether cuDNN convolutions may use TF32 now (libtorch's default: yes).
pub fn tf32_allowed_cudnn() -> bool {
    // SAFETY: no pointers; exceptions caught in the shim.
    unsafe { ffi::st_allow_tf32_cudnn() != 0 }
}

/// Puts every 4-d variable (conv weights) of `vs` in `format`, in place
/// (the values do not change, nor does the optimiser's view of them).
pub fn apply_memory_format(vs: &VarStore, format: MemoryFormat) {
    if format == MemoryFormat::Contiguous {
        return;
    }
    tch::no_grad(|| {
        for (_, mut v) in vs.variables() {
            if v.dim() == 4 {
                let cl = channels_last(&v);
                v.set_data(&cl);
            }
        }
    });
}

/// Dynamic loss scaling for f16 training, as `torch.amp.GradScaler`: the
/// loss is multiplied by `scale` before backward (so small f16 gradients do
/// not flush to zero), the gradients are divided by it before the step; a
/// step with any non-finite gradient is skipped and the scale halves; after
/// `growth_interval` finite steps in a row it doubles.
#[derive(Debug, Clone)]
pub struct GradScaler {
    scale: f64,
    growth_interval: u32,
    finite_streak: u32,
}

impl GradScaler {
    pub const INIT_SCALE: f64 = 65_536.0;
    pub const GROWTH_FACTOR: f64 = 2.0;
    pub const BACKOFF_FACTOR: f64 = 0.5;
    pub const GROWTH_INTERVAL: u32 = 2000;

    pub fn new() -> Self {
        Self::with_growth_interval(Self::GROWTH_INTERVAL)
    }

    /// A scaler that grows after `interval` finite steps (tests use small ones).
    pub fn with_growth_interval(interval: u32) -> Self {
        GradScaler {
            scale: Self::INIT_SCALE,
            growth_interval: interval.max(1),
            finite_streak: 0,
        }
    }

    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// zero_grad, backward of `loss * scale`, unscale, then the optimiser's
    /// step only if every gradient is finite; updates the scale. Returns
    /// whether the step was taken.
    pub fn backward_step(&mut self, opt: &mut Sgd, loss: &Tensor) -> bool {
        let no_sync = |_: &[Tensor]| Ok(());
        self.backward_sync_step(opt, loss, &no_sync)
            .expect("no synchronisation, no error")
    }

    /// `backward_step` with `sync` run on the (scaled) gradients between
    /// backward and unscaling: data-parallel runs average them there, so
    /// every rank sees the same gradients and takes the same decision.
    pub fn backward_sync_step(
        &mut self,
        opt: &mut Sgd,
        loss: &Tensor,
        sync: &dyn Fn(&[Tensor]) -> crate::error::Result<()>,
    ) -> crate::error::Result<bool> {
        opt.zero_grad();
        (loss * self.scale).backward();
        sync(&opt.grads())?;
        let inv = 1.0 / self.scale;
        let mut finite = true;
        tch::no_grad(|| {
            for mut g in opt.grads() {
                if g.defined() {
                    let _ = g.g_mul_scalar_(inv);
                    // One host sync per tensor; f16 runs are CUDA runs, where
                    // the scaled model is large and this is cheap by comparison.
                    finite &= bool::try_from(g.isfinite().all()).unwrap_or(false);
                }
            }
        });
        if finite {
            opt.step();
        }
        self.update(finite);
        Ok(finite)
    }

    fn update(&mut self, finite: bool) {
        if finite {
            self.finite_streak += 1;
            if self.finite_streak >= self.growth_interval {
                self.scale *= Self::GROWTH_FACTOR;
                self.finite_streak = 0;
            }
        } else {
            self.scale *= Self::BACKOFF_FACTOR;
            self.finite_streak = 0;
        }
    }
}

impl Default for GradScaler {
    fn default() -> Self {
        Self::new()
    }
}

/// A classifier run at a precision and layout: inputs converted to the
/// layout, the forward under autocast, the logits returned as f32 when the
/// forward ran in bf16/f16 (so selection, losses and perturbations are f32).
pub struct Precise<'a> {
    pub net: &'a dyn Classifier,
    pub precision: Precision,
    pub format: MemoryFormat,
}

// SAFETY of Send: a `Precise` borrows the net for one step or one evaluation
// on the calling thread and is never sent to another one.
unsafe impl Send for Precise<'_> {}

impl Classifier for Precise<'_> {
    fn forward(&self, xs: &Tensor, mode: &Mode) -> Tensor {
        let xs = match self.format {
            MemoryFormat::ChannelsLast => channels_last(xs),
            MemoryFormat::Contiguous => xs.shallow_clone(),
        };
        let out = autocast(self.precision, xs.device(), || self.net.forward(&xs, mode));
        match autocast_kind(self.precision) {
            Some(_) if out.kind() != Kind::Float => out.to_kind(Kind::Float),
            _ => out,
        }
    }
}

/// Whether `p` and `format` change nothing (the defaults' exact numerics).
pub fn is_plain(p: Precision, format: MemoryFormat) -> bool {
    matches!(p, Precision::F32 | Precision::Tf32) && format == MemoryFormat::Contiguous
}
