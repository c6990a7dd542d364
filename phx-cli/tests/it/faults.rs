//! Faults on every backend, through the real `phx` binary: lock timeouts, locked guests,
//! Proxmox errors, failed tasks, lost answers, broken connections, slow tasks, a killed phx,
//! and credentials that stop working mid-run.
//!
//! A [`Rig`] is the example homelab (a copy of `examples/homelab/etc` and `bin`) on one of the
//! three backends: `sim` (the FakeCluster in a state file), `pct` (the fake `pct`/`qm`/`pvesh`
//! executables) or `api` (the fake HTTPS API, with `--ssh` through a fake `ssh` for container
//! steps). Faults go into the shared FakeCluster ([`Rig::fail_next`]; `PHX_SIM_FAULTS` for the
//! sim) or, for the transport, into the fake server. Every scenario checks the exit code, the
//! failed guest and its cause, that independent guests finished, what was (not) retried by the
//! cluster's per-operation counters and task list, and that a run without the fault ends where
//! a clean run ends, without duplicates or stuck locks.
//!
//! The example's graph: 900 (template) → 101 → 102 → 1001 → 103, 9000 (VM template) → 1001.
//! 9000 and the container chain 900 → 101 → 102 are independent of each other.
//!
//! Knobs of `phx` used here: `--task-timeout`, `PHX_SIM_LATENCY_MS`, `PHX_SIM_FAULTS`
//! (README), and the hidden `PHX_RETRY_DELAY_MS` (the first wait of the retry rule).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use phx_core::backend::PowerState;
use phx_core::types::GuestKind;
use phx_testkit::fake::{self, FakeCluster};
use phx_testkit::server::{FakeServer, ServerOptions};
use phx_testkit::{FakePve, Fault};
use serde_json::Value;

use crate::support::{Run, copy_dir, repo};

/// The API token the fake server accepts.
const TOKEN: &str = "root@pam!phx=5ec7e7aa-0b1e-4c8f-9d2a-phxfaultsecret";
const TOKEN_SECRET: &str = "5ec7e7aa-0b1e-4c8f-9d2a-phxfaultsecret";
/// A second token of the same user (the operator's replacement after a revocation).
const SPARE_TOKEN: &str = "root@pam!spare=0b1e5ec7-4c8f-0b1e-9d2a-phxsparesecret";
/// A ticket login the fake server accepts.
const USER: (&str, &str) = ("root@pam", "fault-test-password");

/// Retries in these tests wait 20 ms, doubling (20, 40, 80, 160 ms for the 5 attempts).
const RETRY_DELAY_MS: &str = "20";

/// Every guest of the example.
const ALL: [u32; 6] = [900, 101, 102, 9000, 1001, 103];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Backend {
    Sim,
    Pct,
    Api,
}

/// A fake `ssh` that runs the remote command here, the way sshd would (one string for the
/// remote shell).
const FAKE_SSH: &str = r#"#!/bin/sh
target=
while [ $# -gt 0 ]; do
  case "$1" in
    --) shift; break ;;
    -o|-p|-i|-l|-F|-J) shift 2 ;;
    -*) shift ;;
    *) if [ -z "$target" ]; then target=$1; shift; else break; fi ;;
  esac
