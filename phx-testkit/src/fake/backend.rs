//! [`FakeBackend`]: the phx-core traits over a shared [`FakeCluster`].
//!
//! Tasks are started under the cluster lock, the injected latency is slept outside it (so other
//! guests proceed and see `lock:` values meanwhile), then the task completes. `exec`/`push`
//! run host processes in a per-guest scratch directory: not isolation, enough for test scripts.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use phx_core::backend::*;
use phx_core::error::{Error, Result};
use phx_core::types::{
    DiskSize, FirewallRule, GuestId, GuestKind, NodeName, SnapshotName, StorageId,
};

use super::PveError;
use super::cluster::{FakeCluster, TaskOutcome, now_ms};
use super::guest;
use super::state::FakeStorage;

struct Inner {
    cluster: Mutex<FakeCluster>,
    persist: Option<PathBuf>,
    scratch: PathBuf,
    /// The scratch dir was made for this backend alone: removed with it.
    owns_scratch: bool,
    default_node: Mutex<Option<String>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if self.owns_scratch {
            let _ = std::fs::remove_dir_all(&self.scratch);
        }
    }
}

/// The traits implemented by an in-memory cluster. Clones share the cluster.
#[derive(Clone)]
pub struct FakeBackend {
    inner: Arc<Inner>,
    lxc: FakeKind,
    vm: FakeKind,
}

/// The per-kind manager (`lxc()` / `vm()`).
#[derive(Clone)]
pub struct FakeKind {
    inner: Arc<Inner>,
    kind: GuestKind,
}

impl fmt::Debug for FakeBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeBackend")
            .field("persist", &self.inner.persist)
            .finish_non_exhaustive()
    }
}
impl fmt::Debug for FakeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FakeKind({:?})", self.kind)
    }
}

/// A scratch dir of its own for every in-memory backend (tests run many side by side).
fn scratch_default() -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("phx-fake-{}-{n}", std::process::id()))
}

impl FakeBackend {
    /// A backend over `cluster`, in memory only.
    pub fn new(cluster: FakeCluster) -> Self {
        Self::build_owned(cluster, None, scratch_default(), true)
    }

    fn build(cluster: FakeCluster, persist: Option<PathBuf>, scratch: PathBuf) -> Self {
        Self::build_owned(cluster, persist, scratch, false)
    }

    fn build_owned(
        cluster: FakeCluster,
        persist: Option<PathBuf>,
        scratch: PathBuf,
        owns_scratch: bool,
    ) -> Self {
        let inner = Arc::new(Inner {
            cluster: Mutex::new(cluster),
            persist,
            scratch,
            owns_scratch,
            default_node: Mutex::new(None),
        });
        Self {
            lxc: FakeKind {
                inner: inner.clone(),
                kind: GuestKind::Lxc,
            },
            vm: FakeKind {
                inner: inner.clone(),
                kind: GuestKind::Vm,
            },
            inner,
        }
    }

    /// A backend persisted in `path` (JSON, written atomically after every change): the sim
    /// backend. A missing file starts a fresh single-node cluster. Guest scratch directories
    /// live next to it.
    pub fn open(path: &Path) -> Result<Self> {
        let cluster = super::load_state(path).map_err(state_error)?;
        let scratch = super::scratch_of(path);
        let b = Self::build(cluster, Some(path.to_path_buf()), scratch);
        b.save()?;
        Ok(b)
    }

    /// Use a specific scratch directory for guest files.
    pub fn with_scratch(cluster: FakeCluster, scratch: PathBuf) -> Self {
        Self::build(cluster, None, scratch)
    }

    /// The node new guests go to (default: the first node).
    pub fn set_default_node(&self, node: &str) {
        if let Ok(mut d) = self.inner.default_node.lock() {
            *d = Some(node.to_string());
        }
    }

