//! Dedicated native threads for long work. A panic never crosses into Node:
//! it is caught on the thread and becomes a rejected promise. Each job is
//! registered with the exit guard, so the process never tears libtorch down
//! under it (see `exit_guard`).

use crate::exit_guard::{self, JobGuard};
use crate::guard::{panic_error, quiet_panics, to_js_error};
use crate::{Dataset, EventCallback};
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

/// Forwards events to JS. Step ticks and evaluation progress are dropped when
/// the queue is full; every other event waits for room, so none of them is
/// ever lost.
struct JsSink(EventCallback);

impl EventSink for JsSink {
    fn emit(&mut self, event: Event) {
        if exit_guard::exiting() {
            return;
        }
        let mode = match event {
            Event::Step { .. } | Event::EvalProgress { .. } => {
                ThreadsafeFunctionCallMode::NonBlocking
            }
            _ => ThreadsafeFunctionCallMode::Blocking,
        };
        let json = serde_json::to_string(&event).expect("events serialise");
        let _ = self.0.call(json, mode);
    }
}

/// Runs `work` on its own thread and settles `deferred` with its outcome.
fn spawn<F>(name: &str, deferred: Deferred, job: JobGuard, work: F) -> Result<()>
where
    F: FnOnce() -> std::result::Result<String, CoreError> + Send + 'static,
{
    quiet_panics();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let outcome = match catch_unwind(AssertUnwindSafe(work)) {
                Ok(Ok(json)) => Ok(json),
                Ok(Err(e)) => Err(to_js_error(e)),
                Err(p) => Err(panic_error(p)),
            };
            if exit_guard::exiting() {
                // JavaScript is going away; settling would call into it.
                std::mem::forget(deferred);
            } else {
                match outcome {
                    Ok(json) => deferred.resolve(Box::new(move |_env| Ok(json))),
                    Err(e) => deferred.reject(e),
                }
            }
            // Last: until here an exit ends the process before teardown.
            drop(job);
        })
        .map(|_| ())
        .map_err(|e| {
            Error::new(
                Status::GenericFailure,
                format!("[ERR_THREAD] cannot start a native thread: {e}"),
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
    let job = JobGuard::new(Some(&cancel));
    spawn("st-native-train", deferred, job, move || {
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
    let guard = JobGuard::new(None);
    spawn("st-native-eval", deferred, guard, move || {
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

pub struct AttackEvalJob {
    pub request: st_core::eval::EvalRequest,
    pub images: Vec<u8>,
    pub labels: Vec<u8>,
    pub shape: [i64; 3],
}

pub fn spawn_attack_eval(
    job: AttackEvalJob,
    on_event: EventCallback,
    cancel: Arc<AtomicBool>,
    deferred: Deferred,
) -> Result<()> {
    let guard = JobGuard::new(Some(&cancel));
    spawn("st-native-attacks", deferred, guard, move || {
        let mut emit = |event: st_core::eval::EvalEvent| {
            if exit_guard::exiting() {
                return;
            }
            // Batch and progress ticks may be dropped when the queue is full; the rest wait.
            let mode = match event {
                st_core::eval::EvalEvent::Batch { .. }
                | st_core::eval::EvalEvent::Progress { .. } => {
                    ThreadsafeFunctionCallMode::NonBlocking
                }
                _ => ThreadsafeFunctionCallMode::Blocking,
            };
            let json = serde_json::to_string(&event).expect("events serialise");
            let _ = on_event.call(json, mode);
        };
        let report = st_core::eval::evaluate_attacks(
            &job.request,
            &job.images,
            &job.labels,
            job.shape,
            &mut emit,
            Some(&cancel),
        )?;
        Ok(serde_json::to_string(&report).expect("report serialises"))
    })
}