done
PHX_FAKE_NODE=${target#*@}
export PHX_FAKE_NODE
exec sh -c "$*"
"#;

/// The fake API server of an `api` rig, on its own runtime so tests stay synchronous.
struct Api {
    server: Option<FakeServer>,
    options: ServerOptions,
    rt: tokio::runtime::Runtime,
}

/// The example site on one backend.
struct Rig {
    backend: Backend,
    dir: tempfile::TempDir,
    /// The fake node (pct, and the state file behind the api server).
    fake: Option<FakePve>,
    api: Option<Api>,
    /// `PHX_SIM_FAULTS` items for the next sim run.
    sim_faults: Mutex<Vec<String>>,
}

fn write_fake_ssh(dir: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    let p = dir.join("ssh");
    std::fs::write(&p, FAKE_SSH).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

impl Rig {
    fn new(backend: Backend) -> Self {
        Self::build(backend, |_| {})
    }

    /// An `api` rig whose server has these options changed.
    fn api_with(tweak: impl FnOnce(&mut ServerOptions)) -> Self {
        Self::build(Backend::Api, tweak)
    }

    fn build(backend: Backend, tweak: impl FnOnce(&mut ServerOptions)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(
            &repo().join("examples/homelab/etc"),
            &dir.path().join("etc"),
        );
        copy_dir(
            &repo().join("examples/homelab/bin"),
            &dir.path().join("bin"),
        );
        let fake = match backend {
            Backend::Sim => None,
            Backend::Pct | Backend::Api => Some(FakePve::new().unwrap()),
        };
        let api = (backend == Backend::Api).then(|| {
            let fake = fake.as_ref().unwrap();
            write_fake_ssh(&fake.bin_dir());
            let mut options = ServerOptions::default()
                .token(TOKEN)
                .token(SPARE_TOKEN)
                .user(USER.0, USER.1)
                .auth_failure_delay(Duration::ZERO)
                .state(fake.state_path(), Some(fake.etc_dir()));
            tweak(&mut options);
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            let server = rt.block_on(FakeServer::start(options.clone())).unwrap();
            Api {
                server: Some(server),
                options,
                rt,
            }
        });
        Self {
            backend,
            dir,
            fake,
            api,
            sim_faults: Mutex::new(Vec::new()),
        }
    }

    fn sim() -> Self {
        Self::new(Backend::Sim)
    }
    fn pct() -> Self {
        Self::new(Backend::Pct)
    }
    fn api() -> Self {
        Self::new(Backend::Api)
    }

    fn sim_state(&self) -> PathBuf {
        self.dir.path().join("sim.json")
    }

    /// The state file of the cluster.
    fn state_path(&self) -> PathBuf {
        match &self.fake {
            Some(f) => f.state_path(),
            None => self.sim_state(),
        }
    }

    fn server(&self) -> &FakeServer {
        self.api
            .as_ref()
            .and_then(|a| a.server.as_ref())
            .expect("a running fake API server")
    }

    /// `phx ARGS` on this rig's backend (faults queued for the sim go with it).
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_phx"));
        for (k, _) in std::env::vars() {
            if k.starts_with("PHX_") || k == "RUST_LOG" {
                c.env_remove(k);
            }
        }
        c.env("PHX_CONFIG_DIR", self.dir.path().join("etc"))
            .env("PHX_SCRIPTS_DIR", self.dir.path().join("bin"))
            .env("XDG_STATE_HOME", self.dir.path().join("state"))
            .env("PHX_RETRY_DELAY_MS", RETRY_DELAY_MS)
            .env("NO_COLOR", "1")
            .env("COLUMNS", "200")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(f) = &self.fake {
            for (k, v) in f.env() {
                c.env(k, v);
            }
            c.env("PHX_PVE_ETC", f.etc_dir());
        }
        match self.backend {
            Backend::Sim => {
                c.env("PHX_BACKEND", "sim")
                    .env("PHX_SIM_STATE", self.sim_state())
                    .env("PHX_SIM_LATENCY_MS", "0");
                let faults = std::mem::take(&mut *self.sim_faults.lock().unwrap());
                if !faults.is_empty() {
                    c.env("PHX_SIM_FAULTS", faults.join(","));
                }
            }
            Backend::Pct => {
                c.env("PHX_BACKEND", "pct");
            }
            Backend::Api => {
                let s = self.server();
                c.env("PHX_BACKEND", "api")
                    .env("PHX_API_URL", s.url())
                    .env("PHX_API_TOKEN", TOKEN)
                    .env("PHX_FINGERPRINT", s.fingerprint())
                    .env("PHX_SSH", "root@pve");
            }
        }
        c
    }

    fn run_cmd(&self, mut c: Command) -> Run {
        let out = c.output().expect("running phx");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_cmd(self.cmd(args))
    }

    /// `phx up -o json`.
    fn up(&self) -> Run {
        self.run(&["up", "-o", "json"])
    }

    /// Read and change the cluster under its lock (the sim's lock is the one a running phx
    /// holds). Tasks are not moved on: only phx, through its backend, finishes them.
    fn with<T>(&self, f: impl FnOnce(&mut FakeCluster) -> T) -> T {
        match &self.fake {
            Some(fake) => fake.with(f).unwrap(),
            None => {
                let state = self.sim_state();
                let lock = std::fs::File::options()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(state.with_extension("lock"))
                    .unwrap();
                lock.lock().unwrap();
                let mut c = fake::load_state(&state).unwrap();
                let r = f(&mut c);
                fake::save_state(&state, &c).unwrap();
                r
            }
        }
    }

    /// The cluster as its state file has it now, without waiting for a running phx.
    fn peek(&self) -> FakeCluster {
        fake::load_state(&self.state_path()).unwrap()
    }

    /// Stop the fake API server (its cluster stays in the state file).
    fn stop_server(&mut self) {
        let api = self.api.as_mut().expect("an api rig");
        if let Some(s) = api.server.take() {
            api.rt.block_on(s.shutdown());
        }
    }

    /// Serve the cluster again (on a new port, with a new certificate).
    fn restart_server(&mut self) {
        let api = self.api.as_mut().expect("an api rig");
        let server = api
            .rt
            .block_on(FakeServer::start(api.options.clone()))
            .unwrap();
        api.server = Some(server);
    }

    /// Wait until every running task is over on the "node": its time has passed. The front
    /// phx talks to next records how it ended, as Proxmox would show it.
    fn wait_out_tasks(&self) {
        let running_until = self.with(|c| {
            c.tasks
                .iter()
                .filter(|t| t.exitstatus.is_none())
                .map(|t| t.due_ms)
                .max()
        });
        if let Some(due) = running_until {
            wait_until("the running tasks to end", Duration::from_secs(20), || {
                now_ms() > due
            });
        }
    }

    /// Let every task take `ms` (the sim takes `PHX_SIM_LATENCY_MS` instead).
    fn set_latency(&self, ms: u64) {
        assert_ne!(
            self.backend,
            Backend::Sim,
            "the sim takes PHX_SIM_LATENCY_MS"
        );
        self.with(|c| c.set_latency_ms(ms));
    }

    /// Make the next call of `op` fail with `fault` (for the sim: in the next run).
    fn fail_next(&self, op: &str, fault: Fault) {
        match self.backend {
            Backend::Sim => self.sim_faults.lock().unwrap().push(sim_fault(op, &fault)),
            Backend::Pct | Backend::Api => self.with(|c| c.fail_next(op, fault)),
        }
    }

    /// Forget every injected fault not consumed yet.
    fn clear_faults(&self) {
        self.sim_faults.lock().unwrap().clear();
        if self.backend != Backend::Sim {
            self.with(|c| c.faults.clear());
        }
    }

    /// Calls that reached the cluster, per operation.
    fn calls(&self) -> BTreeMap<String, u64> {
        self.with(|c| c.counters.per_op.clone())
    }

    /// The guests and volumes as a comparison sees them.
    fn end_state(&self) -> EndState {
        self.with(|c| EndState::of(c))
    }
}

/// The `PHX_SIM_FAULTS` item for a fault.
fn sim_fault(op: &str, f: &Fault) -> String {
    let fault = match f {
        Fault::LockTimeout => "lock-timeout".to_string(),
        Fault::Http { status } => format!("http-{status}"),
        Fault::TaskError { message } => format!("task-error={message}"),
        Fault::Error {
            status: 500,
            message,
        } => format!("error={message}"),
        Fault::LostResponse { status: 596 } => "lost-response".to_string(),
        other => panic!("PHX_SIM_FAULTS cannot express {other:?}"),
    };
    assert!(!fault.contains(','), "{fault:?}");
    format!("{op}:{fault}")
}

/// One guest as a converged cluster has it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GuestState {
    kind: String,
    name: String,
    node: String,
    status: String,
    config: BTreeMap<String, String>,
    raw_lxc: Vec<(String, String)>,
    snapshots: Vec<String>,
    firewall: String,
}

