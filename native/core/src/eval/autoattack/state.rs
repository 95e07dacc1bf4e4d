//! The per-point state of an AutoAttack that survives an interruption, and
//! its file.
//!
//! A state decides a robustness number, so it is trusted only when every
//! byte of it is checked: the file's checksums cover the tensors and the
//! whole header (progress record included; `checkpoint::read_named_sealed`),
//! the fingerprint must be this evaluation's (checkpoint, images, settings),
//! and the progress must agree with the per-point masks it came with
//! (`check_consistent`). Anything else is refused as corrupt, naming the
//! file: an evaluation that starts over is slow, one that skips a stage
//! overstates robustness.

use crate::attacks::Norm;
use crate::error::{CoreError, Result};
use crate::eval::report::StageResult;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// Where an AutoAttack keeps its state, and what it must match.
#[derive(Debug, Clone)]
pub struct Resume {
    pub file: PathBuf,
    /// The settings, checkpoint and images the state belongs to (any text
    /// that changes when they change); a state with another is refused.
    pub fingerprint: String,
}

/// The per-point state.
pub(super) struct State {
    /// Correct clean and not broken yet (bool, CPU).
    pub robust: Tensor,
    /// Robust when the current stage began: its list of points.
    pub entering: Tensor,
    /// The scored inputs (float, CPU).
    pub adversarial: Tensor,
    pub stage: usize,
    /// Position in the current stage's list of points.
    pub next: i64,
    pub results: Vec<StageResult>,
    pub warnings: Vec<String>,
    /// Time spent in the current stage before an interruption.
    pub stage_seconds: f64,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Progress {
    fingerprint: String,
    stage: usize,
    next: i64,
    samples: i64,
    results: Vec<StageResult>,
    warnings: Vec<String>,
    stage_seconds: f64,
}

const KEY_PROGRESS: &str = "st_native.autoattack";
const KEY_KIND: &str = "st_native.kind";
const KIND: &str = "autoattack_state";

/// What a state is checked against besides its fingerprint.
pub(super) struct Expected<'a> {
    /// The attack's stage names, in order.
    pub stages: &'a [&'a str],
    /// The images (float, CPU).
    pub x: &'a Tensor,
    pub norm: Norm,
    pub epsilon: f64,
}

fn count(t: &Tensor) -> i64 {
    t.sum(Kind::Int64).int64_value(&[])
}

impl State {
    pub fn save(&self, r: &Resume) -> Result<()> {
        let n = self.adversarial.size()[0];
        let changed = self
            .robust
            .logical_not()
            .nonzero()
            .flatten(0, -1)
            .to_kind(Kind::Int64);
        let progress = Progress {
            fingerprint: r.fingerprint.clone(),
            stage: self.stage,
            next: self.next,
            samples: n,
            results: self.results.clone(),
            warnings: self.warnings.clone(),
            stage_seconds: self.stage_seconds,
        };
        let mut metadata = HashMap::new();
        metadata.insert(
            KEY_PROGRESS.to_string(),
            serde_json::to_string(&progress).expect("progress serialises"),
        );
        metadata.insert(KEY_KIND.to_string(), KIND.to_string());
        // Only the inputs that differ from the images are stored (robust
        // points keep their image), so a robust model's state stays small.
        let named = vec![
            ("robust".to_string(), self.robust.to_kind(Kind::Uint8)),
            ("entering".to_string(), self.entering.to_kind(Kind::Uint8)),
            ("changed_index".to_string(), changed.shallow_clone()),
            (
                "changed_inputs".to_string(),
                self.adversarial.index_select(0, &changed),
            ),
        ];
        crate::checkpoint::save_named(named, &r.file, metadata)
    }

