//! The FakeCluster's data: nodes, storages, volumes, guests, snapshots, tasks, users,
//! firewall. Everything is serde so the sim backend and the fake executables can persist it.

use std::collections::BTreeMap;

use phx_core::backend::{FirewallOptions, PowerState};
use phx_core::types::{FirewallRule, GuestKind};
use serde::{Deserialize, Serialize};

/// A cluster node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FakeNode {
    /// Name.
    pub name: String,
    /// `online` / `offline`.
    pub status: String,
    /// DNS search domain.
    pub dns_search: Option<String>,
    /// DNS servers.
    pub dns_servers: Vec<String>,
    /// Timezone.
    pub timezone: String,
    /// CPUs.
    pub maxcpu: u64,
    /// Memory bytes.
    pub maxmem: u64,
    /// Linux bridges (`vmbr0`).
    #[serde(default = "default_bridges")]
    pub bridges: Vec<String>,
}

fn default_bridges() -> Vec<String> {
    vec!["vmbr0".to_string()]
}

/// A storage definition (`storage.cfg`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FakeStorage {
    /// Id.
    pub id: String,
    /// `dir`, `lvmthin`, `zfspool`, `nfs`.
    pub kind: String,
    /// Content types.
    pub content: Vec<String>,
    /// Shared between nodes.
    pub shared: bool,
    /// Disabled.
    pub disabled: bool,
    /// Nodes it is available on (`None`: all).
    pub nodes: Option<Vec<String>>,
    /// Capacity in bytes.
    pub total: u64,
    /// Type-specific parameters (`path`, `pool`, `server`, `export`, ...).
    pub params: BTreeMap<String, String>,
}

impl FakeStorage {
    /// Whether the storage takes snapshots of guest volumes.
    pub fn snapshots(&self) -> bool {
        matches!(self.kind.as_str(), "lvmthin" | "zfspool" | "rbd" | "zfs")
    }
    /// Whether it is usable on `node`.
    pub fn on(&self, node: &str) -> bool {
        !self.disabled
            && self
                .nodes
                .as_ref()
                .is_none_or(|n| n.iter().any(|x| x == node))
    }
}

/// A volume on a storage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FakeVolume {
    /// Node for local storages, `None` on shared ones.
    pub node: Option<String>,
    /// Storage id.
    pub storage: String,
    /// Volume name after `storage:` (`vm-100-disk-0`, `vztmpl/x.tar.zst`).
    pub name: String,
    /// `images`, `rootdir`, `vztmpl`, `iso`, `import`, `backup`.
    pub content: String,
    /// `raw`, `subvol`, `tzst`, `iso`, `qcow2`.
    pub format: String,
    /// Bytes.
    pub size: u64,
    /// Owner.
    pub vmid: Option<u32>,
}

impl FakeVolume {
    /// `storage:name`.
    pub fn volid(&self) -> String {
        format!("{}:{}", self.storage, self.name)
    }
}

/// A snapshot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FakeSnapshot {
    /// Name.
    pub name: String,
    /// Parent snapshot.
    pub parent: Option<String>,
    /// Description.
    pub description: String,
    /// Creation time.
    pub snaptime: i64,
    /// The config at snapshot time.
    pub config: BTreeMap<String, String>,
    /// Raw lxc lines at snapshot time.
    pub raw_lxc: Vec<(String, String)>,
    /// Whether the guest was running (VM state saved).
    pub running: bool,
}

/// A firewall file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FwFile {
    /// `[OPTIONS]`.
    pub options: FirewallOptions,
    /// `[RULES]`.
    pub rules: Vec<FirewallRule>,
}

/// A guest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FakeGuest {
    /// VMID.
    pub id: u32,
    /// Container or VM.
    pub kind: GuestKind,
    /// Node.
    pub node: String,
    /// Config keys in canonical form (includes `lock`, `template`, `parent`).
    pub config: BTreeMap<String, String>,
    /// Raw `lxc.*` lines.
    pub raw_lxc: Vec<(String, String)>,
    /// Power state.
    pub status: PowerState,
    /// Snapshots, oldest first.
    pub snapshots: Vec<FakeSnapshot>,
    /// Firewall file.
    pub firewall: FwFile,
    /// Epoch seconds of the last start.
    pub started_at: Option<i64>,
}

