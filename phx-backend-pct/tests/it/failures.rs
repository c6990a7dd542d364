//! How failures come back: a failed task is `TaskFailed` with its UPID (found for `pct`/`qm`,
//! read back for `pvesh create` and `pveam download`, which exit 0 on a failed task); lock
//! contention is `Locked` and retryable; a refusal before any task keeps Proxmox's message.

use std::sync::Arc;

use phx_backend_pct::{LocalRunner, PctBackend, PctOptions};
use phx_core::backend::{ConfigUpdate, Hypervisor, LxcCreate};
use phx_core::error::{ConflictReason, Error};
use phx_core::types::{GuestId, NodeName, StorageId};
use phx_testkit::{FakePve, Fault};

const TMPL: &str = "debian-12-standard_12.12-1_amd64.tar.zst";

fn setup() -> (FakePve, PctBackend) {
    let fake = FakePve::new().unwrap();
    let b = PctBackend::new(
        Arc::new(LocalRunner::new().envs(fake.env())),
        PctOptions {
            pve_etc: fake.etc_dir(),
            ..PctOptions::default()
        },
    );
    (fake, b)
}

fn pve() -> NodeName {
    NodeName::new("pve").unwrap()
}

fn local() -> StorageId {
    StorageId::new("local").unwrap()
}

async fn ct(b: &PctBackend, id: u32) {
    b.download_template(&pve(), &local(), TMPL).await.unwrap();
    let params = [("rootfs", "local-lvm:1"), ("hostname", "f")]
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    b.lxc()
        .create(
            &pve(),
            &LxcCreate {
                id: GuestId::new(u64::from(id)).unwrap(),
                ostemplate: format!("local:vztmpl/{TMPL}"),
                params,
            },
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn pveam_download_exits_0_on_a_failed_task_and_the_failure_is_still_seen() {
    let (fake, b) = setup();
    fake.with(|c| {
        c.fail_next(
            "aplinfo.download",
            Fault::TaskError {
                message: "download failed: 404 Not Found".into(),
            },
        )
    })
    .unwrap();
    match b.download_template(&pve(), &local(), TMPL).await {
        Err(Error::TaskFailed {
            upid, exit_status, ..
        }) => {
            assert!(
                upid.starts_with("UPID:pve:") && upid.contains(":download:"),
                "{upid}"
            );
            assert_eq!(exit_status, "download failed: 404 Not Found");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        b.storage_content(&pve(), &local(), Some("vztmpl"))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn pvesh_create_of_a_failing_task_is_task_failed() {
    let (fake, b) = setup();
    fake.with(|c| {
        c.fail_next(
            "storage.download-url",
            Fault::TaskError {
                message: "checksum mismatch".into(),
            },
        )
    })
    .unwrap();
    let r = b
        .download_url(
            &pve(),
            &local(),
            "iso",
            "x.iso",
            "https://example.invalid/x.iso",
        )
        .await;
    assert!(
        matches!(&r, Err(Error::TaskFailed { exit_status, upid, .. }) if exit_status == "checksum mismatch" && upid.contains(":download:")),
        "{r:?}"
    );
}

#[tokio::test]
async fn a_failed_pct_task_carries_its_upid_and_log() {
    let (fake, b) = setup();
    ct(&b, 300).await;
    fake.with(|c| {
        c.fail_next(
            "lxc.start",
            Fault::TaskError {
                message: "startup for container '300' failed".into(),
            },
        )
    })
    .unwrap();
    match b.lxc().start(&pve(), GuestId::new(300).unwrap()).await {
        Err(Error::TaskFailed {
            upid, exit_status, ..
        }) => {
            assert!(upid.contains(":vzstart:300:"), "{upid}");
            assert_eq!(exit_status, "startup for container '300' failed");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn lock_timeouts_are_locked_and_retryable() {
    let (fake, b) = setup();
    ct(&b, 301).await;
    fake.with(|c| c.fail_next("lxc.config.update", Fault::LockTimeout))
        .unwrap();
    let change = ConfigUpdate {
        set: [("cores".to_string(), "2".to_string())].into(),
        ..ConfigUpdate::default()
    };
    let e = b
        .lxc()
        .update_config(&pve(), GuestId::new(301).unwrap(), &change)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Locked { message, .. } if message == "can't lock file '/run/lock/lxc/pve-config-301.lock' - got timeout"),
        "{e:?}"
    );
    assert!(e.is_retryable());
    b.lxc()
        .update_config(&pve(), GuestId::new(301).unwrap(), &change)
        .await
        .expect("the retry goes through");
}

#[tokio::test]
async fn refusals_before_any_task_keep_proxmox_words() {
    let (_fake, b) = setup();
    ct(&b, 302).await;
    let id = GuestId::new(302).unwrap();
    let e = b.lxc().stop(&pve(), id).await.unwrap_err();
    assert!(
        matches!(&e, Error::Conflict { reason: ConflictReason::NotRunning, message } if message == "CT 302 not running"),
        "{e:?}"
    );
    let other = NodeName::new("pve2").unwrap();
    assert!(
        matches!(
            b.lxc().start(&other, id).await,
            Err(Error::Unsupported { .. })
        ),
        "pct acts on its own node only"
    );
    assert!(!b.capabilities().multi_node);
}

#[tokio::test]
async fn an_lxc_clone_holds_lock_disk_on_its_source_and_a_second_clone_is_locked() {
    use phx_core::backend::CloneRequest;
    let (fake, b) = setup();
    ct(&b, 310).await;
    let src = GuestId::new(310).unwrap();
    b.lxc().template(&pve(), src).await.unwrap();
    fake.with(|c| c.set_latency_ms(600)).unwrap();
    let first = CloneRequest {
        source: src,
        target: GuestId::new(311).unwrap(),
        snapname: None,
        name: None,
        storage: None,
        full: false,
    };
    let node = pve();
    let clone = b.lxc().clone_guest(&node, &first);
    let probe = async {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        let lock = b.lxc().status(&pve(), src).await.unwrap().lock;
        let second = b
            .lxc()
            .clone_guest(
                &pve(),
                &CloneRequest {
                    target: GuestId::new(312).unwrap(),
                    ..first.clone()
                },
            )
            .await;
        (lock, second)
    };
    let (done, (lock, second)) = tokio::join!(clone, probe);
    done.unwrap();
    assert_eq!(
        lock.as_deref(),
        Some("disk"),
        "the source is locked while the clone task runs"
    );
    assert!(
        matches!(&second, Err(Error::Locked { message, .. }) if message == "CT is locked (disk)"),
        "{second:?}"
    );
    assert_eq!(b.lxc().status(&pve(), src).await.unwrap().lock, None);
}
