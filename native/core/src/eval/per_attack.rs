//! One attack over a whole split, batch by batch.

use super::events::{EvalEvent, ProgressThrottle};
use super::report::AttackResult;
use crate::attacks::{mix_seed, Attack, AttackContext, AttackSpec, Norm};
use crate::data::Split;
use crate::events::EvalResult;
use crate::models::{Classifier, Mode};
use std::sync::atomic::{AtomicBool, Ordering};
use tch::{Device, Kind, Tensor};

/// What one attack produced over all images.
pub(super) struct Outcome {
    pub result: AttackResult,
    /// Per point: classified correctly (bool, CPU).
    pub correct: Tensor,
    pub adversarial: Option<Tensor>,
    pub run: Option<EvalResult>,
}

/// One attack (not `run`) over the whole split, batch by batch, with the
/// `progress` events `throttle` lets through. None when cancelled.
#[allow(clippy::too_many_arguments)]
pub(super) fn attack_all(
    net: &dyn Classifier,
    split: &Split,
    spec: &AttackSpec,
    index: usize,
    attack: Option<&dyn Attack>,
    batch: i64,
    seed: i64,
    cancel: Option<&AtomicBool>,
    keep_images: bool,
    throttle: &mut ProgressThrottle,
    sink: &mut dyn FnMut(EvalEvent),
) -> Option<(Tensor, Option<Tensor>, i64, f64)> {
    let n = split.len();
    let norm = attack.map_or(Norm::Linf, |a| a.norm());
    let (mut correct, mut adv) = (Vec::new(), Vec::new());
    let (mut count, mut max_distance) = (0i64, 0f64);
    let mut start = 0;
    while start < n {
        if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return None;
        }
        let len = batch.min(n - start);
        let (x, y) = split.slice(start, len);
        let x_adv = match attack {
            None => x.shallow_clone(),
            Some(a) => {
                let ctx = AttackContext {
                    seed: mix_seed(seed, start),
                    cancel,
                };
                let mut report = |w: crate::attacks::Work| {
                    let done = start as f64 + len as f64 * w.fraction();
                    if let Some(seconds) = throttle.admit(done) {
                        sink(EvalEvent::Progress {
                            attack: spec.name().to_string(),
                            index,
                            stage: None,
                            done,
                            total: n,
                            seconds,
                            attack_seconds: seconds,
                        });
                    }
                };
                a.perturb_reporting(net, &x, &y, &ctx, &mut report)
            }
        };
        if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return None;
        }
        let logits = tch::no_grad(|| net.forward(&x_adv, &Mode::Eval));
        let ok = logits.argmax(-1, false).eq_tensor(&y);
        count += ok.sum(Kind::Int64).int64_value(&[]);
        if attack.is_some() {
            max_distance = max_distance.max(norm.max_distance(&x_adv, &x));
        }
        correct.push(ok.to_device(Device::Cpu));
        if keep_images && attack.is_some() {
            adv.push(x_adv.detach().to_device(Device::Cpu));
        }
        start += len;
        sink(EvalEvent::Batch {
            attack: spec.name().to_string(),
            index,
            done: start,
            total: n,
            correct: count,
        });
    }
    Some((
        Tensor::cat(&correct, 0),
        (!adv.is_empty()).then(|| Tensor::cat(&adv, 0)),
        count,
        max_distance,
    ))
}
