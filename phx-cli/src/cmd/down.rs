//! `phx down [ID...]`.

use clap::Args;
use phx_core::engine::Operation;
use phx_core::types::GuestId;

use crate::context::Ctx;

#[derive(Debug, Args)]
pub struct DownArgs {
    /// Guests to stop (default: every running defined guest)
    #[arg(value_name = "ID")]
    pub ids: Vec<GuestId>,
}

pub async fn run(ctx: &mut Ctx, a: DownArgs) -> anyhow::Result<u8> {
    crate::cmd::run_op(ctx, None, &a.ids, Operation::Down, "down").await
}
