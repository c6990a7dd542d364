//! `phx plan [ID...]`: what `up` would change, with reasons (the drift report).

use clap::Args;
use phx_core::engine::Operation;
use phx_core::types::GuestId;

use crate::cmd::{check_ids, show_checked_plan};
use crate::context::Ctx;

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Guests to plan (default: every defined guest)
    #[arg(value_name = "ID")]
    pub ids: Vec<GuestId>,
}

pub async fn run(ctx: &mut Ctx, a: PlanArgs) -> anyhow::Result<u8> {
    let inv = ctx.inventory()?;
    check_ids(&inv, None, &a.ids, "plan")?;
    let engine = ctx.engine(inv).await?;
    let plan = engine.plan(&a.ids, Operation::Up).await?;
    show_checked_plan(ctx, &engine, &plan)
}
