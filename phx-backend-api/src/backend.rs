//! [`ApiBackend`]: the phx-core traits over the Proxmox VE HTTP API.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use phx_backend_pct::params::{self, RuleWrite};
use phx_backend_pct::{PctBackend, PctOptions, SshRunner};
use phx_core::backend::*;
use phx_core::error::{Error, Result};
use phx_core::types::{
    DiskSize, FirewallRule, GuestId, GuestKind, NodeName, SnapshotName, StorageId,
};
use reqwest::Method;
use serde_json::Value;
use tokio::sync::OnceCell;

use crate::client::Client;
use crate::encode::{Params, segment};
use crate::error::{ApiError, BACKEND};
use crate::map::{self, AgentExecStatus, ParseError};
use crate::options::{ApiOptions, PollPolicy, SshOptions, Timeouts};
use crate::upid::Upid;

struct Inner {
    client: Client,
    timeouts: Timeouts,
    poll: PollPolicy,
    grace: Duration,
    node: Option<String>,
    default_node: OnceCell<NodeName>,
    ssh: Option<SshOptions>,
    /// One pct backend per node, over ssh to that node.
    ssh_nodes: std::sync::Mutex<BTreeMap<String, Arc<PctBackend>>>,
}

/// The phx-core traits over the Proxmox VE HTTP API of one node or a whole cluster.
///
/// Guests are found through `/cluster/resources`, and every guest call goes to the node the
/// guest lives on (a guest that moved since the caller looked is looked up again). Tasks are
/// waited for by polling their status. Containers have no exec or file push in the API: with
/// [`SshOptions`] the backend runs `pct exec`/`pct push` (and raw `lxc.*` edits and host
/// commands) on the guest's node over ssh through phx-backend-pct; without, those operations
/// are [`Error::Unsupported`] and [`Capabilities`] says so. VMs use the guest agent.
#[derive(Clone)]
pub struct ApiBackend {
    inner: Arc<Inner>,
    lxc: Manager,
    vm: Manager,
}

/// The per-kind manager (`lxc()` / `vm()`).
#[derive(Clone)]
pub struct Manager {
    inner: Arc<Inner>,
    kind: GuestKind,
}

impl fmt::Debug for ApiBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiBackend")
            .field("client", &self.inner.client)
            .field("ssh", &self.inner.ssh.as_ref().map(|s| &s.target))
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "api::Manager({:?})", self.kind)
    }
}

fn api_kind(kind: GuestKind) -> &'static str {
    match kind {
        GuestKind::Lxc => "lxc",
        GuestKind::Vm => "qemu",
    }
}

fn unsupported(operation: &'static str) -> Error {
    Error::Unsupported {
        operation,
        backend: BACKEND,
        hint: Some(
            "the Proxmox API cannot run commands in containers or edit their raw lxc.* lines; \
             pass --ssh root@<node> (or set PHX_SSH) and phx runs pct on the guest's node over ssh"
                .into(),
        ),
    }
}

impl ApiBackend {
    /// A backend for `opts`. Nothing is sent yet: the first call connects (and logs in).
    pub fn new(opts: ApiOptions) -> Result<Self> {
        let client = Client::new(&opts)?;
        let inner = Arc::new(Inner {
            client,
            timeouts: opts.timeouts,
            poll: opts.poll,
            grace: opts.task_visibility_grace,
            node: opts.node,
            default_node: OnceCell::new(),
            ssh: opts.ssh,
            ssh_nodes: std::sync::Mutex::new(BTreeMap::new()),
        });
        Ok(Self {
            lxc: Manager {
                inner: inner.clone(),
                kind: GuestKind::Lxc,
            },
            vm: Manager {
                inner: inner.clone(),
                kind: GuestKind::Vm,
            },
            inner,
        })
    }

    /// `https://host:8006`.
    pub fn url(&self) -> &str {
        self.inner.client.origin()
    }
}

impl Inner {
    async fn call(&self, method: Method, path: &str, params: Params) -> Result<Value> {
        Ok(self.client.call(method, path, &params).await?.data)
    }

    async fn get(&self, path: &str, params: Params) -> Result<Value> {
        self.call(Method::GET, path, params).await
    }