    fn lock(&self) -> MutexGuard<'_, FakeCluster> {
        lock(&self.inner)
    }

    /// Run `f` on the cluster (test setup, fault injection, inspection).
    pub fn with<T>(&self, f: impl FnOnce(&mut FakeCluster) -> T) -> T {
        let mut c = self.lock();
        let r = f(&mut c);
        let _ = persist(&self.inner, &c);
        r
    }

    /// A copy of the cluster state.
    pub fn snapshot(&self) -> FakeCluster {
        self.lock().clone()
    }

    /// Write the state file now (no-op without persistence).
    pub fn save(&self) -> Result<()> {
        let c = self.lock();
        persist(&self.inner, &c)
    }

    /// Where guest `id`'s files live.
    pub fn guest_root(&self, id: GuestId) -> PathBuf {
        guest::guest_root(&self.inner.scratch, id.get())
    }
}

fn lock(inner: &Inner) -> MutexGuard<'_, FakeCluster> {
    let mut c = inner
        .cluster
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // a task outlives the client that started it (a phx killed mid-run): it ends on time,
    // as on a node, and frees its locks
    c.complete_due();
    c
}

fn persist(inner: &Inner, c: &FakeCluster) -> Result<()> {
    let Some(p) = &inner.persist else {
        return Ok(());
    };
    super::save_state(p, c).map_err(state_error)
}

fn state_error(e: super::StateError) -> Error {
    match e {
        super::StateError::Io { context, source } => Error::io(context, source),
        super::StateError::Corrupt { path, source } => Error::backend(
            "sim",
            format!(
                "{} is not a phx sim state file ({source}); remove it or run `phx sim reset`",
                path.display()
            ),
        ),
    }
}

fn pve(e: PveError) -> Error {
    e.into_core()
}

/// Start a task under the lock, wait out the latency, complete it.
async fn run_task(
    inner: &Inner,
    start: impl FnOnce(&mut FakeCluster) -> std::result::Result<String, PveError>,
) -> Result<TaskDone> {
    let (upid, latency) = {
        let mut c = lock(inner);
        let upid = match start(&mut c) {
            Ok(u) => u,
            Err(e) => {
                // a refused call still counts (and consumed its fault)
                persist(inner, &c)?;
                return Err(pve(e));
            }
        };
        if let Some(status) = c.lost_response.take() {
            // the task runs, but the client never learns its UPID
            c.complete(&upid);
            persist(inner, &c)?;
            return Err(PveError {
                status,
                message: "Broken pipe".into(),
                errors: BTreeMap::new(),
            }
            .into_core());
        }
        persist(inner, &c)?;
        // the task's own duration: the latency, or longer for an injected slow task
        let due = c.task(&upid).map_or(0, |t| t.due_ms);
        (upid, Duration::from_millis(due.saturating_sub(now_ms())))
    };
    if !latency.is_zero() {
        let _running = phx_core::backend::inflight::task(upid.clone());
        tokio::time::sleep(latency).await;
    }
    let outcome = {
        let mut c = lock(inner);
        let o = c.complete(&upid);
        persist(inner, &c)?;
        o
    };
    match outcome {
        TaskOutcome::Ok { warnings } => Ok(TaskDone {
            upid: Some(upid),
            warnings,
        }),
        TaskOutcome::Failed {
            exitstatus,
            log_tail,
        } => Err(Error::TaskFailed {
            upid,
            exit_status: exitstatus,
            log_tail,
        }),
        TaskOutcome::Running => Err(Error::backend(
            "fake",
            format!("task {upid} did not finish"),
        )),
    }
}

fn sync<T>(
    inner: &Inner,
    f: impl FnOnce(&mut FakeCluster) -> std::result::Result<T, PveError>,
) -> Result<T> {
    let mut c = lock(inner);
    let r = f(&mut c);
    persist(inner, &c)?;
    let r = r.map_err(pve)?;
    if let Some(status) = c.lost_response.take() {
        return Err(PveError {
            status,
            message: "Broken pipe".into(),
            errors: BTreeMap::new(),
        }
        .into_core());
    }
    Ok(r)
}

