//! Progress events of an evaluation, shared by the attack table and
//! AutoAttack (below both).

use super::report::AttackResult;
use serde::{Deserialize, Serialize};

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
    /// One attack is done.
    Attack(AttackResult),
    Notice {
        message: String,
    },
}
