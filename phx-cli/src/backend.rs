//! Choosing and opening the backend. The sim backend is never chosen silently.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use phx_core::backend::Hypervisor;
use phx_core::engine::CancelToken;
use phx_testkit::{FakeBackend, Fault};

use crate::cli::{BackendKind, GlobalArgs};
use crate::error::{CliError, EXIT_USAGE, usage};

/// An open backend and whatever must live as long as it (the sim state lock).
pub struct Opened {
    pub hv: Arc<dyn Hypervisor>,
    pub kind: BackendKind,
    _lock: Option<File>,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Opened({:?})", self.kind)
    }
}

fn on_path(prog: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()))
}

/// The backend to use: `--backend`/`PHX_BACKEND`, else pct when `pct` is on PATH.
pub fn choose(g: &GlobalArgs) -> Result<BackendKind, CliError> {
    if let Some(k) = g.backend {
        return Ok(k);
    }
    if on_path("pct") {
        return Ok(BackendKind::Pct);
    }
    Err(CliError {
        code: EXIT_USAGE,
        message: "no backend chosen, and `pct` is not on PATH (this is not a Proxmox node)".into(),
        hint: Some("use `--backend api` with PHX_API_URL and PHX_API_TOKEN to drive a node over its HTTP API, or `--backend sim` to try phx on a simulated cluster (PHX_BACKEND sets the default)".into()),
    })
}

/// `$XDG_STATE_HOME/phx/sim.json` (or `~/.local/state/phx/sim.json`).
pub fn default_sim_state() -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."))
                .join(".local/state")
        });
    base.join("phx").join("sim.json")
}

/// `$XDG_STATE_HOME/phx/logs`: per-guest script logs.
pub fn logs_dir() -> PathBuf {
    default_sim_state().with_file_name("logs")
}

/// The sim state file, absolute (guest scratch directories are derived from it and used as
/// working directories).
pub fn sim_state(g: &GlobalArgs) -> PathBuf {
    let p = g.sim_state.clone().unwrap_or_else(default_sim_state);
    std::path::absolute(&p).unwrap_or(p)
}

/// Open the chosen backend.
pub async fn open(g: &GlobalArgs, cancel: &CancelToken) -> anyhow::Result<Opened> {
    let kind = choose(g)?;
    match kind {
        BackendKind::Sim => open_sim(g, cancel).await,
        BackendKind::Pct => open_pct(g),
        BackendKind::Api => Ok(Opened {
            hv: crate::api_args::open(g)?,
            kind: BackendKind::Api,
            _lock: None,
        }),
    }
}

/// A duration in milliseconds from the environment (a test knob such as
/// `PHX_SIM_LATENCY_MS`); `None` when unset.
pub fn env_ms(key: &str) -> Result<Option<Duration>, CliError> {
    match std::env::var(key) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse::<u64>()
            .map(|ms| Some(Duration::from_millis(ms)))
            .map_err(|_| usage(format!("{key}={v:?} is not a number of milliseconds"))),
        _ => Ok(None),
    }
}

/// How long to wait for one task: `--task-timeout`, else the hidden test knob
/// `PHX_TASK_TIMEOUT_MS`, else the backend's per-type defaults.
pub fn task_timeout(g: &GlobalArgs) -> Result<Option<Duration>, CliError> {
    match g.task_timeout {
        Some(t) => Ok(Some(t)),
        None => env_ms("PHX_TASK_TIMEOUT_MS"),
    }
}

/// The pct/qm backend on this node, or on `--ssh TARGET`.
fn open_pct(g: &GlobalArgs) -> anyhow::Result<Opened> {
    let runner: Arc<dyn phx_backend_pct::CommandRunner> = match &g.ssh {
        Some(t) if t.trim().is_empty() || t.starts_with('-') => {
            return Err(usage(format!("--ssh {t:?} is not an ssh target"))
                .hint("give user@host, e.g. --ssh root@pve1")
                .into());
        }
        Some(t) => Arc::new(phx_backend_pct::SshRunner::new(t.clone())),
        None => Arc::new(phx_backend_pct::LocalRunner::new()),
    };
    let mut opts = phx_backend_pct::PctOptions::from_env();
    if let Some(t) = task_timeout(g)? {
        opts.task_timeout = t;
    }
    if let Some(n) = &g.node {
        opts.node = Some(
            phx_core::types::NodeName::new(n.clone()).map_err(|e| usage(format!("--node: {e}")))?,
        );
    }
    Ok(Opened {
        hv: Arc::new(phx_backend_pct::PctBackend::new(runner, opts)),
        kind: BackendKind::Pct,
        _lock: None,
    })
}

/// Take the sim state lock: wait up to 30 s for another phx, then refuse with a clear message.
async fn lock_state(path: &Path, cancel: &CancelToken) -> anyhow::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let lock_path = path.with_extension("lock");
    let mut f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("opening {}", lock_path.display()))?;
    crate::lock::wait_for_lock(
        &mut f,
        &lock_path,
        Duration::from_millis(100),
        cancel,
        |_, waited| {
            if waited.is_zero() {
                tracing::warn!(
                    "waiting for another phx using the simulated cluster {}",
                    path.display()
                );
            }
            if waited > Duration::from_secs(30) {
                return Err(CliError {
                    code: crate::error::EXIT_FAILED,
                    message: format!(
                        "another phx process has held the simulated cluster {} for 30 s",
                        path.display()
                    ),
                    hint: Some(
                        "wait for it to finish, or use another state file with --sim-state".into(),
                    ),
                }
                .into());
            }
            Ok(())
        },
    )
    .await?;
    Ok(f)
}

