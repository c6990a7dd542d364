//! The config loader: the borrowed JSON tree, the tolerant reader and every semantic check.
//!
//! Selector 0–3 replaces one file of the small valid site (hypervisor, lxc, vm, stacks) with
//! the input, so cross-file checks run against a sane rest; 4 splits the input at `0xFF`
//! bytes into all four files. Beyond "no panic": every finding names one of the four files
//! (or the scripts dir) and says something, the verdict agrees with the findings, and a
//! valid inventory can be shown and ordered.
#![no_main]

use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use phx_core::config::{
    HYPERVISOR_FILE, Inventory, LXC_FILE, STACKS_FILE, Severity, Sources, VM_FILE,
};
use phx_core::graph::DepGraph;
use phx_fuzz::{parts, select, site, text};

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = select(data, 5) else {
        return;
    };
    let mut src = Sources {
        hypervisor: Some(site::HYPERVISOR.into()),
        lxc: Some(site::LXC.into()),
        vm: Some(site::VM.into()),
        stacks: Some(site::STACKS.into()),
    };
    match mode {
        0 => src.hypervisor = Some(text(rest)),
        1 => src.lxc = Some(text(rest)),
        2 => src.vm = Some(text(rest)),
        3 => src.stacks = Some(text(rest)),
        _ => {
            let p = parts(rest);
            let file = |i: usize| p.get(i).map(|b| text(b));
            src = Sources {
                hypervisor: file(0),
                lxc: file(1),
                vm: file(2),
                stacks: file(3),
            };
        }
    }
    // A scripts dir that does not exist: script checks are skipped, nothing touches the disk.
    let none = PathBuf::from("/nonexistent/phx-fuzz");
    let v = Inventory::check_sources(&src, none.join("etc"), none.join("bin"));

    // A finding is about one of the files, or about the scripts dir the loader was given.
    let files = [
        HYPERVISOR_FILE,
        LXC_FILE,
        VM_FILE,
        STACKS_FILE,
        "--scripts-dir",
    ];
    for f in &v.findings {
        assert!(
            files.contains(&f.file.as_str()),
            "finding names {:?}",
            f.file
        );
        assert!(!f.message.trim().is_empty(), "empty message: {f:?}");
        assert!(!f.check.is_empty(), "no check name: {f:?}");
        let shown = f.to_string();
        assert!(shown.starts_with(f.file.as_str()), "{shown}");
    }
    let errors = v.findings.iter().any(|f| f.severity == Severity::Error);
    assert_eq!(v.is_valid(), !errors);
    assert_eq!(v.inventory.is_some(), !errors);
    if let Some(inv) = &v.inventory {
        let ids = inv.ids();
        for g in inv.guests() {
            let shown = g.to_json();
            assert!(shown.is_object(), "{shown}");
            for p in g.prerequisites() {
                assert!(inv.guest(p).is_some(), "{} needs undefined {p}", g.id());
            }
        }
        let graph = DepGraph::new(inv);
        // A valid config has no cycle (the loader reports them), so every order exists.
        assert!(graph.find_cycle().is_none());
        let order = graph.order(&ids).expect("a valid config has an order");
        assert!(ids.iter().all(|id| order.contains(id)));
        graph
            .teardown_order(&ids)
            .expect("a valid config has a teardown order");
        let _ = phx_core::graph::boot_order(inv, &ids);
    }
});