    /// `GET path` read with `map`; an answer that does not fit names the request.
    async fn read<T>(
        &self,
        path: &str,
        params: Params,
        map: impl FnOnce(&Value) -> std::result::Result<T, ParseError>,
    ) -> Result<T> {
        map(&self.get(path, params).await?).map_err(|e| {
            Error::backend(
                BACKEND,
                format!(
                    "unexpected answer to GET {path}: {e}; check that --api-url is a Proxmox VE API"
                ),
            )
        })
    }

    /// A call that may start a task: a UPID answer is waited for (`timeout` or the task
    /// type's), `null` means it was done synchronously.
    async fn task(
        &self,
        method: Method,
        path: &str,
        params: Params,
        timeout: Option<Duration>,
    ) -> Result<TaskDone> {
        let data = self.call(method.clone(), path, params).await?;
        match &data {
            Value::Null => Ok(TaskDone::sync()),
            Value::String(s) if s.starts_with("UPID:") => {
                let upid: Upid = s.parse().map_err(|e: crate::upid::UpidError| {
                    ApiError::decode(format!("{method} {path}"), e)
                })?;
                let t = timeout.unwrap_or_else(|| self.timeouts.task(&upid.kind));
                tracing::debug!("waiting for task {upid} (up to {}s)", t.as_secs());
                let _running = phx_core::backend::inflight::task(s.clone());
                self.client.wait_task(&upid, t, self.poll, self.grace).await
            }
            other => Err(ApiError::decode(
                format!("{method} {path}"),
                format!(
                    "expected a task id or null, got {}",
                    crate::upid::excerpt(&other.to_string())
                ),
            )
            .into()),
        }
    }

    /// The node a guest lives on, from `/cluster/resources`.
    async fn locate(&self, kind: GuestKind, id: GuestId) -> Result<Option<NodeName>> {
        let all = self
            .read(
                "/cluster/resources",
                Params::new().set("type", "vm"),
                map::resources,
            )
            .await?;
        Ok(all
            .into_iter()
            .find(|g| g.id == id && g.kind == kind)
            .map(|g| g.node))
    }

    async fn find_default_node(&self) -> Result<NodeName> {
        if let Some(n) = &self.node {
            return NodeName::new(n.clone())
                .map_err(|e| {
                    Error::backend(
                        BACKEND,
                        format!(
                            "--node {n:?}: {e}; pass a node name as the cluster lists it (`pvecm nodes`)"
                        ),
                    )
                });
        }
        let nodes = self.read("/nodes", Params::new(), map::nodes).await?;
        let host = self.client.host();
        let short = host.split('.').next().unwrap_or(host);
        if let Some(n) = nodes
            .iter()
            .find(|n| n.name.as_str() == host || n.name.as_str() == short)
        {
            return Ok(n.name.clone());
        }
        if let [only] = nodes.as_slice() {
            return Ok(only.name.clone());
        }
        let status = self.get("/cluster/status", Params::new()).await?;
        if let Some(local) = map::local_node(&status)
            && let Some(n) = nodes.iter().find(|n| n.name.as_str() == local)
        {
            return Ok(n.name.clone());
        }
        Err(Error::backend(
            BACKEND,
            format!(
                "cannot tell which node {} is; pass --node",
                self.client.origin()
            ),
        ))
    }

    /// The pct backend that runs commands on `node` over ssh.
    fn over_ssh(&self, node: &NodeName, operation: &'static str) -> Result<Arc<PctBackend>> {
        let Some(ssh) = &self.ssh else {
            return Err(unsupported(operation));
        };
        let mut nodes = self
            .ssh_nodes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(b) = nodes.get(node.as_str()) {
            return Ok(b.clone());
        }
        let mut runner = SshRunner::new(ssh.target_for(node.as_str()));
        for o in &ssh.options {
            runner = runner.option(o.clone());
        }
        for (k, v) in &ssh.env {
            runner = runner.env(k.clone(), v.clone());
        }
        let b = Arc::new(PctBackend::new(
            Arc::new(runner),
            PctOptions {
                node: Some(node.clone()),
                pve_etc: ssh.pve_etc.clone(),
                read_timeout: ssh.command_timeout,
                task_timeout: self.timeouts.task_default,
            },
        ));
        nodes.insert(node.as_str().to_string(), b.clone());
        Ok(b)
    }

