//! The shell tool's command lines: phx run through symlinks named `phoenix_orchestrator.sh`,
//! `phoenix` and `phoenix-cli` against the simulated cluster, and `phx config audit` of the
//! real Phoenix configs.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::{Run, World, run};

/// A symlink to the phx binary under an old name, in the world's temp dir.
fn link(w: &World, name: &str) -> PathBuf {
    let dir = w.dir.path().join("legacy");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    if !p.exists() {
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_phx"), &p).unwrap();
    }
    p
}

/// `name args...` through the symlink, in the world's environment (sim backend, example config).
fn old(w: &World, name: &str, args: &[&str]) -> Run {
    old_with(w, name, args, &[])
}

fn old_with(w: &World, name: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let base = w.cmd(&[]);
    let mut c = Command::new(link(w, name));
    for (k, v) in base.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c.envs(env.iter().copied()).args(args).stdin(Stdio::null());
    run(c, w.dir.path())
}

/// A transcript: every command line with its exit code and output.
#[derive(Default)]
struct Transcript(String);

impl Transcript {
    fn add(&mut self, name: &str, args: &[&str], r: &Run) {
        self.0
            .push_str(&format!("$ {name} {}\n{}\n", args.join(" "), r.render()));
    }
}

#[test]
fn help_unknown_forms_and_refusals_explain_themselves() {
    let w = World::new();
    let mut t = Transcript::default();
    let cases: &[(&str, &[&str], i32)] = &[
        ("phoenix_orchestrator.sh", &["--help"], 0),
        ("phoenix-cli", &[], 2),
        ("phoenix_orchestrator.sh", &["--create-vm", "web"], 2),
        ("phoenix-cli", &["frobnicate", "101"], 2),
        ("phoenix_orchestrator.sh", &["--smoke-test"], 2),
        ("phoenix-cli", &["sync", "all"], 2),
        ("phoenix-cli", &["health-check", "1001"], 2),
        ("phoenix-cli", &["--reset-portainer", "sync", "all"], 2),
        ("phoenix_orchestrator.sh", &["101", "--wipe-disks"], 2),
        ("phoenix_orchestrator.sh", &["--setup-hypervisor", "101"], 2),
        (
            "phoenix_orchestrator.sh",
            &["--setup-hypervisor", "--delete", "101"],
            2,
        ),
        ("phoenix_orchestrator.sh", &["--delete"], 2),
        ("phoenix_orchestrator.sh", &["--test"], 2),
        ("phoenix_orchestrator.sh", &["--reconfigure"], 2),
        ("phoenix", &["setup", "101"], 2),
        ("phoenix-cli", &["start"], 2),
        ("phoenix-cli", &["start", "4242"], 2),
        ("phoenix-cli", &["start", "web"], 2),
    ];
    for (name, args, code) in cases {
        let r = old(&w, name, args);
        assert_eq!(r.code, *code, "{name} {args:?}: {}", r.render());
        t.add(name, args, &r);
    }
    // nothing ran: the simulated cluster was never even opened
    assert!(!w.state().exists());
    insta::assert_snapshot!(t.0);
}

