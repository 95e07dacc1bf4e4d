//! napi-rs binding of st-core: converts types and spawns work, nothing else.
//!
//! Values cross as JSON strings (config in, events and results out) so that
//! the one typed contract lives in `ts/native-types.ts` and the serde structs
//! that mirror it. Errors reject with a message prefixed by a stable code,
//! `[ERR_...] message`, which `ts/native.ts` turns into `error.code`. Every
//! export validates its arguments and catches panics (`guard`); long work
//! runs on native threads registered with the exit guard (`exit_guard`).

mod exit_guard;
mod guard;
mod runner;

use guard::{coded, int_arg, sync, to_js_error};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::ThreadsafeFunction;
use napi_derive::napi;
use st_core::config::{DeviceChoice, EvalConfig, TrainConfig};
use st_core::train::DataSizes;
use st_core::CoreError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Progress events as JSON strings; at most 64 queued, step ticks beyond that
/// are dropped rather than blocking the trainer.
pub type EventCallback = ThreadsafeFunction<String, (), String, Status, false, false, 64>;

/// The most classes a model may be built for (ImageNet-21k has 21,841).
const MAX_CLASSES: i64 = 100_000;
/// A cancellation flag the training loop checks every step.
#[napi]
pub struct CancelToken {
    flag: Arc<AtomicBool>,
}

#[napi]
impl CancelToken {
    #[napi(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        CancelToken {
            flag: Arc::new(AtomicBool::new(false)),
        }
    }

    #[napi]
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::Relaxed);
    }

    #[napi(getter)]
    pub fn cancelled(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }
}

#[napi(object)]
pub struct Split {
    /// N×C×H×W uint8 pixels.
    pub images: Uint8Array,
    /// N uint8 class indices.
    pub labels: Uint8Array,
}

#[napi(object)]
pub struct Dataset {
    pub train: Split,
    pub test: Split,
    /// Optional split for model selection; the best checkpoint is then tested once.
    pub validation: Option<Split>,
    pub channels: u32,
    pub height: u32,
    pub width: u32,
}

/// JSON array of the registered models with parameter counts.
#[napi]
pub fn list_models(num_classes: f64) -> Result<String> {
    sync(|| {
        let n = int_arg("numClasses", num_classes, 2, MAX_CLASSES)?;
        Ok(serde_json::to_string(&st_core::models::list_models(n)).expect("serialisable"))
    })
}

/// When the addon is loaded: glibc keeps freed tensor blocks for reuse
/// (st_core::allocator), before any tensor is allocated.
#[napi_derive::module_init]
fn keep_freed_tensor_blocks() {
    st_core::allocator::setting();
}

/// JSON object: libtorch version, CUDA availability, cores and the
/// allocator setting.
#[napi]
pub fn runtime_info() -> Result<String> {
    sync(|| {
        Ok(serde_json::json!({
            "libtorchVersion": st_core::device::libtorch_version(),
            "cudaAvailable": tch::Cuda::is_available(),
            "cudaDevices": tch::Cuda::device_count(),
            "cores": st_core::config::available_cores(),
            "allocator": st_core::allocator::setting(),
        })
        .to_string())
    })
}

fn image_shape(shape: &[f64]) -> Result<[i64; 3]> {
    let [c, h, w] = <[f64; 3]>::try_from(shape).map_err(|_| {
        coded(
            "ERR_INVALID_ARG",
            "shape: expected [channels, height, width]",
        )
    })?;
    Ok([
        int_arg("shape[0] (channels)", c, 1, 64)?,
        int_arg("shape[1] (height)", h, 1, 4096)?,
        int_arg("shape[2] (width)", w, 1, 4096)?,
    ])
}

/// Checks a run before anything is created for it: the config, what depends
/// on the data's shape and sizes, memory (CPU), the device, the initial
/// checkpoint. Throws `[CODE] message`; returns nothing when the run can start.
#[napi]
pub fn preflight(
    config_json: String,
    shape: Vec<f64>,
    train_size: f64,
    test_size: f64,
    validation_size: Option<f64>,
) -> Result<()> {
    sync(|| {
        let config = TrainConfig::from_json(&config_json).map_err(to_js_error)?;
        let sizes = DataSizes {
            train: int_arg("trainSize", train_size, 1, i64::MAX >> 12)?,
            test: int_arg("testSize", test_size, 1, i64::MAX >> 12)?,
            validation: validation_size
                .map(|v| int_arg("validationSize", v, 1, i64::MAX >> 12))
                .transpose()?,
        };
        st_core::train::preflight(&config, image_shape(&shape)?, sizes, true)
            .map_err(to_js_error)?;
        Ok(())
    })
}

