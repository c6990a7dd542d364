//! `phx lxc snapshot create|list|rollback|delete <ID> [NAME]`.

use clap::Subcommand;
use phx_core::backend::manager;
use phx_core::types::{GuestId, GuestKind, NodeName, SnapshotName};

use crate::cmd::{check_ids, confirm};
use crate::context::Ctx;
use crate::error::{EXIT_FAILED, EXIT_OK, usage};

#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Take a snapshot
    Create {
        /// Guest id
        id: GuestId,
        /// Snapshot name (letters, digits, '-', '_'; not `current`)
        name: SnapshotName,
        /// Description
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List snapshots, oldest first
    List {
        /// Guest id
        id: GuestId,
    },
    /// Roll the guest back to a snapshot (asks, or needs --yes off a terminal)
    Rollback {
        /// Guest id
        id: GuestId,
        /// Snapshot name
        name: SnapshotName,
    },
    /// Delete a snapshot (asks, or needs --yes off a terminal)
    Delete {
        /// Guest id
        id: GuestId,
        /// Snapshot name
        name: SnapshotName,
    },
}

/// The node of guest `id`; `verb` names the command in the hint for a wrong noun.
async fn locate(
    ctx: &mut Ctx,
    kind: GuestKind,
    id: GuestId,
    verb: &str,
) -> anyhow::Result<NodeName> {
    let inv = ctx.inventory()?;
    check_ids(&inv, Some(kind), &[id], verb)?;
    let hv = ctx.backend().await?;
    let found = hv.guests().await?.into_iter().find(|g| g.id == id);
    match found {
        Some(g) if g.kind == kind => Ok(g.node),
        Some(g) => Err(usage(format!(
            "{id} is a {} on the cluster, not a {}",
            g.kind.proxmox_word(),
            kind.proxmox_word()
        ))
        .into()),
        None => Err(usage(format!(
            "{} {id} does not exist on the cluster",
            kind.proxmox_word()
        ))
        .hint(format!("create it with `phx {} create {id}`", kind.noun()))
        .into()),
    }
}

pub async fn run(ctx: &mut Ctx, kind: GuestKind, cmd: SnapshotCommand) -> anyhow::Result<u8> {
    let (id, verb) = match &cmd {
        SnapshotCommand::Create { id, .. } => (*id, "snapshot create"),
        SnapshotCommand::List { id } => (*id, "snapshot list"),
        SnapshotCommand::Rollback { id, .. } => (*id, "snapshot rollback"),
        SnapshotCommand::Delete { id, .. } => (*id, "snapshot delete"),
    };
    let node = locate(ctx, kind, id, verb).await?;
    let hv = ctx.backend().await?;
    let m = manager(hv.as_ref(), kind);
    let word = kind.proxmox_word();
    if ctx.g.dry_run && !matches!(cmd, SnapshotCommand::List { .. }) {
        return dry_run(ctx, m, &node, kind, cmd).await;
    }
    match cmd {
        SnapshotCommand::Create {
            name, description, ..
        } => {
            let t = m.snapshot_create(&node, id, &name, &description).await?;
            report(ctx, "created", id, &name, t.upid.as_deref());
        }
        SnapshotCommand::List { .. } => {
            let snaps = m.snapshots(&node, id).await?;
            if ctx.out.json() {
                ctx.out
                    .json_doc(&serde_json::json!({ "id": id, "snapshots": snaps }));
                return Ok(EXIT_OK);
            }
            if snaps.is_empty() {
                ctx.out.text(&format!("{word} {id} has no snapshots."));
                return Ok(EXIT_OK);
            }
            let mut t = ctx.out.table();
            t.set_header(vec!["NAME", "PARENT", "TAKEN (UTC)", "DESCRIPTION"]);
            for s in &snaps {
                t.add_row(vec![
                    s.name.clone(),
                    s.parent.clone().unwrap_or_default(),
                    s.snaptime
                        .map(phx_core::util::format_utc)
                        .unwrap_or_default(),
                    s.description.lines().next().unwrap_or("").to_string(),
                ]);
            }
            ctx.out.text(&t.to_string());
        }
        SnapshotCommand::Rollback { name, .. } => {
            if !confirm(
                ctx,
                &format!("Roll {word} {id} back to snapshot {name}, losing every change since?"),
            )? {
                return Err(crate::error::CliError {
                    code: EXIT_FAILED,
                    message: "not confirmed; nothing was rolled back".into(),
                    hint: None,
                }
                .into());
            }
            let t = m.snapshot_rollback(&node, id, &name).await?;
            report(ctx, "rolled back to", id, &name, t.upid.as_deref());
        }
        SnapshotCommand::Delete { name, .. } => {
            if !confirm(ctx, &format!("Delete snapshot {name} of {word} {id}?"))? {
                return Err(crate::error::CliError {
                    code: EXIT_FAILED,
                    message: "not confirmed; nothing was deleted".into(),
                    hint: None,
                }
                .into());
            }
            let t = m.snapshot_delete(&node, id, &name).await?;
            report(ctx, "deleted snapshot", id, &name, t.upid.as_deref());
        }
    }
    Ok(EXIT_OK)
}

/// `--dry-run`: check what Proxmox would check (the name is free, or the snapshot exists) and
/// say what would happen; nothing is changed and nothing is asked.
async fn dry_run(
    ctx: &Ctx,
    m: &dyn phx_core::backend::GuestManager,
    node: &NodeName,
    kind: GuestKind,
    cmd: SnapshotCommand,
) -> anyhow::Result<u8> {
    let word = kind.proxmox_word();
    let (id, name, what, must_exist) = match cmd {
        SnapshotCommand::Create { id, name, .. } => (id, name, "would create", false),
        SnapshotCommand::Rollback { id, name } => (id, name, "would roll back to", true),
        SnapshotCommand::Delete { id, name } => (id, name, "would delete snapshot", true),
        // listing changes nothing: the caller only comes here for changes
        SnapshotCommand::List { id } => {
            return Err(usage(format!("snapshot list {id} has no dry run")).into());
        }
    };
    let exists = m
        .snapshots(node, id)
        .await?
        .iter()
        .any(|s| s.name == name.as_str());
    if exists != must_exist {
        let message = if must_exist {
            format!("{word} {id} has no snapshot {name}")
        } else {
            format!("{word} {id} already has a snapshot {name}")
        };
        return Err(crate::error::CliError {
            code: EXIT_FAILED,
            message,
            hint: Some(format!(
                "`phx {} snapshot list {id}` shows its snapshots",
                kind.noun()
            )),
        }
        .into());
    }
    if ctx.out.json() {
        ctx.out.json_doc(&serde_json::json!({
            "id": id, "snapshot": name, "result": what, "dry_run": true
        }));
    } else {
        ctx.out
            .text(&format!("{id}: {what} {name} (dry run: nothing changed)"));
    }
    Ok(EXIT_OK)
}

fn report(ctx: &Ctx, what: &str, id: GuestId, name: &SnapshotName, upid: Option<&str>) {
    if ctx.out.json() {
        ctx.out.json_doc(
            &serde_json::json!({ "id": id, "snapshot": name, "result": what, "upid": upid }),
        );
    } else {
        ctx.out.text(&format!("{id}: {what} {name}"));
    }
}
