//! The command line: global options on one flattened struct, one subcommand per noun.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::cmd;

/// Orchestrate Proxmox VE containers, VMs and the host from the Phoenix Hypervisor configs.
///
/// phx reads phoenix_hypervisor_config.json, phoenix_lxc_configs.json and
/// phoenix_vm_configs.json (and phoenix_stacks_config.json when present) from the config dir,
/// plans what differs from the cluster, and converges it: dependencies first, independent
/// guests in parallel, every step with its reason.
///
/// Exit codes: 0 success · 1 an operation failed · 2 invalid usage or invalid config (nothing
/// changed) · 3 some guests failed while others succeeded · 130 interrupted.
#[derive(Debug, Parser)]
#[command(name = "phx", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// Directory with the Phoenix config files [default: /usr/local/phoenix_hypervisor/etc]
    #[arg(
        short = 'C',
        long,
        env = "PHX_CONFIG_DIR",
        hide_env_values = true,
        global = true,
        value_name = "DIR"
    )]
    pub config_dir: Option<PathBuf>,
    /// Root of the site's scripts (features, application scripts, tests) [default: <config-dir>/../bin]
    #[arg(
        long,
        env = "PHX_SCRIPTS_DIR",
        hide_env_values = true,
        global = true,
        value_name = "DIR"
    )]
    pub scripts_dir: Option<PathBuf>,
    /// Where guests live: pct (this Proxmox node), api (the HTTP API) or sim (a simulated cluster)
    /// [default: pct when `pct` is on PATH]
    #[arg(
        long,
        env = "PHX_BACKEND",
        hide_env_values = true,
        global = true,
        value_enum
    )]
    pub backend: Option<BackendKind>,
    /// State file of the simulated cluster [default: $XDG_STATE_HOME/phx/sim.json]
    #[arg(
        long,
        env = "PHX_SIM_STATE",
        hide_env_values = true,
        global = true,
        value_name = "FILE"
    )]
    pub sim_state: Option<PathBuf>,
    /// Run the Proxmox tools on this node over ssh (`root@pve1`); pct backend, and container
    /// exec for the api backend
    #[arg(
        long,
        env = "PHX_SSH",
        hide_env_values = true,
        global = true,
        value_name = "TARGET"
    )]
    pub ssh: Option<String>,
    /// Node for new guests without a `node` key
    #[arg(
        long,
        env = "PHX_NODE",
        hide_env_values = true,
        global = true,
        value_name = "NAME"
    )]
    pub node: Option<String>,
    /// How long to wait for one Proxmox task before giving up on it (90s, 30m, 1h; default
    /// 30m; the api backend waits 5m for start and stop, 1h for downloads)
    #[arg(
        long,
        env = "PHX_TASK_TIMEOUT",
        global = true,
        value_name = "DURATION",
        value_parser = parse_duration
    )]
    pub task_timeout: Option<std::time::Duration>,
    /// Show what would change and change nothing
    #[arg(short = 'n', long, global = true)]
    pub dry_run: bool,
    /// Output format: human tables or one JSON document on stdout
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
    /// Guests worked on at once
    #[arg(short = 'j', long, global = true, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// Answer yes to confirmations (needed for destructive commands when stdin is not a terminal)
    #[arg(short = 'y', long, global = true)]
    pub yes: bool,
    /// More log output on stderr (-v info, -vv debug); PHX_LOG overrides
    #[arg(short = 'v', long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Only errors on stderr
    #[arg(short = 'q', long, global = true)]
    pub quiet: bool,
    /// No progress display
    #[arg(long, global = true)]
    pub no_progress: bool,
    /// When another phx is changing the same cluster, wait for it instead of failing
    #[arg(long, global = true)]
    pub wait_lock: bool,
    /// Colours on stdout/stderr
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    #[command(flatten)]
    pub api: crate::api_args::ApiArgs,
}

/// Backend choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    /// pct/qm/pvesh on this node (or over --ssh)
    Pct,
    /// The Proxmox VE HTTP API
    Api,
    /// A simulated cluster kept in a state file (no Proxmox needed)
    Sim,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Tables and plans for people
    Human,
    /// One JSON document on stdout
    Json,
}

/// Colour choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// When stdout/stderr is a terminal and NO_COLOR is unset
    Auto,
    /// Always
    Always,
    /// Never
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage LXC containers
    #[command(subcommand)]
    Lxc(cmd::guest::GuestCommand),
    /// Manage QEMU virtual machines
    #[command(subcommand)]
    Vm(cmd::guest::GuestCommand),
    /// Converge and check the Proxmox host
    #[command(subcommand)]
    Hypervisor(cmd::hypervisor::HypervisorCommand),
    /// Create every guest (or the given ones) in dependency order, then start the start_at_boot ones in boot order
    Up(cmd::up::UpArgs),
    /// Stop every running guest (or the given ones) in reverse boot order
    Down(cmd::down::DownArgs),
    /// Show what `up` would change, per guest, with reasons
    Plan(cmd::plan::PlanArgs),
    /// Every defined guest with its actual state and drift
    Status(cmd::status::StatusArgs),
    /// Validate, show and graph the config
    #[command(subcommand)]
    Config(cmd::config::ConfigCommand),
    /// Print shell completions
    Completions(cmd::completions::CompletionsArgs),
    /// Manage the simulated cluster of `--backend sim`
    #[command(subcommand)]
    Sim(cmd::sim::SimCommand),
}

/// A duration: a whole number with an optional unit `ms`, `s` (default), `m` or `h`.
pub fn parse_duration(v: &str) -> Result<std::time::Duration, String> {
    let v = v.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (n, unit) = v.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{v:?} is not a duration (e.g. 90s, 30m, 1h)"))?;
    let ms = match unit {
        "ms" => Some(n),
        "" | "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => return Err(format!("{v:?}: the unit must be ms, s, m or h")),
    }
    .ok_or_else(|| format!("{v:?} is too long"))?;
    if ms == 0 {
        return Err("the timeout must be more than 0".into());
    }
    Ok(std::time::Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_take_a_unit_or_mean_seconds() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("1d").unwrap_err().contains("unit"));
        assert!(parse_duration("-5").is_err());
        assert!(parse_duration("99999999999999999999h").is_err());
    }
}
