//! The service's durable outboxes: LTI grades ([`crate::ags`]) and xAPI statements ([`crate::xapi`]).
//!
//! Both follow one pattern. What is to be sent lives in the database with the data it comes from, so
//! it survives any crash; a background task claims what is due under a lease (so two servers never
//! send the same thing at once), sends it, and marks it sent; a failure is retried after a delay that
//! doubles from [`FIRST_BACKOFF_MS`] to an hour, forever, so a receiver down for an hour loses nothing.

use crate::service::Service;
use std::sync::Arc;
use std::time::Duration;

/// How long a claimed job is reserved for the process that claimed it.
pub const LEASE_MS: i64 = 60_000;
/// First retry delay; it doubles with each failure up to [`MAX_BACKOFF_MS`].
pub const FIRST_BACKOFF_MS: i64 = 10_000;
/// Longest delay between two attempts.
pub const MAX_BACKOFF_MS: i64 = 3_600_000;

/// The delay before attempt `attempts + 1` after a failure, the first being `first` ms.
pub fn backoff_ms(first: i64, attempts: i64) -> i64 {
    let doublings = attempts.clamp(0, 20) as u32;
    first.saturating_mul(1_i64 << doublings).min(MAX_BACKOFF_MS)
}

impl Service {
    /// Set the first delay before a failed grade or statement delivery is tried again (it doubles
    /// with each failure).
    pub fn set_retry_delay(&self, first: Duration) {
        self.lti
            .first_backoff_ms
            .store(first.as_millis() as i64, std::sync::atomic::Ordering::Relaxed);
    }

    /// When to try again a job that has failed `attempts` times before this failure (Unix ms).
    pub(crate) fn retry_at(&self, attempts: i64) -> i64 {
        let first = self
            .lti
            .first_backoff_ms
            .load(std::sync::atomic::Ordering::Relaxed);
        crate::storage::now_ms() + backoff_ms(first, attempts)
    }
}

/// Run every outbox each `every` until the process ends.
pub fn spawn_outboxes(service: Arc<Service>, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = service.post_due_grades().await {
                tracing::warn!(error = %e.message, "grade outbox: storage unavailable");
            }
            if let Err(e) = service.send_due_statements().await {
                tracing::warn!(error = %e.message, "xAPI outbox: storage unavailable");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_an_hour() {
        assert_eq!(backoff_ms(FIRST_BACKOFF_MS, 0), 10_000);
        assert_eq!(backoff_ms(FIRST_BACKOFF_MS, 1), 20_000);
        assert_eq!(backoff_ms(FIRST_BACKOFF_MS, 3), 80_000);
        assert_eq!(backoff_ms(FIRST_BACKOFF_MS, 9), 3_600_000);
        assert_eq!(backoff_ms(FIRST_BACKOFF_MS, 1000), 3_600_000);
    }
}
