//! [`WriteTrap`]: a mock backend that answers reads from a real one and fails every call that
//! could change anything, recording it. Wrap a backend in it to prove that code (a dry run, a
//! plan, a status) never writes: the proof is at the trait boundary, so it holds for every
//! backend, not only for what a fake happens to count.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use phx_core::Result;
use phx_core::backend::{
    ActiveTask, AgentFile, Capabilities, CloneRequest, ConfigUpdate, DestroyOptions, ExecOutput,
    ExecRequest, FirewallOptions, FirewallState, GuestConfig, GuestManager, GuestSummary,
    Hypervisor, LxcCreate, LxcManager, NodeInfo, SnapshotInfo, StorageInfo, StorageSpec, TaskDone,
    Version, VmCreate, VmManager, VolumeInfo,
};
use phx_core::error::Error;
use phx_core::types::{
    DiskSize, FirewallRule, GuestId, GuestKind, NodeName, SnapshotName, StorageId,
};

type Log = Arc<Mutex<Vec<String>>>;

fn trip(log: &Log, call: String) -> Error {
    if let Ok(mut l) = log.lock() {
        l.push(call.clone());
    }
    Error::Refused {
        message: format!("{call} was called, but this code must not change anything"),
    }
}

/// Reads go to the wrapped backend; writes (anything that creates, changes, starts, stops,
/// destroys, or runs a command) fail with [`Error::Refused`] and are recorded.
#[derive(Debug)]
pub struct WriteTrap {
    inner: Arc<dyn Hypervisor>,
    log: Log,
    lxc: TrapLxc,
    vm: TrapVm,
}

#[derive(Debug)]
struct TrapLxc {
    inner: Arc<dyn Hypervisor>,
    log: Log,
}

#[derive(Debug)]
struct TrapVm {
    inner: Arc<dyn Hypervisor>,
    log: Log,
}

impl WriteTrap {
    /// Wrap `inner`.
    pub fn new(inner: Arc<dyn Hypervisor>) -> Self {
        let log: Log = Arc::default();
        Self {
            lxc: TrapLxc {
                inner: inner.clone(),
                log: log.clone(),
            },
            vm: TrapVm {
                inner: inner.clone(),
                log: log.clone(),
            },
            inner,
            log,
        }
    }

