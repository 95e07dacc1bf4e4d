//! What an evaluation of a checkpoint under a list of attacks asks for
//! (JSON from TS), and its validation.

use super::normalize::Normalization;
use crate::attacks::AttackSpec;
use crate::config::{DeviceChoice, EvalConfig};
use crate::error::{CoreError, Result};
use serde::{Deserialize, Serialize};

/// The run a checkpoint came from: what the `run` attack replays.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunEval {
    /// The run's evaluation settings (its config's `eval`).
    pub eval: EvalConfig,
    /// The run's seed and the epoch the checkpoint ends; the checkpoint's own
    /// metadata wins where it records them.
    pub seed: i64,
    pub epoch: usize,
}

/// One evaluation of a checkpoint under a list of attacks (JSON from TS).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EvalRequest {
    /// A safetensors file: ours, or a PyTorch state dict of `model`.
    pub checkpoint: String,
    #[cfg_attr(test, ts(as = "crate::config::ts_contract::ModelName"))]
    pub model: String,
    pub num_classes: i64,
    /// In order; `clean` is computed for the worst case even when not listed.
    pub attacks: Vec<AttackSpec>,
    /// Images per batch (halved, with a notice, when the device runs out of memory).
    pub batch_size: i64,
    /// The first N images of the split; null = all.
    pub max_samples: Option<i64>,
    /// Seeds every random start (batch `b`'s restart `r` draws from a seed
    /// mixed from this, the batch's first index and `r`).
    pub seed: i64,
    pub normalize: Option<Normalization>,
    pub device: DeviceChoice,
    /// Write the adversarial inputs (float32, as attacked) here.
    pub save_adversarial: Option<String>,
    /// Needed by the `run` attack.
    pub run: Option<RunEval>,
    /// AutoAttacks save their per-point state at
    /// `<this>.<attack>.autoattack-state.safetensors` and resume from it
    /// (null: not resumable).
    pub resume_prefix: Option<String>,
    /// Which images these are (dataset and split), recorded in the
    /// resumable state's fingerprint beside a hash of the images themselves.
    #[serde(default)]
    pub data_source: Option<DataSource>,
}

/// Where evaluated images come from, as the caller names them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DataSource {
    pub dataset: String,
    pub split: String,
}

/// SHA-256 of the first `n` images and labels (with their shape), so that a
/// state saved on one image set never resumes on another of the same size.
pub fn images_digest(images: &[u8], labels: &[u8], shape: [i64; 3], n: i64) -> String {
    use sha2::{Digest, Sha256};
    let per_image = shape.iter().product::<i64>() as usize;
    let n = n.max(0) as usize;
    let mut h = Sha256::new();
    for d in shape {
        h.update((d as u64).to_le_bytes());
    }
    h.update((n as u64).to_le_bytes());
    h.update(&images[..(n * per_image).min(images.len())]);
    h.update(&labels[..n.min(labels.len())]);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

const MAX_ATTACKS: usize = 64;

impl EvalRequest {
    pub fn validate(&self) -> Result<()> {
        if !(2..=100_000).contains(&self.num_classes) {
            return Err(CoreError::config(
                "numClasses",
                "expected an integer in [2, 100000]",
            ));
        }
        if !(1..=crate::config::limits::MAX_BATCH).contains(&self.batch_size) {
            return Err(CoreError::config(
                "batchSize",
                "expected an integer in [1, 65536]",
            ));
        }
        if self
            .max_samples
            .is_some_and(|m| !(1..=crate::config::limits::MAX_EVAL_SAMPLES).contains(&m))
        {
            return Err(CoreError::config(
                "maxSamples",
                "expected null or an integer in [1, 10000000]",
            ));
        }
        if self.attacks.is_empty() || self.attacks.len() > MAX_ATTACKS {
            return Err(CoreError::config("attacks", "expected 1 to 64 attacks"));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, a) in self.attacks.iter().enumerate() {
            let at = format!("attacks[{i}]");
            a.validate(&at)?;
            a.validate_classes(&at, self.num_classes)?;
            if !seen.insert(a.name()) {
                return Err(CoreError::config(
                    format!("{at}.name"),
                    format!("\"{}\" is used twice", a.name()),
                ));
            }
            if matches!(a, AttackSpec::Run { .. }) {
                match &self.run {
                    None => return Err(CoreError::config(
                        at,
                        "the run's own evaluation needs the run's settings (evaluate a run folder)",
                    )),
                    Some(r) => r.eval.validate("run.eval")?,
                }
            }
        }
        Ok(())
    }
}