    async fn firewall(&self, base: &str) -> Result<FirewallState> {
        let options = map::fw_options(&self.get(&format!("{base}/options"), Params::new()).await?);
        let rules = self
            .read(&format!("{base}/rules"), Params::new(), map::fw_rules)
            .await?;
        Ok(FirewallState { options, rules })
    }

    async fn set_fw_options(&self, base: &str, o: &FirewallOptions) -> Result<()> {
        let p: Params = params::firewall_options(o).into_iter().collect();
        self.call(Method::PUT, &format!("{base}/options"), p)
            .await
            .map(|_| ())
    }

    /// Replace the rules with the writes [`params::replace_rules`] decides (read right before,
    /// so a retry after a lost answer finds them replaced).
    async fn set_fw_rules(&self, base: &str, rules: &[FirewallRule]) -> Result<()> {
        let have = self
            .read(&format!("{base}/rules"), Params::new(), map::fw_rules)
            .await?;
        for w in params::replace_rules(&have, rules) {
            match w {
                RuleWrite::Delete { pos } => {
                    let path = format!("{base}/rules/{pos}");
                    self.call(Method::DELETE, &path, Params::new()).await?
                }
                RuleWrite::Create(p) => {
                    let p: Params = p.into_iter().collect();
                    self.call(Method::POST, &format!("{base}/rules"), p).await?
                }
            };
        }
        Ok(())
    }
}

/// Run `$body` (with `$n` bound to a node) against the guest's node: the given node first;
/// when the guest is not there (it was migrated, say), find where it lives and run it there.
macro_rules! on_guest {
    ($mgr:expr, $node:expr, $id:expr, |$n:ident| $body:block) => {{
        let mgr: &Manager = $mgr;
        let first: &NodeName = $node;
        let id: GuestId = $id;
        let r: Result<_> = {
            let $n: &NodeName = first;
            async $body.await
        };
        // a call for a guest that is not on the node fails synchronously, or (start) as a
        // task that did nothing: "Configuration file 'nodes/<node>/...' does not exist"
        let elsewhere = match &r {
            Err(Error::NotFound { .. }) => true,
            Err(Error::TaskFailed { exit_status, .. }) => matches!(
                Error::from_proxmox_message(exit_status),
                Error::NotFound { .. }
            ) && exit_status.contains(&format!("nodes/{first}/")),
            _ => false,
        };
        match r {
            Err(e) if elsewhere => match mgr.inner.locate(mgr.kind, id).await {
                Ok(Some(actual)) if &actual != first => {
                    tracing::info!(
                        "{} {id} lives on {actual}, not {first}",
                        mgr.kind.proxmox_word()
                    );
                    let $n: &NodeName = &actual;
                    async $body.await
                }
                _ => Err(e),
            },
            other => other,
        }
    }};
}

impl Manager {
    fn base(&self, node: &NodeName, id: GuestId) -> String {
        format!(
            "/nodes/{}/{}/{id}",
            segment(node.as_str()),
            api_kind(self.kind)
        )
    }

    async fn power(
        &self,
        node: &NodeName,
        id: GuestId,
        action: &str,
        params: Params,
        timeout: Option<Duration>,
    ) -> Result<TaskDone> {
        on_guest!(self, node, id, |n| {
            self.inner
                .task(
                    Method::POST,
                    &format!("{}/status/{action}", self.base(n, id)),
                    params.clone(),
                    timeout,
                )
                .await
        })
    }

    async fn clone_any(&self, node: &NodeName, req: &CloneRequest) -> Result<TaskDone> {
        let name_key = match self.kind {
            GuestKind::Lxc => "hostname",
            GuestKind::Vm => "name",
        };
        let mut p = Params::new()
            .set("newid", req.target)
            .opt(name_key, req.name.as_ref())
            .opt("snapname", req.snapname.as_ref());
        if req.full {
            p = p.flag("full", true).opt("storage", req.storage.as_ref());
        }
        on_guest!(self, node, req.source, |n| {
            self.inner
                .task(
                    Method::POST,
                    &format!("{}/clone", self.base(n, req.source)),
                    p.clone(),
                    None,
                )
                .await
        })
    }

