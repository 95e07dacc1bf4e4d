//! Batch halving when the device runs out of memory, shared by the attack
//! table and AutoAttack (below both).

use super::events::EvalEvent;
use crate::error::{CoreError, Result};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// Runs `f(batch)`; when the device runs out of memory, halves the batch
/// (notice via `notice`) and runs it again from the start, down to 1.
pub(crate) fn halving_on_oom<T>(
    what: &str,
    batch: &mut i64,
    notices: &mut Vec<String>,
    sink: &mut dyn FnMut(EvalEvent),
    mut f: impl FnMut(i64, &mut dyn FnMut(EvalEvent)) -> T,
) -> Result<T> {
    // A panic inside `tch::no_grad` skips its restore of the grad mode, so
    // each attempt turns it on (attacks need it) and the caller's mode is
    // put back at the end.
    tch::with_grad(|| loop {
        let b = *batch;
        match catch_unwind(AssertUnwindSafe(|| tch::with_grad(|| f(b, &mut *sink)))) {
            Ok(v) => return Ok(v),
            Err(p) => {
                let text = panic_text(p.as_ref());
                if !crate::error::is_allocation_failure(&text) {
                    resume_unwind(p);
                }
                let short = text.lines().next().unwrap_or("").to_string();
                if b <= 1 {
                    return Err(CoreError::OutOfMemory(format!(
                        "{what} at batch size 1: {short}"
                    )));
                }
                *batch = (b / 2).max(1);
                let message = format!(
                    "{what}: out of memory at batch size {b}; running it again at batch size {} ({short})",
                    *batch
                );
                notices.push(message.clone());
                sink(EvalEvent::Notice { message });
            }
        }
    })
}
