//! The engine: observe -> plan -> execute.
//!
//! [`Engine::plan`] reads the cluster and diffs every guest's desired state (from the
//! [`Inventory`]) against what it has, producing a [`Plan`] whose actions each carry their
//! reason. [`Engine::apply`] executes a plan on a DAG scheduler with bounded concurrency and
//! the retry rule of [`retry`]. The executor is the only code that calls mutating backend
//! methods, so a dry run (plan without apply) changes nothing by construction.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//!
//! use phx_core::config::{Inventory, LoadOptions};
//! use phx_core::engine::{Engine, Operation};
//! use phx_core::report::{NullReporter, Outcome};
//!
//! let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/homelab");
//! let inventory = Inventory::load(&LoadOptions {
//!     config_dir: example.join("etc"),
//!     scripts_dir: Some(example.join("bin")),
//! })?;
//! // any backend: the fake here, `phx-backend-pct` or `phx-backend-api` on a real cluster
//! let hv = Arc::new(phx_testkit::FakeBackend::new(phx_testkit::FakeCluster::new()));
//! let engine = Engine::new(hv, inventory);
//! let ids = engine.inventory().ids();
//! let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! let result = rt.block_on(async {
//!     let plan = engine.plan(&ids, Operation::Up).await?;
//!     println!("{} changes in {} guests", plan.changes(), plan.guests.len());
//!     Ok::<_, phx_core::Error>(engine.apply(&plan, &NullReporter).await)
//! })?;
//! assert_eq!(result.count(Outcome::Changed), ids.len());
//! # Ok(()) }
//! ```

mod execute;
pub mod host;
mod lxc;
mod observe;
mod plan;
mod preflight;
mod record;
pub mod retry;
mod scheduler;
pub mod suite;
mod vm;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde::Serialize;

use observe::Observed;
pub use plan::{Action, Change, GuestPlan, Operation, Plan, Presence, Step};
pub use retry::RetryPolicy;

use crate::backend::{
    CloneRequest, ExecRequest, GuestConfig, Hypervisor, LxcCreate, PowerState, VmCreate, manager,
};
use crate::config::{Guest, Inventory, LxcSource, VmSource};
use crate::error::{Error, Result};
use crate::graph::{DepGraph, boot_order};
use crate::report::Outcome;
use crate::types::{GuestId, GuestKind, NodeName, SnapshotName, StorageId};
use observe::World;

/// Cooperative cancellation: stops dispatching new work; in-flight steps finish.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// Request cancellation.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    /// Whether cancellation was requested.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Guests worked on at once (default 4).
    pub jobs: usize,
    /// Retry rule for retryable errors.
    pub retry: RetryPolicy,
    /// Node for new guests without a `node` key (default: the backend's default node).
    pub node: Option<NodeName>,
    /// Cancellation.
    pub cancel: CancelToken,
    /// How long `start` waits for a VM's guest agent.
    pub agent_timeout: Duration,
    /// Clean shutdown timeout before a hard stop (`stop`, `down`).
    pub shutdown_timeout: Duration,
    /// Run features again even when recorded as applied.
    pub rerun_features: bool,
    /// Timeout of one feature script or application script.
    pub script_timeout: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            jobs: 4,
            retry: RetryPolicy::default(),
            node: None,
            cancel: CancelToken::default(),
            agent_timeout: Duration::from_secs(300),
            shutdown_timeout: Duration::from_secs(60),
            rerun_features: false,
            script_timeout: Duration::from_secs(1800),
        }
    }
}

/// Runs plans against one backend for one inventory.
#[derive(Debug, Clone)]
pub struct Engine {
    hv: Arc<dyn Hypervisor>,
    inv: Arc<Inventory>,
    graph: DepGraph,
    opts: EngineOptions,
}

/// Counters of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Backend reads (plan and apply).
    pub backend_reads: u64,
    /// Backend writes.
    pub backend_writes: u64,
    /// Proxmox tasks run.
    pub tasks: u64,
    /// Wall time of apply, milliseconds.
    pub duration_ms: u64,
}

/// What happened to one guest.
#[derive(Debug, Clone, Serialize)]
pub struct GuestResult {
    /// Id.
    pub id: GuestId,
    /// Kind.
    pub kind: GuestKind,
    /// Name.
    pub name: String,
    /// Outcome.
    pub outcome: Outcome,
    /// Actions actually executed.
    pub actions: Vec<Action>,
    /// Drift reported but not changed, and warnings.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Why it failed or was skipped.
    pub error: Option<String>,
}

/// The result of [`Engine::apply`].
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    /// Per guest, in plan order.
    pub guests: Vec<GuestResult>,
    /// Counters.
    pub stats: Stats,
    /// Whether the run was cancelled.
    pub cancelled: bool,
}

impl RunResult {
    /// Guests with this outcome.
    pub fn count(&self, o: Outcome) -> usize {
        self.guests.iter().filter(|g| g.outcome == o).count()
    }
    /// `ok` (nothing failed or skipped), `failed` (nothing succeeded that failed... none
    /// changed or unchanged), or `partial`.
    pub fn result(&self) -> &'static str {
        let bad = self.count(Outcome::Failed) + self.count(Outcome::Skipped);
        if bad == 0 {
            "ok"
        } else if bad == self.guests.len() {
            "failed"
        } else {
            "partial"
        }
    }
}

fn cycle_error(c: crate::graph::Cycle) -> Error {
    Error::InvalidConfig {
        file: "config".into(),
        path: "dependencies".into(),
        reason: c.to_string(),
    }
}

impl Engine {
    /// An engine with default options.
    pub fn new(hv: Arc<dyn Hypervisor>, inv: Inventory) -> Self {
        let graph = DepGraph::new(&inv);
        Self {
            hv,
            inv: Arc::new(inv),
            graph,
            opts: EngineOptions::default(),
        }
    }

    /// Replace the options.
    pub fn with_options(mut self, opts: EngineOptions) -> Self {
        self.opts = opts;
        self
    }

    /// The options.
    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    /// The inventory.
    pub fn inventory(&self) -> &Inventory {
        &self.inv
    }

