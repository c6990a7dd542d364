//! [`PctBackend`]: the phx-core traits over the Proxmox command-line tools of one node.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use phx_core::backend::*;
use phx_core::error::{Error, Result};
use phx_core::types::{
    DiskSize, FirewallRule, GuestId, GuestKind, NodeName, SnapshotName, StorageId,
};
use serde_json::Value;
use tokio::sync::OnceCell;

use crate::error::{PctError, classify_stderr, error_line, parse_error};
use crate::lxcconf;
use crate::params::{self, RuleWrite};
use crate::parse::{self, GuestExec, TaskStatus};
use crate::runner::{Cmd, CmdOutput, CommandRunner, LocalRunner, SshRunner};

const BACKEND: &str = "pct";

/// Settings of a [`PctBackend`].
#[derive(Debug, Clone)]
pub struct PctOptions {
    /// The node the tools act on; found out (`/nodes`, then `hostname`) when `None`.
    pub node: Option<NodeName>,
    /// The node's `/etc/pve` (where `lxc/<id>.conf` lives).
    pub pve_etc: PathBuf,
    /// Timeout of reads and quick writes.
    pub read_timeout: Duration,
    /// Timeout of task-running commands (create, clone, download, ...).
    pub task_timeout: Duration,
}

impl PctOptions {
    /// Defaults, with `PHX_PVE_ETC` (the node's `/etc/pve`; tests point it at the fake's
    /// `PHX_FAKE_ETC`) and `PHX_PVE_NODE` (the node name) taken from the environment.
    pub fn from_env() -> Self {
        let mut o = Self::default();
        if let Some(etc) = std::env::var_os("PHX_PVE_ETC").filter(|v| !v.is_empty()) {
            o.pve_etc = PathBuf::from(etc);
        }
        if let Some(n) = std::env::var("PHX_PVE_NODE")
            .ok()
            .and_then(|n| NodeName::new(n).ok())
        {
            o.node = Some(n);
        }
        o
    }
}

impl Default for PctOptions {
    fn default() -> Self {
        Self {
            node: None,
            pve_etc: PathBuf::from("/etc/pve"),
            read_timeout: Duration::from_secs(60),
            task_timeout: Duration::from_secs(1800),
        }
    }
}

struct Inner {
    runner: Arc<dyn CommandRunner>,
    opts: PctOptions,
    node: OnceCell<NodeName>,
}

/// The phx-core traits over `pct`, `qm`, `pvesh`, `pvesm` and `pveam`, run on the local node
/// or on one node over ssh. Reads go through `pvesh get ... --output-format json`; guest
/// lifecycle goes through `pct`/`qm` (tasks run in the foreground, exit 255 on failure);
/// firewall, access, DNS and time go through `pvesh`; raw `lxc.*` lines are edited in
/// `/etc/pve/lxc/<id>.conf`.
///
/// Capabilities: exec and push into containers, the guest agent, host commands and raw
/// `lxc.*` lines, on one node only (`multi_node: false`): `pct` and `qm` act on the node they
/// run on, so a guest on another node is [`Error::Unsupported`].
#[derive(Clone)]
pub struct PctBackend {
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

impl fmt::Debug for PctBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PctBackend")
            .field("runner", &self.inner.runner)
            .field("opts", &self.inner.opts)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pct::Manager({:?})", self.kind)
    }
}

impl PctBackend {
    /// A backend that runs its commands through `runner`.
    pub fn new(runner: Arc<dyn CommandRunner>, opts: PctOptions) -> Self {
        let node = OnceCell::new();
        if let Some(n) = &opts.node {
            let _ = node.set(n.clone());
        }
        let inner = Arc::new(Inner { runner, opts, node });
        Self {
            lxc: Manager {
                inner: inner.clone(),
                kind: GuestKind::Lxc,
            },
            vm: Manager {
                inner: inner.clone(),
                kind: GuestKind::Vm,
            },
            inner,
        }
    }

    /// phx runs on the Proxmox node itself ([`PctOptions::from_env`]).
    pub fn local() -> Self {
        Self::new(Arc::new(LocalRunner::new()), PctOptions::from_env())
    }

    /// Every command runs on `target` (`root@pve1`, from `--ssh` / `PHX_SSH`) over ssh
    /// ([`PctOptions::from_env`]).
    pub fn over_ssh(target: &str) -> Self {
        Self::new(Arc::new(SshRunner::new(target)), PctOptions::from_env())
    }

    /// The runner.
    pub fn runner(&self) -> &Arc<dyn CommandRunner> {
        &self.inner.runner
    }
}

fn s(v: impl ToString) -> String {
    v.to_string()
}

fn argv(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|p| (*p).to_string()).collect()
}

fn tool(kind: GuestKind) -> &'static str {
    if kind == GuestKind::Lxc { "pct" } else { "qm" }
}

fn api_kind(kind: GuestKind) -> &'static str {
    if kind == GuestKind::Lxc {
        "lxc"
    } else {
        "qemu"
    }
}

/// `--key value` pairs of a parameter map, in key order.
fn opts_argv(params: &BTreeMap<String, String>) -> Vec<String> {
    params
        .iter()
        .flat_map(|(k, v)| [format!("--{k}"), v.clone()])
        .collect()
}

