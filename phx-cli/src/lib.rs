//! The `phx` command line: clap definitions, output rendering, progress, backend wiring.
//! Behaviour lives in phx-core; each verb here is glue.
// The doc comments of clap arguments are --help text, where `<config-dir>` is a placeholder,
// not an HTML tag.
#![allow(rustdoc::invalid_html_tags)]

pub mod api_args;
pub mod backend;
pub mod cli;
pub mod cmd;
pub mod context;
pub mod error;
pub mod legacy;
pub mod lock;
pub mod output;
pub mod progress;

use std::process::ExitCode;

use clap::Parser;
use phx_core::engine::CancelToken;
use tracing_subscriber::EnvFilter;

use cli::{Cli, Command};
use context::Ctx;
use error::{EXIT_INTERRUPTED, exit_code, render};

fn init_logging(cli: &Cli) {
    let default = if cli.global.quiet {
        "error"
    } else {
        match cli.global.verbose {
            0 => "warn",
            1 => "info",
            2 => "debug",
            _ => "trace",
        }
    };
    let filter = EnvFilter::try_from_env("PHX_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let ansi = match cli.global.color {
        cli::ColorChoice::Always => true,
        cli::ColorChoice::Never => false,
        cli::ColorChoice::Auto => {
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none()
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .without_time()
        .try_init();
}

async fn dispatch(ctx: &mut Ctx, command: Command) -> anyhow::Result<u8> {
    match command {
        Command::Lxc(c) => cmd::guest::run(ctx, phx_core::types::GuestKind::Lxc, c).await,
        Command::Vm(c) => cmd::guest::run(ctx, phx_core::types::GuestKind::Vm, c).await,
        Command::Hypervisor(c) => cmd::hypervisor::run(ctx, c).await,
        Command::Up(a) => cmd::up::run(ctx, a).await,
        Command::Down(a) => cmd::down::run(ctx, a).await,
        Command::Plan(a) => cmd::plan::run(ctx, a).await,
        Command::Status(a) => cmd::status::run(ctx, a).await,
        Command::Config(c) => cmd::config::run(ctx, c).await,
        Command::Completions(a) => cmd::completions::run(&a),
        Command::Sim(c) => cmd::sim::run(ctx, c).await,
    }
}

/// What a second Ctrl-C prints: phx stops at once, but the work it started goes on.
fn abort_message(running: &[phx_core::backend::inflight::InFlight]) -> String {
    if running.is_empty() {
        return "aborted: nothing was running on Proxmox; run `phx status` to see where things stand\n".into();
    }
    let mut s = format!(
        "warning: aborted with {} operation{} still running; {} on without phx:\n",
        running.len(),
        if running.len() == 1 { "" } else { "s" },
        if running.len() == 1 {
            "it goes"
        } else {
            "they go"
        },
    );
    for r in running {
        s.push_str(&format!("  {r}\n"));
    }
    s.push_str("check them in the task log (Datacenter > Tasks, or `pvesh get /nodes/<node>/tasks/<UPID>/status`), then run `phx status`; running the command again picks up where it stopped\n");
    s
}

/// Run phx with the process's arguments; under one of the shell tool's names, translate its
/// command line first ([`legacy`]).
pub fn main() -> ExitCode {
    legacy::main(run)
}

/// Run one phx command line (`args[0]` is the program name); returns the exit code.
#[allow(clippy::print_stderr)]
pub fn run(args: Vec<std::ffi::OsString>) -> u8 {
    let cli = Cli::parse_from(args);
    init_logging(&cli);
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return 1;
        }
    };
    let cancel = CancelToken::default();
    let mut ctx = Ctx::new(cli.global.clone(), cancel.clone());
    let code = rt.block_on(async {
        let watcher = cancel.clone();
        let quiet = cli.global.quiet;
        // registered now, not when the watcher first runs: a Ctrl-C during startup must not
        // kill phx with the default action while its first task is being sent
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()) {
            Ok(mut sigint) => {
                tokio::spawn(async move {
                    if sigint.recv().await.is_some() {
                        watcher.cancel();
                        if !quiet {
                            eprintln!("interrupted: letting running steps finish; no new work starts (Ctrl-C again to abort)");
                        }
                        if sigint.recv().await.is_some() {
                            eprint!("{}", abort_message(&phx_core::backend::inflight::in_flight()));
                            std::process::exit(i32::from(EXIT_INTERRUPTED));
                        }
                    }
                });
            }
            Err(e) => tracing::warn!("cannot watch for Ctrl-C ({e}); it will stop phx at once"),
        }
        let _run_lock = if lock::changes_cluster(&cli.command) && !cli.global.dry_run {
            match lock::acquire(&cli.global, &cancel).await {
                Ok(l) => l,
                Err(e) => {
                    eprint!("{}", render(&e));
                    return exit_code(&e);
                }
            }
        } else {
            None
        };
        match dispatch(&mut ctx, cli.command).await {
            Ok(code) => code,
            Err(e) => {
                eprint!("{}", render(&e));
                if cancel.is_cancelled() { EXIT_INTERRUPTED } else { exit_code(&e) }
            }
        }
    });
    if cancel.is_cancelled() && code == 0 {
        EXIT_INTERRUPTED
    } else if output::output_failed() && code == 0 {
        error::EXIT_FAILED
    } else {
        code
    }
}
