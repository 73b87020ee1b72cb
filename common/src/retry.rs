//! The one backoff of the workspace: exponential, doubled per try, capped. A stage declares
//! its [`RetryPolicy`] and the worker loop applies it; in-process waits (the broker at start,
//! a store that is away) take a [`Backoff`]. Nothing else computes a delay.

use crate::settings::{NotifySettings, WorkerSettings};
use std::time::Duration;

/// Doubling delays from `base`, never above `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Backoff {
        Backoff {
            next: base.min(max),
            max,
        }
    }

    /// The delay to wait now; the one after it is twice as long (up to the cap).
    pub fn next_delay(&mut self) -> Duration {
        let now = self.next;
        self.next = (self.next * 2).min(self.max);
        now
    }
}

/// How a stage's transient failures (`StageError::Retry` of the worker loop) are retried: each
/// failed try is followed by a delay of `base_ms × 2^(attempt−1)`, capped at `max_ms`, until
/// `max_attempts` tries have been made or, for a message that records when it was first
/// queued, the next try would come later than `give_up_after_ms` after that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub base_ms: u64,
    pub max_ms: u64,
    /// Tries in all, the first included.
    pub max_attempts: u32,
    /// The age past which no retry is scheduled; `None`: no such bound.
    pub give_up_after_ms: Option<u64>,
}

impl RetryPolicy {
    /// The delay after try `attempt` (1-based) failed.
    pub fn delay_ms(&self, attempt: u32) -> u64 {
        let base = self.base_ms.max(1);
        base.saturating_mul(1u64 << attempt.saturating_sub(1).min(30))
            .min(self.max_ms.max(base))
    }

    /// The delay before the next try after try `attempt` failed, or `None` when that was the
    /// last: the tries are spent, or the next one would come past the give-up age (`age_ms`:
    /// how long ago the message was first queued, when it says).
    pub fn next_delay_ms(&self, attempt: u32, age_ms: Option<u64>) -> Option<u64> {
        if attempt >= self.max_attempts {
            return None;
        }
        let delay = self.delay_ms(attempt);
        match (self.give_up_after_ms, age_ms) {
            (Some(limit), Some(age)) if age.saturating_add(delay) > limit => None,
            _ => Some(delay),
        }
    }

    /// The same doubling for waits inside one try.
    pub fn backoff(&self) -> Backoff {
        Backoff::new(
            Duration::from_millis(self.base_ms.max(1)),
            Duration::from_millis(self.max_ms.max(self.base_ms.max(1))),
        )
    }

    /// The policy of the job stages (download, transcode): `[worker]`.
    pub fn of_jobs(settings: &WorkerSettings) -> RetryPolicy {
        RetryPolicy {
            base_ms: settings.retry_base_ms,
            max_ms: settings.retry_max_ms,
            max_attempts: settings.max_attempts.max(1),
            give_up_after_ms: None,
        }
    }

    /// The policy of callback deliveries: `[notify]`, bounded by age rather than by count.
    pub fn of_callbacks(settings: &NotifySettings) -> RetryPolicy {
        RetryPolicy {
            base_ms: settings.retry_base_ms,
            max_ms: settings.retry_max_ms,
            max_attempts: u32::MAX,
            give_up_after_ms: Some(settings.give_up_after_secs.saturating_mul(1000)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(max_attempts: u32, give_up_after_ms: Option<u64>) -> RetryPolicy {
        RetryPolicy {
            base_ms: 100,
            max_ms: 1000,
            max_attempts,
            give_up_after_ms,
        }
    }

    #[test]
    fn delays_double_and_are_capped() {
        let p = policy(10, None);
        let delays: Vec<u64> = (1..=6).map(|a| p.delay_ms(a)).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(p.delay_ms(0), 100);
        assert_eq!(p.delay_ms(u32::MAX), 1000);
        let mut b = p.backoff();
        let waits: Vec<u128> = (0..6).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn tries_end_at_the_count_or_at_the_age() {
        let p = policy(3, None);
        assert_eq!(p.next_delay_ms(1, None), Some(100));
        assert_eq!(p.next_delay_ms(2, Some(u64::MAX)), Some(200));
        assert_eq!(p.next_delay_ms(3, None), None);
        let p = policy(u32::MAX, Some(1_000));
        assert_eq!(p.next_delay_ms(1, Some(0)), Some(100));
        assert_eq!(p.next_delay_ms(1, Some(900)), Some(100));
        assert_eq!(p.next_delay_ms(1, Some(901)), None, "past the age");
        assert_eq!(p.next_delay_ms(40, None), Some(1000), "no age: no bound");
    }

    #[test]
    fn the_settings_make_the_two_policies() {
        let jobs = RetryPolicy::of_jobs(&WorkerSettings::default());
        assert_eq!((jobs.max_attempts, jobs.give_up_after_ms), (5, None));
        let callbacks = RetryPolicy::of_callbacks(&NotifySettings::default());
        assert_eq!(callbacks.give_up_after_ms, Some(86_400_000));
        assert_eq!(callbacks.delay_ms(1), 5_000);
    }
}