fn bool01(b: bool) -> String {
    if b { "1" } else { "0" }.to_string()
}

/// Decode Proxmox's `urlencoded` values (`sshkeys`).
fn uri_unescape(s: &str) -> String {
    parse::unescape_description(s)
}

impl Inner {
    async fn run(&self, argv: Vec<String>, timeout: Duration) -> Result<CmdOutput> {
        Ok(self
            .runner
            .run(&Cmd::new(argv, timeout))
            .await
            .map_err(PctError::from)?)
    }

    async fn run_stdin(
        &self,
        argv: Vec<String>,
        stdin: Vec<u8>,
        timeout: Duration,
    ) -> Result<CmdOutput> {
        Ok(self
            .runner
            .run(&Cmd::new(argv, timeout).stdin(stdin))
            .await
            .map_err(PctError::from)?)
    }

    /// Run and require exit 0; a failure is classified from stderr.
    async fn check(&self, argv: Vec<String>, timeout: Duration) -> Result<CmdOutput> {
        let out = self.run(argv, timeout).await?;
        if out.code != 0 {
            return Err(classify_stderr(&out.stderr_text()));
        }
        Ok(out)
    }

    /// `pvesh get <path> [--k v] --output-format json` → the bare `data`.
    async fn get(&self, path: &str, params: &[(&str, String)]) -> Result<Value> {
        let mut a = argv(&["pvesh", "get", path]);
        for (k, v) in params {
            a.push(format!("--{k}"));
            a.push(v.clone());
        }
        a.extend(argv(&["--output-format", "json"]));
        let out = self.check(a, self.opts.read_timeout).await?;
        parse::pvesh_output(&out.stdout_text())
            .map_err(|e| parse_error(format!("pvesh get {path}"), e.to_string()))
    }

    /// `pvesh get <path>` read with `map`; an answer that does not fit names the command.
    async fn read<T>(
        &self,
        path: &str,
        params: &[(&str, String)],
        map: impl FnOnce(&Value) -> std::result::Result<T, parse::ParseError>,
    ) -> Result<T> {
        map(&self.get(path, params).await?)
            .map_err(|e| parse_error(format!("pvesh get {path}"), e.to_string()))
    }