impl FakeGuest {
    /// `CT` / `VM`.
    pub fn word(&self) -> &'static str {
        self.kind.proxmox_word()
    }
    /// Config path as Proxmox names it in errors.
    pub fn conf_path(&self) -> String {
        conf_path(&self.node, self.kind, self.id)
    }
    /// Proxmox template flag.
    pub fn is_template(&self) -> bool {
        self.config.get("template").is_some_and(|v| v == "1")
    }
    /// Name / hostname.
    pub fn name(&self) -> String {
        let key = if self.kind == GuestKind::Lxc {
            "hostname"
        } else {
            "name"
        };
        self.config.get(key).cloned().unwrap_or_else(|| {
            format!(
                "{}{}",
                if self.kind == GuestKind::Lxc {
                    "CT"
                } else {
                    "VM"
                },
                self.id
            )
        })
    }
    /// Current `lock:`.
    pub fn lock(&self) -> Option<&str> {
        self.config.get("lock").map(String::as_str)
    }
}

/// `nodes/<node>/lxc/<id>.conf` / `nodes/<node>/qemu-server/<id>.conf`.
pub fn conf_path(node: &str, kind: GuestKind, id: u32) -> String {
    match kind {
        GuestKind::Lxc => format!("nodes/{node}/lxc/{id}.conf"),
        GuestKind::Vm => format!("nodes/{node}/qemu-server/{id}.conf"),
    }
}

/// What a task does when it completes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    /// Finish a create/clone: clear `lock`.
    Unlock {
        /// Guest.
        id: u32,
        /// Also clear the source's `lock: disk` (LXC clone).
        source: Option<u32>,
    },
    /// Set the power state.
    Power {
        /// Guest.
        id: u32,
        /// New state.
        to: PowerState,
    },
    /// Remove a guest and its volumes.
    Destroy {
        /// Guest.
        id: u32,
    },
    /// Finish a snapshot: clear `lock: snapshot`.
    SnapshotDone {
        /// Guest.
        id: u32,
    },
    /// Add a template volume after a download.
    Download {
        /// The volume.
        volume: FakeVolume,
    },
    /// Nothing beyond logging.
    None,
    /// The task fails with this error text.
    Fail {
        /// Exit status.
        message: String,
        /// Clear this guest's lock (and a clone source's) on failure.
        unlock: Option<(u32, Option<u32>)>,
        /// Remove this half-created guest on failure.
        remove: Option<u32>,
    },
}

/// A task (running or finished).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FakeTask {
    /// UPID.
    pub upid: String,
    /// Node.
    pub node: String,
    /// Type (`vzcreate`, `qmstart`, ...).
    pub kind: String,
    /// Guest id or other id.
    pub id: String,
    /// User.
    pub user: String,
    /// Start time (epoch seconds).
    pub starttime: i64,
    /// End time once finished.
    pub endtime: Option<i64>,
    /// Wall-clock milliseconds when the task may complete.
    pub due_ms: u64,
    /// Exit status once finished (`OK`, `WARNINGS: n`, error text).
    pub exitstatus: Option<String>,
    /// Log lines.
    pub log: Vec<String>,
    /// Pending effect.
    pub effect: Option<Effect>,
}

/// Injected fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "snake_case")]
pub enum Fault {
    /// `can't lock file '...' - got timeout` before anything happens (retryable).
    LockTimeout,
    /// An HTTP pseudo status from the proxy layer (595-599; retryable).
    Http {
        /// Status code.
        status: u16,
    },
    /// The task is accepted and then fails with this message.
    TaskError {
        /// Exit status text.
        message: String,
    },
    /// The call goes through but its response is lost (HTTP `status`, e.g. 596): a retry
    /// then meets "already exists" / "already running".
    LostResponse {
        /// Status code seen by the client.
        status: u16,
    },
    /// The task is accepted and runs this long instead of the cluster's latency (a task
    /// that outlives the client's timeout).
    Slow {
        /// Milliseconds.
        ms: u64,
    },
    /// A synchronous error with this status and message.
    Error {
        /// HTTP status.
        status: u16,
        /// Message.
        message: String,
    },
}

/// Calls counted per kind.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Counters {
    /// Read calls.
    pub reads: u64,
    /// Write calls.
    pub writes: u64,
    /// Tasks started.
    pub tasks: u64,
    /// Calls per operation name.
    pub per_op: BTreeMap<String, u64>,
}

/// A guest-agent `exec` that ran (`GET .../agent/exec-status`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentExec {
    /// The VM.
    pub vmid: u32,
    /// Exit code.
    pub exitcode: i32,
    /// Standard output.
    pub out_data: String,
    /// Standard error.
    pub err_data: String,
}