    /// Every write attempted so far (`lxc.start 101`, `add_storage tank`, ...).
    pub fn writes(&self) -> Vec<String> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl Hypervisor for WriteTrap {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    fn lxc(&self) -> &dyn LxcManager {
        &self.lxc
    }
    fn vm(&self) -> &dyn VmManager {
        &self.vm
    }
    async fn version(&self) -> Result<Version> {
        self.inner.version().await
    }
    async fn nodes(&self) -> Result<Vec<NodeInfo>> {
        self.inner.nodes().await
    }
    async fn default_node(&self) -> Result<NodeName> {
        self.inner.default_node().await
    }
    async fn guests(&self) -> Result<Vec<GuestSummary>> {
        self.inner.guests().await
    }
    async fn active_tasks(&self, node: &NodeName, kind: Option<&str>) -> Result<Vec<ActiveTask>> {
        self.inner.active_tasks(node, kind).await
    }
    async fn storages(&self, node: &NodeName) -> Result<Vec<StorageInfo>> {
        self.inner.storages(node).await
    }
    async fn storage_content(
        &self,
        node: &NodeName,
        storage: &StorageId,
        content: Option<&str>,
    ) -> Result<Vec<VolumeInfo>> {
        self.inner.storage_content(node, storage, content).await
    }
    async fn add_storage(&self, spec: &StorageSpec) -> Result<()> {
        Err(trip(&self.log, format!("add_storage {}", spec.id)))
    }
    async fn set_storage_content(&self, storage: &StorageId, _: &[String]) -> Result<()> {
        Err(trip(&self.log, format!("set_storage_content {storage}")))
    }
    async fn remove_storage(&self, storage: &StorageId) -> Result<()> {
        Err(trip(&self.log, format!("remove_storage {storage}")))
    }
    async fn available_templates(&self, node: &NodeName) -> Result<Vec<String>> {
        self.inner.available_templates(node).await
    }
    async fn download_template(
        &self,
        _: &NodeName,
        storage: &StorageId,
        template: &str,
    ) -> Result<TaskDone> {
        Err(trip(
            &self.log,
            format!("download_template {storage} {template}"),
        ))
    }
    async fn download_url(
        &self,
        _: &NodeName,
        storage: &StorageId,
        _: &str,
        filename: &str,
        _: &str,
    ) -> Result<TaskDone> {
        Err(trip(
            &self.log,
            format!("download_url {storage} {filename}"),
        ))
    }
    async fn users(&self) -> Result<Vec<String>> {
        self.inner.users().await
    }
    async fn add_user(&self, userid: &str, _: &str) -> Result<()> {
        Err(trip(&self.log, format!("add_user {userid}")))
    }
    async fn acl(&self) -> Result<Vec<(String, String, String)>> {
        self.inner.acl().await
    }
    async fn set_acl(&self, path: &str, userid: &str, role: &str) -> Result<()> {
        Err(trip(&self.log, format!("set_acl {path} {userid} {role}")))
    }
    async fn cluster_firewall(&self) -> Result<FirewallState> {
        self.inner.cluster_firewall().await
    }
    async fn set_cluster_firewall_options(&self, _: &FirewallOptions) -> Result<()> {
        Err(trip(&self.log, "set_cluster_firewall_options".into()))
    }
    async fn set_cluster_firewall_rules(&self, _: &[FirewallRule]) -> Result<()> {
        Err(trip(&self.log, "set_cluster_firewall_rules".into()))
    }
    async fn bridges(&self, node: &NodeName) -> Result<Vec<String>> {
        self.inner.bridges(node).await
    }
    async fn node_dns(&self, node: &NodeName) -> Result<(Option<String>, Vec<String>)> {
        self.inner.node_dns(node).await
    }
    async fn set_node_dns(&self, node: &NodeName, _: &str, _: &[String]) -> Result<()> {
        Err(trip(&self.log, format!("set_node_dns {node}")))
    }
    async fn node_timezone(&self, node: &NodeName) -> Result<String> {
        self.inner.node_timezone(node).await
    }
    async fn set_node_timezone(&self, node: &NodeName, tz: &str) -> Result<()> {
        Err(trip(&self.log, format!("set_node_timezone {node} {tz}")))
    }
    async fn host_exec(&self, node: &NodeName, req: &ExecRequest) -> Result<ExecOutput> {
        Err(trip(
            &self.log,
            format!("host_exec {node} {}", req.argv.join(" ")),
        ))
    }
}

/// The [`GuestManager`] half, the same for both kinds.
macro_rules! trap_guest_manager {
    ($ty:ident, $kind:expr, $get:ident) => {
        #[async_trait]
        impl GuestManager for $ty {
            fn kind(&self) -> GuestKind {
                $kind
            }
            async fn status(&self, node: &NodeName, id: GuestId) -> Result<GuestSummary> {
                self.inner.$get().status(node, id).await
            }
            async fn config(&self, node: &NodeName, id: GuestId) -> Result<GuestConfig> {
                self.inner.$get().config(node, id).await
            }
            async fn update_config(
                &self,
                _: &NodeName,
                id: GuestId,
                change: &ConfigUpdate,
            ) -> Result<()> {
                let keys: Vec<&str> = change.set.keys().map(String::as_str).collect();
                Err(trip(
                    &self.log,
                    format!("{}.update_config {id} {}", $kind.noun(), keys.join(",")),
                ))
            }
            async fn resize(
                &self,
                _: &NodeName,
                id: GuestId,
                disk: &str,
                _: DiskSize,
            ) -> Result<TaskDone> {
                Err(trip(
                    &self.log,
                    format!("{}.resize {id} {disk}", $kind.noun()),
                ))
            }
            async fn start(&self, _: &NodeName, id: GuestId) -> Result<TaskDone> {
                Err(trip(&self.log, format!("{}.start {id}", $kind.noun())))
            }
            async fn stop(&self, _: &NodeName, id: GuestId) -> Result<TaskDone> {
                Err(trip(&self.log, format!("{}.stop {id}", $kind.noun())))
            }
            async fn shutdown(&self, _: &NodeName, id: GuestId, _: Duration) -> Result<TaskDone> {
                Err(trip(&self.log, format!("{}.shutdown {id}", $kind.noun())))
            }
            async fn reboot(&self, _: &NodeName, id: GuestId) -> Result<TaskDone> {
                Err(trip(&self.log, format!("{}.reboot {id}", $kind.noun())))
            }
            async fn destroy(
                &self,
                _: &NodeName,
                id: GuestId,
                _: &DestroyOptions,
            ) -> Result<TaskDone> {
                Err(trip(&self.log, format!("{}.destroy {id}", $kind.noun())))
            }
            async fn snapshots(&self, node: &NodeName, id: GuestId) -> Result<Vec<SnapshotInfo>> {
                self.inner.$get().snapshots(node, id).await
            }
            async fn snapshot_create(
                &self,
                _: &NodeName,
                id: GuestId,
                name: &SnapshotName,
                _: &str,
            ) -> Result<TaskDone> {
                Err(trip(
                    &self.log,
                    format!("{}.snapshot_create {id} {name}", $kind.noun()),
                ))
            }
            async fn snapshot_delete(
                &self,
                _: &NodeName,
                id: GuestId,
                name: &SnapshotName,
            ) -> Result<TaskDone> {
                Err(trip(
                    &self.log,
                    format!("{}.snapshot_delete {id} {name}", $kind.noun()),
                ))
            }
            async fn snapshot_rollback(
                &self,
                _: &NodeName,
                id: GuestId,
                name: &SnapshotName,
            ) -> Result<TaskDone> {
                Err(trip(
                    &self.log,
                    format!("{}.snapshot_rollback {id} {name}", $kind.noun()),
                ))
            }
            async fn template(&self, _: &NodeName, id: GuestId) -> Result<()> {
                Err(trip(&self.log, format!("{}.template {id}", $kind.noun())))
            }
            async fn firewall(&self, node: &NodeName, id: GuestId) -> Result<FirewallState> {
                self.inner.$get().firewall(node, id).await
            }
            async fn set_firewall_options(
                &self,
                _: &NodeName,
                id: GuestId,
                _: &FirewallOptions,
            ) -> Result<()> {
                Err(trip(
                    &self.log,
                    format!("{}.set_firewall_options {id}", $kind.noun()),
                ))
            }
            async fn set_firewall_rules(
                &self,
                _: &NodeName,
                id: GuestId,
                _: &[FirewallRule],
            ) -> Result<()> {
                Err(trip(
                    &self.log,
                    format!("{}.set_firewall_rules {id}", $kind.noun()),
                ))
            }
        }
    };
}

trap_guest_manager!(TrapLxc, GuestKind::Lxc, lxc);
trap_guest_manager!(TrapVm, GuestKind::Vm, vm);

#[async_trait]
impl LxcManager for TrapLxc {
    async fn create(&self, _: &NodeName, req: &LxcCreate) -> Result<TaskDone> {
        Err(trip(&self.log, format!("lxc.create {}", req.id)))
    }
    async fn clone_guest(&self, _: &NodeName, req: &CloneRequest) -> Result<TaskDone> {
        Err(trip(
            &self.log,
            format!("lxc.clone {} -> {}", req.source, req.target),
        ))
    }
    async fn set_raw_config(
        &self,
        _: &NodeName,
        id: GuestId,
        _: &[(String, String)],
    ) -> Result<()> {
        Err(trip(&self.log, format!("lxc.set_raw_config {id}")))
    }
    async fn exec(&self, _: &NodeName, id: GuestId, req: &ExecRequest) -> Result<ExecOutput> {
        Err(trip(
            &self.log,
            format!("lxc.exec {id} {}", req.argv.join(" ")),
        ))
    }
    async fn push(&self, _: &NodeName, id: GuestId, _: &[u8], dest: &str, _: u32) -> Result<()> {
        Err(trip(&self.log, format!("lxc.push {id} {dest}")))
    }
}

#[async_trait]
impl VmManager for TrapVm {
    async fn create(&self, _: &NodeName, req: &VmCreate) -> Result<TaskDone> {
        Err(trip(&self.log, format!("vm.create {}", req.id)))
    }
    async fn clone_guest(&self, _: &NodeName, req: &CloneRequest) -> Result<TaskDone> {
        Err(trip(
            &self.log,
            format!("vm.clone {} -> {}", req.source, req.target),
        ))
    }
    async fn cloudinit_update(&self, _: &NodeName, id: GuestId) -> Result<()> {
        Err(trip(&self.log, format!("vm.cloudinit_update {id}")))
    }
    async fn agent_ping(&self, node: &NodeName, id: GuestId) -> Result<()> {
        self.inner.vm().agent_ping(node, id).await
    }
    async fn agent_exec(&self, _: &NodeName, id: GuestId, req: &ExecRequest) -> Result<ExecOutput> {
        Err(trip(
            &self.log,
            format!("vm.agent_exec {id} {}", req.argv.join(" ")),
        ))
    }
    async fn agent_file_write(
        &self,
        _: &NodeName,
        id: GuestId,
        path: &str,
        _: &[u8],
    ) -> Result<()> {
        Err(trip(&self.log, format!("vm.agent_file_write {id} {path}")))
    }
    async fn agent_file_read(&self, node: &NodeName, id: GuestId, path: &str) -> Result<AgentFile> {
        self.inner.vm().agent_file_read(node, id, path).await
    }
}