    /// `pvesh create|set|delete <path> ...`. pvesh exits 0 even when the task it started
    /// failed, so a UPID answer is followed by a read of the task's status.
    async fn write(
        &self,
        verb: &str,
        path: &str,
        params: &[(&str, String)],
        timeout: Duration,
    ) -> Result<(Value, Option<TaskDone>)> {
        let mut a = argv(&["pvesh", verb, path]);
        for (k, v) in params {
            a.push(format!("--{k}"));
            a.push(v.clone());
        }
        a.extend(argv(&["--output-format", "json"]));
        let out = self.check(a, timeout).await?;
        let text = out.stdout_text();
        let data = parse::pvesh_output(&text)
            .map_err(|e| parse_error(format!("pvesh {verb} {path}"), e.to_string()))?;
        let Some(upid) = data
            .as_str()
            .filter(|u| u.starts_with("UPID:"))
            .map(str::to_string)
        else {
            return Ok((data, None));
        };
        let log: Vec<String> = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('"'))
            .map(str::to_string)
            .collect();
        let done = self.task_result(&upid, log, &out.stderr_text()).await?;
        Ok((data, Some(done)))
    }

    /// The result of a finished task, read back from `.../tasks/{upid}/status`.
    async fn task_result(&self, upid: &str, log: Vec<String>, stderr: &str) -> Result<TaskDone> {
        let node = upid.split(':').nth(1).unwrap_or_default();
        let status = self
            .get(&format!("/nodes/{node}/tasks/{upid}/status"), &[])
            .await?;
        match parse::task_status(&status) {
            TaskStatus::Ok { warnings } => Ok(TaskDone {
                upid: Some(upid.to_string()),
                warnings,
            }),
            TaskStatus::Failed(exit_status) => Err(Error::TaskFailed {
                upid: upid.to_string(),
                exit_status,
                log_tail: tail(log),
            }),
            TaskStatus::Running => Err(Error::backend(
                BACKEND,
                format!(
                    "task {upid} still runs after the command returned ({})",
                    error_line(stderr)
                ),
            )),
        }
    }

    /// The local node: configured, or the only node, or the one named like this host.
    async fn node(&self) -> Result<NodeName> {
        self.node
            .get_or_try_init(|| async {
                let nodes = self.read("/nodes", &[], parse::nodes).await?;
                if let [only] = nodes.as_slice() {
                    return Ok(only.name.clone());
                }
                let host = self.check(argv(&["hostname"]), self.opts.read_timeout).await?.stdout_text();
                let host = host.trim().split('.').next().unwrap_or_default().to_string();
                nodes.into_iter().find(|n| n.name.as_str() == host).map(|n| n.name).ok_or_else(|| Error::backend(BACKEND, format!("this host ({host}) is not a node of the cluster; pass the node to manage with --node (PHX_NODE)")))
            })
            .await
            .cloned()
    }

    /// `pct`/`qm` act on the node they run on.
    async fn local(&self, node: &NodeName) -> Result<()> {
        let me = self.node().await?;
        if &me == node {
            return Ok(());
        }
        Err(Error::Unsupported {
            operation: "managing a guest on another node",
            backend: BACKEND,
            hint: Some(format!(
                "pct and qm act on {me}; run phx on {node} or use --ssh root@{node}"
            )),
        })
    }

    /// Run a `pct`/`qm` command that runs a task in the foreground. On failure, a task of
    /// `task_type` for `vmid` that ended with the same error text makes it `TaskFailed` (with
    /// its UPID and the printed log); otherwise the error happened before any task and is
    /// classified from its message.
    async fn cli_task(
        &self,
        a: Vec<String>,
        task_type: &str,
        vmid: &str,
        timeout: Duration,
    ) -> Result<TaskDone> {
        let out = self.run(a, timeout).await?;
        let stderr = out.stderr_text();
        if out.code == 0 {
            let warnings = stderr
                .lines()
                .find_map(|l| {
                    l.strip_prefix("Task finished with ")
                        .and_then(|r| r.split_whitespace().next())
                        .and_then(|n| n.parse().ok())
                })
                .unwrap_or(0);
            return Ok(TaskDone {
                upid: None,
                warnings,
            });
        }
        let message = error_line(&stderr);
        if let Some(upid) = self.failed_task(task_type, vmid, &message).await {
            return Err(Error::TaskFailed {
                upid,
                exit_status: message,
                log_tail: tail(out.stdout_text().lines().map(str::to_string).collect()),
            });
        }
        Err(classify_stderr(&stderr))
    }

    /// The newest finished task of a type for a guest that failed with `message`.
    async fn failed_task(&self, task_type: &str, id: &str, message: &str) -> Option<String> {
        let node = self.node().await.ok()?;
        let list = self
            .get(
                &format!("/nodes/{node}/tasks"),
                &[
                    ("typefilter", s(task_type)),
                    ("source", s("all")),
                    ("limit", s(20)),
                ],
            )
            .await
            .ok()?;
        list.as_array()?
            .iter()
            .filter(|t| t["id"].as_str() == Some(id))
            .find(|t| {
                t["status"]
                    .as_str()
                    .is_some_and(|st| st == message.replace('\n', " "))
            })
            .and_then(|t| t["upid"].as_str().map(str::to_string))
    }

    /// Write bytes to a fresh temp file on the node (argv only: `mktemp`, then `tee`).
    async fn temp_file(&self, content: &[u8]) -> Result<String> {
        let path = self
            .check(
                argv(&["mktemp", "/tmp/phx.XXXXXXXX"]),
                self.opts.read_timeout,
            )
            .await?
            .stdout_text()
            .trim()
            .to_string();
        if path.is_empty() {
            return Err(Error::backend(
                BACKEND,
                "`mktemp /tmp/phx.XXXXXXXX` on the node printed no path; check that /tmp on the node exists and is writable",
            ));
        }
        let out = self
            .run_stdin(
                argv(&["tee", &path]),
                content.to_vec(),
                self.opts.read_timeout,
            )
            .await?;
        if out.code != 0 {
            self.remove(&path).await;
            return Err(Error::backend(
                BACKEND,
                format!(
                    "writing {path} on the node: {}; check the free space and permissions of /tmp there",
                    error_line(&out.stderr_text())
                ),
            ));
        }
        Ok(path)
    }

    async fn remove(&self, path: &str) {
        let _ = self
            .run(argv(&["rm", "-f", path]), self.opts.read_timeout)
            .await;
    }

    /// CLI options whose value must be a file on the node (`--ssh-public-keys`, `--sshkeys`):
    /// write the value to a temp file and pass its path. Returns the temp files to remove.
    async fn file_params(&self, params: &mut BTreeMap<String, String>) -> Result<Vec<String>> {
        let mut temps = Vec::new();
        for key in ["ssh-public-keys", "sshkeys"] {
            if let Some(v) = params.get(key).cloned() {
                let content = if key == "sshkeys" {
                    uri_unescape(&v)
                } else {
                    v
                };
                let p = self.temp_file(content.as_bytes()).await?;
                params.insert(key.to_string(), p.clone());
                temps.push(p);
            }
        }
        Ok(temps)
    }

    async fn read_conf(&self, path: &Path) -> std::result::Result<String, String> {
        if self.runner.is_local() {
            return std::fs::read_to_string(path).map_err(|e| e.to_string());
        }
        let out = self
            .run(
                vec![s("cat"), path.to_string_lossy().into_owned()],
                self.opts.read_timeout,
            )
            .await
            .map_err(|e| e.to_string())?;
        if out.code != 0 {
            return Err(error_line(&out.stderr_text()));
        }
        Ok(out.stdout_text())
    }

    async fn write_conf(&self, path: &Path, text: &str) -> Result<()> {
        if self.runner.is_local() {
            return std::fs::write(path, text)
                .map_err(|e| Error::io(format!("writing {}", path.display()), e));
        }
        let out = self
            .run_stdin(
                vec![s("tee"), path.to_string_lossy().into_owned()],
                text.as_bytes().to_vec(),
                self.opts.read_timeout,
            )
            .await?;
        if out.code != 0 {
            return Err(Error::backend(
                BACKEND,
                format!(
                    "writing {}: {}",
                    path.display(),
                    error_line(&out.stderr_text())
                ),
            ));
        }
        Ok(())
    }
}

