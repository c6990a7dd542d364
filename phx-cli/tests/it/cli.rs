use clap::CommandFactory;

use crate::support::World;

#[test]
fn cli_definition_is_consistent() {
    phx_cli::cli::Cli::command().debug_assert();
}

#[test]
fn help_of_every_command() {
    let w = World::new();
    let mut all = String::new();
    let paths: &[&[&str]] = &[
        &[],
        &["lxc"],
        &["lxc", "create"],
        &["lxc", "reconfigure"],
        &["lxc", "start"],
        &["lxc", "stop"],
        &["lxc", "restart"],
        &["lxc", "delete"],
        &["lxc", "status"],
        &["lxc", "list"],
        &["lxc", "test"],
        &["lxc", "snapshot"],
        &["lxc", "snapshot", "create"],
        &["lxc", "snapshot", "list"],
        &["lxc", "snapshot", "rollback"],
        &["lxc", "snapshot", "delete"],
        &["lxc", "exec"],
        &["vm"],
        &["vm", "create"],
        &["vm", "reconfigure"],
        &["vm", "start"],
        &["vm", "stop"],
        &["vm", "restart"],
        &["vm", "delete"],
        &["vm", "status"],
        &["vm", "list"],
        &["vm", "test"],
        &["vm", "snapshot"],
        &["vm", "snapshot", "create"],
        &["vm", "snapshot", "list"],
        &["vm", "snapshot", "rollback"],
        &["vm", "snapshot", "delete"],
        &["vm", "exec"],
        &["hypervisor"],
        &["hypervisor", "setup"],
        &["hypervisor", "test"],
        &["hypervisor", "status"],
        &["up"],
        &["down"],
        &["plan"],
        &["status"],
        &["config"],
        &["config", "validate"],
        &["config", "show"],
        &["config", "graph"],
        &["completions"],
        &["sim"],
        &["sim", "reset"],
    ];
    for p in paths {
        let mut args: Vec<&str> = p.to_vec();
        args.push("--help");
        let r = w.run(&args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.render());
        all.push_str(&format!("===== phx {}\n{}", p.join(" "), r.stdout));
    }
    insta::assert_snapshot!(all);
}

#[test]
fn up_on_the_example_then_rerun_changes_nothing() {
    let w = World::new();
    // one job: progress lines in a stable order
    let r = w.run(&["up", "-j", "1"]);
    insta::assert_snapshot!("up_example", r.render());
    assert_eq!(r.code, 0);
    let r = w.run(&["up"]);
    assert_eq!(r.code, 0, "{}", r.render());
    assert!(
        r.stdout.contains("0 changed, 6 unchanged, 0 failed"),
        "{}",
        r.render()
    );
    let r = w.run(&["status"]);
    insta::assert_snapshot!("status_after_up", r.render());
}

#[test]
fn status_as_json() {
    let w = World::new();
    w.run(&["lxc", "create", "101"]);
    let r = w.run(&["status", "-o", "json"]);
    assert_eq!(r.code, 0);
    let v: serde_json::Value =
        serde_json::from_str(&r.stdout).expect("stdout is one JSON document");
    insta::assert_json_snapshot!("status_json", v);
}

