//! The host: `phx hypervisor setup` converges what phx manages itself through the backend
//! traits (storages, users and ACLs, the cluster firewall, node DNS and timezone, OS templates)
//! and then runs the site's own host steps (`<scripts-dir>/hypervisor_setup/*.sh`) through the
//! backend's host exec, in the shell tool's order, fail-fast.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use crate::backend::{ExecRequest, FirewallOptions, StorageSpec};
use crate::config::{DatasetStorageType, HYPERVISOR_FILE, LxcSource};
use crate::error::{Error, Result};
use crate::report::{Event, Reporter};
use crate::types::{FirewallRule, NodeName, StorageId};

use super::Engine;
use super::execute::reported;
use super::observe::World;

/// The host steps of a Phoenix install, in the order the shell tool runs them.
pub const HOST_STEPS: &[&str] = &[
    "hypervisor_initial_setup",
    "hypervisor_feature_setup_zfs",
    "hypervisor_feature_setup_firewall",
    "hypervisor_feature_setup_nfs",
    "hypervisor_feature_configure_vfio",
    "hypervisor_feature_install_nvidia",
    "hypervisor_feature_initialize_nvidia_gpus",
    "hypervisor_feature_setup_dns_server",
    "hypervisor_feature_create_heads_user",
    "hypervisor_feature_setup_samba",
    "hypervisor_feature_create_admin_user",
    "hypervisor_feature_provision_shared_resources",
    "hypervisor_feature_setup_apparmor",
    "hypervisor_feature_fix_apparmor_tunables",
    "hypervisor_feature_setup_auto_renewal",
];

/// Exit code with which a host step says "done, but the node must reboot before the rest".
pub const REBOOT_EXIT_CODE: i32 = 100;

/// What `phx hypervisor setup` does.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum HostStep {
    /// Add a storage.
    AddStorage(StorageSpec),
    /// Change a storage's content types.
    SetStorageContent {
        /// Storage.
        id: StorageId,
        /// New content types.
        content: Vec<String>,
    },
    /// Remove a storage definition (`--prune`).
    RemoveStorage {
        /// Storage.
        id: StorageId,
    },
    /// Create a Proxmox user.
    AddUser {
        /// `name@pam`.
        userid: String,
    },
    /// Grant a role.
    SetAcl {
        /// Path.
        path: String,
        /// User.
        userid: String,
        /// Role.
        role: String,
    },
    /// Cluster firewall options.
    FirewallOptions(FirewallOptions),
    /// Cluster firewall rules.
    FirewallRules {
        /// The complete new rule set.
        rules: Vec<FirewallRule>,
    },
    /// Node DNS.
    Dns {
        /// Search domain.
        search: String,
        /// Nameservers.
        servers: Vec<String>,
    },
    /// Node timezone.
    Timezone {
        /// Zone.
        tz: String,
    },
    /// Download an OS template.
    DownloadTemplate {
        /// Storage.
        storage: StorageId,
        /// File.
        template: String,
    },
    /// Run a site host step.
    Script {
        /// Step name (file name without `.sh`).
        name: String,
        /// The script.
        script: PathBuf,
        /// Arguments.
        args: Vec<String>,
        /// Content fingerprint (recorded when it succeeds).
        fingerprint: String,
    },
}

/// One planned host action.
#[derive(Debug, Clone, Serialize)]
pub struct HostAction {
    /// What to do.
    #[serde(flatten)]
    pub step: HostStep,
    /// Operation name.
    pub op: &'static str,
    /// Human detail.
    pub detail: String,
    /// Why.
    pub reason: String,
}

impl HostAction {
    fn new(step: HostStep, detail: impl Into<String>, reason: impl Into<String>) -> Self {
        let op = match &step {
            HostStep::AddStorage(_) => "add-storage",
            HostStep::SetStorageContent { .. } => "storage-content",
            HostStep::RemoveStorage { .. } => "remove-storage",
            HostStep::AddUser { .. } => "add-user",
            HostStep::SetAcl { .. } => "acl",
            HostStep::FirewallOptions(_) => "cluster-firewall-options",
            HostStep::FirewallRules { .. } => "cluster-firewall-rules",
            HostStep::Dns { .. } => "dns",
            HostStep::Timezone { .. } => "timezone",
            HostStep::DownloadTemplate { .. } => "download-template",
            HostStep::Script { .. } => "host-step",
        };
        Self {
            step,
            op,
            detail: detail.into(),
            reason: reason.into(),
        }
    }
}