fn tail(lines: Vec<String>) -> Vec<String> {
    let n = lines.len().saturating_sub(5);
    lines
        .into_iter()
        .skip(n)
        .filter(|l| !l.trim().is_empty())
        .collect()
}

impl Inner {
    async fn firewall(&self, base: &str) -> Result<FirewallState> {
        let options = parse::fw_options(&self.get(&format!("{base}/options"), &[]).await?);
        Ok(FirewallState {
            options,
            rules: self.fw_rules(base).await?,
        })
    }

    async fn fw_rules(&self, base: &str) -> Result<Vec<FirewallRule>> {
        self.read(&format!("{base}/rules"), &[], parse::fw_rules)
            .await
    }

    async fn set_fw_options(&self, base: &str, o: &FirewallOptions) -> Result<()> {
        self.write(
            "set",
            &format!("{base}/options"),
            &params::firewall_options(o),
            self.opts.read_timeout,
        )
        .await
        .map(|_| ())
    }

    /// Replace the rules with the writes [`params::replace_rules`] decides.
    async fn set_fw_rules(&self, base: &str, rules: &[FirewallRule]) -> Result<()> {
        let have = self.fw_rules(base).await?;
        for w in params::replace_rules(&have, rules) {
            let t = self.opts.read_timeout;
            match w {
                RuleWrite::Delete { pos } => {
                    self.write("delete", &format!("{base}/rules/{pos}"), &[], t)
                        .await?
                }
                RuleWrite::Create(p) => {
                    self.write("create", &format!("{base}/rules"), &p, t)
                        .await?
                }
            };
        }
        Ok(())
    }
}

impl Manager {
    fn base(&self, node: &NodeName, id: GuestId) -> String {
        format!("/nodes/{node}/{}/{id}", api_kind(self.kind))
    }
    fn word(&self) -> &'static str {
        if self.kind == GuestKind::Lxc {
            "vz"
        } else {
            "qm"
        }
    }
    async fn simple_task(
        &self,
        node: &NodeName,
        id: GuestId,
        verb: &str,
        extra: &[String],
        task: &str,
    ) -> Result<TaskDone> {
        self.inner.local(node).await?;
        let mut a = vec![s(tool(self.kind)), s(verb), s(id)];
        a.extend(extra.iter().cloned());
        self.inner
            .cli_task(a, task, &id.to_string(), self.inner.opts.task_timeout)
            .await
    }
}

#[async_trait]
impl GuestManager for Manager {
    fn kind(&self) -> GuestKind {
        self.kind
    }

    async fn status(&self, node: &NodeName, id: GuestId) -> Result<GuestSummary> {
        let path = format!("{}/status/current", self.base(node, id));
        self.inner
            .read(&path, &[], |v| parse::guest_status(v, self.kind, node))
            .await
    }

    async fn config(&self, node: &NodeName, id: GuestId) -> Result<GuestConfig> {
        let path = format!("{}/config", self.base(node, id));
        self.inner.read(&path, &[], parse::guest_config).await
    }

    async fn update_config(
        &self,
        node: &NodeName,
        id: GuestId,
        change: &ConfigUpdate,
    ) -> Result<()> {
        self.inner.local(node).await?;
        if change.is_empty() && change.digest.is_none() {
            return Ok(());
        }
        let mut params = change.set.clone();
        let temps = self.inner.file_params(&mut params).await?;
        let mut a = vec![s(tool(self.kind)), s("set"), s(id)];
        a.extend(opts_argv(&params));
        if !change.delete.is_empty() {
            a.extend([s("--delete"), change.delete.join(",")]);
        }
        if let Some(d) = &change.digest {
            a.extend([s("--digest"), d.clone()]);
        }
        let r = self
            .inner
            .check(a, self.inner.opts.task_timeout)
            .await
            .map(|_| ());
        for t in temps {
            self.inner.remove(&t).await;
        }
        r
    }

    async fn resize(
        &self,
        node: &NodeName,
        id: GuestId,
        disk: &str,
        size: DiskSize,
    ) -> Result<TaskDone> {
        self.inner.local(node).await?;
        let a = match self.kind {
            GuestKind::Lxc => vec![s("pct"), s("resize"), s(id), s(disk), s(size)],
            GuestKind::Vm => vec![s("qm"), s("disk"), s("resize"), s(id), s(disk), s(size)],
        };
        self.inner
            .cli_task(a, "resize", &id.to_string(), self.inner.opts.task_timeout)
            .await
    }

    async fn start(&self, node: &NodeName, id: GuestId) -> Result<TaskDone> {
        self.simple_task(node, id, "start", &[], &format!("{}start", self.word()))
            .await
    }

    async fn stop(&self, node: &NodeName, id: GuestId) -> Result<TaskDone> {
        self.simple_task(node, id, "stop", &[], &format!("{}stop", self.word()))
            .await
    }

