//! `phx status`, `phx lxc status`, `phx vm status`: defined guests with actual state and drift.

use std::collections::BTreeSet;

use serde::Serialize;

use phx_core::engine::{Operation, Step};
use phx_core::types::{GuestId, GuestKind};

use crate::cmd::check_ids;
use crate::context::Ctx;
use crate::error::EXIT_OK;
use crate::output::Output;

#[derive(Debug, Serialize)]
pub struct Row {
    pub id: u32,
    pub kind: GuestKind,
    pub name: String,
    pub node: String,
    /// `running`, `stopped` or `absent`.
    pub status: String,
    pub template: bool,
    pub lock: Option<String>,
    pub drift: Vec<String>,
}

/// Status rows of `ids` (all of `kind` when empty): one cluster listing plus a drift plan.
pub async fn rows(
    ctx: &mut Ctx,
    kind: Option<GuestKind>,
    ids: &[GuestId],
) -> anyhow::Result<Vec<Row>> {
    rows_settled(ctx, kind, ids, &BTreeSet::new()).await
}

/// [`rows`], leaving `settled` guests (just found converged by a run) out of the drift plan:
/// they have no drift, and reading each of them again would double a no-op `up`'s reads.
pub async fn rows_settled(
    ctx: &mut Ctx,
    kind: Option<GuestKind>,
    ids: &[GuestId],
    settled: &BTreeSet<GuestId>,
) -> anyhow::Result<Vec<Row>> {
    let inv = ctx.inventory()?;
    check_ids(&inv, kind, ids, "status")?;
    let wanted: Vec<GuestId> = if ids.is_empty() {
        inv.guests()
            .filter(|g| kind.is_none_or(|k| g.kind() == k))
            .map(|g| g.id())
            .collect()
    } else {
        ids.to_vec()
    };
    let engine = ctx.engine(inv).await?;
    let to_plan: Vec<GuestId> = wanted
        .iter()
        .copied()
        .filter(|id| !settled.contains(id))
        .collect();
    let plan = if to_plan.is_empty() && !wanted.is_empty() {
        None
    } else {
        Some(
            engine
                .plan(
                    &to_plan,
                    Operation::Converge {
                        require_existing: false,
                    },
                )
                .await?,
        )
    };
    let listing = engine.backend().guests().await?;
    let mut out = Vec::new();
    for id in &wanted {
        let Some(g) = engine.inventory().guest(*id) else {
            continue;
        };
        let actual = listing.iter().find(|s| s.id == *id);
        let gp = plan.as_ref().and_then(|p| p.guest(*id));
        let mut drift = Vec::new();
        if let Some(gp) = gp {
            if let Some(e) = &gp.error {
                drift.push(format!("error: {e}"));
            }
            if actual.is_none() {
                drift.push("absent".into());
            } else {
                for a in gp
                    .actions
                    .iter()
                    .filter(|a| !matches!(a.step, Step::Converge))
                {
                    if a.changes.is_empty() {
                        drift.push(if a.detail.is_empty() {
                            a.op.to_string()
                        } else {
                            format!("{} {}", a.op, a.detail)
                        });
                    } else {
                        drift.extend(a.changes.iter().map(ToString::to_string));
                    }
                }
            }
            drift.extend(gp.notes.iter().map(|n| format!("note: {n}")));
        }
        out.push(Row {
            id: id.get(),
            kind: g.kind(),
            name: g.name().to_string(),
            node: actual
                .map(|a| a.node.to_string())
                .or_else(|| gp.map(|p| p.node.to_string()))
                .unwrap_or_default(),
            status: actual.map_or("absent".to_string(), |a| a.status.to_string()),
            // what Proxmox says once the guest exists (as `list` shows it); the config's
            // intent before
            template: actual.map_or_else(|| g.is_template(), |a| a.template),
            lock: actual.and_then(|a| a.lock.clone()),
            drift,
        });
    }
    Ok(out)
}

/// The status table.
pub fn status_table(out: &Output, rows: &[Row]) -> String {
    let mut t = out.table();
    t.set_header(vec![
        "ID", "KIND", "NAME", "NODE", "STATUS", "TEMPLATE", "LOCK", "DRIFT",
    ]);
    for r in rows {
        let drift = match r.drift.len() {
            0 => "-".to_string(),
            1 => r.drift[0].clone(),
            n => format!("{} (+{} more)", r.drift[0], n - 1),
        };
        let status = match r.status.as_str() {
            "running" => out.paint("running", "32"),
            "absent" => out.paint("absent", "33"),
            s => s.to_string(),
        };
        t.add_row(vec![
            r.id.to_string(),
            r.kind.to_string(),
            r.name.clone(),
            r.node.clone(),
            status,
            if r.template {
                "yes".into()
            } else {
                String::new()
            },
            r.lock.clone().unwrap_or_default(),
            drift,
        ]);
    }
    t.to_string()
}

pub async fn run(ctx: &mut Ctx, kind: Option<GuestKind>, ids: &[GuestId]) -> anyhow::Result<u8> {
    let rows = rows(ctx, kind, ids).await?;
    if ctx.out.json() {
        ctx.out.json_doc(&serde_json::json!({ "guests": rows }));
    } else {
        ctx.out.text(&status_table(&ctx.out, &rows));
    }
    Ok(EXIT_OK)
}