    /// LXC `template` answers `null` while its `vztemplate` task runs: wait until the config
    /// says `template: 1`.
    async fn wait_lxc_template(&self, node: &NodeName, id: GuestId) -> Result<()> {
        let started = Instant::now();
        let limit = self.inner.timeouts.lxc_template;
        loop {
            let cfg = self.config(node, id).await?;
            if cfg.is_template() && cfg.lock().is_none() {
                return Ok(());
            }
            if started.elapsed() >= limit {
                return Err(Error::Timeout {
                    operation: format!("template conversion of CT {id}"),
                    after: limit,
                });
            }
            tokio::time::sleep(self.inner.poll.wait(started.elapsed())).await;
        }
    }
}

#[async_trait]
impl GuestManager for Manager {
    fn kind(&self) -> GuestKind {
        self.kind
    }

    async fn status(&self, node: &NodeName, id: GuestId) -> Result<GuestSummary> {
        on_guest!(self, node, id, |n| {
            let mut s = self
                .inner
                .read(
                    &format!("{}/status/current", self.base(n, id)),
                    Params::new(),
                    |v| map::guest_status(v, self.kind, n),
                )
                .await?;
            // some versions leave `vmid` out of status/current
            s.id = id;
            Ok(s)
        })
    }

    async fn config(&self, node: &NodeName, id: GuestId) -> Result<GuestConfig> {
        on_guest!(self, node, id, |n| {
            self.inner
                .read(
                    &format!("{}/config", self.base(n, id)),
                    Params::new(),
                    map::guest_config,
                )
                .await
        })
    }

    async fn update_config(
        &self,
        node: &NodeName,
        id: GuestId,
        change: &ConfigUpdate,
    ) -> Result<()> {
        if change.is_empty() {
            return Ok(());
        }
        let mut p = Params::new();
        for (k, v) in &change.set {
            p.push(k.clone(), v);
        }
        let p = p
            .delete(&change.delete)
            .opt("digest", change.digest.as_ref());
        on_guest!(self, node, id, |n| {
            let path = format!("{}/config", self.base(n, id));
            match self.kind {
                // LXC config changes are synchronous
                GuestKind::Lxc => self
                    .inner
                    .call(Method::PUT, &path, p.clone())
                    .await
                    .map(|_| ()),
                // QEMU: POST, because disk allocation (a cloud-init drive) can outlast the
                // proxy's 30 s; it answers a UPID, or null when done within its delay
                GuestKind::Vm => self
                    .inner
                    .task(Method::POST, &path, p.clone(), None)
                    .await
                    .map(|_| ()),
            }
        })
    }

    async fn resize(
        &self,
        node: &NodeName,
        id: GuestId,
        disk: &str,
        size: DiskSize,
    ) -> Result<TaskDone> {
        let p = Params::new().set("disk", disk).set("size", size);
        on_guest!(self, node, id, |n| {
            self.inner
                .task(
                    Method::PUT,
                    &format!("{}/resize", self.base(n, id)),
                    p.clone(),
                    None,
                )
                .await
        })
    }

    async fn start(&self, node: &NodeName, id: GuestId) -> Result<TaskDone> {
        self.power(node, id, "start", Params::new(), None).await
    }

    async fn stop(&self, node: &NodeName, id: GuestId) -> Result<TaskDone> {
        self.power(node, id, "stop", Params::new(), None).await
    }

    async fn shutdown(&self, node: &NodeName, id: GuestId, timeout: Duration) -> Result<TaskDone> {
        let secs = timeout.as_secs().max(1);
        let p = Params::new().set("timeout", secs).flag("forceStop", true);
        // the task itself stops the guest hard after `timeout`
        let wait = timeout + self.inner.timeouts.task("vzstop");
        self.power(node, id, "shutdown", p, Some(wait)).await
    }

    async fn reboot(&self, node: &NodeName, id: GuestId) -> Result<TaskDone> {
        self.power(node, id, "reboot", Params::new(), None).await
    }