    async fn shutdown(&self, node: &NodeName, id: GuestId, timeout: Duration) -> Result<TaskDone> {
        let extra = [
            s("--timeout"),
            s(timeout.as_secs().max(1)),
            s("--forceStop"),
            s("1"),
        ];
        self.simple_task(
            node,
            id,
            "shutdown",
            &extra,
            &format!("{}shutdown", self.word()),
        )
        .await
    }

    async fn reboot(&self, node: &NodeName, id: GuestId) -> Result<TaskDone> {
        self.simple_task(node, id, "reboot", &[], &format!("{}reboot", self.word()))
            .await
    }

    async fn destroy(
        &self,
        node: &NodeName,
        id: GuestId,
        opts: &DestroyOptions,
    ) -> Result<TaskDone> {
        let mut extra = Vec::new();
        if opts.purge {
            extra.extend([s("--purge"), s("1")]);
        }
        if opts.destroy_unreferenced_disks {
            extra.extend([s("--destroy-unreferenced-disks"), s("1")]);
        }
        self.simple_task(
            node,
            id,
            "destroy",
            &extra,
            &format!("{}destroy", self.word()),
        )
        .await
    }

    async fn snapshots(&self, node: &NodeName, id: GuestId) -> Result<Vec<SnapshotInfo>> {
        let path = format!("{}/snapshot", self.base(node, id));
        self.inner.read(&path, &[], parse::snapshots).await
    }

    async fn snapshot_create(
        &self,
        node: &NodeName,
        id: GuestId,
        name: &SnapshotName,
        description: &str,
    ) -> Result<TaskDone> {
        let mut extra = vec![s(name)];
        if !description.is_empty() {
            extra.extend([s("--description"), s(description)]);
        }
        self.simple_task(
            node,
            id,
            "snapshot",
            &extra,
            &format!("{}snapshot", self.word()),
        )
        .await
    }

    async fn snapshot_delete(
        &self,
        node: &NodeName,
        id: GuestId,
        name: &SnapshotName,
    ) -> Result<TaskDone> {
        self.simple_task(
            node,
            id,
            "delsnapshot",
            &[s(name)],
            &format!("{}delsnapshot", self.word()),
        )
        .await
    }

    async fn snapshot_rollback(
        &self,
        node: &NodeName,
        id: GuestId,
        name: &SnapshotName,
    ) -> Result<TaskDone> {
        self.simple_task(
            node,
            id,
            "rollback",
            &[s(name)],
            &format!("{}rollback", self.word()),
        )
        .await
    }

    async fn template(&self, node: &NodeName, id: GuestId) -> Result<()> {
        self.simple_task(
            node,
            id,
            "template",
            &[],
            &format!("{}template", self.word()),
        )
        .await
        .map(|_| ())
    }

    async fn firewall(&self, node: &NodeName, id: GuestId) -> Result<FirewallState> {
        self.inner
            .firewall(&format!("{}/firewall", self.base(node, id)))
            .await
    }

    async fn set_firewall_options(
        &self,
        node: &NodeName,
        id: GuestId,
        opts: &FirewallOptions,
    ) -> Result<()> {
        self.inner
            .set_fw_options(&format!("{}/firewall", self.base(node, id)), opts)
            .await
    }

    async fn set_firewall_rules(
        &self,
        node: &NodeName,
        id: GuestId,
        rules: &[FirewallRule],
    ) -> Result<()> {
        self.inner
            .set_fw_rules(&format!("{}/firewall", self.base(node, id)), rules)
            .await
    }
}

impl Manager {
    async fn clone_cli(&self, node: &NodeName, req: &CloneRequest) -> Result<TaskDone> {
        self.inner.local(node).await?;
        let name_key = if self.kind == GuestKind::Lxc {
            "--hostname"
        } else {
            "--name"
        };
        let mut a = vec![s(tool(self.kind)), s("clone"), s(req.source), s(req.target)];
        if let Some(n) = &req.name {
            a.extend([s(name_key), n.clone()]);
        }
        if let Some(sn) = &req.snapname {
            a.extend([s("--snapname"), sn.clone()]);
        }
        if let Some(st) = &req.storage {
            a.extend([s("--storage"), s(st)]);
        }
        a.extend([s("--full"), bool01(req.full)]);
        self.inner
            .cli_task(
                a,
                &format!("{}clone", self.word()),
                &req.source.to_string(),
                self.inner.opts.task_timeout,
            )
            .await
    }
}

/// `pct exec`'s own refusals (the command never ran), as opposed to the command's exit 255.
fn pct_refusal(stderr: &str) -> Option<Error> {
    let line = error_line(stderr);
    let own = (line.starts_with("container '") && line.ends_with("not running!"))
        || line.starts_with("Configuration file '")
        || line.ends_with("is locked")
        || line.contains(" is locked (")
        || line == "missing command";
    own.then(|| {
        if line.ends_with("not running!") {
            Error::Conflict {
                reason: phx_core::error::ConflictReason::NotRunning,
                message: line,
            }
        } else if line == "missing command" {
            Error::InvalidRequest {
                message: line,
                params: BTreeMap::new(),
            }
        } else {
            Error::from_proxmox_message(&line)
        }
    })
}

