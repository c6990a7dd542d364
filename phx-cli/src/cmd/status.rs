//! `phx status`: every defined guest, containers and VMs.

use clap::Args;
use phx_core::types::GuestId;

use crate::context::Ctx;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Guests to show (default: every defined guest)
    #[arg(value_name = "ID")]
    pub ids: Vec<GuestId>,
}

pub async fn run(ctx: &mut Ctx, a: StatusArgs) -> anyhow::Result<u8> {
    crate::cmd::guest::status::run(ctx, None, &a.ids).await
}
