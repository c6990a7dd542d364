//! Work in flight on Proxmox: the tasks and commands a backend has started and not yet seen end.
//!
//! Backends register each accepted task (with its UPID) and each command they run (with its
//! pid) for as long as they wait for it. A program that must stop at once (a second Ctrl-C)
//! reads [`in_flight`] to tell the operator what keeps running on the node without it.
//!
//! The registry is process-wide on purpose: the tasks belong to the process talking to
//! Proxmox, whichever backend or engine instance started them.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One task or command still running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    /// What it is: `UPID:pve1:...` for a Proxmox task, the argv for a command.
    pub what: String,
    /// The local process id, for a command.
    pub pid: Option<u32>,
    /// How long it has been running.
    pub elapsed: Duration,
}

impl fmt::Display for InFlight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)?;
        if let Some(pid) = self.pid {
            write!(f, " (pid {pid})")?;
        }
        write!(f, ", running for {:.1}s", self.elapsed.as_secs_f64())
    }
}

struct Entry {
    what: String,
    pid: Option<u32>,
    since: Instant,
}

static NEXT: AtomicU64 = AtomicU64::new(0);
static REGISTRY: Mutex<BTreeMap<u64, Entry>> = Mutex::new(BTreeMap::new());

/// Registered work; dropping it removes the entry (the task ended, or was given up on).
#[derive(Debug)]
#[must_use = "the entry is removed when the guard is dropped"]
pub struct Guard(u64);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(mut r) = REGISTRY.lock() {
            r.remove(&self.0);
        }
    }
}

/// Register a Proxmox task by its UPID until the guard is dropped.
pub fn task(upid: impl Into<String>) -> Guard {
    register(upid.into(), None)
}

/// Register a running command (argv already redacted) with its process id.
pub fn command(argv: impl Into<String>, pid: Option<u32>) -> Guard {
    register(argv.into(), pid)
}

fn register(what: String, pid: Option<u32>) -> Guard {
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut r) = REGISTRY.lock() {
        r.insert(
            id,
            Entry {
                what,
                pid,
                since: Instant::now(),
            },
        );
    }
    Guard(id)
}

/// Everything registered now, oldest first.
pub fn in_flight() -> Vec<InFlight> {
    let Ok(r) = REGISTRY.lock() else {
        return Vec::new();
    };
    r.values()
        .map(|e| InFlight {
            what: e.what.clone(),
            pid: e.pid,
            elapsed: e.since.elapsed(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_live_as_long_as_their_guard() {
        let upid = "UPID:pve:000A1B2C:0012D687:6745F0A1:vzstart:101:root@pam:";
        let t = task(upid);
        let c = command("pct exec 101 -- true", Some(4242));
        let now = in_flight();
        assert!(now.iter().any(|e| e.what == upid && e.pid.is_none()));
        let cmd = now.iter().find(|e| e.pid == Some(4242)).unwrap();
        assert!(
            cmd.to_string()
                .starts_with("pct exec 101 -- true (pid 4242), running for")
        );
        drop(t);
        assert!(!in_flight().iter().any(|e| e.what == upid));
        drop(c);
        assert!(!in_flight().iter().any(|e| e.pid == Some(4242)));
    }
}
