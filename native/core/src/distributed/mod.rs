//! Data-parallel training on libtorch's own distributed engine (c10d):
//! `torchrun` or Slurm start N processes (`launcher`), which join one
//! process group (`process_group`: Gloo on CPU, NCCL on CUDA). Here: what
//! the training loop asks of it, as `DistributedDataParallel` does it:
//!
//! - `broadcast_variables`: every parameter and buffer from rank 0 at the
//!   start, so all ranks hold the same weights whatever they loaded;
//! - `shard`: rank r's contiguous part of each global batch (the epoch's
//!   permutation is the same on every rank: same seed);
//! - `average_gradients`: after backward, before the optimiser step, the
//!   gradients flattened into buckets of about 25 MB, one sum all-reduce per
//!   bucket, each rank's share weighted by its part of the global batch (so
//!   the result is the gradient of the global batch's mean loss; with equal
//!   parts, the plain average over ranks);
//! - `any`: a vote (one scalar all-reduce), so that a stop requested on one
//!   rank stops all of them at the same step.
//!
//! BatchNorm statistics stay per rank, as DataParallel's per device.

pub mod launcher;
pub mod process_group;

pub use launcher::{first_host, Launch, Launcher};
pub use process_group::{nccl_available, Backend, ProcessGroup};

use crate::error::{CoreError, Result};
use std::ops::Range;
use std::time::Duration;
use tch::{nn::VarStore, Device, Kind, Tensor};

/// Gradient bucket size (DistributedDataParallel's default `bucket_cap_mb`).
pub const BUCKET_BYTES: usize = 25 * 1024 * 1024;

/// How long a collective (and the rendezvous) may wait for the other ranks
/// before failing, unless ST_DIST_TIMEOUT (seconds) says otherwise: c10d's
/// default of 30 minutes, long enough for rank 0's evaluation between
/// epochs, while the others wait.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

/// The timeout from ST_DIST_TIMEOUT (seconds, > 0), else the default.
pub fn timeout_from_env() -> Result<Duration> {
    match std::env::var("ST_DIST_TIMEOUT") {
        Err(_) => Ok(DEFAULT_TIMEOUT),
        Ok(v) => match v.trim().parse::<f64>() {
            Ok(s) if s > 0.0 && s.is_finite() => Ok(Duration::from_secs_f64(s)),
            _ => Err(CoreError::Distributed(format!(
                "ST_DIST_TIMEOUT: expected seconds > 0, got \"{v}\""
            ))),
        },
    }
}

/// Rank `rank`'s part `(start, len)` of a global batch of `total` samples
/// split over `world` ranks: contiguous, sizes differing by at most one
/// (the first `total % world` ranks take one more).
pub fn shard(total: i64, rank: usize, world: usize) -> (i64, i64) {
    let (w, r) = (world as i64, rank as i64);
    let base = total / w;
    let extra = total % w;
    let start = r * base + r.min(extra);
    (start, base + i64::from(r < extra))
}