/// The guests (by id) and the volumes of a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
struct EndState {
    guests: BTreeMap<u32, GuestState>,
    volumes: BTreeSet<String>,
}

impl EndState {
    fn of(c: &FakeCluster) -> Self {
        let guests = c
            .guests
            .values()
            .map(|g| {
                let mut config = g.config.clone();
                // the creation time of a VM is the fake's clock, which counts every task
                if let Some(m) = config.get_mut("meta") {
                    *m = m
                        .split(',')
                        .filter(|kv| !kv.starts_with("ctime="))
                        .collect::<Vec<_>>()
                        .join(",");
                }
                // the example gives VMs no MAC: Proxmox makes one up, in creation order
                if g.kind == GuestKind::Vm {
                    for (k, v) in config.iter_mut() {
                        if k.starts_with("net") {
                            *v = v
                                .split(',')
                                .map(|kv| match kv.split_once('=') {
                                    Some((model, mac))
                                        if mac.len() == 17 && mac.matches(':').count() == 5 =>
                                    {
                                        format!("{model}=<mac>")
                                    }
                                    _ => kv.to_string(),
                                })
                                .collect::<Vec<_>>()
                                .join(",");
                        }
                    }
                }
                (
                    g.id,
                    GuestState {
                        kind: format!("{:?}", g.kind),
                        name: g.name(),
                        node: g.node.clone(),
                        status: format!("{:?}", g.status),
                        config,
                        raw_lxc: g.raw_lxc.clone(),
                        snapshots: g.snapshots.iter().map(|s| s.name.clone()).collect(),
                        firewall: format!("{:?}", g.firewall),
                    },
                )
            })
            .collect();
        let volumes = c.volumes.iter().map(|v| v.volid()).collect();
        Self { guests, volumes }
    }
}

/// What a clean `phx up` of the example does on a backend.
#[derive(Debug, Clone)]
struct Clean {
    /// Where it ends.
    state: EndState,
    /// Calls per operation.
    calls: BTreeMap<String, u64>,
    /// Tasks that succeeded, per `(type, id)`.
    tasks: BTreeMap<(String, String), usize>,
}

