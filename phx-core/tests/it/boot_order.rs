//! `graph::boot_order`: which guests `up` starts, and in which order.

use phx_core::graph::boot_order;
use phx_core::types::GuestId;
use serde_json::json;

use crate::support::{Case, set};

fn ids(v: &[u32]) -> Vec<GuestId> {
    v.iter()
        .map(|n| GuestId::new(u64::from(*n)).unwrap())
        .collect()
}

/// The base site (templates CT 900 and VM 9000, CTs 102 and 103, VM 1001) with boot orders:
/// 102 and 1001 at 5, 103 unset (999), and CT 104 at 1000.
fn site() -> Case {
    Case::valid()
        .lxc(|v| {
            set(v, "/lxc_configs/102/boot_order", json!(5));
            let mut ct = v["lxc_configs"]["103"].clone();
            ct["name"] = json!("late");
            ct["boot_order"] = json!(1000);
            ct["network_config"]["ip"] = json!("10.0.0.14/24");
            ct["mac_address"] = json!("52:54:00:AA:BB:CD");
            set(v, "/lxc_configs/104", ct);
        })
        .vm(|v| set(v, "/vms/1/boot_order", json!(5)))
}

#[test]
fn boot_order_sorts_by_boot_order_then_id_with_999_for_unset_and_vms_included() {
    let checked = site().check();
    let inv = checked.inventory();
    assert_eq!(inv.guest(ids(&[103])[0]).unwrap().boot_order(), 999);
    // 102 and 1001 tie at 5 (the lower id first); 103 has the default 999, before 104's 1000
    assert_eq!(
        boot_order(inv, &ids(&[104, 103, 1001, 102])),
        ids(&[102, 1001, 103, 104])
    );
    // the order given does not matter, repeats count once, unknown ids are dropped
    assert_eq!(
        boot_order(inv, &ids(&[1001, 4242, 102, 1001])),
        ids(&[102, 1001])
    );
    assert_eq!(boot_order(inv, &[]), Vec::<GuestId>::new());
}

#[test]
fn boot_order_leaves_templates_out() {
    let checked = site().check();
    let inv = checked.inventory();
    // VM 9000 has is_template; CT 900 is a clone source (template_snapshot_name) not started
    // at boot
    assert_eq!(
        boot_order(inv, &ids(&[900, 9000, 103, 102])),
        ids(&[102, 103])
    );
    // a clone source that is started at boot is no template: it is started, by its order
    let checked = site()
        .lxc(|v| {
            set(v, "/lxc_configs/900/start_at_boot", json!(true));
            set(v, "/lxc_configs/900/boot_order", json!(0));
        })
        .check();
    let inv = checked.inventory();
    assert_eq!(
        boot_order(inv, &ids(&[900, 9000, 103, 102])),
        ids(&[900, 102, 103])
    );
}