#[async_trait]
impl LxcManager for Manager {
    async fn create(&self, node: &NodeName, req: &LxcCreate) -> Result<TaskDone> {
        self.inner.local(node).await?;
        let mut params = req.params.clone();
        let temps = self.inner.file_params(&mut params).await?;
        let mut a = vec![s("pct"), s("create"), s(req.id), req.ostemplate.clone()];
        a.extend(opts_argv(&params));
        let r = self
            .inner
            .cli_task(
                a,
                "vzcreate",
                &req.id.to_string(),
                self.inner.opts.task_timeout,
            )
            .await;
        for t in temps {
            self.inner.remove(&t).await;
        }
        r
    }

    async fn clone_guest(&self, node: &NodeName, req: &CloneRequest) -> Result<TaskDone> {
        self.clone_cli(node, req).await
    }

    async fn set_raw_config(
        &self,
        node: &NodeName,
        id: GuestId,
        lines: &[(String, String)],
    ) -> Result<()> {
        self.inner.local(node).await?;
        if let Some((k, _)) = lines.iter().find(|(k, _)| !k.starts_with("lxc.")) {
            return Err(Error::InvalidRequest {
                message: format!("raw config key '{k}' does not start with lxc."),
                params: BTreeMap::new(),
            });
        }
        let path = self
            .inner
            .opts
            .pve_etc
            .join("lxc")
            .join(format!("{id}.conf"));
        let old = self
            .inner
            .read_conf(&path)
            .await
            .map_err(|e| Error::NotFound {
                what: format!("CT {id}"),
                message: format!(
                    "Configuration file 'nodes/{node}/lxc/{id}.conf' does not exist ({e})"
                ),
            })?;
        if let Some(l) = lxcconf::lock(&old) {
            return Err(Error::Locked {
                what: format!("CT {id}"),
                message: format!("CT is locked ({l})"),
            });
        }
        if lxcconf::raw_lxc(&old) == lines {
            return Ok(());
        }
        self.inner
            .write_conf(&path, &lxcconf::replace_raw_lxc(&old, lines))
            .await
    }

    async fn exec(&self, node: &NodeName, id: GuestId, req: &ExecRequest) -> Result<ExecOutput> {
        self.inner.local(node).await?;
        let mut a = vec![s("pct"), s("exec"), s(id), s("--keep-env"), s("0"), s("--")];
        a.extend(params::command_with_env(req));
        let out = self
            .inner
            .runner
            .run(&Cmd::new(a, req.timeout).live(req.live.clone()))
            .await
            .map_err(|e| match e {
                crate::runner::RunError::Timeout { after, .. } => Error::Timeout {
                    operation: format!("exec {} in CT {id}", req.argv.join(" ")),
                    after,
                },
                other => PctError::from(other).into(),
            })?;
        if out.code == 255
            && let Some(e) = pct_refusal(&out.stderr_text())
        {
            return Err(e);
        }
        Ok(ExecOutput {
            exit_code: out.code,
            stdout: out.stdout_text(),
            stderr: out.stderr_text(),
        })
    }

    async fn push(
        &self,
        node: &NodeName,
        id: GuestId,
        content: &[u8],
        dest: &str,
        mode: u32,
    ) -> Result<()> {
        self.inner.local(node).await?;
        let tmp = self.inner.temp_file(content).await?;
        let r = self
            .inner
            .check(
                vec![
                    s("pct"),
                    s("push"),
                    s(id),
                    tmp.clone(),
                    s(dest),
                    s("--perms"),
                    format!("{mode:04o}"),
                ],
                self.inner.opts.task_timeout,
            )
            .await;
        self.inner.remove(&tmp).await;
        r.map(|_| ())
    }
}

#[async_trait]
impl VmManager for Manager {
    async fn create(&self, node: &NodeName, req: &VmCreate) -> Result<TaskDone> {
        self.inner.local(node).await?;
        let mut params = req.params.clone();
        let temps = self.inner.file_params(&mut params).await?;
        let mut a = vec![s("qm"), s("create"), s(req.id)];
        a.extend(opts_argv(&params));
        let r = self
            .inner
            .cli_task(
                a,
                "qmcreate",
                &req.id.to_string(),
                self.inner.opts.task_timeout,
            )
            .await;
        for t in temps {
            self.inner.remove(&t).await;
        }
        r
    }

    async fn clone_guest(&self, node: &NodeName, req: &CloneRequest) -> Result<TaskDone> {
        self.clone_cli(node, req).await
    }

    async fn cloudinit_update(&self, node: &NodeName, id: GuestId) -> Result<()> {
        self.inner.local(node).await?;
        self.inner
            .check(
                vec![s("qm"), s("cloudinit"), s("update"), s(id)],
                self.inner.opts.task_timeout,
            )
            .await
            .map(|_| ())
    }

    async fn agent_ping(&self, node: &NodeName, id: GuestId) -> Result<()> {
        self.inner.local(node).await?;
        self.inner
            .check(
                vec![s("qm"), s("agent"), s(id), s("ping")],
                self.inner.opts.read_timeout,
            )
            .await
            .map(|_| ())
    }

