//! Several nodes: the URL points at node A, guests live on node B; they are found through
//! `/cluster/resources`, managed on B, and a stale node name is corrected.

use std::collections::BTreeMap;

use phx_core::backend::{ExecRequest, Hypervisor, LxcCreate};
use phx_core::types::{GuestId, NodeName, StorageId};
use phx_testkit::FakeCluster;

use crate::support::with_ssh;

fn n(s: &str) -> NodeName {
    NodeName::new(s).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_on_another_node_is_found_and_managed() {
    let f = with_ssh(FakeCluster::with_nodes(&["pve1", "pve2"])).await;
    assert_eq!(
        f.default_node().await.unwrap(),
        n("pve1"),
        "the node the URL points at"
    );
    assert!(f.capabilities().multi_node);

    let local = StorageId::new("local").unwrap();
    f.download_template(
        &n("pve2"),
        &local,
        "debian-12-standard_12.12-1_amd64.tar.zst",
    )
    .await
    .unwrap();
    let id = GuestId::new(301).unwrap();
    f.lxc()
        .create(
            &n("pve2"),
            &LxcCreate {
                id,
                ostemplate: "local:vztmpl/debian-12-standard_12.12-1_amd64.tar.zst".into(),
                params: BTreeMap::from([
                    ("hostname".into(), "on-b".into()),
                    ("rootfs".into(), "local-lvm:2".into()),
                ]),
            },
        )
        .await
        .unwrap();
    let g = f
        .guests()
        .await
        .unwrap()
        .into_iter()
        .find(|g| g.id == id)
        .unwrap();
    assert_eq!(g.node, n("pve2"));

    // a caller that thinks the guest is on pve1 is redirected to pve2
    f.lxc().start(&n("pve1"), id).await.unwrap();
    let s = f.lxc().status(&n("pve1"), id).await.unwrap();
    assert_eq!(
        (s.node.as_str(), s.status.to_string().as_str()),
        ("pve2", "running")
    );
    let starts: Vec<String> = f
        .server
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/301/status/start"))
        .map(|r| r.path)
        .collect();
    assert_eq!(
        starts,
        vec![
            "/nodes/pve1/lxc/301/status/start",
            "/nodes/pve2/lxc/301/status/start"
        ]
    );

    // exec goes over ssh to the guest's node
    let out = f
        .lxc()
        .exec(
            &n("pve2"),
            id,
            &ExecRequest::new(["sh", "-c", "echo hi from $0", "ct"]),
        )
        .await
        .unwrap();
    assert_eq!((out.exit_code, out.stdout.as_str()), (0, "hi from ct\n"));
    let host = f
        .host_exec(
            &n("pve2"),
            &ExecRequest::new(["sh", "-c", "echo $PHX_FAKE_NODE"]),
        )
        .await
        .unwrap();
    assert_eq!(host.stdout, "pve2\n", "ssh went to root@pve2");

    // a guest that exists nowhere stays NotFound
    let missing = f.lxc().status(&n("pve1"), GuestId::new(399).unwrap()).await;
    assert!(
        matches!(missing, Err(phx_core::Error::NotFound { .. })),
        "{missing:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_node_is_the_one_the_url_names() {
    let f = crate::support::memory(FakeCluster::with_nodes(&["alpha", "localhost"])).await;
    assert_eq!(
        f.default_node().await.unwrap(),
        n("alpha"),
        "127.0.0.1 names no node: the one answering local=1"
    );
    let mut o = crate::support::options(&f.server);
    o.url = f.server.url().replace("127.0.0.1", "localhost");
    let by_name = phx_backend_api::ApiBackend::new(o.clone()).unwrap();
    assert_eq!(by_name.default_node().await.unwrap(), n("localhost"));
    o.node = Some("alpha".into());
    let pinned = phx_backend_api::ApiBackend::new(o).unwrap();
    assert_eq!(
        pinned.default_node().await.unwrap(),
        n("alpha"),
        "--node wins"
    );
}
