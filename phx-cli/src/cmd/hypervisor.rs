//! `phx hypervisor setup|test|status`.

use clap::Subcommand;

use crate::context::Ctx;
use crate::error::usage;

#[derive(Debug, Subcommand)]
pub enum HypervisorCommand {
    /// Converge the Proxmox host (storages, users, firewall, DNS, templates, host steps)
    Setup,
    /// Check the Proxmox host
    Test,
    /// Nodes, version, storages and guest counts
    Status,
}

pub async fn run(_ctx: &mut Ctx, cmd: HypervisorCommand) -> anyhow::Result<u8> {
    let verb = match cmd {
        HypervisorCommand::Setup => "setup",
        HypervisorCommand::Test => "test",
        HypervisorCommand::Status => "status",
    };
    Err(usage(format!(
        "`phx hypervisor {verb}` is not available in this version of phx yet"
    ))
    .hint("converge guests with `phx up` meanwhile; host setup lands with the hypervisor work")
    .into())
}
