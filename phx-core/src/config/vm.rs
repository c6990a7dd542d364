//! `phoenix_vm_configs.json`: `vm_defaults` and one [`VmSpec`] per entry of `vms[]`.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::Serialize;
use serde_json::Value;

use super::common::{
    GuestFirewall, HealthCheck, HostCheck, TestCase, TraefikService, enum_value,
    parse_guest_firewall, parse_health_check, parse_host_checks, parse_tests, parse_traefik,
    plain_name,
};
use super::finding::{JsonPath, Sink};
use super::json::Json;
use super::lxc::{Ipv4Addr4, PortainerRole, id_list, names_list, positive, ser_display};
use super::reader::{Obj, parse_value, type_name};
use super::validate::Context;
use crate::propstr::NetIp;
use crate::types::{GuestId, GuestKind, Hostname, NodeName, SnapshotName, StorageId};

/// How a VM comes into existence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VmSource {
    /// Full clone of another VM (`clone_from_vmid`).
    Clone {
        /// Source VM (usually a template).
        from: GuestId,
    },
    /// New VM from a cloud image (`template_image`), downloaded once and imported as `scsi0`.
    CloudImage {
        /// Image file name (`noble-server-cloudimg-amd64.img`).
        image: String,
    },
}

/// `network_config` of a VM (cloud-init).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VmNetwork {
    /// `dhcp` or a static CIDR.
    #[serde(serialize_with = "ser_display")]
    pub ip: NetIp,
    /// Gateway (required for static addresses).
    pub gw: Option<Ipv4Addr>,
    /// DNS servers.
    pub nameservers: Vec<Ipv4Addr>,
    /// DNS search domain (falls back to the hypervisor's `domain_name`).
    pub searchdomain: Option<String>,
}

/// `volumes[]` of a VM: NFS mounts made inside the guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NfsVolume {
    /// Label.
    pub name: String,
    /// Exported path on the server.
    pub path: String,
    /// Mount point inside the guest.
    pub mount_point: String,
    /// NFS server address.
    pub server: String,
}

/// `snapshots` of a VM.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VmSnapshots {
    /// Taken before features run.
    pub pre_features: Option<SnapshotName>,
    /// Taken after features ran.
    pub post_features: Option<SnapshotName>,
}

/// The desired state of one VM, with `vm_defaults` applied.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VmSpec {
    /// VMID.
    pub id: GuestId,
    /// Name.
    pub name: Hostname,
    /// Node to create it on.
    pub node: Option<NodeName>,
    /// Converted into a Proxmox template at the end of creation.
    pub is_template: bool,
    /// Clone source or cloud image.
    pub source: VmSource,
    /// Snapshot created once at the end of creation.
    pub template_snapshot_name: Option<SnapshotName>,
    /// Feature snapshots.
    pub snapshots: VmSnapshots,
    /// CPU cores (`vm_defaults.cores` fallback).
    pub cores: u64,
    /// Memory in MiB (`vm_defaults.memory_mb` fallback).
    pub memory_mb: u64,
    /// Boot disk size in GiB, grown to when set.
    pub disk_size_gb: Option<u64>,
    /// Storage for disks and cloud-init drive (`vm_defaults.storage_pool`).
    pub storage_pool: StorageId,
    /// Bridge of `net0` (`vm_defaults.network_bridge`).
    pub network_bridge: String,
    /// `onboot`.
    pub start_at_boot: bool,
    /// Start order, default 999 for sorting.
    pub boot_order: Option<u64>,
    /// `startup up=` seconds.
    pub boot_delay: Option<u64>,
    /// Feature scripts run inside the VM, in order.
    pub features: Vec<String>,
    /// Cloud-init network.
    pub network: Option<VmNetwork>,
    /// Cloud-init user (`user_config.username`).
    pub ci_user: Option<String>,
    /// NFS mounts inside the guest.
    pub volumes: Vec<NfsVolume>,
    /// Docker stacks (site-specific, informational).
    pub docker_stacks: Vec<String>,
    /// Guest firewall.
    pub firewall: Option<GuestFirewall>,
    /// Guests that must exist (and run) first.
    pub dependencies: Vec<GuestId>,
    /// Test suites.
    pub tests: BTreeMap<String, Vec<TestCase>>,
    /// In-guest health check.
    pub health_check: Option<HealthCheck>,
    /// Host-side health check scripts.
    pub health_checks: Vec<HostCheck>,
    /// Portainer role (informational).
    pub portainer_role: Option<PortainerRole>,
    /// Portainer environment name (informational).
    pub portainer_environment_name: Option<String>,
    /// Portainer agent hostname (informational).
    pub portainer_agent_hostname: Option<String>,
    /// Traefik service (informational).
    pub traefik_service: Option<TraefikService>,
    /// Run the site's sync hook after start (informational).
    pub trigger_sync_on_completion: bool,
    /// Keys phx does not model, kept verbatim.
    pub extra: BTreeMap<String, Value>,
}

