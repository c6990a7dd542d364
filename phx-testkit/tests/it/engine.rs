use phx_core::engine::Operation;
use phx_core::report::Outcome;

use crate::support::*;

const CREATE: Operation = Operation::Converge {
    require_existing: false,
};

#[tokio::test]
async fn create_chain_on_empty_cluster() {
    let fake = fake();
    let e = engine(&fake, example());
    let (plan, r) = run(&e, &[102], CREATE).await;
    insta::assert_snapshot!("create_102_plan", plan_text(&plan));
    insta::assert_snapshot!("create_102_ops", writes(&fake));
    insta::assert_snapshot!("create_102_result", summary(&r));
    assert_eq!(r.result(), "ok");
}

#[tokio::test]
async fn rerun_is_reads_only() {
    let fake = fake();
    let e = engine(&fake, example());
    run(&e, &[102], CREATE).await;
    oplog(&fake);
    let (plan, r) = run(&e, &[102], CREATE).await;
    assert!(plan.is_empty(), "{}", plan_text(&plan));
    let log = oplog(&fake);
    assert!(log.lines().all(|l| l.starts_with("read ")), "{log}");
    insta::assert_snapshot!("rerun_102_ops", log);
    assert_eq!(r.count(Outcome::Unchanged), 3);
    assert_eq!(r.stats.backend_writes, 0);
}

fn gid(n: u32) -> phx_core::types::GuestId {
    phx_core::types::GuestId::new(u64::from(n)).unwrap()
}

#[tokio::test]
async fn config_change_sets_only_the_changed_keys() {
    let fake = fake();
    run(&engine(&fake, example()), &[102], CREATE).await;
    oplog(&fake);
    let mut inv = example();
    let ct = inv.lxc.get_mut(&gid(102)).unwrap();
    ct.memory_mb = 2048;
    ct.pct_options = "nesting=1".parse().unwrap();
    let e = engine(&fake, inv);
    let (plan, r) = run(
        &e,
        &[102],
        Operation::Converge {
            require_existing: true,
        },
    )
    .await;
    insta::assert_snapshot!("change_102_plan", plan_text(&plan));
    insta::assert_snapshot!("change_102_ops", writes(&fake));
    assert_eq!(r.result(), "ok");
    // converged again: nothing left to do
    let again = e.plan(&ids(&[102]), CREATE).await.unwrap();
    assert!(again.is_empty(), "{}", plan_text(&again));
}

#[tokio::test]
async fn reconfigure_of_an_absent_guest_is_an_error_that_changes_nothing() {
    let fake = fake();
    let e = engine(&fake, example());
    let err = e
        .plan(
            &ids(&[102]),
            Operation::Converge {
                require_existing: true,
            },
        )
        .await
        .unwrap_err();
    insta::assert_snapshot!(err.to_string(), @"CT 102 (proxy) does not exist on the cluster; create it with `phx lxc create 102`");
    assert_eq!(writes(&fake), "");
}

#[tokio::test]
async fn vm_is_cloned_from_a_template_built_from_a_cloud_image() {
    let fake = fake();
    let mut inv = example();
    inv.vms.get_mut(&gid(1001)).unwrap().dependencies.clear();
    let e = engine(&fake, inv);
    let (plan, r) = run(&e, &[1001], CREATE).await;
    insta::assert_snapshot!("vm_clone_plan", plan_text(&plan));
    insta::assert_snapshot!("vm_clone_ops", writes(&fake));
    assert_eq!(r.result(), "ok", "{}", summary(&r));
    let tmpl = fake.with(|c| c.guests[&9000].clone());
    assert!(tmpl.is_template());
    assert_eq!(
        fake.with(|c| c.guests[&1001].status),
        phx_core::backend::PowerState::Running
    );
}