#[test]
fn plan_after_editing_a_value() {
    let w = World::new();
    assert_eq!(w.run(&["up"]).code, 0);
    w.edit(
        "phoenix_lxc_configs.json",
        "\"memory_mb\": 1024,\n            \"cores\": 2",
        "\"memory_mb\": 4096,\n            \"cores\": 2",
    );
    let r = w.run(&["plan"]);
    insta::assert_snapshot!("plan_after_edit", r.render());
    let r = w.run(&["plan", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    insta::assert_json_snapshot!("plan_after_edit_json", v);
}

#[test]
fn delete_without_yes_on_a_non_terminal_is_refused() {
    let w = World::new();
    assert_eq!(w.run(&["lxc", "create", "101"]).code, 0);
    let r = w.run(&["lxc", "delete", "101"]);
    insta::assert_snapshot!(r.render());
    assert_eq!(r.code, 2);
    let r = w.run(&["lxc", "delete", "101", "--yes"]);
    assert_eq!(r.code, 0, "{}", r.render());
}

#[test]
fn lxc_create_of_a_vm_id_names_the_right_command() {
    let w = World::new();
    let r = w.run(&["lxc", "create", "1001"]);
    insta::assert_snapshot!(r.render());
    assert_eq!(r.code, 2);
}

#[test]
fn unknown_id_is_an_error_and_changes_nothing() {
    let w = World::new();
    let r = w.run(&["lxc", "create", "4242"]);
    insta::assert_snapshot!(r.render());
    assert_eq!(r.code, 2);
    assert!(
        !w.state().exists(),
        "nothing should have touched the backend"
    );
}

#[test]
fn invalid_config_is_exit_2() {
    let w = World::new();
    w.edit(
        "phoenix_lxc_configs.json",
        "\"ip\": \"192.168.50.11/24\"",
        "\"ip\": \"192.168.50.11\"",
    );
    let r = w.run(&["up"]);
    insta::assert_snapshot!(r.render());
    assert_eq!(r.code, 2);
    let r = w.run(&["config", "validate", "-o", "json"]);
    assert_eq!(r.code, 2);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["valid"], false);
}

#[test]
fn partial_failure_exits_3() {
    let w = World::new();
    let mut c = w.cmd(&["up"]);
    c.env(
        "PHX_SIM_FAULTS",
        "vm.create:task-error=qmcreate failed: storage full",
    );
    let r = crate::support::run(c, w.dir.path());
    insta::assert_snapshot!(r.render());
    assert_eq!(r.code, 3);
}

#[test]
fn config_validate_show_and_graph() {
    let w = World::new();
    let r = w.run(&["config", "validate"]);
    insta::assert_snapshot!("validate", r.render());
    let r = w.run(&["config", "show", "102"]);
    assert_eq!(r.code, 0);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["name"], "proxy");
    let r = w.run(&["config", "graph"]);
    insta::assert_snapshot!("graph", r.render());
    let r = w.run(&["config", "graph", "--dot", "102"]);
    assert!(r.stdout.starts_with("digraph phx {"), "{}", r.render());
}

#[test]
fn no_backend_chosen_explains_the_choices() {
    let w = World::new();
    let mut c = w.cmd(&["status"]);
    c.env_remove("PHX_BACKEND").env("PATH", "/nonexistent");
    let r = crate::support::run(c, w.dir.path());
    insta::assert_snapshot!(r.render());
    assert_eq!(r.code, 2);
}

#[test]
fn dry_run_changes_nothing() {
    let w = World::new();
    let r = w.run(&["up", "--dry-run"]);
    assert_eq!(r.code, 0);
    assert!(
        r.stdout.contains("+ 900 Base-Template: create"),
        "{}",
        r.render()
    );
    let r = w.run(&["lxc", "list", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["guests"].as_array().unwrap().len(), 0);
}

#[test]
fn interrupted_run_exits_130_and_leaves_no_half_started_work() {
    let w = World::new();
    let mut c = w.cmd(&["up", "-j", "1"]);
    c.env("PHX_SIM_LATENCY_MS", "150")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = c.spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("skipped") && stdout.contains("(interrupted)"),
        "{stdout}"
    );
    // the state file is consistent: the next run picks up where this one stopped
    let r = w.run(&["up"]);
    assert_eq!(r.code, 0, "{}", r.render());
}

