//! What a run is handed (the dataset buffers) and everything that can be
//! checked about it before it starts.

use crate::checkpoint;
use crate::config::TrainConfig;
use crate::device;
use crate::error::{CoreError, Result};
use crate::extra::ExtraFile;
use crate::memory;
use crate::models::build_model;
use std::path::Path;

/// Raw dataset buffers, as TS hands them over (validated on upload).
pub struct TrainData<'a> {
    pub train_images: &'a [u8],
    pub train_labels: &'a [u8],
    pub test_images: &'a [u8],
    pub test_labels: &'a [u8],
    /// Optional validation split (images, labels) for model selection; the
    /// best checkpoint is then evaluated once on the test split at the end.
    pub validation: Option<(&'a [u8], &'a [u8])>,
    /// C, H, W of every image.
    pub shape: [i64; 3],
}

/// Sample counts of a run's splits, for checks that need no pixels.
#[derive(Debug, Clone, Copy)]
pub struct DataSizes {
    pub train: i64,
    pub test: i64,
    pub validation: Option<i64>,
}

impl TrainData<'_> {
    pub fn sizes(&self) -> DataSizes {
        DataSizes {
            train: self.train_labels.len() as i64,
            test: self.test_labels.len() as i64,
            validation: self.validation.map(|(_, l)| l.len() as i64),
        }
    }
}

/// Everything that can be checked before a run starts, without touching its
/// data: the config's ranges, the values that depend on the data's shape and
/// size, the memory the run needs (CPU), the device, and the initial
/// checkpoint. The binding calls it (with `check_memory`) before the run
/// folder exists, so a run that cannot start leaves nothing behind; `train`
/// calls it again without the memory check, whose reading would by then
/// include the run's own data.
pub fn preflight(
    cfg: &TrainConfig,
    shape: [i64; 3],
    sizes: DataSizes,
    check_memory: bool,
) -> Result<tch::Device> {
    cfg.validate()?;
    let [_, h, w] = shape;
    if cfg.augment.random_crop_padding > h.min(w) {
        return Err(CoreError::config(
            "augment.randomCropPadding",
            format!(
                "{} is larger than the images ({h}×{w}); expected at most {}",
                cfg.augment.random_crop_padding,
                h.min(w)
            ),
        ));
    }
    if cfg.batch_size > sizes.train {
        return Err(CoreError::config(
            "batchSize",
            format!(
                "{} is larger than the training split ({} images)",
                cfg.batch_size, sizes.train
            ),
        ));
    }
    if cfg.extra.is_some() {
        open_extra(cfg, shape)?;
    }
    let device = device::resolve(cfg.device)?;
    // Built on CPU whatever the device: only its sizes are needed here.
    let probe = build_model(&cfg.model, cfg.num_classes, shape, tch::Device::Cpu)?;
    if check_memory && device == tch::Device::Cpu {
        let per_image: i64 = shape.iter().product();
        let images = sizes
            .train
            .saturating_add(sizes.test)
            .saturating_add(sizes.validation.unwrap_or(0));
        let needed = memory::training_bytes(
            cfg,
            probe.parameter_count(),
            probe.activations_per_sample,
            images.saturating_mul(per_image) as u64,
        );
        memory::check_fits(needed, cfg)?;
    }
    if let Some(path) = &cfg.resume {
        // Damaged or foreign resume files are refused before anything runs.
        checkpoint::inspect(Path::new(path))?;
    }
    if let Some(path) = &cfg.init_checkpoint {
        let info = checkpoint::inspect(Path::new(path))?;
        if let Some(m) = info.model.filter(|m| m != &cfg.model) {
            return Err(CoreError::Checkpoint {
                path: path.clone(),
                message: format!("written for model {m}, the config trains {}", cfg.model),
            });
        }
    }
    Ok(device)
}

/// The run's extra-data file (`cfg.extra`), opened and checked against the
/// dataset (image shape, classes): its header, size and labels are read, not
/// its images.
pub(super) fn open_extra(cfg: &TrainConfig, shape: [i64; 3]) -> Result<ExtraFile> {
    let x = cfg
        .extra
        .as_ref()
        .ok_or_else(|| CoreError::config("extra", "no extra data configured"))?;
    let file = ExtraFile::open(Path::new(&x.file))?;
    file.check_fits(shape, cfg.num_classes)?;
    Ok(file)
}
