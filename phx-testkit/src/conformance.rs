//! The backend conformance suite: one set of async cases over `&dyn Hypervisor` that every
//! backend runs (object_store's `integration.rs`, OpenDAL's behaviour tests).
//!
//! Each case is a plain `pub async fn(&dyn Hypervisor)` that panics on a contract violation.
//! Cases create their own guests with ids no other case uses, so they can share one cluster
//! and run in parallel. A case that needs an optional feature skips itself only by checking
//! [`Hypervisor::capabilities`]. [`conformance_suite!`](crate::conformance_suite) expands to
//! one `#[tokio::test]` per case for a backend constructor:
//!
//! ```text
//! phx_testkit::conformance_suite!(std::sync::Arc::new(phx_testkit::FakeBackend::new(phx_testkit::FakeCluster::new())));
//! ```
//!
//! The cases need a cluster shaped like a fresh Proxmox install: a `dir` storage with
//! `vztmpl`/`iso` content, an `lvmthin` (snapshot-capable) storage with `rootdir`/`images`, and
//! an appliance catalogue offering a `debian-12-standard` template.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Duration;

use phx_core::backend::{
    AgentFile, CloneRequest, ConfigUpdate, DestroyOptions, ExecRequest, FirewallOptions,
    GuestManager, LiveOutput, LxcCreate, PowerState, StorageSpec, VmCreate,
};
use phx_core::error::{ConflictReason, Error};
use phx_core::propstr::{IpConfig, LxcFeatures, MountPoint};
use phx_core::types::{
    DiskSize, FirewallRule, GuestId, GuestKind, NodeName, SnapshotName, StorageId,
};

/// Expand to one `#[tokio::test]` per conformance case. `$ctor` is evaluated once per test and
/// must yield something that derefs to a `Hypervisor` (`Arc<dyn Hypervisor>`, a guard holding
/// a temp dir, ...). The calling crate needs `tokio` (with `macros` and `rt-multi-thread`).
#[macro_export]
macro_rules! conformance_suite {
    ($ctor:expr) => {
        $crate::conformance_suite!(@cases $ctor;
            version_and_nodes_are_reported,
            guests_lists_containers_and_vms_with_their_node,
            lxc_create_from_downloaded_template,
            used_id_is_already_exists,
            missing_guest_is_not_found,
            lxc_config_update_sets_deletes_and_canonicalises,
            stale_digest_is_rejected,
            resize_grows_and_refuses_shrink,
            lxc_power_asymmetries,
            vm_power_asymmetries,
            destroy_refuses_running_and_protected_guests,
            snapshots_create_list_rollback_delete,
            template_conversion,
            lxc_clone_from_template,
            vm_clone_and_cloudinit,
            guest_firewall_round_trip,
            cluster_firewall_round_trip,
            storages_and_content,
            active_tasks_are_only_running_ones,
            lxc_exec_passes_exit_code_and_output,
            lxc_push_then_exec,
            lxc_exec_times_out,
            host_exec_runs_on_the_node,
            exec_output_arrives_while_the_command_runs,
            vm_agent_exec_and_file_write,
            raw_lxc_lines_are_replaced,
            users_and_acl,
            node_dns_and_timezone,
            node_bridges_are_listed,
        );
    };
    (@cases $ctor:expr; $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let backend = $ctor;
                let hv: &dyn $crate::conformance::Hypervisor = &*backend;
                $crate::conformance::$case(hv).await;
            }
        )*
    };
}

/// The trait the cases run against (re-exported for [`conformance_suite!`](crate::conformance_suite)).
pub use phx_core::backend::Hypervisor;

// ----- helpers ---------------------------------------------------------------------------

fn gid(n: u32) -> GuestId {
    GuestId::new(u64::from(n)).expect("valid test id")
}

fn snap(s: &str) -> SnapshotName {
    SnapshotName::new(s).expect("valid snapshot name")
}

fn sid(s: &str) -> StorageId {
    StorageId::new(s).expect("valid storage id")
}

/// A short name for an error kind, for assertion messages.
pub fn kind_of(e: &Error) -> String {
    match e {
        Error::NotFound { .. } => "NotFound".into(),
        Error::AlreadyExists { .. } => "AlreadyExists".into(),
        Error::Locked { .. } => "Locked".into(),
        Error::Conflict { reason, .. } => format!("Conflict({reason:?})"),
        Error::InvalidRequest { .. } => "InvalidRequest".into(),
        Error::Unsupported { .. } => "Unsupported".into(),
        Error::TaskFailed { .. } => "TaskFailed".into(),
        Error::Timeout { .. } => "Timeout".into(),
        Error::Transient { .. } => "Transient".into(),
        Error::Rejected { .. } => "Rejected".into(),
        Error::Backend { .. } => "Backend".into(),
        Error::Io { .. } => "Io".into(),
        _ => "Other".into(),
    }
}

fn full_text(e: &Error) -> String {
    match e {
        Error::TaskFailed { exit_status, .. } => format!("{e} {exit_status}"),
        _ => e.to_string(),
    }
}

#[track_caller]
fn expect_conflict<T: std::fmt::Debug>(r: phx_core::Result<T>, want: ConflictReason, what: &str) {
    match r {
        Err(Error::Conflict { reason, .. }) if reason == want => {}
        other => panic!(
            "{what}: expected Conflict({want:?}), got {:?}",
            other.map_err(|e| format!("{}: {e}", kind_of(&e)))
        ),
    }
}

async fn node(h: &dyn Hypervisor) -> NodeName {
    h.default_node().await.expect("default_node")
}

/// A storage on `node` holding `content`, preferring snapshot-capable types.
async fn storage_with(h: &dyn Hypervisor, node: &NodeName, content: &str) -> StorageId {
    let list = h.storages(node).await.expect("storages");
    let mut fit: Vec<_> = list
        .into_iter()
        .filter(|s| s.enabled && s.supports(content))
        .collect();
    fit.sort_by_key(|s| !matches!(s.kind.as_str(), "lvmthin" | "zfspool" | "rbd"));
    fit.first()
        .map(|s| s.id.clone())
        .unwrap_or_else(|| panic!("no storage with {content} content on {node}"))
}

/// Make sure a Debian 12 template is on a `vztmpl` storage; returns its volid.
async fn ensure_template(h: &dyn Hypervisor, node: &NodeName) -> String {
    let store = storage_with(h, node, "vztmpl").await;
    let avail = h
        .available_templates(node)
        .await
        .expect("available_templates");
    let name = avail
        .iter()
        .find(|t| t.starts_with("debian-12-standard"))
        .or(avail.first())
        .expect("the catalogue offers templates")
        .clone();
    let volid = format!("{store}:vztmpl/{name}");
    let have = h
        .storage_content(node, &store, Some("vztmpl"))
        .await
        .expect("storage_content");
    if !have.iter().any(|v| v.volid == volid) {
        h.download_template(node, &store, &name)
            .await
            .expect("download_template");
    }
    volid
}

