//! The cluster and its operations, in Proxmox terms. Task-starting operations return a UPID;
//! the task completes in [`FakeCluster::complete`] (at once, or after the injected latency).

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use phx_core::backend::{FirewallOptions, GuestSummary, PowerState};
use phx_core::propstr::{LxcNet, MountPoint, QemuDisk, QemuNet};
use phx_core::types::{DiskSize, FirewallRule, GuestId, GuestKind, NodeName};
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

use super::PveError;
use super::schema::{canonical, indexed, is_disk};
use super::state::*;

const GIB: u64 = 1024 * 1024 * 1024;

/// An in-memory Proxmox VE cluster.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FakeCluster {
    /// `pveversion`.
    pub version: String,
    /// Nodes by name.
    pub nodes: BTreeMap<String, FakeNode>,
    /// Storage definitions by id.
    pub storages: BTreeMap<String, FakeStorage>,
    /// Volumes.
    pub volumes: Vec<FakeVolume>,
    /// Guests by id.
    pub guests: BTreeMap<u32, FakeGuest>,
    /// Tasks, oldest first (bounded history).
    pub tasks: Vec<FakeTask>,
    /// Appliance catalogue: `(section, template)`.
    pub catalogue: Vec<(String, String)>,
    /// Users: id -> comment.
    pub users: BTreeMap<String, String>,
    /// ACL: `(path, ugid, role)`.
    pub acl: Vec<(String, String, String)>,
    /// `cluster.fw`.
    pub cluster_firewall: FwFile,
    /// Logical clock (epoch seconds) for UPIDs and snapshot times.
    pub clock: i64,
    /// Next task pid.
    pub next_pid: u32,
    /// Next generated MAC suffix.
    pub next_mac: u32,
    /// Injected faults per operation, consumed in order.
    pub faults: BTreeMap<String, Vec<Fault>>,
    /// Task latency in milliseconds.
    pub latency_ms: u64,
    /// Call counters.
    pub counters: Counters,
    /// Operation log (one line per write, `read` lines for reads).
    #[serde(default)]
    pub oplog: Vec<String>,
    /// A `LostResponse` fault popped by the current call: the caller reports this status
    /// after the call went through.
    #[serde(default)]
    pub lost_response: Option<u16>,
    /// A `Slow` fault popped by the current call: the task it starts runs this many
    /// milliseconds.
    #[serde(default)]
    pub slow_task: Option<u64>,
    /// Guest-agent `exec` results by pid.
    #[serde(default)]
    pub agent_execs: BTreeMap<u32, AgentExec>,
}

/// A config as `GET .../config` returns it: entries, raw `lxc.*` lines, digest.
pub type ConfigView = (BTreeMap<String, String>, Vec<(String, String)>, String);

/// How a task ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskOutcome {
    /// Still running.
    Running,
    /// `OK` or `WARNINGS: n`.
    Ok {
        /// Warning count.
        warnings: u32,
    },
    /// Failed with this exit status; last log lines.
    Failed {
        /// Exit status.
        exitstatus: String,
        /// Log tail.
        log_tail: Vec<String>,
    },
}

const MAX_TASKS: usize = 2000;

