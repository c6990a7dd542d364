//! Errors at the edge: `error: <what>`, a `Caused by:` chain, `hint:` lines, and the exit code.

use std::fmt;

use phx_core::config::ConfigError;

/// Success.
pub const EXIT_OK: u8 = 0;
/// An operation failed.
pub const EXIT_FAILED: u8 = 1;
/// Invalid usage or invalid config; nothing was changed.
pub const EXIT_USAGE: u8 = 2;
/// Some guests failed while others succeeded.
pub const EXIT_PARTIAL: u8 = 3;
/// Interrupted.
pub const EXIT_INTERRUPTED: u8 = 130;

/// An error with an exit code and an optional hint.
#[derive(Debug)]
pub struct CliError {
    /// Exit code.
    pub code: u8,
    /// What failed.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// Invalid usage (exit 2).
pub fn usage(message: impl Into<String>) -> CliError {
    CliError {
        code: EXIT_USAGE,
        message: message.into(),
        hint: None,
    }
}

/// An operation failed (exit 1).
pub fn failed(message: impl Into<String>) -> CliError {
    CliError {
        code: EXIT_FAILED,
        message: message.into(),
        hint: None,
    }
}

impl CliError {
    /// Attach a hint.
    pub fn hint(mut self, h: impl Into<String>) -> Self {
        self.hint = Some(h.into());
        self
    }
}

/// The exit code an error maps to.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if let Some(c) = cause.downcast_ref::<CliError>() {
            return c.code;
        }
        if cause.downcast_ref::<ConfigError>().is_some() {
            return EXIT_USAGE;
        }
        if let Some(pe) = cause.downcast_ref::<phx_core::Error>() {
            return match pe {
                phx_core::Error::InvalidConfig { .. } => EXIT_USAGE,
                _ => EXIT_FAILED,
            };
        }
    }
    EXIT_FAILED
}

/// Render an error for stderr.
pub fn render(e: &anyhow::Error) -> String {
    let mut s = format!("error: {e}\n");
    if let Some(ce) = e.chain().find_map(|c| c.downcast_ref::<ConfigError>()) {
        for f in &ce.errors {
            s.push_str(&format!("  {f}\n"));
        }
    }
    let causes: Vec<String> = e
        .chain()
        .skip(1)
        .map(ToString::to_string)
        .filter(|c| !c.is_empty())
        .collect();
    if !causes.is_empty() {
        s.push_str("\nCaused by:\n");
        for (i, c) in causes.iter().enumerate() {
            s.push_str(&format!("    {i}: {c}\n"));
        }
    }
    let hints: Vec<&str> = e
        .chain()
        .filter_map(|c| c.downcast_ref::<CliError>())
        .filter_map(|c| c.hint.as_deref())
        .collect();
    let extra = hint_for(e);
    for h in hints.into_iter().chain(extra.as_deref()) {
        s.push_str(&format!("hint: {h}\n"));
    }
    s
}

/// Hints for well-known backend errors.
fn hint_for(e: &anyhow::Error) -> Option<String> {
    let pe = e
        .chain()
        .find_map(|c| c.downcast_ref::<phx_core::Error>())?;
    match pe {
        phx_core::Error::Unauthenticated { .. } => Some("check the API token (PHX_API_TOKEN or --api-token-file) or PHX_API_USER/PHX_API_PASSWORD".into()),
        phx_core::Error::PermissionDenied { .. } => Some("grant the missing privilege to the user or token (pveum acl modify)".into()),
        phx_core::Error::Locked { .. } => Some("another task holds the guest; wait for it (or `pct unlock <id>` / `qm unlock <id>` if it is stale) and run phx again".into()),
        phx_core::Error::Transient { .. } => Some("Proxmox or the connection to it failed after phx's retries; check that the node is reachable and its pveproxy/pvedaemon run, then run phx again".into()),
        phx_core::Error::Unsupported { backend: "api", hint, .. } if !hint.as_deref().unwrap_or_default().contains("--ssh") => Some("pass --ssh root@<node> (or set PHX_SSH): the api backend runs container, node and raw-config steps through pct over ssh".into()),
        _ => None,
    }
}
