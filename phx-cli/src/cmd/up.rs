//! `phx up [ID...]`: converge, start in boot order, then show where everything stands.

use clap::Args;
use phx_core::engine::Operation;
use phx_core::types::GuestId;

use crate::cmd::guest::status::{rows_settled, status_table};
use crate::context::Ctx;

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Guests to bring up (default: every defined guest)
    #[arg(value_name = "ID")]
    pub ids: Vec<GuestId>,
    /// Run features again even when a guest's description records them as applied
    #[arg(long)]
    pub rerun_features: bool,
}

pub async fn run(ctx: &mut Ctx, a: UpArgs) -> anyhow::Result<u8> {
    ctx.rerun_features = a.rerun_features;
    let (code, settled) =
        crate::cmd::run_op_settled(ctx, None, &a.ids, Operation::Up, "up").await?;
    if !ctx.out.json() && !ctx.g.dry_run && !ctx.cancel.is_cancelled() {
        // the run's result (and exit code) stands when the cluster cannot be read afterwards
        match rows_settled(ctx, None, &a.ids, &settled).await {
            Ok(rows) => ctx
                .out
                .text(&format!("\n{}", status_table(&ctx.out, &rows))),
            Err(e) => tracing::warn!("no status table: {e:#}"),
        }
    }
    Ok(code)
}
