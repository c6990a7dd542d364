//! `phx lxc ...` and `phx vm ...`: the same verbs for both kinds.

mod exec;
mod list;
pub mod snapshot;
pub mod status;
pub mod test;

use clap::{Args, Subcommand};
use phx_core::engine::Operation;
use phx_core::types::{GuestId, GuestKind};

use crate::context::Ctx;

pub use status::status_table;

#[derive(Debug, Args)]
pub struct Ids {
    /// Guest ids
    #[arg(required = true, value_name = "ID")]
    pub ids: Vec<GuestId>,
}

#[derive(Debug, Args)]
pub struct ConvergeArgs {
    #[command(flatten)]
    pub ids: Ids,
    /// Run features again even when the guest's description records them as applied
    #[arg(long)]
    pub rerun_features: bool,
}

#[derive(Debug, Subcommand)]
pub enum GuestCommand {
    /// Create missing prerequisites (dependency order), then converge the named guests
    Create(ConvergeArgs),
    /// Converge existing guests to their config (error if one does not exist)
    Reconfigure(ConvergeArgs),
    /// Start guests, runnable prerequisites first (templates are never started)
    Start(Ids),
    /// Stop guests (clean shutdown, then hard stop after 60 s)
    Stop {
        #[command(flatten)]
        ids: Ids,
        /// Stop running guests that depend on them first, in reverse order
        #[arg(long)]
        with_dependents: bool,
    },
    /// Reboot running guests, start stopped ones
    Restart(Ids),
    /// Destroy guests and their disks, dependents first
    Delete {
        #[command(flatten)]
        ids: Ids,
        /// Delete even while other existing guests depend on it, or when the name on the cluster differs
        #[arg(long)]
        force: bool,
    },
    /// The defined guests (or the given ones) with actual state and drift
    Status {
        /// Guest ids (default: all of this kind)
        #[arg(value_name = "ID")]
        ids: Vec<GuestId>,
    },
    /// Every guest of this kind on the cluster, defined in the config or not
    List,
    /// Run the guest's test suites inside it (PASS/FAIL per test)
    Test(test::TestArgs),
    /// Create, list, roll back or delete snapshots
    #[command(subcommand)]
    Snapshot(snapshot::SnapshotCommand),
    /// Run one command in the guest; its exit code is passed through
    Exec(exec::ExecArgs),
}

pub async fn run(ctx: &mut Ctx, kind: GuestKind, cmd: GuestCommand) -> anyhow::Result<u8> {
    use crate::cmd::run_op;
    match cmd {
        GuestCommand::Create(a) => {
            ctx.rerun_features = a.rerun_features;
            run_op(
                ctx,
                Some(kind),
                &a.ids.ids,
                Operation::Converge {
                    require_existing: false,
                },
                "create",
            )
            .await
        }
        GuestCommand::Reconfigure(a) => {
            ctx.rerun_features = a.rerun_features;
            run_op(
                ctx,
                Some(kind),
                &a.ids.ids,
                Operation::Converge {
                    require_existing: true,
                },
                "reconfigure",
            )
            .await
        }
        GuestCommand::Start(a) => run_op(ctx, Some(kind), &a.ids, Operation::Start, "start").await,
        GuestCommand::Stop {
            ids,
            with_dependents,
        } => {
            run_op(
                ctx,
                Some(kind),
                &ids.ids,
                Operation::Stop { with_dependents },
                "stop",
            )
            .await
        }
        GuestCommand::Restart(a) => {
            run_op(ctx, Some(kind), &a.ids, Operation::Restart, "restart").await
        }
        GuestCommand::Delete { ids, force } => {
            run_op(
                ctx,
                Some(kind),
                &ids.ids,
                Operation::Delete { force },
                "delete",
            )
            .await
        }
        GuestCommand::Status { ids } => status::run(ctx, Some(kind), &ids).await,
        GuestCommand::List => list::run(ctx, kind).await,
        GuestCommand::Test(a) => test::run(ctx, kind, a).await,
        GuestCommand::Snapshot(c) => snapshot::run(ctx, kind, c).await,
        GuestCommand::Exec(a) => exec::run(ctx, kind, a).await,
    }
}
