//! Semantic checks over the whole inventory, each a named check with its own message.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::PathBuf;

use super::finding::{Finding, JsonPath, Severity};
use super::{Guest, Inventory, LXC_FILE, VM_FILE};
use crate::graph::DepGraph;
use crate::propstr::NetIp;
use crate::types::{GuestId, GuestKind, MacAddr};

/// What the parsers learnt that the inventory does not keep.
#[derive(Debug, Default)]
pub(crate) struct Context {
    /// Where each guest is defined (`lxc_configs."102"`, `vms[1]`).
    pub paths: BTreeMap<(GuestKind, GuestId), JsonPath>,
    /// Guests whose definition had errors: they are reported already, so references to them
    /// are not "undefined".
    pub invalid: BTreeSet<GuestId>,
    /// Whether every guest definition could be read; when a guest file is missing or broken,
    /// references cannot be checked without drowning the real error in false ones.
    pub complete: bool,
}

/// The site scripts a config names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Script {
    LxcFeature,
    VmFeature,
    Application,
    Test,
    HealthCheck,
}

struct Out<'a> {
    inv: &'a Inventory,
    ctx: &'a Context,
    findings: Vec<Finding>,
    /// Whether each script exists: many guests share a feature script.
    scripts: BTreeMap<(Script, &'a str), bool>,
}

impl<'a> Out<'a> {
    fn push(
        &mut self,
        severity: Severity,
        g: &Guest<'_>,
        sub: &str,
        check: &'static str,
        message: String,
    ) {
        let file = match g {
            Guest::Lxc(_) => LXC_FILE,
            Guest::Vm(_) => VM_FILE,
        };
        let base = self
            .ctx
            .paths
            .get(&(g.kind(), g.id()))
            .map(ToString::to_string)
            .unwrap_or_default();
        let path = match (base.is_empty(), sub.is_empty()) {
            (_, true) => base,
            (true, false) => sub.to_string(),
            (false, false) => format!("{base}.{sub}"),
        };
        self.findings.push(Finding {
            severity,
            file: file.to_string(),
            path,
            check,
            message,
        });
    }
    fn err(&mut self, g: &Guest<'_>, sub: &str, check: &'static str, message: String) {
        self.push(Severity::Error, g, sub, check, message);
    }
    fn warn(&mut self, g: &Guest<'_>, sub: &str, check: &'static str, message: String) {
        self.push(Severity::Warning, g, sub, check, message);
    }
    /// The path of a script that does not exist (each script is looked up once).
    fn script_missing(&mut self, kind: Script, name: &'a str) -> Option<PathBuf> {
        let inv = self.inv;
        let path = || match kind {
            Script::LxcFeature => inv.lxc_feature_script(name),
            Script::VmFeature => inv.vm_feature_script(name),
            Script::Application => inv.application_script(name),
            Script::Test => inv.test_script(name),
            Script::HealthCheck => inv.health_check_script(name),
        };
        let exists = *self
            .scripts
            .entry((kind, name))
            .or_insert_with(|| path().is_file());
        (!exists).then(path)
    }
    /// Whether a reference to `id` names nothing: not a valid guest, not a guest with errors,
    /// and every definition was readable.
    fn is_undefined(&self, id: GuestId) -> bool {
        self.ctx.complete && self.inv.guest(id).is_none() && !self.ctx.invalid.contains(&id)
    }
}

fn kind_word(kind: GuestKind) -> &'static str {
    match kind {
        GuestKind::Lxc => "container",
        GuestKind::Vm => "VM",
    }
}

