//! `phx lxc list` / `phx vm list`: every guest of a kind on the cluster.

use serde::Serialize;

use phx_core::backend::PowerState;
use phx_core::types::{GuestKind, NodeName};

use crate::context::Ctx;
use crate::error::EXIT_OK;

#[derive(Serialize)]
struct Row {
    id: u32,
    kind: GuestKind,
    name: Option<String>,
    node: NodeName,
    status: PowerState,
    template: bool,
    lock: Option<String>,
    managed: bool,
}

pub async fn run(ctx: &mut Ctx, kind: GuestKind) -> anyhow::Result<u8> {
    // The config is optional here: without one, nothing is managed.
    let defined = ctx.check().inventory;
    let hv = ctx.backend().await?;
    let mut rows: Vec<Row> = hv
        .guests()
        .await?
        .into_iter()
        .filter(|g| g.kind == kind)
        .map(|g| Row {
            managed: defined
                .as_ref()
                .and_then(|i| i.guest(g.id))
                .is_some_and(|d| d.kind() == kind),
            id: g.id.get(),
            kind,
            name: g.name,
            node: g.node,
            status: g.status,
            template: g.template,
            lock: g.lock,
        })
        .collect();
    rows.sort_by_key(|r| r.id);
    if ctx.out.json() {
        ctx.out.json_doc(&serde_json::json!({ "guests": rows }));
        return Ok(EXIT_OK);
    }
    let mut t = ctx.out.table();
    t.set_header(vec![
        "ID", "NAME", "NODE", "STATUS", "TEMPLATE", "LOCK", "MANAGED",
    ]);
    for r in &rows {
        t.add_row(vec![
            r.id.to_string(),
            r.name.clone().unwrap_or_default(),
            r.node.to_string(),
            r.status.to_string(),
            if r.template {
                "yes".into()
            } else {
                String::new()
            },
            r.lock.clone().unwrap_or_default(),
            if r.managed { "yes".into() } else { "no".into() },
        ]);
    }
    if rows.is_empty() {
        ctx.out.text(&format!(
            "No {} on the cluster.",
            if kind == GuestKind::Lxc {
                "containers"
            } else {
                "VMs"
            }
        ));
    } else {
        ctx.out.text(&t.to_string());
    }
    Ok(EXIT_OK)
}