    /// The saved state, or None if there is none; an error if it is damaged,
    /// inconsistent, belongs to other settings or does not fit the images.
    pub fn load(r: &Resume, expected: &Expected) -> Result<Option<State>> {
        match std::fs::symlink_metadata(&r.file) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            _ => {}
        }
        let path = r.file.display().to_string();
        let bad = |message: String| CoreError::Checkpoint {
            path: path.clone(),
            message,
        };
        let (tensors, metadata) = crate::checkpoint::read_named_sealed(&r.file)?;
        if metadata.get(KEY_KIND).map(String::as_str) != Some(KIND) {
            return Err(bad(
                "not an AutoAttack state (its kind is not autoattack_state)".into(),
            ));
        }
        let progress: Progress = metadata
            .get(KEY_PROGRESS)
            .ok_or_else(|| bad("not an AutoAttack state (no progress record)".into()))
            .and_then(|s| {
                serde_json::from_str(s)
                    .map_err(|e| bad(format!("corrupt: its progress record does not parse ({e}); delete it to start over")))
            })?;
        if progress.fingerprint != r.fingerprint {
            return Err(bad(format!(
                "this AutoAttack state was saved by an evaluation with other settings, another checkpoint or other images ({}); delete it to start over",
                fingerprint_difference(&progress.fingerprint, &r.fingerprint)
            )));
        }
        let get = |name: &str| {
            tensors
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| t.shallow_clone())
                .ok_or_else(|| bad(format!("has no `{name}`")))
        };
        let x = expected.x;
        let n = x.size()[0];
        let (robust, entering) = (get("robust")?, get("entering")?);
        let (index, inputs) = (get("changed_index")?, get("changed_inputs")?);
        let kinds = [robust.kind(), entering.kind(), index.kind(), inputs.kind()];
        if kinds != [Kind::Uint8, Kind::Uint8, Kind::Int64, Kind::Float] {
            return Err(bad(format!("corrupt: unexpected tensor dtypes {kinds:?}")));
        }
        let k = index.size().first().copied().unwrap_or(-1);
        let mut shape = x.size();
        shape[0] = k;
        if robust.size() != [n]
            || entering.size() != [n]
            || index.size() != [k]
            || inputs.size() != shape
        {
            return Err(bad(format!(
                "holds state for other images (expected {n} points of shape {:?})",
                &x.size()[1..]
            )));
        }
        let (robust, entering) = (robust.to_kind(Kind::Bool), entering.to_kind(Kind::Bool));
        check_masks_and_inputs(&robust, &entering, &index, &inputs, expected)
            .and_then(|_| check_progress(&progress, &robust, &entering, n, expected.stages))
            .map_err(|why| {
                bad(format!(
                    "corrupt: its progress is inconsistent ({why}); delete it to start over"
                ))
            })?;
        let mut adversarial = x.copy();
        if k > 0 {
            let _ = adversarial.index_copy_(0, &index, &inputs);
        }
        Ok(Some(State {
            robust,
            entering,
            adversarial,
            stage: progress.stage,
            next: progress.next,
            results: progress.results,
            warnings: progress.warnings,
            stage_seconds: progress.stage_seconds,
        }))
    }
}

/// Robust points are a subset of the stage's points; the stored inputs are
/// exactly those of the points no longer robust, finite, images, and inside
/// the ball.
fn check_masks_and_inputs(
    robust: &Tensor,
    entering: &Tensor,
    index: &Tensor,
    inputs: &Tensor,
    e: &Expected,
) -> std::result::Result<(), String> {
    if count(&robust.logical_and(&entering.logical_not())) > 0 {
        return Err("points robust now that were not when the stage began".into());
    }
    let broken = robust.logical_not().nonzero().flatten(0, -1);
    if !broken.equal(index) {
        return Err("the stored inputs are not those of the points no longer robust".into());
    }
    if inputs.numel() == 0 {
        return Ok(());
    }
    if count(&inputs.isfinite().logical_not()) > 0 {
        return Err("stored inputs hold NaN or infinity".into());
    }
    let (lo, hi) = (
        inputs.min().double_value(&[]),
        inputs.max().double_value(&[]),
    );
    if lo < 0.0 || hi > 1.0 {
        return Err(format!("stored inputs outside [0,1] ({lo}..{hi})"));
    }
    let distance = e.norm.max_distance(inputs, &e.x.index_select(0, index));
    // float32 rounding of x + delta: a few ulps of 1.
    if distance > e.epsilon * (1.0 + 1e-5) + 1e-6 {
        return Err(format!(
            "a stored input is {distance} from its image, outside the radius {}",
            e.epsilon
        ));
    }
    Ok(())
}

