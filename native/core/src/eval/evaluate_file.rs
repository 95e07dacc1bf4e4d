//! A checkpoint file evaluated under a list of attacks: the entry point
//! the binding calls.

use super::adversarial::save_adversarial;
use super::checksum::content_crc;
use super::events::EvalEvent;
use super::normalize::Normalized;
use super::report::EvalReport;
use super::request::{images_digest, EvalRequest};
use super::table::{attack_table, ResumeSettings, TableSettings};
use crate::attacks::AttackSpec;
use crate::data::Split;
use crate::error::Result;
use crate::models::forward_copy::{channels_last_copy, WithForwardCopy};
use crate::models::Classifier;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

/// Evaluates a checkpoint under `req.attacks` on the given images (N×C×H×W
/// uint8, the first `max_samples` used). Returns None when cancelled.
pub fn evaluate_attacks(
    req: &EvalRequest,
    images: &[u8],
    labels: &[u8],
    shape: [i64; 3],
    sink: &mut dyn FnMut(EvalEvent),
    cancel: Option<&AtomicBool>,
) -> Result<Option<EvalReport>> {
    let started = Instant::now();
    req.validate()?;
    if let Some(n) = &req.normalize {
        n.validate(shape[0])?;
    }
    let device = crate::device::resolve(req.device)?;
    let full = Split::from_bytes("eval", images, labels, shape, req.num_classes, device)?;
    let split = full.prefix(req.max_samples.unwrap_or(i64::MAX));
    let n = split.len();
    let path = Path::new(&req.checkpoint);
    let mut m = crate::models::build_model(&req.model, req.num_classes, shape, device)?;
    let info = crate::checkpoint::load(&mut m.vs, path, &req.model)?;
    // Gradients flow to the inputs only.
    m.vs.freeze();
    let crc = content_crc(path)?;
    let normalized = |net: Box<dyn Classifier>| -> Box<dyn Classifier> {
        match &req.normalize {
            Some(norm) => Box::new(Normalized::new(net, norm, shape[0], device)),
            None => net,
        }
    };
    // Square's passes on a channels-last copy of the weights (CPU only;
    // models/forward_copy.rs says why and what it changes), made only when
    // a Square will run: the copy doubles the weights' memory.
    let net = if req.attacks.iter().any(AttackSpec::runs_square) {
        WithForwardCopy::on_cpu(normalized(m.net), device, || {
            channels_last_copy(&req.model, req.num_classes, shape, &m.vs).map(normalized)
        })?
    } else {
        normalized(m.net)
    };
    let run = req.run.as_ref().map(|r| {
        (
            r.eval.clone(),
            info.seed.unwrap_or(r.seed),
            info.epoch.unwrap_or(r.epoch),
        )
    });
    let names: Vec<String> = req.attacks.iter().map(|a| a.name().to_string()).collect();
    sink(EvalEvent::Start {
        attacks: names.clone(),
        samples: n,
        batch_size: req.batch_size,
        device: crate::device::describe(device),
        checkpoint_crc32: crc.clone(),
        verified: info.verified,
    });
    let settings = TableSettings {
        attacks: &req.attacks,
        batch_size: req.batch_size,
        seed: req.seed,
        keep_images: req.save_adversarial.is_some(),
        run,
        resume: req.resume_prefix.as_ref().map(|p| ResumeSettings {
            prefix: p.into(),
            fingerprint: format!(
                "checkpoint crc32 {crc}, model {}, {} classes, {n} images ({}, sha256 {}), seed {}, batch {}, normalize {}",
                req.model,
                req.num_classes,
                req.data_source
                    .as_ref()
                    .map_or("unnamed images".to_string(), |d| format!("{} {} split", d.dataset, d.split)),
                images_digest(images, labels, shape, n),
                req.seed,
                req.batch_size,
                serde_json::to_string(&req.normalize).expect("serialises"),
            ),
        }),
    };
    let Some(table) = attack_table(net.as_ref(), &split, &settings, cancel, sink)? else {
        return Ok(None);
    };
    let mut report = EvalReport {
        checkpoint: req.checkpoint.clone(),
        checkpoint_crc32: crc,
        verified: info.verified,
        model: req.model.clone(),
        num_classes: req.num_classes,
        epoch: info.epoch,
        device: crate::device::describe(device),
        libtorch: crate::device::libtorch_version().to_string(),
        seed: req.seed,
        samples: n,
        batch_size: req.batch_size,
        normalize: req.normalize.clone(),
        clean_accuracy: table.clean_accuracy,
        attacks: table.results.clone(),
        worst_case: table.worst_case.clone(),
        run: table.run.clone(),
        notices: table.notices.clone(),
        adversarial_file: req.save_adversarial.clone(),
        seconds: 0.0,
    };
    if let Some(file) = &req.save_adversarial {
        save_adversarial(Path::new(file), &split, &table, &report)?;
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(Some(report))
}
