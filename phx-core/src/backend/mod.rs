//! The backend traits: thin, Proxmox-shaped primitives. All orchestration lives in the engine
//! above them, written once.
//!
//! # Contract (every backend)
//!
//! - Guest ids are cluster-wide; every guest-scoped call names the node the guest lives on
//!   (the engine finds it through [`Hypervisor::guests`]).
//! - Errors are semantic ([`crate::Error`]): a missing guest is `NotFound`, an id in use is
//!   `AlreadyExists`, lock contention is `Locked` (retryable), a state conflict is `Conflict`
//!   with its reason, a failed task is `TaskFailed` with UPID and log tail. Messages that came
//!   from Proxmox are kept verbatim.
//! - Long Proxmox tasks are waited for inside the backend; a method returns when the task is
//!   done. A call whose task was accepted is never sent twice by the backend.
//! - Asymmetries are Proxmox's: starting a running container fails (`AlreadyRunning`),
//!   stopping a stopped container fails (`NotRunning`), stopping a stopped VM succeeds.
//! - No method has a default body: a backend that cannot do something returns
//!   [`crate::Error::Unsupported`] and says so in [`Capabilities`].
//!
//! # Cancellation
//!
//! Dropping a future after a task was accepted leaves the task running on Proxmox; the engine
//! therefore never drops in-flight backend futures (cancellation stops *dispatching*).

pub mod inflight;
pub mod live;
mod types;

use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use types::*;

use crate::error::Result;
use crate::types::{DiskSize, FirewallRule, GuestId, GuestKind, NodeName, SnapshotName, StorageId};

/// What a backend can do, so callers (and conformance cases) know before trying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// `exec` and `push` into containers.
    pub lxc_exec: bool,
    /// Guest-agent `exec`/`file-write` into VMs.
    pub vm_agent: bool,
    /// Run commands on the node itself ([`Hypervisor::host_exec`]).
    pub host_exec: bool,
    /// Write raw `lxc.*` lines into a container's config.
    pub raw_lxc_config: bool,
    /// Manage guests on more than one node.
    pub multi_node: bool,
}

/// A whole Proxmox installation (one node or a cluster).
#[async_trait]
pub trait Hypervisor: Send + Sync + Debug {
    /// Backend name (`pct`, `api`, `fake`).
    fn name(&self) -> &'static str;
    /// What this backend supports.
    fn capabilities(&self) -> Capabilities;
    /// Container operations.
    fn lxc(&self) -> &dyn LxcManager;
    /// VM operations.
    fn vm(&self) -> &dyn VmManager;

    /// Proxmox version.
    async fn version(&self) -> Result<Version>;
    /// Cluster nodes.
    async fn nodes(&self) -> Result<Vec<NodeInfo>>;
    /// The node new guests go to when neither the config nor the operator names one.
    async fn default_node(&self) -> Result<NodeName>;
    /// Every guest in the cluster, containers and VMs, with the node each lives on.
    async fn guests(&self) -> Result<Vec<GuestSummary>>;
    /// The tasks running on `node` now, of type `kind` when given (`download`): what a call
    /// whose answer was lost may have started.
    async fn active_tasks(&self, node: &NodeName, kind: Option<&str>) -> Result<Vec<ActiveTask>>;

    /// Storages of a node.
    async fn storages(&self, node: &NodeName) -> Result<Vec<StorageInfo>>;
    /// Volumes on a storage, optionally of one content type.
    async fn storage_content(
        &self,
        node: &NodeName,
        storage: &StorageId,
        content: Option<&str>,
    ) -> Result<Vec<VolumeInfo>>;
    /// Add a storage (cluster-wide definition).
    async fn add_storage(&self, spec: &StorageSpec) -> Result<()>;
    /// Change a storage's content types.
    async fn set_storage_content(&self, storage: &StorageId, content: &[String]) -> Result<()>;
    /// Remove a storage definition (data stays).
    async fn remove_storage(&self, storage: &StorageId) -> Result<()>;
    /// Templates the appliance catalogue offers (`pveam available`).
    async fn available_templates(&self, node: &NodeName) -> Result<Vec<String>>;
    /// Download a catalogue template into a storage (`pveam download`).
    async fn download_template(
        &self,
        node: &NodeName,
        storage: &StorageId,
        template: &str,
    ) -> Result<TaskDone>;
    /// Download a URL into a storage (`download-url`; content `iso`, `vztmpl` or `import`).
    async fn download_url(
        &self,
        node: &NodeName,
        storage: &StorageId,
        content: &str,
        filename: &str,
        url: &str,
    ) -> Result<TaskDone>;

