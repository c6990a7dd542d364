//! For random small inventories of containers and VMs: apply(plan) then plan again is empty.

use phx_core::config::{Inventory, Sources};
use phx_core::engine::Operation;
use proptest::prelude::*;

use crate::support::{engine, fake, plan_text, summary};

#[derive(Debug, Clone)]
struct Ct {
    memory: u32,
    cores: u8,
    disk: u8,
    clone_of: Option<usize>,
    deps: Vec<usize>,
    start: bool,
    firewall: bool,
    nesting: bool,
    volume: bool,
}

fn ct() -> impl Strategy<Value = Ct> {
    (
        prop::sample::select(vec![256u32, 512, 1024]),
        1u8..4,
        4u8..12,
        any::<Option<prop::sample::Index>>(),
        prop::collection::vec(any::<prop::sample::Index>(), 0..2),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(memory, cores, disk, clone, deps, start, firewall, nesting, volume)| Ct {
                memory,
                cores,
                disk,
                clone_of: clone.map(|i| i.index(1000)),
                deps: deps.iter().map(|i| i.index(1000)).collect(),
                start,
                firewall,
                nesting,
                volume,
            },
        )
}

#[derive(Debug, Clone)]
struct Vm {
    memory: u32,
    cores: u8,
    disk: u8,
    /// A clone of an earlier VM template (when there is one), else from the cloud image.
    clone_of: Option<usize>,
    template: bool,
    /// Earlier guests: the containers, then the VMs before this one.
    deps: Vec<usize>,
    start: bool,
    firewall: bool,
    dhcp: bool,
}

fn vm() -> impl Strategy<Value = Vm> {
    (
        prop::sample::select(vec![512u32, 1024, 2048]),
        1u8..4,
        8u8..20,
        any::<Option<prop::sample::Index>>(),
        any::<bool>(),
        prop::collection::vec(any::<prop::sample::Index>(), 0..2),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(memory, cores, disk, clone, template, deps, start, firewall, dhcp)| Vm {
                memory,
                cores,
                disk,
                clone_of: clone.map(|i| i.index(1000)),
                template,
                deps: deps.iter().map(|i| i.index(1000)).collect(),
                start,
                firewall,
                dhcp,
            },
        )
}

