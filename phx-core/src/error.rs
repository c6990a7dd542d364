//! The one error type of phx-core. Backends map their own failures into it at their edge.
//!
//! Each variant is a *semantic* kind; `is_retryable` decides what the engine's retry rule
//! (`engine::retry`) may send again. Messages that came from Proxmox are kept verbatim.

use std::collections::BTreeMap;
use std::time::Duration;

/// Result alias with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a guest's state forbids an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConflictReason {
    /// Start of a running guest.
    AlreadyRunning,
    /// Stop/exec/push on a stopped guest.
    NotRunning,
    /// Destroy or template of a running guest.
    Running,
    /// Start of a template.
    IsTemplate,
    /// Destroy with `protection: 1`.
    Protected,
    /// Template conversion of a guest with snapshots, or similar.
    HasSnapshots,
    /// Any other state conflict.
    Other,
}

/// Everything that can go wrong in phx-core and its backends.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A guest, snapshot, storage or template does not exist.
    #[error("{message}")]
    NotFound {
        /// What was looked for (`CT 102`, `snapshot 'final-form' of CT 900`).
        what: String,
        /// The message as Proxmox (or phx) phrased it.
        message: String,
    },
    /// The id or name is already taken.
    #[error("{message}")]
    AlreadyExists {
        /// What exists already.
        what: String,
        /// The message as Proxmox phrased it.
        message: String,
    },
    /// The guest is locked (a `lock:` property or a lock file timeout). Retryable.
    #[error("{message}")]
    Locked {
        /// The locked object.
        what: String,
        /// The message as Proxmox phrased it.
        message: String,
    },
    /// The guest's current state forbids the operation.
    #[error("{message}")]
    Conflict {
        /// Which state conflict.
        reason: ConflictReason,
        /// The message as Proxmox phrased it.
        message: String,
    },
    /// A config file is invalid at a JSON path.
    #[error("{file}: {path}: {reason}")]
    InvalidConfig {
        /// File name (`phoenix_lxc_configs.json`).
        file: String,
        /// JSON path (`lxc_configs."102".network_config.ip`).
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Proxmox rejected the parameters (HTTP 400 / "Parameter verification failed.").
    #[error("{message}{}", fmt_params(params))]
    InvalidRequest {
        /// Overall message.
        message: String,
        /// Per-parameter errors.
        params: BTreeMap<String, String>,
    },
    /// The backend cannot do this.
    #[error("{operation} is not supported by the {backend} backend{}", hint.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
    Unsupported {
        /// The operation (`lxc exec`).
        operation: &'static str,
        /// The backend name.
        backend: &'static str,
        /// How to get support (`configure --ssh root@node`).
        hint: Option<String>,
    },
    /// A Proxmox task ran and failed.
    #[error("task {upid} failed: {exit_status}")]
    TaskFailed {
        /// The task id.
        upid: String,
        /// The task's exit status (the error text).
        exit_status: String,
        /// Last lines of the task log.
        log_tail: Vec<String>,
    },
    /// Authentication failed (HTTP 401).
    #[error("authentication failed: {message}")]
    Unauthenticated {
        /// Detail.
        message: String,
    },
    /// Permission check failed (HTTP 403).
    #[error("permission denied: {message}")]
    PermissionDenied {
        /// Detail, including the missing privilege.
        message: String,
    },
    /// An operation did not finish in time.
    #[error("{operation} timed out after {}s", after.as_secs_f64())]
    Timeout {
        /// What timed out.
        operation: String,
        /// How long phx waited.
        after: Duration,
    },
    /// A transient transport failure (HTTP 595-599, connection reset, worker start failed).
    #[error("{message}")]
    Transient {
        /// Detail.
        message: String,
    },
    /// phx refuses: the config cannot be reached without losing data, or not at all
    /// (shrinking a disk, a reused id). Nothing was changed for this guest.
    #[error("{message}")]
    Refused {
        /// What is wrong and what to do.
        message: String,
    },
    /// Proxmox refused the operation for a reason that fits no other kind (its message, verbatim).
    #[error("{message}")]
    Rejected {
        /// The message as Proxmox phrased it.
        message: String,
    },
    /// A backend failure that fits no other kind.
    #[error("{backend} backend: {message}")]
    Backend {
        /// The backend name.
        backend: &'static str,
        /// Detail.
        message: String,
        /// Underlying cause.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// Local I/O failed.
    #[error("{context}")]
    Io {
        /// What phx was doing (`reading /etc/phx/x.json`).
        context: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The run was cancelled before this operation.
    #[error("cancelled")]
    Cancelled,
}

fn fmt_params(p: &BTreeMap<String, String>) -> String {
    p.iter().map(|(k, v)| format!("\n  {k}: {v}")).collect()
}

impl Error {
    /// Whether sending the same request again can help: lock contention and transient
    /// transport failures. A failed *task* is never retryable: it ran.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Locked { .. } | Error::Transient { .. })
    }

    /// Shorthand for a backend error without a source.
    pub fn backend(backend: &'static str, message: impl Into<String>) -> Self {
        Error::Backend {
            backend,
            message: message.into(),
            source: None,
        }
    }

    /// Shorthand for an I/O error with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Classify an error message as Proxmox prints it (HTTP reason phrase, pct/qm stderr,
    /// task exit status) into a semantic error. Shared by every backend so that the same
    /// Proxmox text always means the same thing to the engine.
    pub fn from_proxmox_message(message: &str) -> Self {
        let msg = message.trim().to_string();
        let l = msg.to_ascii_lowercase();
        let what = guest_of(&msg).unwrap_or_default();
        if l.contains("can't lock file")
            || l.contains("got timeout")
            || l.contains("is locked")
            || l.contains("trying to acquire cfs lock")
            || l.contains("got lock request timeout")
            // the digest no longer matches: a task or someone else wrote the config since
            // phx read it ("... Try again."); contention like a lock, retried
            || l.contains("detected modified configuration")
        {
            return Error::Locked { what, message: msg };
        }
        // `snapshot name 'x' already used`, `VM 100 is already a template`
        if l.contains("already exists")
            || l.contains("already used")
            || l.contains("is already a template")
        {
            return Error::AlreadyExists { what, message: msg };
        }
        if l.contains("does not exist")
            || l.contains("unable to find configuration file")
            || l.contains("no such")
        {
            return Error::NotFound { what, message: msg };
        }
        let reason = if l.contains("already running") {
            Some(ConflictReason::AlreadyRunning)
        } else if l.contains("can only push files to a running") || l.contains("not running") {
            Some(ConflictReason::NotRunning)
        } else if l.contains("protection mode enabled") {
            Some(ConflictReason::Protected)
        } else if l.contains("if it's a template") || l.contains("is a template") {
            Some(ConflictReason::IsTemplate)
        } else if l.contains("container is running")
            || l.contains("is running - destroy failed")
            || l.contains("if the ct is running")
        {
            Some(ConflictReason::Running)
        } else if l.contains("contains snapshots") {
            Some(ConflictReason::HasSnapshots)
        } else {
            None
        };
        if let Some(reason) = reason {
            return Error::Conflict {
                reason,
                message: msg,
            };
        }
        if l.contains("got no worker upid")
            || l.contains("connection refused")
            || l.contains("broken pipe")
        {
            return Error::Transient { message: msg };
        }
        Error::Rejected { message: msg }
    }

    /// Whether this error, seen on a *retry* of a create-like call, means the first attempt
    /// actually went through ("already exists", "already running").
    pub fn means_already_done(&self) -> bool {
        matches!(
            self,
            Error::AlreadyExists { .. }
                | Error::Conflict {
                    reason: ConflictReason::AlreadyRunning,
                    ..
                }
        )
    }
}

/// Extract `CT 100` / `VM 100` from a Proxmox message.
fn guest_of(msg: &str) -> Option<String> {
    let words: Vec<&str> = msg.split_whitespace().collect();
    words.windows(2).find_map(|w| {
        let id = w[1].trim_matches(|c: char| !c.is_ascii_digit());
        ((w[0] == "CT" || w[0] == "VM") && !id.is_empty()).then(|| format!("{} {}", w[0], id))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxmox_messages_are_classified() {
        let cases = [
            ("CT is locked (disk)", "locked"),
            (
                "can't lock file '/var/lock/qemu-server/lock-101.conf' - got timeout",
                "locked",
            ),
            (
                "unable to create CT 100 - CT 100 already exists on node 'pve'",
                "exists",
            ),
            (
                "Configuration file 'nodes/pve/lxc/101.conf' does not exist",
                "notfound",
            ),
            (
                "detected modified configuration - file changed by other user? Try again.",
                "locked",
            ),
            ("snapshot name 'golden' already used", "exists"),
            ("VM 9000 is already a template", "exists"),
            ("CT 100 already running", "conflict"),
            ("can't remove CT 100 - protection mode enabled", "conflict"),
            ("got no worker upid - start worker failed", "transient"),
            ("something else", "backend"),
        ];
        for (m, want) in cases {
            let got = match Error::from_proxmox_message(m) {
                Error::Locked { .. } => "locked",
                Error::AlreadyExists { .. } => "exists",
                Error::NotFound { .. } => "notfound",
                Error::Conflict { .. } => "conflict",
                Error::Transient { .. } => "transient",
                _ => "backend",
            };
            assert_eq!(got, want, "{m}");
        }
    }
}
