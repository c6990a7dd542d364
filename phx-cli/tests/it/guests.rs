//! The guest verbs on the simulated cluster: power commands and the guests that depend on each
//! other, delete safety, guests the config does not manage, and the VM verbs that go through
//! the guest agent (test, snapshot, exec).
//!
//! What a command did is read from the sim's state file after it exits: the guests' state and
//! its operation log (the writes of the last run, in the order the cluster received them).

use std::path::PathBuf;

use phx_core::backend::PowerState;
use phx_testkit::FakeCluster;
use phx_testkit::fake::{load_state, save_state, scratch_of};
use serde_json::{Value, json};

use crate::support::{Run, World};

/// The simulated cluster as the last phx left it.
fn cluster(w: &World) -> FakeCluster {
    load_state(&w.state()).unwrap()
}

/// Change the simulated cluster between two runs (what someone else did on the node).
fn edit_cluster(w: &World, f: impl FnOnce(&mut FakeCluster)) {
    let mut c = cluster(w);
    f(&mut c);
    save_state(&w.state(), &c).unwrap();
}

/// The changes the last run sent, in the order the cluster received them.
fn writes(w: &World) -> Vec<String> {
    cluster(w)
        .oplog
        .into_iter()
        .filter(|l| !l.starts_with("read "))
        .collect()
}

fn status(w: &World, id: u32) -> Option<PowerState> {
    cluster(w).guests.get(&id).map(|g| g.status)
}

fn ok(w: &World, args: &[&str]) -> Run {
    let mut full = vec!["--no-progress"];
    full.extend(args);
    let r = w.run(&full);
    assert_eq!(r.code, 0, "{args:?}\n{}", r.render());
    r
}

fn json_of(r: &Run) -> Value {
    serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e})\n{}", r.render()))
}

