//! Progress events: the engine reports every step to a [`Reporter`] so the CLI can draw
//! progress and other tools can log. Reporters must be cheap; they run on the engine's tasks.

use std::time::Duration;

use crate::types::{GuestId, GuestKind};

/// What happened to a guest in the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// At least one change was made.
    Changed,
    /// Nothing needed doing.
    Unchanged,
    /// A step failed.
    Failed,
    /// Not attempted (a prerequisite failed, or the run was cancelled).
    Skipped,
}

/// One engine event.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event<'a> {
    /// The plan is ready.
    PlanComputed {
        /// Guests in the plan.
        guests: usize,
        /// Actions in the plan.
        actions: usize,
    },
    /// Work on a guest began.
    GuestStarted {
        /// Guest.
        id: GuestId,
        /// Kind.
        kind: GuestKind,
        /// Name.
        name: &'a str,
    },
    /// A step began.
    StepStarted {
        /// Guest.
        id: GuestId,
        /// Operation (`create`, `set`, `start`, ...).
        op: &'a str,
        /// Human detail.
        detail: &'a str,
    },
    /// A step ended.
    StepFinished {
        /// Guest.
        id: GuestId,
        /// Operation.
        op: &'a str,
        /// How long it took.
        duration: Duration,
        /// The error, if it failed.
        error: Option<&'a str>,
    },
    /// A Proxmox task ran.
    TaskProgress {
        /// Guest.
        id: GuestId,
        /// Task id.
        upid: &'a str,
        /// Message.
        message: &'a str,
    },
    /// A retryable error; the engine waits and tries again.
    Retry {
        /// Guest.
        id: GuestId,
        /// Operation.
        op: &'a str,
        /// Attempt that failed (1-based).
        attempt: u32,
        /// Wait before the next attempt.
        delay: Duration,
        /// The error.
        error: &'a str,
    },
    /// Something worth telling the operator.
    Warning {
        /// Guest, if any.
        id: Option<GuestId>,
        /// Message.
        message: &'a str,
    },
    /// A line of output from a script (feature, application, test, health check).
    Output {
        /// Guest.
        id: GuestId,
        /// What produced it (`feature base_setup`, `app-script homelab_dns.sh`).
        source: &'a str,
        /// The line.
        line: &'a str,
    },
    /// A `phx hypervisor` step began (on the node, not a guest).
    HostStepStarted {
        /// Operation.
        op: &'a str,
        /// Human detail.
        detail: &'a str,
    },
    /// A `phx hypervisor` step ended.
    HostStepFinished {
        /// Operation.
        op: &'a str,
        /// How long it took.
        duration: Duration,
        /// The error, if it failed.
        error: Option<&'a str>,
    },
    /// A line of output from a host step or host test.
    HostOutput {
        /// What produced it.
        source: &'a str,
        /// The line.
        line: &'a str,
    },
    /// Work on a guest ended.
    GuestFinished {
        /// Guest.
        id: GuestId,
        /// Outcome.
        outcome: Outcome,
    },
}

/// Receives engine events.
pub trait Reporter: Send + Sync {
    /// Handle one event.
    fn report(&self, event: &Event<'_>);
}

/// A reporter that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullReporter;

impl Reporter for NullReporter {
    fn report(&self, _: &Event<'_>) {}
}

/// A reporter that logs through `tracing`.
#[derive(Debug, Default, Clone, Copy)]
pub struct TracingReporter;

impl Reporter for TracingReporter {
    fn report(&self, e: &Event<'_>) {
        match e {
            Event::StepStarted { id, op, detail } => tracing::info!(guest = %id, "{op} {detail}"),
            Event::StepFinished {
                id,
                op,
                duration,
                error: Some(err),
            } => tracing::warn!(guest = %id, ?duration, "{op} failed: {err}"),
            Event::Retry {
                id,
                op,
                attempt,
                delay,
                error,
            } => tracing::warn!(guest = %id, attempt, ?delay, "{op}: {error}; retrying"),
            Event::Warning { id, message } => tracing::warn!(guest = ?id, "{message}"),
            Event::GuestFinished { id, outcome } => tracing::info!(guest = %id, ?outcome, "done"),
            _ => {}
        }
    }
}
