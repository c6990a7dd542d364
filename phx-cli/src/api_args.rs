//! `--backend api`: its options and opening the [`ApiBackend`].
//!
//! Credentials never come from the command line (they would show in `ps` and shell history):
//! the API token is `PHX_API_TOKEN` or the file named by `--api-token-file`; a ticket login
//! uses `PHX_API_USER` and `PHX_API_PASSWORD`.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use phx_backend_api::{ApiBackend, ApiOptions, ApiToken, Auth, Secret, SshOptions, TlsMode};
use phx_core::backend::Hypervisor;

use crate::cli::GlobalArgs;
use crate::error::usage;

/// Options of the HTTP API backend.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "API backend (--backend api)")]
pub struct ApiArgs {
    /// Proxmox VE API URL (https://pve1:8006)
    #[arg(
        long,
        env = "PHX_API_URL",
        hide_env_values = true,
        global = true,
        value_name = "URL"
    )]
    pub api_url: Option<String>,
    /// File with the API token USER@REALM!TOKENID=SECRET (else PHX_API_TOKEN, or
    /// PHX_API_USER and PHX_API_PASSWORD)
    #[arg(
        long,
        env = "PHX_API_TOKEN_FILE",
        hide_env_values = true,
        global = true,
        value_name = "FILE"
    )]
    pub api_token_file: Option<PathBuf>,
    /// Trust the API certificate if this CA (PEM) signed it (the cluster's pve-root-ca.pem)
    #[arg(
        long,
        env = "PHX_CA_CERT",
        hide_env_values = true,
        global = true,
        value_name = "FILE"
    )]
    pub ca_cert: Option<PathBuf>,
    /// Accept only the API certificate with this SHA-256 fingerprint (AA:BB:...)
    #[arg(
        long,
        env = "PHX_FINGERPRINT",
        hide_env_values = true,
        global = true,
        value_name = "SHA256"
    )]
    pub fingerprint: Option<String>,
    /// Do not verify the API certificate (warns on every run)
    #[arg(long, global = true)]
    pub insecure: bool,
}

fn env_nonempty(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.trim().is_empty())
}

fn no_credentials() -> anyhow::Result<Auth> {
    Err(usage("--backend api needs credentials")
        .hint("set PHX_API_TOKEN=USER@REALM!TOKENID=SECRET (or --api-token-file FILE), or PHX_API_USER and PHX_API_PASSWORD")
        .into())
}

/// A secret file other users can read is worth a warning (but still used: refusing would
/// break a run over a detail the operator may have chosen).
fn warn_if_shared(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                "the API token file {} can be read by other users (mode {mode:o}); run `chmod 600 {}`",
                path.display(),
                path.display()
            );
        }
    }
}

fn credentials(a: &ApiArgs) -> anyhow::Result<Auth> {
    if let Some(path) = &a.api_token_file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            usage(format!(
                "cannot read the API token file {}: {e}",
                path.display()
            ))
        })?;
        let t = ApiToken::parse(&text).map_err(|e| usage(format!("{}: {e}", path.display())))?;
        warn_if_shared(path);
        return Ok(Auth::Token(t));
    }
    if let Some(v) = env_nonempty("PHX_API_TOKEN") {
        let t = ApiToken::parse(&v).map_err(|e| usage(format!("PHX_API_TOKEN: {e}")))?;
        return Ok(Auth::Token(t));
    }
    match (
        env_nonempty("PHX_API_USER"),
        std::env::var("PHX_API_PASSWORD").ok(),
    ) {
        (Some(user), Some(password)) if !password.is_empty() => Ok(Auth::Ticket {
            user: user.trim().to_string(),
            password: Secret::new(password),
        }),
        (Some(_), _) => Err(usage("PHX_API_USER is set but PHX_API_PASSWORD is not").into()),
        _ => no_credentials(),
    }
}

fn tls(a: &ApiArgs) -> anyhow::Result<TlsMode> {
    let chosen = [a.ca_cert.is_some(), a.fingerprint.is_some(), a.insecure]
        .iter()
        .filter(|x| **x)
        .count();
    if chosen > 1 {
        return Err(
            usage("--ca-cert, --fingerprint and --insecure exclude each other")
                .hint(
                    "--fingerprint pins the node's certificate; --ca-cert trusts the cluster's CA",
                )
                .into(),
        );
    }
    Ok(if let Some(p) = &a.ca_cert {
        TlsMode::CaFile(p.clone())
    } else if let Some(f) = &a.fingerprint {
        TlsMode::Fingerprint(
            phx_backend_api::tls::parse_fingerprint(f)
                .map_err(|e| usage(format!("--fingerprint: {e}")))?,
        )
    } else if a.insecure {
        TlsMode::Insecure
    } else {
        TlsMode::System
    })
}

/// Open the API backend from the global options and the environment.
#[allow(clippy::print_stderr)]
pub fn open(g: &GlobalArgs) -> anyhow::Result<Arc<dyn Hypervisor>> {
    let a = &g.api;
    let url = a
        .api_url
        .clone()
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(|| {
            usage("--backend api needs the API URL")
                .hint("pass --api-url https://pve1:8006 (or set PHX_API_URL)")
        })?;
    let mut opts = ApiOptions::new(url.clone(), credentials(a)?);
    opts.tls = tls(a)?;
    if opts.tls == TlsMode::Insecure {
        eprintln!(
            "warning: --insecure: the certificate of {url} is not verified; anyone on the way can read the credentials and pose as the node (use --fingerprint or --ca-cert)"
        );
    }
    if let Some(t) = &g.ssh {
        if t.trim().is_empty() || t.starts_with('-') {
            return Err(usage(format!("--ssh {t:?} is not an ssh target"))
                .hint("give user@host, e.g. --ssh root@pve1")
                .into());
        }
        let mut ssh = SshOptions::new(t.clone());
        if let Some(etc) = env_nonempty("PHX_PVE_ETC") {
            ssh.pve_etc = PathBuf::from(etc);
        }
        opts.ssh = Some(ssh);
    }
    opts.node = g.node.clone();
    // --task-timeout, or the hidden test knob PHX_TASK_TIMEOUT_MS
    if let Some(t) = crate::backend::task_timeout(g)? {
        opts.timeouts = opts.timeouts.with_task_timeout(t);
    }
    let hv = ApiBackend::new(opts).map_err(|e| usage(e.to_string()))?;
    Ok(Arc::new(hv))
}