fn read<T>(
    inner: &Inner,
    op: &str,
    detail: String,
    f: impl FnOnce(&FakeCluster) -> std::result::Result<T, PveError>,
) -> Result<T> {
    let mut c = lock(inner);
    c.count(op, false, detail);
    f(&c).map_err(pve)
}

fn storage_info(s: &FakeStorage, used: u64) -> Result<StorageInfo> {
    Ok(StorageInfo {
        id: StorageId::new(s.id.clone()).map_err(|e| Error::backend("fake", e.to_string()))?,
        kind: s.kind.clone(),
        content: s.content.clone(),
        active: !s.disabled,
        enabled: !s.disabled,
        shared: s.shared,
        total: s.total,
        used,
        avail: s.total.saturating_sub(used),
    })
}

/// Run a command to its end (killed if the future is dropped), registered as in flight. It
/// gets its own process group, so a Ctrl-C at the terminal stops phx, not the work it waits for.
async fn output_tracked(
    mut cmd: tokio::process::Command,
    req: &ExecRequest,
) -> std::io::Result<ExecOutput> {
    cmd.kill_on_drop(true)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn()?;
    let _running = phx_core::backend::inflight::command(req.argv.join(" "), child.id());
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let (out, status) = tokio::join!(
        phx_core::backend::live::read_output(stdout, stderr, req.live.as_ref()),
        child.wait()
    );
    let (stdout, stderr) = out?;
    Ok(ExecOutput {
        exit_code: status?.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    })
}

/// Run `argv` as a host process "inside" the guest: absolute paths point into its scratch root.
async fn run_in(root: &Path, req: &ExecRequest) -> Result<ExecOutput> {
    guest::ensure_root(root).map_err(|e| Error::io(format!("creating {}", root.display()), e))?;
    let Some(cmd) = guest::guest_command(root, &req.argv, &req.env) else {
        return Err(Error::InvalidRequest {
            message: "missing command".into(),
            params: BTreeMap::new(),
        });
    };
    let cmd = tokio::process::Command::from(cmd);
    let out = match tokio::time::timeout(req.timeout, output_tracked(cmd, req)).await {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => {
            // like lxc-attach: exec of a missing program exits 127 (or 126 if not executable)
            return Ok(ExecOutput {
                exit_code: guest::exec_failure_code(&e),
                stdout: String::new(),
                stderr: format!("lxc-attach: failed to exec '{}': {e}\n", req.argv[0]),
            });
        }
        Err(_) => {
            return Err(Error::Timeout {
                operation: format!("exec {}", req.argv.join(" ")),
                after: req.timeout,
            });
        }
    };
    Ok(out)
}

fn write_into(root: &Path, dest: &str, content: &[u8], mode: u32) -> Result<()> {
    guest::write_into(root, dest, content, mode).map_err(|m| Error::backend("fake", m))
}

impl FakeKind {
    fn root(&self, id: GuestId) -> PathBuf {
        guest::guest_root(&self.inner.scratch, id.get())
    }
    fn name(&self) -> &'static str {
        if self.kind == GuestKind::Lxc {
            "lxc"
        } else {
            "vm"
        }
    }
}

#[async_trait]
impl GuestManager for FakeKind {
    fn kind(&self) -> GuestKind {
        self.kind
    }

    async fn status(&self, node: &NodeName, id: GuestId) -> Result<GuestSummary> {
        let k = self.kind;
        read(
            &self.inner,
            &format!("{}.status", self.name()),
            id.to_string(),
            |c| {
                let g = c.guest(k, node.as_str(), id.get())?;
                Ok(GuestSummary {
                    id,
                    kind: k,
                    node: node.clone(),
                    name: Some(g.name()),
                    status: g.status,
                    template: g.is_template(),
                    lock: g.lock().map(str::to_string),
                })
            },
        )
    }

    async fn config(&self, node: &NodeName, id: GuestId) -> Result<GuestConfig> {
        let k = self.kind;
        read(
            &self.inner,
            &format!("{}.config", self.name()),
            id.to_string(),
            |c| {
                let (entries, raw, digest) = c.config_of(k, node.as_str(), id.get())?;
                Ok(GuestConfig {
                    entries,
                    raw_lxc: raw,
                    digest: Some(digest),
                })
            },
        )
    }

