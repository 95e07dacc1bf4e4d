//! Events the training loop emits, one tagged enum. Serialised with a `type`
//! tag and camelCase fields, it is the `TrainEvent` discriminated union of
//! `ts/native-types.ts`.

use serde::Serialize;

/// Loss parts of a step or epoch; which exist depends on the method.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LossParts {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ce_adv: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ce_benign: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ce_col: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reg: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EvalResult {
    pub epoch: usize,
    /// Which split was evaluated.
    pub split: EvalSplit,
    pub clean_acc: f64,
    pub robust_acc: f64,
    pub attack: String,
    pub samples: i64,
    pub seconds: f64,
}

/// The split an evaluation ran on. Model selection uses the validation split
/// when the run has one (the cleaner practice), else the test split (as the
/// reference code does).
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EvalSplit {
    Validation,
    Test,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CheckpointKind {
    Last,
    Best,
    Interrupted,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Completed,
    Cancelled,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TrainSummary {
    pub status: RunStatus,
    pub epochs_completed: usize,
    /// The split model selection used.
    pub selected_on: EvalSplit,
    /// Best evaluation over epochs on the selection split.
    pub best: Option<EvalResult>,
    pub last: Option<EvalResult>,
    /// The best checkpoint on the test split: what to report. Equal to `best`
    /// when selection used the test split.
    pub test: Option<EvalResult>,
    pub last_checkpoint: Option<String>,
    pub best_checkpoint: Option<String>,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Event {
    #[serde(rename_all = "camelCase")]
    Start {
        model: String,
        parameters: i64,
        device: String,
        method: String,
        train_size: i64,
        test_size: i64,
        epochs: usize,
        steps_per_epoch: usize,
        start_epoch: usize,
    },
    #[serde(rename_all = "camelCase")]
    Step {
        epoch: usize,
        step: usize,
        steps_per_epoch: usize,
        lr: f64,
        loss: f64,
        parts: LossParts,
        images_per_sec: f64,
        elapsed_sec: f64,
    },
    #[serde(rename_all = "camelCase")]
    Epoch {
        epoch: usize,
        loss: f64,
        parts: LossParts,
        train_acc: f64,
        seconds: f64,
        images_per_sec: f64,
    },
    Eval(EvalResult),
    #[serde(rename_all = "camelCase")]
    Checkpoint {
        epoch: usize,
        kind: CheckpointKind,
        path: String,
    },
    Done(TrainSummary),
}

/// Where events go. The binding forwards them to JS; tests collect them.
pub trait EventSink: Send {
    fn emit(&mut self, event: Event);
}

/// Collects events in memory (tests, and callers that want them afterwards).
#[derive(Default)]
pub struct VecSink(pub Vec<Event>);

impl EventSink for VecSink {
    fn emit(&mut self, event: Event) {
        self.0.push(event);
    }
}

impl<F: FnMut(Event) + Send> EventSink for F {
    fn emit(&mut self, event: Event) {
        self(event)
    }
}