/// The clean run on `backend`, made once per test binary.
fn clean(backend: Backend) -> Clean {
    static CLEAN: OnceLock<Mutex<BTreeMap<Backend, Clean>>> = OnceLock::new();
    let m = CLEAN.get_or_init(Default::default);
    let mut m = m.lock().unwrap();
    if let Some(s) = m.get(&backend) {
        return s.clone();
    }
    let rig = Rig::new(backend);
    let r = rig.up();
    assert_eq!(r.code, 0, "clean run on {backend:?}:\n{}", r.render());
    let s = Clean {
        state: rig.end_state(),
        calls: rig.calls(),
        tasks: rig.with(|c| ok_tasks(c)),
    };
    m.insert(backend, s.clone());
    s
}

/// Wall-clock milliseconds, the clock of the fake's task due times.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Poll `cond` until it holds (or fail after `limit`).
fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Finished tasks that succeeded, per `(type, id)` (`("vzcreate", "900")`).
fn ok_tasks(c: &FakeCluster) -> BTreeMap<(String, String), usize> {
    let mut m = BTreeMap::new();
    for t in &c.tasks {
        if t.exitstatus.as_deref() == Some("OK") {
            *m.entry((t.kind.clone(), t.id.clone())).or_default() += 1;
        }
    }
    m
}

/// How often `op` reached the cluster between two [`Rig::calls`].
fn delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>, op: &str) -> u64 {
    after.get(op).copied().unwrap_or(0) - before.get(op).copied().unwrap_or(0)
}

/// `(outcome, error)` of every guest of a `-o json` result.
fn outcomes(v: &Value) -> BTreeMap<u32, (String, String)> {
    v["guests"]
        .as_array()
        .unwrap_or_else(|| panic!("no guests in {v}"))
        .iter()
        .map(|g| {
            (
                g["id"].as_u64().unwrap() as u32,
                (
                    g["outcome"].as_str().unwrap().to_string(),
                    g["error"].as_str().unwrap_or_default().to_string(),
                ),
            )
        })
        .collect()
}

/// Assert the outcome of every guest: `changed`/`unchanged` for `ok`, `failed` for `failed`,
/// `skipped` (waiting for a failed guest) for the rest.
fn assert_outcomes(r: &Run, failed: &[u32], skipped: &[u32]) -> BTreeMap<u32, (String, String)> {
    let o = outcomes(&r.json());
    assert_eq!(
        o.keys().copied().collect::<BTreeSet<_>>(),
        ALL.into_iter().collect(),
        "{}",
        r.render()
    );
    for (id, (outcome, error)) in &o {
        let want: &[&str] = if failed.contains(id) {
            &["failed"]
        } else if skipped.contains(id) {
            &["skipped"]
        } else {
            &["changed", "unchanged"]
        };
        assert!(
            want.contains(&outcome.as_str()),
            "guest {id}: {outcome} ({error}), want {want:?}\n{}",
            r.render()
        );
        if skipped.contains(id) {
            assert!(error.starts_with("waits for "), "{id}: {error}");
        }
    }
    o
}

/// A run without faults converges to the end state of a clean run: every guest there once,
/// the same configs and volumes, no lock left, and nothing more to do afterwards.
fn assert_rerun_converges(rig: &Rig) {
    rig.clear_faults();
    let r = rig.up();
    assert_eq!(r.code, 0, "re-run:\n{}", r.render());
    let end = rig.end_state();
    for (id, g) in &end.guests {
        assert!(
            !g.config.contains_key("lock"),
            "{id} is still locked: {g:?}"
        );
    }
    let want = clean(rig.backend).state;
    assert_eq!(
        end.guests.keys().collect::<Vec<_>>(),
        want.guests.keys().collect::<Vec<_>>(),
        "guest ids"
    );
    for (id, g) in &want.guests {
        assert_eq!(Some(g), end.guests.get(id), "guest {id}");
    }
    assert_eq!(
        end.volumes, want.volumes,
        "volumes (a duplicate leaves an extra disk)"
    );
}

/// Tasks whose second run changes nothing: a resize to the same absolute size, the same
/// config set again. After a lost answer phx may send these again (it cannot know they ran).
const IDEMPOTENT: &[&str] = &["resize", "qmconfig"];

/// The run did the work of a clean run: every task that succeeded, as often as in a clean
/// run (an accepted task sent twice shows up as one more); an idempotent task may have run
/// once more.
fn assert_tasks_as_clean(rig: &Rig) {
    let tasks = rig.with(|c| ok_tasks(c));
    let want = clean(rig.backend).tasks;
    assert_eq!(
        tasks.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "tasks that succeeded"
    );
    for (key, n) in &tasks {
        let w = want[key];
        if IDEMPOTENT.contains(&key.0.as_str()) {
            assert!(*n == w || *n == w + 1, "{key:?}: {n} (clean: {w})");
        } else {
            assert_eq!(*n, w, "{key:?} succeeded {n} times (clean: {w})");
        }
    }
}

