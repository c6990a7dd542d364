//! The executor: the only code that calls mutating backend methods.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::backend::{ExecRequest, GuestManager, LiveOutput, TaskDone, manager};
use crate::config::Guest;
use crate::error::{ConflictReason, Error, Result};
use crate::report::{Event, Outcome, Reporter};
use crate::types::{GuestId, GuestKind};

use super::observe::World;
use super::plan::{Action, GuestPlan, Operation, Plan, Step};
use super::retry::with_retry;
use super::scheduler::{Slot, run_dag};
use super::{Engine, GuestResult, RunResult, Stats};

struct RunCtx<'a> {
    op: Operation,
    needed_running: std::collections::BTreeSet<GuestId>,
    reporter: &'a dyn Reporter,
    world: World<'a>,
    writes: AtomicU64,
    tasks: AtomicU64,
    clone_locks: Mutex<BTreeMap<GuestId, Arc<tokio::sync::Mutex<()>>>>,
    download_locks: Mutex<BTreeMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Warnings raised while a guest ran, for its result's notes (a run without progress
    /// display, or with `-o json`, must not lose them).
    warnings: Mutex<BTreeMap<GuestId, Vec<String>>>,
}

impl RunCtx<'_> {
    /// Report a warning about a guest and keep it for the guest's result.
    fn warn(&self, id: GuestId, message: &str) {
        self.reporter.report(&Event::Warning {
            id: Some(id),
            message,
        });
        if let Ok(mut w) = self.warnings.lock() {
            w.entry(id).or_default().push(message.to_string());
        }
    }
    fn task(&self, t: &TaskDone) {
        if t.upid.is_some() {
            self.tasks.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn clone_lock(&self, source: GuestId) -> Arc<tokio::sync::Mutex<()>> {
        let mut m = self
            .clone_locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        m.entry(source).or_default().clone()
    }
    /// One download of a file at a time: guests waiting for the same template find it present.
    fn download_lock(&self, key: String) -> Arc<tokio::sync::Mutex<()>> {
        let mut m = self
            .download_locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        m.entry(key).or_default().clone()
    }
}

/// A step outcome: changed something, or found it already done.
enum Done {
    Changed,
    Noop,
}

impl Engine {
    /// Execute a plan: guests on a DAG with at most `jobs` at once, then (for `up`) the
    /// boot-order start phase. Never panics on backend errors; every guest gets an outcome.
    pub async fn apply(&self, plan: &Plan, reporter: &dyn Reporter) -> RunResult {
        let started = Instant::now();
        let default_node = plan.guests.first().map(|g| g.node.clone());
        let world = match default_node {
            Some(n) => World::for_apply(self.hv.as_ref(), n),
            None => {
                return RunResult {
                    guests: Vec::new(),
                    stats: Stats {
                        backend_reads: plan.reads,
                        ..Stats::default()
                    },
                    cancelled: self.opts.cancel.is_cancelled(),
                };
            }
        };
        // nothing starts unless every step can run: a missing script or capability would
        // otherwise stop the run half-way
        if let Err(e) = self.preflight(plan) {
            let why = e.to_string();
            reporter.report(&Event::Warning {
                id: None,
                message: &why,
            });
            return RunResult {
                guests: plan
                    .guests
                    .iter()
                    .map(|gp| {
                        let mut r = skipped(gp, format!("not started: {why}"));
                        if gp.is_empty() {
                            r.outcome = Outcome::Unchanged;
                            r.error = None;
                        }
                        r
                    })
                    .collect(),
                stats: Stats {
                    backend_reads: plan.reads,
                    ..Stats::default()
                },
                cancelled: false,
            };
        }
        let ctx = RunCtx {
            op: plan.operation,
            needed_running: plan.needed_running.iter().copied().collect(),
            reporter,
            world,
            writes: AtomicU64::new(0),
            tasks: AtomicU64::new(0),
            clone_locks: Mutex::new(BTreeMap::new()),
            download_locks: Mutex::new(BTreeMap::new()),
            warnings: Mutex::new(BTreeMap::new()),
        };
        reporter.report(&Event::PlanComputed {
            guests: plan.guests.len(),
            actions: plan.changes(),
        });

        let ids: Vec<GuestId> = plan.guests.iter().map(|g| g.id).collect();
        let by_id: BTreeMap<GuestId, &GuestPlan> = plan.guests.iter().map(|g| (g.id, g)).collect();
        let mut deps: BTreeMap<GuestId, Vec<GuestId>> = BTreeMap::new();
        match plan.operation {
            Operation::Stop { .. } | Operation::Delete { .. } => {
                for id in &ids {
                    deps.insert(*id, self.graph.direct_dependents(*id));
                }
            }
            Operation::Down => {
                // groups in reverse boot order; a later group waits for the earlier ones
                let mut prev: Vec<GuestId> = Vec::new();
                let mut cur: Vec<GuestId> = Vec::new();
                let mut cur_order = None;
                for id in &ids {
                    let o = self.inv.guest(*id).map(|g| g.boot_order());
                    if cur_order.is_some() && o != cur_order {
                        prev = std::mem::take(&mut cur);
                    }
                    cur_order = o;
                    deps.insert(*id, prev.clone());
                    cur.push(*id);
                }
            }
            _ => {
                for id in &ids {
                    deps.insert(*id, self.graph.prerequisites(*id).to_vec());
                }
            }
        }
        // Down must not skip later groups when one guest fails to stop.
        let ok =
            |r: &GuestResult| r.outcome != Outcome::Failed || plan.operation == Operation::Down;
        let slots = run_dag(&ids, &deps, self.opts.jobs, &self.opts.cancel, ok, |id| {
            let gp = by_id[&id];
            let ctx = &ctx;
            async move { (id, self.run_guest(gp, ctx).await) }
        })
        .await;
        let mut results: BTreeMap<GuestId, GuestResult> = BTreeMap::new();
        for gp in &plan.guests {
            let r = match slots.get(&gp.id) {
                Some(Slot::Ran(r)) => r.clone(),
                Some(Slot::Skipped(by)) => {
                    skipped(gp, format!("waits for {by}, which did not succeed"))
                }
                Some(Slot::Cancelled) | None => skipped(gp, "interrupted before it started".into()),
            };
            if matches!(slots.get(&gp.id), Some(Slot::Skipped(_) | Slot::Cancelled)) {
                reporter.report(&Event::GuestFinished {
                    id: gp.id,
                    outcome: Outcome::Skipped,
                });
            }
            results.insert(gp.id, r);
        }
        // Boot phase: start in boot order, group by group; one failure does not stop the rest.
        if !plan.boot_order.is_empty() {
            let mut groups: Vec<Vec<GuestId>> = Vec::new();
            let mut last = None;
            for id in &plan.boot_order {
                let o = self.inv.guest(*id).map(|g| g.boot_order());
                if last != Some(o) {
                    groups.push(Vec::new());
                    last = Some(o);
                }
                if let Some(g) = groups.last_mut() {
                    g.push(*id);
                }
            }
            for group in groups {
                let runnable: Vec<GuestId> = group
                    .into_iter()
                    .filter(|id| {
                        results.get(id).is_some_and(|r| {
                            matches!(r.outcome, Outcome::Changed | Outcome::Unchanged)
                        })
                    })
                    .collect();
                let slots = run_dag(
                    &runnable,
                    &BTreeMap::new(),
                    self.opts.jobs,
                    &self.opts.cancel,
                    |_: &std::result::Result<bool, String>| true,
                    |id| {
                        let gp = by_id[&id];
                        let ctx = &ctx;
                        async move {
                            let a = Action::new(Step::Start, "", "start_at_boot (boot order)");
                            let r = self
                                .exec_action(gp, &a, ctx)
                                .await
                                .map(|d| matches!(d, Done::Changed))
                                .map_err(|e| e.to_string());
                            (id, r)
                        }
                    },
                )
                .await;
                for (id, slot) in slots {
                    let Some(r) = results.get_mut(&id) else {
                        continue;
                    };
                    match slot {
                        Slot::Ran(Ok(false)) => {}
                        Slot::Ran(Ok(true)) => {
                            r.actions.push(Action::new(
                                Step::Start,
                                "",
                                "start_at_boot (boot order)",
                            ));
                            r.outcome = Outcome::Changed;
                        }
                        Slot::Ran(Err(e)) => {
                            r.outcome = Outcome::Failed;
                            r.error = Some(format!("start: {e}"));
                        }
                        _ => {
                            r.outcome = if r.outcome == Outcome::Changed {
                                Outcome::Changed
                            } else {
                                Outcome::Skipped
                            };
                            r.error = Some("interrupted before it was started".into());
                        }
                    }
                }
            }
        }
        let mut warnings = ctx.warnings.lock().map(|w| w.clone()).unwrap_or_default();
        let guests: Vec<GuestResult> = plan
            .guests
            .iter()
            .filter_map(|g| results.remove(&g.id))
            .map(|mut r| {
                r.notes.extend(warnings.remove(&r.id).unwrap_or_default());
                r
            })
            .collect();
        RunResult {
            guests,
            stats: Stats {
                backend_reads: plan.reads + ctx.world.reads.load(Ordering::Relaxed),
                backend_writes: ctx.writes.load(Ordering::Relaxed),
                tasks: ctx.tasks.load(Ordering::Relaxed),
                duration_ms: started.elapsed().as_millis() as u64,
            },
            cancelled: self.opts.cancel.is_cancelled(),
        }
    }

    async fn run_guest(&self, gp: &GuestPlan, ctx: &RunCtx<'_>) -> GuestResult {
        let mut res = GuestResult {
            id: gp.id,
            kind: gp.kind,
            name: gp.name.clone(),
            outcome: Outcome::Unchanged,
            actions: Vec::new(),
            notes: gp.notes.clone(),
            error: None,
        };
        ctx.reporter.report(&Event::GuestStarted {
            id: gp.id,
            kind: gp.kind,
            name: &gp.name,
        });
        for n in &gp.notes {
            ctx.reporter.report(&Event::Warning {
                id: Some(gp.id),
                message: n,
            });
        }
        if let Some(e) = &gp.error {
            res.outcome = Outcome::Failed;
            res.error = Some(e.clone());
            ctx.reporter.report(&Event::GuestFinished {
                id: gp.id,
                outcome: res.outcome,
            });
            return res;
        }
        let mut queue: Vec<Action> = gp
            .actions
            .iter()
            .filter(|a| !a.predicted)
            .cloned()
            .collect();
        queue.reverse();
        while let Some(action) = queue.pop() {
            if self.opts.cancel.is_cancelled() {
                res.error = Some(format!("interrupted before {}", action.op));
                res.outcome = if res.outcome == Outcome::Changed {
                    Outcome::Failed
                } else {
                    Outcome::Skipped
                };
                break;
            }
            if let Step::Converge = action.step {
                match self.reconverge(gp, ctx).await {
                    Ok((acts, notes)) => {
                        for n in &notes {
                            ctx.reporter.report(&Event::Warning {
                                id: Some(gp.id),
                                message: n,
                            });
                        }
                        res.notes.extend(notes);
                        queue.extend(acts.into_iter().rev());
                    }
                    Err(e) => {
                        res.outcome = Outcome::Failed;
                        res.error = Some(e.to_string());
                        break;
                    }
                }
                continue;
            }
            match self.exec_action(gp, &action, ctx).await {
                Ok(Done::Changed) => {
                    res.outcome = Outcome::Changed;
                    res.actions.push(action);
                }
                Ok(Done::Noop) => {}
                Err(e) => {
                    res.outcome = Outcome::Failed;
                    let mut error = format!("{}: {}", action.op, describe(&e));
                    if let Some(h) = hint(gp, &e) {
                        error.push_str(&format!("\n  hint: {h}"));
                    }
                    res.error = Some(error);
                    res.actions.push(action);
                    break;
                }
            }
        }
        ctx.reporter.report(&Event::GuestFinished {
            id: gp.id,
            outcome: res.outcome,
        });
        res
    }

    /// After create/clone: read the new guest and plan what its config still needs.
    async fn reconverge(
        &self,
        gp: &GuestPlan,
        ctx: &RunCtx<'_>,
    ) -> Result<(Vec<Action>, Vec<String>)> {
        let g = self.inv.guest(gp.id).ok_or_else(|| {
            Error::backend(
                "engine",
                format!("guest {} vanished from the inventory", gp.id),
            )
        })?;
        let m = manager(self.hv.as_ref(), gp.kind);
        ctx.world.read();
        let cfg = m.config(&gp.node, gp.id).await?;
        let fw = if g.firewall().is_some() {
            ctx.world.read();
            Some(m.firewall(&gp.node, gp.id).await?)
        } else {
            None
        };
        let (acts, notes, err) = self
            .converge_actions(
                &ctx.world,
                &g,
                &gp.node,
                &cfg,
                fw.as_ref(),
                false,
                true,
                ctx.op,
                ctx.needed_running.contains(&gp.id),
            )
            .await?;
        if let Some(e) = err {
            return Err(Error::Refused { message: e });
        }
        Ok((acts, notes))
    }

    async fn exec_action(&self, gp: &GuestPlan, action: &Action, ctx: &RunCtx<'_>) -> Result<Done> {
        let t0 = Instant::now();
        ctx.reporter.report(&Event::StepStarted {
            id: gp.id,
            op: action.op,
            detail: &action.detail,
        });
        let r = self.exec_step(gp, &action.step, ctx).await;
        let err = r.as_ref().err().map(describe);
        ctx.reporter.report(&Event::StepFinished {
            id: gp.id,
            op: action.op,
            duration: t0.elapsed(),
            error: err.as_deref(),
        });
        r
    }

    async fn retry<T, F, Fut>(
        &self,
        gp: &GuestPlan,
        op: &'static str,
        done: Option<T>,
        ctx: &RunCtx<'_>,
        f: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        ctx.writes.fetch_add(1, Ordering::Relaxed);
        with_retry(
            self.opts.retry,
            done,
            |attempt, delay, e| {
                ctx.writes.fetch_add(1, Ordering::Relaxed);
                let msg = e.to_string();
                ctx.reporter.report(&Event::Retry {
                    id: gp.id,
                    op,
                    attempt,
                    delay,
                    error: &msg,
                });
            },
            f,
        )
        .await
    }

    /// Put `file` into `storage` (as `content`) with `send`, unless it is there: `None` when
    /// it was. Guests wanting the same file wait for the first download. A retry after a lost
    /// answer looks for the file and for the download still running before sending again.
    #[allow(clippy::too_many_arguments)]
    async fn download<F, Fut>(
        &self,
        gp: &GuestPlan,
        op: &'static str,
        ctx: &RunCtx<'_>,
        storage: &crate::types::StorageId,
        content: &str,
        file: &str,
        send: F,
    ) -> Result<Option<TaskDone>>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<TaskDone>>,
    {
        let hv = self.hv.as_ref();
        let node = &gp.node;
        let volid = &format!("{storage}:{content}/{file}");
        let lock = ctx.download_lock(format!("{node}/{volid}"));
        let _held = lock.lock().await;
        ctx.world.read();
        if stored(hv, node, storage, content, volid).await? {
            return Ok(None);
        }
        let mut sent = false;
        let send = &send;
        self.retry(gp, op, None, ctx, || {
            let resend = std::mem::replace(&mut sent, true);
            async move {
                // the answer to the first download may be lost while it ran: look before
                // starting a second one
                if resend
                    && let Some(done) =
                        lost_download(hv, node, storage, content, volid, file).await?
                {
                    return Ok(done);
                }
                send().await
            }
        })
        .await
        .map(Some)
    }

    async fn exec_step(&self, gp: &GuestPlan, step: &Step, ctx: &RunCtx<'_>) -> Result<Done> {
        let hv = self.hv.as_ref();
        let node = &gp.node;
        let id = gp.id;
        let m: &dyn GuestManager = manager(hv, gp.kind);
        let op = step.op();
        let task = |t: TaskDone| {
            ctx.task(&t);
            if let Some(u) = &t.upid {
                ctx.reporter.report(&Event::TaskProgress {
                    id,
                    upid: u,
                    message: if t.warnings > 0 {
                        "finished with warnings"
                    } else {
                        "OK"
                    },
                });
            }
            Done::Changed
        };
        match step {
            Step::Converge => Ok(Done::Noop),
            Step::DownloadTemplate { storage, template } => {
                let send = || hv.download_template(node, storage, template);
                self.download(gp, op, ctx, storage, "vztmpl", template, send)
                    .await
                    .map(|t| t.map_or(Done::Noop, task))
            }
            Step::DownloadImage {
                storage,
                content,
                filename,
                url,
            } => {
                let send = || hv.download_url(node, storage, content, filename, url);
                self.download(gp, op, ctx, storage, content, filename, send)
                    .await
                    .map(|t| t.map_or(Done::Noop, task))
            }
            Step::CreateLxc(req) => Ok(task(
                self.retry(gp, op, Some(TaskDone::sync()), ctx, || {
                    hv.lxc().create(node, req)
                })
                .await?,
            )),
            Step::CreateVm(req) => Ok(task(
                self.retry(gp, op, Some(TaskDone::sync()), ctx, || {
                    hv.vm().create(node, req)
                })
                .await?,
            )),
            Step::Clone(req) => {
                let t = match gp.kind {
                    GuestKind::Lxc => {
                        // Proxmox locks an LXC clone source (`lock: disk`): one clone per source at a time.
                        let lock = ctx.clone_lock(req.source);
                        let _held = lock.lock().await;
                        self.retry(gp, op, Some(TaskDone::sync()), ctx, || {
                            hv.lxc().clone_guest(node, req)
                        })
                        .await?
                    }
                    GuestKind::Vm => {
                        self.retry(gp, op, Some(TaskDone::sync()), ctx, || {
                            hv.vm().clone_guest(node, req)
                        })
                        .await?
                    }
                };
                Ok(task(t))
            }
            Step::SetConfig(u) => {
                let mut first = true;
                self.retry(gp, op, None, ctx, || {
                    // the digest guards against concurrent edits; a retry may follow our own write
                    let mut u = u.clone();
                    if !first {
                        u.digest = None;
                    }
                    first = false;
                    async move { m.update_config(node, id, &u).await }
                })
                .await?;
                Ok(Done::Changed)
            }
            Step::SetRawLxc { lines } => {
                self.retry(gp, op, None, ctx, || {
                    hv.lxc().set_raw_config(node, id, lines)
                })
                .await?;
                Ok(Done::Changed)
            }
            Step::Resize { disk, size } => Ok(task(
                self.retry(gp, op, None, ctx, || m.resize(node, id, disk, *size))
                    .await?,
            )),
            Step::SetFirewallOptions(o) => {
                self.retry(gp, op, None, ctx, || m.set_firewall_options(node, id, o))
                    .await?;
                Ok(Done::Changed)
            }
            Step::SetFirewallRules { rules: r } => {
                self.retry(gp, op, None, ctx, || m.set_firewall_rules(node, id, r))
                    .await?;
                Ok(Done::Changed)
            }
            Step::CloudInitUpdate => {
                self.retry(gp, op, None, ctx, || hv.vm().cloudinit_update(node, id))
                    .await?;
                Ok(Done::Changed)
            }
            Step::Snapshot {
                name,
                description,
                replace,
            } => {
                if *replace {
                    ctx.world.read();
                    if m.snapshots(node, id)
                        .await?
                        .iter()
                        .any(|s| s.name == name.as_str())
                    {
                        // "does not exist" after a lost answer: the first delete went through
                        match self
                            .retry(gp, op, None, ctx, || m.snapshot_delete(node, id, name))
                            .await
                        {
                            Ok(t) => ctx.task(&t),
                            Err(Error::NotFound { .. }) => {}
                            Err(e) => return Err(e),
                        }
                    }
                }
                match self
                    .retry(gp, op, Some(TaskDone::sync()), ctx, || {
                        m.snapshot_create(node, id, name, description)
                    })
                    .await
                {
                    Ok(t) => Ok(task(t)),
                    Err(e) if e.to_string().contains("snapshot feature is not available") => {
                        let msg = format!(
                            "snapshot {name} not taken: {e} (the guest's storage does not support snapshots)"
                        );
                        ctx.warn(id, &msg);
                        Ok(Done::Noop)
                    }
                    Err(e) => Err(e),
                }
            }
            Step::ConvertToTemplate => {
                self.retry(gp, op, Some(()), ctx, || m.template(node, id))
                    .await?;
                Ok(Done::Changed)
            }
            Step::Stop | Step::Shutdown { .. } => {
                // whether an earlier attempt may have gone through with its answer lost (a
                // transient failure such as 596; a lock is a refusal: nothing happened)
                let maybe_done = std::sync::atomic::AtomicBool::new(false);
                let r = self
                    .retry(gp, op, None, ctx, || {
                        let maybe_done = &maybe_done;
                        async move {
                            let r = match step {
                                Step::Shutdown { timeout_secs } => {
                                    m.shutdown(node, id, Duration::from_secs(*timeout_secs))
                                        .await
                                }
                                _ => m.stop(node, id).await,
                            };
                            if let Err(Error::Transient { .. }) = &r {
                                maybe_done.store(true, Ordering::Relaxed);
                            }
                            r
                        }
                    })
                    .await;
                match r {
                    Ok(t) => Ok(task(t)),
                    // stopped already: before phx asked (nothing done), or by an earlier
                    // attempt of phx's whose answer was lost (done, by phx)
                    Err(Error::Conflict {
                        reason: ConflictReason::NotRunning,
                        ..
                    }) if maybe_done.load(Ordering::Relaxed) => Ok(Done::Changed),
                    Err(Error::Conflict {
                        reason: ConflictReason::NotRunning,
                        ..
                    }) => Ok(Done::Noop),
                    Err(e) => Err(e),
                }
            }
            Step::Start => {
                let t = match self
                    .retry(gp, op, Some(TaskDone::sync()), ctx, || m.start(node, id))
                    .await
                {
                    Ok(t) => t,
                    Err(Error::Conflict {
                        reason: ConflictReason::AlreadyRunning,
                        ..
                    }) => return Ok(Done::Noop),
                    // QEMU reports a start of a running VM as a failed task
                    Err(Error::TaskFailed { exit_status, .. })
                        if exit_status.ends_with("already running") =>
                    {
                        return Ok(Done::Noop);
                    }
                    Err(e) => return Err(e),
                };
                let done = task(t);
                if gp.kind == GuestKind::Vm {
                    self.wait_agent(gp, ctx).await;
                }
                Ok(done)
            }
            Step::Reboot => Ok(task(
                self.retry(gp, op, None, ctx, || m.reboot(node, id)).await?,
            )),
            Step::RunFeature { name, script } => {
                self.run_feature(gp, name, script, ctx).await?;
                Ok(Done::Changed)
            }
            Step::RunApplicationScript { name, script, .. } => {
                self.run_app_script(gp, name, script, ctx).await?;
                Ok(Done::Changed)
            }
            Step::HealthCheck => {
                self.health_check(gp, ctx).await?;
                Ok(Done::Changed)
            }
            Step::Record { features, app } => {
                ctx.world.read();
                let cfg = m.config(node, id).await?;
                let mut applied = super::record::Applied::parse(cfg.description());
                for f in features {
                    if !applied.features.contains(f) {
                        applied.features.push(f.clone());
                    }
                }
                if app.is_some() {
                    applied.app = app.clone();
                }
                let desc = applied.write(cfg.description());
                let update = crate::backend::ConfigUpdate {
                    set: std::collections::BTreeMap::from([("description".to_string(), desc)]),
                    delete: Vec::new(),
                    digest: None,
                };
                self.retry(gp, op, None, ctx, || m.update_config(node, id, &update))
                    .await?;
                Ok(Done::Changed)
            }
            Step::CleanTemplate => {
                for argv in [
                    &["cloud-init", "clean", "--logs"][..],
                    &["truncate", "-s", "0", "/etc/machine-id"][..],
                    &["rm", "-f", "/var/lib/dbus/machine-id"][..],
                ] {
                    ctx.writes.fetch_add(1, Ordering::Relaxed);
                    let r = hv
                        .vm()
                        .agent_exec(
                            node,
                            id,
                            &ExecRequest::new(argv.iter().copied())
                                .timeout(Duration::from_secs(120)),
                        )
                        .await;
                    let problem = match r {
                        Ok(o) if o.success() => None,
                        Ok(o) => Some(format!("exit {}: {}", o.exit_code, o.stderr.trim())),
                        Err(e) => Some(e.to_string()),
                    };
                    if let Some(p) = problem {
                        let msg = format!(
                            "template cleanup `{}` failed ({p}); clones may share this machine id",
                            argv.join(" ")
                        );
                        ctx.warn(id, &msg);
                    }
                }
                Ok(Done::Changed)
            }
            Step::Destroy(o) => {
                match self
                    .retry(gp, op, None, ctx, || m.destroy(node, id, o))
                    .await
                {
                    Ok(t) => Ok(task(t)),
                    // gone: the first attempt went through and its answer was lost
                    Err(Error::NotFound { .. }) => Ok(Done::Changed),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// Wait for a VM's guest agent with backoff (200 ms doubling to 2 s) up to the timeout;
    /// a VM without an agent is reported, not failed.
    async fn wait_agent(&self, gp: &GuestPlan, ctx: &RunCtx<'_>) {
        let Some(Guest::Vm(_)) = self.inv.guest(gp.id) else {
            return;
        };
        let deadline = Instant::now() + self.opts.agent_timeout;
        let mut delay = Duration::from_millis(200);
        loop {
            ctx.world.read();
            match self.hv.vm().agent_ping(&gp.node, gp.id).await {
                Ok(()) => return,
                Err(e) if Instant::now() + delay > deadline => {
                    let msg = format!(
                        "the guest agent did not answer within {}s ({e}); in-guest steps need qemu-guest-agent in the image",
                        self.opts.agent_timeout.as_secs()
                    );
                    ctx.warn(gp.id, &msg);
                    return;
                }
                Err(_) => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// The environment every site script gets.
    fn script_env(&self, gp: &GuestPlan, req: ExecRequest) -> ExecRequest {
        self.script_env_for(gp.id, gp.kind, &gp.node, req)
    }

    /// The environment every site script gets (features, application scripts, health checks,
    /// tests): which guest, of which kind, on which node, and where the config is.
    pub(super) fn script_env_for(
        &self,
        id: GuestId,
        kind: GuestKind,
        node: &crate::types::NodeName,
        mut req: ExecRequest,
    ) -> ExecRequest {
        req = req
            .env("PHX_GUEST_ID", id.to_string())
            .env("PHX_GUEST_KIND", kind.noun())
            .env("PHX_NODE", node.to_string())
            .env("PHX_CONFIG_DIR", self.inv.config_dir.display().to_string());
        if let Some(Guest::Lxc(c)) = self.inv.guest(id)
            && let Some(url) = &c.bootstrap_ca_url
        {
            req = req.env("PHX_BOOTSTRAP_CA_URL", url.clone());
        }
        req
    }

    async fn run_feature(
        &self,
        gp: &GuestPlan,
        name: &str,
        script: &std::path::Path,
        ctx: &RunCtx<'_>,
    ) -> Result<()> {
        let source = format!("feature {name}");
        ctx.writes.fetch_add(1, Ordering::Relaxed);
        let out = match gp.kind {
            // Container features run on the node against the container: `<script> <CTID>`.
            GuestKind::Lxc => {
                let req = self.script_env(
                    gp,
                    ExecRequest::new([script.display().to_string(), gp.id.to_string()])
                        .timeout(self.opts.script_timeout),
                );
                reported(guest_output(ctx.reporter, gp.id, &source), |live| {
                    let req = req.live(live);
                    async move { self.hv.host_exec(&gp.node, &req).await }
                })
                .await?
            }
            // VM features are staged into the guest and run there through the agent.
            GuestKind::Vm => {
                let content = std::fs::read(script)
                    .map_err(|e| Error::io(format!("reading {}", script.display()), e))?;
                let file = script
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_else(|| format!("feature_install_{name}.sh"));
                let dest = format!("/tmp/phoenix_features/{file}");
                let vm = self.hv.vm();
                let mk = vm
                    .agent_exec(
                        &gp.node,
                        gp.id,
                        &ExecRequest::new(["mkdir", "-p", "/tmp/phoenix_features"])
                            .timeout(Duration::from_secs(60)),
                    )
                    .await?;
                if !mk.success() {
                    return Err(Error::Refused {
                        message: format!(
                            "cannot create /tmp/phoenix_features in VM {} (exit {}){}",
                            gp.id,
                            mk.exit_code,
                            tail(&mk, 5)
                        ),
                    });
                }
                vm.agent_file_write(&gp.node, gp.id, &dest, &content)
                    .await?;
                let mut argv = vec!["/usr/bin/env".to_string()];
                let env_req = self.script_env(gp, ExecRequest::new(Vec::<String>::new()));
                argv.extend(env_req.env.iter().map(|(k, v)| format!("{k}={v}")));
                argv.extend(["/bin/bash".to_string(), dest.clone(), gp.id.to_string()]);
                let log = unique_log(&dest);
                let out = self
                    .agent_exec_followed_in_run(gp, ctx, &source, argv, &log)
                    .await;
                // the staged script and its log go, whether it worked or not; a leftover is
                // only a warning
                ctx.writes.fetch_add(1, Ordering::Relaxed);
                let rm = vm
                    .agent_exec(
                        &gp.node,
                        gp.id,
                        &ExecRequest::new(["rm", "-f", dest.as_str(), log.as_str()])
                            .timeout(Duration::from_secs(60)),
                    )
                    .await;
                if !rm.as_ref().is_ok_and(crate::backend::ExecOutput::success) {
                    let msg = format!(
                        "could not remove {dest} after the feature ({})",
                        match &rm {
                            Ok(o) => format!("exit {}{}", o.exit_code, tail(o, 3)),
                            Err(e) => e.to_string(),
                        }
                    );
                    ctx.warn(gp.id, &msg);
                }
                out?
            }
        };
        if !out.success() {
            return Err(Error::Refused {
                message: format!(
                    "feature {name} failed with exit code {}{}",
                    out.exit_code,
                    tail(&out, 10)
                ),
            });
        }
        Ok(())
    }

    /// [`agent_exec_followed`] for a step of a run: its calls counted, a lost log a warning.
    async fn agent_exec_followed_in_run(
        &self,
        gp: &GuestPlan,
        ctx: &RunCtx<'_>,
        source: &str,
        argv: Vec<String>,
        log: &str,
    ) -> Result<crate::backend::ExecOutput> {
        let f = agent_exec_followed(
            self.hv.as_ref(),
            ctx.reporter,
            &gp.node,
            gp.id,
            source,
            ExecRequest::new(argv).timeout(self.opts.script_timeout),
            log,
        )
        .await?;
        ctx.world.reads(f.reads);
        ctx.writes.fetch_add(f.writes, Ordering::Relaxed);
        if let Some(w) = &f.problem {
            ctx.warn(gp.id, w);
        }
        Ok(f.out)
    }

    async fn run_app_script(
        &self,
        gp: &GuestPlan,
        name: &str,
        script: &std::path::Path,
        ctx: &RunCtx<'_>,
    ) -> Result<()> {
        const RUN: &str = "/tmp/phoenix_run";
        let lxc = self.hv.lxc();
        let (node, id) = (&gp.node, gp.id);
        let exec = |argv: Vec<String>, timeout: Duration| {
            ctx.writes.fetch_add(1, Ordering::Relaxed);
            let req = self.script_env(gp, ExecRequest::new(argv).timeout(timeout));
            async move { lxc.exec(node, id, &req).await }
        };
        let mk = exec(
            vec!["mkdir".into(), "-p".into(), RUN.into()],
            Duration::from_secs(60),
        )
        .await?;
        if !mk.success() {
            return Err(Error::Refused {
                message: format!(
                    "cannot create {RUN} in CT {id} (exit {}){}",
                    mk.exit_code,
                    tail(&mk, 5)
                ),
            });
        }
        let base = script
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| name.to_string());
        let mut files: Vec<(std::path::PathBuf, String, u32)> =
            vec![(script.to_path_buf(), format!("{RUN}/{base}"), 0o755)];
        let utils = self
            .inv
            .scripts_dir
            .join("phoenix_hypervisor_common_utils.sh");
        if utils.is_file() {
            files.push((
                utils,
                format!("{RUN}/phoenix_hypervisor_common_utils.sh"),
                0o644,
            ));
        }
        for f in [
            crate::config::LXC_FILE,
            crate::config::VM_FILE,
            crate::config::HYPERVISOR_FILE,
        ] {
            let p = self.inv.config_dir.join(f);
            if p.is_file() {
                files.push((p, format!("{RUN}/{f}"), 0o644));
            }
        }
        for (src, dest, mode) in &files {
            let content = std::fs::read(src)
                .map_err(|e| Error::io(format!("reading {}", src.display()), e))?;
            ctx.writes.fetch_add(1, Ordering::Relaxed);
            lxc.push(node, id, &content, dest, *mode).await?;
        }
        ctx.writes.fetch_add(1, Ordering::Relaxed);
        let req = self.script_env(
            gp,
            ExecRequest::new([format!("{RUN}/{base}"), id.to_string()])
                .timeout(self.opts.script_timeout),
        );
        let out = reported(
            guest_output(ctx.reporter, id, &format!("app-script {name}")),
            |live| {
                let req = req.live(live);
                async move { lxc.exec(node, id, &req).await }
            },
        )
        .await?;
        match exec(
            vec!["rm".into(), "-rf".into(), RUN.into()],
            Duration::from_secs(60),
        )
        .await
        {
            Ok(o) if o.success() => {}
            other => {
                let msg = format!(
                    "could not remove {RUN} after the application script ({})",
                    other
                        .map(|o| format!("exit {}", o.exit_code))
                        .unwrap_or_else(|e| e.to_string())
                );
                ctx.warn(id, &msg);
            }
        }
        if !out.success() {
            return Err(Error::Refused {
                message: format!(
                    "application script {name} failed with exit code {}{}",
                    out.exit_code,
                    tail(&out, 10)
                ),
            });
        }
        Ok(())
    }

    async fn health_check(&self, gp: &GuestPlan, ctx: &RunCtx<'_>) -> Result<()> {
        let Some(g) = self.inv.guest(gp.id) else {
            return Ok(());
        };
        let (check, host_checks, nvidia) = match g {
            Guest::Lxc(c) => (
                c.health_check.clone(),
                c.health_checks.clone(),
                c.features
                    .iter()
                    .any(|f| f == "nvidia")
                    .then(|| c.nvidia_driver_version.clone()),
            ),
            Guest::Vm(v) => (v.health_check.clone(), v.health_checks.clone(), None),
        };
        if let Some(hc) = check {
            let argv: Vec<String> = hc.command.split_whitespace().map(str::to_string).collect();
            let source = format!("health-check {}", hc.command);
            let mut last = crate::backend::ExecOutput::default();
            let mut ok = false;
            for attempt in 1..=hc.retries.max(1) {
                ctx.writes.fetch_add(1, Ordering::Relaxed);
                let req = ExecRequest::new(argv.clone()).timeout(Duration::from_secs(120));
                last = reported(guest_output(ctx.reporter, gp.id, &source), |live| {
                    let req = req.live(live);
                    async move { self.guest_exec(gp.kind, &gp.node, gp.id, &req).await }
                })
                .await?;
                if last.success() {
                    ok = true;
                    break;
                }
                if attempt < hc.retries {
                    let delay = Duration::from_secs(u64::from(hc.interval));
                    let msg = format!("exit code {}", last.exit_code);
                    ctx.reporter.report(&Event::Retry {
                        id: gp.id,
                        op: "health-check",
                        attempt,
                        delay,
                        error: &msg,
                    });
                    tokio::time::sleep(delay).await;
                }
            }
            if !ok {
                return Err(Error::Refused {
                    message: format!(
                        "health check `{}` failed {} time{} (last exit code {}){}",
                        hc.command,
                        hc.retries,
                        if hc.retries == 1 { "" } else { "s" },
                        last.exit_code,
                        tail(&last, 10)
                    ),
                });
            }
        }
        for h in host_checks {
            let script = self.inv.health_check_script(&h.script);
            let mut argv = vec![script.display().to_string()];
            argv.extend(h.args.iter().cloned());
            ctx.writes.fetch_add(1, Ordering::Relaxed);
            let req = self.script_env(gp, ExecRequest::new(argv).timeout(Duration::from_secs(300)));
            let source = format!("health-check {}", h.name);
            let out = reported(guest_output(ctx.reporter, gp.id, &source), |live| {
                let req = req.live(live);
                async move { self.hv.host_exec(&gp.node, &req).await }
            })
            .await?;
            if !out.success() {
                return Err(Error::Refused {
                    message: format!(
                        "health check {} ({}) failed with exit code {}{}",
                        h.name,
                        script.display(),
                        out.exit_code,
                        tail(&out, 10)
                    ),
                });
            }
        }
        if let Some(expected) = nvidia {
            let Some(expected) = expected else {
                let msg = "the nvidia feature is set but nvidia_driver_version is not; skipping the driver check";
                ctx.warn(gp.id, msg);
                return Ok(());
            };
            let argv = [
                "nvidia-smi",
                "--query-gpu=driver_version",
                "--format=csv,noheader,nounits",
            ];
            let mut last = String::new();
            for attempt in 1..=3u32 {
                ctx.writes.fetch_add(1, Ordering::Relaxed);
                let out = self
                    .guest_exec(
                        gp.kind,
                        &gp.node,
                        gp.id,
                        &ExecRequest::new(argv).timeout(Duration::from_secs(60)),
                    )
                    .await?;
                let versions: Vec<&str> = out
                    .stdout
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect();
                if out.success() && !versions.is_empty() && versions.iter().all(|v| *v == expected)
                {
                    return Ok(());
                }
                last = if out.success() {
                    format!("driver {}", versions.join(", "))
                } else {
                    format!("exit code {}{}", out.exit_code, tail(&out, 3))
                };
                if attempt < 3 {
                    // 5 s with the default retry policy (the driver may still be loading);
                    // scaled down with it in tests
                    let wait = self
                        .opts
                        .retry
                        .delay(attempt)
                        .saturating_mul(10)
                        .min(Duration::from_secs(5));
                    tokio::time::sleep(wait).await;
                }
            }
            return Err(Error::Refused {
                message: format!("NVIDIA check failed: expected driver {expected}, got {last}"),
            });
        }
        Ok(())
    }

    /// Run a command in a guest through the right channel (pct exec / guest agent).
    pub async fn guest_exec(
        &self,
        kind: GuestKind,
        node: &crate::types::NodeName,
        id: GuestId,
        req: &ExecRequest,
    ) -> Result<crate::backend::ExecOutput> {
        match kind {
            GuestKind::Lxc => self.hv.lxc().exec(node, id, req).await,
            GuestKind::Vm => self.hv.vm().agent_exec(node, id, req).await,
        }
    }
}

/// What [`agent_exec_followed`] did.
pub(super) struct Followed {
    /// The command's exit code, and its output: the whole log, then what `sh` itself said.
    pub out: crate::backend::ExecOutput,
    /// Backend reads (log reads) it made, and writes beyond the command itself (a `cat` of
    /// the log when `file-read` is refused).
    pub reads: u64,
    pub writes: u64,
    /// The log could not be read at the end, or only its start (the output is then missing
    /// or cut).
    pub problem: Option<String>,
}

/// A log path next to `script` in the guest that no other command uses: this process's id and
/// a sequence number, so a log left by an earlier run, or by a script of the same name, is
/// never read as this command's output.
pub(super) fn unique_log(script: &str) -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    format!(
        "{script}.{}-{}.log",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// Run `req` in VM `id` through the guest agent with its output followed while it runs.
/// The agent hands a command's output back only when the command ends, so the command writes
/// it to `log` in the guest (a [`unique_log`]), which is read (agent `file-read`) after 1 s,
/// then at growing intervals up to 5 s, and reported line by line as [`Event::Output`] of
/// `source`; the rest is reported when the command ends, also when it failed or timed out
/// (its last lines say why). The caller removes `log`.
pub(super) async fn agent_exec_followed(
    hv: &dyn crate::backend::Hypervisor,
    reporter: &dyn Reporter,
    node: &crate::types::NodeName,
    id: GuestId,
    source: &str,
    req: ExecRequest,
    log: &str,
) -> Result<Followed> {
    const FIRST: Duration = Duration::from_secs(1);
    const MOST: Duration = Duration::from_secs(5);
    let vm = hv.vm();
    // A fixed program for sh: the log path and the command are its arguments, never part of
    // its text, so no value from the config is ever read by a shell.
    let mut argv: Vec<String> = [
        "/bin/sh",
        "-c",
        r#"log=$1; shift; exec "$@" >"$log" 2>&1"#,
        "phx-followed",
        log,
    ]
    .map(str::to_string)
    .to_vec();
    argv.extend(req.argv.iter().cloned());
    let req = ExecRequest { argv, ..req };
    let (mut reads, mut writes) = (0, 0);
    let running = vm.agent_exec(node, id, &req);
    tokio::pin!(running);
    let mut shown = 0;
    let mut delay = FIRST;
    let ended = loop {
        tokio::select! {
            r = &mut running => break r,
            () = tokio::time::sleep(delay) => {
                delay = (delay * 2).min(MOST);
                reads += 1;
                // not there yet, or the agent refuses file-read: the end will tell
                if let Ok(f) = vm.agent_file_read(node, id, log).await {
                    shown = report_new_lines(reporter, id, source, &f.content, shown, false);
                }
            }
        }
    };
    reads += 1;
    let read = vm.agent_file_read(node, id, log).await;
    let out = match ended {
        Ok(out) => out,
        // failed or timed out: show what the log has, then say so
        Err(e) => {
            if let Ok(f) = read {
                report_new_lines(reporter, id, source, &f.content, shown, true);
            }
            return Err(e);
        }
    };
    let mut problem = None;
    let text = match read {
        Ok(f) => {
            if f.truncated {
                problem = Some(format!(
                    "the output of {source} is longer than the 16 MiB the guest agent reads; only its start is shown"
                ));
            }
            f.content
        }
        // an agent that blocks file-read still runs commands
        Err(e) => {
            writes += 1;
            let cat = ExecRequest::new(["cat", log]).timeout(Duration::from_secs(60));
            match vm.agent_exec(node, id, &cat).await {
                Ok(o) if o.success() => o.stdout,
                other => {
                    let why = match other {
                        Ok(o) => format!("exit {}{}", o.exit_code, tail(&o, 3)),
                        Err(e2) => e2.to_string(),
                    };
                    problem = Some(format!(
                        "the output of {source} in {log} could not be read ({e}; {why})"
                    ));
                    String::new()
                }
            }
        }
    };
    report_new_lines(reporter, id, source, &text, shown, true);
    for line in out.stdout.lines().chain(out.stderr.lines()) {
        reporter.report(&Event::Output { id, source, line });
    }
    let mut stdout = text;
    stdout.push_str(&out.stdout);
    Ok(Followed {
        out: crate::backend::ExecOutput {
            exit_code: out.exit_code,
            stdout,
            stderr: out.stderr,
        },
        reads,
        writes,
        problem,
    })
}

/// Report the lines of `text` after byte `from` (where the previous report ended) as
/// [`Event::Output`]: the complete ones only, or with `all` the last unterminated one too (a
/// log read while it is written may end mid-line). Returns where this report ended. A text
/// shorter than `from` (a log written anew) is reported from its start.
fn report_new_lines(
    reporter: &dyn Reporter,
    id: GuestId,
    source: &str,
    text: &str,
    from: usize,
    all: bool,
) -> usize {
    let from = if text.is_char_boundary(from) { from } else { 0 };
    let new = &text[from..];
    let upto = if all {
        new.len()
    } else {
        new.rfind('\n').map_or(0, |i| i + 1)
    };
    for line in new[..upto].lines() {
        reporter.report(&Event::Output { id, source, line });
    }
    from + upto
}

/// Where a guest script's lines go: [`Event::Output`] of `source`.
pub(super) fn guest_output<'a>(
    reporter: &'a dyn Reporter,
    id: GuestId,
    source: &'a str,
) -> impl Fn(&str) + 'a {
    move |line| reporter.report(&Event::Output { id, source, line })
}

/// Run a script with each line of its output passed to `say`: while it runs where the backend
/// streams it (processes, `pct exec`, ssh), else all at once when it ends (the guest agent
/// gives the output only then). `run` gets the [`LiveOutput`] to put into its
/// [`ExecRequest`].
pub(super) async fn reported<Fut>(
    say: impl Fn(&str),
    run: impl FnOnce(LiveOutput) -> Fut,
) -> Result<crate::backend::ExecOutput>
where
    Fut: std::future::Future<Output = Result<crate::backend::ExecOutput>>,
{
    let (live, mut lines) = LiveOutput::channel();
    let running = run(live);
    tokio::pin!(running);
    let mut streamed = false;
    let result = loop {
        tokio::select! {
            biased;
            Some(line) = lines.recv() => {
                streamed = true;
                say(&line);
            }
            r = &mut running => break r,
        }
    };
    while let Ok(line) = lines.try_recv() {
        streamed = true;
        say(&line);
    }
    if !streamed && let Ok(out) = &result {
        out.stdout.lines().chain(out.stderr.lines()).for_each(&say);
    }
    result
}

/// Whether `volid` is on `storage` (a download's file).
async fn stored(
    hv: &dyn crate::backend::Hypervisor,
    node: &crate::types::NodeName,
    storage: &crate::types::StorageId,
    content: &str,
    volid: &str,
) -> Result<bool> {
    Ok(hv
        .storage_content(node, storage, Some(content))
        .await?
        .iter()
        .any(|v| v.volid == volid))
}

/// How long phx waits for a download that a call whose answer was lost started.
const LOST_DOWNLOAD_WAIT: Duration = Duration::from_secs(3600);

/// Before a download is sent again because the answer to the first was lost: the file is
/// there (done), or that first download still runs on the node (a `download` task of `file`):
/// wait for it to end, then look again. `None`: nothing there and nothing running, send it.
async fn lost_download(
    hv: &dyn crate::backend::Hypervisor,
    node: &crate::types::NodeName,
    storage: &crate::types::StorageId,
    content: &str,
    volid: &str,
    file: &str,
) -> Result<Option<TaskDone>> {
    if stored(hv, node, storage, content, volid).await? {
        return Ok(Some(TaskDone::sync()));
    }
    let started = Instant::now();
    let mut upid = None;
    while let Some(t) = hv
        .active_tasks(node, Some("download"))
        .await?
        .into_iter()
        .find(|t| t.id == file)
    {
        if started.elapsed() >= LOST_DOWNLOAD_WAIT {
            return Err(Error::Timeout {
                operation: format!(
                    "the download of {file} (task {}) that a call whose answer was lost started on node {node}",
                    t.upid
                ),
                after: LOST_DOWNLOAD_WAIT,
            });
        }
        tracing::info!(upid = %t.upid, "waiting for the download of {file} already running on node {node}");
        upid = Some(t.upid);
        let wait =
            (started.elapsed() / 4).clamp(Duration::from_millis(200), Duration::from_secs(5));
        tokio::time::sleep(wait).await;
    }
    if upid.is_some() && stored(hv, node, storage, content, volid).await? {
        return Ok(Some(TaskDone { upid, warnings: 0 }));
    }
    Ok(None)
}

fn skipped(gp: &GuestPlan, why: String) -> GuestResult {
    GuestResult {
        id: gp.id,
        kind: gp.kind,
        name: gp.name.clone(),
        outcome: Outcome::Skipped,
        actions: Vec::new(),
        notes: gp.notes.clone(),
        error: Some(why),
    }
}

/// The last lines of a script's output, for error messages.
fn tail(out: &crate::backend::ExecOutput, n: usize) -> String {
    let all: Vec<&str> = out
        .stdout
        .lines()
        .chain(out.stderr.lines())
        .filter(|l| !l.trim().is_empty())
        .collect();
    let start = all.len().saturating_sub(n);
    if all.is_empty() {
        String::new()
    } else {
        format!(":\n    {}", all[start..].join("\n    "))
    }
}

/// What to do about a failure phx's retries could not get past (a guest's result).
fn hint(gp: &GuestPlan, e: &Error) -> Option<String> {
    let (id, node) = (gp.id, &gp.node);
    let (word, tool) = match gp.kind {
        GuestKind::Lxc => ("CT", "pct"),
        GuestKind::Vm => ("VM", "qm"),
    };
    Some(match e {
        Error::Locked { .. } => format!(
            "another task holds {word} {id}: wait for it to end (`{tool} unlock {id}` if the lock is stale), then run phx again"
        ),
        Error::Timeout { .. } => format!(
            "phx stopped waiting, but the work may still run on node {node}: check its tasks, then run phx again"
        ),
        Error::Transient { .. } => format!(
            "Proxmox or the connection to it kept failing: check that node {node} is reachable, then run phx again"
        ),
        Error::Unauthenticated { .. } => {
            "the credentials stopped working: check the API token (or user and password), then run phx again".to_string()
        }
        _ => return None,
    })
}

/// An error with its task details, for results and reports.
fn describe(e: &Error) -> String {
    match e {
        Error::TaskFailed {
            upid,
            exit_status,
            log_tail,
        } if !log_tail.is_empty() => format!(
            "task {upid} failed: {exit_status}\n  log: {}",
            log_tail.join("\n       ")
        ),
        other => other.to_string(),
    }
}
