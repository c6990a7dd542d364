//! `phx hypervisor setup|test|status`: converge and check the Proxmox host.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use phx_core::engine::host::{HostOptions, HostPlan, HostResult};
use serde::Serialize;

use crate::cmd::guest::test::{exit_code, human, write_junit};
use crate::context::Ctx;
use crate::error::{CliError, EXIT_FAILED, EXIT_OK, usage};

#[derive(Debug, Subcommand)]
pub enum HypervisorCommand {
    /// Converge the host: storages, users, cluster firewall, DNS, timezone, templates, then the
    /// site's host steps (<scripts-dir>/hypervisor_setup/*.sh) in order, fail-fast
    Setup(SetupArgs),
    /// Check the host: built-in checks and the host test suites of the config
    Test(TestArgs),
    /// Nodes, version, storages with usage and guest counts
    Status,
}

#[derive(Debug, Args)]
pub struct SetupArgs {
    /// Run only this host step (repeatable; e.g. `setup_zfs` or `hypervisor_feature_setup_zfs`); also re-runs a step that completed before
    #[arg(long = "step", value_name = "NAME")]
    pub steps: Vec<String>,
    /// Skip this host step (repeatable)
    #[arg(long = "skip", value_name = "NAME")]
    pub skip: Vec<String>,
    /// Remove this storage when the config does not define it (repeatable; built-in storages are never removed)
    #[arg(long, value_name = "STORAGE")]
    pub prune: Vec<String>,
    /// Allow destructive host steps (ZFS runs with --mode force-destructive instead of safe)
    #[arg(long)]
    pub allow_destructive: bool,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// Run only this suite (`builtin` or one of the config's `tests`)
    #[arg(long, value_name = "NAME")]
    pub suite: Option<String>,
    /// Also write a JUnit XML report
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

pub async fn run(ctx: &mut Ctx, cmd: HypervisorCommand) -> anyhow::Result<u8> {
    match cmd {
        HypervisorCommand::Setup(a) => setup(ctx, a).await,
        HypervisorCommand::Test(a) => test(ctx, a).await,
        HypervisorCommand::Status => status(ctx).await,
    }
}

/// Where the host steps completed on a node are remembered (`--backend sim`: next to its state).
/// The record is this workstation's: from another machine, completed steps run again (the
/// site's host scripts must be safe to re-run, as they were under the shell tool).
fn state_file(ctx: &Ctx, node: &str) -> PathBuf {
    match ctx.g.backend {
        Some(crate::cli::BackendKind::Sim) => {
            crate::backend::sim_state(&ctx.g).with_extension("hypervisor.json")
        }
        // keyed by the cluster and the node: two clusters with a node `pve` do not share it
        _ => {
            let cluster = crate::lock::target(&ctx.g).unwrap_or_default();
            crate::backend::default_sim_state()
                .with_file_name("hypervisor")
                .join(format!(
                    "{}.json",
                    crate::lock::file_name(&format!("{cluster} node {node}"))
                ))
        }
    }
}

fn load_completed(path: &std::path::Path) -> BTreeMap<String, String> {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn save_completed(path: &std::path::Path, done: &BTreeMap<String, String>) -> anyhow::Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(done)?)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn plan_human(ctx: &Ctx, plan: &HostPlan) -> String {
    let mut s = String::new();
    let head = ctx.out.paint(&format!("~ host {}", plan.node), "33");
    for a in &plan.actions {
        s.push_str(&format!("{head}: {} {} ({})\n", a.op, a.detail, a.reason));
    }
    for n in &plan.notes {
        s.push_str(&format!("{head}: note: {n}\n"));
    }
    if plan.actions.is_empty() {
        s.push_str(&format!(
            "No changes: host {} matches its config.\n",
            plan.node
        ));
    } else {
        s.push_str(&format!(
            "{} change{} on host {}.\n",
            plan.actions.len(),
            if plan.actions.len() == 1 { "" } else { "s" },
            plan.node
        ));
    }
    s
}

#[derive(Serialize)]
struct SetupJson<'a> {
    node: &'a str,
    result: &'static str,
    done: &'a [phx_core::engine::host::HostAction],
    failed: Option<serde_json::Value>,
    reboot_required: Option<&'a str>,
    notes: &'a [String],
    duration_ms: u64,
}