/// Creating tasks that succeeded: creates, VM clones and downloads per id, and the LXC
/// clones of 900 (their tasks carry the source's id).
fn creations(rig: &Rig) -> BTreeMap<(String, String), usize> {
    let mut tasks = rig.with(|c| ok_tasks(c));
    tasks.retain(|(kind, _), _| {
        ["vzcreate", "qmcreate", "qmclone", "vzclone", "download"].contains(&kind.as_str())
    });
    tasks
}

/// No guest, disk or download came from a second dispatch of an accepted task.
fn assert_no_task_twice(rig: &Rig) {
    for ((kind, id), n) in creations(rig) {
        let most = if kind == "vzclone" { 3 } else { 1 };
        assert!(n <= most, "{kind} {id} succeeded {n} times");
    }
}

/// Every creating task of a clean run succeeded exactly once.
fn assert_created_once(rig: &Rig) {
    let mut want = clean(rig.backend).tasks;
    want.retain(|(kind, _), _| {
        ["vzcreate", "qmcreate", "qmclone", "vzclone", "download"].contains(&kind.as_str())
    });
    assert_eq!(creations(rig), want);
}

/// One test per backend for a scenario: `scenario!(name: sim, pct, api)`.
macro_rules! scenario {
    ($name:ident: $($backend:ident),+) => {
        mod $name {
            $(
                #[test]
                fn $backend() {
                    super::$name(super::Rig::$backend());
                }
            )+
        }
    };
}

// ----- lock timeouts ----------------------------------------------------------------------

scenario!(lock_timeout_once_is_retried_and_succeeds: sim, pct, api);

fn lock_timeout_once_is_retried_and_succeeds(rig: Rig) {
    let before = rig.calls();
    rig.fail_next("lxc.create", Fault::LockTimeout);
    let r = rig.up();
    assert_eq!(r.code, 0, "{}", r.render());
    assert_outcomes(&r, &[], &[]);
    let after = rig.calls();
    assert_eq!(delta(&before, &after, "lxc.create"), 2, "one retry");
    assert_created_once(&rig);
    assert_rerun_converges(&rig);
}

scenario!(lock_timeout_forever_fails_after_the_retry_budget: sim, pct, api);

fn lock_timeout_forever_fails_after_the_retry_budget(rig: Rig) {
    let before = rig.calls();
    for _ in 0..5 {
        rig.fail_next("vm.create", Fault::LockTimeout);
    }
    let r = rig.up();
    assert_eq!(r.code, 3, "{}", r.render());
    let o = assert_outcomes(&r, &[9000], &[1001, 103]);
    assert_eq!(
        o[&9000].1,
        "create: can't lock file '/var/lock/qemu-server/lock-9000.conf' - got timeout\n  \
         hint: another task holds VM 9000: wait for it to end (`qm unlock 9000` if the lock \
         is stale), then run phx again",
        "{}",
        r.render()
    );
    let after = rig.calls();
    assert_eq!(delta(&before, &after, "vm.create"), 5, "the retry budget");
    assert!(rig.with(|c| !c.guests.contains_key(&9000)));
    assert_rerun_converges(&rig);
    assert_created_once(&rig);
}

// ----- errors and failed tasks ------------------------------------------------------------

scenario!(a_proxmox_error_is_not_retried: sim, pct, api);

fn a_proxmox_error_is_not_retried(rig: Rig) {
    let message = "unable to create VM 9000 - unable to allocate disk: volume group 'pve' has not enough free space";
    let before = rig.calls();
    rig.fail_next(
        "vm.create",
        Fault::Error {
            status: 500,
            message: message.into(),
        },
    );
    let r = rig.up();
    assert_eq!(r.code, 3, "{}", r.render());
    let o = assert_outcomes(&r, &[9000], &[1001, 103]);
    assert_eq!(o[&9000].1, format!("create: {message}"), "{}", r.render());
    let after = rig.calls();
    assert_eq!(delta(&before, &after, "vm.create"), 1, "not retried");
    assert_rerun_converges(&rig);
    assert_created_once(&rig);
}

scenario!(a_failed_task_is_reported_with_its_upid_and_log_and_not_retried: sim, pct, api);