    async fn destroy(
        &self,
        node: &NodeName,
        id: GuestId,
        opts: &DestroyOptions,
    ) -> Result<TaskDone> {
        let mut p = Params::new();
        if opts.purge {
            p = p.flag("purge", true);
        }
        if opts.destroy_unreferenced_disks {
            p = p.flag("destroy-unreferenced-disks", true);
        }
        on_guest!(self, node, id, |n| {
            self.inner
                .task(Method::DELETE, &self.base(n, id), p.clone(), None)
                .await
        })
    }

    async fn snapshots(&self, node: &NodeName, id: GuestId) -> Result<Vec<SnapshotInfo>> {
        on_guest!(self, node, id, |n| {
            self.inner
                .read(
                    &format!("{}/snapshot", self.base(n, id)),
                    Params::new(),
                    map::snapshots,
                )
                .await
        })
    }

    async fn snapshot_create(
        &self,
        node: &NodeName,
        id: GuestId,
        name: &SnapshotName,
        description: &str,
    ) -> Result<TaskDone> {
        let mut p = Params::new().set("snapname", name);
        if !description.is_empty() {
            p = p.set("description", description);
        }
        on_guest!(self, node, id, |n| {
            self.inner
                .task(
                    Method::POST,
                    &format!("{}/snapshot", self.base(n, id)),
                    p.clone(),
                    None,
                )
                .await
        })
    }

    async fn snapshot_delete(
        &self,
        node: &NodeName,
        id: GuestId,
        name: &SnapshotName,
    ) -> Result<TaskDone> {
        on_guest!(self, node, id, |n| {
            let path = format!("{}/snapshot/{}", self.base(n, id), segment(name.as_str()));
            self.inner
                .task(Method::DELETE, &path, Params::new(), None)
                .await
        })
    }

    async fn snapshot_rollback(
        &self,
        node: &NodeName,
        id: GuestId,
        name: &SnapshotName,
    ) -> Result<TaskDone> {
        on_guest!(self, node, id, |n| {
            let path = format!(
                "{}/snapshot/{}/rollback",
                self.base(n, id),
                segment(name.as_str())
            );
            self.inner
                .task(Method::POST, &path, Params::new(), None)
                .await
        })
    }

    async fn template(&self, node: &NodeName, id: GuestId) -> Result<()> {
        on_guest!(self, node, id, |n| {
            let path = format!("{}/template", self.base(n, id));
            let done = self
                .inner
                .task(Method::POST, &path, Params::new(), None)
                .await?;
            if self.kind == GuestKind::Lxc && done.upid.is_none() {
                self.wait_lxc_template(n, id).await?;
            }
            Ok(())
        })
    }

    async fn firewall(&self, node: &NodeName, id: GuestId) -> Result<FirewallState> {
        on_guest!(self, node, id, |n| {
            self.inner
                .firewall(&format!("{}/firewall", self.base(n, id)))
                .await
        })
    }

    async fn set_firewall_options(
        &self,
        node: &NodeName,
        id: GuestId,
        opts: &FirewallOptions,
    ) -> Result<()> {
        on_guest!(self, node, id, |n| {
            self.inner
                .set_fw_options(&format!("{}/firewall", self.base(n, id)), opts)
                .await
        })
    }

    async fn set_firewall_rules(
        &self,
        node: &NodeName,
        id: GuestId,
        rules: &[FirewallRule],
    ) -> Result<()> {
        on_guest!(self, node, id, |n| {
            self.inner
                .set_fw_rules(&format!("{}/firewall", self.base(n, id)), rules)
                .await
        })
    }
}

#[async_trait]
impl LxcManager for Manager {
    async fn create(&self, node: &NodeName, req: &LxcCreate) -> Result<TaskDone> {
        let mut p = Params::new()
            .set("vmid", req.id)
            .set("ostemplate", &req.ostemplate);
        for (k, v) in &req.params {
            p.push(k.clone(), v);
        }
        self.inner
            .task(
                Method::POST,
                &format!("/nodes/{}/lxc", segment(node.as_str())),
                p,
                None,
            )
            .await
    }

    async fn clone_guest(&self, node: &NodeName, req: &CloneRequest) -> Result<TaskDone> {
        self.clone_any(node, req).await
    }