/// Options of `phx hypervisor setup`.
#[derive(Debug, Clone, Default)]
pub struct HostOptions {
    /// Only these host steps (names without `.sh`, or with the `hypervisor_feature_` prefix left off).
    pub only: Vec<String>,
    /// Skip these host steps.
    pub skip: Vec<String>,
    /// Storages that may be removed when they are not in the config.
    pub prune: Vec<String>,
    /// Allow destructive host steps (ZFS `--mode force-destructive`).
    pub allow_destructive: bool,
    /// Host steps completed earlier: name -> fingerprint (skipped unless named with `only`).
    pub completed: BTreeMap<String, String>,
}

/// The host plan.
#[derive(Debug, Clone, Serialize)]
pub struct HostPlan {
    /// The node being set up.
    pub node: NodeName,
    /// Actions in order.
    pub actions: Vec<HostAction>,
    /// Drift reported but not changed.
    pub notes: Vec<String>,
    /// Backend reads made while planning.
    pub reads: u64,
}

/// How a host run ended.
#[derive(Debug, Clone, Serialize)]
pub struct HostResult {
    /// Actions done.
    pub done: Vec<HostAction>,
    /// Host steps that completed (name -> fingerprint), to remember.
    pub completed: BTreeMap<String, String>,
    /// The action that failed, with the error.
    pub failed: Option<(HostAction, String)>,
    /// A host step asked for a reboot: its name.
    pub reboot_required: Option<String>,
    /// Wall time, ms.
    pub duration_ms: u64,
}

fn matches_step(name: &str, wanted: &str) -> bool {
    let short = name
        .trim_start_matches("hypervisor_feature_")
        .trim_start_matches("hypervisor_");
    wanted == name || wanted == short || wanted.trim_end_matches(".sh") == name
}

