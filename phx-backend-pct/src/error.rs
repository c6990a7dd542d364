//! This backend's failures and how they become [`phx_core::Error`]s. Proxmox's own messages
//! (stderr of the tools, task exit statuses) are classified by
//! [`phx_core::Error::from_proxmox_message`], so the same text means the same to every backend.

use std::collections::BTreeMap;

use phx_core::Error;

use crate::runner::RunError;

/// A failure of the pct backend.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PctError {
    /// The command could not run to completion.
    #[error(transparent)]
    Run(#[from] RunError),
    /// A tool printed something this backend cannot read.
    #[error("cannot parse the output of {what}: {reason}")]
    Parse {
        /// Which command.
        what: String,
        /// What is wrong.
        reason: String,
    },
}

impl From<PctError> for Error {
    fn from(e: PctError) -> Self {
        match e {
            PctError::Run(RunError::Timeout { argv, after }) => Error::Timeout {
                operation: argv,
                after,
            },
            e @ (PctError::Run(_) | PctError::Parse { .. }) => {
                let message = e.to_string();
                Error::Backend {
                    backend: "pct",
                    message,
                    source: Some(Box::new(e)),
                }
            }
        }
    }
}

pub(crate) fn parse_error(what: impl Into<String>, reason: impl Into<String>) -> Error {
    PctError::Parse {
        what: what.into(),
        reason: reason.into(),
    }
    .into()
}

/// Lines of stderr that are progress, not the error.
fn is_noise(l: &str) -> bool {
    l.is_empty()
        || l == "trying to acquire lock..."
        || l == "OK"
        || l.starts_with("trying to acquire cfs lock")
        || l.starts_with("Task finished with ")
}

/// The error line of a tool's stderr: the last line that is not lock-wait progress.
pub fn error_line(stderr: &str) -> String {
    stderr
        .lines()
        .map(str::trim)
        .rfind(|l| !is_noise(l))
        .unwrap_or_default()
        .to_string()
}

/// Classify what `pct`, `qm`, `pvesh`, `pvesm` or `pveam` printed on stderr when they failed:
/// `400 Parameter verification failed.` with `param: message` lines is
/// [`Error::InvalidRequest`]; a proxy status 595–599 is [`Error::Transient`]; everything else
/// is Proxmox's message, classified by [`Error::from_proxmox_message`].
pub fn classify_stderr(stderr: &str) -> Error {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !is_noise(l))
        .collect();
    if let Some(first) = lines.first()
        && let Some((code, rest)) = first.split_once(' ')
        && code.len() == 3
        && let Ok(status) = code.parse::<u16>()
    {
        match status {
            400 => {
                let mut params = BTreeMap::new();
                for l in &lines[1..] {
                    let tool_usage = ["pct ", "qm ", "pvesh ", "pvesm ", "pveam ", "USAGE:"]
                        .iter()
                        .any(|p| l.starts_with(p));
                    if tool_usage {
                        break;
                    }
                    if let Some((k, v)) = l.split_once(": ") {
                        params.insert(k.to_string(), v.to_string());
                    }
                }
                return Error::InvalidRequest {
                    message: rest.to_string(),
                    params,
                };
            }
            595..=599 => {
                return Error::Transient {
                    message: first.to_string(),
                };
            }
            _ if (100..600).contains(&status) => return Error::from_proxmox_message(rest),
            _ => {}
        }
    }
    let line = error_line(stderr);
    if line.is_empty() {
        return Error::Rejected {
            message: "the command failed without a message".into(),
        };
    }
    Error::from_proxmox_message(&line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_wait_progress_is_not_the_error() {
        let e = classify_stderr(
            "trying to acquire lock...\ncan't lock file '/run/lock/lxc/pve-config-110.lock' - got timeout\n",
        );
        assert!(matches!(e, Error::Locked { .. }), "{e:?}");
        assert!(e.is_retryable());
    }

    #[test]
    fn parameter_errors_keep_each_parameter() {
        let e = classify_stderr(
            "400 Parameter verification failed.\nmemory: type check ('integer') failed - got 'lots'\npct set <vmid> [OPTIONS]\n",
        );
        match e {
            Error::InvalidRequest { message, params } => {
                assert_eq!(message, "Parameter verification failed.");
                assert_eq!(
                    params.get("memory").map(String::as_str),
                    Some("type check ('integer') failed - got 'lots'")
                );
                assert_eq!(params.len(), 1);
            }
            other => panic!("{other:?}"),
        }
    }
}