fn a_failed_task_is_reported_with_its_upid_and_log_and_not_retried(rig: Rig) {
    let message = "clone failed: command 'lvcreate' failed: exit code 5";
    let before = rig.calls();
    rig.fail_next(
        "lxc.clone",
        Fault::TaskError {
            message: message.into(),
        },
    );
    let r = rig.up();
    assert_eq!(r.code, 3, "{}", r.render());
    // 101 clones first (102 waits for it, 103 for 1001); 9000 goes on
    let o = assert_outcomes(&r, &[101], &[102, 1001, 103]);
    let e = &o[&101].1;
    assert!(e.starts_with("clone: task UPID:pve:"), "{e}");
    assert!(e.contains(":vzclone:900:"), "{e}");
    assert!(e.contains(&format!("failed: {message}\n  log: ")), "{e}");
    if rig.backend != Backend::Pct {
        // `pct` prints the task log without its last line; the API and the sim have it
        assert!(e.contains(&format!("TASK ERROR: {message}")), "{e}");
    }
    let after = rig.calls();
    assert_eq!(delta(&before, &after, "lxc.clone"), 1, "not retried");
    // the failed clone left neither a half-made 101 nor a lock on its source
    rig.with(|c| {
        assert!(!c.guests.contains_key(&101));
        assert_eq!(c.guests[&900].lock(), None);
    });
    assert_rerun_converges(&rig);
}

scenario!(a_guest_locked_by_a_backup_is_retried_then_reported: sim, pct, api);

fn a_guest_locked_by_a_backup_is_retried_then_reported(rig: Rig) {
    let r = rig.up();
    assert_eq!(r.code, 0, "{}", r.render());
    // a backup in stop mode holds 102: stopped, `lock: backup`
    rig.with(|c| {
        let g = c.guests.get_mut(&102).unwrap();
        g.status = PowerState::Stopped;
        g.config.insert("lock".into(), "backup".into());
    });
    let before = rig.calls();
    let r = rig.up();
    assert_eq!(r.code, 3, "{}", r.render());
    let o = assert_outcomes(&r, &[102], &[1001, 103]);
    assert!(
        o[&102].1.contains("CT is locked (backup)"),
        "{}",
        r.render()
    );
    assert!(o[&102].1.contains("pct unlock 102"), "{}", r.render());
    let after = rig.calls();
    assert_eq!(delta(&before, &after, "lxc.start"), 5, "the retry budget");
    // the operator ends the backup (or `pct unlock 102`); the next run finishes the work
    rig.with(|c| c.guests.get_mut(&102).unwrap().config.remove("lock"));
    assert_rerun_converges(&rig);
}

// ----- lost answers and transport failures ------------------------------------------------

/// Every kind of call whose answer can get lost after Proxmox accepted it, in one run.
const LOSSY: &[&str] = &[
    "aplinfo.download",
    "storage.download-url",
    "lxc.create",
    "vm.create",
    "lxc.clone",
    "vm.clone",
    "lxc.start",
    "vm.start",
    "lxc.snapshot",
    "vm.snapshot",
    "vm.template",
    "vm.resize",
    "lxc.config.update",
    "vm.config.update",
];

scenario!(a_lost_answer_after_the_call_went_through_is_not_sent_twice: sim, api);

fn a_lost_answer_after_the_call_went_through_is_not_sent_twice(rig: Rig) {
    let before = rig.calls();
    for op in LOSSY {
        rig.fail_next(op, Fault::LostResponse { status: 596 });
    }
    let r = rig.up();
    assert_eq!(r.code, 0, "{}", r.render());
    assert_outcomes(&r, &[], &[]);
    let after = rig.calls();
    let want = clean(rig.backend).calls;
    for op in LOSSY {
        // sent once more, the retry finds the work done (`already exists`, `already
        // running`); a download is not sent again when its file is there
        let again = u64::from(!op.contains("download"));
        assert_eq!(
            delta(&before, &after, op),
            want[*op] + again,
            "{op}: {after:?}"
        );
    }
    assert_tasks_as_clean(&rig);
    assert_rerun_converges(&rig);
}

scenario!(a_lost_answer_to_a_destroy_counts_as_done: sim, api);

fn a_lost_answer_to_a_destroy_counts_as_done(rig: Rig) {
    let r = rig.up();
    assert_eq!(r.code, 0, "{}", r.render());
    let before = rig.calls();
    rig.fail_next("lxc.destroy", Fault::LostResponse { status: 596 });
    let r = rig.run(&["lxc", "delete", "103", "--yes", "-o", "json"]);
    assert_eq!(r.code, 0, "{}", r.render());
    assert_eq!(outcomes(&r.json())[&103].0, "changed", "{}", r.render());
    let after = rig.calls();
    // the retry meets "does not exist": the first destroy went through
    assert_eq!(delta(&before, &after, "lxc.destroy"), 2);
    rig.with(|c| {
        assert!(!c.guests.contains_key(&103));
        let destroys = c.tasks.iter().filter(|t| t.kind == "vzdestroy").count();
        assert_eq!(destroys, 1, "one destroy task");
    });
}

scenario!(a_transient_proxy_error_is_retried: sim, api);