/// The stage, position and per-stage results agree with each other and with
/// the masks: a stage of this attack, results for exactly the stages before
/// it (each attacking the points the previous one left), the last of them
/// counting the points the current stage began with, and the points after
/// `next` not attacked yet.
fn check_progress(
    p: &Progress,
    robust: &Tensor,
    entering: &Tensor,
    n: i64,
    stages: &[&str],
) -> std::result::Result<(), String> {
    if p.samples != n {
        return Err(format!("{} images recorded, {n} given", p.samples));
    }
    if p.stage >= stages.len() {
        return Err(format!(
            "stage {} is not one of this attack's {} stages ({})",
            p.stage,
            stages.len(),
            stages.join(", ")
        ));
    }
    if p.results.len() != p.stage {
        return Err(format!(
            "{} stage results recorded at stage {}",
            p.results.len(),
            p.stage
        ));
    }
    let entering_count = count(entering);
    let mut before: Option<i64> = None;
    for (i, r) in p.results.iter().enumerate() {
        if r.name != stages[i] {
            return Err(format!(
                "stage {i} is recorded as {}, expected {}",
                r.name, stages[i]
            ));
        }
        if !(0..=r.attacked).contains(&r.correct) || before.is_some_and(|b| b != r.attacked) {
            return Err(format!(
                "{}: attacked {} and left {} robust, after {:?}",
                r.name, r.attacked, r.correct, before
            ));
        }
        if (r.accuracy - r.correct as f64 / n as f64).abs() > 1e-9
            || r.seconds.is_nan()
            || r.seconds < 0.0
        {
            return Err(format!(
                "{}: accuracy {} for {} of {n}",
                r.name, r.accuracy, r.correct
            ));
        }
        before = Some(r.correct);
    }
    if let Some(last) = before {
        if last != entering_count {
            return Err(format!(
                "the last stage left {last} robust, the state holds {entering_count}"
            ));
        }
    }
    if !(0..=entering_count).contains(&p.next) {
        return Err(format!(
            "position {} in a stage of {entering_count} points",
            p.next
        ));
    }
    let points = entering.nonzero().flatten(0, -1);
    let untouched = points.narrow(0, p.next, entering_count - p.next);
    if count(&robust.index_select(0, &untouched).logical_not()) > 0 {
        return Err("points after the saved position are already broken".into());
    }
    if !p.stage_seconds.is_finite() || p.stage_seconds < 0.0 {
        return Err(format!("stage time {}", p.stage_seconds));
    }
    Ok(())
}

/// The parts of two fingerprints (", "-separated) that differ, as
/// "saved: ...; now: ...", so the refusal says what changed.
fn fingerprint_difference(saved: &str, now: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (saved.split(", ").collect(), now.split(", ").collect());
    let only = |x: &[&str], y: &[&str]| -> Vec<String> {
        x.iter()
            .filter(|p| !y.contains(p))
            .map(|p| p.to_string())
            .collect()
    };
    format!(
        "saved: {}; now: {}",
        only(&a, &b).join(", "),
        only(&b, &a).join(", ")
    )
}

/// A file name for an attack's state from its (free-text) name.
pub fn state_file(prefix: &Path, attack: &str) -> PathBuf {
    let safe: String = attack
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut s = prefix.as_os_str().to_owned();
    s.push(format!(".{safe}.autoattack-state.safetensors"));
    PathBuf::from(s)
}
