//! A dry run never changes anything: every plan, for every operation and every cluster state,
//! is computed through a [`WriteTrap`] that fails (and records) any mutating backend call.

use std::sync::Arc;

use phx_core::backend::Hypervisor;
use phx_core::engine::host::HostOptions;
use phx_core::engine::{Engine, EngineOptions, Operation, RetryPolicy};
use phx_core::report::NullReporter;
use phx_testkit::WriteTrap;

use crate::support::*;

const OPERATIONS: [Operation; 9] = [
    Operation::Converge {
        require_existing: false,
    },
    Operation::Converge {
        require_existing: true,
    },
    Operation::Up,
    Operation::Start,
    Operation::Stop {
        with_dependents: true,
    },
    Operation::Restart,
    Operation::Down,
    Operation::Delete { force: false },
    Operation::Delete { force: true },
];

fn trapped(fake: &phx_testkit::FakeBackend) -> (Arc<WriteTrap>, Engine) {
    let trap = Arc::new(WriteTrap::new(Arc::new(fake.clone())));
    let hv: Arc<dyn Hypervisor> = trap.clone();
    let e = Engine::new(hv, example()).with_options(EngineOptions {
        jobs: 4,
        retry: RetryPolicy::fast(),
        ..EngineOptions::default()
    });
    (trap, e)
}

/// Plan every operation for every guest, each one alone and all together, and the host.
async fn plan_everything(e: &Engine) -> usize {
    let all = e.inventory().ids();
    let mut plans = 0;
    for op in OPERATIONS {
        let mut target_sets: Vec<Vec<_>> = all.iter().map(|id| vec![*id]).collect();
        target_sets.push(all.clone());
        for targets in target_sets {
            // a refusal (reconfigure of an absent guest) is fine; a write is not
            if e.plan(&targets, op).await.is_ok() {
                plans += 1;
            }
        }
    }
    e.plan_host(&HostOptions::default())
        .await
        .expect("host plan");
    plans + 1
}

#[tokio::test]
async fn no_plan_writes_on_an_empty_a_converged_or_a_drifted_cluster() {
    let fake = fake();
    let (trap, e) = trapped(&fake);
    let empty = plan_everything(&e).await;
    assert!(empty > 40, "only {empty} plans were made");
    assert_eq!(trap.writes(), Vec::<String>::new(), "empty cluster");

    // converged: bring everything up for real, then plan again through the trap
    let real = engine(&fake, example());
    let (_, r) = run(&real, &[], Operation::Up).await;
    assert_eq!(r.result(), "ok");
    let converged = plan_everything(&e).await;
    assert!(converged > 40);
    assert_eq!(trap.writes(), Vec::<String>::new(), "converged cluster");

    // drifted: a stopped guest, a changed config, a deleted guest
    fake.with(|c| {
        let g = c.guests.get_mut(&102).expect("102");
        g.config.insert("memory".into(), "64".into());
        c.guests.remove(&103);
    });
    let r = real
        .apply(
            &real
                .plan(
                    &ids(&[101]),
                    Operation::Stop {
                        with_dependents: false,
                    },
                )
                .await
                .unwrap(),
            &NullReporter,
        )
        .await;
    assert_eq!(r.result(), "ok");
    let drifted = plan_everything(&e).await;
    assert!(drifted > 40);
    assert_eq!(trap.writes(), Vec::<String>::new(), "drifted cluster");
}

#[tokio::test]
async fn the_trap_catches_every_kind_of_write_it_is_given() {
    // the control: applying a plan through the trap trips it at the first write of each guest
    let fake = fake();
    let (trap, e) = trapped(&fake);
    let plan = e.plan(&[], Operation::Up).await.unwrap();
    let r = e.apply(&plan, &NullReporter).await;
    assert_eq!(r.result(), "failed");
    let writes = trap.writes();
    assert!(
        writes
            .iter()
            .any(|w| w.starts_with("download_template local debian-12")),
        "{writes:?}"
    );
    assert!(
        writes.iter().any(|w| w.starts_with("download_url")),
        "{writes:?}"
    );
    // and nothing reached the cluster
    assert!(fake.with(|c| c.guests.is_empty()));
}
