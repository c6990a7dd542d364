//! Settings of an [`ApiBackend`](crate::ApiBackend): where, who, how to trust the server,
//! ssh for containers, and the timeouts.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::secret::{ApiToken, Secret};
use crate::tls::{Fingerprint, format_fingerprint};

/// How phx authenticates.
#[derive(Debug, Clone)]
pub enum Auth {
    /// An API token (`Authorization: PVEAPIToken=...`); no CSRF token needed.
    Token(ApiToken),
    /// A ticket from `POST /access/ticket` (cookie `PVEAuthCookie` plus the
    /// `CSRFPreventionToken` header on writes), renewed before its 2 h lifetime ends.
    Ticket {
        /// `user@realm`.
        user: String,
        /// The password.
        password: Secret,
    },
}

/// How the server's certificate is trusted.
#[derive(Clone, PartialEq, Eq)]
pub enum TlsMode {
    /// The system's CA roots.
    System,
    /// Only CAs from this PEM file (the cluster's `pve-root-ca.pem`).
    CaFile(PathBuf),
    /// Exactly the certificate with this SHA-256 fingerprint.
    Fingerprint(Fingerprint),
    /// Any certificate (`--insecure`).
    Insecure,
}

impl fmt::Debug for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::System => f.write_str("System"),
            Self::CaFile(p) => write!(f, "CaFile({})", p.display()),
            Self::Fingerprint(fp) => write!(f, "Fingerprint({})", format_fingerprint(fp)),
            Self::Insecure => f.write_str("Insecure"),
        }
    }
}

/// ssh access to the nodes, for what the API cannot do: `pct exec`/`pct push` into
/// containers, raw `lxc.*` lines, host commands. Runs through phx-backend-pct's `SshRunner`.
#[derive(Debug, Clone)]
pub struct SshOptions {
    /// `USER@HOST` or `HOST` (`--ssh`). A guest on another node than `HOST` is reached as
    /// `USER@<node>`; a `{node}` in the value is replaced by the guest's node
    /// (`root@{node}.example.com`).
    pub target: String,
    /// Extra `ssh` options placed before the target (`-p`, `2222`).
    pub options: Vec<String>,
    /// Environment of the local `ssh` process (tests point `PATH` at a fake ssh).
    pub env: Vec<(String, String)>,
    /// `/etc/pve` on the nodes.
    pub pve_etc: PathBuf,
    /// Timeout of the quick commands around `pct push` and config edits.
    pub command_timeout: Duration,
}

impl SshOptions {
    /// ssh to `target` with default settings.
    pub fn new(target: impl Into<String>) -> Self {
        Self {
            target: target.into(),
            options: Vec::new(),
            env: Vec::new(),
            pve_etc: PathBuf::from("/etc/pve"),
            command_timeout: Duration::from_secs(60),
        }
    }

    /// The ssh target for a guest on `node`.
    pub fn target_for(&self, node: &str) -> String {
        if self.target.contains("{node}") {
            return self.target.replace("{node}", node);
        }
        let (user, host) = match self.target.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, self.target.as_str()),
        };
        let short = host.split('.').next().unwrap_or(host);
        if host == node || short == node {
            return self.target.clone();
        }
        match user {
            Some(u) => format!("{u}@{node}"),
            None => node.to_string(),
        }
    }
}

/// Timeouts. A task's timeout is looked up by its UPID type (`vzcreate`, `qmclone`, ...) in
/// `tasks`, falling back to `task_default`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP and TLS connection set-up.
    pub connect: Duration,
    /// One HTTP request (Proxmox's own proxy gives up after 30 s of silence: 596).
    pub request: Duration,
    /// Waiting for a task without an entry in `tasks`.
    pub task_default: Duration,
    /// Per task type.
    pub tasks: BTreeMap<String, Duration>,
    /// Waiting for an LXC template conversion (its API call returns before the task ends).
    pub lxc_template: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        let m = |s: u64| Duration::from_secs(s);
        let tasks = [
            ("vzcreate", 1800),
            ("qmcreate", 1800),
            ("vzclone", 1800),
            ("qmclone", 1800),
            ("download", 3600),
            ("vzstart", 300),
            ("qmstart", 300),
            ("vzstop", 300),
            ("qmstop", 300),
            ("vzreboot", 600),
            ("qmreboot", 600),
            ("vzdestroy", 600),
            ("qmdestroy", 600),
            ("vzsnapshot", 900),
            ("qmsnapshot", 900),
            ("vzdelsnapshot", 900),
            ("qmdelsnapshot", 900),
            ("vzrollback", 900),
            ("qmrollback", 900),
            ("qmtemplate", 900),
            ("resize", 900),
            ("qmconfig", 900),
        ]
        .into_iter()
        .map(|(k, s)| (k.to_string(), m(s)))
        .collect();
        Self {
            connect: m(10),
            request: m(60),
            task_default: m(1800),
            tasks,
            lxc_template: m(900),
        }
    }
}