    /// The dependency graph.
    pub fn graph(&self) -> &DepGraph {
        &self.graph
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<dyn Hypervisor> {
        &self.hv
    }

    fn check_targets(&self, targets: &[GuestId]) -> Result<()> {
        for t in targets {
            if self.inv.guest(*t).is_none() {
                return Err(Error::NotFound {
                    what: format!("guest {t}"),
                    message: format!(
                        "{t} is not defined in phoenix_lxc_configs.json or phoenix_vm_configs.json"
                    ),
                });
            }
        }
        Ok(())
    }

    /// Plan `op` for `targets` (empty targets mean every defined guest for `up`/`down`).
    /// A plan only reads; [`Engine::preflight`] says whether it can run.
    pub async fn plan(&self, targets: &[GuestId], op: Operation) -> Result<Plan> {
        self.check_targets(targets)?;
        let all;
        let targets = if targets.is_empty() && matches!(op, Operation::Up | Operation::Down) {
            all = self.inv.ids();
            &all[..]
        } else {
            targets
        };
        let world = World::load(self.hv.as_ref(), self.opts.node.as_ref()).await?;
        let mut plan = match op {
            Operation::Converge { .. } | Operation::Up => {
                self.plan_converge(&world, targets, op).await?
            }
            Operation::Start | Operation::Restart => self.plan_power(&world, targets, op).await?,
            Operation::Stop { .. } | Operation::Down => self.plan_stop(&world, targets, op).await?,
            Operation::Delete { force } => self.plan_delete(&world, targets, force).await?,
        };
        plan.reads = world.reads.load(Ordering::Relaxed);
        Ok(plan)
    }

    async fn observe_all(
        &self,
        w: &World<'_>,
        ids: &[GuestId],
    ) -> Result<BTreeMap<GuestId, Observed>> {
        let mut out = BTreeMap::new();
        let mut futs = FuturesUnordered::new();
        let mut it = ids.iter();
        let limit = (self.opts.jobs * 2).max(4);
        loop {
            while futs.len() < limit {
                let Some(id) = it.next() else { break };
                let Some(g) = self.inv.guest(*id) else {
                    continue;
                };
                let want_fw = g.firewall().is_some();
                let kind = g.kind();
                let id = *id;
                futs.push(async move { (id, w.observe(id, kind, want_fw).await) });
            }
            match futs.next().await {
                Some((id, r)) => {
                    out.insert(id, r?);
                }
                None => break,
            }
        }
        Ok(out)
    }

    fn base_plan(
        &self,
        g: &Guest<'_>,
        node: NodeName,
        presence: Presence,
        target: bool,
    ) -> GuestPlan {
        GuestPlan {
            id: g.id(),
            kind: g.kind(),
            name: g.name().to_string(),
            node,
            presence,
            actions: Vec::new(),
            notes: Vec::new(),
            error: None,
            boot_start: false,
            target,
        }
    }

    fn node_for(&self, w: &World<'_>, g: &Guest<'_>, o: &Observed) -> NodeName {
        o.summary
            .as_ref()
            .map(|s| s.node.clone())
            .or_else(|| g.node().cloned())
            .or_else(|| self.opts.node.clone())
            .unwrap_or_else(|| w.default_node.clone())
    }

    async fn plan_converge(
        &self,
        w: &World<'_>,
        targets: &[GuestId],
        op: Operation,
    ) -> Result<Plan> {
        let order = self.graph.order(targets).map_err(cycle_error)?;
        let require_existing = matches!(
            op,
            Operation::Converge {
                require_existing: true
            }
        );
        let target_set: BTreeSet<GuestId> = targets.iter().copied().collect();
        // Clone sources of guests that will be created need their snapshot (and their config,
        // to predict the clone); other existing prerequisites are not read at all.
        let absent: BTreeSet<GuestId> = order
            .iter()
            .copied()
            .filter(|id| !w.guests.contains_key(id))
            .collect();
        let needed_sources: BTreeSet<GuestId> = absent
            .iter()
            .filter_map(|id| self.inv.guest(*id).and_then(|g| g.clone_source()))
            .collect();
        let to_read: Vec<GuestId> = order
            .iter()
            .copied()
            .filter(|id| target_set.contains(id) || needed_sources.contains(id))
            .collect();
        let mut obs = self.observe_all(w, &to_read).await?;
        for id in &order {
            if !obs.contains_key(id) {
                obs.insert(
                    *id,
                    Observed {
                        summary: w.guests.get(id).cloned(),
                        config: None,
                        firewall: None,
                    },
                );
            }
        }
        let needed_running = self.needed_running(&order, &target_set, w);
        let mut predicted: BTreeMap<GuestId, (NodeName, GuestConfig)> = BTreeMap::new();
        let mut guests = Vec::new();
        for id in &order {
            let Some(g) = self.inv.guest(*id) else {
                continue;
            };
            let o = obs.get(id).cloned().unwrap_or_default();
            let target = target_set.contains(id);
            let mut node = self.node_for(w, &g, &o);
            // a clone is created on its source's node
            if o.summary.is_none()
                && let Some(src) = g.clone_source().and_then(|s| predicted.get(&s))
            {
                node = src.0.clone();
            }
            let mut gp = match &o.summary {
                None => {
                    if require_existing && target {
                        return Err(Error::NotFound {
                            what: format!("{} {id}", g.kind().proxmox_word()),
                            message: format!(
                                "{} {id} ({}) does not exist on the cluster; create it with `phx {} create {id}`",
                                g.kind().proxmox_word(),
                                g.name(),
                                g.kind().noun()
                            ),
                        });
                    }
                    let mut gp = self.base_plan(&g, node.clone(), Presence::Absent, target);
                    match self.create_actions(w, &g, &node, &predicted).await {
                        Ok((acts, cfg)) => {
                            gp.actions = acts;
                            gp.actions.push(Action::new(
                                Step::Converge,
                                "",
                                "new guest: apply what its config still needs",
                            ));
                            let (follow, notes, err) = self
                                .converge_actions(
                                    w,
                                    &g,
                                    &node,
                                    &cfg,
                                    None,
                                    false,
                                    true,
                                    op,
                                    needed_running.contains(id),
                                )
                                .await?;
                            let mut after = cfg.clone();
                            if err.is_none() {
                                for a in follow {
                                    predict_step(&mut after, &a.step);
                                    gp.actions.push(Action {
                                        predicted: true,
                                        ..a
                                    });
                                }
                            }
                            gp.notes = notes;
                            gp.error = err;
                            predicted.insert(*id, (node.clone(), after));
                        }
                        Err(e) => gp.error = Some(e),
                    }
                    gp
                }
                Some(s) if s.kind != g.kind() => {
                    let mut gp = self.base_plan(&g, node, Presence::Other, target);
                    gp.error = Some(format!(
                        "id {id} is a {} on the cluster (name {}), but the config defines a {}; the id was reused — fix the config or remove the other guest",
                        s.kind.proxmox_word(),
                        s.name.as_deref().unwrap_or("?"),
                        g.kind().proxmox_word()
                    ));
                    gp
                }
                Some(s) => {
                    let presence = match s.status {
                        PowerState::Running => Presence::Running,
                        PowerState::Stopped => Presence::Stopped,
                        _ => Presence::Other,
                    };
                    let running = presence == Presence::Running;
                    let mut gp = self.base_plan(&g, node.clone(), presence, target);
                    let cfg = o.config.clone().unwrap_or_default();
                    if target {
                        let (acts, notes, err) = self
                            .converge_actions(
                                w,
                                &g,
                                &node,
                                &cfg,
                                o.firewall.as_ref(),
                                running,
                                false,
                                op,
                                needed_running.contains(id),
                            )
                            .await?;
                        gp.actions = acts;
                        gp.notes = notes;
                        gp.error = err;
                    } else {
                        if needed_sources.contains(id)
                            && let Some(a) = self.snapshot_action(w, &g, &node, &cfg, false).await?
                        {
                            gp.actions.push(a);
                        }
                        if needed_running.contains(id) && !running && !g.is_template() {
                            gp.actions.push(Action::new(
                                Step::Start,
                                "",
                                "a dependent's setup needs it running",
                            ));
                        }
                    }
                    predicted.insert(*id, (node, cfg));
                    gp
                }
            };
            if op == Operation::Up
                && gp.error.is_none()
                && g.start_at_boot()
                && !g.is_template()
                && gp.presence != Presence::Running
                && !ends_running(&gp.actions)
            {
                gp.boot_start = true;
            }
            guests.push(gp);
        }
        let needed: Vec<GuestId> = needed_running.into_iter().collect();
        let boot: Vec<GuestId> = boot_order(
            &self.inv,
            &guests
                .iter()
                .filter(|g| g.boot_start)
                .map(|g| g.id)
                .collect::<Vec<_>>(),
        );
        Ok(Plan {
            operation: op,
            guests,
            boot_order: boot,
            needed_running: needed,
            reads: 0,
        })
    }

    /// Guests that must be running because a guest in this plan runs setup steps inside
    /// itself (features, application script, health checks) that may talk to them: the
    /// non-template `dependencies` of such guests.
    fn needed_running(
        &self,
        order: &[GuestId],
        targets: &BTreeSet<GuestId>,
        w: &World<'_>,
    ) -> BTreeSet<GuestId> {
        let mut out = BTreeSet::new();
        for id in order {
            let Some(g) = self.inv.guest(*id) else {
                continue;
            };
            let has_setup = !g.features().is_empty()
                || match g {
                    Guest::Lxc(c) => {
                        c.application_script.is_some()
                            || c.health_check.is_some()
                            || !c.health_checks.is_empty()
                    }
                    Guest::Vm(v) => v.health_check.is_some() || !v.health_checks.is_empty(),
                };
            if has_setup && (targets.contains(id) || !w.guests.contains_key(id)) {
                out.extend(
                    g.dependencies()
                        .iter()
                        .filter(|d| self.inv.guest(**d).is_some_and(|dg| !dg.is_template())),
                );
            }
        }
        out
    }

    /// The steps that bring an absent guest into existence, and its predicted config after them.
    async fn create_actions(
        &self,
        w: &World<'_>,
        g: &Guest<'_>,
        node: &NodeName,
        predicted: &BTreeMap<GuestId, (NodeName, GuestConfig)>,
    ) -> std::result::Result<(Vec<Action>, GuestConfig), String> {
        let mut acts = Vec::new();
        match g {
            Guest::Lxc(spec) => {
                self.check_storage(w, node, &spec.storage_pool, "rootdir")
                    .await?;
                for v in spec.zfs_volumes.iter().chain(&spec.volumes) {
                    self.check_storage(w, node, &v.pool, "rootdir").await?;
                }
                let d = lxc::desired(spec, None);
                match &spec.source {
                    LxcSource::Template { template } => {
                        let (storage, file, present) =
                            self.resolve_template(w, node, template).await?;
                        let volid = format!("{storage}:vztmpl/{file}");
                        if !present {
                            acts.push(Action::new(
                                Step::DownloadTemplate {
                                    storage: storage.clone(),
                                    template: file.clone(),
                                },
                                format!("{file} into {storage}"),
                                "template missing",
                            ));
                        }
                        let params = lxc::create_params(&d);
                        acts.push(Action::new(
                            Step::CreateLxc(LxcCreate {
                                id: spec.id,
                                ostemplate: volid.clone(),
                                params,
                            }),
                            format!(
                                "from {volid} on {}, {} cores, {} MiB, {} GiB rootfs",
                                spec.storage_pool, spec.cores, spec.memory_mb, spec.storage_size_gb
                            ),
                            "absent",
                        ));
                        Ok((acts, lxc::predicted_after_create(&d, spec.id)))
                    }
                    LxcSource::Clone { from } => {
                        let src = self.inv.lxc.get(from).ok_or_else(|| {
                            format!("clone source {from} is not a defined container")
                        })?;
                        let snap = src.template_snapshot_name.as_ref().ok_or_else(|| {
                            format!("clone source {from} has no template_snapshot_name")
                        })?;
                        let (_, src_cfg) = predicted.get(from).cloned().ok_or_else(|| {
                            format!("clone source {from} is not planned before {}", spec.id)
                        })?;
                        let detail = format!(
                            "from CT {from} ({}) at snapshot {snap} onto {}",
                            src.name, spec.storage_pool
                        );
                        let (clone, cfg) = clone_action(
                            &src_cfg,
                            *from,
                            Some(snap.to_string()),
                            spec.id,
                            spec.name.as_ref(),
                            &spec.storage_pool,
                            detail,
                        );
                        acts.push(clone);
                        Ok((acts, cfg))
                    }
                }
            }
            Guest::Vm(spec) => {
                self.check_storage(w, node, &spec.storage_pool, "images")
                    .await?;
                let d = vm::desired(spec, &self.inv);
                match &spec.source {
                    VmSource::Clone { from } => {
                        let src =
                            self.inv.vms.get(from).ok_or_else(|| {
                                format!("clone source {from} is not a defined VM")
                            })?;
                        let (_, src_cfg) = predicted.get(from).cloned().ok_or_else(|| {
                            format!("clone source {from} is not planned before {}", spec.id)
                        })?;
                        let snapname = if src.is_template {
                            None
                        } else {
                            src.template_snapshot_name.as_ref().map(ToString::to_string)
                        };
                        let detail = format!(
                            "full clone of VM {from} ({}) onto {}",
                            src.name, spec.storage_pool
                        );
                        let (clone, cfg) = clone_action(
                            &src_cfg,
                            *from,
                            snapname,
                            spec.id,
                            spec.name.as_ref(),
                            &spec.storage_pool,
                            detail,
                        );
                        acts.push(clone);
                        Ok((acts, cfg))
                    }
                    VmSource::CloudImage { image } => {
                        let (storage, content, present) =
                            self.resolve_image(w, node, image).await?;
                        let volid = format!("{storage}:{content}/{image}");
                        if !present {
                            let release = self
                                .inv
                                .hypervisor
                                .ubuntu_release
                                .clone()
                                .unwrap_or_else(|| "noble".into());
                            let url = format!(
                                "https://cloud-images.ubuntu.com/{release}/current/{image}"
                            );
                            acts.push(Action::new(
                                Step::DownloadImage {
                                    storage: storage.clone(),
                                    content: content.clone(),
                                    filename: image.clone(),
                                    url: url.clone(),
                                },
                                format!("{url} into {storage}"),
                                "cloud image missing",
                            ));
                        }
                        let params = vm::create_params(&d, spec, &volid);
                        acts.push(Action::new(
                            Step::CreateVm(VmCreate {
                                id: spec.id,
                                params,
                            }),
                            format!(
                                "from {volid} on {}, {} cores, {} MiB",
                                spec.storage_pool, spec.cores, spec.memory_mb
                            ),
                            "absent",
                        ));
                        Ok((acts, vm::predicted_after_create(&d, spec)))
                    }
                }
            }
        }
    }

    async fn check_storage(
        &self,
        w: &World<'_>,
        node: &NodeName,
        id: &StorageId,
        content: &str,
    ) -> std::result::Result<(), String> {
        let storages = w
            .storages(node)
            .await
            .map_err(|e| format!("cannot list storages of node {node}: {e}"))?;
        match storages.iter().find(|s| &s.id == id) {
            Some(s) if s.supports(content) => Ok(()),
            Some(s) => Err(format!(
                "storage {id} on node {node} does not allow {content} content (it has: {}); add it with `pvesm set {id} --content {},{content}`",
                s.content.join(","),
                s.content.join(",")
            )),
            None => Err(format!(
                "storage {id} does not exist on node {node} (available: {}); create it with `phx hypervisor setup` or fix storage_pool",
                storages
                    .iter()
                    .map(|s| s.id.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// Where an OS template lives: `(storage, file name, present)`.
    pub(crate) async fn resolve_template(
        &self,
        w: &World<'_>,
        node: &NodeName,
        template: &str,
    ) -> std::result::Result<(StorageId, String, bool), String> {
        self.resolve_template_with(w, node, template, &[]).await
    }

    /// [`Self::resolve_template`], also considering storages about to be added (`pending`:
    /// `(id, content)`), so `hypervisor setup` downloads into the storage guests will use.
    pub(crate) async fn resolve_template_with(
        &self,
        w: &World<'_>,
        node: &NodeName,
        template: &str,
        pending: &[(StorageId, Vec<String>)],
    ) -> std::result::Result<(StorageId, String, bool), String> {
        let (hint, file) = match template.split_once(':') {
            Some((s, rest)) if !s.contains('/') => (
                Some(s.to_string()),
                rest.rsplit('/').next().unwrap_or(rest).to_string(),
            ),
            _ => (
                None,
                template.rsplit('/').next().unwrap_or(template).to_string(),
            ),
        };
        let storages = w.storages(node).await.map_err(|e| e.to_string())?;
        let mut tmpl: Vec<(&StorageId, bool)> = storages
            .iter()
            .filter(|s| s.supports("vztmpl"))
            .map(|s| (&s.id, false))
            .collect();
        for (id, content) in pending {
            if content.iter().any(|c| c == "vztmpl") && !tmpl.iter().any(|(t, _)| *t == id) {
                tmpl.push((id, true));
            }
        }
        let configured: Vec<&StorageId> = self
            .inv
            .hypervisor
            .storage_ids
            .iter()
            .filter(|(k, _)| k.to_ascii_lowercase().contains("iso"))
            .map(|(_, v)| v)
            .collect();
        let (pick, new) = hint
            .and_then(|h| tmpl.iter().find(|(s, _)| s.as_str() == h))
            .or_else(|| tmpl.iter().find(|(s, _)| configured.contains(s)))
            .or_else(|| tmpl.iter().find(|(s, _)| s.as_str() == "local"))
            .or_else(|| tmpl.first())
            .map(|(s, new)| ((*s).clone(), *new))
            .ok_or_else(|| format!("no storage on node {node} allows vztmpl content for template {file}; add one with `phx hypervisor setup`"))?;
        let volid = format!("{pick}:vztmpl/{file}");
        let present = !new
            && w.content(node, &pick, "vztmpl")
                .await
                .map_err(|e| e.to_string())?
                .iter()
                .any(|v| v.volid == volid);
        if !present
            && !w
                .catalogue(node)
                .await
                .map_err(|e| e.to_string())?
                .iter()
                .any(|t| t == &file)
        {
            return Err(format!(
                "template {file} is neither in storage {pick} nor in the appliance catalogue; run `pveam update`, or upload it to {pick}"
            ));
        }
        Ok((pick, file, present))
    }

    /// Where a cloud image lives: `(storage, content, present)`.
    async fn resolve_image(
        &self,
        w: &World<'_>,
        node: &NodeName,
        image: &str,
    ) -> std::result::Result<(StorageId, String, bool), String> {
        let storages = w.storages(node).await.map_err(|e| e.to_string())?;
        let (s, content) = storages
            .iter()
            .find(|s| s.supports("import"))
            .map(|s| (s, "import"))
            .or_else(|| storages.iter().find(|s| s.supports("iso")).map(|s| (s, "iso")))
            .ok_or_else(|| format!("no storage on node {node} allows import or iso content for cloud image {image}; enable it with `pvesm set local --content iso,vztmpl,backup,import`"))?;
        let volid = format!("{}:{content}/{image}", s.id);
        let present = w
            .content(node, &s.id, content)
            .await
            .map_err(|e| e.to_string())?
            .iter()
            .any(|v| v.volid == volid);
        Ok((s.id.clone(), content.to_string(), present))
    }

    /// Template snapshot of an existing guest, when missing.
    async fn snapshot_action(
        &self,
        w: &World<'_>,
        g: &Guest<'_>,
        node: &NodeName,
        cfg: &GuestConfig,
        is_new: bool,
    ) -> Result<Option<Action>> {
        let name = match g {
            Guest::Lxc(c) => c.template_snapshot_name.clone(),
            Guest::Vm(v) => v.template_snapshot_name.clone(),
        };
        let Some(name) = name else { return Ok(None) };
        if !is_new && !snapshot_missing(w, g, node, cfg, &name).await? {
            return Ok(None);
        }
        Ok(Some(Action::new(
            Step::Snapshot {
                name: name.clone(),
                description: "phx template snapshot".into(),
                replace: false,
            },
            name.to_string(),
            "template snapshot missing (clones start from it)",
        )))
    }

    async fn uvm_major(&self, node: &NodeName) -> Option<u32> {
        if !self.hv.capabilities().host_exec {
            return None;
        }
        let out = self
            .hv
            .host_exec(
                node,
                &ExecRequest::new(["cat", "/proc/devices"]).timeout(Duration::from_secs(10)),
            )
            .await
            .ok()?;
        out.stdout.lines().find_map(|l| {
            let mut it = l.split_whitespace();
            let major = it.next()?.parse().ok()?;
            (it.next()? == "nvidia-uvm").then_some(major)
        })
    }

    /// The actions that converge an existing (or just created) guest.
    #[allow(clippy::too_many_arguments)]
    async fn converge_actions(
        &self,
        w: &World<'_>,
        g: &Guest<'_>,
        node: &NodeName,
        cfg: &GuestConfig,
        fw: Option<&crate::backend::FirewallState>,
        running: bool,
        is_new: bool,
        op: Operation,
        keep_running: bool,
    ) -> Result<(Vec<Action>, Vec<String>, Option<String>)> {
        let mut acts = Vec::new();
        let reason_set = if is_new {
            "configure after creation"
        } else {
            "config differs"
        };
        let (diff, lifecycle, vm_template) = match g {
            Guest::Lxc(spec) => {
                let uvm = if spec.gpu_assignment.is_empty() {
                    None
                } else {
                    self.uvm_major(node).await
                };
                let d = lxc::desired(spec, uvm);
                (
                    lxc::diff(&d, cfg, fw),
                    spec.enable_lifecycle_snapshots,
                    false,
                )
            }
            Guest::Vm(spec) => {
                let d = vm::desired(spec, &self.inv);
                (vm::diff(&d, spec, cfg, fw), false, spec.is_template)
            }
        };
        let notes = diff.notes.clone();
        if let Some(e) = diff.error.clone() {
            return Ok((acts, notes, Some(e)));
        }
        let is_proxmox_template = cfg.is_template();
        let restart_keys = diff.restart_keys();
        let stop_for_change = running && !restart_keys.is_empty();
        if stop_for_change {
            acts.push(Action::new(
                Step::Stop,
                "",
                format!("restart needed for {}", restart_keys.join(", ")),
            ));
        }
        if !diff.set.is_empty() {
            let detail = diff
                .changes
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            let mut a = Action::new(
                Step::SetConfig(crate::backend::ConfigUpdate {
                    set: diff.set.clone(),
                    delete: Vec::new(),
                    digest: cfg.digest.clone(),
                }),
                detail,
                reason_set,
            );
            a.changes = diff.changes.clone();
            acts.push(a);
        }
        if g.kind() == GuestKind::Vm && vm::touches_cloudinit(&diff) && !is_proxmox_template {
            acts.push(Action::new(
                Step::CloudInitUpdate,
                "",
                "cloud-init settings changed (they apply at the next boot)",
            ));
        }
        if let Some((lines, detail)) = &diff.raw {
            acts.push(Action::new(
                Step::SetRawLxc {
                    lines: lines.clone(),
                },
                detail.join("; "),
                "lxc.* lines differ",
            ));
        }
        for (disk, size, detail) in &diff.resizes {
            if is_proxmox_template {
                continue;
            }
            acts.push(Action::new(
                Step::Resize {
                    disk: disk.clone(),
                    size: *size,
                },
                detail.clone(),
                "disk smaller than configured",
            ));
        }
        if let Some(o) = &diff.fw_options {
            acts.push(Action::new(
                Step::SetFirewallOptions(o.clone()),
                format!("enable={}", u8::from(o.enable.unwrap_or(false))),
                "firewall options differ",
            ));
        }
        if let Some(r) = &diff.fw_rules {
            let mut detail = format!("{} rule{}", r.len(), if r.len() == 1 { "" } else { "s" });
            // what differs; a guest without rules yet gets them all
            let have = fw.map(|f| f.rules.as_slice()).unwrap_or_default();
            if !have.is_empty() {
                detail = format!(
                    "{detail}: {}",
                    crate::types::rule_changes(have, r).join(", ")
                );
            }
            acts.push(Action::new(
                Step::SetFirewallRules { rules: r.clone() },
                detail,
                "firewall rules differ",
            ));
        }
        let changed = !acts.is_empty() || is_new;
        let work = match self.in_guest_work(g, cfg, changed) {
            Ok(w) => w,
            Err(e) => return Ok((Vec::new(), notes, Some(e))),
        };
        let lifecycle_snaps = lifecycle && (changed || !work.is_empty());
        let (pre, fin) = (
            snapshot_name("pre-configured")?,
            snapshot_name("final-form")?,
        );
        let template_name = match g {
            Guest::Lxc(c) => c.template_snapshot_name.clone(),
            Guest::Vm(v) => v.template_snapshot_name.clone(),
        };
        let template_by_lifecycle = lifecycle_snaps && template_name.as_ref() == Some(&fin);
        let becomes_template = vm_template && !is_proxmox_template;
        let lifecycle_action = |name: &SnapshotName, what: &str| {
            Action::new(
                Step::Snapshot {
                    name: name.clone(),
                    description: format!("phx lifecycle: {what}"),
                    replace: true,
                },
                name.to_string(),
                "enable_lifecycle_snapshots (the guest changed)",
            )
        };
        let vm_snaps = match g {
            Guest::Vm(v) => v.snapshots.clone(),
            Guest::Lxc(_) => Default::default(),
        };
        if !work.is_empty() {
            let runs_already = running && !stop_for_change;
            if !runs_already {
                let why = if stop_for_change {
                    "it was running before the change"
                } else {
                    "needed for features, application script and health checks"
                };
                acts.push(Action::new(Step::Start, "", why));
            }
            if lifecycle_snaps {
                acts.push(lifecycle_action(&pre, "before features"));
            }
            if let Some(n) = &vm_snaps.pre_features
                && (is_new || snapshot_missing(w, g, node, cfg, n).await?)
            {
                acts.push(Action::new(
                    Step::Snapshot {
                        name: n.clone(),
                        description: "phx: before features".into(),
                        replace: false,
                    },
                    n.to_string(),
                    "snapshots.pre-features",
                ));
            }
            acts.extend(work);
            if let Some(n) = &vm_snaps.post_features {
                acts.push(Action::new(
                    Step::Snapshot {
                        name: n.clone(),
                        description: "phx: after features".into(),
                        replace: true,
                    },
                    n.to_string(),
                    "snapshots.post-features",
                ));
            }
            if lifecycle_snaps {
                acts.push(lifecycle_action(&fin, "final form"));
            }
            if becomes_template {
                acts.push(Action::new(
                    Step::CleanTemplate,
                    "",
                    "a template must not keep its cloud-init instance or machine id",
                ));
                acts.push(Action::new(Step::Stop, "", "templates must be stopped"));
                if let Some(a) = self.snapshot_action(w, g, node, cfg, true).await? {
                    acts.push(a);
                }
                acts.push(Action::new(Step::ConvertToTemplate, "", "is_template"));
                return Ok((acts, notes, None));
            }
            if !template_by_lifecycle
                && !is_proxmox_template
                && let Some(a) = self.snapshot_action(w, g, node, cfg, is_new).await?
            {
                acts.push(a);
            }
            let stays_running =
                running || keep_running || (is_new && g.start_at_boot() && !g.is_template());
            if !stays_running {
                acts.push(Action::new(
                    Step::Stop,
                    "",
                    "started only for its setup (start_at_boot is false)",
                ));
            }
            return Ok((acts, notes, None));
        }
        if lifecycle_snaps {
            acts.push(lifecycle_action(&pre, "before features"));
            acts.push(lifecycle_action(&fin, "final form"));
        }
        if becomes_template {
            if running && !stop_for_change {
                acts.push(Action::new(Step::Stop, "", "templates must be stopped"));
            }
            if let Some(a) = self.snapshot_action(w, g, node, cfg, is_new).await? {
                acts.push(a);
            }
            acts.push(Action::new(Step::ConvertToTemplate, "", "is_template"));
            return Ok((acts, notes, None));
        }
        if !template_by_lifecycle
            && !is_proxmox_template
            && let Some(a) = self.snapshot_action(w, g, node, cfg, is_new).await?
        {
            acts.push(a);
        }
        if stop_for_change {
            acts.push(Action::new(
                Step::Start,
                "",
                "it was running before the change",
            ));
        } else if is_new
            && matches!(op, Operation::Converge { .. })
            && g.start_at_boot()
            && !g.is_template()
        {
            acts.push(Action::new(Step::Start, "", "start_at_boot"));
        } else if keep_running && !running && !g.is_template() {
            acts.push(Action::new(
                Step::Start,
                "",
                "a dependent's setup needs it running",
            ));
        }
        Ok((acts, notes, None))
    }

    /// Features, application script and health checks still to do inside a guest.
    /// A missing script is an error before anything runs.
    fn in_guest_work(
        &self,
        g: &Guest<'_>,
        cfg: &GuestConfig,
        changed: bool,
    ) -> std::result::Result<Vec<Action>, String> {
        let applied = record::Applied::parse(cfg.description());
        let inherited = self.inherited_features(g);
        let mut acts = Vec::new();
        let mut ran = Vec::new();
        for f in g.features() {
            let done = applied.features.contains(f) || inherited.contains(f);
            if done && !self.opts.rerun_features {
                continue;
            }
            let script = match g {
                Guest::Lxc(_) => self.inv.lxc_feature_script(f),
                Guest::Vm(_) => self.inv.vm_feature_script(f),
            };
            if !script.is_file() {
                return Err(format!(
                    "feature {f:?}: script {} does not exist; add it or remove the feature from the config",
                    script.display()
                ));
            }
            let why = if done {
                "--rerun-features"
            } else {
                "not applied yet"
            };
            acts.push(Action::new(
                Step::RunFeature {
                    name: f.clone(),
                    script,
                },
                f.clone(),
                why,
            ));
            ran.push(f.clone());
        }
        if !ran.is_empty() {
            acts.push(Action::new(
                Step::Record {
                    features: ran,
                    app: None,
                },
                "features in the description",
                "so a re-run skips them",
            ));
        }
        if let Guest::Lxc(spec) = g
            && let Some(app) = &spec.application_script
        {
            let script = self.inv.application_script(app);
            let content = std::fs::read(&script).map_err(|e| format!("application script {}: {e}; add it or remove application_script from the config", script.display()))?;
            let fp = record::fingerprint(&content);
            let current = applied
                .app
                .as_ref()
                .is_some_and(|(n, h)| n == app && *h == fp);
            if !current {
                let why = if applied.app.as_ref().is_some_and(|(n, _)| n == app) {
                    "the script changed since it last ran"
                } else {
                    "not run yet"
                };
                acts.push(Action::new(
                    Step::RunApplicationScript {
                        name: app.clone(),
                        script,
                        fingerprint: fp.clone(),
                    },
                    app.clone(),
                    why,
                ));
                acts.push(Action::new(
                    Step::Record {
                        features: Vec::new(),
                        app: Some((app.clone(), fp)),
                    },
                    "application script in the description",
                    "so a re-run skips it",
                ));
            }
        }
        let checks = match g {
            Guest::Lxc(c) => {
                c.health_check.is_some()
                    || !c.health_checks.is_empty()
                    || c.features.iter().any(|f| f == "nvidia")
            }
            Guest::Vm(v) => v.health_check.is_some() || !v.health_checks.is_empty(),
        };
        if checks && (changed || !acts.is_empty()) {
            acts.push(Action::new(Step::HealthCheck, "", "the guest changed"));
        }
        Ok(acts)
    }

    /// Features of the guests this one is (transitively) cloned from: already in its disk.
    fn inherited_features(&self, g: &Guest<'_>) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = g.clone_source();
        let mut hops = 0;
        while let Some(id) = cur {
            let Some(src) = self.inv.guest(id) else { break };
            out.extend(src.features().iter().cloned());
            cur = src.clone_source();
            hops += 1;
            if hops > 64 {
                break;
            }
        }
        out
    }

    async fn plan_power(&self, w: &World<'_>, targets: &[GuestId], op: Operation) -> Result<Plan> {
        let order = if op == Operation::Start {
            self.graph.order(targets).map_err(cycle_error)?
        } else {
            targets.to_vec()
        };
        let target_set: BTreeSet<GuestId> = targets.iter().copied().collect();
        let mut guests = Vec::new();
        for id in order {
            let Some(g) = self.inv.guest(id) else {
                continue;
            };
            let target = target_set.contains(&id);
            if !target && g.is_template() {
                continue;
            }
            let s = w.guests.get(&id);
            let node = s
                .map(|s| s.node.clone())
                .unwrap_or_else(|| w.default_node.clone());
            let presence = presence_of(s);
            let mut gp = self.base_plan(&g, node, presence.clone(), target);
            match s {
                None => {
                    gp.error = Some(format!(
                        "{} {id} ({}) does not exist; create it with `phx {} create {id}`",
                        g.kind().proxmox_word(),
                        g.name(),
                        g.kind().noun()
                    ))
                }
                Some(s) if s.kind != g.kind() => {
                    gp.error = Some(format!(
                        "id {id} is a {} on the cluster, not a {}",
                        s.kind.proxmox_word(),
                        g.kind().proxmox_word()
                    ))
                }
                Some(s) if s.template || g.is_template() => {
                    gp.error = Some(format!(
                        "{} {id} ({}) is a template; templates are never started",
                        g.kind().proxmox_word(),
                        g.name()
                    ))
                }
                Some(_) => match (op, presence) {
                    (Operation::Restart, Presence::Running) => {
                        gp.actions
                            .push(Action::new(Step::Reboot, "", "restart requested"))
                    }
                    (_, Presence::Running) => {}
                    (_, _) => gp.actions.push(Action::new(
                        Step::Start,
                        "",
                        if target {
                            "stopped"
                        } else {
                            "prerequisite of a started guest"
                        },
                    )),
                },
            }
            guests.push(gp);
        }
        Ok(Plan {
            operation: op,
            guests,
            boot_order: Vec::new(),
            needed_running: Vec::new(),
            reads: 0,
        })
    }

    async fn plan_stop(&self, w: &World<'_>, targets: &[GuestId], op: Operation) -> Result<Plan> {
        let running = |id: &GuestId| {
            w.guests
                .get(id)
                .is_some_and(|s| s.status == PowerState::Running)
        };
        let mut set: Vec<GuestId> = targets.to_vec();
        let mut warnings: BTreeMap<GuestId, Vec<GuestId>> = BTreeMap::new();
        if let Operation::Stop { with_dependents } = op {
            for t in targets {
                let deps: Vec<GuestId> = self
                    .graph
                    .dependents(*t)
                    .into_iter()
                    .filter(|d| running(d) && !targets.contains(d))
                    .collect();
                if deps.is_empty() {
                    continue;
                }
                if with_dependents {
                    for d in deps {
                        if !set.contains(&d) {
                            set.push(d);
                        }
                    }
                } else {
                    warnings.insert(*t, deps);
                }
            }
        }
        let order: Vec<GuestId> = if op == Operation::Down {
            let mut v: Vec<(u64, GuestId)> = set
                .iter()
                .filter_map(|id| self.inv.guest(*id))
                .map(|g| (g.boot_order(), g.id()))
                .collect();
            v.sort();
            v.reverse();
            v.into_iter().map(|(_, id)| id).collect()
        } else {
            self.graph.teardown_order(&set).map_err(cycle_error)?
        };
        let mut guests = Vec::new();
        for id in order {
            let Some(g) = self.inv.guest(id) else {
                continue;
            };
            let s = w.guests.get(&id);
            if op == Operation::Down && !running(&id) {
                continue;
            }
            let node = s
                .map(|s| s.node.clone())
                .unwrap_or_else(|| w.default_node.clone());
            let mut gp = self.base_plan(&g, node, presence_of(s), targets.contains(&id));
            if let Some(d) = warnings.get(&id) {
                gp.notes.push(format!(
                    "running guests depend on it: {} (use --with-dependents to stop them first)",
                    d.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            match s {
                None => gp.notes.push("does not exist; nothing to stop".into()),
                Some(s) if s.kind != g.kind() => {
                    gp.error = Some(format!(
                        "id {id} is a {} on the cluster, not a {}",
                        s.kind.proxmox_word(),
                        g.kind().proxmox_word()
                    ))
                }
                Some(s) if s.status == PowerState::Running => gp.actions.push(Action::new(
                    Step::Shutdown {
                        timeout_secs: self.opts.shutdown_timeout.as_secs(),
                    },
                    "",
                    if gp.target {
                        "running"
                    } else {
                        "depends on a guest being stopped"
                    },
                )),
                Some(_) => {}
            }
            guests.push(gp);
        }
        Ok(Plan {
            operation: op,
            guests,
            boot_order: Vec::new(),
            needed_running: Vec::new(),
            reads: 0,
        })
    }

    async fn plan_delete(&self, w: &World<'_>, targets: &[GuestId], force: bool) -> Result<Plan> {
        let order = self.graph.teardown_order(targets).map_err(cycle_error)?;
        let mut guests = Vec::new();
        for id in order {
            let Some(g) = self.inv.guest(id) else {
                continue;
            };
            let s = w.guests.get(&id);
            let node = s
                .map(|s| s.node.clone())
                .unwrap_or_else(|| w.default_node.clone());
            let mut gp = self.base_plan(&g, node.clone(), presence_of(s), true);
            let Some(s) = s else {
                gp.notes.push("does not exist; nothing to delete".into());
                guests.push(gp);
                continue;
            };
            if s.kind != g.kind() {
                gp.error = Some(format!(
                    "id {id} is a {} on the cluster, not a {}; refusing to delete it",
                    s.kind.proxmox_word(),
                    g.kind().proxmox_word()
                ));
                guests.push(gp);
                continue;
            }
            let existing_dependents: Vec<GuestId> = self
                .graph
                .direct_dependents(id)
                .into_iter()
                .filter(|d| w.guests.contains_key(d) && !targets.contains(d))
                .collect();
            if !existing_dependents.is_empty() && !force {
                gp.error = Some(format!(
                    "{} depend{} on {} {id} and still exist{}; delete {} first, or use --force",
                    existing_dependents
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                    if existing_dependents.len() == 1 {
                        "s"
                    } else {
                        ""
                    },
                    g.kind().proxmox_word(),
                    if existing_dependents.len() == 1 {
                        "s"
                    } else {
                        ""
                    },
                    if existing_dependents.len() == 1 {
                        "it"
                    } else {
                        "them"
                    }
                ));
                guests.push(gp);
                continue;
            }
            let actual_name = s.name.clone().unwrap_or_default();
            if actual_name != g.name().as_str() && !force {
                gp.error = Some(format!(
                    "{} {id} on the cluster is named {actual_name:?}, not {:?} as in the config: the id may have been reused; refusing to delete (use --force if it really is this guest)",
                    g.kind().proxmox_word(),
                    g.name().as_str()
                ));
                guests.push(gp);
                continue;
            }
            w.read();
            let cfg = manager(self.hv.as_ref(), g.kind())
                .config(&node, id)
                .await?;
            if cfg.flag("protection") == Some(true) {
                gp.error = Some(format!(
                    "{} {id} has Proxmox protection enabled; clear it with `{} set {id} --protection 0` if you really want to delete it",
                    g.kind().proxmox_word(),
                    if g.kind() == GuestKind::Lxc {
                        "pct"
                    } else {
                        "qm"
                    }
                ));
                guests.push(gp);
                continue;
            }
            if s.status == PowerState::Running {
                gp.actions.push(Action::new(
                    Step::Stop,
                    "",
                    "running (must be stopped to be destroyed)",
                ));
            }
            gp.actions.push(Action::new(
                Step::Destroy(crate::backend::DestroyOptions {
                    purge: true,
                    destroy_unreferenced_disks: true,
                }),
                "with its disks",
                "delete requested",
            ));
            guests.push(gp);
        }
        Ok(Plan {
            operation: Operation::Delete { force },
            guests,
            boot_order: Vec::new(),
            needed_running: Vec::new(),
            reads: 0,
        })
    }
}

fn presence_of(s: Option<&crate::backend::GuestSummary>) -> Presence {
    match s.map(|s| s.status) {
        None => Presence::Absent,
        Some(PowerState::Running) => Presence::Running,
        Some(PowerState::Stopped) => Presence::Stopped,
        Some(_) => Presence::Other,
    }
}

async fn snapshot_missing(
    w: &World<'_>,
    g: &Guest<'_>,
    node: &NodeName,
    cfg: &GuestConfig,
    name: &SnapshotName,
) -> Result<bool> {
    // The newest snapshot is the config's `parent`: when it is ours, no read is needed.
    if cfg.get("parent") == Some(name.as_str()) {
        return Ok(false);
    }
    if cfg.get("parent").is_none() {
        return Ok(true);
    }
    w.read();
    let snaps = manager(w.hv, g.kind()).snapshots(node, g.id()).await?;
    Ok(!snaps.iter().any(|s| s.name == name.as_str()))
}

/// Whether a guest's actions leave it running (its last power step is a start).
fn ends_running(actions: &[Action]) -> bool {
    actions.iter().rev().find_map(|a| match a.step {
        Step::Start => Some(true),
        Step::Stop | Step::Shutdown { .. } => Some(false),
        _ => None,
    }) == Some(true)
}

fn snapshot_name(n: &str) -> Result<SnapshotName> {
    SnapshotName::new(n).map_err(|e| Error::backend("engine", e.to_string()))
}

/// Apply a planned step to a predicted config (so clones of a guest created in the same run are
/// predicted from what it will be, not what it was).
fn predict_step(cfg: &mut GuestConfig, step: &Step) {
    match step {
        Step::SetConfig(u) => cfg.entries.extend(u.set.clone()),
        Step::SetRawLxc { lines } => cfg.raw_lxc = lines.clone(),
        Step::Resize { disk, size } => {
            if let Some(v) = cfg.entries.get_mut(disk) {
                if let Ok(mut m) = v.parse::<crate::propstr::MountPoint>() {
                    m.size = Some(*size);
                    *v = m.to_string();
                } else if let Ok(mut d) = v.parse::<crate::propstr::QemuDisk>() {
                    d.size = Some(*size);
                    *v = d.to_string();
                }
            }
        }
        _ => {}
    }
}

/// The predicted config of a clone of `src`.
/// The `nameserver` key of a container or VM: the servers space-separated, none when empty.
fn nameserver(servers: &[std::net::Ipv4Addr]) -> Option<String> {
    (!servers.is_empty()).then(|| {
        servers
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    })
}

/// A full clone of `from` (at `snapname`) as `id` named `name` on `storage`, and the config
/// the clone starts with.
fn clone_action(
    src_cfg: &GuestConfig,
    from: GuestId,
    snapname: Option<String>,
    id: GuestId,
    name: &str,
    storage: &StorageId,
    detail: String,
) -> (Action, GuestConfig) {
    let req = CloneRequest {
        source: from,
        target: id,
        snapname,
        name: Some(name.to_string()),
        storage: Some(storage.clone()),
        full: true,
    };
    (
        Action::new(Step::Clone(req), detail, "absent"),
        cloned_config(src_cfg, id, name, storage),
    )
}

fn cloned_config(src: &GuestConfig, id: GuestId, name: &str, storage: &StorageId) -> GuestConfig {
    let mut c = src.clone();
    for k in ["parent", "lock", "template", "digest"] {
        c.entries.remove(k);
    }
    c.digest = None;
    if c.entries.contains_key("hostname") {
        c.entries.insert("hostname".into(), name.to_string());
    }
    if c.entries.contains_key("name") {
        c.entries.insert("name".into(), name.to_string());
    }
    for (k, v) in c.entries.iter_mut() {
        if k == "rootfs" || k.starts_with("mp") || k.starts_with("scsi") || k.starts_with("virtio")
        {
            // the clone gets its own volumes on the target storage
            if let Some((_, rest)) = v.split_once(':') {
                let rest = rest
                    .split_once(',')
                    .map(|(_, opts)| format!(",{opts}"))
                    .unwrap_or_default();
                *v = format!("{storage}:vm-{id}-disk-0{rest}");
            }
        }
        if k.starts_with("net") {
            if let Ok(mut n) = v.parse::<crate::propstr::LxcNet>() {
                n.hwaddr = None;
                *v = n.to_string();
            } else if let Ok(mut n) = v.parse::<crate::propstr::QemuNet>() {
                n.macaddr = None;
                *v = n.to_string();
            }
        }
    }
    c
}