    /// Proxmox users (`user@realm`).
    async fn users(&self) -> Result<Vec<String>>;
    /// Create a user.
    async fn add_user(&self, userid: &str, comment: &str) -> Result<()>;
    /// ACL entries `(path, user-or-group, role)`.
    async fn acl(&self) -> Result<Vec<(String, String, String)>>;
    /// Grant `role` on `path` to `userid`.
    async fn set_acl(&self, path: &str, userid: &str, role: &str) -> Result<()>;

    /// The cluster firewall (`cluster.fw`): options and rules.
    async fn cluster_firewall(&self) -> Result<FirewallState>;
    /// Set cluster firewall options.
    async fn set_cluster_firewall_options(&self, opts: &FirewallOptions) -> Result<()>;
    /// Replace the cluster firewall rules.
    async fn set_cluster_firewall_rules(&self, rules: &[FirewallRule]) -> Result<()>;

    /// Linux bridges of a node (`GET /nodes/{node}/network?type=bridge`).
    async fn bridges(&self, node: &NodeName) -> Result<Vec<String>>;
    /// Node DNS: `(search domain, nameservers)`.
    async fn node_dns(&self, node: &NodeName) -> Result<(Option<String>, Vec<String>)>;
    /// Set node DNS.
    async fn set_node_dns(
        &self,
        node: &NodeName,
        search: &str,
        nameservers: &[String],
    ) -> Result<()>;
    /// Node timezone.
    async fn node_timezone(&self, node: &NodeName) -> Result<String>;
    /// Set node timezone.
    async fn set_node_timezone(&self, node: &NodeName, tz: &str) -> Result<()>;

    /// Run a command on the node (argv, never a shell string).
    async fn host_exec(&self, node: &NodeName, req: &ExecRequest) -> Result<ExecOutput>;
}

/// Operations every guest kind has.
#[async_trait]
pub trait GuestManager: Send + Sync + Debug {
    /// Which kind this manages.
    fn kind(&self) -> GuestKind;
    /// Current status; `NotFound` when the guest does not exist.
    async fn status(&self, node: &NodeName, id: GuestId) -> Result<GuestSummary>;
    /// Current config (pending values applied).
    async fn config(&self, node: &NodeName, id: GuestId) -> Result<GuestConfig>;
    /// Set and delete config keys.
    async fn update_config(
        &self,
        node: &NodeName,
        id: GuestId,
        change: &ConfigUpdate,
    ) -> Result<()>;
    /// Grow a disk (`rootfs`, `mp0`, `scsi0`) to `size`; shrinking is an error.
    async fn resize(
        &self,
        node: &NodeName,
        id: GuestId,
        disk: &str,
        size: DiskSize,
    ) -> Result<TaskDone>;
    /// Start.
    async fn start(&self, node: &NodeName, id: GuestId) -> Result<TaskDone>;
    /// Hard stop.
    async fn stop(&self, node: &NodeName, id: GuestId) -> Result<TaskDone>;
    /// Clean shutdown, hard stop after `timeout`.
    async fn shutdown(&self, node: &NodeName, id: GuestId, timeout: Duration) -> Result<TaskDone>;
    /// Reboot.
    async fn reboot(&self, node: &NodeName, id: GuestId) -> Result<TaskDone>;
    /// Destroy (must be stopped; honours `protection`).
    async fn destroy(
        &self,
        node: &NodeName,
        id: GuestId,
        opts: &DestroyOptions,
    ) -> Result<TaskDone>;
    /// Snapshots, oldest first, without `current`.
    async fn snapshots(&self, node: &NodeName, id: GuestId) -> Result<Vec<SnapshotInfo>>;
    /// Take a snapshot.
    async fn snapshot_create(
        &self,
        node: &NodeName,
        id: GuestId,
        name: &SnapshotName,
        description: &str,
    ) -> Result<TaskDone>;
    /// Delete a snapshot.
    async fn snapshot_delete(
        &self,
        node: &NodeName,
        id: GuestId,
        name: &SnapshotName,
    ) -> Result<TaskDone>;
    /// Roll back to a snapshot.
    async fn snapshot_rollback(
        &self,
        node: &NodeName,
        id: GuestId,
        name: &SnapshotName,
    ) -> Result<TaskDone>;
    /// Convert into a Proxmox template.
    async fn template(&self, node: &NodeName, id: GuestId) -> Result<()>;
    /// The guest firewall (`/etc/pve/firewall/<id>.fw`): options and rules in one read.
    async fn firewall(&self, node: &NodeName, id: GuestId) -> Result<FirewallState>;
    /// Set guest firewall options.
    async fn set_firewall_options(
        &self,
        node: &NodeName,
        id: GuestId,
        opts: &FirewallOptions,
    ) -> Result<()>;
    /// Replace the guest firewall rules.
    async fn set_firewall_rules(
        &self,
        node: &NodeName,
        id: GuestId,
        rules: &[FirewallRule],
    ) -> Result<()>;
}

