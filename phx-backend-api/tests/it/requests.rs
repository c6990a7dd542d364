//! What goes over the wire for representative operations: method, path and the form body
//! (or query string), as the fake server read them. Reads (the polling of tasks, lookups) are
//! left out; UPIDs are normalised.

use std::collections::BTreeMap;

use phx_core::backend::{
    CloneRequest, ConfigUpdate, ExecRequest, FirewallOptions, LxcCreate, VmCreate,
};
use phx_core::types::{FirewallRule, GuestId, NodeName, StorageId};
use phx_testkit::FakeCluster;

use crate::support::{Fixture, memory};

fn gid(n: u64) -> GuestId {
    GuestId::new(n).unwrap()
}

fn pve() -> NodeName {
    NodeName::new("pve").unwrap()
}

/// The writes since the last call, one per line: `METHOD path` and the body or query.
fn writes(f: &Fixture) -> String {
    let mut out = String::new();
    for r in f.server.take_requests() {
        if r.method == "GET" {
            continue;
        }
        out.push_str(&format!("{} {}\n", r.method, r.path));
        if !r.query.is_empty() {
            out.push_str(&format!("  ?{}\n", r.query));
        }
        if !r.body.is_empty() {
            out.push_str(&format!("  {}\n", r.body));
        }
    }
    out
}

async fn template(f: &Fixture) -> String {
    let local = StorageId::new("local").unwrap();
    f.download_template(&pve(), &local, "debian-12-standard_12.12-1_amd64.tar.zst")
        .await
        .unwrap();
    "local:vztmpl/debian-12-standard_12.12-1_amd64.tar.zst".into()
}