#[test]
fn ctrl_c_while_waiting_for_the_simulated_cluster_stops_at_once() {
    use std::io::BufRead;
    let w = World::new();
    assert_eq!(w.run(&["status"]).code, 0);
    // another process holds the simulated cluster
    let held = std::fs::File::options()
        .write(true)
        .open(w.state().with_extension("lock"))
        .unwrap();
    held.try_lock().unwrap();
    let mut c = w.cmd(&["status"]);
    c.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("waiting for another phx using the simulated cluster") {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "no waiting line");
    }
    let asked = std::time::Instant::now();
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{rest}");
    assert!(rest.contains("interrupted while waiting"), "{rest}");
    // it did not sit out the 30 s wait
    assert!(asked.elapsed() < std::time::Duration::from_secs(5));
    drop(held);
}

#[test]
fn a_second_interrupt_aborts_at_once_naming_the_tasks_still_running() {
    use std::io::BufRead;
    let w = World::new();
    let mut c = w.cmd(&["up", "-j", "2"]);
    // long enough that the first tasks are still running when both signals arrive
    c.env("PHX_SIM_LATENCY_MS", "20000")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let started = std::time::Instant::now();
    let mut child = c.spawn().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(stderr).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let wait_for = |want: &str, lines: &mut Vec<String>| {
        while !lines.iter().any(|l: &String| l.contains(want)) {
            let l = rx
                .recv_timeout(std::time::Duration::from_secs(15))
                .unwrap_or_else(|_| panic!("no {want:?} on stderr: {lines:#?}"));
            lines.push(l);
        }
    };
    let sigint = || {
        std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap()
    };
    // the first task (a template download) is running: its step has started
    wait_for(": download-", &mut lines);
    sigint();
    wait_for("interrupted", &mut lines);
    sigint();
    wait_for("aborted", &mut lines);
    let status = child.wait().unwrap();
    while let Ok(l) = rx.recv_timeout(std::time::Duration::from_secs(2)) {
        lines.push(l);
    }
    let all = lines.join("\n");
    assert_eq!(status.code(), Some(130), "{all}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "did not abort at once"
    );
    assert!(all.contains("still running"), "{all}");
    assert!(all.contains("UPID:pve:"), "{all}");
    assert!(all.contains("phx status"), "{all}");
}

#[test]
fn one_changing_phx_per_cluster_and_wait_lock_waits() {
    let w = World::new();
    let mut c = w.cmd(&["up", "-j", "4", "--no-progress"]);
    c.env("PHX_SIM_LATENCY_MS", "400")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut first = c.spawn().unwrap();
    // the first phx holds the lock once it has written who it is
    let locks = w.dir.path().join("state/phx/locks");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let record = loop {
        let found = std::fs::read_dir(&locks).ok().and_then(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .find(|s| s.starts_with("pid "))
        });
        if let Some(r) = found {
            break r;
        }
        assert!(std::time::Instant::now() < deadline, "no lock record");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(
        record.starts_with(&format!(
            "pid {}, `phx up -j 4 --no-progress`, since ",
            first.id()
        )),
        "{record}"
    );

    // a second changing command on the same cluster is refused at once, naming the holder
    let r = w.run(&["lxc", "start", "101"]);
    assert_eq!(r.code, 1, "{}", r.render());
    assert!(
        r.stderr.contains(&format!(
            "error: another phx (pid {}, `phx up -j 4 --no-progress`",
            first.id()
        )),
        "{}",
        r.render()
    );
    assert!(
        r.stderr.contains("is changing the simulated cluster"),
        "{}",
        r.render()
    );
    assert!(
        r.stderr
            .contains("hint: wait for it to finish, or pass --wait-lock"),
        "{}",
        r.render()
    );
    assert!(r.stdout.is_empty(), "{}", r.render());

    // --wait-lock waits for the first run, then does its work
    let r = w.run(&["--wait-lock", "lxc", "create", "101", "--no-progress"]);
    assert_eq!(r.code, 0, "{}", r.render());
    assert!(
        r.stderr.contains("waiting for another phx (pid"),
        "{}",
        r.render()
    );
    assert!(first.wait().unwrap().success());
    // the lock went with its holder
    let r = w.run(&["lxc", "stop", "101", "--no-progress"]);
    assert_eq!(r.code, 0, "{}", r.render());
}

