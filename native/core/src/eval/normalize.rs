//! Per-channel input normalisation folded in front of a model.

use crate::error::{CoreError, Result};
use crate::models::{Classifier, Mode};
use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

/// Per-channel input normalisation folded in front of the model, for models
/// trained on normalised inputs: the attacks still work on [0,1] images and
/// the model sees `(x - mean) / std`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Normalization {
    /// One value, or one per channel.
    pub mean: Vec<f64>,
    /// One value, or one per channel; each > 0.
    pub std: Vec<f64>,
}

impl Normalization {
    pub fn validate(&self, channels: i64) -> Result<()> {
        for (field, v) in [("normalize.mean", &self.mean), ("normalize.std", &self.std)] {
            if v.len() != 1 && v.len() as i64 != channels {
                let expected = if channels == 1 {
                    "expected 1 value (the images have one channel)".to_string()
                } else {
                    format!("expected 1 value or {channels} (one per channel)")
                };
                return Err(CoreError::config(
                    field,
                    format!("{expected}, got {}", v.len()),
                ));
            }
            if v.iter().any(|x| !x.is_finite()) {
                return Err(CoreError::config(field, "expected finite numbers"));
            }
        }
        if self.std.iter().any(|&s| s <= 0.0) {
            return Err(CoreError::config("normalize.std", "expected numbers > 0"));
        }
        Ok(())
    }
}

/// `net` behind a fixed per-channel normalisation.
pub struct Normalized {
    net: Box<dyn Classifier>,
    mean: Tensor,
    std: Tensor,
}

impl Normalized {
    pub fn new(net: Box<dyn Classifier>, n: &Normalization, channels: i64, device: Device) -> Self {
        let per_channel = |v: &[f64]| {
            let full: Vec<f32> = if v.len() == 1 {
                vec![v[0] as f32; channels as usize]
            } else {
                v.iter().map(|&x| x as f32).collect()
            };
            Tensor::from_slice(&full)
                .view([1, channels, 1, 1])
                .to_device(device)
        };
        Normalized {
            net,
            mean: per_channel(&n.mean),
            std: per_channel(&n.std),
        }
    }
}

impl Classifier for Normalized {
    fn forward(&self, xs: &Tensor, mode: &Mode) -> Tensor {
        self.net.forward(&((xs - &self.mean) / &self.std), mode)
    }
}