/// Container operations.
#[async_trait]
pub trait LxcManager: GuestManager {
    /// `pct create`.
    async fn create(&self, node: &NodeName, req: &LxcCreate) -> Result<TaskDone>;
    /// `pct clone` (locks the source with `lock: disk` while it runs).
    async fn clone_guest(&self, node: &NodeName, req: &CloneRequest) -> Result<TaskDone>;
    /// Replace the raw `lxc.*` lines of the config file, keeping every other line.
    async fn set_raw_config(
        &self,
        node: &NodeName,
        id: GuestId,
        lines: &[(String, String)],
    ) -> Result<()>;
    /// Run a command in the container (exit code passed through).
    async fn exec(&self, node: &NodeName, id: GuestId, req: &ExecRequest) -> Result<ExecOutput>;
    /// Write a file into the container.
    async fn push(
        &self,
        node: &NodeName,
        id: GuestId,
        content: &[u8],
        dest: &str,
        mode: u32,
    ) -> Result<()>;
}

/// VM operations.
#[async_trait]
pub trait VmManager: GuestManager {
    /// `qm create`.
    async fn create(&self, node: &NodeName, req: &VmCreate) -> Result<TaskDone>;
    /// `qm clone`.
    async fn clone_guest(&self, node: &NodeName, req: &CloneRequest) -> Result<TaskDone>;
    /// Regenerate the cloud-init drive.
    async fn cloudinit_update(&self, node: &NodeName, id: GuestId) -> Result<()>;
    /// Whether the guest agent answers.
    async fn agent_ping(&self, node: &NodeName, id: GuestId) -> Result<()>;
    /// Run a command through the guest agent.
    async fn agent_exec(
        &self,
        node: &NodeName,
        id: GuestId,
        req: &ExecRequest,
    ) -> Result<ExecOutput>;
    /// Write a file through the guest agent.
    async fn agent_file_write(
        &self,
        node: &NodeName,
        id: GuestId,
        path: &str,
        content: &[u8],
    ) -> Result<()>;
    /// Read a file through the guest agent (`agent/file-read`, at most the first 16 MiB, as
    /// Proxmox reads it). A read: safe to repeat, used to follow a log while a command runs.
    async fn agent_file_read(&self, node: &NodeName, id: GuestId, path: &str) -> Result<AgentFile>;
}

/// The [`GuestManager`] for a kind.
pub fn manager(hv: &dyn Hypervisor, kind: GuestKind) -> &dyn GuestManager {
    match kind {
        GuestKind::Lxc => hv.lxc(),
        GuestKind::Vm => hv.vm(),
    }
}