#[test]
fn only_commands_that_change_the_cluster_take_the_run_lock() {
    let w = World::new();
    assert_eq!(w.run(&["lxc", "create", "101", "--no-progress"]).code, 0);
    let locks = w.dir.path().join("state/phx/locks");
    let path = std::fs::read_dir(&locks)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    // someone else holds it
    let held = std::fs::File::options().write(true).open(&path).unwrap();
    held.try_lock().unwrap();
    for args in [
        &["lxc", "start", "101"][..],
        &["up"],
        &["vm", "delete", "1001", "--yes"],
        &["lxc", "snapshot", "create", "101", "before"],
        &["hypervisor", "setup"],
    ] {
        let r = w.run(args);
        assert_eq!(r.code, 1, "{args:?}\n{}", r.render());
        assert!(
            r.stderr.contains("error: another phx"),
            "{args:?}\n{}",
            r.render()
        );
    }
    for args in [
        &["lxc", "start", "101", "--dry-run"][..],
        &["up", "-n"],
        &["hypervisor", "setup", "--dry-run"],
        &["status"],
        &["plan"],
        &["lxc", "list"],
        &["lxc", "snapshot", "list", "101"],
        &["lxc", "exec", "101", "--", "true"],
        &["config", "validate"],
    ] {
        let r = w.run(args);
        assert_eq!(r.code, 0, "{args:?}\n{}", r.render());
    }
    drop(held);
    assert_eq!(w.run(&["lxc", "start", "101", "--no-progress"]).code, 0);
}

#[test]
fn every_command_with_dry_run_changes_nothing_on_a_read_only_cluster() {
    let w = World::new();
    assert_eq!(w.run(&["up", "--no-progress"]).code, 0);
    let r = w.run(&["lxc", "snapshot", "create", "101", "keep"]);
    assert_eq!(r.code, 0, "{}", r.render());
    // the cluster as the sim stores it, minus its call log and counters (reads are allowed)
    let cluster = || {
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(w.state()).unwrap()).unwrap();
        let o = v.as_object_mut().unwrap();
        o.remove("oplog").unwrap();
        o.remove("counters").unwrap();
        v
    };
    let before = cluster();
    let read_only = |args: &[&str]| {
        let mut c = w.cmd(args);
        c.env("PHX_SIM_READ_ONLY", "1");
        crate::support::run(c, w.dir.path())
    };
    // the control: without --dry-run, a change reaches the backend and is refused by name
    let r = read_only(&["lxc", "stop", "101", "--no-progress"]);
    assert_ne!(r.code, 0, "{}", r.render());
    assert!(
        r.render()
            .contains("lxc.shutdown 101 was called, but this code must not change anything"),
        "{}",
        r.render()
    );
    for args in [
        &["up"][..],
        &["down"],
        &["lxc", "create", "101"],
        &["lxc", "reconfigure", "101"],
        &["lxc", "start", "101"],
        &["lxc", "stop", "101", "--with-dependents"],
        &["lxc", "restart", "101"],
        &["lxc", "delete", "103", "--yes"],
        &["lxc", "delete", "101", "--force", "--yes"],
        &["vm", "create", "1001"],
        &["vm", "stop", "1001"],
        &["vm", "restart", "1001"],
        &["vm", "delete", "1001", "--force", "--yes"],
        &["lxc", "snapshot", "create", "101", "another"],
        &["lxc", "snapshot", "rollback", "101", "keep"],
        &["lxc", "snapshot", "delete", "101", "keep"],
        &["lxc", "exec", "101", "--", "touch", "/phx-was-here"],
        &["lxc", "test", "101"],
        &["hypervisor", "setup"],
        &["sim", "reset"],
    ] {
        let mut full = vec!["--dry-run", "-o", "json"];
        full.extend(args);
        let r = read_only(&full);
        assert_eq!(r.code, 0, "{full:?}\n{}", r.render());
        assert!(
            !r.render().contains("must not change anything"),
            "{full:?}\n{}",
            r.render()
        );
        serde_json::from_str::<serde_json::Value>(&r.stdout).unwrap_or_else(|e| {
            panic!(
                "{full:?}: stdout is not one JSON document ({e})\n{}",
                r.render()
            )
        });
    }
    // a dry run of a snapshot that is not there fails like the real thing would
    let r = read_only(&["lxc", "snapshot", "rollback", "101", "nope", "--dry-run"]);
    assert_eq!(r.code, 1, "{}", r.render());
    assert!(
        r.stderr.contains("CT 101 has no snapshot nope"),
        "{}",
        r.render()
    );
    assert_eq!(cluster(), before);
}

