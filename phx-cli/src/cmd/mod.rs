//! One module per noun; each verb is thin glue over the engine.

pub mod completions;
pub mod config;
pub mod down;
pub mod guest;
pub mod hypervisor;
pub mod plan;
pub mod sim;
pub mod status;
pub mod up;

use std::collections::BTreeSet;
use std::io::{BufRead, IsTerminal, Write};

use phx_core::config::Inventory;
use phx_core::engine::{Operation, Plan, RunResult};
use phx_core::report::Outcome;
use phx_core::types::{GuestId, GuestKind};

use crate::context::Ctx;
use crate::error::{CliError, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_PARTIAL, usage};
use crate::output::{plan_human, plan_json, result_human, result_json};

/// Check that every id is defined, under the right noun.
pub fn check_ids(
    inv: &Inventory,
    kind: Option<GuestKind>,
    ids: &[GuestId],
    verb: &str,
) -> Result<(), CliError> {
    for id in ids {
        match (inv.guest(*id), kind) {
            (None, _) => {
                return Err(usage(format!("{id} is not defined in phoenix_lxc_configs.json or phoenix_vm_configs.json (config dir {})", inv.config_dir.display()))
                    .hint("`phx status` lists the defined guests"));
            }
            (Some(g), Some(k)) if g.kind() != k => {
                let (is, noun) = match g.kind() {
                    GuestKind::Lxc => ("a container", "lxc"),
                    GuestKind::Vm => ("a VM", "vm"),
                };
                return Err(usage(format!(
                    "{id} ({}) is {is}, not a {}",
                    g.name(),
                    if k == GuestKind::Lxc {
                        "container"
                    } else {
                        "VM"
                    }
                ))
                .hint(format!("use `phx {noun} {verb} {id}`")));
            }
            _ => {}
        }
    }
    Ok(())
}

/// The exit code of a run.
pub fn exit_for(r: &RunResult) -> u8 {
    if r.cancelled {
        return EXIT_INTERRUPTED;
    }
    match r.result() {
        "ok" => EXIT_OK,
        "partial" if r.count(Outcome::Changed) + r.count(Outcome::Unchanged) > 0 => EXIT_PARTIAL,
        _ => EXIT_FAILED,
    }
}

/// Print a plan, then fail (exit 1) when it could not run: a guest that cannot proceed, a
/// missing script, a step the backend cannot do. Nothing is changed either way.
pub fn show_checked_plan(
    ctx: &Ctx,
    engine: &phx_core::engine::Engine,
    plan: &Plan,
) -> anyhow::Result<u8> {
    show_plan(ctx, plan);
    engine.preflight(plan)?;
    let stuck: Vec<String> = plan
        .guests
        .iter()
        .filter(|g| g.error.is_some())
        .map(|g| format!("{} {}", g.kind.proxmox_word(), g.id))
        .collect();
    if !stuck.is_empty() {
        return Err(CliError {
            code: EXIT_FAILED,
            message: format!(
                "{} cannot proceed: {}",
                if stuck.len() == 1 {
                    "1 guest"
                } else {
                    "some guests"
                },
                stuck.join(", ")
            ),
            hint: Some(
                "the plan above says why for each; fix the config or the cluster and plan again"
                    .into(),
            ),
        }
        .into());
    }
    Ok(EXIT_OK)
}

/// Print a plan (dry run, `phx plan`).
pub fn show_plan(ctx: &Ctx, plan: &Plan) {
    if ctx.out.json() {
        ctx.out.json_doc(&plan_json(plan));
    } else {
        ctx.out.text(&plan_human(&ctx.out, plan));
    }
}

/// Ask on the terminal; refuse without `--yes` when stdin is not one.
pub fn confirm(ctx: &Ctx, question: &str) -> Result<bool, CliError> {
    if ctx.g.yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        return Err(usage(format!(
            "{question} — refusing without --yes because stdin is not a terminal"
        ))
        .hint("re-run with --yes (-y) to confirm"));
    }
    #[allow(clippy::print_stderr)]
    {
        eprint!("{question} [y/N] ");
        let _ = std::io::stderr().flush();
    }
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

/// Plan `op` for `ids`, show it on a dry run, otherwise apply it and report.
pub async fn run_op(
    ctx: &mut Ctx,
    kind: Option<GuestKind>,
    ids: &[GuestId],
    op: Operation,
    verb: &str,
) -> anyhow::Result<u8> {
    Ok(run_op_settled(ctx, kind, ids, op, verb).await?.0)
}

/// [`run_op`], also returning the guests the run found converged (unchanged, no notes): what
/// it read of them still stands, so a status table after it need not read them again.
pub async fn run_op_settled(
    ctx: &mut Ctx,
    kind: Option<GuestKind>,
    ids: &[GuestId],
    op: Operation,
    verb: &str,
) -> anyhow::Result<(u8, BTreeSet<GuestId>)> {
    let inv = ctx.inventory()?;
    check_ids(&inv, kind, ids, verb)?;
    let engine = ctx.engine(inv).await?;
    let plan = engine.plan(ids, op).await?;
    if ctx.g.dry_run {
        return Ok((show_checked_plan(ctx, &engine, &plan)?, BTreeSet::new()));
    }
    engine.preflight(&plan)?;
    if let Operation::Delete { .. } = op {
        let doomed: Vec<String> = plan
            .guests
            .iter()
            .filter(|g| g.error.is_none() && !g.actions.is_empty())
            .map(|g| format!("{} {} ({})", g.kind.proxmox_word(), g.id, g.name))
            .collect();
        if !doomed.is_empty()
            && !confirm(
                ctx,
                &format!(
                    "Destroy {} and {} disks?",
                    doomed.join(", "),
                    if doomed.len() == 1 { "its" } else { "their" }
                ),
            )?
        {
            return Err(CliError {
                code: EXIT_FAILED,
                message: "not confirmed; nothing was deleted".into(),
                hint: None,
            }
            .into());
        }
    }
    let progress = ctx.progress();
    progress.names(&plan);
    let result = engine.apply(&plan, &progress).await;
    if ctx.out.json() {
        ctx.out.json_doc(&result_json(&result));
    } else {
        ctx.out.text(&result_human(&ctx.out, &result));
    }
    let settled = result
        .guests
        .iter()
        .filter(|g| g.outcome == Outcome::Unchanged && g.notes.is_empty() && g.error.is_none())
        .map(|g| g.id)
        .collect();
    Ok((exit_for(&result), settled))
}