impl VmSpec {
    /// The clone source, if any.
    pub fn clone_source(&self) -> Option<GuestId> {
        match self.source {
            VmSource::Clone { from } => Some(from),
            VmSource::CloudImage { .. } => None,
        }
    }
}

/// `vm_defaults`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VmDefaults {
    /// Informational template name.
    pub template: Option<String>,
    /// Default cores.
    pub cores: Option<u64>,
    /// Default memory.
    pub memory_mb: Option<u64>,
    /// Default disk size.
    pub disk_size_gb: Option<u64>,
    /// Default storage.
    pub storage_pool: Option<StorageId>,
    /// Default bridge.
    pub network_bridge: Option<String>,
}

/// `vm_defaults` and the VMs of the file, or `None` when it is not a VM config file at all.
/// Where each VM is defined, and which ones had errors, goes into `ctx`.
pub(crate) fn parse_file(
    root: &Json<'_>,
    s: &mut Sink,
    ctx: &mut Context,
) -> Option<(VmDefaults, BTreeMap<GuestId, VmSpec>)> {
    let Some(mut o) = root.as_object().map(|m| Obj::new(m, JsonPath::root())) else {
        s.error(
            &JsonPath::root(),
            "shape",
            format!("expected an object with \"vms\", found {}", type_name(root)),
        );
        return None;
    };
    if !o.has("vms") && !o.has("vm_defaults") {
        s.error(
            &JsonPath::root(),
            "shape",
            "missing \"vms\": this does not look like a Phoenix VM config file",
        );
        return None;
    }
    // Defaults given but invalid (reported once, at vm_defaults): no VM is "missing" them.
    let mut bad_defaults: Vec<&'static str> = Vec::new();
    let defaults = match o.obj(s, "vm_defaults") {
        Some(mut d) => {
            let v = VmDefaults {
                template: d.opt_str(s, "template"),
                cores: positive(&mut d, s, "cores", false),
                memory_mb: positive(&mut d, s, "memory_mb", false),
                disk_size_gb: positive(&mut d, s, "disk_size_gb", false),
                storage_pool: d.opt_parse(s, "storage_pool"),
                network_bridge: plain_name(&mut d, s, "network_bridge", "a bridge name"),
            };
            d.extra(s, &[]);
            let given = [
                ("cores", v.cores.is_some()),
                ("memory_mb", v.memory_mb.is_some()),
                ("storage_pool", v.storage_pool.is_some()),
                ("network_bridge", v.network_bridge.is_some()),
            ];
            bad_defaults = given
                .into_iter()
                .filter(|(k, ok)| !ok && d.has(k))
                .map(|(k, _)| k)
                .collect();
            v
        }
        None => VmDefaults::default(),
    };
    let mut out = BTreeMap::new();
    for (v, p) in o.arr(s, "vms") {
        let Some(mut vo) = Obj::of(v, p.clone(), s) else {
            ctx.complete = false;
            continue;
        };
        let id = vmid(&mut vo, s);
        match id {
            Some(id) => {
                if let Some(first) = ctx.paths.get(&(GuestKind::Vm, id)) {
                    s.error(
                        &p.key("vmid"),
                        "duplicate-id",
                        format!("VM {id} is defined more than once (first at {first})"),
                    );
                    continue;
                }
                ctx.paths.insert((GuestKind::Vm, id), p);
            }
            // Which id the entry meant is unknown, so references cannot be checked.
            None => ctx.complete = false,
        }
        match (id, parse_one(id, vo, &defaults, &bad_defaults, s)) {
            (Some(id), Some(spec)) => {
                out.insert(id, spec);
            }
            (Some(id), None) => {
                ctx.invalid.insert(id);
            }
            (None, _) => {}
        }
    }
    o.extra(s, &["$schema"]);
    Some((defaults, out))
}

fn vmid(o: &mut Obj<'_>, s: &mut Sink) -> Option<GuestId> {
    match o.raw("vmid") {
        Some((v, p)) => parse_value::<GuestId>(v, &p, s),
        None => {
            s.error(
                &o.path.key("vmid"),
                "required",
                "missing required key \"vmid\"",
            );
            None
        }
    }
}