async fn create_ct(h: &dyn Hypervisor, node: &NodeName, id: u32, extra: &[(&str, &str)]) {
    let tmpl = ensure_template(h, node).await;
    let rootdir = storage_with(h, node, "rootdir").await;
    let mut params: BTreeMap<String, String> = BTreeMap::from([
        ("hostname".into(), format!("ct{id}")),
        ("memory".into(), "512".into()),
        ("cores".into(), "1".into()),
        ("rootfs".into(), format!("{rootdir}:2")),
        ("net0".into(), "name=eth0,bridge=vmbr0,ip=dhcp".into()),
    ]);
    for (k, v) in extra {
        params.insert((*k).into(), (*v).into());
    }
    h.lxc()
        .create(
            node,
            &LxcCreate {
                id: gid(id),
                ostemplate: tmpl,
                params,
            },
        )
        .await
        .unwrap_or_else(|e| panic!("create CT {id}: {e}"));
}

async fn create_vm(h: &dyn Hypervisor, node: &NodeName, id: u32, extra: &[(&str, &str)]) {
    let images = storage_with(h, node, "images").await;
    let mut params: BTreeMap<String, String> = BTreeMap::from([
        ("name".into(), format!("vm{id}")),
        ("memory".into(), "1024".into()),
        ("cores".into(), "1".into()),
        ("scsihw".into(), "virtio-scsi-single".into()),
        ("scsi0".into(), format!("{images}:2")),
        ("net0".into(), "virtio,bridge=vmbr0".into()),
    ]);
    for (k, v) in extra {
        params.insert((*k).into(), (*v).into());
    }
    h.vm()
        .create(
            node,
            &VmCreate {
                id: gid(id),
                params,
            },
        )
        .await
        .unwrap_or_else(|e| panic!("create VM {id}: {e}"));
}

async fn status(m: &dyn GuestManager, node: &NodeName, id: u32) -> PowerState {
    m.status(node, gid(id))
        .await
        .unwrap_or_else(|e| panic!("status {id}: {e}"))
        .status
}

async fn set(
    m: &dyn GuestManager,
    node: &NodeName,
    id: u32,
    kv: &[(&str, &str)],
    delete: &[&str],
) -> phx_core::Result<()> {
    let change = ConfigUpdate {
        set: kv.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect(),
        delete: delete.iter().map(|s| (*s).into()).collect(),
        digest: None,
    };
    m.update_config(node, gid(id), &change).await
}

async fn running_ct(h: &dyn Hypervisor, node: &NodeName, id: u32) {
    create_ct(h, node, id, &[]).await;
    h.lxc().start(node, gid(id)).await.expect("start");
}

// ----- cases -----------------------------------------------------------------------------

/// `version`, `nodes` and `default_node` describe the installation.
pub async fn version_and_nodes_are_reported(h: &dyn Hypervisor) {
    let v = h.version().await.expect("version");
    assert!(
        v.version.starts_with(&v.release),
        "version {:?} starts with release {:?}",
        v.version,
        v.release
    );
    assert!(
        v.version.chars().next().is_some_and(|c| c.is_ascii_digit()),
        "{v:?}"
    );
    let nodes = h.nodes().await.expect("nodes");
    let n = node(h).await;
    let me = nodes
        .iter()
        .find(|x| x.name == n)
        .unwrap_or_else(|| panic!("default node {n} is listed in {nodes:?}"));
    assert_eq!(me.status, "online");
    assert!(me.maxcpu.unwrap_or(1) > 0);
}

/// `guests` lists containers and VMs with kind, node, name and status.
pub async fn guests_lists_containers_and_vms_with_their_node(h: &dyn Hypervisor) {
    let n = node(h).await;
    create_ct(h, &n, 9101, &[]).await;
    create_vm(h, &n, 9102, &[]).await;
    let all = h.guests().await.expect("guests");
    let ct = all
        .iter()
        .find(|g| g.id == gid(9101))
        .expect("CT 9101 listed");
    assert_eq!(
        (
            ct.kind,
            &ct.node,
            ct.name.as_deref(),
            ct.status,
            ct.template,
            ct.lock.as_deref()
        ),
        (
            GuestKind::Lxc,
            &n,
            Some("ct9101"),
            PowerState::Stopped,
            false,
            None
        )
    );
    let vm = all
        .iter()
        .find(|g| g.id == gid(9102))
        .expect("VM 9102 listed");
    assert_eq!(
        (vm.kind, &vm.node, vm.name.as_deref(), vm.status),
        (GuestKind::Vm, &n, Some("vm9102"), PowerState::Stopped)
    );
    let s = h.vm().status(&n, gid(9102)).await.expect("vm status");
    assert_eq!(
        (s.id, s.kind, s.status),
        (gid(9102), GuestKind::Vm, PowerState::Stopped)
    );
}

/// A template downloaded from the catalogue shows up as `vztmpl` content, and a container
/// created from it allocates its rootfs, is stopped and unlocked, and has the config it was given.
pub async fn lxc_create_from_downloaded_template(h: &dyn Hypervisor) {
    let n = node(h).await;
    let tmpl = ensure_template(h, &n).await;
    let store =
        StorageId::new(tmpl.split(':').next().unwrap_or_default()).expect("storage of volid");
    let content = h
        .storage_content(&n, &store, Some("vztmpl"))
        .await
        .expect("content");
    let vol = content
        .iter()
        .find(|v| v.volid == tmpl)
        .expect("downloaded template listed");
    assert_eq!(vol.content, "vztmpl");
    assert!(vol.size > 0);
    // a second download of the same template is harmless
    let again = h
        .download_template(&n, &store, tmpl.rsplit('/').next().unwrap_or_default())
        .await;
    assert!(again.is_ok(), "re-download: {again:?}");

    create_ct(h, &n, 9111, &[("onboot", "1"), ("tags", "web;prod")]).await;
    let s = h.lxc().status(&n, gid(9111)).await.expect("status");
    assert_eq!(
        (s.status, s.lock.as_deref(), s.template),
        (PowerState::Stopped, None, false)
    );
    let cfg = h.lxc().config(&n, gid(9111)).await.expect("config");
    assert_eq!(cfg.get("hostname"), Some("ct9111"));
    assert_eq!(cfg.num("memory").unwrap(), Some(512));
    assert_eq!(cfg.flag("onboot"), Some(true));
    assert!(
        cfg.digest.as_deref().is_some_and(|d| d.len() == 40),
        "digest: {:?}",
        cfg.digest
    );
    let root: MountPoint = cfg.mount_point("rootfs").unwrap().expect("rootfs");
    assert!(
        root.volume.contains("9111"),
        "rootfs volume is allocated for the CT: {root:?}"
    );
    assert_eq!(root.size, Some(DiskSize::from_gib(2)));
    let net = cfg.lxc_net("net0").unwrap().expect("net0");
    assert!(net.hwaddr.is_some(), "a MAC is generated: {net:?}");
    assert_eq!(net.kind.as_deref(), Some("veth"));
}

