//! Events the training loop emits, one tagged enum. Serialised with a `type`
//! tag and camelCase fields, it is the `TrainEvent` discriminated union of
//! `ts/native-types.ts`, whose TS types are generated from these (ts-rs, see
//! `config::ts_contract`) into `ts/generated/`.

use serde::{Deserialize, Serialize};

/// Loss parts of a step or epoch; which exist depends on the method. A part
/// that does not exist is left out of the JSON (an optional field in TS).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields))]
#[serde(rename_all = "camelCase")]
pub struct LossParts {
    /// CE on the adversarial point x_adv (ST, PGD-AT).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ce_adv: Option<f64>,
    /// CE on the benign point x.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ce_benign: Option<f64>,
    /// CE on the collaborative point x_col (ST).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ce_col: Option<f64>,
    /// The reg discrepancy between x_adv and x_col (ST).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reg: Option<f64>,
}

/// Clean and robust accuracy of one evaluation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct EvalResult {
    pub epoch: usize,
    /// Which split was evaluated.
    pub split: EvalSplit,
    pub clean_acc: f64,
    pub robust_acc: f64,
    /// e.g. "pgd-20"
    pub attack: String,
    pub samples: i64,
    pub seconds: f64,
    /// true: the evaluation of the weight average (EMA); absent: of the
    /// trained weights themselves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub ema: Option<bool>,
}

/// The split an evaluation ran on. Model selection uses the validation split
/// when the run has one (the cleaner practice), else the test split (as the
/// reference code does).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum EvalSplit {
    Validation,
    Test,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum CheckpointKind {
    Last,
    Best,
    Interrupted,
}

/// Which evaluation an `EvalProgress` event follows.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum EvalPhase {
    /// The evaluation after an epoch, on the selection split.
    Epoch,
    /// The best checkpoint on the test split, once at the end of a run that
    /// selected on a validation split.
    FinalTest,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Completed,
    Cancelled,
}

/// How a run ended, and its numbers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct TrainSummary {
    pub status: RunStatus,
    pub epochs_completed: usize,
    /// The split model selection used.
    pub selected_on: EvalSplit,
    /// Best robust accuracy over evaluated epochs on the selection split
    /// (model selection by PGD).
    pub best: Option<EvalResult>,
    pub last: Option<EvalResult>,
    /// The best checkpoint on the test split: what to report. Equal to `best`
    /// when selection used the test split.
    pub test: Option<EvalResult>,
    /// Paths of written checkpoints, when written.
    pub last_checkpoint: Option<String>,
    pub best_checkpoint: Option<String>,
    pub seconds: f64,
}

/// One event of a training run (`TrainEvent` in TS), tagged by `type`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Event {
    #[serde(rename_all = "camelCase")]
    Start {
        #[cfg_attr(test, ts(as = "crate::config::ts_contract::ModelName"))]
        model: String,
        parameters: i64,
        device: String,
        method: String,
        train_size: i64,
        /// Images evaluated after each epoch (validation split if any, else test).
        test_size: i64,
        epochs: usize,
        steps_per_epoch: usize,
        start_epoch: usize,
        /// The epochs from `startEpoch` on after which the held-out
        /// evaluation runs (the schedule; always the last one).
        eval_epochs: Vec<usize>,
        /// Images of the final test of the best checkpoint, when selection
        /// runs on a validation split; null when there is none.
        final_test_size: Option<i64>,
    },
    #[serde(rename_all = "camelCase")]
    Step {
        /// 1-based.
        epoch: usize,
        /// 1-based within the epoch.
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
    /// Progress of an evaluation: sent when it starts (`done` 0), then at
    /// most a few times a second, and when its last batch is done. Like step
    /// ticks, these may be dropped when the consumer falls behind.
    #[serde(rename_all = "camelCase")]
    EvalProgress {
        phase: EvalPhase,
        /// The epoch evaluated (for the final test: the best checkpoint's).
        epoch: usize,
        split: EvalSplit,
        /// Images evaluated so far, of `total`.
        done: i64,
        total: i64,
        /// Seconds since this evaluation started.
        elapsed_sec: f64,
    },
    Eval(EvalResult),
    #[serde(rename_all = "camelCase")]
    Checkpoint {
        epoch: usize,
        kind: CheckpointKind,
        path: String,
        /// A `best` checkpoint written because the epoch tied the best robust
        /// accuracy so far (a tie goes to the later epoch) rather than beat
        /// it. False for every other checkpoint.
        tied: bool,
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
