//! The checkpoint files of a run's folder (`last`, `best`, `interrupted`),
//! each written atomically with the run's metadata and announced by an
//! event, and the end of a stopped run.

use crate::checkpoint::{self, SaveMeta};
use crate::config::TrainConfig;
use crate::error::Result;
use crate::events::{CheckpointKind, Event, EventSink, RunStatus, TrainSummary};
use std::path::PathBuf;
use tch::nn::VarStore;

pub(super) struct Checkpoints<'a> {
    cfg: &'a TrainConfig,
    out_dir: PathBuf,
}

fn file_stem(kind: CheckpointKind) -> &'static str {
    match kind {
        CheckpointKind::Last => "last",
        CheckpointKind::Best => "best",
        CheckpointKind::Interrupted => "interrupted",
    }
}

impl<'a> Checkpoints<'a> {
    pub fn new(cfg: &'a TrainConfig) -> Self {
        Checkpoints {
            cfg,
            out_dir: PathBuf::from(&cfg.out_dir),
        }
    }

    /// Writes `vs` as `kind`, recorded as the weights after `trained`
    /// epochs, and announces it as `epoch`'s checkpoint (`tied`: see
    /// `Event::Checkpoint`). Returns the file's path.
    pub fn write(
        &self,
        vs: &VarStore,
        kind: CheckpointKind,
        epoch: usize,
        trained: usize,
        tied: bool,
        sink: &mut dyn EventSink,
    ) -> Result<String> {
        let stem = file_stem(kind);
        let path = self.out_dir.join(format!("{stem}.safetensors"));
        let meta = SaveMeta {
            model: &self.cfg.model,
            num_classes: self.cfg.num_classes,
            epoch: trained,
            seed: self.cfg.seed,
            kind: stem,
        };
        checkpoint::save(vs, &path, &meta)?;
        let path = path.display().to_string();
        sink.emit(Event::Checkpoint {
            epoch,
            kind,
            path: path.clone(),
            tied,
        });
        Ok(path)
    }

    /// Writes the weight average `vs` as `ema-<kind>.safetensors` (same
    /// tensor names and metadata as the raw file, kind `ema-<kind>`), beside
    /// the raw `kind` file. Returns the file's path.
    pub fn write_ema(&self, vs: &VarStore, kind: CheckpointKind, trained: usize) -> Result<String> {
        let stem = format!("ema-{}", file_stem(kind));
        let path = self.out_dir.join(format!("{stem}.safetensors"));
        let meta = SaveMeta {
            model: &self.cfg.model,
            num_classes: self.cfg.num_classes,
            epoch: trained,
            seed: self.cfg.seed,
            kind: &stem,
        };
        checkpoint::save(vs, &path, &meta)?;
        Ok(path.display().to_string())
    }

    /// Ends the run as stopped during `epoch`: the weights as they are
    /// (after `trained` epochs) go to `interrupted`, which becomes the
    /// summary's last checkpoint.
    pub fn interrupt(
        &self,
        vs: &VarStore,
        summary: &mut TrainSummary,
        sink: &mut dyn EventSink,
        epoch: usize,
        trained: usize,
    ) -> Result<()> {
        let path = self.write(vs, CheckpointKind::Interrupted, epoch, trained, false, sink)?;
        summary.status = RunStatus::Cancelled;
        summary.last_checkpoint = Some(path);
        Ok(())
    }
}