/// `phoenix_vm_configs.json` for `vms` (VM `i` is `300 + i`; containers are `200 + i`).
fn vm_file(vms: &[Vm], cts: usize) -> String {
    let mut entries = Vec::new();
    let mut sizes: Vec<u32> = Vec::new();
    for (i, v) in vms.iter().enumerate() {
        let id = 300 + i;
        // only earlier templates can be sources, only earlier guests dependencies: no cycles
        let templates: Vec<usize> = (0..i).filter(|j| vms[*j].template).collect();
        let source = v
            .clone_of
            .filter(|_| !templates.is_empty())
            .map(|s| templates[s % templates.len()]);
        let origin = match source {
            Some(s) => format!("\"clone_from_vmid\": {}", 300 + s),
            None => "\"template_image\": \"noble-server-cloudimg-amd64.img\"".to_string(),
        };
        let earlier = cts + i;
        let deps: Vec<String> = if earlier > 0 {
            v.deps
                .iter()
                .map(|d| match d % earlier {
                    c if c < cts => format!("\"{}\"", 200 + c),
                    j => format!("\"{}\"", 300 + j - cts),
                })
                .collect()
        } else {
            Vec::new()
        };
        // a clone is at least as big as its source (Proxmox cannot shrink it)
        let size = match source {
            Some(s) => sizes[s].max(u32::from(v.disk)),
            None => u32::from(v.disk),
        };
        sizes.push(size);
        let net = if v.dhcp {
            r#"{"ip": "dhcp"}"#.to_string()
        } else {
            format!(r#"{{"ip": "10.9.1.{}/24", "gw": "10.9.1.1"}}"#, 10 + i)
        };
        let fw = if v.firewall {
            r#", "firewall": {"enabled": true, "rules": [{"type": "in", "action": "ACCEPT", "proto": "tcp", "port": "443"}]}"#
        } else {
            ""
        };
        entries.push(format!(
            r#"{{"vmid": {id}, "name": "vm{id}", {origin}, "is_template": {}, "memory_mb": {}, "cores": {}, "disk_size_gb": {size}, "start_at_boot": {}, "dependencies": [{}], "network_config": {net}, "user_config": {{"username": "phx"}}{fw}}}"#,
            v.template,
            v.memory,
            v.cores,
            v.start,
            deps.join(", "),
        ));
    }
    format!(
        r#"{{"vm_defaults": {{"storage_pool": "local-lvm", "network_bridge": "vmbr0"}}, "vms": [{}]}}"#,
        entries.join(", ")
    )
}

fn inventory(cts: &[Ct], vms: &[Vm]) -> Inventory {
    let mut entries = Vec::new();
    let mut sizes: Vec<u32> = Vec::new();
    for (i, c) in cts.iter().enumerate() {
        let id = 200 + i;
        // only earlier containers can be sources or dependencies: no cycles
        let source = c.clone_of.filter(|_| i > 0).map(|s| 200 + s % i);
        let deps: Vec<String> = if i > 0 {
            c.deps
                .iter()
                .map(|d| format!("\"{}\"", 200 + d % i))
                .collect()
        } else {
            Vec::new()
        };
        let origin = match source {
            Some(s) => format!("\"clone_from_ctid\": \"{s}\""),
            None => "\"template\": \"debian-12-standard_12.12-1_amd64.tar.zst\"".to_string(),
        };
        let fw = if c.firewall {
            r#", "firewall": {"enabled": true, "rules": [{"type": "in", "action": "ACCEPT", "proto": "tcp", "port": "22"}]}"#
        } else {
            ""
        };
        let nest = if c.nesting {
            r#", "pct_options": ["nesting=1"]"#
        } else {
            ""
        };
        let vol = if c.volume {
            r#", "zfs_volumes": [{"name": "data", "pool": "local-lvm", "size_gb": 1, "mount_point": "/data"}]"#
        } else {
            ""
        };
        // a clone is at least as big as its source (Proxmox cannot shrink it)
        let size = match source {
            Some(s) => sizes[s - 200].max(u32::from(c.disk)),
            None => u32::from(c.disk),
        };
        sizes.push(size);
        entries.push(format!(
            r#""{id}": {{"name": "ct{id}", {origin}, "template_snapshot_name": "base", "memory_mb": {}, "cores": {}, "storage_pool": "local-lvm", "storage_size_gb": {}, "start_at_boot": {}, "unprivileged": true, "dependencies": [{}], "network_config": {{"name": "eth0", "bridge": "vmbr0", "ip": "10.9.0.{}/24", "gw": "10.9.0.1"}}{fw}{nest}{vol}}}"#,
            c.memory,
            c.cores,
            size,
            c.start,
            deps.join(", "),
            10 + i
        ));
    }
    let src = Sources {
        hypervisor: Some("{}".into()),
        lxc: Some(format!(r#"{{"lxc_configs": {{{}}}}}"#, entries.join(", "))),
        vm: Some(vm_file(vms, cts.len())),
        stacks: None,
    };
    let v = Inventory::check_sources(&src, "/nonexistent".into(), "/nonexistent/bin".into());
    assert!(v.is_valid(), "{:?}", v.findings);
    v.inventory.unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn applying_a_plan_converges(
        cts in prop::collection::vec(ct(), 1..6),
        vms in prop::collection::vec(vm(), 0..4),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let fake = fake();
            let e = engine(&fake, inventory(&cts, &vms));
            let plan = e.plan(&[], Operation::Up).await.unwrap();
            let r = e.apply(&plan, &phx_core::report::NullReporter).await;
            assert_eq!(r.result(), "ok", "{}\n{}", plan_text(&plan), summary(&r));
            let again = e.plan(&[], Operation::Up).await.unwrap();
            assert!(again.is_empty(), "not converged:\n{}", plan_text(&again));
        });
    }
}