pub(crate) fn semantic_checks(inv: &Inventory, ctx: &Context) -> Vec<Finding> {
    let mut o = Out {
        inv,
        ctx,
        findings: Vec::new(),
        scripts: BTreeMap::new(),
    };
    // duplicate-id: one namespace for containers and VMs
    for (id, vm) in &inv.vms {
        if inv.lxc.contains_key(id) {
            o.err(
                &Guest::Vm(vm),
                "vmid",
                "duplicate-id",
                format!("id {id} is defined both as a container and as a VM; Proxmox ids are shared by both"),
            );
        }
    }
    // Checked only when the scripts dir exists; a laptop without the site's scripts still
    // validates the JSON.
    let check_scripts = inv.scripts_dir.is_dir();
    for g in inv.guests() {
        references(&mut o, &g);
        network(&mut o, &g);
        if check_scripts {
            scripts(&mut o, &g);
        }
        if let Guest::Lxc(c) = g
            && !c.gpu_assignment.is_empty()
            && !feature_in_chain(inv, g.id(), "nvidia")
        {
            o.warn(
                &g,
                "gpu_assignment",
                "gpu-without-nvidia",
                format!(
                    "GPUs {:?} are assigned but neither this container nor its clone sources have the \"nvidia\" feature",
                    c.gpu_assignment
                ),
            );
        }
    }
    if !check_scripts && inv.guests().any(|g| names_a_script(&g)) {
        o.findings.push(Finding {
            severity: Severity::Warning,
            file: "--scripts-dir".into(),
            path: String::new(),
            check: "missing-scripts-dir",
            message: format!(
                "{} does not exist, so no feature, application, test or health-check script the config names was checked; point --scripts-dir (PHX_SCRIPTS_DIR) at the site's scripts",
                inv.scripts_dir.display()
            ),
        });
    }
    duplicates(&mut o);
    if let Some(cycle) = DepGraph::new(inv).find_cycle()
        && let Some(g) = cycle.0.first().and_then(|id| inv.guest(*id))
    {
        // Point at the edge from the first member to the next one.
        let next = cycle.0.get(1).unwrap_or(&cycle.0[0]);
        o.err(
            &g,
            &edge_key(&g, *next),
            "dependency-cycle",
            format!("{cycle}; remove one of these edges (clone_from_* or dependencies)"),
        );
    }
    // stacks referenced by VMs
    if let Some(stacks) = &inv.stacks {
        for v in inv.vms.values() {
            for s in &v.docker_stacks {
                if !stacks.contains_key(s) {
                    o.warn(
                        &Guest::Vm(v),
                        "docker_stacks",
                        "undefined-reference",
                        format!("stack {s:?} is not defined in phoenix_stacks_config.json"),
                    );
                }
            }
        }
    }
    o.findings
}

fn references(o: &mut Out<'_>, g: &Guest<'_>) {
    let (key, want) = match g {
        Guest::Lxc(_) => ("clone_from_ctid", GuestKind::Lxc),
        Guest::Vm(_) => ("clone_from_vmid", GuestKind::Vm),
    };
    if let Some(src) = g.clone_source() {
        match o.inv.guest(src) {
            None if o.is_undefined(src) => o.err(
                g,
                key,
                "undefined-reference",
                format!("clone source {src} is not defined in any config file"),
            ),
            None => {}
            Some(s) if s.kind() != want => o.err(
                g,
                key,
                "clone-kind-mismatch",
                format!(
                    "clone source {src} is a {}, but a {} can only be cloned from a {}",
                    kind_word(s.kind()),
                    kind_word(g.kind()),
                    kind_word(want)
                ),
            ),
            // A guest cloning itself is reported as a dependency cycle.
            Some(_) if src == g.id() => {}
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
                        key,
                        "clone-without-snapshot",
                        format!("clone source {src} ({}) has no {what}", s.name()),
                    );
                }
            }
        }
    }
    for (i, d) in g.dependencies().iter().enumerate() {
        if o.is_undefined(*d) {
            o.err(
                g,
                &format!("dependencies[{i}]"),
                "undefined-reference",
                format!("dependency {d} is not defined in any config file"),
            );
        }
    }
}

