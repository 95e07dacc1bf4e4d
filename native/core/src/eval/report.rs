//! What an evaluation reports: each attack's line, the worst case, the
//! whole table with how it was made.

use super::normalize::Normalization;
use crate::attacks::AttackSpec;
use crate::events::EvalResult;
use serde::{Deserialize, Serialize};

/// One attack's line of the table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct AttackResult {
    pub name: String,
    /// The settings it ran with.
    pub spec: AttackSpec,
    /// Fraction of the images classified correctly after the attack.
    pub accuracy: f64,
    pub correct: i64,
    pub samples: i64,
    /// The batch size it ran at (its random starts depend on it).
    pub batch_size: i64,
    /// The seed its random starts derive from.
    pub seed: i64,
    /// Largest distance of an adversarial input from its image, in the
    /// attack's norm (L-inf for clean and run): at most eps.
    pub max_perturbation: f64,
    pub seconds: f64,
    /// An AutoAttack's accuracy after each of its stages (null otherwise).
    pub stages: Option<Vec<StageResult>>,
    /// An AutoAttack continued from a saved state.
    pub resumed: bool,
}

/// The per-point worst case: robust only if correct clean and under every attack run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct WorstCase {
    pub accuracy: f64,
    pub correct: i64,
    /// The attacks it combines (clean always included).
    pub over: Vec<String>,
}

/// The result of `evaluate_attacks`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct EvalReport {
    pub checkpoint: String,
    /// CRC-32 of the tensors (names and bytes, in name order): the value a
    /// checkpoint of ours carries as `st_native.crc32`, computed the same way
    /// for any file.
    pub checkpoint_crc32: String,
    /// The file carried our checksum and it matched (false: a file from elsewhere).
    pub verified: bool,
    #[cfg_attr(test, ts(as = "crate::config::ts_contract::ModelName"))]
    pub model: String,
    pub num_classes: i64,
    /// The epoch the checkpoint says it ends, if it says.
    pub epoch: Option<usize>,
    pub device: String,
    pub libtorch: String,
    pub seed: i64,
    pub samples: i64,
    /// The batch size asked for (each attack records the one it ran at).
    pub batch_size: i64,
    pub normalize: Option<Normalization>,
    pub clean_accuracy: f64,
    pub attacks: Vec<AttackResult>,
    pub worst_case: WorstCase,
    /// The `run` attack's result in the per-epoch evaluation's shape.
    pub run: Option<EvalResult>,
    /// Things the user should know (a batch halved after running out of memory).
    pub notices: Vec<String>,
    pub adversarial_file: Option<String>,
    pub seconds: f64,
}

/// The accuracy after one stage.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct StageResult {
    pub name: String,
    /// Points this stage attacked (robust when it began).
    pub attacked: i64,
    /// Points still robust after it, and their fraction of all images.
    pub correct: i64,
    pub accuracy: f64,
    pub seconds: f64,
}
