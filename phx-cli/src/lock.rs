//! One changing phx at a time per cluster: an advisory lock file per backend target under
//! `$XDG_STATE_HOME/phx/locks/`, held (flock) for the life of the process, with the holder's pid
//! and command written inside so the next phx can say who holds it. The kernel drops the lock
//! when the holder exits, however it exits, so a lock is never stale.
//!
//! Only commands that change the cluster take it, and not with `--dry-run`; `status`, `plan`,
//! `list`, `config`, `test` and `exec` never wait.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use phx_core::engine::CancelToken;

use crate::backend;
use crate::cli::BackendKind;
use crate::cli::{Command, GlobalArgs};
use crate::cmd::guest::{GuestCommand, snapshot::SnapshotCommand};
use crate::cmd::hypervisor::HypervisorCommand;
use crate::error::{CliError, EXIT_FAILED, EXIT_INTERRUPTED};

/// The held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// Whether `command` changes the cluster (and so takes the run lock).
pub fn changes_cluster(command: &Command) -> bool {
    match command {
        Command::Lxc(c) | Command::Vm(c) => match c {
            GuestCommand::Create(_)
            | GuestCommand::Reconfigure(_)
            | GuestCommand::Start(_)
            | GuestCommand::Stop { .. }
            | GuestCommand::Restart(_)
            | GuestCommand::Delete { .. } => true,
            GuestCommand::Snapshot(s) => !matches!(s, SnapshotCommand::List { .. }),
            GuestCommand::Status { .. }
            | GuestCommand::List
            | GuestCommand::Test(_)
            | GuestCommand::Exec(_) => false,
        },
        Command::Hypervisor(h) => matches!(h, HypervisorCommand::Setup(_)),
        Command::Up(_) | Command::Down(_) | Command::Sim(_) => true,
        Command::Plan(_) | Command::Status(_) | Command::Config(_) | Command::Completions(_) => {
            false
        }
    }
}

/// What the lock is keyed by: the cluster this run talks to.
pub fn target(g: &GlobalArgs) -> Option<String> {
    let kind = backend::choose(g).ok()?;
    Some(match kind {
        BackendKind::Sim => format!("the simulated cluster {}", backend::sim_state(g).display()),
        BackendKind::Pct => match &g.ssh {
            Some(t) => format!("the Proxmox node {t} (pct over ssh)"),
            None => "this Proxmox node (pct)".to_string(),
        },
        BackendKind::Api => format!(
            "the Proxmox API {}",
            g.api.api_url.as_deref().unwrap_or("(no --api-url)")
        ),
    })
}

/// A file name for a key: readable, and unique through a hash of the whole key.
pub fn file_name(target: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in target.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let readable: String = target
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    let readable: String = readable.chars().take(60).collect();
    format!("{readable}-{h:016x}")
}

fn lock_dir() -> PathBuf {
    backend::default_sim_state().with_file_name("locks")
}

/// Take the run lock for the cluster `g` talks to. Held by another phx: an error naming its
/// pid and command, or with `--wait-lock`, wait for it (Ctrl-C stops waiting).
pub async fn acquire(g: &GlobalArgs, cancel: &CancelToken) -> anyhow::Result<Option<RunLock>> {
    let Some(target) = target(g) else {
        // no backend chosen: the command itself reports that
        return Ok(None);
    };
    let dir = lock_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("{}.lock", file_name(&target)));
    let mut file = File::options()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening the run lock {}", path.display()))?;
    let waited = wait_for_lock(
        &mut file,
        &path,
        Duration::from_millis(200),
        cancel,
        |file, waited| {
            let holder = holder(file);
            if !g.wait_lock {
                return Err(CliError {
                    code: EXIT_FAILED,
                    message: format!(
                        "another phx ({holder}) is changing {target}; phx changes a cluster one run at a time"
                    ),
                    hint: Some(format!(
                        "wait for it to finish, or pass --wait-lock to wait for it (read-only commands such as status and plan never wait); lock file: {}",
                        path.display()
                    )),
                }
                .into());
            }
            if waited.is_zero() {
                tracing::warn!("waiting for another phx ({holder}) that is changing {target}");
            }
            Ok(())
        },
    )
    .await?;
    if !waited.is_zero() {
        tracing::info!(
            "the other phx finished after {:.1}s; going on",
            waited.as_secs_f64()
        );
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let record = format!(
        "pid {}, `phx {}`, since {}",
        std::process::id(),
        args.join(" "),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| phx_core::util::format_utc(i64::try_from(d.as_secs()).unwrap_or(0)) + " UTC")
            .unwrap_or_default()
    );
    // best effort: the lock itself is the flock, the text only helps the next phx explain
    let _ = file.set_len(0).and_then(|()| {
        file.rewind()?;
        file.write_all(record.as_bytes())
    });
    Ok(Some(RunLock { _file: file }))
}

/// Take `file`'s exclusive lock (flock), asking again every `every` while another process
/// holds it. Each time it is held, `busy(file, waited)` decides: `Ok` waits on (`waited` is
/// zero the first time), an error gives up with it. Ctrl-C while waiting gives up with exit
/// 130: nothing was changed. Returns how long it waited.
pub async fn wait_for_lock(
    file: &mut File,
    path: &std::path::Path,
    every: Duration,
    cancel: &CancelToken,
    mut busy: impl FnMut(&mut File, Duration) -> anyhow::Result<()>,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut waited = Duration::ZERO;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(waited),
            Err(std::fs::TryLockError::WouldBlock) => {
                busy(file, waited)?;
                if cancel.is_cancelled() {
                    return Err(CliError {
                        code: EXIT_INTERRUPTED,
                        message: format!(
                            "interrupted while waiting {:.0}s for {}, held by another phx; nothing was changed",
                            started.elapsed().as_secs_f64(),
                            path.display()
                        ),
                        hint: None,
                    }
                    .into());
                }
                tokio::time::sleep(every).await;
                waited = started.elapsed();
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", path.display()));
            }
        }
    }
}

/// Who holds the lock, from the text it wrote.
fn holder(file: &mut File) -> String {
    let mut s = String::new();
    let _ = file.rewind().and_then(|()| file.read_to_string(&mut s));
    let s = s.trim();
    if s.is_empty() {
        "pid unknown, just starting".to_string()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::file_name;

    #[test]
    fn lock_file_names_are_readable_and_distinct() {
        let a = file_name("the Proxmox API https://pve1:8006");
        let b = file_name("the Proxmox API https://pve1:8007");
        assert!(a.starts_with("the-Proxmox-API-https-pve1-8006-"), "{a}");
        assert_ne!(a, b);
    }
}
