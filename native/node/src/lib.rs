//! napi-rs binding of st-core: converts types and spawns work, nothing else.
//!
//! Values cross as JSON strings (config in, events and results out) so that
//! the one typed contract lives in `ts/native-types.ts` and the serde structs
//! that mirror it. Errors reject with a message prefixed by a stable code,
//! `[ERR_...] message`, which `ts/native.ts` turns into `error.code`.

mod runner;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::ThreadsafeFunction;
use napi_derive::napi;
use st_core::config::{DeviceChoice, EvalConfig, TrainConfig};
use st_core::CoreError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Progress events as JSON strings; at most 64 queued, step ticks beyond that
/// are dropped rather than blocking the trainer.
pub type EventCallback = ThreadsafeFunction<String, (), String, Status, false, false, 64>;

fn to_js_error(e: CoreError) -> Error {
    Error::new(Status::GenericFailure, format!("[{}] {e}", e.code()))
}

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
pub fn list_models(num_classes: u32) -> String {
    serde_json::to_string(&st_core::models::list_models(num_classes as i64)).expect("serialisable")
}

/// JSON object: libtorch version and CUDA availability.
#[napi]
pub fn runtime_info() -> String {
    serde_json::json!({
        "libtorchVersion": st_core::device::libtorch_version(),
        "cudaAvailable": tch::Cuda::is_available(),
        "cudaDevices": tch::Cuda::device_count(),
    })
    .to_string()
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
    let config = TrainConfig::from_json(&config_json).map_err(to_js_error)?;
    let data = runner::OwnedData::copy_from(&dataset);
    let (deferred, promise) = env.create_deferred()?;
    runner::spawn_training(config, data, on_event, cancel.flag.clone(), deferred)?;
    Ok(promise)
}

/// Clean and PGD accuracy of a checkpoint on one split, with PGD's random
/// starts seeded as the run's evaluation after `epoch`. Resolves with JSON.
#[napi(ts_return_type = "Promise<string>")]
#[allow(clippy::too_many_arguments)]
pub fn evaluate<'env>(
    env: &'env Env,
    checkpoint: String,
    model: String,
    num_classes: u32,
    data: Split,
    shape: Vec<u32>,
    eval_config_json: String,
    device: String,
    seed: i64,
    epoch: u32,
) -> Result<Object<'env>> {
    let eval_cfg: EvalConfig = serde_json::from_str(&eval_config_json)
        .map_err(|e| to_js_error(CoreError::config("eval", e.to_string())))?;
    let device: DeviceChoice = serde_json::from_value(serde_json::Value::String(device))
        .map_err(|e| to_js_error(CoreError::config("device", e.to_string())))?;
    let [c, h, w] = <[u32; 3]>::try_from(shape).map_err(|_| {
        to_js_error(CoreError::config(
            "shape",
            "expected [channels, height, width]",
        ))
    })?;
    let job = runner::EvalJob {
        checkpoint,
        model,
        num_classes: num_classes as i64,
        images: data.images.to_vec(),
        labels: data.labels.to_vec(),
        shape: [c as i64, h as i64, w as i64],
        eval: eval_cfg,
        device,
        seed,
        epoch: epoch as usize,
    };
    let (deferred, promise) = env.create_deferred()?;
    runner::spawn_eval(job, deferred)?;
    Ok(promise)
}