/// `(id, [(op, reason)])` per guest of a JSON result, in plan order.
fn actions(v: &Value) -> Vec<(u64, Vec<(String, String)>)> {
    v["guests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let acts = g["actions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| {
                    (
                        a["op"].as_str().unwrap().to_string(),
                        a["reason"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            (g["id"].as_u64().unwrap(), acts)
        })
        .collect()
}

fn acts(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// A second site on the same cluster: the example's hypervisor file, these containers and no
/// VMs, in its own config dir (`phx -C DIR`).
fn other_site(w: &World, containers: Value) -> PathBuf {
    let dir = w.dir.path().join("other-etc");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        w.config.join("phoenix_hypervisor_config.json"),
        dir.join("phoenix_hypervisor_config.json"),
    )
    .unwrap();
    std::fs::write(
        dir.join("phoenix_lxc_configs.json"),
        json!({ "lxc_configs": containers }).to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.join("phoenix_vm_configs.json"),
        json!({ "vms": [] }).to_string(),
    )
    .unwrap();
    dir
}

/// A container of another site, from the homelab's Debian template.
fn stray_container(name: &str, ip_last: u8) -> Value {
    json!({
        "name": name,
        "template": "debian-12-standard_12.12-1_amd64.tar.zst",
        "start_at_boot": true,
        "memory_mb": 256,
        "cores": 1,
        "storage_pool": "local-lvm",
        "storage_size_gb": 4,
        "network_config": {
            "name": "eth0", "bridge": "vmbr0", "ip": format!("192.168.50.{ip_last}/24"),
            "gw": "192.168.50.1"
        },
        "mac_address": format!("52:54:00:50:01:{ip_last:02X}"),
        "unprivileged": true
    })
}

// ----- power --------------------------------------------------------------------------------

#[test]
fn stop_warns_about_running_dependents_and_leaves_them_running() {
    let w = World::new();
    ok(&w, &["up"]);
    let r = ok(&w, &["lxc", "stop", "101"]);
    assert_eq!(
        r.stdout,
        "\
+---------+-----+------+------+-----------------+
| OUTCOME | ID  | KIND | NAME | ACTIONS / ERROR |
+===============================================+
| changed | 101 | lxc  | dns  | shutdown        |
+---------+-----+------+------+-----------------+
note: 101 dns: running guests depend on it: 102, 103, 1001 (use --with-dependents to stop them first)
1 changed, 0 unchanged, 0 failed
"
    );
    assert_eq!(r.stderr, "");
    assert_eq!(writes(&w), ["lxc.shutdown 101"]);
    assert_eq!(status(&w, 101), Some(PowerState::Stopped));
    for id in [102, 103, 1001] {
        assert_eq!(status(&w, id), Some(PowerState::Running), "{id}");
    }
    // the same warning is a note of the guest in JSON
    ok(&w, &["lxc", "start", "101"]);
    let v = json_of(&ok(&w, &["lxc", "stop", "101", "-o", "json"]));
    assert_eq!(
        v["guests"][0]["notes"],
        json!([
            "running guests depend on it: 102, 103, 1001 (use --with-dependents to stop them first)"
        ])
    );
}

#[test]
fn stop_with_dependents_stops_them_first_in_reverse_dependency_order() {
    let w = World::new();
    ok(&w, &["up"]);
    let v = json_of(&ok(
        &w,
        &["lxc", "stop", "101", "--with-dependents", "-o", "json"],
    ));
    let dependent = acts(&[("shutdown", "depends on a guest being stopped")]);
    assert_eq!(
        actions(&v),
        [
            (103, dependent.clone()),
            (1001, dependent.clone()),
            (102, dependent),
            (101, acts(&[("shutdown", "running")])),
        ]
    );
    assert_eq!(v["guests"][3]["notes"], Value::Null, "no warning: {v}");
    // 103 needs 1001 needs 102 needs 101: each stops after what depends on it
    assert_eq!(
        writes(&w),
        [
            "lxc.shutdown 103",
            "vm.shutdown 1001",
            "lxc.shutdown 102",
            "lxc.shutdown 101"
        ]
    );
    for id in [101, 102, 103, 1001] {
        assert_eq!(status(&w, id), Some(PowerState::Stopped), "{id}");
    }
}

#[test]
fn start_starts_runnable_prerequisites_first_and_never_a_template() {
    let w = World::new();
    ok(&w, &["up"]);
    ok(&w, &["down"]);
    let v = json_of(&ok(&w, &["lxc", "start", "103", "-o", "json"]));
    let prereq = acts(&[("start", "prerequisite of a started guest")]);
    // the clone sources 900 and 9000 are prerequisites too, but templates: not in the plan
    assert_eq!(
        actions(&v),
        [
            (101, prereq.clone()),
            (102, prereq.clone()),
            (1001, prereq),
            (103, acts(&[("start", "stopped")])),
        ]
    );
    assert_eq!(
        writes(&w),
        [
            "lxc.start 101",
            "lxc.start 102",
            "vm.start 1001",
            "lxc.start 103"
        ]
    );
    assert_eq!(status(&w, 900), Some(PowerState::Stopped));
    assert_eq!(status(&w, 9000), Some(PowerState::Stopped));

    // a template named on the command line is refused, and nothing is sent
    let r = w.run(&["lxc", "start", "900", "--no-progress"]);
    assert_eq!(r.code, 1, "{}", r.render());
    assert!(
        r.stdout.contains(
            "| failed  | 900 | lxc  | Base-Template | CT 900 (Base-Template) is a template; templates are never started |"
        ),
        "{}",
        r.render()
    );
    assert!(writes(&w).is_empty());
    assert_eq!(status(&w, 900), Some(PowerState::Stopped));
}

#[test]
fn restart_reboots_running_targets_and_starts_stopped_ones() {
    let w = World::new();
    ok(&w, &["lxc", "create", "102"]);
    ok(&w, &["lxc", "stop", "102"]);
    assert_eq!(status(&w, 101), Some(PowerState::Running));
    let v = json_of(&ok(&w, &["lxc", "restart", "101", "102", "-o", "json"]));
    assert_eq!(
        actions(&v),
        [
            (101, acts(&[("reboot", "restart requested")])),
            (102, acts(&[("start", "stopped")])),
        ]
    );
    assert_eq!(writes(&w), ["lxc.reboot 101", "lxc.start 102"]);
    assert_eq!(status(&w, 101), Some(PowerState::Running));
    assert_eq!(status(&w, 102), Some(PowerState::Running));
}

#[test]
fn down_stops_in_reverse_startup_order_from_the_config() {
    let w = World::new();
    ok(&w, &["up"]);
    // boot orders: 101 1, 102 2, 1001 3, 103 4
    ok(&w, &["down"]);
    assert_eq!(
        writes(&w),
        [
            "lxc.shutdown 103",
            "vm.shutdown 1001",
            "lxc.shutdown 102",
            "lxc.shutdown 101"
        ]
    );
    // the startup order decides, not the dependencies: 103 (which needs 1001) now boots first,
    // so it is stopped last
    ok(&w, &["up"]);
    w.edit(
        "phoenix_lxc_configs.json",
        "\"boot_order\": 4,",
        "\"boot_order\": 0,",
    );
    let v = json_of(&ok(&w, &["down", "-o", "json"]));
    let ids: Vec<u64> = actions(&v).into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, [1001, 102, 101, 103]);
    assert_eq!(
        writes(&w),
        [
            "vm.shutdown 1001",
            "lxc.shutdown 102",
            "lxc.shutdown 101",
            "lxc.shutdown 103"
        ]
    );
    // templates are not running, so not in the plan
    assert!(ids.iter().all(|id| *id != 900 && *id != 9000));
}

// ----- delete safety ------------------------------------------------------------------------

#[test]
fn delete_without_yes_off_a_terminal_asks_nothing_and_deletes_nothing() {
    let w = World::new();
    ok(&w, &["lxc", "create", "102"]);
    let r = w.run(&["lxc", "delete", "102", "101", "--no-progress"]);
    assert_eq!(r.code, 2, "{}", r.render());
    assert_eq!(r.stdout, "");
    // the confirmation names every guest, dependents first
    assert_eq!(
        r.stderr,
        "error: Destroy CT 102 (proxy), CT 101 (dns) and their disks? — refusing without --yes because stdin is not a terminal\nhint: re-run with --yes (-y) to confirm\n"
    );
    assert!(writes(&w).is_empty());
    assert!(cluster(&w).guests.contains_key(&101));
    assert!(cluster(&w).guests.contains_key(&102));
}

#[test]
fn delete_refuses_while_an_existing_guest_depends_on_it_unless_forced() {
    let w = World::new();
    ok(&w, &["lxc", "create", "102"]);
    let r = w.run(&["lxc", "delete", "101", "--yes", "--no-progress"]);
    assert_eq!(r.code, 1, "{}", r.render());
    assert!(
        r.stdout.contains(
            "| failed  | 101 | lxc  | dns  | 102 depends on CT 101 and still exists; delete it first, or use --force |"
        ),
        "{}",
        r.render()
    );
    assert!(writes(&w).is_empty());
    assert_eq!(status(&w, 101), Some(PowerState::Running));

    let v = json_of(&ok(
        &w,
        &["lxc", "delete", "101", "--yes", "--force", "-o", "json"],
    ));
    assert_eq!(
        actions(&v),
        [(
            101,
            acts(&[
                ("stop", "running (must be stopped to be destroyed)"),
                ("destroy", "delete requested")
            ])
        )]
    );
    assert_eq!(writes(&w), ["lxc.stop 101", "lxc.destroy 101 purge=1"]);
    let c = cluster(&w);
    assert!(!c.guests.contains_key(&101));
    assert!(c.guests.contains_key(&102), "the dependent stays");
}

#[test]
fn delete_refuses_a_guest_whose_name_on_the_cluster_differs_unless_forced() {
    let w = World::new();
    // another site created its own CT 101
    let other = other_site(&w, json!({ "101": stray_container("intruder", 150) }));
    let other = other.to_str().unwrap();
    ok(&w, &["-C", other, "lxc", "create", "101"]);
    let r = w.run(&[
        "lxc",
        "delete",
        "101",
        "--yes",
        "--no-progress",
        "-o",
        "json",
    ]);
    assert_eq!(r.code, 1, "{}", r.render());
    let v = json_of(&r);
    assert_eq!(
        v["guests"][0]["error"],
        "CT 101 on the cluster is named \"intruder\", not \"dns\" as in the config: the id may have been reused; refusing to delete (use --force if it really is this guest)"
    );
    assert!(writes(&w).is_empty());
    assert!(cluster(&w).guests.contains_key(&101));

    ok(&w, &["lxc", "delete", "101", "--yes", "--force"]);
    assert_eq!(writes(&w), ["lxc.stop 101", "lxc.destroy 101 purge=1"]);
    assert!(!cluster(&w).guests.contains_key(&101));
}

#[test]
fn delete_refuses_a_protected_guest_even_with_force() {
    let w = World::new();
    ok(&w, &["lxc", "create", "103"]);
    edit_cluster(&w, |c| {
        c.guests
            .get_mut(&103)
            .unwrap()
            .config
            .insert("protection".into(), "1".into());
    });
    let protected = "CT 103 has Proxmox protection enabled; clear it with `pct set 103 --protection 0` if you really want to delete it";
    // Proxmox itself refuses to destroy a protected guest, forced or not
    // ("can't remove CT 103 - protection mode enabled"): phx says so before trying
    for force in [false, true] {
        let mut args = vec![
            "lxc",
            "delete",
            "103",
            "--yes",
            "--no-progress",
            "-o",
            "json",
        ];
        if force {
            args.push("--force");
        }
        let r = w.run(&args);
        assert_eq!(r.code, 1, "{args:?}\n{}", r.render());
        let v = json_of(&r);
        assert_eq!(v["guests"][0]["error"], protected, "{args:?}");
        assert_eq!(v["guests"][0]["actions"], json!([]), "{args:?}");
        assert!(writes(&w).is_empty(), "{args:?}");
    }
    let c = cluster(&w);
    assert_eq!(c.guests[&103].status, PowerState::Running);
    assert_eq!(c.guests[&103].config["protection"], "1");
}

// ----- guests the config does not manage ----------------------------------------------------

#[test]
fn list_shows_guests_the_config_does_not_manage() {
    let w = World::new();
    ok(&w, &["lxc", "create", "101"]);
    let other = other_site(&w, json!({ "150": stray_container("stray", 150) }));
    ok(&w, &["-C", other.to_str().unwrap(), "lxc", "create", "150"]);

    let r = ok(&w, &["lxc", "list"]);
    assert_eq!(
        r.stdout,
        "\
+-----+---------------+------+---------+----------+------+---------+
| ID  | NAME          | NODE | STATUS  | TEMPLATE | LOCK | MANAGED |
+==================================================================+
| 101 | dns           | pve  | running |          |      | yes     |
| 150 | stray         | pve  | running |          |      | no      |
| 900 | Base-Template | pve  | stopped |          |      | yes     |
+-----+---------------+------+---------+----------+------+---------+
"
    );
    let v = json_of(&ok(&w, &["lxc", "list", "-o", "json"]));
    let managed: Vec<(u64, &str, bool)> = v["guests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["id"].as_u64().unwrap(),
                g["name"].as_str().unwrap(),
                g["managed"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        managed,
        [
            (101, "dns", true),
            (150, "stray", false),
            (900, "Base-Template", true)
        ]
    );
    // and the other site sees it the other way round
    let v = json_of(&ok(
        &w,
        &["-C", other.to_str().unwrap(), "lxc", "list", "-o", "json"],
    ));
    let managed: Vec<bool> = v["guests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["managed"].as_bool().unwrap())
        .collect();
    assert_eq!(managed, [false, true, false]);
}

// ----- VMs through the guest agent ----------------------------------------------------------

#[test]
fn vm_test_runs_the_suites_in_the_vm_and_starts_a_stopped_vm_for_them() {
    let w = World::new();
    ok(&w, &["vm", "create", "1001"]);
    let r = ok(&w, &["vm", "test", "1001"]);
    assert_eq!(
        r.stdout,
        "PASS  smoke / docker answers  (T)\n    docker present in vm 1001 on pve\n1 passed, 0 failed\n"
    );
    // the script was staged through the agent, run with bash, and cleaned up
    assert!(
        writes(&w).contains(&format!(
            "vm.agent.file-write 1001 /tmp/phoenix_tests/docker_ok.sh {}B",
            std::fs::metadata(w.scripts.join("tests/apps/docker_ok.sh"))
                .unwrap()
                .len()
        )),
        "{:?}",
        writes(&w)
    );
    let root = scratch_of(&w.state()).join("guests/1001");
    assert!(root.join("etc/phx/docker.installed").is_file());
    assert!(!root.join("tmp/phoenix_tests").exists());

    // a failing test: exit 1, its output shown
    w.edit(
        "phoenix_vm_configs.json",
        "\"path\": \"apps/docker_ok.sh\" }",
        "\"path\": \"apps/docker_ok.sh\" },\n                    { \"name\": \"compose answers\", \"type\": \"script\", \"path\": \"apps/compose_ok.sh\" }",
    );
    std::fs::write(
        w.scripts.join("tests/apps/compose_ok.sh"),
        "#!/usr/bin/env bash\necho \"compose missing\" >&2\nexit 4\n",
    )
    .unwrap();
    // it is stopped: phx starts it for the tests and stops it again
    ok(&w, &["vm", "stop", "1001"]);
    let r = w.run(&["vm", "test", "1001"]);
    assert_eq!(r.code, 1, "{}", r.render());
    assert_eq!(
        r.stdout,
        "\
PASS  smoke / docker answers  (T)
    docker present in vm 1001 on pve
FAIL  smoke / compose answers  (T)
    compose missing
1 passed, 1 failed
"
    );
    assert!(
        r.stderr
            .contains("[TIME] warning: 1001: VM 1001 is stopped; starting it for the tests\n"),
        "{}",
        r.render()
    );
    let log = writes(&w);
    assert_eq!(log.first().map(String::as_str), Some("vm.start 1001"));
    assert_eq!(log.last().map(String::as_str), Some("vm.stop 1001"));
    assert_eq!(status(&w, 1001), Some(PowerState::Stopped));
    let r = w.run(&["vm", "test", "1001", "--no-progress", "-o", "json"]);
    assert_eq!(r.code, 1, "{}", r.render());
    let v = json_of(&r);
    assert_eq!(v["passed"], 1);
    assert_eq!(v["failed"], 1);
    assert_eq!(v["tests"][1]["name"], "compose answers");
    assert_eq!(v["tests"][1]["exit_code"], 4);
    assert_eq!(v["tests"][1]["output"], "compose missing\n");
}

#[test]
fn vm_snapshots_are_created_listed_rolled_back_and_deleted() {
    let w = World::new();
    ok(&w, &["vm", "create", "1001"]);
    let r = ok(
        &w,
        &[
            "vm",
            "snapshot",
            "create",
            "1001",
            "before-upgrade",
            "--description",
            "before the upgrade\nsecond line",
        ],
    );
    assert_eq!(r.stdout, "1001: created before-upgrade\n");
    assert_eq!(writes(&w), ["vm.snapshot 1001 before-upgrade"]);
    let v = json_of(&ok(&w, &["vm", "snapshot", "list", "1001", "-o", "json"]));
    assert_eq!(v["id"], 1001);
    let snaps = v["snapshots"].as_array().unwrap();
    assert_eq!(snaps.len(), 1, "{v}");
    assert_eq!(snaps[0]["name"], "before-upgrade");
    assert_eq!(snaps[0]["description"], "before the upgrade\nsecond line");
    let r = ok(&w, &["vm", "snapshot", "list", "1001"]);
    assert!(
        r.stdout.contains("| before-upgrade |        |")
            && r.stdout.contains("| before the upgrade |"),
        "{}",
        r.render()
    );

    // a change after the snapshot, then the rollback undoes it
    edit_cluster(&w, |c| {
        c.guests
            .get_mut(&1001)
            .unwrap()
            .config
            .insert("memory".into(), "8192".into());
    });
    let r = w.run(&["vm", "snapshot", "rollback", "1001", "before-upgrade"]);
    assert_eq!(r.code, 2, "needs --yes off a terminal: {}", r.render());
    assert_eq!(
        r.stderr,
        "error: Roll VM 1001 back to snapshot before-upgrade, losing every change since? — refusing without --yes because stdin is not a terminal\nhint: re-run with --yes (-y) to confirm\n"
    );
    assert_eq!(cluster(&w).guests[&1001].config["memory"], "8192");
    let r = ok(
        &w,
        &[
            "vm",
            "snapshot",
            "rollback",
            "1001",
            "before-upgrade",
            "--yes",
        ],
    );
    assert_eq!(r.stdout, "1001: rolled back to before-upgrade\n");
    assert_eq!(writes(&w), ["vm.rollback 1001 before-upgrade"]);
    let c = cluster(&w);
    assert_eq!(c.guests[&1001].config["memory"], "4096");
    assert_eq!(c.guests[&1001].config["parent"], "before-upgrade");

    let r = w.run(&["vm", "snapshot", "delete", "1001", "before-upgrade"]);
    assert_eq!(r.code, 2, "needs --yes off a terminal: {}", r.render());
    assert_eq!(
        r.stderr,
        "error: Delete snapshot before-upgrade of VM 1001? — refusing without --yes because stdin is not a terminal\nhint: re-run with --yes (-y) to confirm\n"
    );
    let r = ok(
        &w,
        &[
            "vm",
            "snapshot",
            "delete",
            "1001",
            "before-upgrade",
            "--yes",
        ],
    );
    assert_eq!(r.stdout, "1001: deleted snapshot before-upgrade\n");
    assert_eq!(writes(&w), ["vm.delsnapshot 1001 before-upgrade"]);
    let r = ok(&w, &["vm", "snapshot", "list", "1001"]);
    assert_eq!(r.stdout, "VM 1001 has no snapshots.\n");
    assert!(cluster(&w).guests[&1001].snapshots.is_empty());
}

#[test]
fn vm_exec_runs_through_the_guest_agent_and_passes_output_and_exit_code_through() {
    let w = World::new();
    ok(&w, &["vm", "create", "1001"]);
    let r = w.run(&[
        "vm",
        "exec",
        "1001",
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(r.code, 3, "{}", r.render());
    assert_eq!(r.stdout, "out\n");
    assert_eq!(r.stderr, "err\n");
    // guest paths are the VM's own
    ok(
        &w,
        &["vm", "exec", "1001", "--", "touch", "/root/phx-was-here"],
    );
    let root = scratch_of(&w.state()).join("guests/1001");
    assert!(root.join("root/phx-was-here").is_file());
    let v = json_of(&ok(
        &w,
        &["vm", "exec", "1001", "-o", "json", "--", "ls", "/root"],
    ));
    assert_eq!(v["exit_code"], 0);
    assert_eq!(v["stdout"], "phx-was-here\n");

    // without a guest agent there is no way in
    edit_cluster(&w, |c| {
        c.guests
            .get_mut(&1001)
            .unwrap()
            .config
            .insert("agent".into(), "0".into());
    });
    let r = w.run(&["vm", "exec", "1001", "--", "true"]);
    assert_eq!(r.code, 1, "{}", r.render());
    assert!(
        r.stderr
            .starts_with("error: No QEMU guest agent configured"),
        "{}",
        r.render()
    );
    // nor in a stopped VM
    edit_cluster(&w, |c| {
        let g = c.guests.get_mut(&1001).unwrap();
        g.config.insert("agent".into(), "1".into());
        g.status = PowerState::Stopped;
    });
    let r = w.run(&["vm", "exec", "1001", "--", "true"]);
    assert_eq!(r.code, 1, "{}", r.render());
    assert!(
        r.stderr.starts_with("error: VM 1001 is not running"),
        "{}",
        r.render()
    );
}

#[test]
fn a_snapshot_verb_under_the_wrong_noun_names_the_same_verb_under_the_right_one() {
    let w = World::new();
    for (args, hint) in [
        (
            &["vm", "snapshot", "create", "101", "keep"][..],
            "hint: use `phx lxc snapshot create 101`",
        ),
        (
            &["vm", "snapshot", "list", "101"],
            "hint: use `phx lxc snapshot list 101`",
        ),
        (
            &["vm", "snapshot", "rollback", "101", "keep", "--yes"],
            "hint: use `phx lxc snapshot rollback 101`",
        ),
        (
            &["vm", "snapshot", "delete", "101", "keep", "--yes"],
            "hint: use `phx lxc snapshot delete 101`",
        ),
    ] {
        let r = w.run(args);
        assert_eq!(r.code, 2, "{args:?}\n{}", r.render());
        assert_eq!(
            r.stderr,
            format!("error: 101 (dns) is a container, not a VM\n{hint}\n"),
            "{args:?}"
        );
    }
    let r = w.run(&["lxc", "snapshot", "rollback", "1001", "keep", "--yes"]);
    assert_eq!(r.code, 2, "{}", r.render());
    assert_eq!(
        r.stderr,
        "error: 1001 (apps) is a VM, not a container\nhint: use `phx vm snapshot rollback 1001`\n"
    );
    assert!(!w.state().exists(), "nothing reached the backend");
}

#[test]
fn a_dry_run_names_the_firewall_rules_that_change() {
    let w = World::new();
    ok(&w, &["lxc", "create", "101"]);
    w.edit(
        "phoenix_lxc_configs.json",
        "\"proto\": \"tcp\", \"port\": \"53\"",
        "\"proto\": \"tcp\", \"port\": \"5353\"",
    );
    let r = ok(&w, &["lxc", "reconfigure", "101", "--dry-run"]);
    assert_eq!(
        r.stdout,
        "\
~ 101 dns: firewall-rules 2 rules: - in ACCEPT tcp dport 53 from 192.168.50.0/24 (\"DNS over TCP from the LAN\"), + in ACCEPT tcp dport 5353 from 192.168.50.0/24 (\"DNS over TCP from the LAN\") (firewall rules differ)
~ 101 dns: health-check (the guest changed)
2 changes in 1 guest.
"
    );
    assert!(writes(&w).is_empty());
}
