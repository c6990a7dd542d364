//! Semantic checks over the whole inventory, each a named check with its own message.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use super::finding::{Finding, Severity};
use super::{Guest, Inventory, LXC_FILE, VM_FILE};
use crate::graph::DepGraph;
use crate::propstr::NetIp;
use crate::types::{GuestId, GuestKind, MacAddr};

struct Out(Vec<Finding>);

impl Out {
    fn push(
        &mut self,
        severity: Severity,
        g: Option<&Guest<'_>>,
        file: &str,
        path: String,
        check: &'static str,
        message: String,
    ) {
        let file = match g {
            Some(Guest::Lxc(_)) => LXC_FILE,
            Some(Guest::Vm(_)) => VM_FILE,
            None => file,
        };
        self.0.push(Finding {
            severity,
            file: file.to_string(),
            path,
            check,
            message,
        });
    }
    fn err(
        &mut self,
        g: &Guest<'_>,
        inv: &Inventory,
        sub: &str,
        check: &'static str,
        message: String,
    ) {
        let p = guest_path(g, inv, sub);
        self.push(Severity::Error, Some(g), "", p, check, message);
    }
    fn warn(
        &mut self,
        g: &Guest<'_>,
        inv: &Inventory,
        sub: &str,
        check: &'static str,
        message: String,
    ) {
        let p = guest_path(g, inv, sub);
        self.push(Severity::Warning, Some(g), "", p, check, message);
    }
}

/// The JSON path of a guest (`lxc_configs."102"` or `vms[1]`) plus a sub-path.
fn guest_path(g: &Guest<'_>, inv: &Inventory, sub: &str) -> String {
    let base = match g {
        Guest::Lxc(c) => format!("lxc_configs.\"{}\"", c.id),
        Guest::Vm(v) => {
            let idx = inv.vms.keys().position(|k| *k == v.id).unwrap_or(0);
            format!("vms[{idx}]")
        }
    };
    if sub.is_empty() {
        base
    } else {
        format!("{base}.{sub}")
    }
}

pub(crate) fn semantic_checks(inv: &Inventory) -> Vec<Finding> {
    let mut o = Out(Vec::new());
    // duplicate-id: one namespace for containers and VMs
    for id in inv.lxc.keys() {
        if inv.vms.contains_key(id) {
            let g = Guest::Vm(&inv.vms[id]);
            o.err(&g, inv, "vmid", "duplicate-id", format!("id {id} is defined both as a container and as a VM; Proxmox ids are shared by both"));
        }
    }
    for g in inv.guests() {
        references(&mut o, inv, &g);
        network(&mut o, inv, &g);
        scripts(&mut o, inv, &g);
        if let Guest::Lxc(c) = g {
            if !c.gpu_assignment.is_empty() && !feature_in_chain(inv, g.id(), "nvidia") {
                o.warn(&g, inv, "gpu_assignment", "gpu-without-nvidia", format!("GPUs {:?} are assigned but neither this container nor its clone sources have the \"nvidia\" feature", c.gpu_assignment));
            }
        }
    }
    duplicates(&mut o, inv);
    // dependency-cycle
    if let Some(cycle) = DepGraph::new(inv).find_cycle() {
        if let Some(g) = cycle.0.first().and_then(|id| inv.guest(*id)) {
            o.err(
                &g,
                inv,
                "dependencies",
                "dependency-cycle",
                format!("{cycle}; remove one of these edges (clone_from_* or dependencies)"),
            );
        }
    }
    // stacks referenced by VMs
    if let Some(stacks) = &inv.stacks {
        for v in inv.vms.values() {
            for s in &v.docker_stacks {
                if !stacks.contains_key(s) {
                    let g = Guest::Vm(v);
                    o.warn(
                        &g,
                        inv,
                        "docker_stacks",
                        "undefined-reference",
                        format!("stack {s:?} is not defined in phoenix_stacks_config.json"),
                    );
                }
            }
        }
    }
    o.0
}

fn references(o: &mut Out, inv: &Inventory, g: &Guest<'_>) {
    let (key, want) = match g {
        Guest::Lxc(_) => ("clone_from_ctid", GuestKind::Lxc),
        Guest::Vm(_) => ("clone_from_vmid", GuestKind::Vm),
    };
    if let Some(src) = g.clone_source() {
        match inv.guest(src) {
            None => o.err(
                g,
                inv,
                key,
                "undefined-reference",
                format!("clone source {src} is not defined in any config file"),
            ),
            Some(s) if s.kind() != want => o.err(
                g,
                inv,
                key,
                "undefined-reference",
                format!(
                    "clone source {src} is a {}, but a {} can only be cloned from a {}",
                    s.kind(),
                    g.kind(),
                    want
                ),
            ),
            Some(s) if src == g.id() => o.err(
                g,
                inv,
                key,
                "dependency-cycle",
                format!("{} {} clones itself", s.kind(), src),
            ),
            Some(s) => {
                let has_snapshot = match s {
                    Guest::Lxc(c) => c.template_snapshot_name.is_some(),
                    Guest::Vm(v) => v.template_snapshot_name.is_some() || v.is_template,
                };
                if !has_snapshot {
                    let what = match s {
                        Guest::Lxc(_) => {
                            "\"template_snapshot_name\" (clones start from that snapshot)"
                        }
                        Guest::Vm(_) => "\"is_template\": true or a \"template_snapshot_name\"",
                    };
                    o.err(
                        g,
                        inv,
                        key,
                        "clone-without-snapshot",
                        format!("clone source {src} ({}) has no {what}", s.name()),
                    );
                }
            }
        }
    }
    for (i, d) in g.dependencies().iter().enumerate() {
        if inv.guest(*d).is_none() {
            o.err(
                g,
                inv,
                &format!("dependencies[{i}]"),
                "undefined-reference",
                format!("dependency {d} is not defined in any config file"),
            );
        }
    }
}

