//! phx-core as a library: load a Phoenix config directory, plan `up`, print the plan, and
//! apply it with a [`Reporter`] of our own that writes every event as one JSON line.
//!
//! ```sh
//! cargo run -p phx-core --example plan_and_apply                        # the example homelab
//! cargo run -p phx-core --example plan_and_apply -- CONFIG_DIR [SCRIPTS_DIR]
//! ```
//!
//! The guests go to the in-memory fake Proxmox of `phx-testkit`, so this runs anywhere; a
//! real cluster only needs another [`phx_core::Hypervisor`]: `phx_backend_pct::PctBackend`
//! (pct/qm on the node, or over ssh) or `phx_backend_api::ApiBackend` (the HTTP API).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use phx_core::config::LoadOptions;
use phx_core::{Engine, Event, Inventory, Operation, Outcome, Plan, Reporter, RunResult};
use phx_testkit::{FakeBackend, FakeCluster};
use serde_json::{Value, json};

/// A reporter that writes each event as one JSON object per line.
struct JsonLines<W> {
    out: Mutex<W>,
}

impl<W: Write + Send> Reporter for JsonLines<W> {
    fn report(&self, event: &Event<'_>) {
        let line = event_json(event);
        if let Ok(mut out) = self.out.lock() {
            // a closed pipe must not stop the run; the engine goes on either way
            let _ = writeln!(out, "{line}");
        }
    }
}

fn millis(d: &Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn event_json(e: &Event<'_>) -> Value {
    match e {
        Event::PlanComputed { guests, actions } => {
            json!({"event": "plan-computed", "guests": guests, "actions": actions})
        }
        Event::GuestStarted { id, kind, name } => {
            json!({"event": "guest-started", "id": id, "kind": kind, "name": name})
        }
        Event::StepStarted { id, op, detail } => {
            json!({"event": "step-started", "id": id, "op": op, "detail": detail})
        }
        Event::StepFinished {
            id,
            op,
            duration,
            error,
        } => json!({
            "event": "step-finished", "id": id, "op": op,
            "ms": millis(duration), "error": error,
        }),
        Event::TaskProgress { id, upid, message } => {
            json!({"event": "task", "id": id, "upid": upid, "message": message})
        }
        Event::Retry {
            id,
            op,
            attempt,
            delay,
            error,
        } => json!({
            "event": "retry", "id": id, "op": op, "attempt": attempt,
            "delay_ms": millis(delay), "error": error,
        }),
        Event::Warning { id, message } => {
            json!({"event": "warning", "id": id, "message": message})
        }
        Event::Output { id, source, line } => {
            json!({"event": "output", "id": id, "source": source, "line": line})
        }
        Event::GuestFinished { id, outcome } => {
            json!({"event": "guest-finished", "id": id, "outcome": outcome})
        }
        Event::HostStepStarted { op, detail } => {
            json!({"event": "host-step-started", "op": op, "detail": detail})
        }
        Event::HostStepFinished {
            op,
            duration,
            error,
        } => json!({
            "event": "host-step-finished", "op": op, "ms": millis(duration), "error": error,
        }),
        Event::HostOutput { source, line } => {
            json!({"event": "host-output", "source": source, "line": line})
        }
        // `Event` is non-exhaustive: newer events still make a line
        other => json!({"event": "other", "debug": format!("{other:?}")}),
    }
}

/// The plan as text: one line per guest, one per action with its reason.
fn write_plan(plan: &Plan, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "plan: {} changes in {} guests",
        plan.changes(),
        plan.guests.len()
    )?;
    for g in &plan.guests {
        writeln!(out, "{} {} {} ({:?})", g.kind, g.id, g.name, g.presence)?;
        for a in &g.actions {
            if a.detail.is_empty() {
                writeln!(out, "    {} ({})", a.op, a.reason)?;
            } else {
                writeln!(out, "    {} {} ({})", a.op, a.detail, a.reason)?;
            }
        }
        if g.boot_start {
            writeln!(out, "    start (start_at_boot, in boot order)")?;
        }
        if let Some(e) = &g.error {
            writeln!(out, "    error: {e}")?;
        }
    }
    Ok(())
}

/// Load `config_dir`, plan `up` for every guest, write the plan as text to `out`, apply it to
/// a fresh fake cluster with the events as JSON lines to `out`; `out` comes back at the end.
pub fn run<W: Write + Send>(
    config_dir: &Path,
    scripts_dir: &Path,
    mut out: W,
) -> Result<(RunResult, W), Box<dyn std::error::Error>> {
    let inventory = Inventory::load(&LoadOptions {
        config_dir: config_dir.to_path_buf(),
        scripts_dir: Some(scripts_dir.to_path_buf()),
    })?;
    let engine = Engine::new(Arc::new(FakeBackend::new(FakeCluster::new())), inventory);
    let ids = engine.inventory().ids();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let plan = rt.block_on(engine.plan(&ids, Operation::Up))?;
    write_plan(&plan, &mut out)?;
    let reporter = JsonLines {
        out: Mutex::new(out),
    };
    let result = rt.block_on(engine.apply(&plan, &reporter));
    let out = reporter
        .out
        .into_inner()
        .map_err(|_| "the reporter's writer was poisoned")?;
    Ok((result, out))
}

fn main() -> ExitCode {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/homelab");
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let config_dir = args.next().unwrap_or_else(|| example.join("etc"));
    let scripts_dir = args
        .next()
        .unwrap_or_else(|| config_dir.join("..").join("bin"));
    match run(&config_dir, &scripts_dir, std::io::stdout()) {
        Ok((result, _)) if result.count(Outcome::Failed) + result.count(Outcome::Skipped) == 0 => {
            ExitCode::SUCCESS
        }
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e}");
            ExitCode::FAILURE
        }
    }
}
