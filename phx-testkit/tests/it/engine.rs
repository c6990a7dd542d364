use phx_core::engine::Operation;
use phx_core::report::Outcome;

use crate::support::*;

const CREATE: Operation = Operation::Converge { require_existing: false };

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
