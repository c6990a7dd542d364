//! `phx sim reset`.

use clap::Subcommand;

use crate::context::Ctx;
use crate::error::EXIT_OK;

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Start the simulated cluster over: one fresh node, no guests
    Reset,
}

pub async fn run(ctx: &mut Ctx, cmd: SimCommand) -> anyhow::Result<u8> {
    match cmd {
        SimCommand::Reset if ctx.g.dry_run => {
            let path = crate::backend::sim_state(&ctx.g);
            if ctx.out.json() {
                ctx.out
                    .json_doc(&serde_json::json!({ "state": path, "dry_run": true }));
            } else {
                ctx.out.text(&format!(
                    "would reset the simulated cluster {} (dry run: nothing changed)",
                    path.display()
                ));
            }
            Ok(EXIT_OK)
        }
        SimCommand::Reset => {
            let path = crate::backend::reset_sim(&ctx.g, &ctx.cancel).await?;
            if ctx.out.json() {
                ctx.out.json_doc(&serde_json::json!({ "state": path }));
            } else {
                ctx.out.text(&format!(
                    "Simulated cluster reset: {} (one node `pve`, storages local and local-lvm)",
                    path.display()
                ));
            }
            Ok(EXIT_OK)
        }
    }
}