async fn open_sim(g: &GlobalArgs, cancel: &CancelToken) -> anyhow::Result<Opened> {
    let path = sim_state(g);
    // the knobs first: a typo in one leaves the state file alone
    let latency = match std::env::var("PHX_SIM_LATENCY_MS") {
        Ok(v) => v.trim().parse::<u64>().map_err(|_| {
            usage(format!(
                "PHX_SIM_LATENCY_MS={v:?} is not a number of milliseconds"
            ))
        })?,
        Err(_) => 200,
    };
    let faults = match std::env::var("PHX_SIM_FAULTS") {
        Ok(v) if !v.trim().is_empty() => parse_faults(&v)?,
        _ => Vec::new(),
    };
    let lock = lock_state(&path, cancel).await?;
    let fake = FakeBackend::open(&path)
        .with_context(|| format!("opening the simulated cluster {}", path.display()))?;
    fake.with(|c| {
        c.set_latency_ms(latency);
        c.faults.clear();
        for (op, f) in faults {
            c.fail_next(&op, f);
        }
        c.oplog.clear();
    });
    // PHX_SIM_READ_ONLY=1: every change fails and is named (proves a dry run writes nothing)
    let read_only = std::env::var("PHX_SIM_READ_ONLY").is_ok_and(|v| v == "1");
    let hv: Arc<dyn phx_core::backend::Hypervisor> = if read_only {
        Arc::new(phx_testkit::WriteTrap::new(Arc::new(fake)))
    } else {
        Arc::new(fake)
    };
    Ok(Opened {
        hv,
        kind: BackendKind::Sim,
        _lock: Some(lock),
    })
}

/// `PHX_SIM_FAULTS`: comma-separated `OP:FAULT[:COUNT]`.
///
/// OP is an operation of the simulated cluster (`lxc.start`, `vm.clone`, `lxc.create`,
/// `lxc.config.update`, `aplinfo.download`, ... — [`phx_testkit::fake::FAULT_OPS`]; any other
/// name is refused, since it would inject nothing); without the `lxc.`/`vm.` prefix it applies
/// to both kinds. FAULT is `lock-timeout`, `http-596` (any 595-599), `task-error[=MESSAGE]`,
/// `error[=MESSAGE]` or `lost-response`. COUNT (default 1) repeats it for that many calls.
/// Example: `start:lock-timeout:2,lxc.clone:task-error=disk full`.
pub fn parse_faults(spec: &str) -> Result<Vec<(String, Fault)>, CliError> {
    let mut out = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let bad = || {
            usage(format!("PHX_SIM_FAULTS item {item:?} is not OP:FAULT[:COUNT]")).hint("faults are lock-timeout, http-596, task-error[=MSG], error[=MSG], lost-response; e.g. start:lock-timeout:2")
        };
        let mut parts = item.splitn(2, ':');
        let op = parts.next().filter(|s| !s.is_empty()).ok_or_else(bad)?;
        let rest = parts.next().ok_or_else(bad)?;
        let (fault, count) = match rest.rsplit_once(':') {
            Some((f, n)) if n.bytes().all(|b| b.is_ascii_digit()) && !n.is_empty() => {
                (f, n.parse::<usize>().map_err(|_| bad())?)
            }
            _ => (rest, 1),
        };
        let (name, msg) = fault
            .split_once('=')
            .map_or((fault, None), |(a, b)| (a, Some(b.to_string())));
        let f = match name {
            "lock-timeout" => Fault::LockTimeout,
            "lost-response" => Fault::LostResponse { status: 596 },
            "task-error" => Fault::TaskError {
                message: msg.unwrap_or_else(|| "injected task failure".into()),
            },
            "error" => Fault::Error {
                status: 500,
                message: msg.unwrap_or_else(|| "injected failure".into()),
            },
            n if n.starts_with("http-") => {
                let status = n[5..]
                    .parse::<u16>()
                    .ok()
                    .filter(|s| (595..=599).contains(s))
                    .ok_or_else(bad)?;
                Fault::Http { status }
            }
            _ => return Err(bad()),
        };
        let ops: Vec<String> = if op.contains('.') {
            vec![op.to_string()]
        } else {
            vec![format!("lxc.{op}"), format!("vm.{op}")]
        };
        let known = |o: &String| phx_testkit::fake::FAULT_OPS.contains(&o.as_str());
        if !ops.iter().any(known) {
            return Err(usage(format!(
                "PHX_SIM_FAULTS item {item:?}: the simulated cluster has no operation {op:?}"
            ))
            .hint(format!(
                "the operations are {}; without the lxc./vm. prefix an operation applies to both kinds",
                phx_testkit::fake::FAULT_OPS.join(", ")
            )));
        }
        // a kind without the operation gets no fault
        let ops: Vec<String> = ops.into_iter().filter(known).collect();
        for o in ops {
            for _ in 0..count.min(1000) {
                out.push((o.clone(), f.clone()));
            }
        }
    }
    Ok(out)
}

/// Start the simulated cluster over.
pub async fn reset_sim(g: &GlobalArgs, cancel: &CancelToken) -> anyhow::Result<PathBuf> {
    let path = sim_state(g);
    let _lock = lock_state(&path, cancel).await?;
    for p in [path.clone(), path.with_extension("guests")] {
        let r = if p.is_dir() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
        match r {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {}", p.display())),
        }
    }
    FakeBackend::open(&path).with_context(|| format!("creating {}", path.display()))?;
    Ok(path)
}