/// How the cluster's firewall rules differ from the configured ones: field by field for each
/// rule that differs when there are as many as configured
/// (`rule 2 (in ACCEPT tcp dport 22): dport 2222 instead of 22`), else the rules missing and
/// those not configured.
fn rules_differ(have: &[FirewallRule], want: &[FirewallRule]) -> String {
    let changes = crate::types::rule_changes(have, want);
    let pick = |sign: &str| -> Vec<&str> {
        changes
            .iter()
            .filter_map(|c| c.strip_prefix(sign))
            .collect()
    };
    let (missing, extra) = (pick("+ "), pick("- "));
    if missing.is_empty() && extra.is_empty() {
        return "the configured rules are there, in another order".into();
    }
    if have.len() == want.len() {
        return have
            .iter()
            .zip(want)
            .enumerate()
            .filter(|(_, (h, w))| h != w)
            .map(|(i, (h, w))| {
                format!(
                    "rule {} ({}): {}",
                    i + 1,
                    w.describe(),
                    h.differences(w).join(", ")
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
    }
    let mut s = format!(
        "{} rule{} instead of the {} configured",
        have.len(),
        if have.len() == 1 { "" } else { "s" },
        want.len()
    );
    if !missing.is_empty() {
        s.push_str(&format!("; missing: {}", missing.join(", ")));
    }
    if !extra.is_empty() {
        s.push_str(&format!("; not configured: {}", extra.join(", ")));
    }
    s
}

impl Engine {
    /// The environment of every host script (setup steps and host tests): the hypervisor
    /// config file, the config dir and the node.
    fn host_script_env(&self, node: &NodeName, req: ExecRequest) -> ExecRequest {
        req.env(
            "PHX_HYPERVISOR_CONFIG",
            self.inv
                .config_dir
                .join(HYPERVISOR_FILE)
                .display()
                .to_string(),
        )
        .env("PHX_CONFIG_DIR", self.inv.config_dir.display().to_string())
        .env("PHX_NODE", node.to_string())
    }

    /// Plan `phx hypervisor setup` for the default node (or `--node`).
    pub async fn plan_host(&self, o: &HostOptions) -> Result<HostPlan> {
        let w = World::load(self.hv.as_ref(), self.opts.node.as_ref()).await?;
        let node = w.default_node.clone();
        let h = &self.inv.hypervisor;
        let mut actions = Vec::new();
        let mut notes = Vec::new();

        // storages: ZFS datasets and NFS exports
        let storages = w.storages(&node).await?;
        let mut wanted: Vec<StorageSpec> = Vec::new();
        if let Some(z) = &h.zfs {
            for ds in &z.datasets {
                let id =
                    StorageId::new(h.dataset_storage_id(ds)).map_err(|e| Error::InvalidConfig {
                        file: HYPERVISOR_FILE.into(),
                        path: "zfs.datasets".into(),
                        reason: e.to_string(),
                    })?;
                let (kind, params) = match ds.storage_type.unwrap_or(DatasetStorageType::Zfspool) {
                    DatasetStorageType::Zfspool => (
                        "zfspool",
                        BTreeMap::from([("pool".to_string(), format!("{}/{}", ds.pool, ds.name))]),
                    ),
                    DatasetStorageType::Dir => (
                        "dir",
                        BTreeMap::from([
                            ("path".to_string(), format!("/{}/{}", ds.pool, ds.name)),
                            ("shared".to_string(), "1".to_string()),
                        ]),
                    ),
                };
                wanted.push(StorageSpec {
                    id,
                    kind: kind.into(),
                    params,
                    content: ds.content.clone(),
                });
            }
        }
        let nfs_server = h.network.nfs_server.map(|a| a.to_string()).or_else(|| {
            h.network
                .interface
                .as_ref()
                .and_then(|i| i.address)
                .map(|c| c.addr().to_string())
        });
        for e in &h.nfs_exports {
            let base = e
                .path
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or("export");
            let Ok(id) = StorageId::new(format!("nfs-{base}")) else {
                notes.push(format!(
                    "NFS export {}: cannot derive a storage id from it",
                    e.path
                ));
                continue;
            };
            let Some(server) = nfs_server.clone() else {
                notes.push(format!(
                    "NFS export {}: no network.nfs_server or interface address to mount it from",
                    e.path
                ));
                continue;
            };
            let params = BTreeMap::from([
                ("server".to_string(), server),
                ("export".to_string(), e.path.clone()),
                (
                    "options".to_string(),
                    "vers=4,soft,timeo=30,retrans=3".to_string(),
                ),
            ]);
            wanted.push(StorageSpec {
                id,
                kind: "nfs".into(),
                params,
                content: ["images", "iso", "vztmpl", "backup", "snippets"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            });
        }
        for spec in &wanted {
            match storages.iter().find(|s| s.id == spec.id) {
                None => actions.push(HostAction::new(HostStep::AddStorage(spec.clone()), format!("{} ({}, content {})", spec.id, spec.kind, spec.content.join(",")), "in the config, not on the cluster")),
                Some(have) if have.kind != spec.kind => notes.push(format!("storage {} is a {} storage but the config wants {}; phx does not change storage types (remove it with `pvesm remove {}` to let phx recreate it)", spec.id, have.kind, spec.kind, spec.id)),
                Some(have) => {
                    let mut a: Vec<&String> = have.content.iter().collect();
                    let mut b: Vec<&String> = spec.content.iter().collect();
                    a.sort();
                    b.sort();
                    if a != b {
                        actions.push(HostAction::new(
                            HostStep::SetStorageContent { id: spec.id.clone(), content: spec.content.clone() },
                            format!("{}: {} -> {}", spec.id, have.content.join(","), spec.content.join(",")),
                            "content types differ",
                        ));
                    }
                }
            }
        }
        for p in &o.prune {
            let builtin = ["local", "local-lvm", "local-zfs"].contains(&p.as_str());
            match storages.iter().find(|s| s.id.as_str() == p) {
                Some(_) if wanted.iter().any(|w| w.id.as_str() == p) => notes.push(format!(
                    "--prune {p}: the storage is in the config; keeping it"
                )),
                Some(_) if builtin => {
                    notes.push(format!("--prune {p}: built-in storages are never removed"))
                }
                Some(s) => actions.push(HostAction::new(
                    HostStep::RemoveStorage { id: s.id.clone() },
                    s.id.to_string(),
                    "--prune names it and the config does not",
                )),
                None => notes.push(format!("--prune {p}: no such storage")),
            }
        }

        // users and ACLs
        if let Some(u) = &h.admin_user {
            let userid = format!("{}@pam", u.username);
            w.read();
            if !self.hv.users().await?.contains(&userid) {
                actions.push(HostAction::new(
                    HostStep::AddUser {
                        userid: userid.clone(),
                    },
                    userid.clone(),
                    "users.username",
                ));
            }
            if u.sudo_access {
                w.read();
                let acl = self.hv.acl().await?;
                if !acl
                    .iter()
                    .any(|(p, who, role)| p == "/" && *who == userid && role == "Administrator")
                {
                    actions.push(HostAction::new(
                        HostStep::SetAcl {
                            path: "/".into(),
                            userid: userid.clone(),
                            role: "Administrator".into(),
                        },
                        format!("Administrator on / for {userid}"),
                        "users.sudo_access",
                    ));
                }
            }
        }

        // cluster firewall, wherever the config nests it
        if let Some(fw) = &h.firewall {
            w.read();
            let have = self.hv.cluster_firewall().await?;
            let want = FirewallOptions {
                enable: Some(fw.enabled),
                policy_in: fw
                    .policy_in
                    .map(|p| p.to_string())
                    .or(have.options.policy_in.clone()),
                policy_out: fw
                    .policy_out
                    .map(|p| p.to_string())
                    .or(have.options.policy_out.clone()),
            };
            if have.options.enable.unwrap_or(false) != fw.enabled
                || have.options.policy_in != want.policy_in
                || have.options.policy_out != want.policy_out
            {
                actions.push(HostAction::new(
                    HostStep::FirewallOptions(want.clone()),
                    format!(
                        "enable={} policy_in={} policy_out={}",
                        u8::from(fw.enabled),
                        want.policy_in.as_deref().unwrap_or("-"),
                        want.policy_out.as_deref().unwrap_or("-")
                    ),
                    format!("{} differs", fw.found_at),
                ));
            }
            if have.rules != fw.rules {
                actions.push(HostAction::new(
                    HostStep::FirewallRules {
                        rules: fw.rules.clone(),
                    },
                    format!("{} rules", fw.rules.len()),
                    format!("{}.global_firewall_rules differ", fw.found_at),
                ));
            }
        }

        // node DNS and timezone
        let servers: Vec<String> = h
            .network
            .interface
            .as_ref()
            .map(|i| i.dns_nameservers.iter().map(ToString::to_string).collect())
            .unwrap_or_default();
        if h.domain_name.is_some() || !servers.is_empty() {
            w.read();
            let (search, have) = self.hv.node_dns(&node).await?;
            let want_search = h.domain_name.clone().or(search.clone()).unwrap_or_default();
            let want_servers = if servers.is_empty() {
                have.clone()
            } else {
                servers.iter().take(3).cloned().collect()
            };
            if search.as_deref() != Some(want_search.as_str()) || have != want_servers {
                actions.push(HostAction::new(
                    HostStep::Dns {
                        search: want_search.clone(),
                        servers: want_servers.clone(),
                    },
                    format!(
                        "search {want_search}, nameservers {}",
                        want_servers.join(" ")
                    ),
                    "domain_name / network.interfaces.dns_nameservers differ",
                ));
            }
        }
        if let Some(tz) = &h.timezone {
            w.read();
            if &self.hv.node_timezone(&node).await? != tz {
                actions.push(HostAction::new(
                    HostStep::Timezone { tz: tz.clone() },
                    tz.clone(),
                    "timezone differs",
                ));
            }
        }

        // OS templates referenced by containers
        let mut seen = Vec::new();
        for c in self.inv.lxc.values() {
            if let LxcSource::Template { template } = &c.source {
                if seen.contains(template) {
                    continue;
                }
                seen.push(template.clone());
                let pending: Vec<(StorageId, Vec<String>)> = actions
                    .iter()
                    .filter_map(|a| match &a.step {
                        HostStep::AddStorage(spec) => Some((spec.id.clone(), spec.content.clone())),
                        _ => None,
                    })
                    .collect();
                match self.resolve_template_with(&w, &node, template, &pending).await {
                    Ok((storage, file, false)) => {
                        if !actions.iter().any(|a| matches!(&a.step, HostStep::DownloadTemplate { template: t, .. } if *t == file)) {
                            actions.push(HostAction::new(HostStep::DownloadTemplate { storage: storage.clone(), template: file.clone() }, format!("{file} into {storage}"), format!("CT {} uses it", c.id)));
                        }
                    }
                    Ok(_) => {}
                    Err(e) => notes.push(format!("template of CT {}: {e}", c.id)),
                }
            }
        }

        // the site's host steps
        let dir = self.inv.scripts_dir.join("hypervisor_setup");
        let config = self.inv.config_dir.join(HYPERVISOR_FILE);
        for name in HOST_STEPS {
            let script = dir.join(format!("{name}.sh"));
            if !script.is_file() {
                continue;
            }
            if !o.only.is_empty() && !o.only.iter().any(|w| matches_step(name, w)) {
                continue;
            }
            if o.skip.iter().any(|w| matches_step(name, w)) {
                continue;
            }
            let content = std::fs::read(&script)
                .map_err(|e| Error::io(format!("reading {}", script.display()), e))?;
            let fp = super::record::fingerprint(&content);
            let done_before = o.completed.get(*name) == Some(&fp);
            if done_before && o.only.is_empty() {
                continue;
            }
            let args: Vec<String> = if *name == "hypervisor_feature_setup_zfs" {
                vec![
                    "--config".into(),
                    config.display().to_string(),
                    "--mode".into(),
                    if o.allow_destructive {
                        "force-destructive".into()
                    } else {
                        "safe".into()
                    },
                ]
            } else if *name == "hypervisor_feature_install_nvidia" {
                vec![config.display().to_string(), "--no-reboot".into()]
            } else {
                vec![config.display().to_string()]
            };
            let reason = if done_before {
                "named with --step"
            } else if o.completed.contains_key(*name) {
                "the script changed since it last ran"
            } else {
                "not run on this node yet"
            };
            actions.push(HostAction::new(
                HostStep::Script {
                    name: (*name).to_string(),
                    script,
                    args,
                    fingerprint: fp,
                },
                *name,
                reason,
            ));
        }
        for w in o.only.iter().chain(&o.skip) {
            if !HOST_STEPS.iter().any(|n| matches_step(n, w)) {
                return Err(Error::InvalidRequest {
                    message: format!(
                        "unknown host step {w:?}; the steps are: {}",
                        HOST_STEPS
                            .iter()
                            .map(|s| s
                                .trim_start_matches("hypervisor_feature_")
                                .trim_start_matches("hypervisor_"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    params: BTreeMap::new(),
                });
            }
        }
        let reads = w.reads.load(std::sync::atomic::Ordering::Relaxed);
        Ok(HostPlan {
            node,
            actions,
            notes,
            reads,
        })
    }

    /// Execute a host plan, fail-fast. A host step exiting with [`REBOOT_EXIT_CODE`] stops the
    /// run and asks for a reboot; the next run continues after it.
    pub async fn apply_host(
        &self,
        plan: &HostPlan,
        o: &HostOptions,
        reporter: &dyn Reporter,
    ) -> HostResult {
        let t0 = Instant::now();
        let mut res = HostResult {
            done: Vec::new(),
            completed: BTreeMap::new(),
            failed: None,
            reboot_required: None,
            duration_ms: 0,
        };
        let hv = self.hv.as_ref();
        let node = &plan.node;
        for a in &plan.actions {
            if self.opts.cancel.is_cancelled() {
                break;
            }
            let s0 = Instant::now();
            reporter.report(&Event::HostStepStarted {
                op: a.op,
                detail: &a.detail,
            });
            let r: Result<Option<i32>> = async {
                match &a.step {
                    HostStep::AddStorage(spec) => hv.add_storage(spec).await.map(|_| None),
                    HostStep::SetStorageContent { id, content } => {
                        hv.set_storage_content(id, content).await.map(|_| None)
                    }
                    HostStep::RemoveStorage { id } => hv.remove_storage(id).await.map(|_| None),
                    HostStep::AddUser { userid } => {
                        hv.add_user(userid, "managed by phx").await.map(|_| None)
                    }
                    HostStep::SetAcl { path, userid, role } => {
                        hv.set_acl(path, userid, role).await.map(|_| None)
                    }
                    HostStep::FirewallOptions(opts) => {
                        hv.set_cluster_firewall_options(opts).await.map(|_| None)
                    }
                    HostStep::FirewallRules { rules } => {
                        hv.set_cluster_firewall_rules(rules).await.map(|_| None)
                    }
                    HostStep::Dns { search, servers } => {
                        hv.set_node_dns(node, search, servers).await.map(|_| None)
                    }
                    HostStep::Timezone { tz } => hv.set_node_timezone(node, tz).await.map(|_| None),
                    HostStep::DownloadTemplate { storage, template } => hv
                        .download_template(node, storage, template)
                        .await
                        .map(|_| None),
                    HostStep::Script {
                        name, script, args, ..
                    } => {
                        let mut argv = vec![script.display().to_string()];
                        argv.extend(args.iter().cloned());
                        let req = self
                            .host_script_env(node, ExecRequest::new(argv))
                            .timeout(self.opts.script_timeout)
                            .env(
                                "PHX_ALLOW_DESTRUCTIVE",
                                if o.allow_destructive { "1" } else { "0" },
                            )
                            .env("PHX_NONINTERACTIVE", "1")
                            .env("DEBIAN_FRONTEND", "noninteractive");
                        let say = |line: &str| {
                            reporter.report(&Event::HostOutput { source: name, line });
                        };
                        let out = reported(say, |live| {
                            let req = req.live(live);
                            async move { hv.host_exec(node, &req).await }
                        })
                        .await?;
                        match out.exit_code {
                            0 => Ok(None),
                            REBOOT_EXIT_CODE => Ok(Some(REBOOT_EXIT_CODE)),
                            code => {
                                let tail: Vec<&str> = out
                                    .stdout
                                    .lines()
                                    .chain(out.stderr.lines())
                                    .filter(|l| !l.trim().is_empty())
                                    .collect();
                                let tail = tail[tail.len().saturating_sub(10)..].join("\n    ");
                                Err(Error::Refused {
                                    message: format!(
                                        "host step {name} ({}) failed with exit code {code}{}",
                                        script.display(),
                                        if tail.is_empty() {
                                            String::new()
                                        } else {
                                            format!(":\n    {tail}")
                                        }
                                    ),
                                })
                            }
                        }
                    }
                }
            }
            .await;
            let err = r.as_ref().err().map(ToString::to_string);
            reporter.report(&Event::HostStepFinished {
                op: a.op,
                duration: s0.elapsed(),
                error: err.as_deref(),
            });
            match r {
                Ok(code) => {
                    if let HostStep::Script {
                        name, fingerprint, ..
                    } = &a.step
                    {
                        res.completed.insert(name.clone(), fingerprint.clone());
                        if code == Some(REBOOT_EXIT_CODE) {
                            res.done.push(a.clone());
                            res.reboot_required = Some(name.clone());
                            break;
                        }
                    }
                    res.done.push(a.clone());
                }
                Err(e) => {
                    res.failed = Some((a.clone(), e.to_string()));
                    break;
                }
            }
        }
        res.duration_ms = t0.elapsed().as_millis() as u64;
        res
    }
}

/// Results of `phx hypervisor test`.
#[derive(Debug, Clone, Serialize)]
pub struct HostTestReport {
    /// The node checked.
    pub node: NodeName,
    /// Results, built-in checks first.
    pub results: Vec<super::suite::TestResult>,
}

impl HostTestReport {
    /// Failed count.
    pub fn failed(&self) -> usize {
        self.results.iter().filter(|r| !r.passed).count()
    }
}

/// The name of the built-in host suite.
pub const BUILTIN_SUITE: &str = "builtin";

impl Engine {
    /// Suites `phx hypervisor test` knows: `builtin` and the config's `tests`.
    pub fn host_suites(&self) -> Vec<String> {
        std::iter::once(BUILTIN_SUITE.to_string())
            .chain(self.inv.hypervisor.tests.keys().cloned())
            .collect()
    }

    /// Check the host: built-in checks, then the host test scripts of the config.
    pub async fn test_host(
        &self,
        suite: Option<&str>,
        reporter: &dyn Reporter,
    ) -> Result<HostTestReport> {
        if let Some(s) = suite
            && !self.host_suites().iter().any(|x| x == s)
        {
            return Err(Error::NotFound {
                what: format!("suite {s}"),
                message: format!(
                    "no host test suite {s:?}; available: {}",
                    self.host_suites().join(", ")
                ),
            });
        }
        let node = match &self.opts.node {
            Some(n) => n.clone(),
            None => self.hv.default_node().await?,
        };
        let mut results = Vec::new();
        if suite.is_none_or(|s| s == BUILTIN_SUITE) {
            self.builtin_checks(&node, reporter, &mut results).await;
        }
        for (name, cases) in &self.inv.hypervisor.tests {
            if suite.is_some_and(|s| s != name) {
                continue;
            }
            for case in cases {
                let t0 = Instant::now();
                reporter.report(&Event::HostStepStarted {
                    op: "test",
                    detail: &case.name,
                });
                let script = self.inv.test_script(&case.path);
                let req = self
                    .host_script_env(&node, ExecRequest::new([script.display().to_string()]))
                    .timeout(std::time::Duration::from_secs(600));
                let say = |line: &str| {
                    reporter.report(&Event::HostOutput {
                        source: &case.name,
                        line,
                    });
                };
                let (passed, exit_code, output) = if !script.is_file() {
                    let missing = format!("test script {} does not exist", script.display());
                    say(&missing);
                    (false, -1, missing)
                } else {
                    let node = &node;
                    let ran = reported(say, |live| {
                        let req = req.live(live);
                        async move { self.hv.host_exec(node, &req).await }
                    })
                    .await;
                    match ran {
                        Ok(o) => (
                            o.success(),
                            o.exit_code,
                            format!("{}{}", o.stdout, o.stderr),
                        ),
                        Err(e) => {
                            let e = e.to_string();
                            e.lines().for_each(&say);
                            (false, -1, e)
                        }
                    }
                };
                let err = (!passed).then(|| format!("exit code {exit_code}"));
                reporter.report(&Event::HostStepFinished {
                    op: "test",
                    duration: t0.elapsed(),
                    error: err.as_deref(),
                });
                results.push(super::suite::TestResult {
                    suite: name.clone(),
                    name: case.name.clone(),
                    path: case.path.clone(),
                    passed,
                    exit_code,
                    output,
                    duration: t0.elapsed(),
                });
            }
        }
        Ok(HostTestReport { node, results })
    }

    async fn builtin_checks(
        &self,
        node: &NodeName,
        reporter: &dyn Reporter,
        out: &mut Vec<super::suite::TestResult>,
    ) {
        let mut check = |name: &str, r: std::result::Result<String, String>, t0: Instant| {
            let (passed, output) = match r {
                Ok(s) => (true, s),
                Err(s) => (false, s),
            };
            reporter.report(&Event::HostStepFinished {
                op: "check",
                duration: t0.elapsed(),
                error: (!passed).then_some(output.as_str()),
            });
            out.push(super::suite::TestResult {
                suite: BUILTIN_SUITE.into(),
                name: name.into(),
                path: String::new(),
                passed,
                exit_code: if passed { 0 } else { 1 },
                output,
                duration: t0.elapsed(),
            });
        };
        let h = &self.inv.hypervisor;
        // backend reachable
        let t0 = Instant::now();
        let version = self.hv.version().await;
        let reachable = version.is_ok();
        check(
            "backend reachable",
            version
                .map(|v| {
                    format!(
                        "Proxmox VE {} through the {} backend",
                        v.version,
                        self.hv.name()
                    )
                })
                .map_err(|e| e.to_string()),
            t0,
        );
        if !reachable {
            return;
        }
        // storages: configured on the host, and used by guests
        let t0 = Instant::now();
        let storages = self.hv.storages(node).await;
        let r = match &storages {
            Err(e) => Err(e.to_string()),
            Ok(list) => {
                let mut wanted: Vec<String> = h
                    .zfs
                    .iter()
                    .flat_map(|z| z.datasets.iter().map(|d| h.dataset_storage_id(d)))
                    .collect();
                wanted.extend(h.nfs_exports.iter().map(|e| {
                    format!(
                        "nfs-{}",
                        e.path
                            .trim_end_matches('/')
                            .rsplit('/')
                            .next()
                            .unwrap_or("")
                    )
                }));
                for g in self.inv.lxc.values() {
                    wanted.push(g.storage_pool.to_string());
                }
                for v in self.inv.vms.values() {
                    wanted.push(v.storage_pool.to_string());
                }
                wanted.sort();
                wanted.dedup();
                let bad: Vec<String> = wanted
                    .iter()
                    .filter_map(|w| match list.iter().find(|s| s.id.as_str() == w) {
                        None => Some(format!("{w} missing")),
                        Some(s) if !s.active || !s.enabled => Some(format!("{w} not active")),
                        Some(_) => None,
                    })
                    .collect();
                if bad.is_empty() {
                    Ok(format!(
                        "{} storages present and active: {}",
                        wanted.len(),
                        wanted.join(", ")
                    ))
                } else {
                    Err(format!("{} (run `phx hypervisor setup`)", bad.join("; ")))
                }
            }
        };
        check("storages present and active", r, t0);
        // templates
        let t0 = Instant::now();
        let world = World::for_apply(self.hv.as_ref(), node.clone());
        let mut missing = Vec::new();
        let mut found = Vec::new();
        for c in self.inv.lxc.values() {
            if let LxcSource::Template { template } = &c.source {
                match self.resolve_template(&world, node, template).await {
                    Ok((s, f, true)) => found.push(format!("{s}:vztmpl/{f}")),
                    Ok((s, f, false)) => missing.push(format!("{f} (not in {s})")),
                    Err(e) => missing.push(e),
                }
            }
        }
        found.sort();
        found.dedup();
        missing.sort();
        missing.dedup();
        check(
            "templates present",
            if missing.is_empty() {
                Ok(format!("{} template(s): {}", found.len(), found.join(", ")))
            } else {
                Err(format!(
                    "{} (run `phx hypervisor setup`)",
                    missing.join("; ")
                ))
            },
            t0,
        );
        // firewall
        if let Some(fw) = &h.firewall {
            let t0 = Instant::now();
            let r = match self.hv.cluster_firewall().await {
                Err(e) => Err(e.to_string()),
                Ok(have) => {
                    let mut bad = Vec::new();
                    if have.options.enable.unwrap_or(false) != fw.enabled {
                        bad.push(format!(
                            "firewall is {} but the config says {}",
                            if have.options.enable.unwrap_or(false) {
                                "enabled"
                            } else {
                                "disabled"
                            },
                            if fw.enabled { "enabled" } else { "disabled" }
                        ));
                    }
                    if let Some(p) = fw.policy_in
                        && have.options.policy_in.as_deref() != Some(&p.to_string())
                    {
                        bad.push(format!(
                            "input policy {} instead of {p}",
                            have.options.policy_in.as_deref().unwrap_or("unset")
                        ));
                    }
                    if have.rules != fw.rules {
                        bad.push(rules_differ(&have.rules, &fw.rules));
                    }
                    if bad.is_empty() {
                        Ok(format!(
                            "{} with {} rules",
                            if fw.enabled { "enabled" } else { "disabled" },
                            fw.rules.len()
                        ))
                    } else {
                        Err(bad.join("; "))
                    }
                }
            };
            check("cluster firewall as configured", r, t0);
        }
        // users
        if let Some(u) = &h.admin_user {
            let t0 = Instant::now();
            let userid = format!("{}@pam", u.username);
            let r = match self.hv.users().await {
                Err(e) => Err(e.to_string()),
                Ok(users) if !users.contains(&userid) => Err(format!(
                    "user {userid} does not exist (run `phx hypervisor setup`)"
                )),
                Ok(_) => Ok(format!("{userid} exists")),
            };
            check("admin user present", r, t0);
        }
        // bridges named by guests
        let t0 = Instant::now();
        let mut bridges: Vec<String> = self
            .inv
            .lxc
            .values()
            .filter_map(|c| c.network.as_ref().map(|n| n.bridge.clone()))
            .chain(self.inv.vms.values().map(|v| v.network_bridge.clone()))
            .collect();
        bridges.sort();
        bridges.dedup();
        let r = match self.hv.bridges(node).await {
            Err(e) => Err(e.to_string()),
            Ok(have) => {
                let missing: Vec<&String> = bridges.iter().filter(|b| !have.contains(b)).collect();
                if missing.is_empty() {
                    Ok(format!("{} present on {node}", bridges.join(", ")))
                } else {
                    Err(format!(
                        "bridge{} {} missing on node {node} (have: {})",
                        if missing.len() == 1 { "" } else { "s" },
                        missing
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        have.join(", ")
                    ))
                }
            }
        };
        check("bridges used by guests exist", r, t0);
    }
}
