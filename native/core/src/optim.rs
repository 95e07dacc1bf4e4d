//! SGD with momentum, weight decay and Nesterov, exactly as PyTorch's
//! `torch.optim.SGD` computes it, with its state (the momentum buffers) in
//! our hands so that a run can be checkpointed and resumed bit for bit.
//! (tch's `nn::Sgd` wraps libtorch's C++ optimiser, whose state tch cannot
//! read or restore.) A test checks it against tch's optimiser step by step.
//!
//! Per parameter p with gradient g, as PyTorch (foreach off) does:
//!   g  <- g + wd * p                       (weight decay, when wd != 0)
//!   b  <- g (first step) | momentum * b + (1 - dampening) * g
//!   g  <- g + momentum * b (Nesterov) | b  (when momentum != 0)
//!   p  <- p - lr * g

use crate::config::OptimizerConfig;
use tch::{nn::VarStore, Tensor};

pub struct Sgd {
    /// The trainable variables, by name (sorted: a stable order for state).
    params: Vec<(String, Tensor)>,
    /// Momentum buffers, by the same index; None until the first step.
    buffers: Vec<Option<Tensor>>,
    momentum: f64,
    weight_decay: f64,
    nesterov: bool,
    lr: f64,
}

impl Sgd {
    pub fn new(vs: &VarStore, cfg: &OptimizerConfig) -> Self {
        let trainable: Vec<Tensor> = vs.trainable_variables();
        let mut params: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| trainable.iter().any(|v| v.data_ptr() == t.data_ptr()))
            .collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let buffers = params.iter().map(|_| None).collect();
        Sgd {
            params,
            buffers,
            momentum: cfg.momentum,
            weight_decay: cfg.weight_decay,
            nesterov: cfg.nesterov,
            lr: cfg.lr,
        }
    }

    pub fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    pub fn zero_grad(&mut self) {
        for (_, p) in &mut self.params {
            p.zero_grad();
        }
    }

    /// The gradients of the trainable variables (shallow: writing into them
    /// writes the gradients; the f16 gradient scaler unscales in place).
    pub fn grads(&self) -> Vec<Tensor> {
        self.params.iter().map(|(_, p)| p.grad()).collect()
    }

    /// zero_grad, backward of `loss`, step: tch's `backward_step`.
    pub fn backward_step(&mut self, loss: &Tensor) {
        self.zero_grad();
        loss.backward();
        self.step();
    }

    pub fn step(&mut self) {
        tch::no_grad(|| {
            for ((_, p), buf) in self.params.iter_mut().zip(self.buffers.iter_mut()) {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let mut d = if self.weight_decay != 0.0 {
                    &g + &*p * self.weight_decay
                } else {
                    g
                };
                if self.momentum != 0.0 {
                    let b = match buf.take() {
                        None => d.detach().copy(),
                        Some(mut b) => {
                            let _ = b.g_mul_scalar_(self.momentum).g_add_(&d);
                            b
                        }
                    };
                    d = if self.nesterov {
                        &d + &b * self.momentum
                    } else {
                        b.shallow_clone()
                    };
                    *buf = Some(b);
                }
                let _ = p.g_sub_(&(d * self.lr));
            }
        });
    }

    /// The momentum buffers by parameter name (those that exist yet).
    pub fn state(&self) -> Vec<(String, Tensor)> {
        self.params
            .iter()
            .zip(&self.buffers)
            .filter_map(|((name, _), b)| b.as_ref().map(|b| (name.clone(), b.shallow_clone())))
            .collect()
    }

    /// Restores buffers saved by `state` (copied onto each parameter's device
    /// and dtype). Unknown names or wrong shapes are errors.
    pub fn load_state(&mut self, state: Vec<(String, Tensor)>) -> Result<(), String> {
        for (name, t) in state {
            let Some(i) = self.params.iter().position(|(n, _)| n == &name) else {
                return Err(format!("momentum buffer for unknown parameter {name}"));
            };
            let p = &self.params[i].1;
            if t.size() != p.size() {
                return Err(format!(
                    "momentum buffer {name} has shape {:?}, parameter has {:?}",
                    t.size(),
                    p.size()
                ));
            }
            self.buffers[i] = Some(t.to_kind(p.kind()).to_device(p.device()));
        }
        Ok(())
    }
}
