//! Values the backend traits take and return, shaped like Proxmox's own.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::propstr::{LxcFeatures, LxcNet, MountPoint, QemuDisk, QemuNet, Startup};
use crate::types::{DiskSize, GuestId, GuestKind, NodeName, StorageId};

/// Power state of a guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PowerState {
    /// Running (QEMU `running`).
    Running,
    /// Stopped.
    Stopped,
    /// Paused / suspended / prelaunch.
    Paused,
    /// Proxmox could not tell.
    Unknown,
}

impl PowerState {
    /// Parse Proxmox's `status`/`qmpstatus` words.
    pub fn parse(s: &str) -> Self {
        match s {
            "running" => Self::Running,
            "stopped" => Self::Stopped,
            "paused" | "suspended" | "prelaunch" | "suspending" | "postmigrate" => Self::Paused,
            _ => Self::Unknown,
        }
    }
}

impl fmt::Display for PowerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Running => "running",
            Self::Stopped => "stopped",
            Self::Paused => "paused",
            Self::Unknown => "unknown",
        })
    }
}

/// A file read through the guest agent (`agent/file-read`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentFile {
    /// The content (lossy UTF-8).
    pub content: String,
    /// The file was longer than what the agent hands over (16 MiB): `content` is its start.
    pub truncated: bool,
}

/// A task running on a node (`GET /nodes/{node}/tasks?source=active`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveTask {
    /// Its UPID.
    pub upid: String,
    /// Its type (`download`, `vzcreate`, `qmclone`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// What it works on: a guest id, or a file name for `download`.
    pub id: String,
}

/// One guest as the cluster lists it (`/cluster/resources`, `pct list`, `qm list`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestSummary {
    /// VMID.
    pub id: GuestId,
    /// Container or VM.
    pub kind: GuestKind,
    /// Node it lives on.
    pub node: NodeName,
    /// Name / hostname as Proxmox reports it.
    pub name: Option<String>,
    /// Power state.
    pub status: PowerState,
    /// Proxmox template flag.
    pub template: bool,
    /// Current `lock:` value.
    pub lock: Option<String>,
}

/// A guest's config as Proxmox returns it: `key -> value` strings (numbers and `1`/`0`
/// booleans stringified), the raw `lxc.*` lines of a container, and the `digest`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestConfig {
    /// Config keys (`memory`, `net0`, `rootfs`, ...), without `digest` and `lxc`.
    pub entries: BTreeMap<String, String>,
    /// Raw `lxc.*` lines of a container, in file order.
    pub raw_lxc: Vec<(String, String)>,
    /// SHA-1 of the config file.
    pub digest: Option<String>,
}

fn bad(key: &str, v: &str, e: impl fmt::Display) -> Error {
    Error::backend(
        "config",
        format!("cannot parse config key {key}: {v:?}: {e}"),
    )
}

impl GuestConfig {
    /// A raw value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
    }
    /// A numeric value.
    pub fn num(&self, key: &str) -> Result<Option<u64>> {
        self.get(key)
            .map(|v| v.trim().parse::<u64>().map_err(|e| bad(key, v, e)))
            .transpose()
    }
    /// A `1`/`0` boolean (absent is `None`).
    pub fn flag(&self, key: &str) -> Option<bool> {
        self.get(key)
            .map(|v| matches!(v.trim(), "1" | "on" | "yes" | "true"))
    }
    /// Container NIC `netN`.
    pub fn lxc_net(&self, key: &str) -> Result<Option<LxcNet>> {
        self.get(key)
            .map(|v| v.parse().map_err(|e| bad(key, v, e)))
            .transpose()
    }
    /// VM NIC `netN`.
    pub fn qemu_net(&self, key: &str) -> Result<Option<QemuNet>> {
        self.get(key)
            .map(|v| v.parse().map_err(|e| bad(key, v, e)))
            .transpose()
    }
    /// `rootfs` / `mpN`.
    pub fn mount_point(&self, key: &str) -> Result<Option<MountPoint>> {
        self.get(key)
            .map(|v| v.parse().map_err(|e| bad(key, v, e)))
            .transpose()
    }
    /// VM disk (`scsi0`, `ide2`, ...).
    pub fn disk(&self, key: &str) -> Result<Option<QemuDisk>> {
        self.get(key)
            .map(|v| v.parse().map_err(|e| bad(key, v, e)))
            .transpose()
    }
    /// Container `features`.
    pub fn features(&self) -> Result<LxcFeatures> {
        Ok(self
            .get("features")
            .map(|v| v.parse().map_err(|e| bad("features", v, e)))
            .transpose()?
            .unwrap_or_default())
    }
    /// `startup`.
    pub fn startup(&self) -> Result<Option<Startup>> {
        self.get("startup")
            .map(|v| v.parse().map_err(|e| bad("startup", v, e)))
            .transpose()
    }
    /// Every `mpN` by index.
    pub fn mount_points(&self) -> Result<BTreeMap<u32, MountPoint>> {
        let mut out = BTreeMap::new();
        for (k, v) in &self.entries {
            if let Some(n) = k.strip_prefix("mp").and_then(|n| n.parse::<u32>().ok()) {
                out.insert(n, v.parse().map_err(|e| bad(k, v, e))?);
            }
        }
        Ok(out)
    }
    /// `lock:`.
    pub fn lock(&self) -> Option<&str> {
        self.get("lock")
    }
    /// Whether this is a Proxmox template.
    pub fn is_template(&self) -> bool {
        self.flag("template").unwrap_or(false)
    }
    /// Description (`#` lines), unescaped.
    pub fn description(&self) -> Option<&str> {
        self.get("description")
    }
}