/// One VM; `id` is `None` when `vmid` was invalid (the rest is still checked).
fn parse_one(
    id: Option<GuestId>,
    mut o: Obj<'_>,
    d: &VmDefaults,
    bad_defaults: &[&str],
    s: &mut Sink,
) -> Option<VmSpec> {
    if id.is_none() {
        o.failed = true;
    }
    let name = o.req_parse::<Hostname>(s, "name");
    let node = o.opt_parse::<NodeName>(s, "node");
    let is_template = o.opt_bool(s, "is_template").unwrap_or(false);
    let clone_from = o.opt_id(s, "clone_from_vmid");
    let image = o
        .opt_str(s, "template_image")
        .filter(|x| !x.trim().is_empty());
    let source = match (clone_from, image) {
        (Some(from), img) => {
            if img.is_some() {
                s.warn(&o.path.key("template_image"), "ignored-key", "both \"template_image\" and \"clone_from_vmid\" are set; the VM is cloned and \"template_image\" is ignored");
            }
            Some(VmSource::Clone { from })
        }
        (None, Some(image)) => {
            // It is written into `import-from=...` of the VM's disk: no ',' or '=' either.
            let plain = image
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'+'));
            if !plain || image.contains("..") {
                s.error(
                    &o.path.key("template_image"),
                    "value",
                    format!("{image:?} is not a file name (letters, digits, '-', '_', '.' and '+'; no paths)"),
                );
                o.failed = true;
            }
            Some(VmSource::CloudImage { image })
        }
        (None, None) => {
            if !o.has("clone_from_vmid") {
                s.error(&o.path, "required", "needs \"clone_from_vmid\" (a VM to clone) or \"template_image\" (a cloud image) to be created");
            }
            o.failed = true;
            None
        }
    };
    let template_snapshot_name = o.opt_parse::<SnapshotName>(s, "template_snapshot_name");
    let snapshots = match o.obj(s, "snapshots") {
        Some(mut so) => {
            let v = VmSnapshots {
                pre_features: so.opt_parse(s, "pre-features"),
                post_features: so.opt_parse(s, "post-features"),
            };
            so.extra(s, &[]);
            v
        }
        None => VmSnapshots::default(),
    };
    let cores = positive(&mut o, s, "cores", false).or(d.cores);
    let memory_mb = positive(&mut o, s, "memory_mb", false).or(d.memory_mb);
    let disk_size_gb = positive(&mut o, s, "disk_size_gb", false).or(d.disk_size_gb);
    let storage_pool = o
        .opt_parse::<StorageId>(s, "storage_pool")
        .or_else(|| d.storage_pool.clone());
    let network_bridge = plain_name(&mut o, s, "network_bridge", "a bridge name")
        .or_else(|| d.network_bridge.clone());
    for (k, v) in [
        ("cores", cores.is_some()),
        ("memory_mb", memory_mb.is_some()),
        ("storage_pool", storage_pool.is_some()),
        ("network_bridge", network_bridge.is_some()),
    ] {
        if !v && !o.has(k) {
            if !bad_defaults.contains(&k) {
                s.error(
                    &o.path.key(k),
                    "required",
                    format!("missing {k:?} and no vm_defaults.{k} to fall back on"),
                );
            }
            o.failed = true;
        }
    }
    let start_at_boot = o.opt_bool(s, "start_at_boot").unwrap_or(false);
    // Proxmox's `startup` order and delays are 32-bit.
    let boot_order = o.opt_uint_max(s, "boot_order", u32::MAX.into());
    let boot_delay = o.opt_uint_max(s, "boot_delay", u32::MAX.into());
    let features = names_list(&mut o, s, "features");
    let network = parse_network(&mut o, s);
    let ci_user = match o.obj(s, "user_config") {
        Some(mut u) => {
            let name = u.opt_str(s, "username");
            u.extra(s, &[]);
            name
        }
        None => None,
    };
    let volumes = parse_nfs(&mut o, s);
    let docker_stacks = parse_stacks(&mut o, s);
    let firewall = parse_guest_firewall(&mut o, s);
    let dependencies = id_list(&mut o, s, "dependencies");
    let tests = parse_tests(&mut o, s);
    let health_check = parse_health_check(&mut o, s);
    let health_checks = parse_host_checks(&mut o, s);
    let portainer_role = o
        .raw("portainer_role")
        .and_then(|(v, p)| enum_value::<PortainerRole>(v, &p, s, "primary, agent, none"));
    if o.has("portainer_role") && portainer_role.is_none() {
        o.failed = true;
    }
    let portainer_environment_name = o.opt_str(s, "portainer_environment_name");
    let portainer_agent_hostname = o.opt_str(s, "portainer_agent_hostname");
    let traefik_service = parse_traefik(&mut o, s);
    let trigger_sync_on_completion = o.opt_bool(s, "trigger_sync_on_completion").unwrap_or(false);
    let failed = o.failed;
    let extra = o.extra(s, &["dns_records", "qm_options", "count"]);
    if failed {
        return None;
    }
    Some(VmSpec {
        id: id?,
        name: name?,
        node,
        is_template,
        source: source?,
        template_snapshot_name,
        snapshots,
        cores: cores?,
        memory_mb: memory_mb?,
        disk_size_gb,
        storage_pool: storage_pool?,
        network_bridge: network_bridge?,
        start_at_boot,
        boot_order,
        boot_delay,
        features,
        network,
        ci_user,
        volumes,
        docker_stacks,
        firewall,
        dependencies,
        tests,
        health_check,
        health_checks,
        portainer_role,
        portainer_environment_name,
        portainer_agent_hostname,
        traefik_service,
        trigger_sync_on_completion,
        extra,
    })
}