#[tokio::test]
async fn mixed_lxc_vm_chain_is_created_prerequisites_first() {
    let fake = fake();
    let e = engine(&fake, example());
    let (plan, r) = run(&e, &[103], CREATE).await;
    let order: Vec<String> = plan.guests.iter().map(|g| g.id.to_string()).collect();
    assert_eq!(order.join(" "), "900 9000 101 102 1001 103");
    insta::assert_snapshot!("mixed_chain_result", summary(&r));
}

#[tokio::test]
async fn up_creates_everything_then_starts_in_boot_order() {
    let fake = fake();
    let e = engine(&fake, example());
    let (plan, r) = run(&e, &[], Operation::Up).await;
    insta::assert_snapshot!("up_plan", plan_text(&plan));
    let log = writes(&fake);
    insta::assert_snapshot!("up_ops", log);
    assert_eq!(r.result(), "ok", "{}", summary(&r));
    // guests start in boot order; the template 900 only ran for its feature and is stopped again
    assert!(log.contains("lxc.stop 900"), "{log}");
    let starts: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(".start ") && !l.ends_with(" 900"))
        .collect();
    assert_eq!(
        starts,
        [
            "lxc.start 101",
            "lxc.start 102",
            "vm.start 1001",
            "lxc.start 103"
        ]
    );
    let state = fake.snapshot();
    assert_eq!(
        state.guests[&900].status,
        phx_core::backend::PowerState::Stopped
    );
    // and a second up changes nothing
    let again = e.plan(&[], Operation::Up).await.unwrap();
    assert!(again.is_empty(), "{}", plan_text(&again));
}

#[tokio::test]
async fn failure_in_a_chain_skips_dependents_and_finishes_the_rest() {
    let fake = fake();
    fake.with(|c| {
        c.fail_next(
            "lxc.clone",
            phx_testkit::Fault::TaskError {
                message: "clone failed: no space left on device".into(),
            },
        )
    });
    let e = engine(&fake, example());
    let (_, r) = run(&e, &[], Operation::Up).await;
    insta::assert_snapshot!("failure_chain_result", summary(&r));
    assert_eq!(r.result(), "partial");
    assert_eq!(r.count(Outcome::Failed), 1);
    assert!(r.count(Outcome::Skipped) >= 2);
}

#[tokio::test]
async fn lock_timeout_is_retried_until_it_succeeds() {
    let fake = fake();
    let e = engine(&fake, example());
    run(&e, &[101], CREATE).await;
    fake.with(|c| {
        c.guests.get_mut(&101).unwrap().status = phx_core::backend::PowerState::Stopped;
        c.fail_next("lxc.start", phx_testkit::Fault::LockTimeout);
        c.fail_next("lxc.start", phx_testkit::Fault::LockTimeout);
        c.counters.per_op.clear();
    });
    let (_, r) = run(&e, &[101], Operation::Start).await;
    assert_eq!(r.result(), "ok", "{}", summary(&r));
    assert_eq!(fake.with(|c| c.counters.per_op["lxc.start"]), 3);
}

#[tokio::test]
async fn lost_response_on_create_counts_as_done_on_retry() {
    let fake = fake();
    fake.with(|c| {
        c.fail_next(
            "lxc.create",
            phx_testkit::Fault::LostResponse { status: 596 },
        )
    });
    let e = engine(&fake, example());
    let (_, r) = run(&e, &[900], CREATE).await;
    assert_eq!(r.result(), "ok", "{}", summary(&r));
    assert_eq!(fake.with(|c| c.counters.per_op["lxc.create"]), 2);
}

