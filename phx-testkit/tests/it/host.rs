//! `phx hypervisor setup` / `test` against the FakeCluster.

use phx_core::config::{Inventory, LoadOptions};
use phx_core::engine::host::{HostOptions, HostPlan, HostResult};
use phx_core::report::NullReporter;

use crate::support::*;

fn plan_lines(p: &HostPlan) -> String {
    let mut s: Vec<String> = p
        .actions
        .iter()
        .map(|a| format!("{} {} [{}]", a.op, a.detail, a.reason))
        .collect();
    s.extend(p.notes.iter().map(|n| format!("note: {n}")));
    s.join("\n")
}

fn result_lines(r: &HostResult) -> String {
    let mut s: Vec<String> = r
        .done
        .iter()
        .map(|a| format!("done {} {}", a.op, a.detail))
        .collect();
    if let Some((a, e)) = &r.failed {
        s.push(format!("FAILED {} {}: {e}", a.op, a.detail));
    }
    if let Some(step) = &r.reboot_required {
        s.push(format!("reboot required after {step}"));
    }
    s.join("\n")
}

#[tokio::test]
async fn setup_from_an_empty_node_then_rerun_is_a_no_op() {
    let fake = fake();
    let e = engine(&fake, example());
    let o = HostOptions::default();
    let plan = e.plan_host(&o).await.unwrap();
    insta::assert_snapshot!("host_plan_example", plan_lines(&plan));
    let r = e.apply_host(&plan, &o, &NullReporter).await;
    assert!(r.failed.is_none(), "{}", result_lines(&r));
    assert_eq!(r.completed.len(), 2, "both example host steps ran");
    oplog(&fake);
    let again = e
        .plan_host(&HostOptions {
            completed: r.completed.clone(),
            ..HostOptions::default()
        })
        .await
        .unwrap();
    assert!(again.actions.is_empty(), "{}", plan_lines(&again));
    assert!(oplog(&fake).lines().all(|l| l.starts_with("read ")));
    let report = e.test_host(None, &NullReporter).await.unwrap();
    assert_eq!(report.failed(), 0, "{:?}", report.results);
}

#[tokio::test]
async fn setup_with_the_real_fixture_config() {
    let Some(dir) = fixtures_dir() else { return };
    let inv = Inventory::load(&LoadOptions {
        config_dir: dir,
        scripts_dir: Some(std::env::temp_dir().join("phx-no-host-steps")),
    })
    .unwrap();
    let fake = fake();
    let e = engine(&fake, inv);
    let plan = e.plan_host(&HostOptions::default()).await.unwrap();
    insta::assert_snapshot!("host_plan_fixtures", plan_lines(&plan));
    let r = e
        .apply_host(&plan, &HostOptions::default(), &NullReporter)
        .await;
    assert!(r.failed.is_none(), "{}", result_lines(&r));
    let again = e.plan_host(&HostOptions::default()).await.unwrap();
    assert!(again.actions.is_empty(), "{}", plan_lines(&again));
}

