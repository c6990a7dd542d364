//! What every command needs: global options, output, inventory, backend, engine, progress.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use phx_core::backend::Hypervisor;
use phx_core::config::{DEFAULT_CONFIG_DIR, Inventory, LoadOptions, Validation};
use phx_core::engine::{CancelToken, Engine, EngineOptions};
use phx_core::types::NodeName;

use crate::backend::{self, Opened};
use crate::cli::GlobalArgs;
use crate::error::{CliError, EXIT_USAGE, usage};
use crate::output::Output;
use crate::progress::{Mode, Progress};

pub struct Ctx {
    pub g: GlobalArgs,
    pub out: Output,
    pub cancel: CancelToken,
    /// `--rerun-features` of the converge commands.
    pub rerun_features: bool,
    opened: Option<Opened>,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ctx")
    }
}

impl Ctx {
    pub fn new(g: GlobalArgs, cancel: CancelToken) -> Self {
        let out = Output::new(g.output, g.color);
        Self {
            g,
            out,
            cancel,
            rerun_features: false,
            opened: None,
        }
    }

    pub fn load_options(&self) -> LoadOptions {
        LoadOptions {
            config_dir: self
                .g
                .config_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_DIR)),
            scripts_dir: self.g.scripts_dir.clone(),
        }
    }

    /// Check the config without failing.
    pub fn check(&self) -> Validation {
        Inventory::check(&self.load_options())
    }

    /// Load the config; an invalid one is a usage error listing every problem.
    pub fn inventory(&self) -> anyhow::Result<Inventory> {
        let opts = self.load_options();
        match Inventory::load(&opts) {
            Ok(inv) => {
                for w in &inv.warnings {
                    tracing::info!("{w}");
                }
                static TOLD: std::sync::atomic::AtomicBool =
                    std::sync::atomic::AtomicBool::new(false);
                if !inv.warnings.is_empty()
                    && !TOLD.swap(true, std::sync::atomic::Ordering::Relaxed)
                {
                    let n = inv.warnings.len();
                    tracing::warn!(
                        "the config has {n} warning{}; `phx config validate` shows them",
                        if n == 1 { "" } else { "s" }
                    );
                }
                Ok(inv)
            }
            Err(e) => {
                let n = e.errors.len();
                let mut msg = format!(
                    "the config in {} is invalid ({n} error{}):",
                    opts.config_dir.display(),
                    if n == 1 { "" } else { "s" }
                );
                for f in &e.errors {
                    msg.push_str(&format!("\n  {f}"));
                }
                Err(CliError {
                    code: EXIT_USAGE,
                    message: msg,
                    hint: Some(
                        "`phx config validate` lists every finding; nothing was changed".into(),
                    ),
                }
                .into())
            }
        }
    }

    /// The backend (opened once).
    pub async fn backend(&mut self) -> anyhow::Result<Arc<dyn Hypervisor>> {
        if self.opened.is_none() {
            self.opened = Some(backend::open(&self.g, &self.cancel).await?);
        }
        Ok(self
            .opened
            .as_ref()
            .map(|o| o.hv.clone())
            .ok_or_else(|| usage("no backend"))?)
    }

    pub fn node(&self) -> anyhow::Result<Option<NodeName>> {
        match &self.g.node {
            Some(n) => Ok(Some(
                NodeName::new(n.clone()).map_err(|e| usage(format!("--node: {e}")))?,
            )),
            None => Ok(None),
        }
    }

    pub async fn engine(&mut self, inv: Inventory) -> anyhow::Result<Engine> {
        let hv = self.backend().await?;
        let mut opts = EngineOptions {
            jobs: usize::from(self.g.jobs),
            node: self.node()?,
            cancel: self.cancel.clone(),
            rerun_features: self.rerun_features,
            ..EngineOptions::default()
        };
        // hidden test knob: the first wait of the retry rule (doubling, at most 16 times it)
        if let Some(d) = backend::env_ms("PHX_RETRY_DELAY_MS")? {
            opts.retry.initial = d;
            opts.retry.max = d.saturating_mul(16);
        }
        Ok(Engine::new(hv, inv).with_options(opts))
    }

    pub fn progress(&self) -> Progress {
        let mode = if self.g.quiet || self.out.json() {
            Mode::Silent
        } else if self.g.no_progress || !std::io::stderr().is_terminal() {
            if self.g.no_progress {
                Mode::Silent
            } else {
                Mode::Lines
            }
        } else {
            Mode::Bars
        };
        Progress::new(
            mode,
            // script output at -v, also with --no-progress; never with -q or -o json
            self.g.verbose > 0 && !self.g.quiet && !self.out.json(),
            crate::backend::logs_dir(),
        )
    }
}
