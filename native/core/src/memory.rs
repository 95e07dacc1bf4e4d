//! Will a configuration fit in memory? Estimated before any work, so that a
//! run that cannot fit is refused with numbers and a way out instead of
//! being killed by the kernel (SIGKILL, no message) an hour into training.
//!
//! The estimate is deliberately simple and on the generous side:
//! - model state: weights, gradients, momentum and a host copy while a
//!   checkpoint is written (4 × parameters × 4 bytes);
//! - the dataset, resident as uint8 on the device;
//! - the peak of one step: the forward graphs alive at once (ST's outer loss
//!   keeps the benign, adversarial and collaborative graphs for one backward:
//!   3 × batch; PGD-AT and natural training 1 × batch; PGD evaluation keeps
//!   one graph of its batch) times the model's saved activations per sample,
//!   times 1.5 for libtorch's temporaries and allocator slack.
//!
//! Checked on CPU only: there the alternative is the OOM killer. On CUDA a
//! failed allocation is an error libtorch reports, which becomes
//! ERR_OUT_OF_MEMORY.

use crate::config::{MethodConfig, TrainConfig};
use crate::error::{CoreError, Result};

/// `ST_NATIVE_MEMORY_LIMIT`: a byte budget to use instead of what the
/// machine reports (a shared host, or tests).
pub const LIMIT_ENV: &str = "ST_NATIVE_MEMORY_LIMIT";

const FLOAT_BYTES: u64 = 4;
const SLACK_NUM: u64 = 3;
const SLACK_DEN: u64 = 2;

/// Bytes a training run needs at its peak, as estimated above.
pub fn training_bytes(
    cfg: &TrainConfig,
    parameters: i64,
    activations_per_sample: i64,
    dataset_bytes: u64,
) -> u64 {
    let graphs: u64 = match cfg.method {
        // Stacked branches of the outer loss (AWP: its inner method's).
        MethodConfig::St(_) | MethodConfig::Trades(_) | MethodConfig::Awp(_) => 3,
        MethodConfig::Mart(_) | MethodConfig::Collaborative(_) => 2,
        MethodConfig::PgdAt(_) | MethodConfig::Natural {} => 1,
    };
    let train_samples = graphs * cfg.batch_size as u64;
    let eval_samples = cfg.eval.batch_size as u64;
    let peak_samples = train_samples.max(eval_samples);
    let step = peak_samples
        .saturating_mul(activations_per_sample.max(0) as u64)
        .saturating_mul(FLOAT_BYTES)
        .saturating_mul(SLACK_NUM)
        / SLACK_DEN;
    let state = 4 * parameters.max(0) as u64 * FLOAT_BYTES;
    step.saturating_add(state).saturating_add(dataset_bytes)
}

fn meminfo_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// What a cgroup v2 limit leaves (containers, Slurm jobs), if one is set.
/// `memory.current` counts page cache the kernel reclaims before it kills
/// anyone; its inactive file pages are subtracted so a busy disk does not
/// look like a full memory.
fn cgroup_available() -> Option<u64> {
    let max = std::fs::read_to_string("/sys/fs/cgroup/memory.max").ok()?;
    let max: u64 = max.trim().parse().ok()?; // "max" (no limit) fails to parse
    let used: u64 = std::fs::read_to_string("/sys/fs/cgroup/memory.current")
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let reclaimable: u64 = std::fs::read_to_string("/sys/fs/cgroup/memory.stat")
        .ok()
        .and_then(|stat| {
            stat.lines()
                .find_map(|l| l.strip_prefix("inactive_file "))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0);
    Some(max.saturating_sub(used.saturating_sub(reclaimable)))
}

/// Bytes this process can still allocate on the host, as best known.
pub fn host_available() -> Option<u64> {
    if let Some(v) = std::env::var(LIMIT_ENV)
        .ok()
        .and_then(|v| v.trim().parse().ok())
    {
        return Some(v);
    }
    match (meminfo_available(), cgroup_available()) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn gib(bytes: u64) -> String {
    format!("{:.2} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// Refuses a CPU run whose estimate exceeds the memory available.
pub fn check_fits(needed: u64, cfg: &TrainConfig) -> Result<()> {
    let Some(available) = host_available() else {
        return Ok(());
    };
    if needed <= available {
        return Ok(());
    }
    Err(CoreError::OutOfMemory(format!(
        "this configuration needs about {} of memory (model {}, batchSize {}, eval.batchSize {}) but {} is available{}; lower batchSize or eval.batchSize",
        gib(needed),
        cfg.model,
        cfg.batch_size,
        cfg.eval.batch_size,
        gib(available),
        if std::env::var(LIMIT_ENV).is_ok() {
            format!(" (limit set by {LIMIT_ENV})")
        } else {
            String::new()
        }
    )))
}
