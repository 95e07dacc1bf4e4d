//! How often progress events go out: step ticks and evaluation progress are
//! coalesced (a UI needs no more, and every event crosses into JS and lands
//! in metrics.jsonl); results, checkpoints and the end are never held back.

use std::time::{Duration, Instant};

/// At most ten step ticks a second.
pub(super) const STEP_EVENT_INTERVAL: Duration = Duration::from_millis(100);
/// At most four evaluation progress events a second (plus the last batch's).
pub(super) const EVAL_EVENT_INTERVAL: Duration = Duration::from_millis(250);

/// Lets an event through when `interval` has passed since the last one let
/// through; the first is always let through, and a forced one always is.
pub(super) struct Throttle {
    interval: Duration,
    last: Option<Instant>,
}

impl Throttle {
    pub fn new(interval: Duration) -> Self {
        Throttle {
            interval,
            last: None,
        }
    }

    pub fn ready(&mut self, force: bool) -> bool {
        let now = Instant::now();
        let due = self
            .last
            .is_none_or(|t| now.duration_since(t) >= self.interval);
        if force || due {
            self.last = Some(now);
        }
        force || due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_and_forced_events_pass_and_others_wait_for_the_interval() {
        let mut t = Throttle::new(Duration::from_secs(3600));
        assert!(t.ready(false), "the first one");
        assert!(!t.ready(false), "within the interval");
        assert!(t.ready(true), "forced");
        assert!(!t.ready(false));
        let mut t = Throttle::new(Duration::ZERO);
        assert!(t.ready(false) && t.ready(false));
    }
}