    async fn update_config(
        &self,
        node: &NodeName,
        id: GuestId,
        change: &ConfigUpdate,
    ) -> Result<()> {
        let k = self.kind;
        sync(&self.inner, |c| {
            c.update_config(
                k,
                node.as_str(),
                id.get(),
                &change.set,
                &change.delete,
                change.digest.as_deref(),
            )
        })
    }

    async fn resize(
        &self,
        node: &NodeName,
        id: GuestId,
        disk: &str,
        size: DiskSize,
    ) -> Result<TaskDone> {
        let k = self.kind;
        run_task(&self.inner, |c| {
            c.resize(k, node.as_str(), id.get(), disk, &size.to_string())
        })
        .await
    }

    async fn start(&self, node: &NodeName, id: GuestId) -> Result<TaskDone> {
        let k = self.kind;
        run_task(&self.inner, |c| {
            c.power(k, node.as_str(), id.get(), "start")
        })
        .await
    }

    async fn stop(&self, node: &NodeName, id: GuestId) -> Result<TaskDone> {
        let k = self.kind;
        run_task(&self.inner, |c| c.power(k, node.as_str(), id.get(), "stop")).await
    }

    async fn shutdown(&self, node: &NodeName, id: GuestId, _timeout: Duration) -> Result<TaskDone> {
        let k = self.kind;
        run_task(&self.inner, |c| {
            c.power(k, node.as_str(), id.get(), "shutdown")
        })
        .await
    }

    async fn reboot(&self, node: &NodeName, id: GuestId) -> Result<TaskDone> {
        let k = self.kind;
        run_task(&self.inner, |c| {
            c.power(k, node.as_str(), id.get(), "reboot")
        })
        .await
    }

    async fn destroy(
        &self,
        node: &NodeName,
        id: GuestId,
        opts: &DestroyOptions,
    ) -> Result<TaskDone> {
        let k = self.kind;
        let r = run_task(&self.inner, |c| {
            c.destroy(k, node.as_str(), id.get(), opts.purge)
        })
        .await;
        if r.is_ok() {
            let _ = std::fs::remove_dir_all(self.root(id));
        }
        r
    }

    async fn snapshots(&self, node: &NodeName, id: GuestId) -> Result<Vec<SnapshotInfo>> {
        let k = self.kind;
        read(
            &self.inner,
            &format!("{}.snapshots", self.name()),
            id.to_string(),
            |c| {
                let g = c.guest(k, node.as_str(), id.get())?;
                Ok(g.snapshots
                    .iter()
                    .map(|s| SnapshotInfo {
                        name: s.name.clone(),
                        parent: s.parent.clone(),
                        description: s.description.clone(),
                        snaptime: Some(s.snaptime),
                    })
                    .collect())
            },
        )
    }

    async fn snapshot_create(
        &self,
        node: &NodeName,
        id: GuestId,
        name: &SnapshotName,
        description: &str,
    ) -> Result<TaskDone> {
        let k = self.kind;
        run_task(&self.inner, |c| {
            c.snapshot(k, node.as_str(), id.get(), name.as_str(), description)
        })
        .await
    }

    async fn snapshot_delete(
        &self,
        node: &NodeName,
        id: GuestId,
        name: &SnapshotName,
    ) -> Result<TaskDone> {
        let k = self.kind;
        run_task(&self.inner, |c| {
            c.delete_snapshot(k, node.as_str(), id.get(), name.as_str())
        })
        .await
    }

    async fn snapshot_rollback(
        &self,
        node: &NodeName,
        id: GuestId,
        name: &SnapshotName,
    ) -> Result<TaskDone> {
        let k = self.kind;
        run_task(&self.inner, |c| {
            c.rollback(k, node.as_str(), id.get(), name.as_str())
        })
        .await
    }