fn network(o: &mut Out, inv: &Inventory, g: &Guest<'_>) {
    let (ip, gw) = match g {
        Guest::Lxc(c) => match &c.network {
            Some(n) => (n.ip, n.gw),
            None => return,
        },
        Guest::Vm(v) => match &v.network {
            Some(n) => (n.ip, n.gw),
            None => return,
        },
    };
    if let (NetIp::Static(cidr), Some(gw)) = (ip, gw) {
        if !cidr.contains(gw) {
            o.err(
                g,
                inv,
                "network_config.gw",
                "gateway-outside-subnet",
                format!(
                    "gateway {gw} is outside the subnet of {cidr}; the guest could not reach it"
                ),
            );
        }
        if cidr.addr() == gw {
            o.err(
                g,
                inv,
                "network_config.gw",
                "gateway-outside-subnet",
                format!("gateway {gw} is the guest's own address"),
            );
        }
    }
}

fn duplicates(o: &mut Out, inv: &Inventory) {
    let mut ips: BTreeMap<Ipv4Addr, Vec<GuestId>> = BTreeMap::new();
    let mut macs: BTreeMap<MacAddr, Vec<GuestId>> = BTreeMap::new();
    for g in inv.guests() {
        let ip = match g {
            Guest::Lxc(c) => c.network.as_ref().map(|n| n.ip),
            Guest::Vm(v) => v.network.as_ref().map(|n| n.ip),
        };
        if let Some(NetIp::Static(c)) = ip {
            ips.entry(c.addr()).or_default().push(g.id());
        }
        if let Guest::Lxc(c) = g {
            if let Some(m) = c.mac_address {
                macs.entry(m).or_default().push(g.id());
            }
        }
    }
    for (ip, ids) in ips.into_iter().filter(|(_, ids)| ids.len() > 1) {
        for id in &ids[1..] {
            if let Some(g) = inv.guest(*id) {
                o.err(
                    &g,
                    inv,
                    "network_config.ip",
                    "duplicate-ip",
                    format!("{ip} is also used by guest {}", ids[0]),
                );
            }
        }
    }
    for (mac, ids) in macs.into_iter().filter(|(_, ids)| ids.len() > 1) {
        for id in &ids[1..] {
            if let Some(g) = inv.guest(*id) {
                o.err(
                    &g,
                    inv,
                    "mac_address",
                    "duplicate-mac",
                    format!("{mac} is also used by guest {}", ids[0]),
                );
            }
        }
    }
}

/// Whether `feature` is listed on `id` or any container it is (transitively) cloned from.
pub(crate) fn feature_in_chain(inv: &Inventory, id: GuestId, feature: &str) -> bool {
    let mut cur = Some(id);
    let mut hops = 0;
    while let Some(i) = cur {
        let Some(g) = inv.guest(i) else { return false };
        if g.features().iter().any(|f| f == feature) {
            return true;
        }
        cur = g.clone_source();
        hops += 1;
        if hops > 64 {
            return false;
        }
    }
    false
}

fn scripts(o: &mut Out, inv: &Inventory, g: &Guest<'_>) {
    // Checked only when the scripts dir exists; a laptop without the site's scripts still
    // validates the JSON.
    if !inv.scripts_dir.is_dir() {
        return;
    }
    for (i, f) in g.features().iter().enumerate() {
        let p = match g {
            Guest::Lxc(_) => inv.lxc_feature_script(f),
            Guest::Vm(_) => inv.vm_feature_script(f),
        };
        if !p.is_file() {
            o.warn(
                g,
                inv,
                &format!("features[{i}]"),
                "missing-script",
                format!("feature script {} does not exist", p.display()),
            );
        }
    }
    if let Guest::Lxc(c) = g {
        if let Some(app) = &c.application_script {
            let p = inv.application_script(app);
            if !p.is_file() {
                o.warn(
                    g,
                    inv,
                    "application_script",
                    "missing-script",
                    format!("application script {} does not exist", p.display()),
                );
            }
        }
    }
    for (suite, cases) in g.tests() {
        for (i, t) in cases.iter().enumerate() {
            let p = inv.test_script(&t.path);
            if !p.is_file() {
                o.warn(
                    g,
                    inv,
                    &format!("tests.{suite}[{i}].path"),
                    "missing-script",
                    format!("test script {} does not exist", p.display()),
                );
            }
        }
    }
    let checks = match g {
        Guest::Lxc(c) => &c.health_checks,
        Guest::Vm(v) => &v.health_checks,
    };
    for (i, h) in checks.iter().enumerate() {
        let p = inv.health_check_script(&h.script);
        if !p.is_file() {
            o.warn(
                g,
                inv,
                &format!("health_checks[{i}].script"),
                "missing-script",
                format!("health check script {} does not exist", p.display()),
            );
        }
    }
}