/// A config change: keys to set and keys to delete (`PUT .../config`, `pct set --delete`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigUpdate {
    /// Keys to set, Proxmox parameter names and string values.
    pub set: BTreeMap<String, String>,
    /// Keys to remove.
    pub delete: Vec<String>,
    /// Fail if the config changed since this digest was read.
    pub digest: Option<String>,
}

impl ConfigUpdate {
    /// Whether nothing would change.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.delete.is_empty()
    }
}

/// `pct create` parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LxcCreate {
    /// New CTID.
    pub id: GuestId,
    /// OS template volid (`local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst`).
    pub ostemplate: String,
    /// Every other parameter (`hostname`, `memory`, `cores`, `rootfs`, `net0`, `unprivileged`, ...).
    pub params: BTreeMap<String, String>,
}

/// `pct clone` / `qm clone` parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloneRequest {
    /// Source guest.
    pub source: GuestId,
    /// New id.
    pub target: GuestId,
    /// Clone from this snapshot.
    pub snapname: Option<String>,
    /// New hostname (CT) / name (VM).
    pub name: Option<String>,
    /// Target storage (full clones only).
    pub storage: Option<StorageId>,
    /// Full copy rather than a linked clone.
    pub full: bool,
}

/// `qm create` parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmCreate {
    /// New VMID.
    pub id: GuestId,
    /// Every parameter (`name`, `memory`, `cores`, `net0`, `scsi0`, `ide2`, `ciuser`, ...).
    pub params: BTreeMap<String, String>,
}

/// `pct destroy` / `qm destroy` options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestroyOptions {
    /// Remove from backup jobs, replication and HA.
    pub purge: bool,
    /// Also destroy disks not referenced by the config.
    pub destroy_unreferenced_disks: bool,
}

/// One snapshot (`current` is not listed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    /// Name.
    pub name: String,
    /// Parent snapshot.
    pub parent: Option<String>,
    /// Description.
    pub description: String,
    /// Creation time (epoch seconds).
    pub snaptime: Option<i64>,
}

/// Guest or cluster firewall options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallOptions {
    /// `enable`.
    pub enable: Option<bool>,
    /// `policy_in`.
    pub policy_in: Option<String>,
    /// `policy_out`.
    pub policy_out: Option<String>,
}

/// A firewall file: options and rules.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallState {
    /// `[OPTIONS]`.
    pub options: FirewallOptions,
    /// `[RULES]`, in order.
    pub rules: Vec<crate::types::FirewallRule>,
}

/// A storage on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageInfo {
    /// Storage id.
    pub id: StorageId,
    /// Type (`dir`, `lvmthin`, `zfspool`, `nfs`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// Content types (`images`, `rootdir`, `iso`, `vztmpl`, `backup`, `snippets`, `import`).
    pub content: Vec<String>,
    /// Active on this node.
    pub active: bool,
    /// Enabled.
    pub enabled: bool,
    /// Shared between nodes.
    pub shared: bool,
    /// Bytes total.
    pub total: u64,
    /// Bytes used.
    pub used: u64,
    /// Bytes available.
    pub avail: u64,
}