    async fn template(&self, node: &NodeName, id: GuestId) -> Result<()> {
        let k = self.kind;
        run_task(&self.inner, |c| c.template(k, node.as_str(), id.get()))
            .await
            .map(|_| ())
    }

    async fn firewall(&self, node: &NodeName, id: GuestId) -> Result<FirewallState> {
        let k = self.kind;
        read(
            &self.inner,
            &format!("{}.firewall", self.name()),
            id.to_string(),
            |c| {
                let g = c.guest(k, node.as_str(), id.get())?;
                Ok(FirewallState {
                    options: g.firewall.options.clone(),
                    rules: g.firewall.rules.clone(),
                })
            },
        )
    }

    async fn set_firewall_options(
        &self,
        node: &NodeName,
        id: GuestId,
        opts: &FirewallOptions,
    ) -> Result<()> {
        let k = self.kind;
        sync(&self.inner, |c| {
            c.set_guest_firewall(k, node.as_str(), id.get(), Some(opts), None)
        })
    }

    async fn set_firewall_rules(
        &self,
        node: &NodeName,
        id: GuestId,
        rules: &[FirewallRule],
    ) -> Result<()> {
        let k = self.kind;
        sync(&self.inner, |c| {
            c.set_guest_firewall(k, node.as_str(), id.get(), None, Some(rules))
        })
    }
}

#[async_trait]
impl LxcManager for FakeKind {
    async fn create(&self, node: &NodeName, req: &LxcCreate) -> Result<TaskDone> {
        run_task(&self.inner, |c| {
            c.lxc_create(node.as_str(), req.id.get(), &req.ostemplate, &req.params)
        })
        .await
    }

    async fn clone_guest(&self, node: &NodeName, req: &CloneRequest) -> Result<TaskDone> {
        run_task(&self.inner, |c| {
            c.clone_guest(
                GuestKind::Lxc,
                node.as_str(),
                req.source.get(),
                req.target.get(),
                req.snapname.as_deref(),
                req.name.as_deref(),
                req.storage.as_ref().map(StorageId::as_str),
                Some(req.full),
            )
        })
        .await
    }

    async fn set_raw_config(
        &self,
        node: &NodeName,
        id: GuestId,
        lines: &[(String, String)],
    ) -> Result<()> {
        sync(&self.inner, |c| {
            c.set_raw_lxc(node.as_str(), id.get(), lines)
        })
    }

    async fn exec(&self, node: &NodeName, id: GuestId, req: &ExecRequest) -> Result<ExecOutput> {
        read(
            &self.inner,
            "lxc.exec",
            format!("{id} {}", req.argv.join(" ")),
            |c| {
                let g = c.guest(GuestKind::Lxc, node.as_str(), id.get())?;
                if g.status != PowerState::Running {
                    return Err(PveError::e500(format!("container '{id}' not running!")));
                }
                Ok(())
            },
        )?;
        run_in(&self.root(id), req).await
    }

    async fn push(
        &self,
        node: &NodeName,
        id: GuestId,
        content: &[u8],
        dest: &str,
        mode: u32,
    ) -> Result<()> {
        sync(&self.inner, |c| {
            c.count(
                "lxc.push",
                true,
                format!("{id} {dest} {}B mode={mode:o}", content.len()),
            );
            let g = c.guest(GuestKind::Lxc, node.as_str(), id.get())?;
            if g.status != PowerState::Running {
                return Err(PveError::e500("can only push files to a running CT"));
            }
            Ok(())
        })?;
        write_into(&self.root(id), dest, content, mode)
    }
}

impl FakeKind {
    fn agent_ready(
        &self,
        c: &FakeCluster,
        node: &NodeName,
        id: GuestId,
    ) -> std::result::Result<(), PveError> {
        c.agent_ready(node.as_str(), id.get()).map(|_| ())
    }
}