fn a_transient_proxy_error_is_retried(rig: Rig) {
    let before = rig.calls();
    match rig.backend {
        Backend::Api => {
            let s = rig.server();
            // answered by the proxy: the calls never reach the node
            s.fail_next_request("POST", "/nodes/pve/qemu", 596);
            s.fail_next_request("POST", "/nodes/pve/lxc", 599);
            s.fail_next_request("GET", "/nodes/pve/tasks/", 596);
        }
        _ => {
            rig.fail_next("vm.create", Fault::Http { status: 596 });
            rig.fail_next("lxc.create", Fault::Http { status: 599 });
        }
    }
    let r = rig.up();
    assert_eq!(r.code, 0, "{}", r.render());
    assert_outcomes(&r, &[], &[]);
    let after = rig.calls();
    let want = clean(rig.backend).calls;
    let reached = if rig.backend == Backend::Api { 0 } else { 1 };
    for op in ["vm.create", "lxc.create"] {
        assert_eq!(delta(&before, &after, op), want[op] + reached, "{op}");
    }
    if rig.backend == Backend::Api {
        let posts = |path: &str| {
            rig.server()
                .requests()
                .iter()
                .filter(|q| q.method == "POST" && q.path == path)
                .count()
        };
        assert_eq!(posts("/nodes/pve/qemu"), 2, "sent again after the 596");
        assert_eq!(posts("/nodes/pve/lxc"), 2, "sent again after the 599");
    }
    assert_tasks_as_clean(&rig);
}

#[test]
fn a_dropped_connection_is_retried_without_sending_an_accepted_task_twice() {
    let rig = Rig::api();
    let before = rig.calls();
    let s = rig.server();
    // closed before the node saw it, closed after it went through, and a status poll
    s.drop_next_request("POST", "/nodes/pve/lxc", false);
    s.drop_next_request("POST", "/nodes/pve/qemu", true);
    s.drop_next_request("POST", "/nodes/pve/lxc/101/status/start", true);
    s.drop_next_request("GET", "/nodes/pve/tasks/", false);
    let r = rig.up();
    assert_eq!(r.code, 0, "{}", r.render());
    assert_outcomes(&r, &[], &[]);
    let after = rig.calls();
    let want = clean(Backend::Api).calls;
    assert_eq!(delta(&before, &after, "lxc.create"), want["lxc.create"]);
    assert_eq!(delta(&before, &after, "vm.create"), want["vm.create"] + 1);
    assert_eq!(delta(&before, &after, "lxc.start"), want["lxc.start"] + 1);
    assert_tasks_as_clean(&rig);
}

#[test]
fn a_dead_port_fails_with_the_address_and_what_to_do() {
    let rig = Rig::api();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("https://127.0.0.1:{port}");
    let mut c = rig.cmd(&["up"]);
    c.env("PHX_API_URL", &url);
    let r = rig.run_cmd(c);
    assert_eq!(r.code, 1, "{}", r.render());
    assert!(
        r.stderr.contains(&format!("error: cannot talk to {url}")),
        "{}",
        r.render()
    );
    assert!(r.stderr.contains("Connection refused"), "{}", r.render());
    assert!(r.stderr.contains("hint: "), "{}", r.render());
    assert!(rig.with(|c| c.guests.is_empty()));
}

#[test]
fn the_api_going_away_mid_run_fails_the_guests_and_a_rerun_finishes() {
    let mut rig = Rig::api();
    rig.set_latency(100);
    let child = rig
        .cmd(&["up", "-o", "json", "--task-timeout", "1500ms"])
        .spawn()
        .unwrap();
    wait_until("a task to run", Duration::from_secs(20), || {
        rig.peek().tasks.iter().any(|t| t.exitstatus.is_none())
    });
    rig.stop_server();
    let out = child.wait_with_output().unwrap();
    let r = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert_eq!(r.code, 1, "{}", r.render());
    let o = outcomes(&r.json());
    for (id, (outcome, error)) in &o {
        assert!(
            outcome == "skipped"
                || (outcome == "failed"
                    && (error.contains("cannot talk to") || error.contains("could not be read"))),
            "{id}: {outcome} {error}\n{}",
            r.render()
        );
    }
    rig.restart_server();
    rig.set_latency(0);
    rig.wait_out_tasks();
    assert_rerun_converges(&rig);
    assert_created_once(&rig);
}

// ----- slow tasks and a killed phx --------------------------------------------------------

scenario!(a_task_slower_than_its_timeout_fails_its_guest_and_is_not_sent_again: pct, api);

fn a_task_slower_than_its_timeout_fails_its_guest_and_is_not_sent_again(rig: Rig) {
    let before = rig.calls();
    rig.fail_next("vm.create", Fault::Slow { ms: 2500 });
    let r = rig.run(&["up", "-o", "json", "--task-timeout", "1s"]);
    assert_eq!(r.code, 3, "{}", r.render());
    let o = assert_outcomes(&r, &[9000], &[1001, 103]);
    let e = &o[&9000].1;
    assert!(e.contains("timed out after 1s"), "{e}");
    assert!(
        e.contains("hint: phx stopped waiting, but the work may still run on node pve"),
        "{e}"
    );
    let after = rig.calls();
    assert_eq!(delta(&before, &after, "vm.create"), 1, "not sent again");
    // the task runs on without phx, and frees VM 9000 when it ends
    rig.wait_out_tasks();
    assert_rerun_converges(&rig);
    assert_created_once(&rig);
}