async fn setup(ctx: &mut Ctx, a: SetupArgs) -> anyhow::Result<u8> {
    let inv = ctx.inventory()?;
    let engine = ctx.engine(inv).await?;
    let node = match &ctx.g.node {
        Some(n) => n.clone(),
        None => engine.backend().default_node().await?.to_string(),
    };
    let state = state_file(ctx, &node);
    let opts = HostOptions {
        only: a.steps,
        skip: a.skip,
        prune: a.prune,
        allow_destructive: a.allow_destructive,
        completed: load_completed(&state),
    };
    let plan = engine.plan_host(&opts).await.map_err(|e| match e {
        phx_core::Error::InvalidRequest { message, .. } => anyhow::Error::new(usage(message)),
        other => anyhow::Error::new(other),
    })?;
    if ctx.g.dry_run {
        if ctx.out.json() {
            ctx.out.json_doc(&plan);
        } else {
            ctx.out.text(&plan_human(ctx, &plan));
        }
        return Ok(EXIT_OK);
    }
    let progress = ctx.progress();
    let res: HostResult = engine.apply_host(&plan, &opts, &progress).await;
    let mut completed = opts.completed.clone();
    completed.extend(res.completed.clone());
    if !res.completed.is_empty() {
        save_completed(&state, &completed).map_err(|e| {
            anyhow::anyhow!(
                "remembering the completed host steps in {}: {e}",
                state.display()
            )
        })?;
    }
    let code = if res.failed.is_some() {
        EXIT_FAILED
    } else {
        EXIT_OK
    };
    if ctx.out.json() {
        ctx.out.json_doc(&SetupJson {
            node: plan.node.as_str(),
            result: if res.failed.is_some() { "failed" } else { "ok" },
            done: &res.done,
            failed: res
                .failed
                .as_ref()
                .map(|(a, e)| serde_json::json!({"op": a.op, "detail": a.detail, "error": e})),
            reboot_required: res.reboot_required.as_deref(),
            notes: &plan.notes,
            duration_ms: res.duration_ms,
        });
    } else {
        let mut s = String::new();
        for d in &res.done {
            s.push_str(&format!("done    {} {}\n", d.op, d.detail));
        }
        for n in &plan.notes {
            s.push_str(&format!("note    {n}\n"));
        }
        let skipped = plan.actions.len() - res.done.len() - usize::from(res.failed.is_some());
        match (&res.failed, &res.reboot_required) {
            (Some((a, _)), _) => s.push_str(&format!("failed  {} {}\n{} done, 1 failed, {skipped} not run (fail-fast)\n", a.op, a.detail, res.done.len())),
            (None, Some(step)) => s.push_str(&format!("{} done; {step} needs a reboot: reboot node {}, then run `phx hypervisor setup` again to continue after it ({skipped} steps left)\n", res.done.len(), plan.node)),
            (None, None) if res.done.is_empty() => s.push_str(&format!("No changes: host {} matches its config.\n", plan.node)),
            (None, None) => s.push_str(&format!("{} done on host {}.\n", res.done.len(), plan.node)),
        }
        ctx.out.text(&s);
    }
    if let Some((a, e)) = res.failed {
        return Err(CliError { code, message: format!("hypervisor setup stopped at {} {}: {e}", a.op, a.detail), hint: Some("fix the cause and run `phx hypervisor setup` again; completed steps are not repeated".into()) }.into());
    }
    Ok(code)
}