#[async_trait]
impl VmManager for FakeKind {
    async fn create(&self, node: &NodeName, req: &VmCreate) -> Result<TaskDone> {
        run_task(&self.inner, |c| {
            c.vm_create(node.as_str(), req.id.get(), &req.params)
        })
        .await
    }

    async fn clone_guest(&self, node: &NodeName, req: &CloneRequest) -> Result<TaskDone> {
        run_task(&self.inner, |c| {
            c.clone_guest(
                GuestKind::Vm,
                node.as_str(),
                req.source.get(),
                req.target.get(),
                req.snapname.as_deref(),
                req.name.as_deref(),
                req.storage.as_ref().map(StorageId::as_str),
                Some(req.full),
            )
        })
        .await
    }

    async fn cloudinit_update(&self, node: &NodeName, id: GuestId) -> Result<()> {
        sync(&self.inner, |c| {
            c.count("vm.cloudinit.update", true, id.to_string());
            c.guest(GuestKind::Vm, node.as_str(), id.get()).map(|_| ())
        })
    }

    async fn agent_ping(&self, node: &NodeName, id: GuestId) -> Result<()> {
        read(&self.inner, "vm.agent.ping", id.to_string(), |c| {
            self.agent_ready(c, node, id)
        })
    }

    async fn agent_exec(
        &self,
        node: &NodeName,
        id: GuestId,
        req: &ExecRequest,
    ) -> Result<ExecOutput> {
        read(
            &self.inner,
            "vm.agent.exec",
            format!("{id} {}", req.argv.join(" ")),
            |c| self.agent_ready(c, node, id),
        )?;
        run_in(&self.root(id), req).await
    }

    async fn agent_file_write(
        &self,
        node: &NodeName,
        id: GuestId,
        path: &str,
        content: &[u8],
    ) -> Result<()> {
        sync(&self.inner, |c| {
            c.count(
                "vm.agent.file-write",
                true,
                format!("{id} {path} {}B", content.len()),
            );
            self.agent_ready(c, node, id)
        })?;
        write_into(&self.root(id), path, content, 0o644)
    }

    async fn agent_file_read(&self, node: &NodeName, id: GuestId, path: &str) -> Result<AgentFile> {
        read(
            &self.inner,
            "vm.agent.file-read",
            format!("{id} {path}"),
            |c| self.agent_ready(c, node, id),
        )?;
        let (content, truncated) =
            guest::read_from(&self.root(id), path).map_err(|m| pve(PveError::e500(m)))?;
        Ok(AgentFile { content, truncated })
    }
}