scenario!(a_phx_killed_mid_run_leaves_nothing_a_rerun_cannot_finish: sim, pct, api);

fn a_phx_killed_mid_run_leaves_nothing_a_rerun_cannot_finish(rig: Rig) {
    let mut c = rig.cmd(&["up", "-o", "json"]);
    if rig.backend == Backend::Sim {
        c.env("PHX_SIM_LATENCY_MS", "300");
    } else {
        rig.set_latency(300);
    }
    let mut child = c.spawn().unwrap();
    // SIGKILL while the clone of 101 runs
    wait_until("the clone of 101 to start", Duration::from_secs(30), || {
        rig.peek()
            .tasks
            .iter()
            .any(|t| t.kind == "vzclone" && t.exitstatus.is_none())
    });
    child.kill().unwrap();
    child.wait().unwrap();
    if rig.backend != Backend::Sim {
        rig.set_latency(0);
    }
    // phx is gone, its clone goes on: 101 half-made and locked, its source locked too
    rig.with(|c| {
        assert_eq!(
            c.guests[&101].lock(),
            Some("create"),
            "{:?}",
            c.guests[&101]
        );
        assert_eq!(c.guests[&900].lock(), Some("disk"));
    });
    // the next phx waits for the clone (a lock is retried), then finishes the work; no lock
    // stays behind, nothing exists twice
    assert_rerun_converges(&rig);
    assert_created_once(&rig);
}

// ----- credentials that stop working ------------------------------------------------------

#[test]
fn a_token_revoked_mid_run_fails_what_is_left_naming_the_token() {
    let rig = Rig::api();
    // revoked when 101's clone is sent: 900 is done by then, 101 and 9000 are not
    rig.server()
        .revoke_token_at("POST", "/nodes/pve/lxc/900/clone", TOKEN);
    let r = rig.run(&["up", "-j", "1"]);
    assert!(!r.render().contains(TOKEN_SECRET), "{}", r.render());
    // 900 succeeded, so: some failed while others succeeded (also without the status table)
    assert_eq!(r.code, 3, "{}", r.render());
    let refused = "authentication failed: Authentication failed! (API token root@pam!phx was \
                   refused by https://127.0.0.1:";
    for row in [
        "| changed | 900  | lxc  | Base-Template",
        "| failed  | 101  | lxc  | dns                   | clone: authentication failed",
        "| failed  | 9000 | vm   | ubuntu-cloud-template | download-image: authentication failed",
        "| skipped | 102  |",
        "| skipped | 1001 |",
        "| skipped | 103  |",
        "hint: the credentials stopped working: check the API token",
    ] {
        assert!(r.stdout.contains(row), "{row}\n{}", r.render());
    }
    assert!(
        r.stderr
            .contains(&format!("WARN no status table: {refused}")),
        "{}",
        r.render()
    );
    rig.with(|c| {
        assert_eq!(c.guests.keys().copied().collect::<Vec<_>>(), [900]);
        assert_eq!(c.guests[&900].lock(), None);
    });
    // nothing was sent twice; a new token finishes the work
    assert_no_task_twice(&rig);
    let mut c = rig.cmd(&["up", "-o", "json"]);
    c.env("PHX_API_TOKEN", SPARE_TOKEN);
    let r = rig.run_cmd(c);
    assert_eq!(r.code, 0, "{}", r.render());
    assert_eq!(rig.end_state(), clean(Backend::Api).state);
    assert_created_once(&rig);
}

#[test]
fn an_expired_ticket_is_renewed_mid_run() {
    // tickets last 1-2 s (whole seconds); the run takes longer (some 17 tasks in a row)
    let rig = Rig::api_with(|o| o.ticket_lifetime = Duration::from_secs(1));
    rig.set_latency(200);
    let mut c = rig.cmd(&["up", "-o", "json"]);
    c.env_remove("PHX_API_TOKEN")
        .env("PHX_API_USER", USER.0)
        .env("PHX_API_PASSWORD", USER.1);
    let r = rig.run_cmd(c);
    assert_eq!(r.code, 0, "{}", r.render());
    assert!(!r.render().contains(USER.1), "{}", r.render());
    let logins = rig
        .server()
        .requests()
        .iter()
        .filter(|q| q.method == "POST" && q.path == "/access/ticket")
        .count();
    assert!(logins >= 2, "the ticket outlived the run ({logins} logins)");
    assert_tasks_as_clean(&rig);
    assert_eq!(rig.end_state(), clean(Backend::Api).state);
}