impl StorageInfo {
    /// Whether the storage accepts `content`.
    pub fn supports(&self, content: &str) -> bool {
        self.content.iter().any(|c| c == content)
    }
}

/// A volume on a storage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeInfo {
    /// Volume id (`local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst`).
    pub volid: String,
    /// Content type.
    pub content: String,
    /// Format (`raw`, `subvol`, `tzst`, `iso`, ...).
    pub format: String,
    /// Size in bytes.
    pub size: u64,
    /// Owning guest.
    pub vmid: Option<GuestId>,
}

/// A cluster node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Node name.
    pub name: NodeName,
    /// `online`, `offline`, `unknown`.
    pub status: String,
    /// CPUs.
    pub maxcpu: Option<u64>,
    /// Bytes of memory.
    pub maxmem: Option<u64>,
}

/// Proxmox version (`GET /version`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// `9.1.2`.
    pub version: String,
    /// `9.1`.
    pub release: String,
}

/// A command to run: argv (never a shell string), environment, timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRequest {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// Give up after this long.
    pub timeout: Duration,
    /// Where the output goes line by line while the command runs. A backend that runs a
    /// process (locally, over ssh, `pct exec`) streams into it; one that only gets the output
    /// when the command ends (the guest agent) leaves it unused. The whole output is in the
    /// returned [`ExecOutput`] either way.
    pub live: Option<LiveOutput>,
}

/// The sending end of a running command's output, a line at a time (stdout and stderr as
/// they come, without their line ends). Made with [`LiveOutput::channel`].
#[derive(Debug, Clone)]
pub struct LiveOutput(tokio::sync::mpsc::UnboundedSender<String>);

impl LiveOutput {
    /// A sink and the receiver its lines arrive at.
    pub fn channel() -> (Self, tokio::sync::mpsc::UnboundedReceiver<String>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (Self(tx), rx)
    }
    /// Pass on one line (nothing happens when nobody listens any more).
    pub fn line(&self, line: &str) {
        let _ = self.0.send(line.to_string());
    }
}

impl PartialEq for LiveOutput {
    fn eq(&self, other: &Self) -> bool {
        self.0.same_channel(&other.0)
    }
}

impl Eq for LiveOutput {}

impl ExecRequest {
    /// A request with the default timeout (10 minutes).
    pub fn new(argv: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            argv: argv.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            timeout: Duration::from_secs(600),
            live: None,
        }
    }
    /// Add an environment variable.
    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }
    /// Set the timeout.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }
    /// Stream the output into `live` while the command runs.
    pub fn live(mut self, live: LiveOutput) -> Self {
        self.live = Some(live);
        self
    }
}

/// What a command did.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ExecOutput {
    /// Exit code (`-1` when killed by a signal).
    pub exit_code: i32,
    /// Standard output (lossy UTF-8).
    pub stdout: String,
    /// Standard error (lossy UTF-8).
    pub stderr: String,
}

impl ExecOutput {
    /// Exit code 0.
    pub fn success(&self) -> bool {
        self.exit_code == 0
    }
}

/// What a finished Proxmox task reported.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskDone {
    /// The task id, when the operation ran as a task.
    pub upid: Option<String>,
    /// `WARNINGS: n` count (the task still succeeded).
    pub warnings: u32,
}

impl TaskDone {
    /// A synchronous operation (no task).
    pub fn sync() -> Self {
        Self::default()
    }
    /// A task that finished OK.
    pub fn task(upid: impl Into<String>) -> Self {
        Self {
            upid: Some(upid.into()),
            warnings: 0,
        }
    }
}

/// A storage definition (`pvesm add`, `POST /storage`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageSpec {
    /// Storage id.
    pub id: StorageId,
    /// Type: `dir`, `zfspool`, `nfs`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Type-specific parameters (`path`, `pool`, `server`, `export`, `options`, `shared`).
    pub params: BTreeMap<String, String>,
    /// Content types.
    pub content: Vec<String>,
}

/// The disk name of a resize: `rootfs`, `mp0`, `scsi0`.
pub type DiskName = str;

/// A new size for `resize`.
pub type NewSize = DiskSize;