fn parse_network(o: &mut Obj<'_>, s: &mut Sink) -> Option<VmNetwork> {
    let mut n = o.obj(s, "network_config")?;
    let ip = match n.raw("ip") {
        Some((v, _)) if v.as_str() == Some("dhcp") => Some(NetIp::Dhcp),
        Some((v, p)) => parse_value::<crate::types::Cidr>(v, &p, s).map(NetIp::Static),
        None => Some(NetIp::Dhcp),
    };
    let gw = n.opt_parse::<Ipv4Addr4>(s, "gw").map(|g| g.0);
    if matches!(ip, Some(NetIp::Static(_))) && gw.is_none() && !n.has("gw") {
        s.error(
            &n.path.key("gw"),
            "required",
            "a static ip needs a gateway (\"gw\")",
        );
        n.failed = true;
    }
    let key = if n.has("nameservers") {
        "nameservers"
    } else {
        "nameserver"
    };
    let mut nameservers = Vec::new();
    for (ns, p) in n.str_or_list(s, key) {
        match ns.parse::<Ipv4Addr>() {
            Ok(a) => nameservers.push(a),
            Err(_) => {
                s.error(&p, "value", format!("{ns:?} is not an IPv4 address"));
                n.failed = true;
            }
        }
    }
    let searchdomain = n.opt_str(s, "searchdomain");
    let failed = n.failed || ip.is_none();
    n.extra(s, &[]);
    if failed {
        o.failed = true;
        return None;
    }
    Some(VmNetwork {
        ip: ip?,
        gw,
        nameservers,
        searchdomain,
    })
}

fn parse_nfs(o: &mut Obj<'_>, s: &mut Sink) -> Vec<NfsVolume> {
    let mut out = Vec::new();
    for (v, p) in o.arr(s, "volumes") {
        let Some(mut m) = Obj::of(v, p, s) else {
            o.failed = true;
            continue;
        };
        let kind = m.opt_str(s, "type").unwrap_or_else(|| "nfs".into());
        if kind != "nfs" {
            s.error(
                &m.path.key("type"),
                "invalid-enum",
                format!("{kind:?} is not one of: nfs"),
            );
            m.failed = true;
        }
        let name = m.opt_str(s, "name").unwrap_or_default();
        let path = m.req_str(s, "path");
        let mount_point = m.req_str(s, "mount_point");
        let server = m.req_str(s, "server");
        let failed = m.failed;
        m.extra(s, &[]);
        match (path, mount_point, server) {
            (Some(path), Some(mount_point), Some(server)) if !failed => out.push(NfsVolume {
                name,
                path,
                mount_point,
                server,
            }),
            _ => o.failed = true,
        }
    }
    out
}

/// `docker_stacks`: strings in the data, `{name, environment}` objects in the schema; accept both.
fn parse_stacks(o: &mut Obj<'_>, s: &mut Sink) -> Vec<String> {
    let mut out = Vec::new();
    for (v, p) in o.arr(s, "docker_stacks") {
        match v {
            Json::String(x) => out.push(x.to_string()),
            Json::Object(_) => match v.get("name").and_then(Json::as_str) {
                Some(n) => out.push(n.to_string()),
                None => s.error(&p, "required", "stack object without \"name\""),
            },
            other => s.error(
                &p,
                "type",
                format!("expected a stack name, found {}", type_name(other)),
            ),
        }
    }
    out
}
