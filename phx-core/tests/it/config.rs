//! The real Phoenix configs (HEAD and c6672e0 layouts) load, validate and mean what the shell
//! tool made of them.

use std::net::Ipv4Addr;
use std::path::Path;

use insta::{assert_json_snapshot, assert_snapshot};
use phx_core::config::{Guest, Inventory, LoadOptions, LxcSource, Validation, VmSource};
use phx_core::graph::DepGraph;
use phx_core::propstr::NetIp;
use phx_core::types::{Cidr, FirewallAction, FirewallDirection, GuestId};

use crate::support::{Case, c6672e0_dir, phoenix_fixtures, render_findings};

fn id(n: u64) -> GuestId {
    GuestId::new(n).unwrap()
}

fn ids(ns: &[u64]) -> Vec<GuestId> {
    ns.iter().map(|n| id(*n)).collect()
}

fn check_valid(dir: &Path, containers: usize, vms: usize) -> (Validation, Inventory) {
    let mut v = Inventory::check(&LoadOptions::new(dir));
    assert!(
        v.is_valid(),
        "{} is invalid:\n{}",
        dir.display(),
        render_findings(&v.findings)
    );
    assert_eq!((v.containers, v.vms), (containers, vms));
    let inv = v.inventory.take().unwrap();
    (v, inv)
}

#[test]
fn head_fixtures_load_with_twelve_containers_and_three_vms() {
    let Some(fixtures) = phoenix_fixtures() else {
        return;
    };
    let (v, inv) = check_valid(&fixtures, 12, 3);
    assert_eq!(inv.warnings, v.findings);
    assert!(inv.stacks.is_some(), "the HEAD stacks file is read");
    let fixtures_dir = fixtures.display().to_string();
    assert_snapshot!(render_findings(&v.findings).replace(&fixtures_dir, "[FIXTURES]"));
}

#[test]
fn c6672e0_fixtures_load_with_fifteen_containers_and_two_vms() {
    let Some(fixtures) = phoenix_fixtures() else {
        return;
    };
    let dir = c6672e0_dir(&fixtures);
    let (v, inv) = check_valid(dir.path(), 15, 2);
    assert!(inv.stacks.is_none());
    let layout_dir = dir.path().display().to_string();
    assert_snapshot!(render_findings(&v.findings).replace(&layout_dir, "[C6672E0]"));
}

#[test]
fn head_traefik_container_has_network_dependencies_and_firewall() {
    let Some(fixtures) = phoenix_fixtures() else {
        return;
    };
    let (_, inv) = check_valid(&fixtures, 12, 3);
    let ct = &inv.lxc[&id(102)];
    assert_eq!(ct.name.as_str(), "Traefik-Internal");
    assert_eq!(ct.source, LxcSource::Clone { from: id(900) });
    assert_eq!(ct.dependencies, ids(&[103]));
    let net = ct.network.as_ref().unwrap();
    assert_eq!(
        net.ip,
        NetIp::Static("10.0.0.12/24".parse::<Cidr>().unwrap())
    );
    assert_eq!(net.gw, Some(Ipv4Addr::new(10, 0, 0, 1)));
    assert_eq!(net.nameservers, vec![Ipv4Addr::new(10, 0, 0, 13)]);
    assert_eq!(ct.mac_address.unwrap().to_string(), "52:54:00:AA:BB:CB");
    let fw = ct.firewall.as_ref().unwrap();
    assert!(fw.enabled);
    assert_eq!(fw.rules.len(), 10);
    // `"port": "80,443"` is one rule with a port list, not two rules or a parse error.
    let acme = &fw.rules[1];
    assert_eq!(acme.dport.as_ref().unwrap().to_string(), "80,443");
    assert_eq!(acme.summary(), "in ACCEPT tcp dport 80,443 from 10.0.0.10");
    assert_eq!(fw.rules[3].direction, FirewallDirection::Out);
}

#[test]
fn head_gpu_assignment_with_a_space_is_a_list_of_gpus() {
    let Some(fixtures) = phoenix_fixtures() else {
        return;
    };
    let (_, inv) = check_valid(&fixtures, 12, 3);
    assert_eq!(inv.lxc[&id(901)].gpu_assignment, vec![0, 1], "\"0, 1\"");
    assert_eq!(inv.lxc[&id(910)].gpu_assignment, vec![0, 1], "\"0,1\"");
    assert_eq!(inv.lxc[&id(912)].gpu_assignment, vec![1]);
    assert!(inv.lxc[&id(102)].gpu_assignment.is_empty(), "\"none\"");
}

#[test]
fn head_file_root_nvidia_keys_are_container_defaults() {
    let Some(fixtures) = phoenix_fixtures() else {
        return;
    };
    let (_, inv) = check_valid(&fixtures, 12, 3);
    for ct in inv.lxc.values() {
        assert_eq!(
            ct.nvidia_driver_version.as_deref(),
            Some("580.76.05"),
            "CT {}",
            ct.id
        );
    }
}

#[test]
fn head_host_firewall_is_found_under_shared_volumes() {
    let Some(fixtures) = phoenix_fixtures() else {
        return;
    };
    let (_, inv) = check_valid(&fixtures, 12, 3);
    let fw = inv.hypervisor.firewall.as_ref().unwrap();
    assert_eq!(fw.found_at, "shared_volumes.firewall");
    assert!(fw.enabled);
    assert_eq!(fw.policy_in, Some(FirewallAction::Drop));
    assert_eq!(fw.policy_out, Some(FirewallAction::Accept));
    assert_eq!(fw.rules.len(), 6);
}