#[tokio::test]
async fn a_stop_whose_answer_was_lost_counts_as_a_change() {
    let fake = fake();
    let e = engine(&fake, example());
    run(&e, &[101], CREATE).await;
    fake.with(|c| {
        c.fail_next(
            "lxc.shutdown",
            phx_testkit::Fault::LostResponse { status: 596 },
        );
        c.counters.per_op.clear();
    });
    let (_, r) = run(
        &e,
        &[101],
        Operation::Stop {
            with_dependents: false,
        },
    )
    .await;
    assert_eq!(r.result(), "ok", "{}", summary(&r));
    // the first shutdown went through; the retry met "not running": phx stopped it
    assert_eq!(fake.with(|c| c.counters.per_op["lxc.shutdown"]), 2);
    let g = r.guests.iter().find(|g| g.id.get() == 101).unwrap();
    assert_eq!(g.outcome, Outcome::Changed, "{}", summary(&r));
    assert!(fake.with(|c| c.guests[&101].status == phx_core::backend::PowerState::Stopped));
}

#[tokio::test]
async fn a_stop_refused_by_a_lock_that_meets_a_stopped_guest_is_not_a_change() {
    let fake = fake();
    let e = engine(&fake, example());
    run(&e, &[101], CREATE).await;
    let plan = e
        .plan(
            &ids(&[101]),
            Operation::Stop {
                with_dependents: false,
            },
        )
        .await
        .unwrap();
    fake.with(|c| {
        // the first shutdown is refused (a lock: nothing happened), and meanwhile someone
        // else stops the container
        c.fail_next("lxc.shutdown", phx_testkit::Fault::LockTimeout);
        c.guests.get_mut(&101).unwrap().status = phx_core::backend::PowerState::Stopped;
    });
    let r = e.apply(&plan, &phx_core::report::NullReporter).await;
    assert_eq!(r.result(), "ok", "{}", summary(&r));
    let g = r.guests.iter().find(|g| g.id.get() == 101).unwrap();
    assert_eq!(g.outcome, Outcome::Unchanged, "{}", summary(&r));
}

#[tokio::test]
async fn a_download_whose_answer_was_lost_is_waited_for_not_sent_again() {
    const TEMPLATE: &str = "debian-12-standard_12.12-1_amd64.tar.zst";
    let fake = fake();
    fake.with(|c| {
        // the first download reached the node and runs for 1.5 s; its answer never came back
        c.latency_ms = 1_500;
        c.download_template("pve", "local", TEMPLATE).unwrap();
        c.latency_ms = 0;
        c.fail_next("aplinfo.download", phx_testkit::Fault::Http { status: 596 });
        c.counters.per_op.clear();
    });
    let e = engine(&fake, example());
    let (_, r) = run(&e, &[900], CREATE).await;
    assert_eq!(r.result(), "ok", "{}", summary(&r));
    // the lost call only: the retry found the download running, waited, and found the file
    assert_eq!(fake.with(|c| c.counters.per_op["aplinfo.download"]), 1);
    let downloads = fake.with(|c| c.tasks.iter().filter(|t| t.kind == "download").count());
    assert_eq!(downloads, 1);
    assert!(fake.with(|c| c.guests.contains_key(&900)));
}

#[tokio::test]
async fn task_failure_is_reported_with_upid_and_log_tail_and_not_retried() {
    let fake = fake();
    fake.with(|c| {
        c.fail_next(
            "lxc.create",
            phx_testkit::Fault::TaskError {
                message: "unable to create CT 900 - mkfs.ext4 failed".into(),
            },
        )
    });
    let e = engine(&fake, example());
    let (_, r) = run(&e, &[900], CREATE).await;
    insta::assert_snapshot!("task_failure_result", summary(&r));
    assert_eq!(fake.with(|c| c.counters.per_op["lxc.create"]), 1);
    // the failed create left nothing behind
    assert!(fake.with(|c| !c.guests.contains_key(&900)));
}

