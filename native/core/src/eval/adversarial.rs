//! Saving the adversarial inputs an evaluation scored, for re-scoring.

use super::report::EvalReport;
use super::table::Table;
use crate::attacks::AttackSpec;
use crate::data::Split;
use crate::error::Result;
use std::collections::HashMap;
use std::path::Path;
use tch::{Device, Kind};

/// Tensor names in an adversarial file: `images` (the clean images, float32
/// N×C×H×W in [0,1]), `labels` (int64), and per attack `adversarial.<name>`
/// (float32, exactly the inputs that were scored) and `correct.<name>`
/// (uint8 per image); `correct.clean` and `correct.worst_case` too. The
/// report is in the metadata (`st_native.eval_report`, JSON).
pub const ADVERSARIAL_PREFIX: &str = "adversarial.";

pub(super) fn save_adversarial(
    path: &Path,
    split: &Split,
    table: &Table,
    report: &EvalReport,
) -> Result<()> {
    let n = split.len();
    let (x, y) = split.slice(0, n);
    let mut named = vec![
        ("images".to_string(), x.to_device(Device::Cpu)),
        ("labels".to_string(), y.to_device(Device::Cpu)),
        (
            "correct.clean".to_string(),
            table.clean.to_kind(Kind::Uint8),
        ),
        (
            "correct.worst_case".to_string(),
            table.robust.to_kind(Kind::Uint8),
        ),
    ];
    for ((result, adv), correct) in table
        .results
        .iter()
        .zip(&table.adversarial)
        .zip(&table.correct)
    {
        if let Some(adv) = adv {
            named.push((
                format!("{ADVERSARIAL_PREFIX}{}", result.name),
                adv.shallow_clone(),
            ));
        }
        if !matches!(result.spec, AttackSpec::Clean { .. }) {
            named.push((
                format!("correct.{}", result.name),
                correct.to_kind(Kind::Uint8),
            ));
        }
    }
    let mut metadata = HashMap::new();
    metadata.insert(
        "st_native.kind".to_string(),
        "adversarial_examples".to_string(),
    );
    metadata.insert(
        "st_native.eval_report".to_string(),
        serde_json::to_string(report).expect("report serialises"),
    );
    crate::checkpoint::save_named(named, path, metadata)
}
