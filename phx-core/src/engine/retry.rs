//! The retry rule: retryable errors (lock timeouts, HTTP 596/599, "is locked", transient I/O,
//! see [`Error::is_retryable`]) are retried with bounded exponential backoff. A failed *task*
//! is never retried: it was accepted and ran. On a retry, "already exists" / "already running"
//! means the first attempt went through and counts as done.

use std::future::Future;
use std::time::Duration;

use crate::error::{Error, Result};

/// Bounded exponential backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts, including the first (1 disables retries).
    pub attempts: u32,
    /// Wait after the first failure.
    pub initial: Duration,
    /// Upper bound of a wait.
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            initial: Duration::from_millis(500),
            max: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// No retries.
    pub fn none() -> Self {
        Self {
            attempts: 1,
            ..Self::default()
        }
    }
    /// Fast retries for tests.
    pub fn fast() -> Self {
        Self {
            attempts: 5,
            initial: Duration::from_millis(1),
            max: Duration::from_millis(4),
        }
    }
    /// The wait after failed attempt `n` (1-based).
    pub fn delay(&self, n: u32) -> Duration {
        let f = 1u32.checked_shl(n.saturating_sub(1)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(f).min(self.max)
    }
}

/// Run `op` until it succeeds, fails permanently or attempts run out. `on_retry(attempt, delay,
/// error)` is told before each wait. When `already_done` is set, an error that
/// [`Error::means_already_done`] on a *retry* counts as success.
pub async fn with_retry<T, F, Fut>(
    policy: RetryPolicy,
    already_done: Option<T>,
    mut on_retry: impl FnMut(u32, Duration, &Error),
    mut op: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut attempt = 1;
    let mut done_value = already_done;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if attempt > 1 && e.means_already_done() && done_value.is_some() => {
                if let Some(v) = done_value.take() {
                    return Ok(v);
                }
                return Err(e);
            }
            Err(e) if e.is_retryable() && attempt < policy.attempts => {
                let d = policy.delay(attempt);
                on_retry(attempt, d, &e);
                tokio::time::sleep(d).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn retries_locked_then_succeeds() {
        let n = AtomicU32::new(0);
        let r = with_retry(
            RetryPolicy::fast(),
            None,
            |_, _, _| {},
            || async {
                if n.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(Error::Locked {
                        what: "CT 100".into(),
                        message: "CT is locked (disk)".into(),
                    })
                } else {
                    Ok(7)
                }
            },
        )
        .await;
        assert_eq!(r.unwrap(), 7);
        assert_eq!(n.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn task_failure_is_not_retried() {
        let n = AtomicU32::new(0);
        let r: Result<()> = with_retry(
            RetryPolicy::fast(),
            None,
            |_, _, _| {},
            || async {
                n.fetch_add(1, Ordering::SeqCst);
                Err(Error::TaskFailed {
                    upid: "U".into(),
                    exit_status: "boom".into(),
                    log_tail: vec![],
                })
            },
        )
        .await;
        assert!(r.is_err());
        assert_eq!(n.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn already_exists_on_retry_counts_as_done() {
        let n = AtomicU32::new(0);
        let r = with_retry(
            RetryPolicy::fast(),
            Some(()),
            |_, _, _| {},
            || async {
                if n.fetch_add(1, Ordering::SeqCst) == 0 {
                    Err(Error::Transient {
                        message: "596 Broken pipe".into(),
                    })
                } else {
                    Err(Error::AlreadyExists {
                        what: "CT 100".into(),
                        message: "CT 100 already exists on node 'pve'".into(),
                    })
                }
            },
        )
        .await;
        assert!(r.is_ok());
    }

    #[test]
    fn delay_is_bounded() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(1), Duration::from_millis(500));
        assert_eq!(p.delay(2), Duration::from_secs(1));
        assert_eq!(p.delay(10), Duration::from_secs(8));
    }
}