impl Timeouts {
    /// The timeout of a task type.
    pub fn task(&self, kind: &str) -> Duration {
        self.tasks.get(kind).copied().unwrap_or(self.task_default)
    }

    /// The same timeout for every task (and LXC template conversion).
    pub fn with_task_timeout(mut self, d: Duration) -> Self {
        self.task_default = d;
        for t in self.tasks.values_mut() {
            *t = d;
        }
        self.lxc_template = d;
        self
    }
}

/// Task polling: the wait before the next poll is a quarter of the time the task has run so
/// far, at least `initial` and at most `max`. A finished task is so noticed at most a quarter
/// of its length after it ended (and never more than `max`), while a long task is asked about
/// at most every `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollPolicy {
    /// First wait between polls.
    pub initial: Duration,
    /// Largest wait between polls.
    pub max: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(2),
        }
    }
}

impl PollPolicy {
    /// The wait before the next poll of a task that has run for `elapsed`.
    pub fn wait(&self, elapsed: Duration) -> Duration {
        (elapsed / 4).clamp(self.initial, self.max.max(self.initial))
    }
}

/// Everything an [`ApiBackend`](crate::ApiBackend) needs.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// `https://host:8006` (a trailing `/` or `/api2/json` is accepted).
    pub url: String,
    /// Credentials.
    pub auth: Auth,
    /// Certificate trust.
    pub tls: TlsMode,
    /// ssh for container exec/push, raw `lxc.*` lines and host commands.
    pub ssh: Option<SshOptions>,
    /// The node new guests go to by default (`--node`); found from the URL otherwise.
    pub node: Option<String>,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Task and guest-agent polling.
    pub poll: PollPolicy,
    /// Renew a ticket once it is this old (its lifetime is 2 h).
    pub ticket_renew_after: Duration,
    /// Extra attempts of a GET after a transport failure or a 595–599 (with backoff).
    pub get_retries: u32,
    /// How long an HTTP 400 on a fresh task's status means "not visible yet".
    pub task_visibility_grace: Duration,
}

impl ApiOptions {
    /// Options with defaults for everything but the URL and the credentials.
    pub fn new(url: impl Into<String>, auth: Auth) -> Self {
        Self {
            url: url.into(),
            auth,
            tls: TlsMode::System,
            ssh: None,
            node: None,
            timeouts: Timeouts::default(),
            poll: PollPolicy::default(),
            ticket_renew_after: Duration::from_secs(3600),
            get_retries: 3,
            task_visibility_grace: Duration::from_secs(5),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_targets_follow_the_guest_node() {
        let s = SshOptions::new("root@pve1");
        assert_eq!(s.target_for("pve1"), "root@pve1");
        assert_eq!(s.target_for("pve2"), "root@pve2");
        let fqdn = SshOptions::new("admin@pve1.example.com");
        assert_eq!(fqdn.target_for("pve1"), "admin@pve1.example.com");
        assert_eq!(fqdn.target_for("pve3"), "admin@pve3");
        let tmpl = SshOptions::new("root@{node}.lan");
        assert_eq!(tmpl.target_for("pve2"), "root@pve2.lan");
        assert_eq!(SshOptions::new("pve1").target_for("pve2"), "pve2");
    }

    #[test]
    fn polls_come_at_a_quarter_of_the_time_so_far_between_the_bounds() {
        let p = PollPolicy::default();
        // the poll times of a task, from its start
        let mut t = Duration::ZERO;
        let mut at = vec![t];
        while t < Duration::from_secs(30) {
            t += p.wait(t);
            at.push(t);
        }
        let ms: Vec<u128> = at.iter().take(12).map(Duration::as_millis).collect();
        assert_eq!(
            ms,
            [
                0, 200, 400, 600, 800, 1000, 1250, 1562, 1953, 2441, 3051, 3814
            ]
        );
        // a task that ends is noticed within a quarter of its length (200 ms at least), and
        // never more than 2 s later
        for end in [150, 250, 1_000, 4_000, 10_000, 29_000].map(Duration::from_millis) {
            let seen = at.iter().find(|&&a| a >= end).unwrap();
            let lag = *seen - end;
            assert!(
                lag <= (end / 4).max(p.initial).min(p.max),
                "a task of {end:?} was seen at {seen:?}"
            );
        }
        assert_eq!(p.wait(Duration::from_secs(3600)), Duration::from_secs(2));
    }
}