    async fn agent_exec(
        &self,
        node: &NodeName,
        id: GuestId,
        req: &ExecRequest,
    ) -> Result<ExecOutput> {
        self.inner.local(node).await?;
        let secs = req.timeout.as_secs().max(1);
        let mut a = vec![
            s("qm"),
            s("guest"),
            s("exec"),
            s(id),
            s("--timeout"),
            s(secs),
            s("--"),
        ];
        a.extend(params::command_with_env(req));
        let out = self
            .inner
            .check(a, req.timeout + Duration::from_secs(30))
            .await?;
        match parse::guest_exec(&out.stdout_text())
            .map_err(|e| parse_error("qm guest exec", e.to_string()))?
        {
            GuestExec::Exited { exitcode, out, err } => Ok(ExecOutput {
                exit_code: exitcode,
                stdout: out,
                stderr: err,
            }),
            GuestExec::Running { pid } => Err(Error::Timeout {
                operation: format!(
                    "guest exec {} in VM {id} (guest pid {pid})",
                    req.argv.join(" ")
                ),
                after: req.timeout,
            }),
        }
    }

    async fn agent_file_read(&self, node: &NodeName, id: GuestId, path: &str) -> Result<AgentFile> {
        self.inner.local(node).await?;
        let api = format!("/nodes/{node}/qemu/{id}/agent/file-read");
        self.inner
            .read(&api, &[("file", s(path))], parse::agent_file_content)
            .await
    }

    async fn agent_file_write(
        &self,
        node: &NodeName,
        id: GuestId,
        path: &str,
        content: &[u8],
    ) -> Result<()> {
        use base64::Engine as _;
        let encoded = base64::engine::general_purpose::STANDARD.encode(content);
        // one argv string is limited to 128 KiB on Linux
        if encoded.len() > 120 * 1024 {
            return Err(Error::InvalidRequest {
                message: format!(
                    "{path}: {} bytes is too large for a guest-agent file-write through pvesh",
                    content.len()
                ),
                params: BTreeMap::new(),
            });
        }
        let p = [("file", s(path)), ("content", encoded), ("encode", s("0"))];
        self.inner
            .write(
                "create",
                &format!("/nodes/{node}/qemu/{id}/agent/file-write"),
                &p,
                self.inner.opts.read_timeout,
            )
            .await
            .map(|_| ())
    }
}

