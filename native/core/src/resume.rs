//! What it takes to continue a run exactly where its last completed epoch
//! ended: the weights and BatchNorm buffers, the optimiser's momentum
//! buffers, the epoch counter and the summary so far (best and last
//! evaluations). One self-contained file, `checkpoints/resume.safetensors`,
//! written atomically after `last`/`best` at the end of every epoch: it is
//! the commit point (a kill before it re-runs that epoch, which, being
//! deterministic, rewrites the same `last`/`best`).
//!
//! Random state needs no saving: the training stream is reseeded at every
//! epoch boundary from (seed, epoch) (see `train`), so the data order,
//! augmentation, dropout and the inner loop's noise of epoch e+1 are the
//! same whether or not the process stopped in between.

use crate::checkpoint;
use crate::ema::Ema;
use crate::error::{CoreError, Result};
use crate::events::TrainSummary;
use crate::optim::Sgd;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use tch::nn::VarStore;
use tch::Tensor;

pub const FILE_NAME: &str = "resume.safetensors";
const KEY_STATE: &str = "st_native.resume";
const MOMENTUM_PREFIX: &str = "optimizer.momentum_buffer.";
/// The weight average's tensors (a run with `ema`), under the model's names.
const EMA_PREFIX: &str = "ema.";

/// The run's position, kept in the resume file's metadata (JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResumePoint {
    pub model: String,
    pub seed: i64,
    pub epochs_completed: usize,
    /// The summary as it stood after `epochs_completed` epochs.
    pub summary: TrainSummary,
    /// The weight average's update count (a run with `ema`), else absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ema_updates: Option<u64>,
    /// The number of ranks of a data-parallel run, else absent (one): a
    /// resumed run must have as many (each rank's shard of an epoch, hence
    /// the training stream, depends on it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub world_size: Option<usize>,
    /// The extra data mixed into the batches (`ExtraFile::fingerprint`: its
    /// size, shape, sha256 and the fraction), a run with `extra`; else absent.
    /// Its position needs no saving: each epoch draws afresh from the
    /// reseeded stream (see `crate::sampler`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<String>,
}

pub fn save(
    path: &Path,
    vs: &VarStore,
    opt: &Sgd,
    ema: Option<&Ema>,
    point: &ResumePoint,
) -> Result<()> {
    if let Some(name) = checkpoint::first_nonfinite(vs) {
        return Err(CoreError::NonFiniteWeights {
            epoch: point.epochs_completed,
            tensor: name,
        });
    }
    let mut named: Vec<_> = vs.variables().into_iter().collect();
    named.extend(
        opt.state()
            .into_iter()
            .map(|(n, t)| (format!("{MOMENTUM_PREFIX}{n}"), t)),
    );
    if let Some(ema) = ema {
        named.extend(
            ema.state()
                .into_iter()
                .map(|(n, t)| (format!("{EMA_PREFIX}{n}"), t)),
        );
    }
    let json = serde_json::to_string(point).expect("resume point serialises");
    let metadata = HashMap::from([(KEY_STATE.to_string(), json)]);
    checkpoint::save_named(named, path, metadata)
}

fn bad(path: &Path, message: impl Into<String>) -> CoreError {
    CoreError::Checkpoint {
        path: path.display().to_string(),
        message: message.into(),
    }
}

/// Restores `vs`, `opt` and the weight average `ema` (a run with one) from
/// a resume file of a run of `model` with the extra data `extra` (its
/// fingerprint; none without).
pub fn load(
    path: &Path,
    vs: &mut VarStore,
    opt: &mut Sgd,
    ema: Option<&mut Ema>,
    model: &str,
    extra: Option<&str>,
) -> Result<ResumePoint> {
    let (tensors, metadata) = checkpoint::read_named(path)?;
    let point: ResumePoint = metadata
        .get(KEY_STATE)
        .ok_or_else(|| bad(path, "not a resume file (no st_native.resume metadata)"))
        .and_then(|j| {
            serde_json::from_str(j).map_err(|e| bad(path, format!("resume metadata: {e}")))
        })?;
    if point.model != model {
        return Err(bad(
            path,
            format!("a run of model {}, not {model}", point.model),
        ));
    }
    if point.extra.as_deref() != extra {
        let said = |x: Option<&str>| x.map_or("none".to_string(), |x| format!("[{x}]"));
        return Err(bad(
            path,
            format!(
                "a run with extra data {}, the config has {} (resume with the run's own config and file)",
                said(point.extra.as_deref()),
                said(extra)
            ),
        ));
    }
    let mut weights = HashMap::new();
    let mut averaged = HashMap::new();
    let mut momentum = Vec::new();
    for (name, t) in tensors {
        if let Some(param) = name.strip_prefix(MOMENTUM_PREFIX) {
            momentum.push((param.to_string(), t));
        } else if let Some(param) = name.strip_prefix(EMA_PREFIX) {
            averaged.insert(param.to_string(), t);
        } else {
            weights.insert(name, t);
        }
    }
    restore(path, vs, &weights)?;
    match (ema, point.ema_updates) {
        (Some(ema), Some(updates)) => {
            restore(path, &mut ema.model.vs, &averaged)?;
            ema.updates = updates;
        }
        (Some(_), None) => {
            return Err(bad(
                path,
                "a run without weight averaging; the config has `ema` (resume with the run's own config)",
            ))
        }
        (None, Some(_)) => {
            return Err(bad(
                path,
                "a run with weight averaging (`ema`); the config has none (resume with the run's own config)",
            ))
        }
        (None, None) => {}
    }
    opt.load_state(momentum).map_err(|m| bad(path, m))?;
    Ok(point)
}

/// Copies `weights` into `vs`, which must have exactly those tensors.
fn restore(path: &Path, vs: &mut VarStore, weights: &HashMap<String, Tensor>) -> Result<()> {
    let wanted = vs.variables();
    if weights.len() != wanted.len() {
        return Err(bad(
            path,
            format!(
                "{} model tensors, the model has {}",
                weights.len(),
                wanted.len()
            ),
        ));
    }
    tch::no_grad(|| {
        for (name, dst) in wanted {
            let src = weights
                .get(&name)
                .ok_or_else(|| bad(path, format!("missing tensor {name}")))?;
            if src.size() != dst.size() {
                return Err(bad(
                    path,
                    format!(
                        "tensor {name} has shape {:?}, model expects {:?}",
                        src.size(),
                        dst.size()
                    ),
                ));
            }
            let mut dst = dst;
            dst.f_copy_(&src.to_kind(dst.kind()).to_device(dst.device()))
                .map_err(|e| bad(path, format!("{name}: {e}")))?;
        }
        Ok(())
    })
}
