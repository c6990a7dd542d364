//! `phx lxc exec <ID> -- <command...>`: one command in the guest, exit code passed through.

use std::io::Write;
use std::time::Duration;

use clap::Args;
use phx_core::backend::ExecRequest;
use phx_core::types::{GuestId, GuestKind};

use crate::cmd::check_ids;
use crate::context::Ctx;
use crate::error::usage;

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Guest id
    pub id: GuestId,
    /// Seconds before phx gives up
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// The command and its arguments (after `--`)
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

pub async fn run(ctx: &mut Ctx, kind: GuestKind, a: ExecArgs) -> anyhow::Result<u8> {
    let inv = ctx.inventory()?;
    check_ids(&inv, Some(kind), &[a.id], "exec")?;
    let engine = ctx.engine(inv).await?;
    let node = engine
        .backend()
        .guests()
        .await?
        .into_iter()
        .find(|g| g.id == a.id)
        .map(|g| g.node)
        .ok_or_else(|| {
            usage(format!(
                "{} {} does not exist on the cluster",
                kind.proxmox_word(),
                a.id
            ))
            .hint(format!(
                "create it with `phx {} create {}`",
                kind.noun(),
                a.id
            ))
        })?;
    if ctx.g.dry_run {
        let status = phx_core::backend::manager(engine.backend().as_ref(), kind)
            .status(&node, a.id)
            .await?;
        let word = kind.proxmox_word();
        if ctx.out.json() {
            ctx.out.json_doc(&serde_json::json!({
                "id": a.id, "node": node, "command": a.command, "status": status.status,
                "dry_run": true
            }));
        } else {
            ctx.out.text(&format!(
                "{word} {} on {node} ({}): would run {:?} (dry run: nothing was run)",
                a.id,
                status.status,
                a.command.join(" ")
            ));
        }
        return Ok(crate::error::EXIT_OK);
    }
    let req = ExecRequest::new(a.command.clone()).timeout(Duration::from_secs(a.timeout));
    let out = engine.guest_exec(kind, &node, a.id, &req).await?;
    if ctx.out.json() {
        ctx.out.json_doc(&out);
    } else {
        let _ = std::io::stdout().lock().write_all(out.stdout.as_bytes());
        let _ = std::io::stderr().lock().write_all(out.stderr.as_bytes());
    }
    Ok(u8::try_from(out.exit_code).unwrap_or(1))
}