#[test]
fn old_forms_run_the_new_commands_on_the_simulated_cluster() {
    let w = World::new();
    let mut t = Transcript::default();
    // (old name, arguments, expected exit code); progress is off so the output is stable
    let steps: &[(&str, &[&str], i32)] = &[
        // the monolith's bare ids, mixed kinds: one command per kind, prerequisites first
        (
            "phoenix_orchestrator.sh",
            &["1001", "101", "--dry-run", "--no-progress"],
            0,
        ),
        ("phoenix_orchestrator.sh", &["101", "--no-progress"], 0),
        ("phoenix-cli", &["create", "102", "--no-progress"], 0),
        ("phoenix-cli", &["converge", "1001", "--no-progress"], 0),
        ("phoenix-cli", &["status", "101", "1001"], 0),
        ("phoenix-cli", &["status"], 0),
        // stop: dependents first; start: prerequisites first
        ("phoenix-cli", &["stop", "101", "1001", "--no-progress"], 0),
        (
            "phoenix-cli",
            &["start", "1001", "101", "102", "--no-progress"],
            0,
        ),
        ("phoenix", &["restart", "102", "--no-progress"], 0),
        (
            "phoenix_orchestrator.sh",
            &["--reconfigure", "101", "--no-progress"],
            0,
        ),
        (
            "phoenix_orchestrator.sh",
            &["--test", "smoke", "1001", "--no-progress"],
            0,
        ),
        (
            "phoenix_orchestrator.sh",
            &["--test", "smoke", "--no-progress"],
            0,
        ),
        (
            "phoenix_orchestrator.sh",
            &["--provision-template", "--dry-run"],
            0,
        ),
        (
            "phoenix_orchestrator.sh",
            &["--setup-hypervisor", "--dry-run"],
            0,
        ),
        ("phoenix", &["setup", "--wipe-disks", "--dry-run"], 0),
        ("phoenix", &["LetsGo", "--no-progress"], 0),
        ("phoenix_orchestrator.sh", &["--LetsGo", "--dry-run"], 0),
        // delete: phx asks, so off a terminal it needs --yes
        ("phoenix_orchestrator.sh", &["--delete", "103"], 2),
        (
            "phoenix-cli",
            &["delete", "102", "103", "1001", "-y", "--no-progress"],
            0,
        ),
        // a phx command line under an old name runs as it is, without a hint
        ("phoenix", &["lxc", "list"], 0),
        ("phoenix", &["-o", "json", "status", "101"], 0),
    ];
    for (name, args, code) in steps {
        let r = old(&w, name, args);
        assert_eq!(r.code, *code, "{name} {args:?}: {}", r.render());
        t.add(name, args, &r);
    }
    insta::assert_snapshot!(t.0);
    // what the old commands did is what phx says: 101 and the templates exist, the rest is gone
    let r = w.run(&["status", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let exists: Vec<(u64, bool)> = v["guests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["id"].as_u64().unwrap(), g["status"] != "absent"))
        .collect();
    assert_eq!(
        exists,
        vec![
            (101, true),
            (102, false),
            (103, false),
            (900, true),
            (1001, false),
            (9000, true)
        ],
        "{}",
        r.render()
    );
}

#[test]
fn mixed_ids_stop_at_the_first_failing_command_with_its_exit_code() {
    let w = World::new();
    assert_eq!(old(&w, "phoenix", &["create", "101", "1001"]).code, 0);
    assert_eq!(old(&w, "phoenix", &["stop", "101", "1001"]).code, 0);
    // the container start fails; the VM command never runs
    let args = ["start", "101", "1001", "--no-progress"];
    let mut r = old_with(
        &w,
        "phoenix-cli",
        &args,
        &[(
            "PHX_SIM_FAULTS",
            "lxc.start:task-error=no space left on device:5",
        )],
    );
    assert_eq!(r.code, 1, "{}", r.render());
    r.stdout = upids(&r.stdout);
    let mut t = Transcript::default();
    t.add("phoenix-cli", &args, &r);
    insta::assert_snapshot!(t.0);
    let r = w.run(&["vm", "status", "1001", "-o", "json"]);
    assert!(r.stdout.contains("\"stopped\""), "{}", r.render());
}

/// Task ids with their pid and time fields masked (same length, so tables stay aligned):
/// `UPID:pve:00012017:0107E0A1:6955B92D:vzstart:...` -> `UPID:pve:XXXXXXXX:XXXXXXXX:XXXXXXXX:vzstart:...`.
fn upids(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("UPID:") {
        out.push_str(&rest[..i + 5]);
        rest = &rest[i + 5..];
        for field in 0..4 {
            let end = rest.find(':').unwrap_or(rest.len());
            if field == 0 {
                out.push_str(&rest[..end]);
            } else {
                out.push_str(&"X".repeat(end));
            }
            out.push_str(&rest[end..(end + 1).min(rest.len())]);
            rest = &rest[(end + 1).min(rest.len())..];
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn an_invalid_config_is_named_before_anything_runs() {
    let w = World::new();
    w.edit(
        "phoenix_lxc_configs.json",
        "\"memory_mb\": 512",
        "\"memory_mb\": 0",
    );
    let r = old(&w, "phoenix-cli", &["start", "101"]);
    assert_eq!(r.code, 2, "{}", r.render());
    insta::assert_snapshot!(r.render());
}

fn fixtures() -> Option<PathBuf> {
    phx_testkit::fixtures::phoenix_fixtures()
}

/// The `.c6672e0` fixture set under the standard names.
fn c6672e0(fixtures: &Path, into: &Path) {
    std::fs::create_dir_all(into).unwrap();
    for name in [
        "phoenix_hypervisor_config.json",
        "phoenix_lxc_configs.json",
        "phoenix_vm_configs.json",
    ] {
        std::fs::copy(
            fixtures.join(name.replace(".json", ".c6672e0.json")),
            into.join(name),
        )
        .unwrap();
    }
}

fn audit(w: &World, dir: &Path, json: bool) -> Run {
    let dir = dir.display().to_string();
    let mut args = vec!["-C", dir.as_str(), "config", "audit"];
    if json {
        args.extend(["-o", "json"]);
    }
    w.run(&args)
}

#[test]
fn config_audit_of_the_head_fixtures() {
    let Some(fx) = fixtures() else { return };
    let w = World::new();
    let r = audit(&w, &fx, false);
    assert_eq!(r.code, 0, "{}", r.render());
    insta::assert_snapshot!(r.stdout.replace(&fx.display().to_string(), "[FIXTURES]"));
    let r = audit(&w, &fx, true);
    assert_eq!(r.code, 0, "{}", r.render());
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let paths: Vec<String> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{} {} {}: {}",
                f["difference"].as_str().unwrap(),
                f["file"].as_str().unwrap(),
                f["path"].as_str().unwrap(),
                f["key"].as_str().unwrap()
            )
        })
        .collect();
    insta::assert_snapshot!("config_audit_of_the_head_fixtures_paths", paths.join("\n"));
    // the headline differences of the inventory are all there, at their JSON paths
    for want in [
        "now-applied phoenix_lxc_configs.json lxc_configs.\"101\".id_maps: id_maps",
        "now-applied phoenix_vm_configs.json vms[2].boot_order: boot_order",
        "now-applied phoenix_lxc_configs.json lxc_configs.\"103\".health_check: health_check",
    ] {
        assert!(paths.iter().any(|p| p == want), "{want} missing");
    }
}

#[test]
fn config_audit_of_the_c6672e0_fixtures() {
    let Some(fx) = fixtures() else { return };
    let w = World::new();
    let dir = w.dir.path().join("c6672e0");
    c6672e0(&fx, &dir);
    let r = audit(&w, &dir, false);
    assert_eq!(r.code, 0, "{}", r.render());
    insta::assert_snapshot!(r.stdout);
}

#[test]
fn config_audit_of_the_example_as_json() {
    let w = World::new();
    let r = w.run(&["config", "audit", "-o", "json"]);
    assert_eq!(r.code, 0, "{}", r.render());
    assert!(r.stderr.is_empty(), "{}", r.render());
    let mut v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    v["config_dir"] = "[CONFIG]".into();
    insta::assert_json_snapshot!(v);
}
