//! A run's held-out evaluations and what they decide: the evaluation after
//! an epoch and the final test, each followed by paced progress events, and
//! model selection (whether an epoch's weights become `best`).

use super::pacing::{Throttle, EVAL_EVENT_INTERVAL};
use crate::config::EvalConfig;
use crate::data::Split;
use crate::eval::evaluate_observed;
use crate::events::{EvalPhase, EvalResult, EvalSplit, Event, EventSink};
use crate::models::Classifier;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

/// How an evaluation compares with the best one so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Selection {
    /// Strictly more robust (or the first evaluation): a new best.
    Improved,
    /// As robust as the best so far. Selected too: the authors' code keeps
    /// `robust_accuracy >= best_robust_acc`, so a tie goes to the later epoch.
    Tied,
    /// Less robust: the best stays.
    Kept,
}

impl Selection {
    pub fn selected(self) -> bool {
        self != Selection::Kept
    }
}

/// Model selection by robust accuracy on the selection split.
pub(super) fn select(candidate: &EvalResult, best: Option<&EvalResult>) -> Selection {
    match best {
        None => Selection::Improved,
        Some(b) if candidate.robust_acc > b.robust_acc => Selection::Improved,
        Some(b) if candidate.robust_acc == b.robust_acc => Selection::Tied,
        Some(_) => Selection::Kept,
    }
}

/// One evaluation of a run: which, on what, with the run's settings.
pub(super) struct Evaluation<'a> {
    pub phase: EvalPhase,
    pub split: &'a Split,
    pub which: EvalSplit,
    /// The epoch whose weights are evaluated (it seeds the attack).
    pub epoch: usize,
    pub cfg: &'a EvalConfig,
    pub seed: i64,
}

/// Runs `e` on `net`, sending `EvalProgress` events as it goes. Returns
/// None if `cancel` was set before it finished; the result is `evaluate`'s.
pub(super) fn run_evaluation(
    e: &Evaluation,
    net: &dyn Classifier,
    sink: &mut dyn EventSink,
    cancel: &AtomicBool,
) -> Option<EvalResult> {
    let started = Instant::now();
    let mut pace = Throttle::new(EVAL_EVENT_INTERVAL);
    let mut progress = |done: i64, total: i64| {
        if pace.ready(done == total) {
            sink.emit(Event::EvalProgress {
                phase: e.phase,
                epoch: e.epoch,
                split: e.which,
                done,
                total,
                elapsed_sec: started.elapsed().as_secs_f64(),
            });
        }
    };
    evaluate_observed(
        net,
        e.split,
        e.which,
        e.cfg,
        e.seed,
        e.epoch,
        Some(cancel),
        &mut progress,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(epoch: usize, robust_acc: f64) -> EvalResult {
        EvalResult {
            epoch,
            split: EvalSplit::Test,
            clean_acc: 0.9,
            robust_acc,
            attack: "pgd-2".into(),
            samples: 12,
            seconds: 1.0,
            ema: None,
        }
    }

    #[test]
    fn only_a_strictly_better_evaluation_is_an_improvement_and_a_tie_is_still_selected() {
        let best = result(1, 0.5);
        assert_eq!(select(&best, None), Selection::Improved);
        assert_eq!(
            select(&result(2, 0.5 + 1e-12), Some(&best)),
            Selection::Improved
        );
        assert_eq!(select(&result(2, 0.5), Some(&best)), Selection::Tied);
        assert_eq!(
            select(&result(2, 0.5 - 1e-12), Some(&best)),
            Selection::Kept
        );
        assert!(Selection::Tied.selected() && Selection::Improved.selected());
        assert!(!Selection::Kept.selected());
    }
}