/// Every operation [`FakeCluster::fail_next`] can make fail (the calls that take an injected
/// fault), for tools that accept operation names from people (`PHX_SIM_FAULTS`).
pub const FAULT_OPS: &[&str] = &[
    "aplinfo.download",
    "lxc.clone",
    "lxc.config.update",
    "lxc.create",
    "lxc.delsnapshot",
    "lxc.destroy",
    "lxc.firewall.options",
    "lxc.firewall.rules",
    "lxc.raw.set",
    "lxc.reboot",
    "lxc.resize",
    "lxc.rollback",
    "lxc.shutdown",
    "lxc.snapshot",
    "lxc.start",
    "lxc.stop",
    "lxc.template",
    "storage.add",
    "storage.download-url",
    "vm.clone",
    "vm.config.update",
    "vm.create",
    "vm.delsnapshot",
    "vm.destroy",
    "vm.firewall.options",
    "vm.firewall.rules",
    "vm.reboot",
    "vm.resize",
    "vm.rollback",
    "vm.shutdown",
    "vm.snapshot",
    "vm.start",
    "vm.stop",
    "vm.template",
];

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Default for FakeCluster {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeCluster {
    /// A fresh single-node cluster (`pve`) as a new Proxmox install has it: storages `local`
    /// (dir: iso, vztmpl, backup, snippets) and `local-lvm` (lvmthin: images, rootdir).
    pub fn new() -> Self {
        Self::with_nodes(&["pve"])
    }

    /// A fresh cluster with these nodes.
    pub fn with_nodes(names: &[&str]) -> Self {
        let nodes = names
            .iter()
            .map(|n| {
                (
                    (*n).to_string(),
                    FakeNode {
                        name: (*n).to_string(),
                        status: "online".into(),
                        dns_search: Some("localdomain".into()),
                        dns_servers: vec!["192.168.1.1".into()],
                        timezone: "UTC".into(),
                        maxcpu: 16,
                        maxmem: 64 * GIB,
                        bridges: vec!["vmbr0".to_string()],
                    },
                )
            })
            .collect();
        let mut storages = BTreeMap::new();
        storages.insert(
            "local".into(),
            FakeStorage {
                id: "local".into(),
                kind: "dir".into(),
                content: vec![
                    "iso".into(),
                    "vztmpl".into(),
                    "backup".into(),
                    "snippets".into(),
                ],
                shared: false,
                disabled: false,
                nodes: None,
                total: 100 * GIB,
                params: BTreeMap::from([("path".into(), "/var/lib/vz".into())]),
            },
        );
        storages.insert(
            "local-lvm".into(),
            FakeStorage {
                id: "local-lvm".into(),
                kind: "lvmthin".into(),
                content: vec!["images".into(), "rootdir".into()],
                shared: false,
                disabled: false,
                nodes: None,
                total: 800 * GIB,
                params: BTreeMap::from([
                    ("vgname".into(), "pve".into()),
                    ("thinpool".into(), "data".into()),
                ]),
            },
        );
        let catalogue = [
            "alpine-3.22-default_20250617_amd64.tar.xz",
            "debian-12-standard_12.12-1_amd64.tar.zst",
            "debian-13-standard_13.1-2_amd64.tar.zst",
            "rockylinux-9-default_20240912_amd64.tar.xz",
            "ubuntu-22.04-standard_22.04-1_amd64.tar.zst",
            "ubuntu-24.04-standard_24.04-2_amd64.tar.zst",
            "ubuntu-25.04-standard_25.04-1.1_amd64.tar.zst",
        ]
        .iter()
        .map(|t| ("system".to_string(), (*t).to_string()))
        .collect();
        Self {
            version: "9.1.2".into(),
            nodes,
            storages,
            volumes: Vec::new(),
            guests: BTreeMap::new(),
            tasks: Vec::new(),
            catalogue,
            users: BTreeMap::from([("root@pam".to_string(), String::new())]),
            acl: Vec::new(),
            cluster_firewall: FwFile::default(),
            clock: 1_767_225_600,
            next_pid: 0x0001_2000,
            next_mac: 0x5e_3a_01,
            faults: BTreeMap::new(),
            latency_ms: 0,
            counters: Counters::default(),
            oplog: Vec::new(),
            lost_response: None,
            slow_task: None,
            agent_execs: BTreeMap::new(),
        }
    }

    // ----- test controls -------------------------------------------------------------

    /// Make the next call of `op` (e.g. `lxc.start`, `vm.clone`, `lxc.config.update`) fail.
    /// Several calls queue several faults.
    pub fn fail_next(&mut self, op: &str, fault: Fault) {
        self.faults.entry(op.to_string()).or_default().push(fault);
    }

    /// Set the time every task takes.
    pub fn set_latency_ms(&mut self, ms: u64) {
        self.latency_ms = ms;
    }

    /// Record a call: counters and the operation log.
    pub(crate) fn count(&mut self, op: &str, write: bool, detail: String) {
        if write {
            self.counters.writes += 1;
            self.oplog.push(if detail.is_empty() {
                op.to_string()
            } else {
                format!("{op} {detail}")
            });
        } else {
            self.counters.reads += 1;
            self.oplog.push(if detail.is_empty() {
                format!("read {op}")
            } else {
                format!("read {op} {detail}")
            });
        }
        *self.counters.per_op.entry(op.to_string()).or_default() += 1;
    }

    /// Take the operation log.
    pub fn take_oplog(&mut self) -> Vec<String> {
        std::mem::take(&mut self.oplog)
    }

    /// Pop an injected fault; synchronous ones become an error right away.
    fn fault(&mut self, op: &str, lock_path: &str) -> Result<Option<String>, PveError> {
        debug_assert!(FAULT_OPS.contains(&op), "{op} is missing from FAULT_OPS");
        self.slow_task = None;
        let Some(q) = self.faults.get_mut(op) else {
            return Ok(None);
        };
        if q.is_empty() {
            return Ok(None);
        }
        let f = q.remove(0);
        match f {
            Fault::LockTimeout => Err(PveError::e500(format!("can't lock file '{lock_path}' - got timeout"))),
            Fault::Http { status } => Err(PveError {
                status,
                message: match status {
                    595 => "Errors during connection establishment, proxy handshake: Connection refused".into(),
                    596 => "Broken pipe".into(),
                    _ => "Connection reset by peer".into(),
                },
                errors: BTreeMap::new(),
            }),
            Fault::Error { status, message } => Err(PveError { status, message, errors: BTreeMap::new() }),
            Fault::TaskError { message } => Ok(Some(message)),
            Fault::LostResponse { status } => {
                self.lost_response = Some(status);
                Ok(None)
            }
            Fault::Slow { ms } => {
                self.slow_task = Some(ms);
                Ok(None)
            }
        }
    }

    // ----- lookups -------------------------------------------------------------------

    fn node(&self, node: &str) -> Result<&FakeNode, PveError> {
        self.nodes
            .get(node)
            .ok_or_else(|| PveError::param("node", format!("no such cluster node '{node}'")))
    }

    /// The guest `id` of `kind` on `node`, or Proxmox's "does not exist" error.
    pub fn guest(&self, kind: GuestKind, node: &str, id: u32) -> Result<&FakeGuest, PveError> {
        self.node(node)?;
        match self.guests.get(&id) {
            Some(g) if g.kind == kind && g.node == node => Ok(g),
            _ => Err(PveError::e500(match kind {
                GuestKind::Lxc => format!(
                    "Configuration file '{}' does not exist",
                    conf_path(node, kind, id)
                ),
                GuestKind::Vm => format!(
                    "Configuration file '{}' does not exist",
                    conf_path(node, kind, id)
                ),
            })),
        }
    }

    fn guest_mut(
        &mut self,
        kind: GuestKind,
        node: &str,
        id: u32,
    ) -> Result<&mut FakeGuest, PveError> {
        self.guest(kind, node, id)?;
        self.guests
            .get_mut(&id)
            .ok_or_else(|| PveError::e500("vanished"))
    }

    fn check_unlocked(g: &FakeGuest) -> Result<(), PveError> {
        match g.lock() {
            Some(l) => Err(PveError::e500(format!("{} is locked ({l})", g.word()))),
            None => Ok(()),
        }
    }

    fn lock_file(kind: GuestKind, id: u32) -> String {
        match kind {
            GuestKind::Lxc => format!("/run/lock/lxc/pve-config-{id}.lock"),
            GuestKind::Vm => format!("/var/lock/qemu-server/lock-{id}.conf"),
        }
    }

    fn opname(kind: GuestKind, op: &str) -> String {
        format!("{}.{op}", if kind == GuestKind::Lxc { "lxc" } else { "vm" })
    }

    // ----- tasks ---------------------------------------------------------------------

    fn start_task(
        &mut self,
        node: &str,
        kind: &str,
        id: &str,
        mut effect: Effect,
        log: Vec<String>,
        fail: Option<String>,
    ) -> String {
        self.clock += 1;
        self.next_pid += 1;
        let pstart = 0x0100_0000u32.wrapping_add(self.next_pid.wrapping_mul(7));
        let upid = format!(
            "UPID:{node}:{:08X}:{:08X}:{:08X}:{kind}:{id}:root@pam:",
            self.next_pid, pstart, self.clock
        );
        if let Some(message) = fail {
            let (unlock, remove) = match &effect {
                Effect::Unlock { id, source } => (Some((*id, *source)), Some(*id)),
                Effect::SnapshotDone { id } => (Some((*id, None)), None),
                _ => (None, None),
            };
            effect = Effect::Fail {
                message,
                unlock,
                remove,
            };
        }
        self.counters.tasks += 1;
        self.tasks.push(FakeTask {
            upid: upid.clone(),
            node: node.to_string(),
            kind: kind.to_string(),
            id: id.to_string(),
            user: "root@pam".into(),
            starttime: self.clock,
            endtime: None,
            due_ms: now_ms() + self.slow_task.take().unwrap_or(self.latency_ms),
            exitstatus: None,
            log,
            effect: Some(effect),
        });
        if self.tasks.len() > MAX_TASKS {
            let excess = self.tasks.len() - MAX_TASKS;
            self.tasks.retain(|t| t.exitstatus.is_none() || excess == 0);
            if self.tasks.len() > MAX_TASKS {
                let drop = self.tasks.len() - MAX_TASKS;
                self.tasks.drain(..drop);
            }
        }
        upid
    }

    /// Complete every task whose latency has passed.
    pub fn complete_due(&mut self) {
        let now = now_ms();
        let due: Vec<String> = self
            .tasks
            .iter()
            .filter(|t| t.exitstatus.is_none() && t.due_ms <= now)
            .map(|t| t.upid.clone())
            .collect();
        for u in due {
            self.complete(&u);
        }
    }

    /// Complete a task now (applying its effect) and return how it ended.
    pub fn complete(&mut self, upid: &str) -> TaskOutcome {
        let Some(idx) = self.tasks.iter().position(|t| t.upid == upid) else {
            return TaskOutcome::Failed {
                exitstatus: "no such task".into(),
                log_tail: Vec::new(),
            };
        };
        if self.tasks[idx].exitstatus.is_none() {
            let effect = self.tasks[idx].effect.take().unwrap_or(Effect::None);
            let result = self.apply_effect(effect);
            self.clock += 1;
            let t = &mut self.tasks[idx];
            t.endtime = Some(self.clock);
            match result {
                Ok(extra) => {
                    t.log.extend(extra);
                    t.log.push("TASK OK".into());
                    t.exitstatus = Some("OK".into());
                }
                Err(msg) => {
                    t.log.push(format!("TASK ERROR: {msg}"));
                    t.exitstatus = Some(msg.replace('\n', " "));
                }
            }
        }
        self.task_outcome(upid)
    }

    /// How a task ended (or that it runs).
    pub fn task_outcome(&self, upid: &str) -> TaskOutcome {
        let Some(t) = self.tasks.iter().find(|t| t.upid == upid) else {
            return TaskOutcome::Failed {
                exitstatus: "no such task".into(),
                log_tail: Vec::new(),
            };
        };
        match t.exitstatus.as_deref() {
            None => TaskOutcome::Running,
            Some("OK") => TaskOutcome::Ok { warnings: 0 },
            Some(w) if w.starts_with("WARNINGS: ") => TaskOutcome::Ok {
                warnings: w[10..].parse().unwrap_or(0),
            },
            Some(e) => TaskOutcome::Failed {
                exitstatus: e.to_string(),
                log_tail: t.log.iter().rev().take(5).rev().cloned().collect(),
            },
        }
    }

    /// Whether guest-agent calls can reach VM `id`: `agent` enabled and the VM running.
    pub fn agent_ready(&self, node: &str, id: u32) -> Result<&FakeGuest, PveError> {
        let g = self.guest(GuestKind::Vm, node, id)?;
        if !g
            .config
            .get("agent")
            .is_some_and(|a| a.split(',').any(|kv| matches!(kv, "1" | "enabled=1")))
        {
            return Err(PveError::e500("No QEMU guest agent configured"));
        }
        if g.status != PowerState::Running {
            return Err(PveError::e500(format!("VM {id} is not running")));
        }
        Ok(g)
    }

    /// Record a guest-agent exec result and return its pid.
    pub fn record_agent_exec(&mut self, rec: AgentExec) -> u32 {
        self.next_pid += 1;
        let pid = self.next_pid;
        self.agent_execs.insert(pid, rec);
        pid
    }

    /// `POST /nodes/{n}/qemu/{id}/config`: the update of [`FakeCluster::update_config`], run
    /// as a `qmconfig` task.
    pub fn update_config_task(
        &mut self,
        node: &str,
        id: u32,
        set: &BTreeMap<String, String>,
        delete: &[String],
        digest_in: Option<&str>,
    ) -> Result<String, PveError> {
        self.update_config(GuestKind::Vm, node, id, set, delete, digest_in)?;
        Ok(self.start_task(
            node,
            "qmconfig",
            &id.to_string(),
            Effect::None,
            Vec::new(),
            None,
        ))
    }

    /// A task by UPID.
    pub fn task(&self, upid: &str) -> Option<&FakeTask> {
        self.tasks.iter().find(|t| t.upid == upid)
    }

    fn apply_effect(&mut self, e: Effect) -> Result<Vec<String>, String> {
        match e {
            Effect::None => Ok(Vec::new()),
            Effect::Unlock { id, source } => {
                if let Some(g) = self.guests.get_mut(&id) {
                    g.config.remove("lock");
                }
                if let Some(s) = source.and_then(|s| self.guests.get_mut(&s)) {
                    s.config.remove("lock");
                }
                Ok(Vec::new())
            }
            Effect::SnapshotDone { id } => {
                if let Some(g) = self.guests.get_mut(&id) {
                    g.config.remove("lock");
                }
                Ok(Vec::new())
            }
            Effect::Power { id, to } => {
                let clock = self.clock;
                if let Some(g) = self.guests.get_mut(&id) {
                    if g.kind == GuestKind::Vm
                        && to == PowerState::Running
                        && g.status == PowerState::Running
                    {
                        return Err(format!("VM {id} already running"));
                    }
                    g.status = to;
                    g.started_at = (to == PowerState::Running).then_some(clock);
                    Ok(Vec::new())
                } else {
                    Err(format!(
                        "Configuration file 'nodes/?/{id}.conf' does not exist"
                    ))
                }
            }
            Effect::Destroy { id } => {
                self.guests.remove(&id);
                self.volumes.retain(|v| {
                    v.vmid != Some(id)
                        || matches!(v.content.as_str(), "vztmpl" | "iso" | "import" | "backup")
                });
                Ok(vec![format!(
                    "purging CT {id} from related configurations.."
                )])
            }
            Effect::Download { volume } => {
                let line = format!("downloading {} to {}", volume.name, volume.storage);
                if !self
                    .volumes
                    .iter()
                    .any(|v| v.volid() == volume.volid() && v.node == volume.node)
                {
                    self.volumes.push(volume);
                }
                Ok(vec![line, "download finished".into()])
            }
            Effect::Fail {
                message,
                unlock,
                remove,
            } => {
                if let Some((id, src)) = unlock {
                    if let Some(g) = self.guests.get_mut(&id) {
                        g.config.remove("lock");
                    }
                    if let Some(s) = src.and_then(|s| self.guests.get_mut(&s)) {
                        s.config.remove("lock");
                    }
                }
                if let Some(id) = remove {
                    self.guests.remove(&id);
                    self.volumes.retain(|v| {
                        v.vmid != Some(id)
                            || matches!(v.content.as_str(), "vztmpl" | "iso" | "import")
                    });
                }
                Err(message)
            }
        }
    }

    // ----- reads ---------------------------------------------------------------------

    /// Every guest with its node and status (`/cluster/resources?type=vm`).
    pub fn resources(&self) -> Vec<GuestSummary> {
        self.guests
            .values()
            .filter_map(|g| {
                Some(GuestSummary {
                    id: GuestId::new(u64::from(g.id)).ok()?,
                    kind: g.kind,
                    node: NodeName::new(g.node.clone()).ok()?,
                    name: Some(g.name()),
                    status: g.status,
                    template: g.is_template(),
                    lock: g.lock().map(str::to_string),
                })
            })
            .collect()
    }

    /// The config as `GET .../config` returns it: entries plus digest.
    pub fn config_of(&self, kind: GuestKind, node: &str, id: u32) -> Result<ConfigView, PveError> {
        let g = self.guest(kind, node, id)?;
        Ok((g.config.clone(), g.raw_lxc.clone(), digest(&render_conf(g))))
    }

    /// Storages usable on `node`, with usage.
    pub fn storage_status(&self, node: &str) -> Result<Vec<(FakeStorage, u64)>, PveError> {
        self.node(node)?;
        Ok(self
            .storages
            .values()
            .filter(|s| s.nodes.as_ref().is_none_or(|n| n.iter().any(|x| x == node)))
            .map(|s| {
                let used = self
                    .volumes
                    .iter()
                    .filter(|v| v.storage == s.id && (s.shared || v.node.as_deref() == Some(node)))
                    .map(|v| v.size)
                    .sum();
                (s.clone(), used)
            })
            .collect())
    }

    /// Volumes of a storage as seen from `node`.
    pub fn content(
        &self,
        node: &str,
        storage: &str,
        content: Option<&str>,
    ) -> Result<Vec<FakeVolume>, PveError> {
        self.node(node)?;
        let s = self
            .storages
            .get(storage)
            .ok_or_else(|| PveError::e500(format!("storage '{storage}' does not exist")))?;
        if !s.on(node) {
            return Err(PveError::e500(format!(
                "storage '{storage}' is not available on node '{node}'"
            )));
        }
        Ok(self
            .volumes
            .iter()
            .filter(|v| {
                v.storage == storage
                    && (s.shared || v.node.as_deref() == Some(node))
                    && content.is_none_or(|c| v.content == c)
            })
            .cloned()
            .collect())
    }

    // ----- storage and allocation ----------------------------------------------------

    fn storage_for(
        &self,
        node: &str,
        storage: &str,
        content: &str,
    ) -> Result<&FakeStorage, PveError> {
        let s = self
            .storages
            .get(storage)
            .ok_or_else(|| PveError::e500(format!("storage '{storage}' does not exist")))?;
        if !s.on(node) {
            return Err(PveError::e500(format!(
                "storage '{storage}' is not available on node '{node}'"
            )));
        }
        if !s.content.iter().any(|c| c == content) {
            return Err(PveError::e500(format!(
                "storage '{storage}' does not support {} content",
                if content == "rootdir" {
                    "container directories"
                } else {
                    content
                }
            )));
        }
        Ok(s)
    }

    fn alloc(
        &mut self,
        node: &str,
        storage: &str,
        vmid: u32,
        ct: bool,
        size: u64,
        suffix: Option<&str>,
    ) -> Result<String, PveError> {
        let s = self
            .storage_for(node, storage, if ct { "rootdir" } else { "images" })?
            .clone();
        let taken = |name: &str| {
            self.volumes.iter().any(|v| {
                v.storage == storage
                    && v.name == name
                    && (s.shared || v.node.as_deref() == Some(node))
            })
        };
        let name = match suffix {
            Some(sfx) => format!("vm-{vmid}-{sfx}"),
            None => (0..)
                .map(|n| match (s.kind.as_str(), ct) {
                    ("zfspool", true) => format!("subvol-{vmid}-disk-{n}"),
                    ("dir" | "nfs", _) => format!("{vmid}/vm-{vmid}-disk-{n}.raw"),
                    _ => format!("vm-{vmid}-disk-{n}"),
                })
                .find(|n| !taken(n))
                .unwrap_or_default(),
        };
        if taken(&name) {
            return Err(PveError::e500(format!(
                "volume '{storage}:{name}' already exists"
            )));
        }
        let used: u64 = self
            .volumes
            .iter()
            .filter(|v| v.storage == storage)
            .map(|v| v.size)
            .sum();
        if used + size > s.total {
            return Err(PveError::e500(format!(
                "unable to allocate {} on storage '{storage}': not enough free space",
                DiskSize::from_bytes(size)
            )));
        }
        let format = match (s.kind.as_str(), ct) {
            ("zfspool", true) => "subvol",
            _ => "raw",
        };
        self.volumes.push(FakeVolume {
            node: (!s.shared).then(|| node.to_string()),
            storage: storage.to_string(),
            name: name.clone(),
            content: if ct {
                "rootdir".into()
            } else {
                "images".into()
            },
            format: format.into(),
            size,
            vmid: Some(vmid),
        });
        Ok(format!("{storage}:{name}"))
    }

    /// Turn create-time disk values (`local-lvm:8`, `pool:10,mp=/x`, `pool:0,import-from=..`,
    /// `pool:cloudinit`) into allocated volumes.
    fn allocate_disks(
        &mut self,
        kind: GuestKind,
        node: &str,
        vmid: u32,
        params: &mut BTreeMap<String, String>,
    ) -> Result<(), PveError> {
        let keys: Vec<String> = params
            .keys()
            .filter(|k| is_disk(kind, k))
            .cloned()
            .collect();
        for k in keys {
            let v = params[&k].clone();
            match kind {
                GuestKind::Lxc => {
                    let mut mp: MountPoint = v
                        .parse()
                        .map_err(|e: phx_core::propstr::PropError| PveError::param(&k, e.reason))?;
                    if mp.is_bind() {
                        continue;
                    }
                    if let Some((storage, size)) = mp
                        .volume
                        .split_once(':')
                        .filter(|(_, s)| s.parse::<f64>().is_ok())
                    {
                        let gib: f64 = size.parse().unwrap_or(0.0);
                        let bytes = (gib * GIB as f64) as u64;
                        mp.volume = self.alloc(node, storage, vmid, true, bytes, None)?;
                        mp.size = Some(DiskSize::from_bytes(bytes));
                        params.insert(k, mp.to_string());
                    }
                }
                GuestKind::Vm => {
                    let mut d: QemuDisk = v
                        .parse()
                        .map_err(|e: phx_core::propstr::PropError| PveError::param(&k, e.reason))?;
                    let Some((storage, rest)) = d.file.split_once(':') else {
                        continue;
                    };
                    let storage = storage.to_string();
                    if rest == "cloudinit" {
                        d.file = self.alloc(
                            node,
                            &storage,
                            vmid,
                            false,
                            4 * 1024 * 1024,
                            Some("cloudinit"),
                        )?;
                        d.media = Some("cdrom".into());
                        params.insert(k, d.to_string());
                    } else if let Ok(gib) = rest.parse::<f64>() {
                        let mut bytes = (gib * GIB as f64) as u64;
                        if let Some(src) = d.extra.remove("import-from") {
                            bytes = self.import_size(node, &src)?;
                        }
                        d.file = self.alloc(node, &storage, vmid, false, bytes, None)?;
                        d.size = Some(DiskSize::from_bytes(bytes));
                        params.insert(k, d.to_string());
                    }
                }
            }
        }
        Ok(())
    }

    fn import_size(&self, node: &str, src: &str) -> Result<u64, PveError> {
        if src.starts_with('/') {
            return Ok(2_361_393_152);
        }
        let (storage, name) = src.split_once(':').ok_or_else(|| {
            PveError::param("import-from", format!("unable to parse volume ID '{src}'"))
        })?;
        self.volumes
            .iter()
            .find(|v| {
                v.storage == storage
                    && v.name == name
                    && (v.node.is_none() || v.node.as_deref() == Some(node))
            })
            .map(|v| v.size)
            .ok_or_else(|| PveError::e500(format!("volume '{src}' does not exist")))
    }

    fn new_mac(&mut self) -> phx_core::types::MacAddr {
        self.next_mac = self.next_mac.wrapping_add(0x0107);
        let m = self.next_mac;
        format!(
            "BC:24:11:{:02X}:{:02X}:{:02X}",
            (m >> 16) & 0xff,
            (m >> 8) & 0xff,
            m & 0xff
        )
        .parse()
        .unwrap_or_else(|_| "BC:24:11:00:00:01".parse().expect("static MAC"))
    }

    /// Canonicalise, generate MACs, validate cross-key rules.
    fn canonical_params(
        &mut self,
        kind: GuestKind,
        params: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, PveError> {
        let mut out = BTreeMap::new();
        for (k, v) in params {
            let mut c = canonical(kind, k, v)?;
            if indexed(k).is_some_and(|(p, _)| p == "net") {
                match kind {
                    GuestKind::Lxc => {
                        if let Ok(mut n) = c.parse::<LxcNet>() {
                            if n.hwaddr.is_none() {
                                n.hwaddr = Some(self.new_mac());
                            }
                            if n.kind.is_none() {
                                n.kind = Some("veth".into());
                            }
                            c = n.to_string();
                        }
                    }
                    GuestKind::Vm => {
                        if let Ok(mut n) = c.parse::<QemuNet>() {
                            if n.macaddr.is_none() {
                                n.macaddr = Some(self.new_mac());
                            }
                            c = n.to_string();
                        }
                    }
                }
            }
            out.insert(k.clone(), c);
        }
        Ok(out)
    }

    fn check_free_id(&self, kind: GuestKind, id: u32) -> Result<(), PveError> {
        if let Some(g) = self.guests.get(&id) {
            let w = kind.proxmox_word();
            return Err(PveError::e500(format!(
                "unable to create {w} {id} - {} {id} already exists on node '{}'",
                g.word(),
                g.node
            )));
        }
        Ok(())
    }

    // ----- LXC/VM lifecycle ----------------------------------------------------------

    /// `POST /nodes/{node}/lxc`.
    pub fn lxc_create(
        &mut self,
        node: &str,
        id: u32,
        ostemplate: &str,
        params: &BTreeMap<String, String>,
    ) -> Result<String, PveError> {
        self.count(
            "lxc.create",
            true,
            format!(
                "{id} node={node} ostemplate={ostemplate} {}",
                fmt_params(params)
            ),
        );
        let fail = self.fault("lxc.create", &Self::lock_file(GuestKind::Lxc, id))?;
        self.node(node)?;
        self.check_free_id(GuestKind::Lxc, id)?;
        let (tstore, tname) = ostemplate.split_once(':').ok_or_else(|| {
            PveError::param(
                "ostemplate",
                format!("unable to parse volume ID '{ostemplate}'"),
            )
        })?;
        if !self.volumes.iter().any(|v| {
            v.storage == tstore
                && v.name == tname
                && (v.node.is_none() || v.node.as_deref() == Some(node))
        }) {
            return Err(PveError::e500(format!(
                "volume '{ostemplate}' does not exist"
            )));
        }
        let mut p: BTreeMap<String, String> = params
            .iter()
            .filter(|(k, _)| k.as_str() != "storage")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let storage = params
            .get("storage")
            .cloned()
            .unwrap_or_else(|| "local".into());
        p.entry("rootfs".into())
            .or_insert_with(|| format!("{storage}:4"));
        p.entry("memory".into()).or_insert_with(|| "512".into());
        p.entry("swap".into()).or_insert_with(|| "512".into());
        p.entry("unprivileged".into()).or_insert_with(|| "1".into());
        p.insert("arch".into(), "amd64".into());
        p.insert(
            "ostype".into(),
            if tname.contains("ubuntu") {
                "ubuntu".into()
            } else if tname.contains("alpine") {
                "alpine".into()
            } else {
                "debian".into()
            },
        );
        let mut p = self.canonical_params(GuestKind::Lxc, &p)?;
        self.allocate_disks(GuestKind::Lxc, node, id, &mut p)?;
        p.insert("lock".into(), "create".into());
        self.guests.insert(
            id,
            FakeGuest {
                id,
                kind: GuestKind::Lxc,
                node: node.into(),
                config: p,
                raw_lxc: Vec::new(),
                status: PowerState::Stopped,
                snapshots: Vec::new(),
                firewall: FwFile::default(),
                started_at: None,
            },
        );
        let log = vec![
            format!(
                "extracting archive '/var/lib/vz/template/cache/{}'",
                tname.rsplit('/').next().unwrap_or(tname)
            ),
            "Total bytes read: 536627200 (512MiB, 1.1GiB/s)".into(),
            "Detected container architecture: amd64".into(),
            "Creating SSH host key 'ssh_host_rsa_key' - this may take some time ...".into(),
        ];
        Ok(self.start_task(
            node,
            "vzcreate",
            &id.to_string(),
            Effect::Unlock { id, source: None },
            log,
            fail,
        ))
    }

    /// `POST /nodes/{node}/qemu`.
    pub fn vm_create(
        &mut self,
        node: &str,
        id: u32,
        params: &BTreeMap<String, String>,
    ) -> Result<String, PveError> {
        self.count(
            "vm.create",
            true,
            format!("{id} node={node} {}", fmt_params(params)),
        );
        let fail = self.fault("vm.create", &Self::lock_file(GuestKind::Vm, id))?;
        self.node(node)?;
        self.check_free_id(GuestKind::Vm, id)?;
        let mut p = self.canonical_params(GuestKind::Vm, params)?;
        self.allocate_disks(GuestKind::Vm, node, id, &mut p)?;
        p.entry("memory".into()).or_insert_with(|| "2048".into());
        p.insert(
            "smbios1".into(),
            format!("uuid=00000000-0000-4000-8000-{id:012}"),
        );
        p.insert(
            "vmgenid".into(),
            format!("00000000-0000-4000-9000-{id:012}"),
        );
        p.insert(
            "meta".into(),
            format!("creation-qemu=10.0.2,ctime={}", self.clock),
        );
        p.insert("lock".into(), "create".into());
        self.guests.insert(
            id,
            FakeGuest {
                id,
                kind: GuestKind::Vm,
                node: node.into(),
                config: p,
                raw_lxc: Vec::new(),
                status: PowerState::Stopped,
                snapshots: Vec::new(),
                firewall: FwFile::default(),
                started_at: None,
            },
        );
        Ok(self.start_task(
            node,
            "qmcreate",
            &id.to_string(),
            Effect::Unlock { id, source: None },
            Vec::new(),
            fail,
        ))
    }

    /// `POST /nodes/{node}/{lxc|qemu}/{source}/clone`.
    #[allow(clippy::too_many_arguments)]
    pub fn clone_guest(
        &mut self,
        kind: GuestKind,
        node: &str,
        source: u32,
        newid: u32,
        snapname: Option<&str>,
        name: Option<&str>,
        storage: Option<&str>,
        full: Option<bool>,
    ) -> Result<String, PveError> {
        let op = Self::opname(kind, "clone");
        self.count(
            &op,
            true,
            format!(
                "{source} -> {newid} node={node} snapname={} name={} storage={} full={}",
                snapname.unwrap_or("-"),
                name.unwrap_or("-"),
                storage.unwrap_or("-"),
                full.map(u8::from)
                    .map(|f| f.to_string())
                    .unwrap_or("-".into())
            ),
        );
        let fail = self.fault(&op, &Self::lock_file(kind, source))?;
        let src = self.guest(kind, node, source)?.clone();
        Self::check_unlocked(&src)?;
        self.check_free_id(kind, newid)?;
        let full = full.unwrap_or(!src.is_template());
        if !full && storage.is_some() {
            return Err(PveError::param(
                "storage",
                "parameter 'storage' not allowed for linked clones",
            ));
        }
        if !full && !src.is_template() {
            return Err(PveError::e500(
                "Linked clone feature is not supported for a non-template guest - use full clone",
            ));
        }
        let (mut cfg, raw) = match snapname {
            Some(s) => {
                let snap = src
                    .snapshots
                    .iter()
                    .find(|x| x.name == s)
                    .ok_or_else(|| PveError::e500(format!("snapshot '{s}' does not exist")))?;
                (snap.config.clone(), snap.raw_lxc.clone())
            }
            None => (src.config.clone(), src.raw_lxc.clone()),
        };
        if kind == GuestKind::Vm
            && src.status == PowerState::Running
            && snapname.is_none()
            && !src.is_template()
        {
            // allowed by Proxmox; nothing special to model
        }
        for k in ["lock", "template", "parent", "snaptime", "vmstate"] {
            cfg.remove(k);
        }
        // disks: copy onto the target (or the source's) storage
        let disk_keys: Vec<String> = cfg.keys().filter(|k| is_disk(kind, k)).cloned().collect();
        for k in disk_keys {
            let v = cfg[&k].clone();
            match kind {
                GuestKind::Lxc => {
                    let Ok(mut mp) = v.parse::<MountPoint>() else {
                        continue;
                    };
                    if mp.is_bind() {
                        continue;
                    }
                    let st = storage
                        .map(str::to_string)
                        .or_else(|| mp.storage().map(str::to_string))
                        .unwrap_or_default();
                    let size = mp.size.map(DiskSize::bytes).unwrap_or(4 * GIB);
                    mp.volume = self.alloc(node, &st, newid, true, size, None)?;
                    cfg.insert(k, mp.to_string());
                }
                GuestKind::Vm => {
                    let Ok(mut d) = v.parse::<QemuDisk>() else {
                        continue;
                    };
                    let st = storage
                        .map(str::to_string)
                        .or_else(|| d.storage().map(str::to_string))
                        .unwrap_or_default();
                    if d.is_cloudinit() {
                        d.file = self.alloc(
                            node,
                            &st,
                            newid,
                            false,
                            4 * 1024 * 1024,
                            Some("cloudinit"),
                        )?;
                    } else {
                        let size = d.size.map(DiskSize::bytes).unwrap_or(GIB);
                        d.file = self.alloc(node, &st, newid, false, size, None)?;
                    }
                    cfg.insert(k, d.to_string());
                }
            }
        }
        // new MACs, new name
        let net_keys: Vec<String> = cfg
            .keys()
            .filter(|k| indexed(k).is_some_and(|(p, _)| p == "net"))
            .cloned()
            .collect();
        for k in net_keys {
            let v = cfg[&k].clone();
            let mac = self.new_mac();
            let nv = match kind {
                GuestKind::Lxc => v.parse::<LxcNet>().map(|mut n| {
                    n.hwaddr = Some(mac);
                    n.to_string()
                }),
                GuestKind::Vm => v.parse::<QemuNet>().map(|mut n| {
                    n.macaddr = Some(mac);
                    n.to_string()
                }),
            };
            if let Ok(nv) = nv {
                cfg.insert(k, nv);
            }
        }
        let name_key = if kind == GuestKind::Lxc {
            "hostname"
        } else {
            "name"
        };
        match name {
            Some(n) => {
                cfg.insert(name_key.into(), canonical(kind, name_key, n)?);
            }
            None => {
                cfg.insert(name_key.into(), format!("Copy-of-{}", src.name()));
            }
        }
        cfg.insert(
            "lock".into(),
            if kind == GuestKind::Lxc {
                "create".into()
            } else {
                "clone".into()
            },
        );
        self.guests.insert(
            newid,
            FakeGuest {
                id: newid,
                kind,
                node: node.into(),
                config: cfg,
                raw_lxc: raw,
                status: PowerState::Stopped,
                snapshots: Vec::new(),
                firewall: src.firewall.clone(),
                started_at: None,
            },
        );
        let mut source_lock = None;
        if kind == GuestKind::Lxc {
            // an LXC clone holds `lock: disk` on its source for the whole task
            if let Some(s) = self.guests.get_mut(&source) {
                s.config.insert("lock".into(), "disk".into());
            }
            source_lock = Some(source);
        }
        let log = vec![format!(
            "create full clone of drive {} ({})",
            if kind == GuestKind::Lxc {
                "rootfs"
            } else {
                "scsi0"
            },
            src.config
                .get(if kind == GuestKind::Lxc {
                    "rootfs"
                } else {
                    "scsi0"
                })
                .cloned()
                .unwrap_or_default()
        )];
        Ok(self.start_task(
            node,
            &task_type(kind, "clone"),
            &source.to_string(),
            Effect::Unlock {
                id: newid,
                source: source_lock,
            },
            log,
            fail,
        ))
    }

    /// `PUT /nodes/{node}/{lxc|qemu}/{id}/config`: set and delete keys.
    pub fn update_config(
        &mut self,
        kind: GuestKind,
        node: &str,
        id: u32,
        set: &BTreeMap<String, String>,
        delete: &[String],
        digest_in: Option<&str>,
    ) -> Result<(), PveError> {
        let op = Self::opname(kind, "config.update");
        self.count(
            &op,
            true,
            format!(
                "{id} {}{}",
                fmt_params(set),
                if delete.is_empty() {
                    String::new()
                } else {
                    format!(" delete={}", delete.join(","))
                }
            ),
        );
        if let Some(msg) = self.fault(&op, &Self::lock_file(kind, id))? {
            return Err(PveError::e500(msg));
        }
        let g = self.guest(kind, node, id)?.clone();
        Self::check_unlocked(&g)?;
        if let Some(d) = digest_in
            && d != digest(&render_conf(&g))
        {
            return Err(PveError::e500(
                "detected modified configuration - file changed by other user? Try again.",
            ));
        }
        if kind == GuestKind::Lxc
            && set.contains_key("unprivileged")
            && set.get("unprivileged") != g.config.get("unprivileged")
        {
            return Err(PveError::e500(
                "unable to modify read-only option: 'unprivileged'",
            ));
        }
        let mut p = self.canonical_params(kind, set)?;
        // new disks on set allocate like on create; existing ones keep their volume
        let disk_keys: Vec<String> = p.keys().filter(|k| is_disk(kind, k)).cloned().collect();
        for k in &disk_keys {
            if let Some(old) = g.config.get(k) {
                let same_vol = match kind {
                    GuestKind::Lxc => {
                        old.parse::<MountPoint>().ok().map(|m| m.volume)
                            == p[k].parse::<MountPoint>().ok().map(|m| m.volume)
                    }
                    GuestKind::Vm => {
                        old.parse::<QemuDisk>().ok().map(|m| m.file)
                            == p[k].parse::<QemuDisk>().ok().map(|m| m.file)
                    }
                };
                if !same_vol && kind == GuestKind::Lxc {
                    // replacing a mount point's volume detaches the old one as unusedN
                    let n = (0..)
                        .find(|n| !g.config.contains_key(&format!("unused{n}")))
                        .unwrap_or(0);
                    if let Ok(m) = old.parse::<MountPoint>()
                        && !m.is_bind()
                    {
                        p.insert(format!("unused{n}"), m.volume);
                    }
                }
            }
        }
        self.allocate_disks(kind, node, id, &mut p)?;
        for k in delete {
            if !super::schema::known(kind, k) {
                return Err(PveError::param(
                    "delete",
                    format!("invalid configuration ID '{k}'"),
                ));
            }
        }
        let gm = self.guest_mut(kind, node, id)?;
        for k in delete {
            gm.config.remove(k);
        }
        gm.config.extend(p);
        Ok(())
    }

    /// Replace the raw `lxc.*` lines (an edit of the config file on the node).
    pub fn set_raw_lxc(
        &mut self,
        node: &str,
        id: u32,
        lines: &[(String, String)],
    ) -> Result<(), PveError> {
        self.count(
            "lxc.raw.set",
            true,
            format!(
                "{id} {}",
                lines
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join(" | ")
            ),
        );
        if let Some(msg) = self.fault("lxc.raw.set", &Self::lock_file(GuestKind::Lxc, id))? {
            return Err(PveError::e500(msg));
        }
        for (k, _) in lines {
            if !k.starts_with("lxc.") {
                return Err(PveError::e500(format!(
                    "invalid raw config key '{k}' (must start with lxc.)"
                )));
            }
        }
        let g = self.guest_mut(GuestKind::Lxc, node, id)?;
        Self::check_unlocked(g)?;
        g.raw_lxc = lines.to_vec();
        Ok(())
    }

    /// `PUT .../resize`.
    pub fn resize(
        &mut self,
        kind: GuestKind,
        node: &str,
        id: u32,
        disk: &str,
        size: &str,
    ) -> Result<String, PveError> {
        let op = Self::opname(kind, "resize");
        self.count(&op, true, format!("{id} {disk} {size}"));
        let fail = self.fault(&op, &Self::lock_file(kind, id))?;
        let g = self.guest(kind, node, id)?.clone();
        Self::check_unlocked(&g)?;
        let cur = g
            .config
            .get(disk)
            .ok_or_else(|| PveError::param("disk", format!("unable to find disk '{disk}'")))?
            .clone();
        let (abs, rel) = match size.strip_prefix('+') {
            Some(r) => (None, Some(r)),
            None => (Some(size), None),
        };
        let parse = |s: &str| {
            s.parse::<DiskSize>().map_err(|_| {
                PveError::param("size", format!("value '{size}' does not match format"))
            })
        };
        let (vol, old) = match kind {
            GuestKind::Lxc => {
                let m: MountPoint = cur
                    .parse()
                    .map_err(|_| PveError::e500(format!("unable to parse {disk}")))?;
                if m.is_bind() {
                    return Err(PveError::e500(format!(
                        "unable to resize bind mount {disk}"
                    )));
                }
                (m.volume.clone(), m.size.map(DiskSize::bytes).unwrap_or(0))
            }
            GuestKind::Vm => {
                let d: QemuDisk = cur
                    .parse()
                    .map_err(|_| PveError::e500(format!("unable to parse {disk}")))?;
                (d.file.clone(), d.size.map(DiskSize::bytes).unwrap_or(0))
            }
        };
        let new = match (abs, rel) {
            (Some(a), _) => parse(a)?.bytes(),
            (_, Some(r)) => old + parse(r)?.bytes(),
            _ => old,
        };
        if new < old {
            return Err(PveError::e500("unable to shrink disk size"));
        }
        if g.is_template() {
            return Err(PveError::e500("you can't resize a disk of a template"));
        }
        let mut log = Vec::new();
        if new == old {
            log.push("disk is already at specified size".into());
        } else {
            if let Some(v) = self.volumes.iter_mut().find(|v| v.volid() == vol) {
                v.size = new;
            }
            let gm = self.guest_mut(kind, node, id)?;
            let nv = match kind {
                GuestKind::Lxc => cur.parse::<MountPoint>().map(|mut m| {
                    m.size = Some(DiskSize::from_bytes(new));
                    m.to_string()
                }),
                GuestKind::Vm => cur.parse::<QemuDisk>().map(|mut d| {
                    d.size = Some(DiskSize::from_bytes(new));
                    d.to_string()
                }),
            };
            if let Ok(nv) = nv {
                gm.config.insert(disk.to_string(), nv);
            }
            log.push(format!(
                "  Size of logical volume pve/{vol} changed from {} to {}.",
                DiskSize::from_bytes(old),
                DiskSize::from_bytes(new)
            ));
        }
        Ok(self.start_task(node, "resize", &id.to_string(), Effect::None, log, fail))
    }

    /// `POST .../status/{start|stop|shutdown|reboot}`.
    pub fn power(
        &mut self,
        kind: GuestKind,
        node: &str,
        id: u32,
        action: &str,
    ) -> Result<String, PveError> {
        let op = Self::opname(kind, action);
        self.count(&op, true, id.to_string());
        let fail = self.fault(&op, &Self::lock_file(kind, id))?;
        let tkind = format!(
            "{}{action}",
            if kind == GuestKind::Lxc { "vz" } else { "qm" }
        );
        let Ok(g) = self.guest(kind, node, id).cloned() else {
            if action == "start" {
                // a start of a missing guest fails inside the task
                let msg = format!(
                    "Configuration file '{}' does not exist",
                    conf_path(node, kind, id)
                );
                return Ok(self.start_task(
                    node,
                    &tkind,
                    &id.to_string(),
                    Effect::Fail {
                        message: msg,
                        unlock: None,
                        remove: None,
                    },
                    Vec::new(),
                    None,
                ));
            }
            return Err(self
                .guest(kind, node, id)
                .err()
                .unwrap_or_else(|| PveError::e500("missing")));
        };
        Self::check_unlocked(&g)?;
        let running = g.status == PowerState::Running;
        let effect = match (kind, action) {
            (_, "start") if g.is_template() => {
                return Err(PveError::e500(if kind == GuestKind::Lxc {
                    "you can't start a CT if it's a template"
                } else {
                    "you can't start a vm if it's a template"
                }));
            }
            (GuestKind::Lxc, "start") if running => {
                return Err(PveError::e500(format!("CT {id} already running")));
            }
            (GuestKind::Lxc, "stop" | "shutdown" | "reboot") if !running => {
                return Err(PveError::e500(format!("CT {id} not running")));
            }
            (GuestKind::Vm, "reboot") if !running => {
                return Err(PveError::e500(format!("VM {id} not running")));
            }
            (_, "start") => Effect::Power {
                id,
                to: PowerState::Running,
            },
            (_, "stop" | "shutdown") => Effect::Power {
                id,
                to: PowerState::Stopped,
            },
            // a reboot ends where it began: running
            (_, "reboot") => Effect::None,
            _ => {
                return Err(PveError::e500(format!(
                    "Method 'POST /nodes/{node}/{}/{id}/status/{action}' not implemented",
                    if kind == GuestKind::Lxc {
                        "lxc"
                    } else {
                        "qemu"
                    }
                )));
            }
        };
        Ok(self.start_task(node, &tkind, &id.to_string(), effect, Vec::new(), fail))
    }

    /// `DELETE /nodes/{node}/{lxc|qemu}/{id}`.
    pub fn destroy(
        &mut self,
        kind: GuestKind,
        node: &str,
        id: u32,
        purge: bool,
    ) -> Result<String, PveError> {
        let op = Self::opname(kind, "destroy");
        self.count(&op, true, format!("{id} purge={}", u8::from(purge)));
        let fail = self.fault(&op, &Self::lock_file(kind, id))?;
        let g = self.guest(kind, node, id)?.clone();
        Self::check_unlocked(&g)?;
        if g.config.get("protection").is_some_and(|v| v == "1") {
            return Err(PveError::e500(format!(
                "can't remove {} {id} - protection mode enabled",
                g.word()
            )));
        }
        if g.status == PowerState::Running {
            return Err(PveError::e500(match kind {
                GuestKind::Lxc => format!("unable to destroy CT {id} - container is running"),
                GuestKind::Vm => format!("VM {id} is running - destroy failed"),
            }));
        }
        if let Some(gm) = self.guests.get_mut(&id) {
            gm.config.insert("lock".into(), "destroyed".into());
        }
        Ok(self.start_task(
            node,
            &task_type(kind, "destroy"),
            &id.to_string(),
            Effect::Destroy { id },
            Vec::new(),
            fail,
        ))
    }

    /// `POST .../snapshot`.
    pub fn snapshot(
        &mut self,
        kind: GuestKind,
        node: &str,
        id: u32,
        name: &str,
        description: &str,
    ) -> Result<String, PveError> {
        let op = Self::opname(kind, "snapshot");
        self.count(&op, true, format!("{id} {name}"));
        let fail = self.fault(&op, &Self::lock_file(kind, id))?;
        if name == "current" {
            return Err(PveError::e500(
                "unable to use snapshot name 'current' (reserved name)",
            ));
        }
        let g = self.guest(kind, node, id)?.clone();
        Self::check_unlocked(&g)?;
        if g.is_template() {
            return Err(PveError::e500(format!(
                "snapshot feature is not available for templates ({} {id})",
                g.word()
            )));
        }
        if g.snapshots.iter().any(|s| s.name == name) {
            return Err(PveError::e500(format!(
                "snapshot name '{name}' already used"
            )));
        }
        for (k, v) in &g.config {
            if !is_disk(kind, k) {
                continue;
            }
            let storage = match kind {
                GuestKind::Lxc => v
                    .parse::<MountPoint>()
                    .ok()
                    .filter(|m| !m.is_bind())
                    .and_then(|m| m.storage().map(str::to_string)),
                GuestKind::Vm => v
                    .parse::<QemuDisk>()
                    .ok()
                    .filter(|d| !d.is_cloudinit() && d.media.as_deref() != Some("cdrom"))
                    .and_then(|d| d.storage().map(str::to_string)),
            };
            if let Some(s) = storage.and_then(|s| self.storages.get(&s))
                && !s.snapshots()
            {
                return Err(PveError::e500("snapshot feature is not available"));
            }
        }
        let clock = self.clock;
        let gm = self.guest_mut(kind, node, id)?;
        let mut config = gm.config.clone();
        config.remove("parent");
        gm.snapshots.push(FakeSnapshot {
            name: name.into(),
            parent: gm.config.get("parent").cloned(),
            description: description.into(),
            snaptime: clock + 1,
            config,
            raw_lxc: gm.raw_lxc.clone(),
            running: gm.status == PowerState::Running,
        });
        gm.config.insert("parent".into(), name.into());
        gm.config.insert("lock".into(), "snapshot".into());
        Ok(self.start_task(
            node,
            &task_type(kind, "snapshot"),
            &id.to_string(),
            Effect::SnapshotDone { id },
            Vec::new(),
            fail,
        ))
    }

    /// `DELETE .../snapshot/{name}`.
    pub fn delete_snapshot(
        &mut self,
        kind: GuestKind,
        node: &str,
        id: u32,
        name: &str,
    ) -> Result<String, PveError> {
        let op = Self::opname(kind, "delsnapshot");
        self.count(&op, true, format!("{id} {name}"));
        let fail = self.fault(&op, &Self::lock_file(kind, id))?;
        let g = self.guest(kind, node, id)?.clone();
        Self::check_unlocked(&g)?;
        let pos = g
            .snapshots
            .iter()
            .position(|s| s.name == name)
            .ok_or_else(|| PveError::e500(format!("snapshot '{name}' does not exist")))?;
        let gm = self.guest_mut(kind, node, id)?;
        let removed = gm.snapshots.remove(pos);
        for s in gm.snapshots.iter_mut() {
            if s.parent.as_deref() == Some(name) {
                s.parent = removed.parent.clone();
            }
        }
        if gm.config.get("parent").map(String::as_str) == Some(name) {
            match &removed.parent {
                Some(p) => gm.config.insert("parent".into(), p.clone()),
                None => gm.config.remove("parent"),
            };
        }
        Ok(self.start_task(
            node,
            &task_type(kind, "delsnapshot"),
            &id.to_string(),
            Effect::None,
            Vec::new(),
            fail,
        ))
    }

    /// `POST .../snapshot/{name}/rollback`.
    pub fn rollback(
        &mut self,
        kind: GuestKind,
        node: &str,
        id: u32,
        name: &str,
    ) -> Result<String, PveError> {
        let op = Self::opname(kind, "rollback");
        self.count(&op, true, format!("{id} {name}"));
        let fail = self.fault(&op, &Self::lock_file(kind, id))?;
        let g = self.guest(kind, node, id)?.clone();
        Self::check_unlocked(&g)?;
        let snap = g
            .snapshots
            .iter()
            .find(|s| s.name == name)
            .cloned()
            .ok_or_else(|| PveError::e500(format!("snapshot '{name}' does not exist")))?;
        let gm = self.guest_mut(kind, node, id)?;
        let mut cfg = snap.config.clone();
        cfg.insert("parent".into(), name.into());
        gm.config = cfg;
        gm.raw_lxc = snap.raw_lxc.clone();
        // rolling back stops a container (a VM with saved RAM state would resume)
        gm.status = PowerState::Stopped;
        Ok(self.start_task(
            node,
            &task_type(kind, "rollback"),
            &id.to_string(),
            Effect::None,
            Vec::new(),
            fail,
        ))
    }

    /// `POST .../template`. LXC answers `null` (its task's UPID is discarded); QEMU returns a UPID.
    pub fn template(&mut self, kind: GuestKind, node: &str, id: u32) -> Result<String, PveError> {
        let op = Self::opname(kind, "template");
        self.count(&op, true, id.to_string());
        let fail = self.fault(&op, &Self::lock_file(kind, id))?;
        let g = self.guest(kind, node, id)?.clone();
        Self::check_unlocked(&g)?;
        if g.is_template() {
            return Err(PveError::e500(format!(
                "{} {id} is already a template",
                g.word()
            )));
        }
        if g.status == PowerState::Running {
            return Err(PveError::e500(match kind {
                GuestKind::Lxc => {
                    "you can't convert a CT to template if the CT is running".to_string()
                }
                GuestKind::Vm => "you can't convert a VM to template if VM is running".to_string(),
            }));
        }
        if kind == GuestKind::Lxc && !g.snapshots.is_empty() {
            return Err(PveError::e500(
                "unable to create template, because CT contains snapshots",
            ));
        }
        let gm = self.guest_mut(kind, node, id)?;
        gm.config.insert("template".into(), "1".into());
        Ok(self.start_task(
            node,
            &task_type(kind, "template"),
            &id.to_string(),
            Effect::None,
            Vec::new(),
            fail,
        ))
    }

    /// Guest firewall: options and rules.
    pub fn set_guest_firewall(
        &mut self,
        kind: GuestKind,
        node: &str,
        id: u32,
        options: Option<&FirewallOptions>,
        rules: Option<&[FirewallRule]>,
    ) -> Result<(), PveError> {
        let op = Self::opname(
            kind,
            if options.is_some() {
                "firewall.options"
            } else {
                "firewall.rules"
            },
        );
        let detail = match (options, rules) {
            (Some(o), _) => format!(
                "{id} enable={}",
                o.enable
                    .map(u8::from)
                    .map(|v| v.to_string())
                    .unwrap_or("-".into())
            ),
            (_, Some(r)) => format!(
                "{id} {}",
                r.iter()
                    .map(FirewallRule::summary)
                    .collect::<Vec<_>>()
                    .join(" | ")
            ),
            _ => id.to_string(),
        };
        self.count(&op, true, detail);
        if let Some(msg) = self.fault(&op, "/etc/pve/firewall")? {
            return Err(PveError::e500(msg));
        }
        let g = self.guest_mut(kind, node, id)?;
        if let Some(o) = options {
            g.firewall.options = o.clone();
        }
        if let Some(r) = rules {
            g.firewall.rules = r.to_vec();
        }
        Ok(())
    }

    // ----- node / storage / access ---------------------------------------------------

    /// Download a catalogue template (`pveam download`, `POST /nodes/{n}/aplinfo`).
    pub fn download_template(
        &mut self,
        node: &str,
        storage: &str,
        template: &str,
    ) -> Result<String, PveError> {
        self.count(
            "aplinfo.download",
            true,
            format!("{storage} {template} node={node}"),
        );
        let fail = self.fault(
            "aplinfo.download",
            &format!("/var/lock/pve-manager/pve-storage-{storage}"),
        )?;
        let s = self
            .storages
            .get(storage)
            .ok_or_else(|| PveError::e500(format!("storage '{storage}' does not exist")))?
            .clone();
        if !s.content.iter().any(|c| c == "vztmpl") {
            return Err(PveError::e500(format!(
                "storage '{storage}' does not support templates"
            )));
        }
        if !self.catalogue.iter().any(|(_, t)| t == template) {
            return Err(PveError::param(
                "template",
                format!("no such template '{template}'"),
            ));
        }
        let volume = FakeVolume {
            node: (!s.shared).then(|| node.to_string()),
            storage: storage.into(),
            name: format!("vztmpl/{template}"),
            content: "vztmpl".into(),
            format: "tzst".into(),
            size: 141_557_760,
            vmid: None,
        };
        Ok(self.start_task(node, "download", template, Effect::Download { volume }, vec![format!("starting template download from: http://download.proxmox.com/images/system/{template}")], fail))
    }

    /// `POST /nodes/{n}/storage/{s}/download-url`.
    pub fn download_url(
        &mut self,
        node: &str,
        storage: &str,
        content: &str,
        filename: &str,
        url: &str,
    ) -> Result<String, PveError> {
        self.count(
            "storage.download-url",
            true,
            format!("{storage} {content} {filename} node={node}"),
        );
        let fail = self.fault(
            "storage.download-url",
            &format!("/var/lock/pve-manager/pve-storage-{storage}"),
        )?;
        let s = self.storage_for(node, storage, content)?.clone();
        if !url.starts_with("https://") && !url.starts_with("http://") {
            return Err(PveError::param("url", "invalid URL"));
        }
        let volume = FakeVolume {
            node: (!s.shared).then(|| node.to_string()),
            storage: storage.into(),
            name: format!("{content}/{filename}"),
            content: content.into(),
            format: if filename.ends_with(".img") || filename.ends_with(".qcow2") {
                "qcow2".into()
            } else {
                "raw".into()
            },
            size: 2_361_393_152,
            vmid: None,
        };
        Ok(self.start_task(
            node,
            "download",
            filename,
            Effect::Download { volume },
            vec![format!(
                "downloading {url} to /var/lib/vz/{content}/{filename}"
            )],
            fail,
        ))
    }

    /// `POST /storage`.
    pub fn add_storage(&mut self, s: FakeStorage) -> Result<(), PveError> {
        self.count(
            "storage.add",
            true,
            format!("{} type={} content={}", s.id, s.kind, s.content.join(",")),
        );
        if let Some(msg) = self.fault("storage.add", "/etc/pve/storage.cfg")? {
            return Err(PveError::e500(msg));
        }
        if self.storages.contains_key(&s.id) {
            return Err(PveError::e500(format!(
                "create storage failed: storage ID '{}' already defined",
                s.id
            )));
        }
        if !matches!(
            s.kind.as_str(),
            "dir" | "zfspool" | "nfs" | "lvmthin" | "lvm" | "cifs" | "pbs" | "rbd"
        ) {
            return Err(PveError::param(
                "type",
                format!(
                    "value '{}' does not have a value in the enumeration",
                    s.kind
                ),
            ));
        }
        self.storages.insert(s.id.clone(), s);
        Ok(())
    }

    /// `PUT /storage/{id}` content.
    pub fn set_storage_content(&mut self, id: &str, content: &[String]) -> Result<(), PveError> {
        self.count(
            "storage.set",
            true,
            format!("{id} content={}", content.join(",")),
        );
        let s = self
            .storages
            .get_mut(id)
            .ok_or_else(|| PveError::e500(format!("storage '{id}' does not exist")))?;
        s.content = content.to_vec();
        Ok(())
    }

    /// `DELETE /storage/{id}`.
    pub fn remove_storage(&mut self, id: &str) -> Result<(), PveError> {
        self.count("storage.remove", true, id.to_string());
        self.storages
            .remove(id)
            .map(|_| ())
            .ok_or_else(|| PveError::e500(format!("storage '{id}' does not exist")))
    }

    /// Add a user.
    pub fn add_user(&mut self, userid: &str, comment: &str) -> Result<(), PveError> {
        self.count("access.user.add", true, userid.to_string());
        if !userid.contains('@') {
            return Err(PveError::param(
                "userid",
                format!("value '{userid}' does not look like a valid user name"),
            ));
        }
        if self.users.contains_key(userid) {
            return Err(PveError::e500(format!(
                "create user failed: user '{userid}' already exists"
            )));
        }
        self.users.insert(userid.into(), comment.into());
        Ok(())
    }

    /// Grant a role.
    pub fn set_acl(&mut self, path: &str, userid: &str, role: &str) -> Result<(), PveError> {
        self.count("access.acl.set", true, format!("{path} {userid} {role}"));
        if !self.users.contains_key(userid) {
            return Err(PveError::e500(format!("user '{userid}' does not exist")));
        }
        let e = (path.to_string(), userid.to_string(), role.to_string());
        if !self.acl.contains(&e) {
            self.acl.push(e);
        }
        Ok(())
    }

    /// Cluster firewall options/rules.
    pub fn set_cluster_firewall(
        &mut self,
        options: Option<&FirewallOptions>,
        rules: Option<&[FirewallRule]>,
    ) -> Result<(), PveError> {
        self.count(
            if options.is_some() {
                "cluster.firewall.options"
            } else {
                "cluster.firewall.rules"
            },
            true,
            String::new(),
        );
        if let Some(o) = options {
            self.cluster_firewall.options = o.clone();
        }
        if let Some(r) = rules {
            self.cluster_firewall.rules = r.to_vec();
        }
        Ok(())
    }

    /// Node DNS.
    pub fn set_dns(
        &mut self,
        node: &str,
        search: &str,
        servers: &[String],
    ) -> Result<(), PveError> {
        self.count(
            "node.dns.set",
            true,
            format!("{node} search={search} servers={}", servers.join(",")),
        );
        let n = self
            .nodes
            .get_mut(node)
            .ok_or_else(|| PveError::param("node", format!("no such cluster node '{node}'")))?;
        n.dns_search = Some(search.into());
        n.dns_servers = servers.to_vec();
        Ok(())
    }

    /// Node timezone.
    pub fn set_timezone(&mut self, node: &str, tz: &str) -> Result<(), PveError> {
        self.count("node.time.set", true, format!("{node} {tz}"));
        if !tz.contains('/') && tz != "UTC" {
            return Err(PveError::param(
                "timezone",
                format!("invalid time zone '{tz}'"),
            ));
        }
        let n = self
            .nodes
            .get_mut(node)
            .ok_or_else(|| PveError::param("node", format!("no such cluster node '{node}'")))?;
        n.timezone = tz.into();
        Ok(())
    }
}

/// `key=value` pairs on one line, sorted.
pub(crate) fn fmt_params(p: &BTreeMap<String, String>) -> String {
    p.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The config file text of a guest's current section.
pub fn render_conf(g: &FakeGuest) -> String {
    let mut s = String::new();
    if let Some(d) = g.config.get("description") {
        for l in d.lines() {
            s.push_str(&format!("#{}\n", escape_description(l)));
        }
    }
    for (k, v) in &g.config {
        if k == "description" {
            continue;
        }
        s.push_str(&format!("{k}: {v}\n"));
    }
    for (k, v) in &g.raw_lxc {
        s.push_str(&format!("{k}: {v}\n"));
    }
    s
}

/// Escape `%`, `:` and control characters like Proxmox's `encode_text`.
pub fn escape_description(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c == '%' || c == ':' || c.is_control() {
            for b in c.to_string().bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// SHA-1 hex of a config file.
pub fn digest(text: &str) -> String {
    let mut h = Sha1::new();
    h.update(text.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A guest task's type: `vz<op>` for a container, `qm<op>` for a VM (`vzclone`, `qmsnapshot`).
fn task_type(kind: GuestKind, op: &str) -> String {
    match kind {
        GuestKind::Lxc => format!("vz{op}"),
        GuestKind::Vm => format!("qm{op}"),
    }
}
