//! This backend's own errors, and their mapping into [`phx_core::Error`] at the edge.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use phx_core::Error;

pub(crate) const BACKEND: &str = "api";

/// An error status from Proxmox: the status code, the message (the HTTP reason phrase, else
/// the body's `message`) and the per-parameter `errors` of a 400.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    /// HTTP status (400, 401, 403, 500, 501, 595-599, ...).
    pub status: u16,
    /// The message, verbatim (trailing newline removed).
    pub message: String,
    /// Per-parameter errors (`{"vmid": "VM 218 already exists"}`).
    pub errors: BTreeMap<String, String>,
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.message)?;
        for (k, v) in &self.errors {
            write!(f, "\n  {k}: {v}")?;
        }
        Ok(())
    }
}

impl HttpError {
    /// The semantic phx error: 400 → `InvalidRequest` (with every parameter), 401 →
    /// `Unauthenticated`, 403 → `PermissionDenied` (keeping the missing privilege), 501 → a
    /// backend error, 595–599 (and a proxy's 502–504) → `Transient`, everything else (the
    /// 500s of state errors) classified by its message.
    pub fn into_core(self) -> Error {
        match self.status {
            400 => Error::InvalidRequest {
                message: self.message,
                params: self.errors,
            },
            401 => Error::Unauthenticated {
                message: self.message,
            },
            403 => Error::PermissionDenied {
                message: self.message,
            },
            501 => Error::backend(
                BACKEND,
                format!(
                    "501 {} (this Proxmox VE version does not offer it)",
                    self.message
                ),
            ),
            502..=504 | 595..=599 => Error::Transient {
                message: format!("{} {}", self.status, self.message),
            },
            _ => Error::from_proxmox_message(&self.message),
        }
    }
}

/// What went wrong talking to Proxmox.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Proxmox answered with an error status.
    #[error("{0}")]
    Http(HttpError),
    /// The server's certificate was refused.
    #[error("TLS connection to {url} refused: {message}")]
    Tls {
        /// The server.
        url: String,
        /// Why (fingerprint mismatch, unknown issuer, ...).
        message: String,
    },
    /// The server could not be reached, or the connection broke.
    #[error("cannot talk to {url}: {message}")]
    Transport {
        /// The server.
        url: String,
        /// What failed.
        message: String,
    },
    /// No answer within the request timeout.
    #[error("{what} got no answer within {}s", after.as_secs_f64())]
    Timeout {
        /// The request (`POST /nodes/pve/lxc`).
        what: String,
        /// The timeout.
        after: Duration,
    },
    /// The answer is not what Proxmox sends.
    #[error("unexpected answer to {what}: {reason}")]
    Decode {
        /// The request.
        what: String,
        /// Why it does not fit.
        reason: String,
    },
    /// The backend is set up wrongly (URL, CA file, fingerprint, ...).
    #[error("{0}")]
    Config(String),
}

impl ApiError {
    pub(crate) fn decode(what: impl Into<String>, reason: impl ToString) -> Self {
        Self::Decode {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}

impl From<ApiError> for Error {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Http(h) => h.into_core(),
            ApiError::Transport { .. } => Error::Transient {
                message: e.to_string(),
            },
            ApiError::Timeout { what, after } => Error::Timeout {
                operation: what,
                after,
            },
            other => Error::backend(BACKEND, other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(status: u16, message: &str) -> Error {
        HttpError {
            status,
            message: message.into(),
            errors: BTreeMap::new(),
        }
        .into_core()
    }

    #[test]
    fn statuses_map_to_semantic_errors() {
        assert!(matches!(
            http(401, "Authentication failed!"),
            Error::Unauthenticated { .. }
        ));
        match http(403, "Permission check failed (/vms/100, VM.Audit)") {
            Error::PermissionDenied { message } => assert!(message.contains("VM.Audit")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(http(596, "Broken pipe"), Error::Transient { .. }));
        assert!(http(596, "Broken pipe").is_retryable());
        assert!(matches!(
            http(500, "CT is locked (disk)"),
            Error::Locked { .. }
        ));
        assert!(matches!(
            http(
                500,
                "Configuration file 'nodes/pve/lxc/9.conf' does not exist"
            ),
            Error::NotFound { .. }
        ));
        assert!(matches!(
            http(501, "Method 'GET /foo' not implemented"),
            Error::Backend { .. }
        ));
    }
}
