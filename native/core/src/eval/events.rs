//! Progress events of an evaluation, shared by the attack table and
//! AutoAttack (below both).

use super::report::AttackResult;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// At most one `Progress` event this often per attack.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Progress of `evaluate_attacks`, in order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum EvalEvent {
    Start {
        attacks: Vec<String>,
        samples: i64,
        batch_size: i64,
        device: String,
        checkpoint_crc32: String,
        verified: bool,
    },
    /// A batch of one attack is done (`correct` so far, over `done` images;
    /// for an AutoAttack, `done` and `total` count the current stage's
    /// points and `correct` the images still robust).
    Batch {
        attack: String,
        index: usize,
        done: i64,
        total: i64,
        correct: i64,
    },
    /// A stage of an AutoAttack begins, on `points` images (`robust` of
    /// `samples` are still robust).
    Stage {
        attack: String,
        index: usize,
        stage: String,
        stage_index: usize,
        stages: usize,
        points: i64,
        robust: i64,
        samples: i64,
    },
    /// Progress inside the batches of an attack (for an AutoAttack, of its
    /// current stage), so that a batch that runs for hours still moves: at
    /// most one every `PROGRESS_EVERY`, never going back; `batch` events
    /// still mark each batch's end.
    Progress {
        attack: String,
        index: usize,
        /// The AutoAttack's current stage; null for other attacks.
        stage: Option<String>,
        /// Images done of `total` (an AutoAttack: of the stage), the batch
        /// under attack counted by the share of its iterations done
        /// (fractional).
        done: f64,
        total: i64,
        /// Seconds in the attack (an AutoAttack: in the stage, including
        /// time before a resume).
        seconds: f64,
        /// Seconds since the attack began in this process (an AutoAttack:
        /// all its stages).
        attack_seconds: f64,
    },
    /// One attack is done.
    Attack(AttackResult),
    Notice {
        message: String,
    },
}

/// Lets through at most one `Progress` event per `every` for one attack
/// (the first one `every` after it began), and none that goes back (a
/// batch run again at half size after running out of memory starts over).
pub(crate) struct ProgressThrottle {
    every: Duration,
    started: Instant,
    last: Instant,
    done: f64,
}

impl ProgressThrottle {
    pub fn new(every: Duration) -> Self {
        let now = Instant::now();
        ProgressThrottle {
            every,
            started: now,
            last: now,
            done: f64::NEG_INFINITY,
        }
    }

    /// A new AutoAttack stage: its count starts again from 0.
    pub fn new_stage(&mut self) {
        self.done = f64::NEG_INFINITY;
    }

    /// Seconds since the attack began, when an event at `done` may go out
    /// now (it is then counted as sent).
    pub fn admit(&mut self, done: f64) -> Option<f64> {
        if done < self.done {
            return None;
        }
        let now = Instant::now();
        if now.duration_since(self.last) < self.every {
            return None;
        }
        self.last = now;
        self.done = done;
        Some(now.duration_since(self.started).as_secs_f64())
    }
}