/// The key of `g` holding its edge to `to`: the clone source or a dependency.
fn edge_key(g: &Guest<'_>, to: GuestId) -> String {
    if g.clone_source() == Some(to) {
        return match g {
            Guest::Lxc(_) => "clone_from_ctid".into(),
            Guest::Vm(_) => "clone_from_vmid".into(),
        };
    }
    match g.dependencies().iter().position(|d| *d == to) {
        Some(i) => format!("dependencies[{i}]"),
        None => "dependencies".into(),
    }
}

fn network(o: &mut Out<'_>, g: &Guest<'_>) {
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
                "network_config.gw",
                "gateway-outside-subnet",
                format!("gateway {gw} is the guest's own address"),
            );
        }
    }
}

/// Static IPs and MACs used twice: each later guest (by id) names the first one.
fn duplicates(o: &mut Out<'_>) {
    let mut ips: BTreeMap<Ipv4Addr, GuestId> = BTreeMap::new();
    let mut macs: BTreeMap<MacAddr, GuestId> = BTreeMap::new();
    for g in o.inv.guests() {
        let ip = match g {
            Guest::Lxc(c) => c.network.as_ref().map(|n| n.ip),
            Guest::Vm(v) => v.network.as_ref().map(|n| n.ip),
        };
        if let Some(NetIp::Static(c)) = ip
            && let Some(first) = first_user(&mut ips, c.addr(), g.id())
        {
            let message = format!("{} is also used by guest {first}", c.addr());
            o.err(&g, "network_config.ip", "duplicate-ip", message);
        }
        if let Guest::Lxc(c) = g
            && let Some(mac) = c.mac_address
            && let Some(first) = first_user(&mut macs, mac, g.id())
        {
            o.err(
                &g,
                "mac_address",
                "duplicate-mac",
                format!("{mac} is also used by guest {first}"),
            );
        }
    }
}

/// Record `id` as a user of `key`; the guest that used it first, if any.
fn first_user<K: Ord>(seen: &mut BTreeMap<K, GuestId>, key: K, id: GuestId) -> Option<GuestId> {
    match seen.entry(key) {
        Entry::Vacant(e) => {
            e.insert(id);
            None
        }
        Entry::Occupied(e) => Some(*e.get()),
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

/// Whether a guest names any site script.
fn names_a_script(g: &Guest<'_>) -> bool {
    let (features, health_checks) = match g {
        Guest::Lxc(c) => (&c.features, &c.health_checks),
        Guest::Vm(v) => (&v.features, &v.health_checks),
    };
    let app = matches!(g, Guest::Lxc(c) if c.application_script.is_some());
    !features.is_empty() || !health_checks.is_empty() || app || !g.tests().is_empty()
}

fn scripts<'a>(o: &mut Out<'a>, g: &Guest<'a>) {
    let feature = match g {
        Guest::Lxc(_) => Script::LxcFeature,
        Guest::Vm(_) => Script::VmFeature,
    };
    for (i, f) in g.features().iter().enumerate() {
        if let Some(p) = o.script_missing(feature, f) {
            o.warn(
                g,
                &format!("features[{i}]"),
                "missing-script",
                format!("feature script {} does not exist", p.display()),
            );
        }
    }
    if let Guest::Lxc(c) = g
        && let Some(app) = &c.application_script
        && let Some(p) = o.script_missing(Script::Application, app)
    {
        o.warn(
            g,
            "application_script",
            "missing-script",
            format!("application script {} does not exist", p.display()),
        );
    }
    for (suite, cases) in g.tests() {
        for (i, t) in cases.iter().enumerate() {
            if let Some(p) = o.script_missing(Script::Test, &t.path) {
                o.warn(
                    g,
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
        if let Some(p) = o.script_missing(Script::HealthCheck, &h.script) {
            o.warn(
                g,
                &format!("health_checks[{i}].script"),
                "missing-script",
                format!("health check script {} does not exist", p.display()),
            );
        }
    }
}