#[tokio::test]
async fn content_type_drift_is_corrected_and_unknown_storages_kept_unless_pruned() {
    let fake = fake();
    let e = engine(&fake, example());
    let o = HostOptions {
        skip: vec!["initial_setup".into(), "setup_zfs".into()],
        ..HostOptions::default()
    };
    let plan = e.plan_host(&o).await.unwrap();
    e.apply_host(&plan, &o, &NullReporter).await;
    fake.with(|c| {
        c.storages.get_mut("tank-backups").unwrap().content = vec!["backup".into(), "iso".into()];
        let mut extra = c.storages["local"].clone();
        extra.id = "old-nfs".into();
        c.storages.insert("old-nfs".into(), extra);
    });
    let plan = e.plan_host(&o).await.unwrap();
    insta::assert_snapshot!(plan_lines(&plan), @"storage-content tank-backups: backup,iso -> backup [content types differ]");
    let pruning = HostOptions {
        prune: vec!["old-nfs".into(), "local".into(), "tank-guests".into()],
        ..o.clone()
    };
    let plan = e.plan_host(&pruning).await.unwrap();
    insta::assert_snapshot!(plan_lines(&plan), @r"
    storage-content tank-backups: backup,iso -> backup [content types differ]
    remove-storage old-nfs [--prune names it and the config does not]
    note: --prune local: built-in storages are never removed
    note: --prune tank-guests: the storage is in the config; keeping it
    ");
    let r = e.apply_host(&plan, &pruning, &NullReporter).await;
    assert!(r.failed.is_none());
    assert_eq!(
        fake.with(|c| c.storages["tank-backups"].content.clone()),
        vec!["backup".to_string()]
    );
    assert!(fake.with(|c| !c.storages.contains_key("old-nfs")));
}

#[tokio::test]
async fn a_failing_host_step_stops_setup_with_a_clear_message() {
    use std::os::unix::fs::PermissionsExt;
    let scripts = tempfile::tempdir().unwrap();
    let steps = scripts.path().join("hypervisor_setup");
    std::fs::create_dir_all(&steps).unwrap();
    for (name, body) in [
        ("hypervisor_initial_setup", "#!/bin/sh\necho base ok\n"),
        (
            "hypervisor_feature_setup_zfs",
            "#!/bin/sh\necho \"zfs args: $*\" | sed 's|/[^ ]*/phoenix|CONFIG/phoenix|'\necho 'cannot import pool tank: no such pool' >&2\nexit 4\n",
        ),
        ("hypervisor_feature_setup_nfs", "#!/bin/sh\necho nfs ok\n"),
    ] {
        let p = steps.join(format!("{name}.sh"));
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let dir = repo().join("examples/homelab/etc");
    let inv = Inventory::load(&LoadOptions {
        config_dir: dir,
        scripts_dir: Some(scripts.path().to_path_buf()),
    })
    .unwrap();
    let fake = fake();
    let e = engine(&fake, inv);
    let o = HostOptions {
        only: vec![
            "initial_setup".into(),
            "setup_zfs".into(),
            "setup_nfs".into(),
        ],
        ..HostOptions::default()
    };
    let plan = e.plan_host(&o).await.unwrap();
    let r = e.apply_host(&plan, &o, &NullReporter).await;
    let text = result_lines(&r).replace(&scripts.path().display().to_string(), "[SCRIPTS]");
    insta::assert_snapshot!(text.lines().filter(|l| l.contains("host-step") || l.starts_with("    ") || l.starts_with("FAILED")).collect::<Vec<_>>().join("\n"), @r"
    done host-step hypervisor_initial_setup
    FAILED host-step hypervisor_feature_setup_zfs: host step hypervisor_feature_setup_zfs ([SCRIPTS]/hypervisor_setup/hypervisor_feature_setup_zfs.sh) failed with exit code 4:
        zfs args: --config CONFIG/phoenix_hypervisor_config.json --mode safe
        cannot import pool tank: no such pool
    ");
    assert!(r.completed.contains_key("hypervisor_initial_setup"));
    assert!(
        !r.completed.contains_key("hypervisor_feature_setup_nfs"),
        "fail-fast: nfs never ran"
    );
}

#[tokio::test]
async fn a_host_step_that_needs_a_reboot_pauses_setup_and_the_next_run_continues() {
    use std::os::unix::fs::PermissionsExt;
    let scripts = tempfile::tempdir().unwrap();
    let steps = scripts.path().join("hypervisor_setup");
    std::fs::create_dir_all(&steps).unwrap();
    for (name, body) in [
        (
            "hypervisor_feature_install_nvidia",
            "#!/bin/sh\necho driver installed\nexit 100\n",
        ),
        (
            "hypervisor_feature_setup_dns_server",
            "#!/bin/sh\necho dns ok\n",
        ),
    ] {
        let p = steps.join(format!("{name}.sh"));
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let inv = Inventory::load(&LoadOptions {
        config_dir: repo().join("examples/homelab/etc"),
        scripts_dir: Some(scripts.path().to_path_buf()),
    })
    .unwrap();
    let e = engine(&fake(), inv);
    let plan = e.plan_host(&HostOptions::default()).await.unwrap();
    let r = e
        .apply_host(&plan, &HostOptions::default(), &NullReporter)
        .await;
    assert_eq!(
        r.reboot_required.as_deref(),
        Some("hypervisor_feature_install_nvidia")
    );
    assert!(r.failed.is_none());
    let next = e
        .plan_host(&HostOptions {
            completed: r.completed.clone(),
            ..HostOptions::default()
        })
        .await
        .unwrap();
    let steps: Vec<&str> = next
        .actions
        .iter()
        .filter(|a| a.op == "host-step")
        .map(|a| a.detail.as_str())
        .collect();
    assert_eq!(steps, ["hypervisor_feature_setup_dns_server"]);
}

#[tokio::test]
async fn unknown_host_step_names_are_refused() {
    let e = engine(&fake(), example());
    let err = e
        .plan_host(&HostOptions {
            only: vec!["setup_zfz".into()],
            ..HostOptions::default()
        })
        .await
        .unwrap_err();
    assert!(
        err.to_string().starts_with(
            "unknown host step \"setup_zfz\"; the steps are: initial_setup, setup_zfs,"
        ),
        "{err}"
    );
}

/// The output of the built-in check `name` of `hypervisor test`.
async fn builtin_check(e: &phx_core::engine::Engine, name: &str) -> (bool, String) {
    let report = e
        .test_host(Some(phx_core::engine::host::BUILTIN_SUITE), &NullReporter)
        .await
        .unwrap();
    let r = report
        .results
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no check {name:?}: {:?}", report.results));
    (r.passed, r.output.clone())
}

#[tokio::test]
async fn the_firewall_check_names_the_rule_that_differs_and_how() {
    const CHECK: &str = "cluster firewall as configured";
    let fake = fake();
    let e = engine(&fake, example());
    let o = HostOptions {
        skip: vec!["initial_setup".into(), "setup_zfs".into()],
        ..HostOptions::default()
    };
    let plan = e.plan_host(&o).await.unwrap();
    assert!(
        e.apply_host(&plan, &o, &NullReporter)
            .await
            .failed
            .is_none()
    );
    assert_eq!(
        builtin_check(&e, CHECK).await,
        (true, "enabled with 2 rules".to_string())
    );
    let rules = |f: &dyn Fn(&mut Vec<phx_core::types::FirewallRule>)| {
        fake.with(|c| f(&mut c.cluster_firewall.rules))
    };
    // someone changed the SSH port on the node
    rules(&|r| r[1].dport = Some("2222".parse().unwrap()));
    assert_eq!(
        builtin_check(&e, CHECK).await,
        (
            false,
            "rule 2 (in ACCEPT tcp dport 22 from 192.168.50.0/24 (\"SSH from the LAN\")): dport 2222 instead of 22".to_string()
        )
    );
    // and opened it to everyone, with a comment of their own
    rules(&|r| {
        r[1].source = None;
        r[1].comment = Some("temporary".into());
    });
    assert_eq!(
        builtin_check(&e, CHECK).await.1,
        "rule 2 (in ACCEPT tcp dport 22 from 192.168.50.0/24 (\"SSH from the LAN\")): dport 2222 instead of 22, source (unset) instead of 192.168.50.0/24, comment \"temporary\" instead of \"SSH from the LAN\""
    );
    // a rule is gone
    rules(&|r| {
        r.remove(1);
    });
    assert_eq!(
        builtin_check(&e, CHECK).await.1,
        "1 rule instead of the 2 configured; missing: in ACCEPT tcp dport 22 from 192.168.50.0/24 (\"SSH from the LAN\")"
    );
    // the configured rules are back, with one more
    let configured = e
        .inventory()
        .hypervisor
        .firewall
        .as_ref()
        .unwrap()
        .rules
        .clone();
    rules(&|r| {
        let mut extra = configured[0].clone();
        extra.dport = Some("3128".parse().unwrap());
        extra.comment = None;
        *r = configured.clone();
        r.push(extra);
    });
    assert_eq!(
        builtin_check(&e, CHECK).await.1,
        "3 rules instead of the 2 configured; not configured: in ACCEPT tcp dport 3128 from 192.168.50.0/24"
    );
    // in another order
    rules(&|r| {
        r.pop();
        r.reverse();
    });
    assert_eq!(
        builtin_check(&e, CHECK).await,
        (
            false,
            "the configured rules are there, in another order".to_string()
        )
    );
}

/// What a host step printed, per line.
#[derive(Default)]
struct HostOutput(std::sync::Mutex<Vec<String>>);

impl phx_core::report::Reporter for HostOutput {
    fn report(&self, e: &phx_core::report::Event<'_>) {
        if let phx_core::report::Event::HostOutput { source, line } = e {
            self.0.lock().unwrap().push(format!("{source}: {line}"));
        }
    }
}

#[tokio::test]
async fn the_zfs_step_is_destructive_only_with_allow_destructive() {
    // the config asking for destructive operations is not enough: only the operator's flag is
    let etc = tempfile::tempdir().unwrap();
    for f in [
        "phoenix_hypervisor_config.json",
        "phoenix_lxc_configs.json",
        "phoenix_vm_configs.json",
    ] {
        std::fs::copy(
            repo().join("examples/homelab/etc").join(f),
            etc.path().join(f),
        )
        .unwrap();
    }
    let hv = etc.path().join("phoenix_hypervisor_config.json");
    let text = std::fs::read_to_string(&hv).unwrap().replacen(
        "\"zfs\": {",
        "\"zfs\": {\n        \"settings\": { \"allow_destructive_operations\": true },",
        1,
    );
    std::fs::write(&hv, text).unwrap();
    let inv = || {
        Inventory::load(&LoadOptions {
            config_dir: etc.path().to_path_buf(),
            scripts_dir: Some(repo().join("examples/homelab/bin")),
        })
        .unwrap()
    };
    assert!(inv().hypervisor.zfs.as_ref().unwrap().allow_destructive);
    for (allow, mode, env) in [(false, "safe", "0"), (true, "force-destructive", "1")] {
        let fake = fake();
        let e = engine(&fake, inv());
        let o = HostOptions {
            only: vec!["setup_zfs".into()],
            allow_destructive: allow,
            ..HostOptions::default()
        };
        let plan = e.plan_host(&o).await.unwrap();
        let args: Vec<String> = plan
            .actions
            .iter()
            .filter_map(|a| match &a.step {
                phx_core::engine::host::HostStep::Script { name, args, .. }
                    if name == "hypervisor_feature_setup_zfs" =>
                {
                    Some(args.join(" "))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            args,
            [format!("--config {} --mode {mode}", hv.display())],
            "allow_destructive {allow}"
        );
        let out = HostOutput::default();
        let r = e.apply_host(&plan, &o, &out).await;
        assert!(r.failed.is_none(), "{}", result_lines(&r));
        let lines = out.0.lock().unwrap().clone();
        assert_eq!(
            lines.first().map(String::as_str),
            Some(
                format!(
                    "hypervisor_feature_setup_zfs: zfs: mode {mode} (destructive operations {env})"
                )
                .as_str()
            ),
            "{lines:#?}"
        );
    }
}

/// The Phoenix configs as of commit c6672e0, under the standard names.
fn c6672e0_config(fixtures: &std::path::Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "phoenix_hypervisor_config.json",
        "phoenix_lxc_configs.json",
        "phoenix_vm_configs.json",
    ] {
        let old = name.replace(".json", ".c6672e0.json");
        std::fs::copy(fixtures.join(old), dir.path().join(name)).unwrap();
    }
    dir
}

#[tokio::test]
async fn setup_with_the_c6672e0_fixture_config() {
    let Some(fixtures) = fixtures_dir() else {
        return;
    };
    let etc = c6672e0_config(&fixtures);
    let inv = Inventory::load(&LoadOptions {
        config_dir: etc.path().to_path_buf(),
        scripts_dir: Some(std::env::temp_dir().join("phx-no-host-steps")),
    })
    .unwrap();
    let fake = fake();
    let e = engine(&fake, inv);
    let plan = e.plan_host(&HostOptions::default()).await.unwrap();
    insta::assert_snapshot!("host_plan_fixtures_c6672e0", plan_lines(&plan));
    let r = e
        .apply_host(&plan, &HostOptions::default(), &NullReporter)
        .await;
    assert!(r.failed.is_none(), "{}", result_lines(&r));
    assert_eq!(r.done.len(), plan.actions.len());
    let again = e.plan_host(&HostOptions::default()).await.unwrap();
    assert!(again.actions.is_empty(), "{}", plan_lines(&again));
    let report = e
        .test_host(Some(phx_core::engine::host::BUILTIN_SUITE), &NullReporter)
        .await
        .unwrap();
    let failed: Vec<String> = report
        .results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| format!("{}: {}", r.name, r.output))
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
    assert!(report.results.len() >= 5, "{:?}", report.results);
}

/// Host output lines with the time they were reported.
#[derive(Default)]
struct HostLines(std::sync::Mutex<Vec<(std::time::Instant, String)>>);

impl phx_core::report::Reporter for HostLines {
    fn report(&self, e: &phx_core::report::Event<'_>) {
        if let phx_core::report::Event::HostOutput { source, line } = e {
            let mut l = self.0.lock().unwrap();
            l.push((std::time::Instant::now(), format!("[{source}] {line}")));
        }
    }
}

#[tokio::test]
async fn a_host_step_s_output_is_reported_while_it_runs() {
    use std::os::unix::fs::PermissionsExt;
    let scripts = tempfile::tempdir().unwrap();
    let steps = scripts.path().join("hypervisor_setup");
    std::fs::create_dir_all(&steps).unwrap();
    let p = steps.join("hypervisor_initial_setup.sh");
    std::fs::write(
        &p,
        "#!/bin/sh\necho 'apt: updating'\nsleep 1.5\necho 'apt: done' >&2\n",
    )
    .unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    let inv = Inventory::load(&LoadOptions {
        config_dir: repo().join("examples/homelab/etc"),
        scripts_dir: Some(scripts.path().to_path_buf()),
    })
    .unwrap();
    let fake = fake();
    let e = engine(&fake, inv);
    let o = HostOptions {
        only: vec!["initial_setup".into()],
        ..HostOptions::default()
    };
    let plan = e.plan_host(&o).await.unwrap();
    let lines = HostLines::default();
    let r = e.apply_host(&plan, &o, &lines).await;
    assert!(r.failed.is_none(), "{}", result_lines(&r));
    let l = lines.0.lock().unwrap();
    let seen: Vec<&str> = l.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(
        seen,
        [
            "[hypervisor_initial_setup] apt: updating",
            "[hypervisor_initial_setup] apt: done"
        ]
    );
    // the first line came while the step still slept
    assert!(l[1].0 - l[0].0 >= std::time::Duration::from_secs(1));
}
