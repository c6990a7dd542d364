use phx_core::config::{Inventory, LoadOptions};

#[test]
fn scratch_fixture_findings() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/phoenix");
    let v = Inventory::check(&LoadOptions::new(&dir));
    for f in &v.findings {
        println!("{:?} {} [{}]", f.severity, f, f.check);
    }
    println!("valid={} lxc={} vms={}", v.is_valid(), v.containers, v.vms);
}

#[test]
fn scratch_old_findings() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/phoenix");
    let tmp = tempfile::tempdir().unwrap();
    for f in ["phoenix_hypervisor_config", "phoenix_lxc_configs", "phoenix_vm_configs"] {
        std::fs::copy(src.join(format!("{f}.c6672e0.json")), tmp.path().join(format!("{f}.json"))).unwrap();
    }
    let v = Inventory::check(&LoadOptions::new(tmp.path()));
    for f in &v.findings {
        println!("{:?} {} [{}]", f.severity, f, f.check);
    }
    println!("valid={} lxc={} vms={}", v.is_valid(), v.containers, v.vms);
}
