//! The parsers against real Proxmox output (`shared/fixtures/pve-samples`, read at run time),
//! edge cases, and round trips through the `printf` layouts Proxmox prints with.

use std::path::PathBuf;

use phx_backend_pct::parse::{self, GuestExec, TaskStatus};
use phx_backend_pct::{classify_stderr, error_line};
use phx_core::backend::PowerState;
use phx_core::error::{ConflictReason, Error};
use phx_core::types::{GuestKind, NodeName};
use proptest::prelude::*;
use serde_json::Value;

fn samples_dir() -> Option<PathBuf> {
    phx_testkit::fixtures::pve_samples()
}

/// A sample's text without the shell prompt and trace lines the captures include
/// (`root@pve:~# pct list`, `+ pct start 101`).
fn sample(name: &str) -> Option<String> {
    let text = std::fs::read_to_string(samples_dir()?.join(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let is_prompt = |l: &str| {
        (l.contains('@') && (l.contains(":~#") || l.contains(":~$"))) || l.starts_with("+ ")
    };
    Some(
        text.lines()
            .filter(|l| !is_prompt(l))
            .map(|l| format!("{l}\n"))
            .collect(),
    )
}

fn json(name: &str) -> Option<Value> {
    let text = std::fs::read_to_string(samples_dir()?.join(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    Some(v.get("data").cloned().unwrap_or(v))
}

fn pve() -> NodeName {
    NodeName::new("pve").unwrap()
}

// ----- text samples ----------------------------------------------------------------------

#[test]
fn pct_list_samples_parse_with_trailing_spaces_and_trimmed_rows() {
    let Some(one) = sample("cli-pct-list-1.txt") else {
        return;
    };
    let v = parse::pct_list(&one).unwrap();
    assert_eq!(
        v.iter()
            .map(|e| (e.vmid.get(), e.status, e.name.as_str()))
            .collect::<Vec<_>>(),
        vec![
            (103, PowerState::Stopped, "webserver-ct"),
            (104, PowerState::Stopped, "webserver-ct-1"),
            (105, PowerState::Stopped, "webserver-ct-2")
        ]
    );
    assert!(v.iter().all(|e| e.lock.is_none()));
    let two = parse::pct_list(&sample("cli-pct-list-2.txt").unwrap()).unwrap();
    assert_eq!(
        two.iter()
            .map(|e| (e.vmid.get(), e.status))
            .collect::<Vec<_>>(),
        vec![
            (100, PowerState::Running),
            (101, PowerState::Stopped),
            (102, PowerState::Running)
        ]
    );
    assert_eq!(two[2].name, "caddy");
}

#[test]
fn pct_status_sample() {
    let Some(s) = sample("cli-pct-status-1.txt") else {
        return;
    };
    assert_eq!(parse::status_line(&s).unwrap(), PowerState::Running);
}

#[test]
fn pct_config_samples_keep_property_strings_verbatim() {
    let Some(one) = sample("cli-pct-config-1.txt") else {
        return;
    };
    let c = parse::config_text(&one).unwrap();
    assert_eq!(c.get("hostname"), Some("webserver-ct-1"));
    assert_eq!(c.num("memory").unwrap(), Some(512));
    assert_eq!(c.flag("unprivileged"), Some(true));
    let net = c.lxc_net("net0").unwrap().unwrap();
    assert_eq!(
        net.hwaddr.map(|m| m.to_string()),
        Some("E2:A0:B2:B2:69:13".into())
    );
    assert_eq!(
        c.mount_point("rootfs").unwrap().unwrap().volume,
        "local-lvm:vm-104-disk-0"
    );
    let two = parse::config_text(&sample("cli-pct-config-2.txt").unwrap()).unwrap();
    assert_eq!(
        two.get("unprivileged"),
        None,
        "a privileged CT has no unprivileged line"
    );
    let mps = two.mount_points().unwrap();
    assert_eq!(mps.len(), 3);
    assert!(mps.values().all(|m| m.is_bind()), "{mps:?}");
    assert_eq!(two.get("tags"), Some("nas"));
    assert!(two.raw_lxc.is_empty());
}

#[test]
fn qm_list_samples_parse_names_with_spaces_and_ragged_rows() {
    let Some(one) = sample("cli-qm-list-1.txt") else {
        return;
    };
    let v = parse::qm_list(&one).unwrap();
    assert_eq!(v.len(), 8);
    assert_eq!(
        (
            v[1].vmid.get(),
            v[1].name.as_str(),
            v[1].mem_mb,
            v[1].bootdisk_gb
        ),
        (104, "VM 104", 24000, 128.0)
    );
    assert_eq!(
        (v[2].name.as_str(), v[2].status, v[2].pid),
        ("W25S", PowerState::Running, 277_805)
    );
    let two = parse::qm_list(&sample("cli-qm-list-2.txt").unwrap()).unwrap();
    assert_eq!(
        two.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
        vec!["webserver", "webserver-1", "webserver-2"]
    );
    let three = parse::qm_list(&sample("cli-qm-list-3.txt").unwrap()).unwrap();
    assert_eq!(
        (
            three[3].vmid.get(),
            three[3].name.as_str(),
            three[3].status,
            three[3].bootdisk_gb
        ),
        (9000, "alpine-template", PowerState::Stopped, 10.0)
    );
}

#[test]
fn qm_config_samples_keep_cloud_init_values() {
    let Some(one) = sample("cli-qm-config-1.txt") else {
        return;
    };
    let c = parse::config_text(&one).unwrap();
    assert_eq!(c.get("boot"), Some("order=scsi0;ide2;net0;ide0"));
    assert_eq!(c.get("cipassword"), Some("**********"));
    assert!(c.disk("ide0").unwrap().unwrap().is_cloudinit());
    let two = parse::config_text(&sample("cli-qm-config-2.txt").unwrap()).unwrap();
    assert!(two.is_template());
    assert!(
        two.get("sshkeys")
            .is_some_and(|k| k.starts_with("ssh-ed25519%20") && k.ends_with("%0A"))
    );
    assert_eq!(two.get("ipconfig0"), Some("ip=dhcp,ip6=dhcp"));
}

#[test]
fn pvesm_status_sample_with_the_old_header() {
    let Some(s) = sample("cli-pvesm-status-1.txt") else {
        return;
    };
    let v = parse::pvesm_status(&s).unwrap();
    assert_eq!(v.len(), 5);
    assert_eq!(
        (
            v[0].name.as_str(),
            v[0].kind.as_str(),
            v[0].status.as_str(),
            v[0].total_kib,
            v[0].percent
        ),
        ("fastpool", "dir", "active", 1_934_547_328, Some(7.05))
    );
    assert_eq!(v[4].avail_kib, 17_063_580_416);
}

#[test]
fn pveam_list_samples_with_and_without_header() {
    let Some(one) = sample("cli-pveam-list-1.txt") else {
        return;
    };
    assert_eq!(
        parse::pveam_list(&one).unwrap(),
        vec![(
            "local:vztmpl/debian-10.0-standard_10.0-1_amd64.tar.gz".to_string(),
            219.95
        )]
    );
    assert_eq!(
        parse::pveam_list(&sample("cli-pveam-list-2.txt").unwrap()).unwrap(),
        vec![(
            "local:vztmpl/ubuntu-20.04-standard_20.04-1_amd64.tar.gz".to_string(),
            204.28
        )]
    );
    let three = parse::pveam_list(&sample("cli-pveam-list-3.txt").unwrap()).unwrap();
    assert_eq!(three.len(), 3);
    assert_eq!(
        three[1],
        (
            "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst".to_string(),
            120.65
        )
    );
}

#[test]
fn pveam_available_samples_in_the_two_column_format() {
    let Some(one) = sample("cli-pveam-available-system-1.txt") else {
        return;
    };
    let v = parse::pveam_available(&one).unwrap();
    assert_eq!(v.len(), 18);
    assert!(v.iter().all(|a| a.section == "system" && a.arch.is_none()));
    assert_eq!(v[0].template, "alpine-3.12-default_20200823_amd64.tar.xz");
    let two = parse::pveam_available(&sample("cli-pveam-available-system-2.txt").unwrap()).unwrap();
    assert_eq!(two.len(), 16);
}

#[test]
fn pvesh_samples_take_the_json_on_the_last_line() {
    let Some(s) = sample("cli-pvesh-create-qemu-start-cloudinit-1.txt") else {
        return;
    };
    assert_eq!(
        parse::pvesh_output(&s).unwrap(),
        Value::String("UPID:tapir:00128784:028D7FB7:6363E6E9:qmstart:500:root@pam:".into())
    );
    let p =
        parse::pvesh_output(&sample("cli-pvesh-create-lxc-shutdown-json-pretty-1.txt").unwrap())
            .unwrap();
    assert_eq!(
        p.as_str().map(|u| u.contains(":vzshutdown:100:")),
        Some(true)
    );
    assert_eq!(
        parse::pvesh_output("").unwrap(),
        Value::Null,
        "a null answer prints nothing"
    );
}

#[test]
fn cli_error_samples_are_classified() {
    let Some(lock) = sample("cli-error-pct-lock-timeout-1.txt") else {
        return;
    };
    let first: String = lock.lines().take(2).map(|l| format!("{l}\n")).collect();
    assert!(matches!(classify_stderr(&first), Error::Locked { .. }));
    assert!(matches!(
        classify_stderr(&sample("cli-error-ct-locked-1.txt").unwrap()),
        Error::Locked { .. }
    ));
    let missing = classify_stderr(&sample("cli-error-pct-start-config-missing-1.txt").unwrap());
    assert!(
        matches!(&missing, Error::NotFound { message, .. } if message == "Configuration file 'nodes/prox/lxc/101.conf' does not exist"),
        "{missing:?}"
    );
    for f in [
        "cli-error-pct-start-template-1.txt",
        "cli-error-qm-start-template-1.txt",
    ] {
        let e = classify_stderr(&sample(f).unwrap());
        assert!(
            matches!(
                e,
                Error::Conflict {
                    reason: ConflictReason::IsTemplate,
                    ..
                }
            ),
            "{f}: {e:?}"
        );
    }
    let task = sample("cli-error-qm-lock-timeout-task-1.txt").unwrap();
    assert_eq!(
        error_line(&task),
        "TASK ERROR: can't lock file '/var/lock/qemu-server/lock-300.conf' - got timeout"
    );
}

// ----- JSON samples (the `data` pvesh prints) ---------------------------------------------

#[test]
fn status_samples_with_string_and_number_vmids() {
    let Some(running) = json("api-lxc-status-current-running-1.json") else {
        return;
    };
    let g = parse::guest_status(&running, GuestKind::Lxc, &pve()).unwrap();
    assert_eq!(
        (
            g.id.get(),
            g.status,
            g.template,
            g.lock.as_deref(),
            g.name.as_deref()
        ),
        (100, PowerState::Running, false, None, Some("CT100"))
    );
    let stopped = parse::guest_status(
        &json("api-qemu-status-current-stopped-2.json").unwrap(),
        GuestKind::Vm,
        &pve(),
    )
    .unwrap();
    assert_eq!(
        (stopped.id.get(), stopped.status),
        (101, PowerState::Stopped)
    );
    let qrun = parse::guest_status(
        &json("api-qemu-status-current-running-1.json").unwrap(),
        GuestKind::Vm,
        &pve(),
    )
    .unwrap();
    assert_eq!(qrun.status, PowerState::Running);
}

#[test]
fn config_samples_become_string_entries_with_the_digest() {
    let Some(l) = json("api-lxc-config-2.json") else {
        return;
    };
    let c = parse::guest_config(&l).unwrap();
    assert_eq!(
        c.digest.as_deref(),
        Some("845b0a04f184941bd843fad7f69fc06362d1b04c")
    );
    assert_eq!((c.get("memory"), c.get("onboot")), (Some("512"), Some("1")));
    assert!(!c.entries.contains_key("digest"));
    let q = parse::guest_config(&json("api-qemu-config-4.json").unwrap()).unwrap();
    assert_eq!(
        (q.get("memory"), q.get("cores"), q.get("agent")),
        (Some("1024"), Some("1"), Some("1"))
    );
    assert!(q.is_template());
    let odd = parse::guest_config(&json("api-qemu-config-3.json").unwrap()).unwrap();
    assert_eq!(odd.get("boot"), Some(" "), "kept verbatim");
}

#[test]
fn list_and_resource_samples() {
    let Some(r) = json("api-cluster-resources-vm-1.json") else {
        return;
    };
    let gs = parse::resources(&r).unwrap();
    assert!(
        gs.iter()
            .any(|g| g.id.get() == 102 && g.kind == GuestKind::Lxc && g.node.as_str() == "pve")
    );
    assert!(
        gs.iter()
            .any(|g| g.id.get() == 101 && g.kind == GuestKind::Vm && g.node.as_str() == "pve2")
    );
    let l = json("api-lxc-list-1.json").unwrap();
    let g = parse::guest_status(&l[0], GuestKind::Lxc, &pve()).unwrap();
    assert_eq!(
        (g.id.get(), g.template, g.lock),
        (100, false, None),
        "empty strings are unset"
    );
}

#[test]
fn storage_and_content_samples() {
    let Some(s) = json("api-storage-list-1.json") else {
        return;
    };
    let v = parse::storages(&s).unwrap();
    let lvm = v.iter().find(|x| x.id.as_str() == "local-lvm").unwrap();
    assert!(lvm.supports("rootdir") && lvm.active && lvm.enabled && !lvm.shared);
    assert_eq!(lvm.total, 4_290_772_992);
    let imgs = parse::volumes(&json("api-storage-content-images-1.json").unwrap()).unwrap();
    assert_eq!(
        (imgs[0].volid.as_str(), imgs[0].vmid.map(|i| i.get())),
        ("local-lvm:base-101-disk-0", Some(101))
    );
    let pbs = parse::volumes(&json("api-storage-content-pbs-1.json").unwrap()).unwrap();
    assert_eq!(pbs.len(), 2);
    assert_eq!(pbs[0].format, "pbs-vm");
}

#[test]
fn snapshot_task_node_and_version_samples() {
    let Some(s) = json("api-qemu-snapshot-list-1.json") else {
        return;
    };
    let snaps = parse::snapshots(&s).unwrap();
    assert_eq!(
        snaps
            .iter()
            .map(|x| (x.name.as_str(), x.snaptime))
            .collect::<Vec<_>>(),
        vec![("snapshot1", Some(1_683_810_191))],
        "current is left out"
    );
    assert_eq!(
        parse::task_status(&json("api-task-status-ok-1.json").unwrap()),
        TaskStatus::Ok { warnings: 0 }
    );
    assert_eq!(
        parse::task_status(&json("api-task-status-warnings-1.json").unwrap()),
        TaskStatus::Ok { warnings: 1 }
    );
    assert_eq!(
        parse::task_status(&json("api-task-status-running-1.json").unwrap()),
        TaskStatus::Running
    );
    match parse::task_status(&json("api-task-status-failed-1.json").unwrap()) {
        TaskStatus::Failed(e) => assert!(e.contains("does not exist"), "{e}"),
        other => panic!("{other:?}"),
    }
    let nodes = parse::nodes(&json("api-nodes-2.json").unwrap()).unwrap();
    assert_eq!(
        (
            nodes[0].name.as_str(),
            nodes[0].status.as_str(),
            nodes[0].maxcpu
        ),
        ("proxmox-noris", "online", Some(16))
    );
    let v = parse::version(&json("api-version-1.json").unwrap()).unwrap();
    assert!(v.version.starts_with(&v.release), "{v:?}");
}

// ----- edge cases ------------------------------------------------------------------------

#[test]
fn empty_lists_print_nothing_and_parse_to_nothing() {
    assert!(parse::pct_list("").unwrap().is_empty());
    assert!(parse::qm_list("").unwrap().is_empty());
    assert!(parse::listsnapshot("").unwrap().is_empty());
    assert!(parse::pveam_available("\n").unwrap().is_empty());
}

#[test]
fn odd_spacing_and_locks_are_tolerated() {
    let out = "VMID       Status     Lock         Name                \n101        stopped    backup       db01\n  102   running   web02   \n";
    let v = parse::pct_list(out).unwrap();
    assert_eq!(
        (v[0].lock.as_deref(), v[0].name.as_str()),
        (Some("backup"), "db01")
    );
    assert_eq!(
        (v[1].lock.as_deref(), v[1].name.as_str(), v[1].status),
        (None, "web02", PowerState::Running)
    );
    assert!(parse::pct_list("abc stopped x\n").is_err());
    let long = "      VMID NAME                 STATUS     MEM(MB)    BOOTDISK(GB) PID       \n       100 a-very-long-vm-name-over-twenty running    2048              32.00 12345     \n";
    assert_eq!(
        parse::qm_list(long).unwrap()[0].name,
        "a-very-long-vm-name-over-twenty"
    );
}

#[test]
fn config_text_unescapes_the_description_and_keeps_raw_lines() {
    let c = parse::config_text("arch: amd64\ndescription: web%3A 100%25 ready\nlxc.apparmor.profile: unconfined\nlxc.cgroup2.devices.allow: c 195:* rwm\n\n[snap]\narch: i386\n").unwrap();
    assert_eq!(c.get("description"), Some("web: 100% ready"));
    assert_eq!(
        c.get("arch"),
        Some("amd64"),
        "snapshot sections are not the current config"
    );
    assert_eq!(c.raw_lxc.len(), 2);
    assert_eq!(
        c.raw_lxc[1],
        ("lxc.cgroup2.devices.allow".into(), "c 195:* rwm".into())
    );
}

#[test]
fn listsnapshot_tree_gives_parents_by_indentation() {
    let out = "`-> first                          2026-01-01 10:00:00     before upgrade\n `-> second                        2026-01-02 10:00:00     no-description\n  `-> current                                               You are here!\n `-> other                         2026-01-03 00:00:00     branch\n";
    let v = parse::listsnapshot(out).unwrap();
    assert_eq!(
        v.iter()
            .map(|s| (s.name.as_str(), s.parent.as_deref(), s.description.as_str()))
            .collect::<Vec<_>>(),
        vec![
            ("first", None, "before upgrade"),
            ("second", Some("first"), ""),
            ("other", Some("first"), "branch")
        ]
    );
    assert_eq!(v[0].snaptime, Some(1_767_261_600));
}

#[test]
fn qm_guest_exec_output_and_its_timeout_form() {
    let done = "{\n   \"exitcode\" : 3,\n   \"exited\" : 1,\n   \"out-data\" : \"hello\\n\"\n}\n";
    assert_eq!(
        parse::guest_exec(done).unwrap(),
        GuestExec::Exited {
            exitcode: 3,
            out: "hello\n".into(),
            err: String::new()
        }
    );
    assert_eq!(
        parse::guest_exec("{\n   \"pid\" : 4242\n}\n").unwrap(),
        GuestExec::Running { pid: 4242 }
    );
    assert!(parse::guest_exec("not json").is_err());
}

// ----- round trips through the printf layouts ---------------------------------------------

fn print_pct_list(rows: &[(u32, bool, Option<String>, String)]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut s = format!(
        "{:<10} {:<10} {:<12} {:<20}\n",
        "VMID", "Status", "Lock", "Name"
    );
    for (id, running, lock, name) in rows {
        s.push_str(&format!(
            "{:<10} {:<10} {:<12} {:<20}\n",
            id,
            if *running { "running" } else { "stopped" },
            lock.clone().unwrap_or_default(),
            name
        ));
    }
    s
}

fn print_qm_list(rows: &[(u32, String, bool, u64, f64, u64)]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut s = format!(
        "{:>10} {:<20} {:<10} {:<10} {:>12} {:<10}\n",
        "VMID", "NAME", "STATUS", "MEM(MB)", "BOOTDISK(GB)", "PID"
    );
    for (id, name, running, mem, disk, pid) in rows {
        s.push_str(&format!(
            "{:>10} {:<20} {:<10} {:<10} {:>12.2} {:<10}\n",
            id,
            name,
            if *running { "running" } else { "stopped" },
            mem,
            disk,
            pid
        ));
    }
    s
}

fn print_pvesm(rows: &[(String, String, u64, u64)]) -> String {
    let maxlen = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(4) + 1;
    let mut s = format!(
        "{:<maxlen$} {:>10} {:>10} {:>15} {:>15} {:>15} {:>8}\n",
        "Name", "Type", "Status", "Total (KiB)", "Used (KiB)", "Available (KiB)", "%"
    );
    for (name, kind, total, used) in rows {
        let pct = if *total == 0 {
            "N/A".to_string()
        } else {
            format!("{:.2}%", *used as f64 * 100.0 / *total as f64)
        };
        s.push_str(&format!(
            "{:<maxlen$} {:>10} {:>10} {:>15} {:>15} {:>15} {:>8}\n",
            name,
            kind,
            "active",
            total,
            used,
            total - used,
            pct
        ));
    }
    s
}

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,30}"
}

proptest! {
    #[test]
    fn pct_list_round_trips(rows in proptest::collection::vec((100u32..999_999_999, any::<bool>(), proptest::option::of("(backup|create|disk|snapshot|mounted)"), name()), 0..8)) {
        let parsed = parse::pct_list(&print_pct_list(&rows)).unwrap();
        let back: Vec<_> = parsed.into_iter().map(|e| (e.vmid.get(), e.status == PowerState::Running, e.lock, e.name)).collect();
        prop_assert_eq!(back, rows);
    }

    #[test]
    fn qm_list_round_trips(rows in proptest::collection::vec((100u32..999_999_999, "[A-Za-z][A-Za-z0-9 .-]{0,25}[a-z]", any::<bool>(), 16u64..1_000_000, 0u64..100_000, 0u64..9_999_999), 0..8)) {
        let rows: Vec<_> = rows.into_iter().map(|(i, n, r, m, d, p)| (i, n, r, m, d as f64 / 100.0, p)).collect();
        let parsed = parse::qm_list(&print_qm_list(&rows)).unwrap();
        prop_assert_eq!(parsed.len(), rows.len());
        for (e, r) in parsed.iter().zip(&rows) {
            prop_assert_eq!((e.vmid.get(), e.name.as_str(), e.status == PowerState::Running, e.mem_mb, e.pid), (r.0, r.1.as_str(), r.2, r.3, r.5));
            prop_assert!((e.bootdisk_gb - r.4).abs() < 0.006);
        }
    }

    #[test]
    fn pvesm_status_round_trips(rows in proptest::collection::vec((name(), "(dir|lvmthin|zfspool|nfs)", 0u64..1u64 << 40, 0u64..100), 1..6)) {
        let rows: Vec<_> = rows.into_iter().map(|(n, k, t, pct)| (n, k, t, t / 100 * pct)).collect();
        let parsed = parse::pvesm_status(&print_pvesm(&rows)).unwrap();
        let back: Vec<_> = parsed.iter().map(|e| (e.name.clone(), e.kind.clone(), e.total_kib, e.used_kib)).collect();
        prop_assert_eq!(back, rows);
    }

    #[test]
    fn pveam_list_round_trips(rows in proptest::collection::vec(("local:vztmpl/[a-z0-9._-]{5,70}", 0u64..10_000_000), 0..6)) {
        let mut out = format!("{:<60} {:<6}\n", "NAME", "SIZE");
        for (v, c) in &rows {
            out.push_str(&format!("{:<60} {:<4.2}MB\n", v, *c as f64 / 100.0));
        }
        let parsed = parse::pveam_list(&out).unwrap();
        prop_assert_eq!(parsed.len(), rows.len());
        for ((v, mb), (rv, c)) in parsed.iter().zip(&rows) {
            prop_assert_eq!(v, rv);
            prop_assert!((mb - *c as f64 / 100.0).abs() < 0.006);
        }
    }

    #[test]
    fn config_text_round_trips(entries in proptest::collection::btree_map("[a-z][a-z0-9]{0,10}", "[a-zA-Z0-9=,;:/._ -]{0,40}[a-z0-9]", 0..12), desc in "[ -~]{0,40}") {
        let mut out = String::new();
        let mut all = entries.clone();
        if !desc.is_empty() {
            all.insert("description".into(), desc.clone());
        }
        for (k, v) in &all {
            let v = if k == "description" { phx_testkit::fake::escape_description(v) } else { v.clone() };
            out.push_str(&format!("{k}: {v}\n"));
        }
        let parsed = parse::config_text(&out).unwrap();
        prop_assert_eq!(parsed.entries, all);
    }
}