#[async_trait]
impl Hypervisor for PctBackend {
    fn name(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            lxc_exec: true,
            vm_agent: true,
            host_exec: true,
            raw_lxc_config: true,
            multi_node: false,
        }
    }

    fn lxc(&self) -> &dyn LxcManager {
        &self.lxc
    }

    fn vm(&self) -> &dyn VmManager {
        &self.vm
    }

    async fn version(&self) -> Result<Version> {
        self.inner.read("/version", &[], parse::version).await
    }

    async fn nodes(&self) -> Result<Vec<NodeInfo>> {
        self.inner.read("/nodes", &[], parse::nodes).await
    }

    async fn default_node(&self) -> Result<NodeName> {
        self.inner.node().await
    }

    async fn guests(&self) -> Result<Vec<GuestSummary>> {
        self.inner
            .read("/cluster/resources", &[("type", s("vm"))], parse::resources)
            .await
    }

    async fn active_tasks(&self, node: &NodeName, kind: Option<&str>) -> Result<Vec<ActiveTask>> {
        let path = format!("/nodes/{node}/tasks");
        let mut params = vec![("source", s("active"))];
        params.extend(kind.map(|k| ("typefilter", s(k))));
        self.inner.read(&path, &params, parse::active_tasks).await
    }

    async fn storages(&self, node: &NodeName) -> Result<Vec<StorageInfo>> {
        let path = format!("/nodes/{node}/storage");
        self.inner.read(&path, &[], parse::storages).await
    }

    async fn storage_content(
        &self,
        node: &NodeName,
        storage: &StorageId,
        content: Option<&str>,
    ) -> Result<Vec<VolumeInfo>> {
        let params: Vec<(&str, String)> = content.map(|c| ("content", s(c))).into_iter().collect();
        let path = format!("/nodes/{node}/storage/{storage}/content");
        self.inner.read(&path, &params, parse::volumes).await
    }

    async fn add_storage(&self, spec: &StorageSpec) -> Result<()> {
        let mut a = vec![s("pvesm"), s("add"), spec.kind.clone(), s(&spec.id)];
        if !spec.content.is_empty() {
            a.extend([s("--content"), spec.content.join(",")]);
        }
        a.extend(opts_argv(&spec.params));
        self.inner
            .check(a, self.inner.opts.read_timeout)
            .await
            .map(|_| ())
    }

    async fn set_storage_content(&self, storage: &StorageId, content: &[String]) -> Result<()> {
        self.inner
            .check(
                vec![
                    s("pvesm"),
                    s("set"),
                    s(storage),
                    s("--content"),
                    content.join(","),
                ],
                self.inner.opts.read_timeout,
            )
            .await
            .map(|_| ())
    }

    async fn remove_storage(&self, storage: &StorageId) -> Result<()> {
        self.inner
            .check(
                vec![s("pvesm"), s("remove"), s(storage)],
                self.inner.opts.read_timeout,
            )
            .await
            .map(|_| ())
    }

    async fn available_templates(&self, node: &NodeName) -> Result<Vec<String>> {
        let path = format!("/nodes/{node}/aplinfo");
        self.inner.read(&path, &[], parse::aplinfo).await
    }

    async fn download_template(
        &self,
        node: &NodeName,
        storage: &StorageId,
        template: &str,
    ) -> Result<TaskDone> {
        self.inner.local(node).await?;
        // pveam exits 0 even when its download task failed: read the task's result
        let out = self
            .inner
            .check(
                vec![s("pveam"), s("download"), s(storage), s(template)],
                self.inner.opts.task_timeout,
            )
            .await?;
        let list = self
            .inner
            .get(
                &format!("/nodes/{node}/tasks"),
                &[
                    ("typefilter", s("download")),
                    ("source", s("all")),
                    ("limit", s(20)),
                ],
            )
            .await?;
        let upid = list
            .as_array()
            .and_then(|l| l.iter().find(|t| t["id"].as_str() == Some(template)))
            .and_then(|t| t["upid"].as_str().map(str::to_string));
        match upid {
            Some(u) => {
                self.inner
                    .task_result(
                        &u,
                        out.stdout_text().lines().map(str::to_string).collect(),
                        &out.stderr_text(),
                    )
                    .await
            }
            None if !error_line(&out.stderr_text()).is_empty() => {
                Err(classify_stderr(&out.stderr_text()))
            }
            None => Ok(TaskDone::sync()),
        }
    }

    async fn download_url(
        &self,
        node: &NodeName,
        storage: &StorageId,
        content: &str,
        filename: &str,
        url: &str,
    ) -> Result<TaskDone> {
        let p = [
            ("content", s(content)),
            ("filename", s(filename)),
            ("url", s(url)),
        ];
        let (_, done) = self
            .inner
            .write(
                "create",
                &format!("/nodes/{node}/storage/{storage}/download-url"),
                &p,
                self.inner.opts.task_timeout,
            )
            .await?;
        Ok(done.unwrap_or_default())
    }

    async fn users(&self) -> Result<Vec<String>> {
        self.inner.read("/access/users", &[], parse::users).await
    }

    async fn add_user(&self, userid: &str, comment: &str) -> Result<()> {
        let mut p = vec![("userid", s(userid))];
        if !comment.is_empty() {
            p.push(("comment", s(comment)));
        }
        self.inner
            .write("create", "/access/users", &p, self.inner.opts.read_timeout)
            .await
            .map(|_| ())
    }

    async fn acl(&self) -> Result<Vec<(String, String, String)>> {
        self.inner.read("/access/acl", &[], parse::acl).await
    }

    async fn set_acl(&self, path: &str, userid: &str, role: &str) -> Result<()> {
        let p = [("path", s(path)), ("roles", s(role)), ("users", s(userid))];
        self.inner
            .write("set", "/access/acl", &p, self.inner.opts.read_timeout)
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
        let path = format!("/nodes/{node}/network");
        self.inner
            .read(&path, &[("type", s("bridge"))], parse::bridges)
            .await
    }

    async fn node_dns(&self, node: &NodeName) -> Result<(Option<String>, Vec<String>)> {
        Ok(parse::dns(
            &self.inner.get(&format!("/nodes/{node}/dns"), &[]).await?,
        ))
    }

    async fn set_node_dns(
        &self,
        node: &NodeName,
        search: &str,
        nameservers: &[String],
    ) -> Result<()> {
        let mut p = vec![("search", s(search))];
        for (k, v) in ["dns1", "dns2", "dns3"].into_iter().zip(nameservers) {
            p.push((k, v.clone()));
        }
        self.inner
            .write(
                "set",
                &format!("/nodes/{node}/dns"),
                &p,
                self.inner.opts.read_timeout,
            )
            .await
            .map(|_| ())
    }

    async fn node_timezone(&self, node: &NodeName) -> Result<String> {
        let path = format!("/nodes/{node}/time");
        self.inner.read(&path, &[], parse::timezone).await
    }

    async fn set_node_timezone(&self, node: &NodeName, tz: &str) -> Result<()> {
        self.inner
            .write(
                "set",
                &format!("/nodes/{node}/time"),
                &[("timezone", s(tz))],
                self.inner.opts.read_timeout,
            )
            .await
            .map(|_| ())
    }

    async fn host_exec(&self, node: &NodeName, req: &ExecRequest) -> Result<ExecOutput> {
        self.inner.local(node).await?;
        if req.argv.is_empty() {
            return Err(Error::InvalidRequest {
                message: "missing command".into(),
                params: BTreeMap::new(),
            });
        }
        let out = self
            .inner
            .runner
            .run(&Cmd::new(params::command_with_env(req), req.timeout).live(req.live.clone()))
            .await
            .map_err(|e| match e {
                crate::runner::RunError::Timeout { after, .. } => Error::Timeout {
                    operation: format!("{} on node {node}", req.argv.join(" ")),
                    after,
                },
                other => PctError::from(other).into(),
            })?;
        Ok(ExecOutput {
            exit_code: out.code,
            stdout: out.stdout_text(),
            stderr: out.stderr_text(),
        })
    }
}