async fn ct(f: &Fixture, id: u64) {
    let ostemplate = template(f).await;
    f.lxc()
        .create(
            &pve(),
            &LxcCreate {
                id: gid(id),
                ostemplate,
                params: BTreeMap::from([
                    ("hostname".into(), format!("ct{id}")),
                    ("rootfs".into(), "local-lvm:8".into()),
                    ("memory".into(), "1024".into()),
                    (
                        "net0".into(),
                        "name=eth0,bridge=vmbr0,ip=10.0.0.5/24,gw=10.0.0.1".into(),
                    ),
                    ("features".into(), "nesting=1,keyctl=1".into()),
                    ("unprivileged".into(), "1".into()),
                ]),
            },
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_from_template_and_clone() {
    let f = memory(FakeCluster::new()).await;
    ct(&f, 900).await;
    f.lxc()
        .snapshot_create(&pve(), gid(900), &"golden".parse().unwrap(), "")
        .await
        .unwrap();
    f.lxc()
        .clone_guest(
            &pve(),
            &CloneRequest {
                source: gid(900),
                target: gid(101),
                snapname: Some("golden".into()),
                name: Some("dns".into()),
                storage: Some(StorageId::new("local-lvm").unwrap()),
                full: true,
            },
        )
        .await
        .unwrap();
    f.lxc().template(&pve(), gid(101)).await.unwrap();
    f.lxc()
        .clone_guest(
            &pve(),
            &CloneRequest {
                source: gid(101),
                target: gid(102),
                snapname: None,
                name: Some("proxy".into()),
                storage: None,
                full: false,
            },
        )
        .await
        .unwrap();
    insta::assert_snapshot!(writes(&f));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_set_with_deletes() {
    let f = memory(FakeCluster::new()).await;
    ct(&f, 103).await;
    let digest = f.lxc().config(&pve(), gid(103)).await.unwrap().digest;
    f.server.take_requests();
    f.lxc()
        .update_config(
            &pve(),
            gid(103),
            &ConfigUpdate {
                set: BTreeMap::from([
                    ("memory".into(), "2048".into()),
                    ("onboot".into(), "1".into()),
                    ("startup".into(), "order=2,up=5".into()),
                    ("description".into(), "dns & dhcp\nsecond line".into()),
                ]),
                delete: vec!["features".into(), "net0".into()],
                digest,
            },
        )
        .await
        .unwrap();
    let out = writes(&f);
    let digest_re = out
        .split("digest=")
        .nth(1)
        .map(|d| d.chars().take(40).collect::<String>())
        .unwrap_or_default();
    insta::assert_snapshot!(out.replace(&digest_re, "[DIGEST]"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_init_vm_create_and_agent() {
    let f = memory(FakeCluster::new()).await;
    f.vm()
        .create(
            &pve(),
            &VmCreate {
                id: gid(1001),
                params: BTreeMap::from([
                    ("name".into(), "apps".into()),
                    ("memory".into(), "4096".into()),
                    ("cores".into(), "2".into()),
                    ("scsihw".into(), "virtio-scsi-single".into()),
                    ("scsi0".into(), "local-lvm:32".into()),
                    ("ide2".into(), "local-lvm:cloudinit".into()),
                    ("net0".into(), "virtio,bridge=vmbr0,firewall=1".into()),
                    ("ipconfig0".into(), "ip=10.0.0.21/24,gw=10.0.0.1".into()),
                    ("ciuser".into(), "admin".into()),
                    (
                        "sshkeys".into(),
                        "ssh-ed25519%20AAAAC3Nza%20phx%40example%0A".into(),
                    ),
                    ("agent".into(), "1".into()),
                    ("boot".into(), "order=scsi0".into()),
                ]),
            },
        )
        .await
        .unwrap();
    f.vm().cloudinit_update(&pve(), gid(1001)).await.unwrap();
    f.vm().start(&pve(), gid(1001)).await.unwrap();
    f.vm()
        .agent_file_write(&pve(), gid(1001), "/tmp/phx.conf", b"a=1\n")
        .await
        .unwrap();
    let exec = async |req: ExecRequest| f.vm().agent_exec(&pve(), gid(1001), &req).await.unwrap();
    let cat = exec(ExecRequest::new(["cat", "/tmp/phx.conf"])).await;
    assert_eq!(cat.stdout, "a=1\n");
    let env = exec(ExecRequest::new(["sh", "-c", "echo $X; exit 3"]).env("X", "y z")).await;
    assert_eq!((env.exit_code, env.stdout.as_str()), (3, "y z\n"));
    insta::assert_snapshot!(writes(&f));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firewall_rules_are_replaced_in_order() {
    let f = memory(FakeCluster::new()).await;
    ct(&f, 104).await;
    f.server.take_requests();
    let rules: Vec<FirewallRule> = serde_json::from_str(
        r#"[{"type":"in","action":"ACCEPT","enable":true,"proto":"udp","dport":"53","source":"192.168.50.0/24","comment":"DNS from the LAN"},
            {"type":"out","action":"DROP","enable":false,"dest":"10.9.9.9"}]"#,
    )
    .unwrap();
    f.lxc()
        .set_firewall_rules(&pve(), gid(104), &rules)
        .await
        .unwrap();
    f.lxc()
        .set_firewall_options(
            &pve(),
            gid(104),
            &FirewallOptions {
                enable: Some(true),
                policy_in: Some("DROP".into()),
                policy_out: None,
            },
        )
        .await
        .unwrap();
    let first = writes(&f);
    // the same rules again: nothing is sent; one rule fewer: all replaced
    f.lxc()
        .set_firewall_rules(&pve(), gid(104), &rules)
        .await
        .unwrap();
    assert_eq!(writes(&f), "");
    f.lxc()
        .set_firewall_rules(&pve(), gid(104), &rules[1..])
        .await
        .unwrap();
    insta::assert_snapshot!(format!(
        "--- set\n{first}--- replace with the second rule only\n{}",
        writes(&f)
    ));
    assert_eq!(
        f.lxc().firewall(&pve(), gid(104)).await.unwrap().rules,
        rules[1..]
    );
}