    async fn set_raw_config(
        &self,
        node: &NodeName,
        id: GuestId,
        lines: &[(String, String)],
    ) -> Result<()> {
        let pct = self
            .inner
            .over_ssh(node, "editing raw lxc.* config lines")?;
        pct.lxc().set_raw_config(node, id, lines).await
    }

    async fn exec(&self, node: &NodeName, id: GuestId, req: &ExecRequest) -> Result<ExecOutput> {
        let pct = self
            .inner
            .over_ssh(node, "running commands in a container (lxc exec)")?;
        pct.lxc().exec(node, id, req).await
    }

    async fn push(
        &self,
        node: &NodeName,
        id: GuestId,
        content: &[u8],
        dest: &str,
        mode: u32,
    ) -> Result<()> {
        let pct = self
            .inner
            .over_ssh(node, "copying files into a container (lxc push)")?;
        pct.lxc().push(node, id, content, dest, mode).await
    }
}

#[async_trait]
impl VmManager for Manager {
    async fn create(&self, node: &NodeName, req: &VmCreate) -> Result<TaskDone> {
        let mut p = Params::new().set("vmid", req.id);
        for (k, v) in &req.params {
            p.push(k.clone(), v);
        }
        self.inner
            .task(
                Method::POST,
                &format!("/nodes/{}/qemu", segment(node.as_str())),
                p,
                None,
            )
            .await
    }

    async fn clone_guest(&self, node: &NodeName, req: &CloneRequest) -> Result<TaskDone> {
        self.clone_any(node, req).await
    }

    async fn cloudinit_update(&self, node: &NodeName, id: GuestId) -> Result<()> {
        on_guest!(self, node, id, |n| {
            self.inner
                .call(
                    Method::PUT,
                    &format!("{}/cloudinit", self.base(n, id)),
                    Params::new(),
                )
                .await
                .map(|_| ())
        })
    }

    async fn agent_ping(&self, node: &NodeName, id: GuestId) -> Result<()> {
        on_guest!(self, node, id, |n| {
            self.inner
                .call(
                    Method::POST,
                    &format!("{}/agent/ping", self.base(n, id)),
                    Params::new(),
                )
                .await
                .map(|_| ())
        })
    }

    async fn agent_exec(
        &self,
        node: &NodeName,
        id: GuestId,
        req: &ExecRequest,
    ) -> Result<ExecOutput> {
        let argv = params::command_with_env(req);
        if argv.is_empty() {
            return Err(Error::InvalidRequest {
                message: "missing command".into(),
                params: BTreeMap::new(),
            });
        }
        let (n, pid) = on_guest!(self, node, id, |n| {
            let v = self
                .inner
                .call(
                    Method::POST,
                    &format!("{}/agent/exec", self.base(n, id)),
                    Params::new().list("command", &argv),
                )
                .await?;
            let pid = map::agent_pid(&v).map_err(|e| {
                Error::backend(
                    BACKEND,
                    format!(
                        "unexpected answer to POST {}/agent/exec: {e}",
                        self.base(n, id)
                    ),
                )
            })?;
            Ok((n.clone(), pid))
        })?;
        let started = Instant::now();
        // commands through the agent are mostly short: a first wait of at most 100 ms, then a
        // quarter of the time so far, at most 1 s
        let first = Duration::from_millis(100).min(self.inner.poll.initial);
        let most = Duration::from_secs(1).min(self.inner.poll.max).max(first);
        let status_path = format!("{}/agent/exec-status", self.base(&n, id));
        loop {
            let v = self
                .inner
                .get(&status_path, Params::new().set("pid", pid))
                .await?;
            if let AgentExecStatus::Exited { code, out, err } = map::agent_exec_status(&v) {
                return Ok(ExecOutput {
                    exit_code: code,
                    stdout: out,
                    stderr: err,
                });
            }
            if started.elapsed() >= req.timeout {
                return Err(Error::Timeout {
                    operation: format!("{} in VM {id} (guest agent pid {pid})", req.argv.join(" ")),
                    after: req.timeout,
                });
            }
            let wait = (started.elapsed() / 4).clamp(first, most);
            tokio::time::sleep(wait.min(req.timeout.saturating_sub(started.elapsed()))).await;
        }
    }

