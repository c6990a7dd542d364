//! Tasks and faults over HTTP: slow tasks are polled (and never re-sent), failed tasks carry
//! their UPID and log tail, proxy-layer 596s are retried for reads only, lock timeouts and
//! lost responses come back retryable, and the engine's retry rule finishes the job.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use phx_backend_api::ApiBackend;
use phx_core::backend::{Hypervisor, LxcCreate, TaskDone};
use phx_core::engine::retry::{RetryPolicy, with_retry};
use phx_core::error::Error;
use phx_core::types::{GuestId, NodeName, StorageId};
use phx_testkit::{FakeCluster, Fault};

use crate::support::{Fixture, memory, options};

fn pve() -> NodeName {
    NodeName::new("pve").unwrap()
}

fn count(f: &Fixture, method: &str, path: &str) -> usize {
    f.server
        .requests()
        .iter()
        .filter(|r| r.method == method && r.path == path)
        .count()
}

async fn create(f: &Fixture, id: u64) -> phx_core::Result<TaskDone> {
    let local = StorageId::new("local").unwrap();
    f.download_template(&pve(), &local, "debian-12-standard_12.12-1_amd64.tar.zst")
        .await?;
    f.lxc()
        .create(
            &pve(),
            &LxcCreate {
                id: GuestId::new(id).unwrap(),
                ostemplate: "local:vztmpl/debian-12-standard_12.12-1_amd64.tar.zst".into(),
                params: BTreeMap::from([
                    ("hostname".into(), format!("ct{id}")),
                    ("rootfs".into(), "local-lvm:2".into()),
                ]),
            },
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_task_is_polled_not_resent() {
    let mut c = FakeCluster::new();
    c.set_latency_ms(400);
    let f = memory(c).await;
    let started = Instant::now();
    let done = create(&f, 200).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(400));
    let upid = done.upid.expect("a task ran");
    assert!(
        upid.starts_with("UPID:pve:") && upid.contains(":vzcreate:200:"),
        "{upid}"
    );
    assert_eq!(count(&f, "POST", "/nodes/pve/lxc"), 1);
    let polls = f
        .server
        .requests()
        .iter()
        .filter(|r| r.path.ends_with(&format!("{upid}/status")))
        .count();
    assert!(polls > 2, "polled {polls} times");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_past_its_timeout_is_a_timeout_and_is_not_resent() {
    let f = memory(FakeCluster::new()).await;
    let mut o = options(&f.server);
    o.timeouts
        .tasks
        .insert("vzstart".into(), Duration::from_millis(300));
    let hv = ApiBackend::new(o).unwrap();
    create(&f, 201).await.unwrap();
    f.server.with(|c| c.set_latency_ms(60_000)).unwrap();
    let r = hv.lxc().start(&pve(), GuestId::new(201).unwrap()).await;
    match r {
        Err(Error::Timeout { operation, after }) => {
            assert!(operation.contains(":vzstart:201:"), "{operation}");
            assert_eq!(after, Duration::from_millis(300));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        !Error::Timeout {
            operation: String::new(),
            after: Duration::ZERO
        }
        .is_retryable()
    );
    assert_eq!(count(&f, "POST", "/nodes/pve/lxc/201/status/start"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_task_carries_its_upid_and_log_tail() {
    let f = memory(FakeCluster::new()).await;
    create(&f, 202).await.unwrap();
    f.server
        .with(|c| {
            c.fail_next(
                "lxc.start",
                Fault::TaskError {
                    message: "startup for container '202' failed".into(),
                },
            )
        })
        .unwrap();
    match f.lxc().start(&pve(), GuestId::new(202).unwrap()).await {
        Err(Error::TaskFailed {
            upid,
            exit_status,
            log_tail,
        }) => {
            assert!(upid.contains(":vzstart:202:"), "{upid}");
            assert_eq!(exit_status, "startup for container '202' failed");
            assert_eq!(
                log_tail.last().map(String::as_str),
                Some("TASK ERROR: startup for container '202' failed")
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_failures_are_retried_for_reads_only() {
    let f = memory(FakeCluster::new()).await;
    f.server.fail_next_request("GET", "/cluster/resources", 596);
    f.server.fail_next_request("GET", "/cluster/resources", 599);
    assert!(f.guests().await.unwrap().is_empty());
    assert_eq!(count(&f, "GET", "/cluster/resources"), 3);

    f.server
        .fail_next_request("POST", "/nodes/pve/aplinfo", 596);
    let local = StorageId::new("local").unwrap();
    let r = f
        .download_template(&pve(), &local, "debian-12-standard_12.12-1_amd64.tar.zst")
        .await;
    match &r {
        Err(e @ Error::Transient { message }) => {
            assert_eq!(message, "596 Broken pipe");
            assert!(e.is_retryable());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        count(&f, "POST", "/nodes/pve/aplinfo"),
        1,
        "a write is sent once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_timeouts_are_locked_and_the_engine_retries_them() {
    let f = memory(FakeCluster::new()).await;
    create(&f, 203).await.unwrap();
    f.server
        .with(|c| {
            c.fail_next("lxc.start", Fault::LockTimeout);
            c.fail_next("lxc.start", Fault::LockTimeout);
        })
        .unwrap();
    let id = GuestId::new(203).unwrap();
    let node = pve();
    let first = f.lxc().start(&node, id).await;
    match &first {
        Err(Error::Locked { message, .. }) => {
            assert_eq!(
                message,
                "can't lock file '/run/lock/lxc/pve-config-203.lock' - got timeout"
            )
        }
        other => panic!("{other:?}"),
    }
    let mut retries = 0;
    with_retry(
        RetryPolicy::fast(),
        None,
        |_, _, _| retries += 1,
        || f.lxc().start(&node, id),
    )
    .await
    .unwrap();
    assert_eq!(retries, 1);
    assert_eq!(count(&f, "POST", "/nodes/pve/lxc/203/status/start"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_response_is_transient_and_a_retry_finds_it_done() {
    let f = memory(FakeCluster::new()).await;
    let local = StorageId::new("local").unwrap();
    f.download_template(&pve(), &local, "debian-12-standard_12.12-1_amd64.tar.zst")
        .await
        .unwrap();
    f.server
        .with(|c| c.fail_next("lxc.create", Fault::LostResponse { status: 596 }))
        .unwrap();
    let mut seen = Vec::new();
    let done = with_retry(
        RetryPolicy::fast(),
        Some(TaskDone::sync()),
        |_, _, e| seen.push(e.to_string()),
        || create(&f, 204),
    )
    .await
    .unwrap();
    assert_eq!(done, TaskDone::sync(), "the retry met 'already exists'");
    assert_eq!(seen, vec!["596 Broken pipe"]);
    let s = f
        .lxc()
        .status(&pve(), GuestId::new(204).unwrap())
        .await
        .unwrap();
    assert_eq!(s.name.as_deref(), Some("ct204"));
}