/// What a checkpoint file says about itself (JSON), after verifying its
/// checksum; throws ERR_CHECKPOINT for a file that cannot be trusted.
#[napi]
pub fn inspect_checkpoint(path: String) -> Result<String> {
    sync(|| {
        let info =
            st_core::checkpoint::inspect(std::path::Path::new(&path)).map_err(to_js_error)?;
        Ok(serde_json::to_string(&info).expect("serialisable"))
    })
}

/// Loads a checkpoint into a CPU model of `model` with `num_classes` on
/// `shape` inputs and drops it: throws ERR_CHECKPOINT naming the tensors
/// when the file does not fit, before any dataset is fetched for it.
#[napi]
pub fn check_checkpoint(
    path: String,
    model: String,
    num_classes: f64,
    shape: Vec<f64>,
) -> Result<()> {
    sync(|| {
        let classes = int_arg("numClasses", num_classes, 2, 100_000)?;
        let shape = image_shape(&shape)?;
        st_core::checkpoint::check_fits(std::path::Path::new(&path), &model, classes, shape)
            .map_err(to_js_error)?;
        Ok(())
    })
}

/// The process is exiting with `code` (from `process.on('exit')`): every
/// native job stops, and none outlives libtorch (see `exit_guard`).
#[napi]
pub fn note_process_exit(code: f64) {
    let code = if code.is_finite() { code as i32 } else { 1 };
    exit_guard::note_exit(code);
}

/// Trains on a native thread. Resolves with the summary as JSON; rejects
/// with `[CODE] message`.
#[napi(ts_return_type = "Promise<string>")]
pub fn train<'env>(
    env: &'env Env,
    config_json: String,
    dataset: Dataset,
    on_event: ThreadsafeFunction<String, (), String, Status, false, false, 64>,
    cancel: &CancelToken,
) -> Result<Object<'env>> {
    sync(|| {
        let config = TrainConfig::from_json(&config_json).map_err(to_js_error)?;
        let data = runner::OwnedData::copy_from(&dataset);
        let (deferred, promise) = env.create_deferred()?;
        runner::spawn_training(config, data, on_event, cancel.flag.clone(), deferred)?;
        Ok(promise)
    })
}

/// Clean and PGD accuracy of a checkpoint on one split, with PGD's random
/// starts seeded as the run's evaluation after `epoch`. Resolves with JSON.
#[napi(ts_return_type = "Promise<string>")]
#[allow(clippy::too_many_arguments)]
pub fn evaluate<'env>(
    env: &'env Env,
    checkpoint: String,
    model: String,
    num_classes: f64,
    data: Split,
    shape: Vec<f64>,
    eval_config_json: String,
    device: String,
    seed: f64,
    epoch: f64,
) -> Result<Object<'env>> {
    // One closure: the whole body runs under the panic guard.
    sync(|| {
        let eval_cfg: EvalConfig = serde_json::from_str(&eval_config_json)
            .map_err(|e| to_js_error(CoreError::config("eval", e.to_string())))?;
        let device: DeviceChoice = serde_json::from_value(serde_json::Value::String(device))
            .map_err(|e| to_js_error(CoreError::config("device", e.to_string())))?;
        let job = runner::EvalJob {
            checkpoint,
            model,
            num_classes: int_arg("numClasses", num_classes, 2, MAX_CLASSES)?,
            images: data.images.to_vec(),
            labels: data.labels.to_vec(),
            shape: image_shape(&shape)?,
            eval: eval_cfg,
            device,
            // JS numbers are exact integers up to 2^53.
            seed: int_arg("seed", seed, -(1 << 53), 1 << 53)?,
            epoch: int_arg("epoch", epoch, 0, 1 << 32)? as usize,
        };
        let (deferred, promise) = env.create_deferred()?;
        runner::spawn_eval(job, deferred)?;
        Ok(promise)
    })
}

/// The attack table of a checkpoint (`st_core::eval::evaluate_attacks`) on
/// one split, on a native thread: events (JSON) as attacks and batches
/// finish; resolves with the report as JSON, or with "null" when cancelled.
#[napi(ts_return_type = "Promise<string>")]
pub fn evaluate_attacks<'env>(
    env: &'env Env,
    request_json: String,
    data: Split,
    shape: Vec<f64>,
    on_event: ThreadsafeFunction<String, (), String, Status, false, false, 64>,
    cancel: &CancelToken,
) -> Result<Object<'env>> {
    sync(|| {
        let request: st_core::eval::EvalRequest = serde_json::from_str(&request_json)
            .map_err(|e| to_js_error(CoreError::config("request", e.to_string())))?;
        request.validate().map_err(to_js_error)?;
        let job = runner::AttackEvalJob {
            request,
            images: data.images.to_vec(),
            labels: data.labels.to_vec(),
            shape: image_shape(&shape)?,
        };
        let (deferred, promise) = env.create_deferred()?;
        runner::spawn_attack_eval(job, on_event, cancel.flag.clone(), deferred)?;
        Ok(promise)
    })
}