#[tokio::test]
async fn permanent_failure_is_not_retried() {
    let fake = fake();
    run(&engine(&fake, example()), &[900], CREATE).await;
    fake.with(|c| {
        c.counters.per_op.clear();
        c.fail_next(
            "lxc.config.update",
            phx_testkit::Fault::Error {
                status: 500,
                message: "unable to apply: the disk is full".into(),
            },
        );
    });
    let mut inv = example();
    inv.lxc.get_mut(&gid(900)).unwrap().cores = 2;
    let (_, r) = run(&engine(&fake, inv), &[900], CREATE).await;
    assert_eq!(r.result(), "failed");
    assert_eq!(
        r.guests[0].error.as_deref(),
        Some("set: unable to apply: the disk is full")
    );
    assert_eq!(fake.with(|c| c.counters.per_op["lxc.config.update"]), 1);
}

#[tokio::test]
async fn delete_runs_in_reverse_order_and_refuses_while_dependents_exist() {
    let fake = fake();
    let e = engine(&fake, example());
    run(&e, &[], Operation::Up).await;
    let (plan, _) = run(&e, &[900], Operation::Delete { force: false }).await;
    insta::assert_snapshot!(plan_text(&plan), @r"
    900 Base-Template (Stopped, target)
      ERROR: 101, 102, 103 depend on CT 900 and still exist; delete them first, or use --force
    ");
    oplog(&fake);
    let (plan, r) = run(
        &e,
        &[101, 102, 103, 900],
        Operation::Delete { force: false },
    )
    .await;
    let order: Vec<String> = plan.guests.iter().map(|g| g.id.to_string()).collect();
    assert_eq!(order.join(" "), "103 102 101 900", "{}", plan_text(&plan));
    // 101 is a dependency of 102 and 103, which go first; 1001 (not deleted) depends on 102
    insta::assert_snapshot!("delete_result", summary(&r));
}

/// The real Phoenix configs: `create 102` walks 900 -> 103 -> 102 on storages set up like the
/// site's ZFS datasets.
#[tokio::test]
async fn create_102_with_the_real_fixtures() {
    let Some(dir) = fixtures_dir() else { return };
    let scripts = site_script_stubs();
    let inv = phx_core::config::Inventory::load(&phx_core::config::LoadOptions {
        config_dir: dir,
        scripts_dir: Some(scripts.path().to_path_buf()),
    })
    .expect("fixtures load");
    let fake = fake();
    fake.with(|c| {
        for (id, kind, content) in [
            ("quickOS-lxc-disks", "zfspool", "images,rootdir"),
            ("quickOS-vm-disks", "zfspool", "images"),
            ("fastData-shared-iso", "dir", "iso,vztmpl"),
            ("fastData-shared-bulk-data", "zfspool", "images,rootdir"),
        ] {
            c.add_storage(phx_testkit::fake::FakeStorage {
                id: id.into(),
                kind: kind.into(),
                content: content.split(',').map(str::to_string).collect(),
                shared: false,
                disabled: false,
                nodes: None,
                total: 4 << 40,
                params: Default::default(),
            })
            .unwrap();
        }
        c.take_oplog();
    });
    let e = engine(&fake, inv);
    let (plan, r) = run(&e, &[102], CREATE).await;
    let order: Vec<String> = plan.guests.iter().map(|g| g.id.to_string()).collect();
    assert_eq!(order.join(" "), "900 103 102");
    insta::assert_snapshot!("fixtures_create_102_ops", writes(&fake));
    assert_eq!(r.result(), "ok", "{}", summary(&r));
    let again = e.plan(&ids(&[102]), CREATE).await.unwrap();
    assert!(again.is_empty(), "{}", plan_text(&again));
}

/// Stand-ins for the Phoenix site's scripts (not part of the fixtures): every feature installer
/// and application script prints how it was called; the Step-CA application script installs the
/// in-guest health check CT 103 runs.
fn site_script_stubs() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let write = |rel: &str, body: &str| {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    for f in ["base_setup", "trusted_ca", "step_cli", "step_ca", "traefik"] {
        write(
            &format!("lxc_setup/phoenix_hypervisor_feature_install_{f}.sh"),
            "#!/bin/sh\necho \"$(basename \"$0\") $*\"\n",
        );
    }
    write(
        "phoenix_hypervisor_lxc_102.sh",
        "#!/bin/sh\necho \"traefik app for $1\"\n",
    );
    write(
        "phoenix_hypervisor_lxc_103.sh",
        "#!/bin/sh\nset -e\nd=\"$PHX_GUEST_ROOT/usr/local/phoenix_hypervisor/bin/health_checks\"\nmkdir -p \"$d\"\nprintf '#!/bin/sh\\nexit 0\\n' > \"$d/check_step_ca.sh\"\nchmod +x \"$d/check_step_ca.sh\"\necho \"step-ca app for $1\"\n",
    );
    dir
}

/// Records engine events as text.
#[derive(Default)]
struct Events(std::sync::Mutex<Vec<String>>);

impl phx_core::report::Reporter for Events {
    fn report(&self, e: &phx_core::report::Event<'_>) {
        use phx_core::report::Event;
        let line = match e {
            Event::Retry {
                id,
                op,
                attempt,
                error,
                ..
            } => format!("{id} retry {op} #{attempt}: {error}"),
            Event::Output { id, source, line } => format!("{id} [{source}] {line}"),
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

#[tokio::test]
async fn health_check_passes_on_its_second_attempt() {
    use std::os::unix::fs::PermissionsExt;
    let fake = fake();
    run(&engine(&fake, example()), &[101], CREATE).await;
    let bin = fake.guest_root(gid(101)).join("usr/local/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(
        bin.join("flaky"),
        "#!/bin/sh\nf=\"$PHX_GUEST_ROOT/tmp/flaky.count\"\nn=$(cat \"$f\" 2>/dev/null || echo 0)\nn=$((n+1))\necho $n > \"$f\"\nif [ $n -ge 2 ]; then echo \"ready on attempt $n\"; exit 0; fi\necho \"not ready (attempt $n)\"\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(bin.join("flaky"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut inv = example();
    let ct = inv.lxc.get_mut(&gid(101)).unwrap();
    ct.memory_mb = 768;
    ct.health_check = Some(phx_core::config::HealthCheck {
        command: "/usr/local/bin/flaky".into(),
        retries: 3,
        interval: 0,
    });
    let e = engine(&fake, inv);
    let plan = e.plan(&ids(&[101]), CREATE).await.unwrap();
    let events = Events::default();
    let r = e.apply(&plan, &events).await;
    assert_eq!(r.result(), "ok", "{}", summary(&r));
    insta::assert_snapshot!(events.0.lock().unwrap().join("\n"), @r"
    101 [health-check /usr/local/bin/flaky] not ready (attempt 1)
    101 retry health-check #1: exit code 1
    101 [health-check /usr/local/bin/flaky] ready on attempt 2
    ");
}

#[tokio::test]
async fn rerun_skips_features_and_rerun_features_forces_them() {
    let fake = fake();
    let e = engine(&fake, example());
    run(&e, &[101], CREATE).await;
    let desc = fake.with(|c| c.guests[&101].config.get("description").cloned());
    assert_eq!(
        desc.as_deref(),
        Some("[phx] features=base_setup,dns_server app=homelab_dns.sh@7ea24fa8070d91d3")
    );
    let again = e.plan(&ids(&[101]), CREATE).await.unwrap();
    assert!(again.is_empty(), "{}", plan_text(&again));
    let forced = engine(&fake, example()).with_options(phx_core::engine::EngineOptions {
        rerun_features: true,
        jobs: 1,
        retry: phx_core::engine::RetryPolicy::fast(),
        ..Default::default()
    });
    let plan = forced.plan(&ids(&[101]), CREATE).await.unwrap();
    insta::assert_snapshot!(plan_text(&plan), @r"
    900 Base-Template (Stopped)
    101 dns (Running, target)
      feature dns_server [--rerun-features]
      record features in the description [so a re-run skips them]
      health-check  [the guest changed]
    ");
}