#[async_trait]
impl Hypervisor for FakeBackend {
    fn name(&self) -> &'static str {
        "fake"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            lxc_exec: true,
            vm_agent: true,
            host_exec: true,
            raw_lxc_config: true,
            multi_node: true,
        }
    }

    fn lxc(&self) -> &dyn LxcManager {
        &self.lxc
    }

    fn vm(&self) -> &dyn VmManager {
        &self.vm
    }

    async fn version(&self) -> Result<Version> {
        read(&self.inner, "version", String::new(), |c| {
            Ok(Version {
                version: c.version.clone(),
                release: c
                    .version
                    .rsplit_once('.')
                    .map(|(a, _)| a.to_string())
                    .unwrap_or_default(),
            })
        })
    }

    async fn nodes(&self) -> Result<Vec<NodeInfo>> {
        read(&self.inner, "nodes", String::new(), |c| {
            Ok(c.nodes
                .values()
                .filter_map(|n| {
                    Some(NodeInfo {
                        name: NodeName::new(n.name.clone()).ok()?,
                        status: n.status.clone(),
                        maxcpu: Some(n.maxcpu),
                        maxmem: Some(n.maxmem),
                    })
                })
                .collect())
        })
    }

    async fn default_node(&self) -> Result<NodeName> {
        let chosen = self.inner.default_node.lock().ok().and_then(|d| d.clone());
        let c = self.lock();
        let n = chosen
            .or_else(|| c.nodes.keys().next().cloned())
            .ok_or_else(|| Error::backend("fake", "the cluster has no nodes"))?;
        NodeName::new(n).map_err(|e| Error::backend("fake", e.to_string()))
    }

    async fn guests(&self) -> Result<Vec<GuestSummary>> {
        read(&self.inner, "cluster.resources", String::new(), |c| {
            Ok(c.resources())
        })
    }

    async fn active_tasks(&self, node: &NodeName, kind: Option<&str>) -> Result<Vec<ActiveTask>> {
        read(&self.inner, "tasks", node.to_string(), |c| {
            Ok(c.tasks
                .iter()
                .rev()
                .filter(|t| t.node == node.as_str() && t.exitstatus.is_none())
                .filter(|t| kind.is_none_or(|k| t.kind == k))
                .map(|t| ActiveTask {
                    upid: t.upid.clone(),
                    kind: t.kind.clone(),
                    id: t.id.clone(),
                })
                .collect())
        })
    }

    async fn storages(&self, node: &NodeName) -> Result<Vec<StorageInfo>> {
        let list = read(&self.inner, "storage.status", node.to_string(), |c| {
            c.storage_status(node.as_str())
        })?;
        list.iter()
            .map(|(s, used)| storage_info(s, *used))
            .collect()
    }

    async fn storage_content(
        &self,
        node: &NodeName,
        storage: &StorageId,
        content: Option<&str>,
    ) -> Result<Vec<VolumeInfo>> {
        let vols = read(
            &self.inner,
            "storage.content",
            format!("{storage} {}", content.unwrap_or("")),
            |c| c.content(node.as_str(), storage.as_str(), content),
        )?;
        Ok(vols
            .iter()
            .map(|v| VolumeInfo {
                volid: v.volid(),
                content: v.content.clone(),
                format: v.format.clone(),
                size: v.size,
                vmid: v.vmid.and_then(|i| GuestId::new(u64::from(i)).ok()),
            })
            .collect())
    }

    async fn add_storage(&self, spec: &StorageSpec) -> Result<()> {
        let s = FakeStorage {
            id: spec.id.to_string(),
            kind: spec.kind.clone(),
            content: spec.content.clone(),
            shared: spec.params.get("shared").is_some_and(|v| v == "1") || spec.kind == "nfs",
            disabled: false,
            nodes: spec
                .params
                .get("nodes")
                .map(|n| n.split(',').map(str::to_string).collect()),
            total: 1024 * 1024 * 1024 * 1024,
            params: spec.params.clone(),
        };
        sync(&self.inner, |c| c.add_storage(s))
    }

    async fn set_storage_content(&self, storage: &StorageId, content: &[String]) -> Result<()> {
        sync(&self.inner, |c| {
            c.set_storage_content(storage.as_str(), content)
        })
    }

    async fn remove_storage(&self, storage: &StorageId) -> Result<()> {
        sync(&self.inner, |c| c.remove_storage(storage.as_str()))
    }

    async fn available_templates(&self, _node: &NodeName) -> Result<Vec<String>> {
        read(&self.inner, "aplinfo", String::new(), |c| {
            Ok(c.catalogue.iter().map(|(_, t)| t.clone()).collect())
        })
    }

    async fn download_template(
        &self,
        node: &NodeName,
        storage: &StorageId,
        template: &str,
    ) -> Result<TaskDone> {
        run_task(&self.inner, |c| {
            c.download_template(node.as_str(), storage.as_str(), template)
        })
        .await
    }

    async fn download_url(
        &self,
        node: &NodeName,
        storage: &StorageId,
        content: &str,
        filename: &str,
        url: &str,
    ) -> Result<TaskDone> {
        run_task(&self.inner, |c| {
            c.download_url(node.as_str(), storage.as_str(), content, filename, url)
        })
        .await
    }

    async fn users(&self) -> Result<Vec<String>> {
        read(&self.inner, "access.users", String::new(), |c| {
            Ok(c.users.keys().cloned().collect())
        })
    }

    async fn add_user(&self, userid: &str, comment: &str) -> Result<()> {
        sync(&self.inner, |c| c.add_user(userid, comment))
    }

    async fn acl(&self) -> Result<Vec<(String, String, String)>> {
        read(&self.inner, "access.acl", String::new(), |c| {
            Ok(c.acl.clone())
        })
    }

    async fn set_acl(&self, path: &str, userid: &str, role: &str) -> Result<()> {
        sync(&self.inner, |c| c.set_acl(path, userid, role))
    }

    async fn cluster_firewall(&self) -> Result<FirewallState> {
        read(&self.inner, "cluster.firewall", String::new(), |c| {
            Ok(FirewallState {
                options: c.cluster_firewall.options.clone(),
                rules: c.cluster_firewall.rules.clone(),
            })
        })
    }

    async fn set_cluster_firewall_options(&self, opts: &FirewallOptions) -> Result<()> {
        sync(&self.inner, |c| c.set_cluster_firewall(Some(opts), None))
    }

    async fn set_cluster_firewall_rules(&self, rules: &[FirewallRule]) -> Result<()> {
        sync(&self.inner, |c| c.set_cluster_firewall(None, Some(rules)))
    }

    async fn bridges(&self, node: &NodeName) -> Result<Vec<String>> {
        read(&self.inner, "node.network", node.to_string(), |c| {
            c.nodes
                .get(node.as_str())
                .map(|n| n.bridges.clone())
                .ok_or_else(|| PveError::param("node", format!("no such cluster node '{node}'")))
        })
    }

    async fn node_dns(&self, node: &NodeName) -> Result<(Option<String>, Vec<String>)> {
        read(&self.inner, "node.dns", node.to_string(), |c| {
            let n = c
                .nodes
                .get(node.as_str())
                .ok_or_else(|| PveError::param("node", format!("no such cluster node '{node}'")))?;
            Ok((n.dns_search.clone(), n.dns_servers.clone()))
        })
    }

    async fn set_node_dns(
        &self,
        node: &NodeName,
        search: &str,
        nameservers: &[String],
    ) -> Result<()> {
        sync(&self.inner, |c| {
            c.set_dns(node.as_str(), search, nameservers)
        })
    }

    async fn node_timezone(&self, node: &NodeName) -> Result<String> {
        read(&self.inner, "node.time", node.to_string(), |c| {
            let n = c
                .nodes
                .get(node.as_str())
                .ok_or_else(|| PveError::param("node", format!("no such cluster node '{node}'")))?;
            Ok(n.timezone.clone())
        })
    }

    async fn set_node_timezone(&self, node: &NodeName, tz: &str) -> Result<()> {
        sync(&self.inner, |c| c.set_timezone(node.as_str(), tz))
    }

    async fn host_exec(&self, node: &NodeName, req: &ExecRequest) -> Result<ExecOutput> {
        read(
            &self.inner,
            "node.exec",
            format!("{node} {}", req.argv.join(" ")),
            |c| {
                c.nodes.get(node.as_str()).map(|_| ()).ok_or_else(|| {
                    PveError::param("node", format!("no such cluster node '{node}'"))
                })
            },
        )?;
        let Some((prog, args)) = req.argv.split_first() else {
            return Err(Error::InvalidRequest {
                message: "missing command".into(),
                params: BTreeMap::new(),
            });
        };
        let mut cmd = tokio::process::Command::new(prog);
        // host scripts of the simulated cluster find the guests' files here
        cmd.args(args)
            .env("PHX_SIM_GUESTS", self.inner.scratch.join("guests"));
        for (k, v) in &req.env {
            cmd.env(k, v);
        }
        let out = match tokio::time::timeout(req.timeout, output_tracked(cmd, req)).await {
            Ok(Ok(o)) => o,
            Ok(Err(e)) => return Err(Error::io(format!("running {prog} on node {node}"), e)),
            Err(_) => {
                return Err(Error::Timeout {
                    operation: format!("{} on node {node}", req.argv.join(" ")),
                    after: req.timeout,
                });
            }
        };
        Ok(out)
    }
}