#[test]
fn a_missing_script_stops_the_run_before_anything_changes() {
    let w = World::new();
    let script = w
        .scripts
        .join("lxc_setup/phoenix_hypervisor_feature_install_dns_server.sh");
    std::fs::remove_file(&script).unwrap();
    for args in [
        &["up"][..],
        &["plan"],
        &["lxc", "create", "101", "--dry-run"],
    ] {
        let r = w.run(args);
        assert_eq!(r.code, 1, "{args:?}\n{}", r.render());
        assert!(
            r.stderr.contains(
                "error: 1 site script the plan runs is missing: CT 101 feature needs [TMP]/bin/lxc_setup/phoenix_hypervisor_feature_install_dns_server.sh; nothing was changed"
            ),
            "{args:?}\n{}",
            r.render()
        );
    }
    // nothing was created, not even the prerequisites the chain starts with
    let r = w.run(&["status", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(
        v["guests"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["status"] == "absent"),
        "{}",
        r.stdout
    );
    // and validate names it too
    let r = w.run(&["config", "validate"]);
    assert!(r.render().contains("missing-script"), "{}", r.render());
}

#[test]
fn rerun_features_runs_applied_features_again() {
    let w = World::new();
    assert_eq!(w.run(&["lxc", "create", "101", "--no-progress"]).code, 0);
    let actions = |r: &crate::support::Run| -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        v["guests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| g["id"] == 101)
            .flat_map(|g| g["actions"].as_array().unwrap().clone())
            .map(|a| {
                format!(
                    "{} {}",
                    a["op"].as_str().unwrap(),
                    a["detail"].as_str().unwrap()
                )
            })
            .collect()
    };
    // converged: nothing to do
    let r = w.run(&["lxc", "reconfigure", "101", "-o", "json"]);
    assert_eq!(r.code, 0, "{}", r.render());
    assert_eq!(actions(&r), Vec::<String>::new());
    // forced: its own feature runs again (base_setup comes with the template it was cloned from)
    let r = w.run(&[
        "lxc",
        "reconfigure",
        "101",
        "--rerun-features",
        "-o",
        "json",
    ]);
    assert_eq!(r.code, 0, "{}", r.render());
    let done = actions(&r);
    assert!(done.iter().any(|a| a == "feature dns_server"), "{done:?}");
}

#[test]
fn task_timeout_takes_a_duration() {
    let w = World::new();
    for bad in ["0", "5d", "soon"] {
        let r = w.run(&["--task-timeout", bad, "status"]);
        assert_eq!(r.code, 2, "{bad}\n{}", r.render());
        assert!(r.stderr.contains("--task-timeout"), "{}", r.render());
    }
    let r = w.run(&["--task-timeout", "90s", "status"]);
    assert_eq!(r.code, 0, "{}", r.render());
}

#[test]
fn completions_are_generated() {
    let w = World::new();
    for sh in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let r = w.run(&["completions", sh]);
        assert_eq!(r.code, 0);
        assert!(r.stdout.contains("phx"), "{sh}");
    }
}

#[test]
fn version_and_help_touch_neither_config_nor_backend() {
    let w = World::new();
    for (args, starts) in [
        (&["--version"][..], "phx "),
        (
            &["--help"],
            "Orchestrate Proxmox VE containers, VMs and the host from the Phoenix Hypervisor configs",
        ),
        (
            &["lxc", "delete", "--help"],
            "Destroy guests and their disks",
        ),
    ] {
        let mut c = w.cmd(args);
        c.env("PHX_CONFIG_DIR", "/nonexistent")
            .env("PHX_SIM_STATE", "/nonexistent/x.json");
        let r = crate::support::run(c, w.dir.path());
        assert_eq!(r.code, 0, "{args:?}\n{}", r.render());
        assert!(r.stdout.starts_with(starts), "{args:?}\n{}", r.render());
        assert_eq!(r.stderr, "", "{args:?}");
    }
    assert!(!w.state().exists());
    assert!(!w.dir.path().join("state").exists(), "no lock, no log");
}

#[test]
fn lxc_test_reports_pass_fail_and_writes_junit() {
    let w = World::new();
    assert_eq!(w.run(&["lxc", "create", "101"]).code, 0);
    let r = w.run(&["lxc", "test", "101", "--suite", "smoke", "--no-progress"]);
    insta::assert_snapshot!("test_smoke_pass", r.render());
    assert_eq!(r.code, 0);
    let junit = w.dir.path().join("junit.xml");
    let r = w.run(&[
        "lxc",
        "test",
        "101",
        "--no-progress",
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 1, "{}", r.render());
    insta::assert_snapshot!("test_all_one_failing", r.render());
    let xml = std::fs::read_to_string(&junit).unwrap();
    let xml = xml.replace(&w.dir.path().display().to_string(), "[TMP]");
    let xml: String = xml
        .lines()
        .map(|l| {
            // durations vary run to run
            let mut out = String::new();
            let mut rest = l;
            while let Some(i) = rest.find("time=\"") {
                out.push_str(&rest[..i + 6]);
                let after = &rest[i + 6..];
                let end = after.find('"').unwrap_or(0);
                out.push_str("[T]");
                rest = &after[end..];
            }
            out.push_str(rest);
            out + "\n"
        })
        .collect();
    insta::assert_snapshot!("junit", xml);
    let r = w.run(&["lxc", "test", "101", "--suite", "nope"]);
    assert_eq!(r.code, 2);
    insta::assert_snapshot!("test_unknown_suite", r.render());
    let r = w.run(&["lxc", "test", "101", "-o", "json", "--suite", "smoke"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["passed"], 2);
    assert_eq!(v["tests"][0]["name"], "resolver answers");
}

#[test]
fn snapshots_can_be_created_listed_rolled_back_and_deleted() {
    let w = World::new();
    assert_eq!(w.run(&["lxc", "create", "101"]).code, 0);
    let r = w.run(&[
        "lxc",
        "snapshot",
        "create",
        "101",
        "before-upgrade",
        "--description",
        "before the upgrade",
    ]);
    assert_eq!(r.code, 0, "{}", r.render());
    let r = w.run(&["lxc", "snapshot", "list", "101"]);
    insta::assert_snapshot!("snapshot_list", r.render());
    let r = w.run(&["lxc", "snapshot", "rollback", "101", "before-upgrade"]);
    assert_eq!(
        r.code,
        2,
        "rollback needs --yes off a terminal: {}",
        r.render()
    );
    let r = w.run(&[
        "lxc",
        "snapshot",
        "rollback",
        "101",
        "before-upgrade",
        "--yes",
    ]);
    assert_eq!(r.code, 0, "{}", r.render());
    let r = w.run(&[
        "lxc",
        "snapshot",
        "delete",
        "101",
        "before-upgrade",
        "--yes",
    ]);
    assert_eq!(r.code, 0, "{}", r.render());
    let r = w.run(&["lxc", "snapshot", "list", "101", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(v["snapshots"].as_array().unwrap().is_empty(), "{v}");
    let r = w.run(&["lxc", "snapshot", "delete", "101", "nope", "--yes"]);
    insta::assert_snapshot!("snapshot_delete_missing", r.render());
    assert_eq!(r.code, 1);
}

#[test]
fn exec_passes_the_exit_code_through() {
    let w = World::new();
    assert_eq!(w.run(&["lxc", "create", "101"]).code, 0);
    let r = w.run(&[
        "lxc",
        "exec",
        "101",
        "--",
        "cat",
        "/etc/dnsmasq.d/homelab.conf",
    ]);
    assert_eq!(r.code, 0);
    assert!(
        r.stdout.contains("address=/proxy.homelab.lan/"),
        "{}",
        r.render()
    );
    let r = w.run(&["lxc", "exec", "101", "--", "sh", "-c", "exit 7"]);
    assert_eq!(r.code, 7);
}

#[test]
fn script_output_goes_to_the_guest_log_and_streams_with_verbose() {
    let w = World::new();
    let r = w.run(&["lxc", "create", "101", "-v"]);
    assert_eq!(r.code, 0, "{}", r.render());
    assert!(
        r.stderr.contains(
            "101 dns | [app-script homelab_dns.sh] homelab_dns: writing the homelab zone for CT 101"
        ),
        "{}",
        r.render()
    );
    let logs = w.dir.path().join("state/phx/logs/101");
    let files: Vec<_> = std::fs::read_dir(&logs).unwrap().collect();
    assert_eq!(files.len(), 1);
    let text = std::fs::read_to_string(files[0].as_ref().unwrap().path()).unwrap();
    assert!(
        text.contains("[feature dns_server] dns_server: configuring a resolver in CT 101"),
        "{text}"
    );
    // with --no-progress too (progress off, script output still wanted); not with -q or -o json
    let r = w.run(&[
        "lxc",
        "reconfigure",
        "101",
        "--rerun-features",
        "-v",
        "--no-progress",
    ]);
    assert_eq!(r.code, 0, "{}", r.render());
    assert!(
        r.stderr.contains(
            "101 dns | [feature dns_server] dns_server: configuring a resolver in CT 101"
        ),
        "{}",
        r.render()
    );
    // -q and -v exclude each other; -o json keeps stdout and stderr free of it
    for quiet in [&["-q"][..], &["-v", "-o", "json"]] {
        let mut args = vec!["lxc", "reconfigure", "101", "--rerun-features"];
        args.extend(quiet);
        let r = w.run(&args);
        assert_eq!(r.code, 0, "{}", r.render());
        assert!(
            !r.stderr.contains("| [feature"),
            "{quiet:?}: {}",
            r.render()
        );
    }
}

#[test]
fn hypervisor_setup_test_and_status() {
    let w = World::new();
    let r = w.run(&["hypervisor", "test", "--no-progress"]);
    assert_eq!(
        r.code,
        1,
        "a fresh node lacks the configured storages: {}",
        r.render()
    );
    insta::assert_snapshot!("hypervisor_test_failing", r.render());
    let r = w.run(&["hypervisor", "setup", "--dry-run"]);
    insta::assert_snapshot!("hypervisor_setup_dry_run", r.render());
    let r = w.run(&["hypervisor", "setup", "--no-progress"]);
    assert_eq!(r.code, 0, "{}", r.render());
    let r = w.run(&["hypervisor", "setup"]);
    assert!(
        r.stdout
            .contains("No changes: host pve matches its config."),
        "{}",
        r.render()
    );
    let r = w.run(&["hypervisor", "test", "--no-progress"]);
    assert_eq!(r.code, 0, "{}", r.render());
    insta::assert_snapshot!("hypervisor_test_passing", r.render());
    let r = w.run(&["hypervisor", "status"]);
    insta::assert_snapshot!("hypervisor_status", r.render());
    let r = w.run(&["hypervisor", "status", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    insta::assert_json_snapshot!("hypervisor_status_json", v);
    let r = w.run(&["hypervisor", "setup", "--step", "nope"]);
    assert_eq!(r.code, 2, "{}", r.render());
}