/// Consecutive runs of `numels` whose bytes (`elem_bytes` each) stay within
/// `cap` (a tensor larger than `cap` gets a bucket of its own).
pub fn buckets(numels: &[i64], elem_bytes: usize, cap: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0usize;
    for (i, &n) in numels.iter().enumerate() {
        let b = n.max(0) as usize * elem_bytes;
        if i > start && bytes + b > cap {
            out.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += b;
    }
    if start < numels.len() {
        out.push(start..numels.len());
    }
    out
}

/// This process's place in a data-parallel job and its process group.
pub struct DataParallel {
    pub launch: Launch,
    pub group: ProcessGroup,
}

impl DataParallel {
    /// Joins the job the launcher variables describe, or None without one.
    /// On CUDA the rank uses `cuda:LOCAL_RANK` through NCCL (or `cuda:0`
    /// when it sees a single device: Slurm's `--gpus-per-task=1` binds one
    /// GPU to each task); on CPU, Gloo. Returns the device the rank trains on.
    pub fn join(device: Device) -> Result<Option<(DataParallel, Device)>> {
        let Some(launch) = launcher::from_env()? else {
            return Ok(None);
        };
        let (backend, device) = match device {
            Device::Cuda(_) => {
                let n = tch::Cuda::device_count() as usize;
                if n == 1 {
                    (Backend::Nccl, Device::Cuda(0))
                } else if launch.local_rank >= n {
                    return Err(CoreError::Distributed(format!(
                        "rank {}: local rank {} has no CUDA device (this node has {n}); start at most {n} ranks per node",
                        launch.rank, launch.local_rank
                    )));
                } else {
                    (Backend::Nccl, Device::Cuda(launch.local_rank))
                }
            }
            other => (Backend::Gloo, other),
        };
        let group = ProcessGroup::connect(&launch, backend, timeout_from_env()?)?;
        Ok(Some((DataParallel { launch, group }, device)))
    }

    pub fn rank(&self) -> usize {
        self.group.rank()
    }

    pub fn world_size(&self) -> usize {
        self.group.world_size()
    }

    /// Rank 0: the one that writes files and reports.
    pub fn is_main(&self) -> bool {
        self.rank() == 0
    }

    /// Copies every variable of `vs` (parameters and buffers, by name
    /// order) from rank 0 to all ranks.
    pub fn broadcast_variables(&self, vs: &VarStore) -> Result<()> {
        let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        // Contiguous copies travel (channels-last or views would not);
        // copied back into the variables afterwards.
        let bufs: Vec<Tensor> = tch::no_grad(|| vars.iter().map(|(_, v)| v.contiguous()).collect());
        self.group.broadcast(&bufs, 0)?;
        tch::no_grad(|| {
            for ((_, v), b) in vars.iter().zip(&bufs) {
                v.shallow_clone().copy_(b);
            }
        });
        Ok(())
    }

    /// Replaces each gradient by the sum over ranks of `weight` × the
    /// rank's gradient (`weight`: this rank's part of the global batch,
    /// `len / total`), through one all-reduce per ~25 MB bucket. Undefined
    /// gradients (a parameter no loss used) count as zeros and stay
    /// undefined.
    pub fn average_gradients(&self, grads: &[Tensor], weight: f64) -> Result<()> {
        let numels: Vec<i64> = grads.iter().map(|g| g.numel() as i64).collect();
        for range in buckets(&numels, 4, BUCKET_BYTES) {
            let part = &grads[range];
            let Some(like) = part.iter().find(|g| g.defined()) else {
                continue;
            };
            let (kind, device) = (like.kind(), like.device());
            let flat = tch::no_grad(|| {
                let pieces: Vec<Tensor> = part
                    .iter()
                    .map(|g| {
                        if g.defined() {
                            g.reshape([-1]) * weight
                        } else {
                            Tensor::zeros([0], (kind, device))
                        }
                    })
                    .collect();
                Tensor::cat(&pieces, 0)
            });
            self.group.all_reduce_sum(std::slice::from_ref(&flat))?;
            tch::no_grad(|| {
                let mut offset = 0;
                for g in part.iter().filter(|g| g.defined()) {
                    let n = g.numel() as i64;
                    g.shallow_clone()
                        .copy_(&flat.narrow(0, offset, n).view_as(g));
                    offset += n;
                }
            });
        }
        Ok(())
    }

    /// Whether `flag` is true on any rank (every rank gets the same answer).
    pub fn any(&self, flag: bool, device: Device) -> Result<bool> {
        let vote = Tensor::from_slice(&[f32::from(u8::from(flag))]).to_device(device);
        self.group.all_reduce_sum(std::slice::from_ref(&vote))?;
        Ok(vote.to_kind(Kind::Double).double_value(&[0]) > 0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_the_batch_once_in_order_with_sizes_within_one() {
        for total in 1..40i64 {
            for world in 1..6usize {
                let parts: Vec<(i64, i64)> = (0..world).map(|r| shard(total, r, world)).collect();
                let mut next = 0;
                for &(start, len) in &parts {
                    assert_eq!(start, next, "total {total} world {world}");
                    next += len;
                }
                assert_eq!(next, total);
                let (min, max) = parts
                    .iter()
                    .fold((i64::MAX, 0), |(a, b), p| (a.min(p.1), b.max(p.1)));
                assert!(max - min <= 1);
            }
        }
        assert_eq!(shard(10, 0, 4), (0, 3));
        assert_eq!(shard(10, 3, 4), (8, 2));
    }

    #[test]
    fn buckets_hold_consecutive_tensors_up_to_the_cap() {
        assert_eq!(buckets(&[2, 2, 2, 2], 4, 16), vec![0..2, 2..4]);
        // A tensor over the cap gets its own bucket.
        assert_eq!(buckets(&[1, 10, 1], 4, 16), vec![0..1, 1..2, 2..3]);
        assert_eq!(buckets(&[1, 1, 1], 4, 1024), vec![0..3]);
        assert!(buckets(&[], 4, 16).is_empty());
        // ResNet-18's 11.2 M f32 gradients: 45 MB in about two 25 MB buckets.
        let n = buckets(&[5_600_000, 5_600_000, 10], 4, BUCKET_BYTES).len();
        assert_eq!(n, 2);
    }
}