async fn test(ctx: &mut Ctx, a: TestArgs) -> anyhow::Result<u8> {
    let inv = ctx.inventory()?;
    let engine = ctx.engine(inv).await?;
    if let Some(s) = &a.suite
        && !engine.host_suites().contains(s)
    {
        return Err(usage(format!(
            "no host test suite {s:?}; available: {}",
            engine.host_suites().join(", ")
        ))
        .into());
    }
    let progress = ctx.progress();
    let report = engine.test_host(a.suite.as_deref(), &progress).await?;
    if let Some(path) = &a.junit {
        let title = format!("phx hypervisor test ({})", report.node);
        write_junit(
            path,
            &title,
            &format!("host.{}", report.node),
            &report.results,
        )?;
    }
    if ctx.out.json() {
        ctx.out.json_doc(&serde_json::json!({ "node": report.node, "passed": report.results.len() - report.failed(), "failed": report.failed(), "tests": report.results }));
    } else {
        ctx.out.text(&human(ctx, &report.results));
    }
    Ok(exit_code(&report.results))
}

async fn status(ctx: &mut Ctx) -> anyhow::Result<u8> {
    let hv = ctx.backend().await?;
    let version = hv.version().await?;
    let nodes = hv.nodes().await?;
    let guests = hv.guests().await?;
    let mut storages = Vec::new();
    for n in &nodes {
        if n.status == "online" {
            for s in hv.storages(&n.name).await? {
                storages.push((n.name.clone(), s));
            }
        }
    }
    if ctx.out.json() {
        ctx.out.json_doc(&serde_json::json!({
            "version": version,
            "nodes": nodes.iter().map(|n| serde_json::json!({
                "node": n.name, "status": n.status, "maxcpu": n.maxcpu, "maxmem": n.maxmem,
                "containers": guests.iter().filter(|g| g.node == n.name && g.kind == phx_core::types::GuestKind::Lxc).count(),
                "vms": guests.iter().filter(|g| g.node == n.name && g.kind == phx_core::types::GuestKind::Vm).count(),
                "running": guests.iter().filter(|g| g.node == n.name && g.status == phx_core::backend::PowerState::Running).count(),
            })).collect::<Vec<_>>(),
            "storages": storages.iter().map(|(n, s)| serde_json::json!({"node": n, "storage": s})).collect::<Vec<_>>(),
        }));
        return Ok(EXIT_OK);
    }
    let gib = |b: u64| format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64);
    let mut t = ctx.out.table();
    t.set_header(vec![
        "NODE",
        "STATUS",
        "CPUS",
        "MEMORY",
        "CONTAINERS",
        "VMS",
        "RUNNING",
    ]);
    for n in &nodes {
        let on = |k: phx_core::types::GuestKind| {
            guests
                .iter()
                .filter(|g| g.node == n.name && g.kind == k)
                .count()
        };
        t.add_row(vec![
            n.name.to_string(),
            n.status.clone(),
            n.maxcpu.map(|c| c.to_string()).unwrap_or_default(),
            n.maxmem.map(gib).unwrap_or_default(),
            on(phx_core::types::GuestKind::Lxc).to_string(),
            on(phx_core::types::GuestKind::Vm).to_string(),
            guests
                .iter()
                .filter(|g| g.node == n.name && g.status == phx_core::backend::PowerState::Running)
                .count()
                .to_string(),
        ]);
    }
    let mut st = ctx.out.table();
    st.set_header(vec![
        "NODE", "STORAGE", "TYPE", "CONTENT", "ACTIVE", "USED", "TOTAL", "USE%",
    ]);
    for (n, s) in &storages {
        let pct = if s.total > 0 {
            format!("{:.1}%", s.used as f64 * 100.0 / s.total as f64)
        } else {
            "-".into()
        };
        st.add_row(vec![
            n.to_string(),
            s.id.to_string(),
            s.kind.clone(),
            s.content.join(","),
            if s.active { "yes".into() } else { "no".into() },
            gib(s.used),
            gib(s.total),
            pct,
        ]);
    }
    ctx.out.text(&format!(
        "Proxmox VE {} (release {}) through the {} backend\n\n{t}\n\n{st}",
        version.version,
        version.release,
        hv.name()
    ));
    Ok(EXIT_OK)
}