#[test]
fn c6672e0_host_firewall_without_rules_is_still_read() {
    let Some(fixtures) = phoenix_fixtures() else {
        return;
    };
    let dir = c6672e0_dir(&fixtures);
    let (_, inv) = check_valid(dir.path(), 15, 2);
    let fw = inv.hypervisor.firewall.as_ref().unwrap();
    assert_eq!(fw.found_at, "shared_volumes.firewall");
    assert!(fw.rules.is_empty());
    // 953 has `firewall: {enabled: true}` and no `rules`.
    let nginx = inv.lxc[&id(953)].firewall.as_ref().unwrap();
    assert!(nginx.enabled && nginx.rules.is_empty());
}

#[test]
fn dns_nameservers_are_an_array_at_head_and_a_string_in_c6672e0() {
    let Some(fixtures) = phoenix_fixtures() else {
        return;
    };
    let (_, head) = check_valid(&fixtures, 12, 3);
    let iface = head.hypervisor.network.interface.as_ref().unwrap();
    assert_eq!(
        iface.dns_nameservers,
        vec![Ipv4Addr::new(10, 0, 0, 153), Ipv4Addr::new(8, 8, 8, 8)]
    );
    assert_eq!(iface.address, Some("10.0.0.13/24".parse().unwrap()));

    let dir = c6672e0_dir(&fixtures);
    let (_, old) = check_valid(dir.path(), 15, 2);
    let iface = old.hypervisor.network.interface.as_ref().unwrap();
    assert_eq!(iface.dns_nameservers, vec![Ipv4Addr::new(8, 8, 8, 8)]);
}

#[test]
fn vm_defaults_fill_in_what_a_vm_leaves_out() {
    let Some(fixtures) = phoenix_fixtures() else {
        return;
    };
    let (_, inv) = check_valid(&fixtures, 12, 3);
    let template = &inv.vms[&id(9000)];
    assert_eq!(
        (template.cores, template.memory_mb),
        (2, 4096),
        "from vm_defaults"
    );
    assert_eq!(template.storage_pool.as_str(), "quickOS-vm-disks");
    assert!(template.is_template);
    assert_eq!(
        template.source,
        VmSource::CloudImage {
            image: "noble-server-cloudimg-amd64.img".into()
        }
    );
    assert_eq!(template.network.as_ref().unwrap().ip, NetIp::Dhcp);
    let portainer = &inv.vms[&id(1001)];
    assert_eq!(
        (portainer.cores, portainer.memory_mb),
        (4, 8192),
        "its own values win"
    );
    assert_eq!(portainer.source, VmSource::Clone { from: id(9000) });
    assert_eq!(portainer.dependencies, ids(&[102]));

    let dir = c6672e0_dir(&fixtures);
    let (_, old) = check_valid(dir.path(), 15, 2);
    let template = &old.vms[&id(8000)];
    assert_eq!((template.cores, template.memory_mb), (4, 8192));
    let ns = &template.network.as_ref().unwrap().nameservers;
    assert_eq!(
        ns,
        &vec![Ipv4Addr::new(75, 75, 75, 75), Ipv4Addr::new(75, 75, 76, 76)]
    );
}

#[test]
fn head_dependency_order_matches_the_shell_tool() {
    let Some(fixtures) = phoenix_fixtures() else {
        return;
    };
    let (_, inv) = check_valid(&fixtures, 12, 3);
    let g = DepGraph::new(&inv);
    assert_eq!(g.find_cycle(), None);
    // The orders the inventory verified against the shell tool at HEAD (section 6.2).
    assert_eq!(g.order(&ids(&[102])).unwrap(), ids(&[900, 103, 102]));
    assert_eq!(
        g.order(&ids(&[101, 1001, 102])).unwrap(),
        ids(&[900, 103, 101, 9000, 102, 1001])
    );
    assert_eq!(
        g.order(&ids(&[911])).unwrap(),
        ids(&[900, 9000, 103, 102, 1001, 1002, 901, 911])
    );
    // A GPU container (901) depends on a VM (1002): mixed kinds share one graph.
    assert_eq!(
        inv.guest(id(901)).unwrap().prerequisites(),
        ids(&[900, 1002])
    );
}

#[test]
fn shown_config_of_traefik_container_is_stable() {
    let Some(fixtures) = phoenix_fixtures() else {
        return;
    };
    let (_, inv) = check_valid(&fixtures, 12, 3);
    let shown = inv.guest(id(102)).unwrap().to_json();
    assert_eq!(shown["kind"], "lxc");
    assert_json_snapshot!(shown);
}

#[test]
fn portainer_password_is_redacted_when_serialised() {
    let Some(fixtures) = phoenix_fixtures() else {
        return;
    };
    let (_, inv) = check_valid(&fixtures, 12, 3);
    let api = inv.hypervisor.portainer_api.as_ref().unwrap();
    assert_eq!(api.admin_password.as_ref().unwrap().expose(), "REDACTED");
    let json = serde_json::to_value(&inv.hypervisor).unwrap();
    assert_eq!(json["portainer_api"]["admin_password"], "***");
}

#[test]
fn secrets_never_reach_serialised_or_debug_output() {
    let secret = "base-s3cret-pw";
    let checked = Case::valid().check();
    let inv = checked.inventory();
    let api = inv.hypervisor.portainer_api.as_ref().unwrap();
    assert_eq!(api.admin_password.as_ref().unwrap().expose(), secret);
    let serialised = serde_json::to_string(&inv.hypervisor).unwrap();
    let debug = format!("{inv:?}");
    let shown: Vec<String> = inv
        .guests()
        .map(|g: Guest<'_>| g.to_json().to_string())
        .collect();
    for (what, text) in [
        ("serialised", &serialised),
        ("debug", &debug),
        ("shown", &shown.join("\n")),
    ] {
        assert!(
            !text.contains(secret),
            "the secret appears in {what} output"
        );
    }
    assert!(serialised.contains(r#""admin_password":"***""#));
}