    async fn agent_file_read(&self, node: &NodeName, id: GuestId, path: &str) -> Result<AgentFile> {
        // not `on_guest!`: a log not written yet answers "No such file", which is not a guest
        // that moved (this read polls a log; the command itself locates the guest)
        self.inner
            .read(
                &format!("{}/agent/file-read", self.base(node, id)),
                Params::new().set("file", path),
                map::agent_file_content,
            )
            .await
    }

    async fn agent_file_write(
        &self,
        node: &NodeName,
        id: GuestId,
        path: &str,
        content: &[u8],
    ) -> Result<()> {
        // encode=0: the content is base64 already, so any bytes survive the form encoding
        let p = Params::new()
            .set("file", path)
            .set(
                "content",
                base64::engine::general_purpose::STANDARD.encode(content),
            )
            .flag("encode", false);
        on_guest!(self, node, id, |n| {
            self.inner
                .call(
                    Method::POST,
                    &format!("{}/agent/file-write", self.base(n, id)),
                    p.clone(),
                )
                .await
                .map(|_| ())
        })
    }
}

#[async_trait]
impl Hypervisor for ApiBackend {
    fn name(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        let ssh = self.inner.ssh.is_some();
        Capabilities {
            lxc_exec: ssh,
            vm_agent: true,
            host_exec: ssh,
            raw_lxc_config: ssh,
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
        self.inner
            .read("/version", Params::new(), map::version)
            .await
    }

    async fn nodes(&self) -> Result<Vec<NodeInfo>> {
        self.inner.read("/nodes", Params::new(), map::nodes).await
    }

    async fn default_node(&self) -> Result<NodeName> {
        self.inner
            .default_node
            .get_or_try_init(|| self.inner.find_default_node())
            .await
            .cloned()
    }

    async fn guests(&self) -> Result<Vec<GuestSummary>> {
        self.inner
            .read(
                "/cluster/resources",
                Params::new().set("type", "vm"),
                map::resources,
            )
            .await
    }

    async fn active_tasks(&self, node: &NodeName, kind: Option<&str>) -> Result<Vec<ActiveTask>> {
        let path = format!("/nodes/{}/tasks", segment(node.as_str()));
        let params = Params::new()
            .set("source", "active")
            .opt("typefilter", kind);
        self.inner.read(&path, params, map::active_tasks).await
    }

    async fn storages(&self, node: &NodeName) -> Result<Vec<StorageInfo>> {
        let path = format!("/nodes/{}/storage", segment(node.as_str()));
        self.inner.read(&path, Params::new(), map::storages).await
    }

    async fn storage_content(
        &self,
        node: &NodeName,
        storage: &StorageId,
        content: Option<&str>,
    ) -> Result<Vec<VolumeInfo>> {
        let path = format!(
            "/nodes/{}/storage/{}/content",
            segment(node.as_str()),
            segment(storage.as_str())
        );
        self.inner
            .read(&path, Params::new().opt("content", content), map::volumes)
            .await
    }

    async fn add_storage(&self, spec: &StorageSpec) -> Result<()> {
        let mut p = Params::new()
            .set("storage", &spec.id)
            .set("type", &spec.kind);
        if !spec.content.is_empty() {
            p = p.set("content", spec.content.join(","));
        }
        for (k, v) in &spec.params {
            p.push(k.clone(), v);
        }
        self.inner
            .call(Method::POST, "/storage", p)
            .await
            .map(|_| ())
    }

    async fn set_storage_content(&self, storage: &StorageId, content: &[String]) -> Result<()> {
        let path = format!("/storage/{}", segment(storage.as_str()));
        self.inner
            .call(
                Method::PUT,
                &path,
                Params::new().set("content", content.join(",")),
            )
            .await
            .map(|_| ())
    }

    async fn remove_storage(&self, storage: &StorageId) -> Result<()> {
        let path = format!("/storage/{}", segment(storage.as_str()));
        self.inner
            .call(Method::DELETE, &path, Params::new())
            .await
            .map(|_| ())
    }

    async fn available_templates(&self, node: &NodeName) -> Result<Vec<String>> {
        let path = format!("/nodes/{}/aplinfo", segment(node.as_str()));
        self.inner.read(&path, Params::new(), map::aplinfo).await
    }

    async fn download_template(
        &self,
        node: &NodeName,
        storage: &StorageId,
        template: &str,
    ) -> Result<TaskDone> {
        let path = format!("/nodes/{}/aplinfo", segment(node.as_str()));
        let p = Params::new()
            .set("storage", storage)
            .set("template", template);
        self.inner.task(Method::POST, &path, p, None).await
    }

    async fn download_url(
        &self,
        node: &NodeName,
        storage: &StorageId,
        content: &str,
        filename: &str,
        url: &str,
    ) -> Result<TaskDone> {
        let path = format!(
            "/nodes/{}/storage/{}/download-url",
            segment(node.as_str()),
            segment(storage.as_str())
        );
        let p = Params::new()
            .set("content", content)
            .set("filename", filename)
            .set("url", url);
        self.inner.task(Method::POST, &path, p, None).await
    }

    async fn users(&self) -> Result<Vec<String>> {
        self.inner
            .read("/access/users", Params::new(), map::users)
            .await
    }

    async fn add_user(&self, userid: &str, comment: &str) -> Result<()> {
        let mut p = Params::new().set("userid", userid);
        if !comment.is_empty() {
            p = p.set("comment", comment);
        }
        self.inner
            .call(Method::POST, "/access/users", p)
            .await
            .map(|_| ())
    }

    async fn acl(&self) -> Result<Vec<(String, String, String)>> {
        self.inner
            .read("/access/acl", Params::new(), map::acl)
            .await
    }

    async fn set_acl(&self, path: &str, userid: &str, role: &str) -> Result<()> {
        let p = Params::new()
            .set("path", path)
            .set("users", userid)
            .set("roles", role);
        self.inner
            .call(Method::PUT, "/access/acl", p)
            .await
            .map(|_| ())
    }

    async fn cluster_firewall(&self) -> Result<FirewallState> {
        self.inner.firewall("/cluster/firewall").await
    }

    async fn set_cluster_firewall_options(&self, opts: &FirewallOptions) -> Result<()> {
        self.inner.set_fw_options("/cluster/firewall", opts).await
    }

    async fn set_cluster_firewall_rules(&self, rules: &[FirewallRule]) -> Result<()> {
        self.inner.set_fw_rules("/cluster/firewall", rules).await
    }

    async fn bridges(&self, node: &NodeName) -> Result<Vec<String>> {
        let path = format!("/nodes/{}/network", segment(node.as_str()));
        self.inner
            .read(&path, Params::new().set("type", "bridge"), map::bridges)
            .await
    }

    async fn node_dns(&self, node: &NodeName) -> Result<(Option<String>, Vec<String>)> {
        let path = format!("/nodes/{}/dns", segment(node.as_str()));
        Ok(map::dns(&self.inner.get(&path, Params::new()).await?))
    }

    async fn set_node_dns(
        &self,
        node: &NodeName,
        search: &str,
        nameservers: &[String],
    ) -> Result<()> {
        let path = format!("/nodes/{}/dns", segment(node.as_str()));
        let mut p = Params::new().set("search", search);
        for (i, ns) in nameservers.iter().take(3).enumerate() {
            p = p.set(format!("dns{}", i + 1), ns);
        }
        self.inner.call(Method::PUT, &path, p).await.map(|_| ())
    }

    async fn node_timezone(&self, node: &NodeName) -> Result<String> {
        let path = format!("/nodes/{}/time", segment(node.as_str()));
        self.inner.read(&path, Params::new(), map::timezone).await
    }

    async fn set_node_timezone(&self, node: &NodeName, tz: &str) -> Result<()> {
        let path = format!("/nodes/{}/time", segment(node.as_str()));
        self.inner
            .call(Method::PUT, &path, Params::new().set("timezone", tz))
            .await
            .map(|_| ())
    }

    async fn host_exec(&self, node: &NodeName, req: &ExecRequest) -> Result<ExecOutput> {
        let pct = self
            .inner
            .over_ssh(node, "running commands on a node (host exec)")?;
        pct.host_exec(node, req).await
    }
}
