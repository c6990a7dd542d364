//! For random small inventories: apply(plan) then plan again is empty.

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

fn inventory(cts: &[Ct]) -> Inventory {
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
        vm: None,
        stacks: None,
    };
    let v = Inventory::check_sources(&src, "/nonexistent".into(), "/nonexistent/bin".into());
    assert!(v.is_valid(), "{:?}", v.findings);
    v.inventory.unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn applying_a_plan_converges(cts in prop::collection::vec(ct(), 1..6)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let fake = fake();
            let e = engine(&fake, inventory(&cts));
            let plan = e.plan(&[], Operation::Up).await.unwrap();
            let r = e.apply(&plan, &phx_core::report::NullReporter).await;
            assert_eq!(r.result(), "ok", "{}\n{}", plan_text(&plan), summary(&r));
            let again = e.plan(&[], Operation::Up).await.unwrap();
            assert!(again.is_empty(), "not converged:\n{}", plan_text(&again));
        });
    }
}