/// Creating with an id in use (by a CT or a VM) is `AlreadyExists` and changes nothing.
pub async fn used_id_is_already_exists(h: &dyn Hypervisor) {
    let n = node(h).await;
    create_ct(h, &n, 9121, &[]).await;
    let tmpl = ensure_template(h, &n).await;
    let again = h
        .lxc()
        .create(
            &n,
            &LxcCreate {
                id: gid(9121),
                ostemplate: tmpl,
                params: BTreeMap::from([("hostname".into(), "other".into())]),
            },
        )
        .await;
    match again {
        Err(Error::AlreadyExists { message, .. }) => {
            assert!(message.contains("9121 already exists"), "{message}")
        }
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    let vm = h
        .vm()
        .create(
            &n,
            &VmCreate {
                id: gid(9121),
                params: BTreeMap::from([("name".into(), "x".into())]),
            },
        )
        .await;
    assert!(
        matches!(vm, Err(Error::AlreadyExists { .. })),
        "VM with a CT's id: {vm:?}"
    );
    let cfg = h.lxc().config(&n, gid(9121)).await.expect("config");
    assert_eq!(
        cfg.get("hostname"),
        Some("ct9121"),
        "the failed create changed nothing"
    );
}

/// Reading a missing guest is `NotFound`, with Proxmox's message.
pub async fn missing_guest_is_not_found(h: &dyn Hypervisor) {
    let n = node(h).await;
    for (m, path) in [
        (h.lxc() as &dyn GuestManager, "lxc"),
        (h.vm() as &dyn GuestManager, "qemu-server"),
    ] {
        let want = format!("Configuration file 'nodes/{n}/{path}/9131.conf' does not exist");
        match m.status(&n, gid(9131)).await {
            Err(Error::NotFound { message, .. }) => assert_eq!(message, want),
            other => panic!("status of missing {path}: {other:?}"),
        }
        match m.config(&n, gid(9131)).await {
            Err(Error::NotFound { message, .. }) => assert_eq!(message, want),
            other => panic!("config of missing {path}: {other:?}"),
        }
        let r = m.snapshots(&n, gid(9131)).await;
        assert!(
            matches!(r, Err(Error::NotFound { .. })),
            "snapshots of missing {path}: {r:?}"
        );
        let r = set(m, &n, 9131, &[("cores", "2")], &[]).await;
        assert!(
            matches!(r, Err(Error::NotFound { .. })),
            "update of missing {path}: {r:?}"
        );
    }
}

/// `update_config` sets and deletes keys; property strings are stored canonically and read
/// back parsed-equal; unknown keys are rejected.
pub async fn lxc_config_update_sets_deletes_and_canonicalises(h: &dyn Hypervisor) {
    let n = node(h).await;
    let (lxc, id) = (h.lxc(), 9141);
    create_ct(h, &n, id, &[("description", "first line")]).await;
    set(
        lxc,
        &n,
        id,
        &[
            ("features", "nesting=1,keyctl=1"),
            ("memory", "1024"),
            ("onboot", "1"),
            ("startup", "order=2,up=10"),
        ],
        &["description"],
    )
    .await
    .expect("set");
    let cfg = lxc.config(&n, gid(id)).await.expect("config");
    let want: LxcFeatures = "keyctl=1,nesting=1".parse().unwrap();
    assert_eq!(cfg.features().unwrap(), want);
    assert_eq!(
        cfg.get("features"),
        Some("keyctl=1,nesting=1"),
        "stored canonically"
    );
    assert_eq!(cfg.num("memory").unwrap(), Some(1024));
    assert_eq!(cfg.flag("onboot"), Some(true));
    assert_eq!(
        cfg.startup().unwrap().map(|s| s.to_string()),
        Some("order=2,up=10".into())
    );
    assert_eq!(cfg.get("description"), None, "deleted");
    set(lxc, &n, id, &[], &["onboot", "startup"])
        .await
        .expect("delete only");
    let cfg = lxc.config(&n, gid(id)).await.expect("config");
    assert_eq!((cfg.get("onboot"), cfg.get("startup")), (None, None));
    let bad = set(lxc, &n, id, &[("no-such-key", "1")], &[]).await;
    assert!(
        matches!(bad, Err(Error::InvalidRequest { .. })),
        "unknown key: {bad:?}"
    );
    let ro = set(lxc, &n, id, &[("unprivileged", "0")], &[]).await;
    assert!(
        ro.is_err(),
        "unprivileged is read-only after create: {ro:?}"
    );
}

/// An update carrying a digest of an older config is refused.
pub async fn stale_digest_is_rejected(h: &dyn Hypervisor) {
    let n = node(h).await;
    let (lxc, id) = (h.lxc(), 9151);
    create_ct(h, &n, id, &[]).await;
    let old = lxc
        .config(&n, gid(id))
        .await
        .expect("config")
        .digest
        .expect("digest");
    let ok = ConfigUpdate {
        set: BTreeMap::from([("cores".into(), "2".into())]),
        delete: vec![],
        digest: Some(old.clone()),
    };
    lxc.update_config(&n, gid(id), &ok)
        .await
        .expect("update with the current digest");
    let stale = ConfigUpdate {
        set: BTreeMap::from([("cores".into(), "3".into())]),
        delete: vec![],
        digest: Some(old),
    };
    let e = lxc
        .update_config(&n, gid(id), &stale)
        .await
        .expect_err("stale digest");
    assert!(
        e.to_string().contains("detected modified configuration"),
        "{e}"
    );
    assert_eq!(
        lxc.config(&n, gid(id)).await.unwrap().num("cores").unwrap(),
        Some(2)
    );
}

/// `resize` grows a disk and refuses to shrink it.
pub async fn resize_grows_and_refuses_shrink(h: &dyn Hypervisor) {
    let n = node(h).await;
    create_ct(h, &n, 9161, &[]).await;
    h.lxc()
        .resize(&n, gid(9161), "rootfs", DiskSize::from_gib(4))
        .await
        .expect("grow");
    let root = h
        .lxc()
        .config(&n, gid(9161))
        .await
        .unwrap()
        .mount_point("rootfs")
        .unwrap()
        .unwrap();
    assert_eq!(root.size, Some(DiskSize::from_gib(4)));
    let shrink = h
        .lxc()
        .resize(&n, gid(9161), "rootfs", DiskSize::from_gib(1))
        .await;
    assert!(shrink.is_err(), "shrink must fail: {shrink:?}");
    let root = h
        .lxc()
        .config(&n, gid(9161))
        .await
        .unwrap()
        .mount_point("rootfs")
        .unwrap()
        .unwrap();
    assert_eq!(
        root.size,
        Some(DiskSize::from_gib(4)),
        "unchanged after the refused shrink"
    );

    create_vm(h, &n, 9162, &[]).await;
    h.vm()
        .resize(&n, gid(9162), "scsi0", DiskSize::from_gib(3))
        .await
        .expect("grow VM disk");
    let d = h
        .vm()
        .config(&n, gid(9162))
        .await
        .unwrap()
        .disk("scsi0")
        .unwrap()
        .unwrap();
    assert_eq!(d.size, Some(DiskSize::from_gib(3)));
}

/// Containers: start of a running CT is `Conflict(AlreadyRunning)`; stop or shutdown of a
/// stopped CT is `Conflict(NotRunning)`; reboot keeps it running.
pub async fn lxc_power_asymmetries(h: &dyn Hypervisor) {
    let n = node(h).await;
    let (lxc, id) = (h.lxc(), 9171);
    create_ct(h, &n, id, &[]).await;
    expect_conflict(
        lxc.stop(&n, gid(id)).await,
        ConflictReason::NotRunning,
        "stop of a stopped CT",
    );
    expect_conflict(
        lxc.shutdown(&n, gid(id), Duration::from_secs(10)).await,
        ConflictReason::NotRunning,
        "shutdown of a stopped CT",
    );
    let t = lxc.start(&n, gid(id)).await.expect("start");
    assert_eq!(t.warnings, 0);
    assert_eq!(status(lxc, &n, id).await, PowerState::Running);
    expect_conflict(
        lxc.start(&n, gid(id)).await,
        ConflictReason::AlreadyRunning,
        "start of a running CT",
    );
    lxc.reboot(&n, gid(id)).await.expect("reboot");
    assert_eq!(status(lxc, &n, id).await, PowerState::Running);
    lxc.shutdown(&n, gid(id), Duration::from_secs(10))
        .await
        .expect("shutdown");
    assert_eq!(status(lxc, &n, id).await, PowerState::Stopped);
    lxc.start(&n, gid(id)).await.expect("start again");
    lxc.stop(&n, gid(id)).await.expect("stop");
    assert_eq!(status(lxc, &n, id).await, PowerState::Stopped);
}

/// VMs: stop of a stopped VM succeeds; start of a running VM fails (in the task, with
/// "already running"); reboot of a stopped VM is `Conflict(NotRunning)`.
pub async fn vm_power_asymmetries(h: &dyn Hypervisor) {
    let n = node(h).await;
    let (vm, id) = (h.vm(), 9181);
    create_vm(h, &n, id, &[]).await;
    vm.stop(&n, gid(id))
        .await
        .expect("stop of a stopped VM succeeds");
    expect_conflict(
        vm.reboot(&n, gid(id)).await,
        ConflictReason::NotRunning,
        "reboot of a stopped VM",
    );
    vm.start(&n, gid(id)).await.expect("start");
    assert_eq!(status(vm, &n, id).await, PowerState::Running);
    let again = vm
        .start(&n, gid(id))
        .await
        .expect_err("start of a running VM");
    assert!(
        full_text(&again).contains(&format!("VM {id} already running")),
        "{}: {again}",
        kind_of(&again)
    );
    vm.reboot(&n, gid(id)).await.expect("reboot");
    vm.shutdown(&n, gid(id), Duration::from_secs(10))
        .await
        .expect("shutdown");
    assert_eq!(status(vm, &n, id).await, PowerState::Stopped);
}

/// Destroy refuses a running guest and a protected one; a stopped unprotected guest goes away
/// with its disks.
pub async fn destroy_refuses_running_and_protected_guests(h: &dyn Hypervisor) {
    let n = node(h).await;
    let (lxc, id) = (h.lxc(), 9191);
    running_ct(h, &n, id).await;
    expect_conflict(
        lxc.destroy(&n, gid(id), &DestroyOptions::default()).await,
        ConflictReason::Running,
        "destroy of a running CT",
    );
    lxc.stop(&n, gid(id)).await.expect("stop");
    set(lxc, &n, id, &[("protection", "1")], &[])
        .await
        .expect("protect");
    expect_conflict(
        lxc.destroy(&n, gid(id), &DestroyOptions::default()).await,
        ConflictReason::Protected,
        "destroy of a protected CT",
    );
    set(lxc, &n, id, &[], &["protection"])
        .await
        .expect("unprotect");
    let vol = lxc
        .config(&n, gid(id))
        .await
        .unwrap()
        .mount_point("rootfs")
        .unwrap()
        .unwrap()
        .volume;
    lxc.destroy(
        &n,
        gid(id),
        &DestroyOptions {
            purge: true,
            destroy_unreferenced_disks: true,
        },
    )
    .await
    .expect("destroy");
    assert!(matches!(
        lxc.status(&n, gid(id)).await,
        Err(Error::NotFound { .. })
    ));
    let store = sid(vol.split(':').next().unwrap_or_default());
    let left = h.storage_content(&n, &store, None).await.expect("content");
    assert!(
        !left.iter().any(|v| v.volid == vol),
        "{vol} removed with the CT"
    );

    let vm = h.vm();
    create_vm(h, &n, 9192, &[]).await;
    vm.start(&n, gid(9192)).await.expect("start vm");
    expect_conflict(
        vm.destroy(&n, gid(9192), &DestroyOptions::default()).await,
        ConflictReason::Running,
        "destroy of a running VM",
    );
    vm.stop(&n, gid(9192)).await.expect("stop vm");
    vm.destroy(&n, gid(9192), &DestroyOptions::default())
        .await
        .expect("destroy vm");
    assert!(matches!(
        vm.config(&n, gid(9192)).await,
        Err(Error::NotFound { .. })
    ));
}

/// Snapshots: create, list (oldest first, parents, no `current`), rollback restores the
/// config, delete; a missing snapshot is `NotFound` ("does not exist").
pub async fn snapshots_create_list_rollback_delete(h: &dyn Hypervisor) {
    let n = node(h).await;
    let (lxc, id) = (h.lxc(), 9201);
    create_ct(h, &n, id, &[]).await;
    assert!(
        lxc.snapshots(&n, gid(id))
            .await
            .expect("snapshots")
            .is_empty()
    );
    lxc.snapshot_create(&n, gid(id), &snap("first"), "before change")
        .await
        .expect("snapshot first");
    set(lxc, &n, id, &[("memory", "2048")], &[])
        .await
        .expect("set");
    lxc.snapshot_create(&n, gid(id), &snap("second"), "")
        .await
        .expect("snapshot second");
    let dup = lxc.snapshot_create(&n, gid(id), &snap("second"), "").await;
    assert!(dup.is_err(), "duplicate snapshot name: {dup:?}");
    let list = lxc.snapshots(&n, gid(id)).await.expect("snapshots");
    let names: Vec<_> = list
        .iter()
        .map(|s| (s.name.as_str(), s.parent.as_deref(), s.description.as_str()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("first", None, "before change"),
            ("second", Some("first"), "")
        ]
    );
    assert!(list.iter().all(|s| s.snaptime.is_some()));
    assert_eq!(
        lxc.status(&n, gid(id)).await.unwrap().lock,
        None,
        "no lock left after the snapshot task"
    );
    lxc.snapshot_rollback(&n, gid(id), &snap("first"))
        .await
        .expect("rollback");
    assert_eq!(
        lxc.config(&n, gid(id))
            .await
            .unwrap()
            .num("memory")
            .unwrap(),
        Some(512),
        "rollback restores the config"
    );
    lxc.snapshot_delete(&n, gid(id), &snap("second"))
        .await
        .expect("delete second");
    let list = lxc.snapshots(&n, gid(id)).await.expect("snapshots");
    assert_eq!(
        list.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        vec!["first"]
    );
    for r in [
        lxc.snapshot_delete(&n, gid(id), &snap("nope")).await,
        lxc.snapshot_rollback(&n, gid(id), &snap("nope")).await,
    ] {
        match r {
            Err(Error::NotFound { message, .. }) => assert!(
                message.contains("snapshot 'nope' does not exist"),
                "{message}"
            ),
            Err(e @ Error::TaskFailed { .. })
                if full_text(&e).contains("snapshot 'nope' does not exist") => {}
            other => panic!("missing snapshot: {other:?}"),
        }
    }

    create_vm(h, &n, 9202, &[]).await;
    h.vm()
        .snapshot_create(&n, gid(9202), &snap("vmsnap"), "vm")
        .await
        .expect("vm snapshot");
    let vl = h.vm().snapshots(&n, gid(9202)).await.expect("vm snapshots");
    assert_eq!(
        vl.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        vec!["vmsnap"]
    );
    h.vm()
        .snapshot_delete(&n, gid(9202), &snap("vmsnap"))
        .await
        .expect("vm delete snapshot");
}

/// Template conversion: the flag shows in config and status; a template cannot start; a CT with
/// snapshots cannot become a template.
pub async fn template_conversion(h: &dyn Hypervisor) {
    let n = node(h).await;
    let lxc = h.lxc();
    create_ct(h, &n, 9211, &[]).await;
    lxc.template(&n, gid(9211)).await.expect("template");
    assert!(lxc.config(&n, gid(9211)).await.unwrap().is_template());
    let s = lxc.status(&n, gid(9211)).await.unwrap();
    assert!(s.template && s.lock.is_none(), "{s:?}");
    expect_conflict(
        lxc.start(&n, gid(9211)).await,
        ConflictReason::IsTemplate,
        "start of a template",
    );
    assert!(
        h.guests()
            .await
            .unwrap()
            .iter()
            .any(|g| g.id == gid(9211) && g.template)
    );

    create_ct(h, &n, 9212, &[]).await;
    lxc.snapshot_create(&n, gid(9212), &snap("s1"), "")
        .await
        .expect("snapshot");
    expect_conflict(
        lxc.template(&n, gid(9212)).await,
        ConflictReason::HasSnapshots,
        "template of a CT with snapshots",
    );

    running_ct(h, &n, 9213).await;
    expect_conflict(
        lxc.template(&n, gid(9213)).await,
        ConflictReason::Running,
        "template of a running CT",
    );

    create_vm(h, &n, 9214, &[]).await;
    h.vm().template(&n, gid(9214)).await.expect("vm template");
    assert!(h.vm().config(&n, gid(9214)).await.unwrap().is_template());
}

/// LXC clone: a linked clone of a template gets its own disk, name and MAC; while it runs the
/// source carries `lock: disk` (checked where the backend lets it be seen); a used target id
/// is `AlreadyExists`; a missing snapshot or source is an error.
pub async fn lxc_clone_from_template(h: &dyn Hypervisor) {
    let n = node(h).await;
    let lxc = h.lxc();
    create_ct(h, &n, 9221, &[("features", "nesting=1")]).await;
    lxc.template(&n, gid(9221)).await.expect("template");
    let req = CloneRequest {
        source: gid(9221),
        target: gid(9222),
        snapname: None,
        name: Some("clone9222".into()),
        storage: None,
        full: false,
    };
    // watch the source's lock while the clone runs
    let watch = async {
        let mut seen = Vec::new();
        for _ in 0..200 {
            if let Ok(s) = lxc.status(&n, gid(9221)).await
                && let Some(l) = s.lock
            {
                seen.push(l);
            }
            if lxc
                .status(&n, gid(9222))
                .await
                .is_ok_and(|s| s.lock.is_none())
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        seen
    };
    let (done, seen) = tokio::join!(lxc.clone_guest(&n, &req), watch);
    done.expect("clone");
    assert!(
        seen.iter().all(|l| l == "disk"),
        "the source is only ever locked with `disk` during a clone: {seen:?}"
    );
    assert_eq!(
        lxc.status(&n, gid(9221)).await.unwrap().lock,
        None,
        "the source is unlocked after the clone"
    );
    let src = lxc.config(&n, gid(9221)).await.unwrap();
    let cfg = lxc.config(&n, gid(9222)).await.unwrap();
    assert_eq!(cfg.get("hostname"), Some("clone9222"));
    assert!(!cfg.is_template());
    assert_eq!(cfg.features().unwrap(), src.features().unwrap());
    assert_ne!(
        cfg.get("rootfs"),
        src.get("rootfs"),
        "the clone has its own disk"
    );
    assert_ne!(
        cfg.lxc_net("net0").unwrap().and_then(|x| x.hwaddr),
        src.lxc_net("net0").unwrap().and_then(|x| x.hwaddr),
        "the clone has its own MAC"
    );

    let used = lxc
        .clone_guest(
            &n,
            &CloneRequest {
                target: gid(9222),
                ..req.clone()
            },
        )
        .await;
    assert!(
        matches!(used, Err(Error::AlreadyExists { .. })),
        "clone onto a used id: {used:?}"
    );
    let nosnap = lxc
        .clone_guest(
            &n,
            &CloneRequest {
                target: gid(9223),
                snapname: Some("nope".into()),
                ..req.clone()
            },
        )
        .await;
    assert!(
        nosnap
            .as_ref()
            .is_err_and(|e| full_text(e).contains("does not exist")),
        "clone from a missing snapshot: {nosnap:?}"
    );
    let nosrc = lxc
        .clone_guest(
            &n,
            &CloneRequest {
                source: gid(9229),
                target: gid(9224),
                ..req
            },
        )
        .await;
    assert!(
        matches!(nosrc, Err(Error::NotFound { .. })),
        "clone of a missing source: {nosrc:?}"
    );
    assert!(
        matches!(lxc.status(&n, gid(9223)).await, Err(Error::NotFound { .. })),
        "failed clones leave nothing behind"
    );
}

/// VM clone of a cloud-init template (full copy), then cloud-init settings and a drive regeneration.
pub async fn vm_clone_and_cloudinit(h: &dyn Hypervisor) {
    let n = node(h).await;
    let vm = h.vm();
    let images = storage_with(h, &n, "images").await;
    create_vm(
        h,
        &n,
        9231,
        &[
            ("ide2", &format!("{images}:cloudinit")),
            ("ciuser", "admin"),
            ("agent", "1"),
            ("ipconfig0", "ip=dhcp"),
        ],
    )
    .await;
    let cfg = vm.config(&n, gid(9231)).await.unwrap();
    let ide2 = cfg.disk("ide2").unwrap().expect("cloud-init drive");
    assert!(ide2.is_cloudinit(), "{ide2:?}");
    vm.template(&n, gid(9231)).await.expect("template");
    let req = CloneRequest {
        source: gid(9231),
        target: gid(9232),
        snapname: None,
        name: Some("vm9232".into()),
        storage: Some(images.clone()),
        full: true,
    };
    vm.clone_guest(&n, &req).await.expect("full clone");
    set(
        vm,
        &n,
        9232,
        &[
            ("ipconfig0", "ip=10.0.0.5/24,gw=10.0.0.1"),
            ("nameserver", "10.0.0.1"),
        ],
        &[],
    )
    .await
    .expect("cloud-init settings");
    vm.cloudinit_update(&n, gid(9232))
        .await
        .expect("cloudinit update");
    let c = vm.config(&n, gid(9232)).await.unwrap();
    assert_eq!(c.get("name"), Some("vm9232"));
    assert_eq!(c.get("ciuser"), Some("admin"));
    let ip: Option<IpConfig> = c.get("ipconfig0").map(|v| v.parse().unwrap());
    assert_eq!(
        ip,
        Some("ip=10.0.0.5/24,gw=10.0.0.1".parse().unwrap()),
        "compared parsed"
    );
    assert!(!c.is_template());
    assert!(matches!(
        vm.cloudinit_update(&n, gid(9239)).await,
        Err(Error::NotFound { .. })
    ));
}

fn rules() -> Vec<FirewallRule> {
    let mut a: FirewallRule = serde_json::from_str(r#"{"type":"in","action":"ACCEPT","enable":true,"proto":"tcp","dport":"22,80","source":"10.0.0.0/24","comment":"ssh and web"}"#).unwrap();
    let b: FirewallRule =
        serde_json::from_str(r#"{"type":"out","action":"DROP","enable":false,"dest":"10.9.9.9"}"#)
            .unwrap();
    a.iface = Some("net0".into());
    vec![a, b]
}

/// Guest firewall: options and rules read back as written, in order.
pub async fn guest_firewall_round_trip(h: &dyn Hypervisor) {
    let n = node(h).await;
    create_ct(h, &n, 9241, &[]).await;
    let lxc = h.lxc();
    let empty = lxc.firewall(&n, gid(9241)).await.expect("firewall");
    assert!(empty.rules.is_empty());
    let opts = FirewallOptions {
        enable: Some(true),
        policy_in: Some("DROP".into()),
        policy_out: Some("ACCEPT".into()),
    };
    lxc.set_firewall_options(&n, gid(9241), &opts)
        .await
        .expect("options");
    lxc.set_firewall_rules(&n, gid(9241), &rules())
        .await
        .expect("rules");
    let fw = lxc.firewall(&n, gid(9241)).await.expect("firewall");
    assert_eq!(fw.options, opts);
    assert_eq!(fw.rules, rules());
    lxc.set_firewall_rules(&n, gid(9241), &rules()[1..])
        .await
        .expect("fewer rules");
    let opts2 = FirewallOptions {
        enable: Some(false),
        policy_in: None,
        policy_out: None,
    };
    lxc.set_firewall_options(&n, gid(9241), &opts2)
        .await
        .expect("options2");
    let fw = lxc.firewall(&n, gid(9241)).await.expect("firewall");
    assert_eq!((fw.options, fw.rules), (opts2, rules()[1..].to_vec()));

    create_vm(h, &n, 9242, &[]).await;
    h.vm()
        .set_firewall_rules(&n, gid(9242), &rules())
        .await
        .expect("vm rules");
    assert_eq!(h.vm().firewall(&n, gid(9242)).await.unwrap().rules, rules());
    assert!(matches!(
        lxc.firewall(&n, gid(9249)).await,
        Err(Error::NotFound { .. })
    ));
}

/// Cluster firewall: options and rules read back as written.
pub async fn cluster_firewall_round_trip(h: &dyn Hypervisor) {
    let opts = FirewallOptions {
        enable: Some(true),
        policy_in: Some("DROP".into()),
        policy_out: Some("ACCEPT".into()),
    };
    h.set_cluster_firewall_options(&opts)
        .await
        .expect("options");
    h.set_cluster_firewall_rules(&rules()).await.expect("rules");
    let fw = h.cluster_firewall().await.expect("cluster firewall");
    assert_eq!((fw.options, fw.rules), (opts, rules()));
    h.set_cluster_firewall_rules(&[]).await.expect("no rules");
    assert!(h.cluster_firewall().await.unwrap().rules.is_empty());
}

/// Storages of a node, their content (guest volumes carry their vmid), and adding, changing and
/// removing a storage definition; a URL download lands on the storage.
pub async fn storages_and_content(h: &dyn Hypervisor) {
    let n = node(h).await;
    let list = h.storages(&n).await.expect("storages");
    assert!(
        list.iter().any(|s| s.supports("vztmpl")) && list.iter().any(|s| s.supports("rootdir")),
        "{list:?}"
    );
    for s in &list {
        assert!(s.total >= s.used, "{s:?}");
    }
    create_ct(h, &n, 9251, &[]).await;
    let vol = h
        .lxc()
        .config(&n, gid(9251))
        .await
        .unwrap()
        .mount_point("rootfs")
        .unwrap()
        .unwrap()
        .volume;
    let store = sid(vol.split(':').next().unwrap_or_default());
    let content = h
        .storage_content(&n, &store, Some("rootdir"))
        .await
        .expect("content");
    let v = content
        .iter()
        .find(|v| v.volid == vol)
        .unwrap_or_else(|| panic!("{vol} in {content:?}"));
    assert_eq!((v.vmid, v.content.as_str()), (Some(gid(9251)), "rootdir"));

    let spec = StorageSpec {
        id: sid("phxconf9251"),
        kind: "dir".into(),
        params: BTreeMap::from([("path".into(), "/srv/phxconf9251".into())]),
        content: vec!["iso".into(), "vztmpl".into()],
    };
    h.add_storage(&spec).await.expect("add storage");
    let again = h.add_storage(&spec).await;
    assert!(again.is_err(), "adding a storage twice: {again:?}");
    let s = h
        .storages(&n)
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.id == spec.id)
        .expect("new storage listed");
    assert_eq!(
        (s.kind.as_str(), s.supports("iso"), s.supports("images")),
        ("dir", true, false)
    );
    h.set_storage_content(&spec.id, &["images".into(), "iso".into()])
        .await
        .expect("set content");
    let s = h
        .storages(&n)
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.id == spec.id)
        .expect("listed");
    assert!(s.supports("images") && !s.supports("vztmpl"), "{s:?}");
    h.download_url(
        &n,
        &spec.id,
        "iso",
        "phxconf.iso",
        "https://example.invalid/phxconf.iso",
    )
    .await
    .expect("download-url");
    let isos = h
        .storage_content(&n, &spec.id, Some("iso"))
        .await
        .expect("iso content");
    assert!(
        isos.iter()
            .any(|v| v.volid == "phxconf9251:iso/phxconf.iso"),
        "{isos:?}"
    );
    h.remove_storage(&spec.id).await.expect("remove storage");
    assert!(
        !h.storages(&n)
            .await
            .unwrap()
            .iter()
            .any(|s| s.id == spec.id)
    );
}

/// `exec` passes the command's exit code, stdout and stderr through; a stopped CT refuses.
pub async fn lxc_exec_passes_exit_code_and_output(h: &dyn Hypervisor) {
    if !h.capabilities().lxc_exec {
        return;
    }
    let n = node(h).await;
    create_ct(h, &n, 9261, &[]).await;
    let req = ExecRequest::new(["sh", "-c", "echo out; echo err >&2; exit 3"]);
    expect_conflict(
        h.lxc().exec(&n, gid(9261), &req).await,
        ConflictReason::NotRunning,
        "exec in a stopped CT",
    );
    h.lxc().start(&n, gid(9261)).await.expect("start");
    let out = h.lxc().exec(&n, gid(9261), &req).await.expect("exec");
    assert_eq!(
        (out.exit_code, out.stdout.as_str(), out.stderr.as_str()),
        (3, "out\n", "err\n")
    );
    let ok = h
        .lxc()
        .exec(
            &n,
            gid(9261),
            &ExecRequest::new(["sh", "-c", "printf '%s' \"$PHX_X\""]).env("PHX_X", "a b'c"),
        )
        .await
        .expect("exec with env");
    assert_eq!((ok.exit_code, ok.stdout.as_str()), (0, "a b'c"));
    let missing = h
        .lxc()
        .exec(
            &n,
            gid(9261),
            &ExecRequest::new(["phx-no-such-program-9261"]),
        )
        .await
        .expect("exec of a missing program");
    assert!(missing.exit_code != 0, "{missing:?}");
}

/// `push` writes a file (with its mode) that a later `exec` can run.
pub async fn lxc_push_then_exec(h: &dyn Hypervisor) {
    if !h.capabilities().lxc_exec {
        return;
    }
    let n = node(h).await;
    create_ct(h, &n, 9271, &[]).await;
    let script = b"#!/bin/sh\necho \"pushed $1\"\n";
    // Proxmox says "can only push files to a running CT"
    let e = h
        .lxc()
        .push(&n, gid(9271), script, "/tmp/phx-9271.sh", 0o755)
        .await
        .expect_err("push into a stopped CT");
    assert!(
        matches!(
            e,
            Error::Conflict {
                reason: ConflictReason::NotRunning,
                ..
            }
        ) || e.to_string().contains("running CT"),
        "{}: {e}",
        kind_of(&e)
    );
    h.lxc().start(&n, gid(9271)).await.expect("start");
    h.lxc()
        .push(&n, gid(9271), script, "/tmp/phx-9271.sh", 0o755)
        .await
        .expect("push");
    let out = h
        .lxc()
        .exec(&n, gid(9271), &ExecRequest::new(["/tmp/phx-9271.sh", "ok"]))
        .await
        .expect("exec pushed script");
    assert_eq!((out.exit_code, out.stdout.as_str()), (0, "pushed ok\n"));
    let cat = h
        .lxc()
        .exec(
            &n,
            gid(9271),
            &ExecRequest::new(["cat", "/tmp/phx-9271.sh"]),
        )
        .await
        .expect("cat");
    assert_eq!(cat.stdout.as_bytes(), script);
}

/// An `exec` that outlives its timeout is `Timeout`.
pub async fn lxc_exec_times_out(h: &dyn Hypervisor) {
    if !h.capabilities().lxc_exec {
        return;
    }
    let n = node(h).await;
    running_ct(h, &n, 9281).await;
    let started = std::time::Instant::now();
    let r = h
        .lxc()
        .exec(
            &n,
            gid(9281),
            &ExecRequest::new(["sleep", "20"]).timeout(Duration::from_millis(500)),
        )
        .await;
    assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the timeout was honoured ({:?})",
        started.elapsed()
    );
}

/// `host_exec` runs argv on the node and passes the exit code and output through.
pub async fn host_exec_runs_on_the_node(h: &dyn Hypervisor) {
    if !h.capabilities().host_exec {
        return;
    }
    let n = node(h).await;
    let out = h
        .host_exec(
            &n,
            &ExecRequest::new([
                "sh",
                "-c",
                "echo \"hi $1\"; echo warn >&2; exit 2",
                "sh",
                "a;b $c",
            ]),
        )
        .await
        .expect("host exec");
    assert_eq!(
        (out.exit_code, out.stdout.as_str(), out.stderr.as_str()),
        (2, "hi a;b $c\n", "warn\n")
    );
}

/// `active_tasks` answers with the tasks that run now: none of the finished ones (a
/// container was just created and started), filtered by type when asked.
pub async fn active_tasks_are_only_running_ones(h: &dyn Hypervisor) {
    let n = node(h).await;
    create_ct(h, &n, 9265, &[]).await;
    h.lxc().start(&n, gid(9265)).await.expect("start");
    let all = h.active_tasks(&n, None).await.expect("active tasks");
    assert!(
        all.iter()
            .all(|t| t.upid.starts_with("UPID:") && !t.kind.is_empty()),
        "{all:?}"
    );
    assert!(
        !all.iter()
            .any(|t| t.id == "9265" && matches!(t.kind.as_str(), "vzcreate" | "vzstart")),
        "finished tasks are not active: {all:?}"
    );
    let downloads = h
        .active_tasks(&n, Some("download"))
        .await
        .expect("active downloads");
    assert!(
        downloads.iter().all(|t| t.kind == "download"),
        "{downloads:?}"
    );
}

/// With a [`LiveOutput`] in the request, `host_exec` and container `exec` pass each line on
/// while the command still runs (a feature script's progress is seen as it happens), and still
/// return the whole output.
pub async fn exec_output_arrives_while_the_command_runs(h: &dyn Hypervisor) {
    async fn first_line_before_the_end(
        what: &str,
        run: impl std::future::Future<Output = phx_core::Result<phx_core::backend::ExecOutput>>,
        mut lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    ) {
        tokio::pin!(run);
        let first = tokio::select! {
            l = lines.recv() => l,
            r = &mut run => panic!("{what}: ended before its first line arrived: {r:?}"),
        };
        assert_eq!(first.as_deref(), Some("first"), "{what}");
        let out = run.await.expect(what);
        assert_eq!(
            (out.exit_code, out.stdout.as_str(), out.stderr.as_str()),
            (0, "first\nsecond\n", "note\n"),
            "{what}"
        );
        let mut rest = Vec::new();
        while let Ok(l) = lines.try_recv() {
            rest.push(l);
        }
        rest.sort();
        assert_eq!(rest, ["note", "second"], "{what}");
    }
    let n = node(h).await;
    let argv = [
        "sh",
        "-c",
        "echo first; sleep 1; echo second; echo note >&2",
    ];
    if h.capabilities().host_exec {
        let (live, lines) = LiveOutput::channel();
        let req = ExecRequest::new(argv).live(live);
        first_line_before_the_end("host exec", h.host_exec(&n, &req), lines).await;
    }
    if h.capabilities().lxc_exec {
        create_ct(h, &n, 9264, &[]).await;
        h.lxc().start(&n, gid(9264)).await.expect("start");
        let (live, lines) = LiveOutput::channel();
        let req = ExecRequest::new(argv).live(live);
        first_line_before_the_end("lxc exec", h.lxc().exec(&n, gid(9264), &req), lines).await;
    }
}

/// Guest agent: ping, file-write and exec on a running VM with `agent: 1`; a VM without an
/// agent refuses.
pub async fn vm_agent_exec_and_file_write(h: &dyn Hypervisor) {
    if !h.capabilities().vm_agent {
        return;
    }
    let n = node(h).await;
    let vm = h.vm();
    create_vm(h, &n, 9291, &[("agent", "1")]).await;
    create_vm(h, &n, 9292, &[]).await;
    vm.start(&n, gid(9292)).await.expect("start 9292");
    assert!(
        vm.agent_ping(&n, gid(9292)).await.is_err(),
        "no agent configured"
    );
    assert!(
        vm.agent_ping(&n, gid(9291)).await.is_err(),
        "the VM is not running"
    );
    vm.start(&n, gid(9291)).await.expect("start 9291");
    vm.agent_ping(&n, gid(9291)).await.expect("ping");
    vm.agent_file_write(&n, gid(9291), "/tmp/phx-9291.txt", b"agent data\n")
        .await
        .expect("file-write");
    assert_eq!(
        vm.agent_file_read(&n, gid(9291), "/tmp/phx-9291.txt")
            .await
            .expect("file-read"),
        AgentFile {
            content: "agent data\n".into(),
            truncated: false
        }
    );
    assert!(
        vm.agent_file_read(&n, gid(9291), "/tmp/phx-no-such-file")
            .await
            .is_err(),
        "file-read of a missing file"
    );
    let out = vm
        .agent_exec(
            &n,
            gid(9291),
            &ExecRequest::new(["cat", "/tmp/phx-9291.txt"]),
        )
        .await
        .expect("exec");
    assert_eq!((out.exit_code, out.stdout.as_str()), (0, "agent data\n"));
    let fail = vm
        .agent_exec(
            &n,
            gid(9291),
            &ExecRequest::new(["sh", "-c", "echo e >&2; exit 4"]),
        )
        .await
        .expect("exec");
    assert_eq!((fail.exit_code, fail.stderr.as_str()), (4, "e\n"));
}

/// `set_raw_config` replaces the `lxc.*` lines and keeps every other key.
pub async fn raw_lxc_lines_are_replaced(h: &dyn Hypervisor) {
    if !h.capabilities().raw_lxc_config {
        return;
    }
    let n = node(h).await;
    create_ct(h, &n, 9301, &[("features", "nesting=1")]).await;
    let before = h.lxc().config(&n, gid(9301)).await.unwrap();
    let lines = vec![
        ("lxc.apparmor.profile".to_string(), "unconfined".to_string()),
        (
            "lxc.cgroup2.devices.allow".to_string(),
            "c 195:* rwm".to_string(),
        ),
    ];
    h.lxc()
        .set_raw_config(&n, gid(9301), &lines)
        .await
        .expect("set raw");
    let after = h.lxc().config(&n, gid(9301)).await.unwrap();
    assert_eq!(after.raw_lxc, lines);
    assert_eq!(after.entries, before.entries, "every other key is kept");
    h.lxc()
        .set_raw_config(&n, gid(9301), &lines[1..])
        .await
        .expect("fewer raw lines");
    assert_eq!(
        h.lxc().config(&n, gid(9301)).await.unwrap().raw_lxc,
        lines[1..].to_vec()
    );
    h.lxc()
        .set_raw_config(&n, gid(9301), &[])
        .await
        .expect("no raw lines");
    assert!(
        h.lxc()
            .config(&n, gid(9301))
            .await
            .unwrap()
            .raw_lxc
            .is_empty()
    );
}

/// Users and ACLs: a new user is listed, a duplicate is `AlreadyExists`, a grant shows in the ACL.
pub async fn users_and_acl(h: &dyn Hypervisor) {
    let user = "phxconf9311@pve";
    h.add_user(user, "conformance").await.expect("add user");
    assert!(h.users().await.expect("users").iter().any(|u| u == user));
    let dup = h.add_user(user, "again").await;
    assert!(
        matches!(dup, Err(Error::AlreadyExists { .. })),
        "duplicate user: {dup:?}"
    );
    h.set_acl("/vms/9311", user, "PVEVMAdmin")
        .await
        .expect("set acl");
    h.set_acl("/vms/9311", user, "PVEVMAdmin")
        .await
        .expect("set acl twice is harmless");
    let acl = h.acl().await.expect("acl");
    assert_eq!(
        acl.iter()
            .filter(|(p, u, r)| p == "/vms/9311" && u == user && r == "PVEVMAdmin")
            .count(),
        1,
        "{acl:?}"
    );
}

/// Node DNS and timezone read back as set.
pub async fn node_dns_and_timezone(h: &dyn Hypervisor) {
    let n = node(h).await;
    let (_search, servers) = h.node_dns(&n).await.expect("dns");
    assert!(servers.len() <= 3, "{servers:?}");
    let want = vec!["10.0.0.53".to_string(), "10.0.0.54".to_string()];
    h.set_node_dns(&n, "phx.example", &want)
        .await
        .expect("set dns");
    assert_eq!(
        h.node_dns(&n).await.unwrap(),
        (Some("phx.example".into()), want)
    );
    let tz = h.node_timezone(&n).await.expect("timezone");
    assert!(!tz.is_empty());
    h.set_node_timezone(&n, "Europe/Berlin")
        .await
        .expect("set timezone");
    assert_eq!(h.node_timezone(&n).await.unwrap(), "Europe/Berlin");
    h.set_node_timezone(&n, &tz)
        .await
        .expect("restore timezone");
}

/// The node's Linux bridges include the default `vmbr0`.
pub async fn node_bridges_are_listed(h: &dyn Hypervisor) {
    let n = node(h).await;
    let b = h.bridges(&n).await.expect("bridges");
    assert!(b.iter().any(|x| x == "vmbr0"), "{b:?}");
}
