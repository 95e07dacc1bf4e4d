//! Dedicated native threads for long work. A panic never crosses into Node:
//! it is caught on the thread and becomes a rejected promise.

use crate::{to_js_error, Dataset, EventCallback};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::ThreadsafeFunctionCallMode;
use napi::JsDeferred;
use st_core::config::{DeviceChoice, EvalConfig, TrainConfig};
use st_core::events::{Event, EventSink};
use st_core::train::TrainData;
use st_core::CoreError;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

type Deferred = JsDeferred<String, Box<dyn FnOnce(Env) -> Result<String> + Send>>;

/// Dataset bytes copied out of JS memory once, so the thread owns them.
pub struct OwnedData {
    train_images: Vec<u8>,
    train_labels: Vec<u8>,
    test_images: Vec<u8>,
    test_labels: Vec<u8>,
    validation: Option<(Vec<u8>, Vec<u8>)>,
    shape: [i64; 3],
}

impl OwnedData {
    pub fn copy_from(d: &Dataset) -> Self {
        OwnedData {
            train_images: d.train.images.to_vec(),
            train_labels: d.train.labels.to_vec(),
            test_images: d.test.images.to_vec(),
            test_labels: d.test.labels.to_vec(),
            validation: d
                .validation
                .as_ref()
                .map(|v| (v.images.to_vec(), v.labels.to_vec())),
            shape: [d.channels as i64, d.height as i64, d.width as i64],
        }
    }
}

/// Forwards events to JS. Step ticks are dropped when the queue is full; every
/// other event waits for room, so none of them is ever lost.
struct JsSink(EventCallback);

impl EventSink for JsSink {
    fn emit(&mut self, event: Event) {
        let mode = match event {
            Event::Step { .. } => ThreadsafeFunctionCallMode::NonBlocking,
            _ => ThreadsafeFunctionCallMode::Blocking,
        };
        let json = serde_json::to_string(&event).expect("events serialise");
        let _ = self.0.call(json, mode);
    }
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}

/// Runs `work` on its own thread and settles `deferred` with its outcome.
fn spawn<F>(name: &str, deferred: Deferred, work: F) -> Result<()>
where
    F: FnOnce() -> std::result::Result<String, CoreError> + Send + 'static,
{
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || match catch_unwind(AssertUnwindSafe(work)) {
            Ok(Ok(json)) => deferred.resolve(Box::new(move |_env| Ok(json))),
            Ok(Err(e)) => deferred.reject(to_js_error(e)),
            Err(p) => {
                let msg = panic_message(p);
                let code = if msg.contains("out of memory") {
                    "ERR_OUT_OF_MEMORY"
                } else {
                    "ERR_PANIC"
                };
                deferred.reject(Error::new(
                    Status::GenericFailure,
                    format!("[{code}] {msg}"),
                ))
            }
        })
        .map(|_| ())
        .map_err(|e| {
            Error::new(
                Status::GenericFailure,
                format!("[ERR_THREAD] cannot start the training thread: {e}"),
            )
        })
}

pub fn spawn_training(
    config: TrainConfig,
    data: OwnedData,
    on_event: EventCallback,
    cancel: Arc<AtomicBool>,
    deferred: Deferred,
) -> Result<()> {
    spawn("st-native-train", deferred, move || {
        let mut sink = JsSink(on_event);
        let view = TrainData {
            train_images: &data.train_images,
            train_labels: &data.train_labels,
            test_images: &data.test_images,
            test_labels: &data.test_labels,
            validation: data
                .validation
                .as_ref()
                .map(|(i, l)| (i.as_slice(), l.as_slice())),
            shape: data.shape,
        };
        let summary = st_core::train::train(&config, &view, &mut sink, &cancel)?;
        Ok(serde_json::to_string(&summary).expect("summary serialises"))
    })
}

pub struct EvalJob {
    pub checkpoint: String,
    pub model: String,
    pub num_classes: i64,
    pub images: Vec<u8>,
    pub labels: Vec<u8>,
    pub shape: [i64; 3],
    pub eval: EvalConfig,
    pub device: DeviceChoice,
    pub seed: i64,
    pub epoch: usize,
}

pub fn spawn_eval(job: EvalJob, deferred: Deferred) -> Result<()> {
    spawn("st-native-eval", deferred, move || {
        let result = st_core::eval::evaluate_checkpoint(
            &job.checkpoint,
            &job.model,
            job.num_classes,
            &job.images,
            &job.labels,
            job.shape,
            &job.eval,
            job.device,
            job.seed,
            job.epoch,
        )?;
        Ok(serde_json::to_string(&result).expect("result serialises"))
    })
}
