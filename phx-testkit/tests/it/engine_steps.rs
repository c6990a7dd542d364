//! What single engine steps do, refuse and report, on a copy of the example site edited per
//! test: disks never shrink, mount points are matched by path, one LXC clone per source at a
//! time, snapshots on storages without them, the NVIDIA driver check, firewall rule changes,
//! and VM feature scripts that do not stay in the guest.

use std::path::Path;
use std::sync::Mutex;

use phx_core::config::{Inventory, LoadOptions};
use phx_core::engine::{EngineOptions, Operation, RetryPolicy};
use phx_core::report::{Event, Outcome, Reporter};
use phx_testkit::FakeBackend;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::support::*;

const CREATE: Operation = Operation::Converge {
    require_existing: false,
};
const RECONFIGURE: Operation = Operation::Converge {
    require_existing: true,
};

/// A copy of the example site (config and scripts) that a test edits.
struct Site {
    dir: TempDir,
}

impl Site {
    fn example() -> Self {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&repo().join("examples/homelab"), dir.path());
        Self { dir }
    }

    fn edit(&self, file: &str, f: impl FnOnce(&mut Value)) {
        let p = self.dir.path().join("etc").join(file);
        let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        f(&mut v);
        std::fs::write(&p, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    }

    /// Edit `lxc_configs`.
    fn containers(&self, f: impl FnOnce(&mut serde_json::Map<String, Value>)) {
        self.edit("phoenix_lxc_configs.json", |v| {
            f(v["lxc_configs"].as_object_mut().unwrap())
        });
    }

    /// A site script (relative to the scripts dir), executable.
    fn script(&self, rel: &str, body: &str) {
        use std::os::unix::fs::PermissionsExt;
        let p = self.dir.path().join("bin").join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn inventory(&self) -> Inventory {
        Inventory::load(&LoadOptions {
            config_dir: self.dir.path().join("etc"),
            scripts_dir: Some(self.dir.path().join("bin")),
        })
        .expect("the edited site is valid")
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.path().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// A container of the example cloned from `from`, without dependencies, at 192.168.50.`n`.
fn clone_of(from: &str, name: &str, n: u8) -> Value {
    json!({
        "name": name,
        "clone_from_ctid": from,
        "start_at_boot": true,
        "memory_mb": 512,
        "cores": 1,
        "storage_pool": "local-lvm",
        "storage_size_gb": 8,
        "network_config": {
            "name": "eth0", "bridge": "vmbr0", "ip": format!("192.168.50.{n}/24"),
            "gw": "192.168.50.1"
        },
        "mac_address": format!("52:54:00:50:02:{n:02X}"),
        "unprivileged": true
    })
}

/// Warnings and failed steps, as text.
#[derive(Default)]
struct Events(Mutex<Vec<String>>);

impl Reporter for Events {
    fn report(&self, e: &Event<'_>) {
        let line = match e {
            Event::Warning { id, message } => format!(
                "{} warning: {message}",
                id.map(|i| i.to_string()).unwrap_or_default()
            ),
            Event::StepFinished {
                id,
                op,
                error: Some(e),
                ..
            } => format!("{id} {op} failed: {e}"),
            _ => return,
        };
        self.0.lock().unwrap().push(line);
    }
}

impl Events {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

/// Plan and apply with a reporter.
async fn apply(
    e: &phx_core::engine::Engine,
    targets: &[u32],
    op: Operation,
) -> (
    phx_core::engine::Plan,
    phx_core::engine::RunResult,
    Vec<String>,
) {
    let plan = e.plan(&ids(targets), op).await.expect("plan");
    let events = Events::default();
    let r = e.apply(&plan, &events).await;
    (plan, r, events.take())
}

fn result_of(r: &phx_core::engine::RunResult, id: u32) -> &phx_core::engine::GuestResult {
    r.guests.iter().find(|g| g.id.get() == id).unwrap()
}

// ----- disks and mount points ---------------------------------------------------------------

#[tokio::test]
async fn a_smaller_rootfs_is_refused_and_nothing_changes() {
    let site = Site::example();
    let fake = fake();
    let (_, r) = run(&engine(&fake, site.inventory()), &[102], CREATE).await;
    assert_eq!(r.result(), "ok", "{}", summary(&r));
    let before = fake.snapshot().guests[&102].clone();
    assert_eq!(before.config["rootfs"], "local-lvm:vm-102-disk-0,size=10G");
    // a smaller disk, and another change that must not happen either
    site.containers(|c| {
        c["102"]["storage_size_gb"] = json!(4);
        c["102"]["memory_mb"] = json!(2048);
    });
    oplog(&fake);
    let e = engine(&fake, site.inventory());
    let (plan, r) = run(&e, &[102], RECONFIGURE).await;
    let refusal = "rootfs is 10G but storage_size_gb is 4: Proxmox cannot shrink a container disk; set storage_size_gb to at least 10 or recreate the container";
    let gp = plan.guests.iter().find(|g| g.id.get() == 102).unwrap();
    assert_eq!(gp.error.as_deref(), Some(refusal));
    assert!(gp.actions.is_empty(), "{}", plan_text(&plan));
    let g = result_of(&r, 102);
    assert_eq!(g.outcome, Outcome::Failed);
    assert_eq!(g.error.as_deref(), Some(refusal));
    assert!(g.actions.is_empty());
    assert_eq!(writes(&fake), "");
    let after = fake.snapshot().guests[&102].clone();
    assert_eq!(after.config, before.config);
    assert_eq!(after.status, before.status);
    assert_eq!(after.snapshots.len(), before.snapshots.len());
}

#[tokio::test]
async fn reordered_mount_points_are_not_remounted() {
    let site = Site::example();
    site.containers(|c| {
        c["101"]["mount_points"] = json!([
            { "host_path": "/srv/homelab/dns", "container_path": "/etc/dnsmasq.d" },
            { "host_path": "/srv/homelab/dns-logs", "container_path": "/var/log/dnsmasq" }
        ]);
        c["101"]["zfs_volumes"] = json!([
            { "name": "dns-cache", "pool": "local-lvm", "size_gb": 1, "mount_point": "/var/cache/dns" },
            { "name": "dns-data", "pool": "local-lvm", "size_gb": 2, "mount_point": "/var/lib/dns" }
        ]);
    });
    let fake = fake();
    let (_, r) = run(&engine(&fake, site.inventory()), &[101], CREATE).await;
    assert_eq!(r.result(), "ok", "{}", summary(&r));
    let mounted = |fake: &FakeBackend| {
        let g = fake.snapshot().guests[&101].clone();
        g.config
            .into_iter()
            .filter(|(k, _)| k.starts_with("mp"))
            .collect::<Vec<_>>()
    };
    let before = mounted(&fake);
    assert_eq!(before.len(), 4, "{before:?}");

    site.containers(|c| {
        let reverse = |v: &mut Value| {
            let a = v.as_array_mut().unwrap();
            a.reverse();
        };
        reverse(&mut c["101"]["mount_points"]);
        reverse(&mut c["101"]["zfs_volumes"]);
    });
    oplog(&fake);
    let e = engine(&fake, site.inventory());
    let plan = e.plan(&ids(&[101]), RECONFIGURE).await.unwrap();
    assert!(plan.is_empty(), "{}", plan_text(&plan));
    assert!(plan.guests.iter().all(|g| g.notes.is_empty()));
    let (_, r) = run(&e, &[101], RECONFIGURE).await;
    assert_eq!(
        r.count(Outcome::Unchanged),
        r.guests.len(),
        "{}",
        summary(&r)
    );
    assert_eq!(writes(&fake), "");
    assert_eq!(mounted(&fake), before);
}

// ----- clones -------------------------------------------------------------------------------

#[tokio::test]
async fn lxc_clones_of_one_source_run_one_at_a_time_and_of_two_sources_at_once() {
    let site = Site::example();
    site.containers(|c| {
        let mut second = c["900"].clone();
        second["name"] = json!("Base-Template-B");
        second["network_config"]["ip"] = json!("192.168.50.201/24");
        second["mac_address"] = json!("52:54:00:50:00:C9");
        c.insert("901".into(), second);
        c.insert("150".into(), clone_of("900", "a1", 150));
        c.insert("151".into(), clone_of("900", "a2", 151));
        c.insert("152".into(), clone_of("901", "b1", 152));
    });
    let fake = fake();
    fake.with(|c| c.set_latency_ms(150));
    let e = engine(&fake, site.inventory()).with_options(EngineOptions {
        jobs: 4,
        retry: RetryPolicy::fast(),
        ..EngineOptions::default()
    });
    let (_, r) = run(&e, &[150, 151, 152], CREATE).await;
    assert_eq!(r.result(), "ok", "{}", summary(&r));
    // (source, start, end) on the fake's logical clock, which ticks at every task start and end
    let clones: Vec<(String, i64, i64)> = fake.with(|c| {
        c.tasks
            .iter()
            .filter(|t| t.kind == "vzclone")
            .map(|t| (t.id.clone(), t.starttime, t.endtime.unwrap()))
            .collect()
    });
    assert_eq!(clones.len(), 3, "{clones:?}");
    // phx waited: the cluster never refused a clone of a source locked by another one
    assert_eq!(fake.with(|c| c.counters.per_op["lxc.clone"]), 3);
    let of = |src: &str| -> Vec<(i64, i64)> {
        clones
            .iter()
            .filter(|c| c.0 == src)
            .map(|c| (c.1, c.2))
            .collect()
    };
    let overlap = |a: (i64, i64), b: (i64, i64)| a.0 < b.1 && b.0 < a.1;
    let from_900 = of("900");
    assert_eq!(from_900.len(), 2, "{clones:?}");
    assert!(
        !overlap(from_900[0], from_900[1]),
        "two clones of CT 900 ran at once: {clones:?}"
    );
    let from_901 = of("901")[0];
    assert!(
        from_900.iter().any(|c| overlap(*c, from_901)),
        "the clone of CT 901 waited for those of CT 900: {clones:?}"
    );
}

// ----- snapshots ----------------------------------------------------------------------------

#[tokio::test]
async fn a_snapshot_on_a_storage_without_snapshots_is_a_warning() {
    let site = Site::example();
    // CT 102 takes lifecycle snapshots; its rootfs goes onto a directory storage
    site.containers(|c| c["102"]["storage_pool"] = json!("local-dir"));
    let fake = fake();
    fake.with(|c| {
        c.add_storage(phx_testkit::fake::FakeStorage {
            id: "local-dir".into(),
            kind: "dir".into(),
            content: vec!["rootdir".into(), "images".into()],
            shared: false,
            disabled: false,
            nodes: None,
            total: 1 << 40,
            params: Default::default(),
        })
        .unwrap()
    });
    let e = engine(&fake, site.inventory());
    let (plan, r, events) = apply(&e, &[102], CREATE).await;
    assert!(
        plan_text(&plan).contains("~snapshot pre-configured [enable_lifecycle_snapshots"),
        "{}",
        plan_text(&plan)
    );
    assert_eq!(r.result(), "ok", "{}", summary(&r));
    let not_taken = |name: &str| {
        format!(
            "102 warning: snapshot {name} not taken: snapshot feature is not available (the guest's storage does not support snapshots)"
        )
    };
    assert_eq!(
        events,
        [not_taken("pre-configured"), not_taken("final-form")]
    );
    let g = result_of(&r, 102);
    assert_eq!(g.outcome, Outcome::Changed);
    // the warnings stay with the result too (for -o json and runs without progress)
    let noted = |name: &str| {
        format!(
            "snapshot {name} not taken: snapshot feature is not available (the guest's storage does not support snapshots)"
        )
    };
    assert!(g.notes.contains(&noted("pre-configured")), "{:?}", g.notes);
    assert!(g.notes.contains(&noted("final-form")), "{:?}", g.notes);
    assert!(
        g.actions.iter().all(|a| a.op != "snapshot"),
        "a snapshot not taken is not an action done: {}",
        summary(&r)
    );
    let c = fake.snapshot();
    assert_eq!(
        c.guests[&102].config["rootfs"],
        "local-dir:102/vm-102-disk-0.raw,size=10G"
    );
    assert!(c.guests[&102].snapshots.is_empty());
}

// ----- the NVIDIA driver check --------------------------------------------------------------

/// CT 150 with the `nvidia` feature, and `nvidia-smi` in the container printing `driver`
/// (none: no nvidia-smi at all).
async fn nvidia_container(driver: Option<&str>) -> (FakeBackend, Vec<String>, String) {
    let site = Site::example();
    site.containers(|c| {
        let mut ct = clone_of("900", "gpu", 150);
        ct["features"] = json!(["nvidia"]);
        c.insert("150".into(), ct);
    });
    site.script(
        "lxc_setup/phoenix_hypervisor_feature_install_nvidia.sh",
        "#!/bin/sh\necho \"nvidia driver for CT $1\"\n",
    );
    let fake = fake();
    if let Some(v) = driver {
        let bin = fake.guest_root(ids(&[150])[0]).join("usr/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(
            bin.join("nvidia-smi"),
            format!(
                "#!/bin/sh\necho \"$@\" >> \"$PHX_GUEST_ROOT/tmp/nvidia-smi.calls\"\necho {v}\n"
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            bin.join("nvidia-smi"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
    }
    let e = engine(&fake, site.inventory());
    let (_, r, events) = apply(&e, &[150], CREATE).await;
    let g = result_of(&r, 150);
    let outcome = format!(
        "{:?} {}",
        g.outcome,
        g.error.as_deref().unwrap_or("(no error)")
    );
    (fake, events, outcome)
}

fn nvidia_calls(fake: &FakeBackend) -> String {
    std::fs::read_to_string(fake.guest_root(ids(&[150])[0]).join("tmp/nvidia-smi.calls"))
        .unwrap_or_default()
}

#[tokio::test]
async fn nvidia_check_passes_when_the_container_sees_the_configured_driver() {
    let (fake, events, outcome) = nvidia_container(Some("580.76.05")).await;
    assert_eq!(outcome, "Changed (no error)");
    assert_eq!(events, Vec::<String>::new());
    // asked once, for the driver version only
    assert_eq!(
        nvidia_calls(&fake),
        "--query-gpu=driver_version --format=csv,noheader,nounits\n"
    );
}

#[tokio::test]
async fn nvidia_check_fails_on_another_driver_version() {
    let (fake, events, outcome) = nvidia_container(Some("550.54.14")).await;
    let failure =
        "health-check: NVIDIA check failed: expected driver 580.76.05, got driver 550.54.14";
    assert_eq!(outcome, format!("Failed {failure}"));
    assert_eq!(
        events,
        [
            "150 health-check failed: NVIDIA check failed: expected driver 580.76.05, got driver 550.54.14"
        ]
    );
    // three attempts before giving up
    assert_eq!(nvidia_calls(&fake).lines().count(), 3);
}

#[tokio::test]
async fn nvidia_check_fails_without_nvidia_smi() {
    let (_, _, outcome) = nvidia_container(None).await;
    assert_eq!(
        outcome,
        "Failed health-check: NVIDIA check failed: expected driver 580.76.05, got exit code 127:\n    lxc-attach: failed to exec 'nvidia-smi': No such file or directory (os error 2)"
    );
}

// ----- firewall -----------------------------------------------------------------------------

#[tokio::test]
async fn changed_firewall_rules_are_shown_rule_by_rule() {
    let site = Site::example();
    let fake = fake();
    let (plan, r) = run(&engine(&fake, site.inventory()), &[101], CREATE).await;
    assert_eq!(r.result(), "ok", "{}", summary(&r));
    // a new guest gets every rule: nothing to compare
    assert!(
        plan_text(&plan).contains("~firewall-rules 2 rules [firewall rules differ]"),
        "{}",
        plan_text(&plan)
    );
    let rules = |site: &Site, f: &dyn Fn(&mut Vec<Value>)| {
        site.containers(|c| f(c["101"]["firewall"]["rules"].as_array_mut().unwrap()));
    };
    let detail = |site: &Site| firewall_rules_step(&fake, site.inventory());
    // a port changes
    rules(&site, &|r| r[1]["port"] = json!("5353"));
    assert_eq!(
        detail(&site).await,
        [
            "2 rules: - in ACCEPT tcp dport 53 from 192.168.50.0/24 (\"DNS over TCP from the LAN\"), + in ACCEPT tcp dport 5353 from 192.168.50.0/24 (\"DNS over TCP from the LAN\") [firewall rules differ]"
        ]
    );
    // a rule goes, and only a comment changes in the other
    rules(&site, &|r| {
        r.remove(1);
        r[0]["comment"] = json!("DNS");
    });
    assert_eq!(
        detail(&site).await,
        [
            "1 rule: - in ACCEPT udp dport 53 from 192.168.50.0/24 (\"DNS from the LAN\"), - in ACCEPT tcp dport 53 from 192.168.50.0/24 (\"DNS over TCP from the LAN\"), + in ACCEPT udp dport 53 from 192.168.50.0/24 (\"DNS\") [firewall rules differ]"
        ]
    );
    // the same rules in another order
    let site = Site::example();
    rules(&site, &|r| r.reverse());
    assert_eq!(
        detail(&site).await,
        ["2 rules: same rules in another order [firewall rules differ]"]
    );
}

/// The planned firewall-rules steps of CT 101: detail and reason.
async fn firewall_rules_step(fake: &FakeBackend, inv: Inventory) -> Vec<String> {
    let plan = engine(fake, inv)
        .plan(&ids(&[101]), RECONFIGURE)
        .await
        .unwrap();
    plan.guests
        .iter()
        .flat_map(|g| g.actions.iter())
        .filter(|a| a.op == "firewall-rules")
        .map(|a| format!("{} [{}]", a.detail, a.reason))
        .collect()
}

// ----- VM features --------------------------------------------------------------------------

/// VM 1001 without its dependencies (the docker feature runs in it), after `create`.
async fn vm_with_feature(site: &Site) -> (FakeBackend, phx_core::engine::RunResult, Vec<String>) {
    site.edit("phoenix_vm_configs.json", |v| {
        v["vms"][1]["dependencies"] = json!([]);
    });
    let fake = fake();
    let e = engine(&fake, site.inventory());
    let (_, r, events) = apply(&e, &[1001], CREATE).await;
    (fake, r, events)
}

fn staged(fake: &FakeBackend) -> std::path::PathBuf {
    fake.guest_root(ids(&[1001])[0])
        .join("tmp/phoenix_features/feature_install_docker.sh")
}

#[tokio::test]
async fn a_vm_feature_script_is_removed_from_the_guest_after_it_ran() {
    let site = Site::example();
    let (fake, r, events) = vm_with_feature(&site).await;
    assert_eq!(r.result(), "ok", "{}", summary(&r));
    assert_eq!(events, Vec::<String>::new());
    // it ran (its marker is there), and is gone
    let root = fake.guest_root(ids(&[1001])[0]);
    assert!(root.join("etc/phx/docker.installed").is_file());
    assert!(!staged(&fake).exists());
    let log = fake.with(|c| c.oplog.clone());
    let calls: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("phoenix_features"))
        .collect();
    let site_dir = site.dir.path().display().to_string();
    // the log's name is unique per command: `<script>.<pid>-<n>.log`
    let unique = |l: &str| -> String {
        let mut out = String::new();
        let mut rest = l;
        while let Some(i) = rest.find(".sh.") {
            out.push_str(&rest[..i + 4]);
            rest = &rest[i + 4..];
            let end = rest.find(".log").expect("a log name");
            assert!(
                rest[..end].chars().all(|c| c.is_ascii_digit() || c == '-'),
                "{l}"
            );
            out.push('N');
            rest = &rest[end..];
        }
        out.push_str(rest);
        out
    };
    let calls: Vec<String> = calls
        .iter()
        .map(|l| unique(&l.replace(&site_dir, "[SITE]")))
        .collect();
    assert_eq!(
        calls,
        [
            "read vm.agent.exec 1001 mkdir -p /tmp/phoenix_features".to_string(),
            format!(
                "vm.agent.file-write 1001 /tmp/phoenix_features/feature_install_docker.sh {}B",
                std::fs::metadata(site.dir.path().join("bin/vm_features/feature_install_docker.sh"))
                    .unwrap()
                    .len()
            ),
            // sh's program is fixed: the log and the command are its arguments
            "read vm.agent.exec 1001 /bin/sh -c log=$1; shift; exec \"$@\" >\"$log\" 2>&1 phx-followed /tmp/phoenix_features/feature_install_docker.sh.N.log /usr/bin/env PHX_GUEST_ID=1001 PHX_GUEST_KIND=vm PHX_NODE=pve PHX_CONFIG_DIR=[SITE]/etc /bin/bash /tmp/phoenix_features/feature_install_docker.sh 1001".to_string(),
            "read vm.agent.file-read 1001 /tmp/phoenix_features/feature_install_docker.sh.N.log".to_string(),
            "read vm.agent.exec 1001 rm -f /tmp/phoenix_features/feature_install_docker.sh /tmp/phoenix_features/feature_install_docker.sh.N.log".to_string(),
        ]
    );
    // nothing is left in the guest
    let left: Vec<_> = std::fs::read_dir(root.join("tmp/phoenix_features"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Script output with the time it was reported.
#[derive(Default)]
struct Lines(Mutex<Vec<(std::time::Instant, String)>>);

impl Reporter for Lines {
    fn report(&self, e: &Event<'_>) {
        if let Event::Output { source, line, .. } = e {
            let mut l = self.0.lock().unwrap();
            l.push((std::time::Instant::now(), format!("[{source}] {line}")));
        }
    }
}

impl Lines {
    /// The lines, and how long after the first the last was reported.
    fn take(&self) -> (Vec<String>, std::time::Duration) {
        let l = self.0.lock().unwrap();
        let gap = match (l.first(), l.last()) {
            (Some(a), Some(b)) => b.0 - a.0,
            _ => std::time::Duration::ZERO,
        };
        (l.iter().map(|(_, s)| s.clone()).collect(), gap)
    }
}

/// `create` of one guest; its script output, and how long after the first line the last came.
async fn create_reporting_lines(
    fake: &FakeBackend,
    site: &Site,
    id: u32,
) -> (Vec<String>, std::time::Duration) {
    let e = engine(fake, site.inventory());
    let plan = e.plan(&ids(&[id]), CREATE).await.expect("plan");
    let lines = Lines::default();
    let r = e.apply(&plan, &lines).await;
    assert_eq!(r.result(), "ok", "{}", summary(&r));
    lines.take()
}

#[tokio::test]
async fn a_vm_feature_s_output_is_reported_while_it_runs() {
    let site = Site::example();
    // the agent gives output only when a command ends: phx follows the script's log instead
    site.script(
        "vm_features/feature_install_docker.sh",
        "#!/usr/bin/env bash\necho 'docker: fetching'\nsleep 2.5\necho 'docker: installed' >&2\nprintf 'no newline'\n",
    );
    site.edit("phoenix_vm_configs.json", |v| {
        v["vms"][1]["dependencies"] = json!([]);
    });
    let fake = fake();
    let (seen, gap) = create_reporting_lines(&fake, &site, 1001).await;
    assert_eq!(
        seen,
        [
            "[feature docker] docker: fetching",
            "[feature docker] docker: installed",
            "[feature docker] no newline",
        ]
    );
    // the first line was reported while the script still slept
    assert!(gap >= std::time::Duration::from_secs(1), "{gap:?}");
    let root = fake.guest_root(ids(&[1001])[0]);
    let left: Vec<_> = std::fs::read_dir(root.join("tmp/phoenix_features"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn a_vm_feature_that_times_out_still_shows_its_last_lines() {
    let site = Site::example();
    site.script(
        "vm_features/feature_install_docker.sh",
        "#!/usr/bin/env bash\necho 'docker: stuck at 42%'\nsleep 5\necho 'never'\n",
    );
    site.edit("phoenix_vm_configs.json", |v| {
        v["vms"][1]["dependencies"] = json!([]);
    });
    let fake = fake();
    let opts = EngineOptions {
        jobs: 1,
        retry: RetryPolicy::fast(),
        script_timeout: std::time::Duration::from_millis(500),
        ..EngineOptions::default()
    };
    let e = phx_core::engine::Engine::new(std::sync::Arc::new(fake.clone()), site.inventory())
        .with_options(opts);
    let plan = e.plan(&ids(&[1001]), CREATE).await.expect("plan");
    let lines = Lines::default();
    let r = e.apply(&plan, &lines).await;
    let g = result_of(&r, 1001);
    assert_eq!(g.outcome, Outcome::Failed, "{}", summary(&r));
    assert!(
        g.error.as_deref().is_some_and(|e| e.contains("timed out")),
        "{:?}",
        g.error
    );
    let (seen, _) = lines.take();
    assert_eq!(seen, ["[feature docker] docker: stuck at 42%"]);
}

#[tokio::test]
async fn a_vm_test_s_output_is_reported_while_it_runs() {
    let site = Site::example();
    site.script(
        "tests/apps/docker_ok.sh",
        "#!/usr/bin/env bash\necho 'docker: asking'\nsleep 2.5\necho 'docker: answers'\n",
    );
    let (fake, _, _) = vm_with_feature(&site).await;
    let e = engine(&fake, site.inventory());
    let lines = Lines::default();
    let report = e
        .run_tests(ids(&[1001])[0], Some("smoke"), &lines)
        .await
        .expect("tests");
    assert_eq!(report.passed(), 1);
    assert_eq!(
        report.results[0].output, "docker: asking\ndocker: answers\n",
        "the whole output is kept"
    );
    let (seen, gap) = lines.take();
    assert_eq!(
        seen,
        [
            "[test docker answers] docker: asking",
            "[test docker answers] docker: answers",
        ]
    );
    assert!(gap >= std::time::Duration::from_secs(1), "{gap:?}");
}

#[tokio::test]
async fn a_container_feature_s_output_is_reported_while_it_runs() {
    let site = Site::example();
    site.script(
        "lxc_setup/phoenix_hypervisor_feature_install_base_setup.sh",
        "#!/usr/bin/env bash\necho \"base_setup for $1: apt\"\nsleep 1.5\necho 'base_setup: done' >&2\n",
    );
    let fake = fake();
    let (seen, gap) = create_reporting_lines(&fake, &site, 900).await;
    assert_eq!(
        seen,
        [
            "[feature base_setup] base_setup for 900: apt",
            "[feature base_setup] base_setup: done",
        ]
    );
    assert!(gap >= std::time::Duration::from_secs(1), "{gap:?}");
}

#[tokio::test]
async fn a_failed_vm_feature_script_is_removed_too() {
    let site = Site::example();
    site.script(
        "vm_features/feature_install_docker.sh",
        "#!/usr/bin/env bash\necho \"docker: no network\" >&2\nexit 5\n",
    );
    let (fake, r, events) = vm_with_feature(&site).await;
    let g = result_of(&r, 1001);
    assert_eq!(g.outcome, Outcome::Failed);
    assert_eq!(
        g.error.as_deref(),
        Some("feature: feature docker failed with exit code 5:\n    docker: no network")
    );
    assert_eq!(
        events,
        ["1001 feature failed: feature docker failed with exit code 5:\n    docker: no network"]
    );
    assert!(!staged(&fake).exists());
}

#[tokio::test]
async fn a_vm_feature_script_that_cannot_be_removed_is_a_warning() {
    let site = Site::example();
    // the script leaves a directory where it was: `rm -f` cannot remove that
    site.script(
        "vm_features/feature_install_docker.sh",
        "#!/usr/bin/env bash\nset -e\nrm \"$0\"\nmkdir \"$0\"\ntouch \"$0/keep\"\necho \"docker: installed\"\n",
    );
    let (fake, r, events) = vm_with_feature(&site).await;
    assert_eq!(r.result(), "ok", "{}", summary(&r));
    assert_eq!(result_of(&r, 1001).outcome, Outcome::Changed);
    assert_eq!(events.len(), 1, "{events:#?}");
    assert!(
        events[0].starts_with(
            "1001 warning: could not remove /tmp/phoenix_features/feature_install_docker.sh after the feature (exit 1:\n    rm: cannot remove "
        ),
        "{events:#?}"
    );
    assert!(staged(&fake).is_dir());
}
