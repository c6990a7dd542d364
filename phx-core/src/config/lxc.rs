//! `phoenix_lxc_configs.json`: one [`LxcSpec`] per container, with the file's top-level keys
//! acting as defaults (the shell tool's `jq_get_value` fallback).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::Serialize;
use serde_json::Value;

use super::common::{
    GuestFirewall, HealthCheck, HostCheck, TestCase, TraefikService, enum_value,
    parse_guest_firewall, parse_health_check, parse_host_checks, parse_tests, parse_traefik,
    plain_name, script_path,
};
use super::finding::{JsonPath, Sink};
use super::json::Json;
use super::reader::{Obj, parse_value, type_name};
use super::validate::Context;
use crate::propstr::{LxcFeatures, NetIp};
use crate::types::{GuestId, GuestKind, Hostname, MacAddr, NodeName, SnapshotName, StorageId};

/// How a container comes into existence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LxcSource {
    /// `pct create` from an OS template (`template` key).
    Template {
        /// The template as configured: a path to a `.tar.zst` or a volid.
        template: String,
    },
    /// `pct clone` from another container's snapshot (`clone_from_ctid`).
    Clone {
        /// The source container.
        from: GuestId,
    },
}

/// `network_config` of a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LxcNetwork {
    /// Interface name inside the container (`eth0`).
    pub name: String,
    /// Host bridge (`vmbr0`).
    pub bridge: String,
    /// Address: static CIDR or `dhcp`.
    #[serde(serialize_with = "ser_display")]
    pub ip: NetIp,
    /// Gateway.
    pub gw: Option<Ipv4Addr>,
    /// DNS servers (`nameservers`).
    pub nameservers: Vec<Ipv4Addr>,
}

pub(crate) fn ser_display<T: std::fmt::Display, S: serde::Serializer>(
    v: &T,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// `zfs_volumes[]` / `volumes[]`: a storage-backed mount point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StorageVolume {
    /// Label.
    pub name: String,
    /// Proxmox storage id to allocate on.
    pub pool: StorageId,
    /// Size in GiB.
    pub size_gb: u64,
    /// Path inside the container.
    pub mount_point: String,
}

/// `mount_points[]`: a host bind mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BindMount {
    /// Directory on the node.
    pub host_path: String,
    /// Path inside the container.
    pub container_path: String,
    /// Owner uid inside the container.
    pub owner_uid: Option<u64>,
    /// Owner gid inside the container.
    pub owner_gid: Option<u64>,
}

/// `id_maps[]`: one `lxc.idmap` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdMap {
    /// `u` or `g`.
    pub kind: char,
    /// First id inside the container.
    pub container_id: u64,
    /// First id on the host.
    pub host_id: u64,
    /// Number of ids.
    pub size: u64,
}

/// `portainer_role` (modelled, not acted on by phx).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PortainerRole {
    /// Portainer server.
    Server,
    /// Portainer server (VM spelling).
    Primary,
    /// Portainer agent.
    Agent,
    /// Infrastructure guest.
    Infrastructure,
    /// No role.
    None,
}

impl std::str::FromStr for PortainerRole {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(match s {
            "server" => Self::Server,
            "primary" => Self::Primary,
            "agent" => Self::Agent,
            "infrastructure" => Self::Infrastructure,
            "none" => Self::None,
            _ => return Err(()),
        })
    }
}

/// The desired state of one container, with file-root defaults applied.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LxcSpec {
    /// CTID.
    pub id: GuestId,
    /// Hostname (`name`).
    pub name: Hostname,
    /// Node to create it on (`node`), else the backend's default.
    pub node: Option<NodeName>,
    /// Template or clone source.
    pub source: LxcSource,
    /// Snapshot created once at the end of creation; clones of this container start from it.
    pub template_snapshot_name: Option<SnapshotName>,
    /// Memory in MiB.
    pub memory_mb: u64,
    /// Swap in MiB.
    pub swap_mb: Option<u64>,
    /// CPU cores.
    pub cores: u64,
    /// Storage of the root disk.
    pub storage_pool: StorageId,
    /// Root disk size in GiB (grown, never shrunk).
    pub storage_size_gb: u64,
    /// `net0`.
    pub network: Option<LxcNetwork>,
    /// MAC of `net0`.
    pub mac_address: Option<MacAddr>,
    /// Unprivileged container (read-only after creation). `None`: not configured.
    pub unprivileged: Option<bool>,
    /// `onboot`.
    pub start_at_boot: bool,
    /// Start order (`startup order=`), default 999 for sorting.
    pub boot_order: Option<u64>,
    /// `startup up=`/`down=` seconds.
    pub boot_delay: Option<u64>,
    /// Feature scripts, in order.
    pub features: Vec<String>,
    /// Script run inside the container after features.
    pub application_script: Option<String>,
    /// Proxmox `features` (`pct_options`: `nesting=1`, `keyctl=1`).
    #[serde(serialize_with = "ser_display")]
    pub pct_options: LxcFeatures,
    /// Raw `lxc.*` config lines.
    pub lxc_options: Vec<String>,
    /// AppArmor profile (`unconfined` or a profile name).
    pub apparmor_profile: Option<String>,
    /// Add AppArmor nesting lines for a named profile.
    pub apparmor_manages_nesting: bool,
    /// GPU indices passed through (`gpu_assignment`); empty means none.
    pub gpu_assignment: Vec<u32>,
    /// `lxc.idmap` entries.
    pub id_maps: Vec<IdMap>,
    /// Storage-backed mount points (`zfs_volumes`).
    pub zfs_volumes: Vec<StorageVolume>,
    /// Storage-backed mount points (`volumes`, c6672e0 layout).
    pub volumes: Vec<StorageVolume>,
    /// Host bind mounts.
    pub mount_points: Vec<BindMount>,
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
    /// `pre-configured` / `final-form` snapshots.
    pub enable_lifecycle_snapshots: bool,
    /// Portainer role (informational).
    pub portainer_role: Option<PortainerRole>,
    /// `host:ct` port pairs (informational).
    pub ports: Vec<String>,
    /// Traefik service (informational).
    pub traefik_service: Option<TraefikService>,
    /// CA URL passed to feature scripts.
    pub bootstrap_ca_url: Option<String>,
    /// Run the site's sync hook after start (informational).
    pub trigger_sync_on_completion: bool,
    /// vLLM settings for the application script (kept as JSON).
    pub vllm_engine_config: Option<Value>,
    /// c6672e0 flat vLLM keys (`vllm_model`, `vllm_args`, ...), kept for the application script.
    pub legacy_vllm: BTreeMap<String, Value>,
    /// c6672e0 `integration_tests` / `run_integration_tests` (superseded by `tests`).
    pub legacy_integration_tests: Option<Value>,
    /// NVIDIA driver version the `nvidia` health check expects (file-root default).
    pub nvidia_driver_version: Option<String>,
    /// CUDA apt repository (file-root default).
    pub nvidia_repo_url: Option<String>,
    /// NVIDIA runfile URL (file-root default).
    pub nvidia_runfile_url: Option<String>,
    /// Keys phx does not model, kept verbatim.
    pub extra: BTreeMap<String, Value>,
}

impl LxcSpec {
    /// The clone source, if any.
    pub fn clone_source(&self) -> Option<GuestId> {
        match self.source {
            LxcSource::Clone { from } => Some(from),
            LxcSource::Template { .. } => None,
        }
    }
}

/// Top-level keys of the LXC file that are not container defaults.
const ROOT_META: &[&str] = &["$schema", "lxc_configs"];
/// Top-level keys phx knows as container defaults.
const ROOT_DEFAULTS: &[&str] = &[
    "nvidia_driver_version",
    "nvidia_repo_url",
    "nvidia_runfile_url",
];

/// The containers of the file, or `None` when it is not an LXC config file at all. Where each
/// container is defined, and which ones had errors, goes into `ctx`.
pub(crate) fn parse_file(
    root: &Json<'_>,
    s: &mut Sink,
    ctx: &mut Context,
) -> Option<BTreeMap<GuestId, LxcSpec>> {
    let Some(rootmap) = root.as_object() else {
        s.error(
            &JsonPath::root(),
            "shape",
            format!(
                "expected an object with \"lxc_configs\", found {}",
                type_name(root)
            ),
        );
        return None;
    };
    let Some(configs) = root.get("lxc_configs") else {
        s.error(
            &JsonPath::root(),
            "shape",
            "missing \"lxc_configs\": this does not look like a Phoenix LXC config file",
        );
        return None;
    };
    let cpath = JsonPath::root().field("lxc_configs").sealed();
    let Some(configs) = configs.as_object() else {
        s.error(
            &cpath,
            "type",
            format!(
                "expected an object keyed by CTID, found {}",
                type_name(configs)
            ),
        );
        return None;
    };
    // Every top-level key is a default for each container (`lxc_configs` and `$schema` are
    // never asked for).
    for (i, (k, _)) in rootmap.iter().enumerate() {
        let k = k.as_ref();
        if rootmap[i + 1..].iter().any(|(later, _)| later == k) {
            s.warn(
                &JsonPath::root().key(k),
                "duplicate-key",
                format!("key {k:?} is given more than once; the last one is used"),
            );
            continue;
        }
        if !ROOT_META.contains(&k) && !ROOT_DEFAULTS.contains(&k) && !LXC_KEYS.contains(&k) {
            s.warn(
                &JsonPath::root().key(k),
                "unknown-key",
                format!(
                    "top-level key {k:?} is neither a container default nor used by phx; it is kept but has no effect"
                ),
            );
        }
    }
    let mut out = BTreeMap::new();
    for (key, v) in configs {
        let p = cpath.key(key);
        let id = match key.parse::<GuestId>() {
            Ok(id) => id,
            Err(e) => {
                s.error(&p, "value", format!("container key: {e}"));
                continue;
            }
        };
        // A key given twice, or "102" and " 102", would define one container twice.
        if let Some(first) = ctx.paths.get(&(GuestKind::Lxc, id)) {
            s.error(
                &p,
                "duplicate-id",
                format!("container {id} is defined more than once (first at {first})"),
            );
            continue;
        }
        ctx.paths.insert((GuestKind::Lxc, id), p.clone());
        let spec = Obj::of(v, p, s).and_then(|o| parse_one(id, o.with_fallback(rootmap), s));
        match spec {
            Some(spec) => {
                out.insert(id, spec);
            }
            None => {
                ctx.invalid.insert(id);
            }
        }
    }
    Some(out)
}

/// c6672e0 flat vLLM keys.
const LEGACY_VLLM_KEYS: &[&str] = &[
    "vllm_model",
    "vllm_quantization",
    "vllm_max_model_len",
    "vllm_gpu_memory_utilization",
    "vllm_tensor_parallel_size",
    "vllm_served_model_name",
    "vllm_model_type",
    "vllm_port",
    "vllm_trust_remote_code",
    "vllm_parameters",
    "vllm_args",
    "vllm",
];

/// Every per-container key phx reads.
pub(crate) const LXC_KEYS: &[&str] = &[
    "name",
    "node",
    "template",
    "clone_from_ctid",
    "template_snapshot_name",
    "memory_mb",
    "swap_mb",
    "cores",
    "storage_pool",
    "storage_size_gb",
    "network_config",
    "mac_address",
    "unprivileged",
    "start_at_boot",
    "boot_order",
    "boot_delay",
    "features",
    "application_script",
    "pct_options",
    "lxc_options",
    "apparmor_profile",
    "apparmor_manages_nesting",
    "gpu_assignment",
    "id_maps",
    "zfs_volumes",
    "volumes",
    "mount_points",
    "firewall",
    "dependencies",
    "tests",
    "health_check",
    "health_checks",
    "enable_lifecycle_snapshots",
    "portainer_role",
    "ports",
    "traefik_service",
    "bootstrap_ca_url",
    "trigger_sync_on_completion",
    "vllm_engine_config",
];

fn parse_one(id: GuestId, mut o: Obj<'_>, s: &mut Sink) -> Option<LxcSpec> {
    let name = o.req_parse::<Hostname>(s, "name");
    let node = o.opt_parse::<NodeName>(s, "node");
    let template = o.opt_str(s, "template");
    let clone_from = o.opt_id(s, "clone_from_ctid");
    let source = match (clone_from, template) {
        (Some(from), t) => {
            if t.is_some() {
                s.warn(&o.path.key("template"), "ignored-key", "both \"template\" and \"clone_from_ctid\" are set; the container is cloned and \"template\" is ignored");
            }
            Some(LxcSource::Clone { from })
        }
        (None, Some(template)) if !template.trim().is_empty() => {
            Some(LxcSource::Template { template })
        }
        _ => {
            if !o.has("clone_from_ctid") {
                s.error(&o.path, "required", "needs \"template\" (an OS template) or \"clone_from_ctid\" (a container to clone) to be created");
            }
            o.failed = true;
            None
        }
    };
    let template_snapshot_name = o.opt_parse::<SnapshotName>(s, "template_snapshot_name");
    let memory_mb = positive(&mut o, s, "memory_mb", true);
    let swap_mb = o.opt_uint(s, "swap_mb");
    let cores = positive(&mut o, s, "cores", true);
    let storage_pool = o.req_parse::<StorageId>(s, "storage_pool");
    let storage_size_gb = positive(&mut o, s, "storage_size_gb", true);
    let network = parse_network(&mut o, s);
    let mac_address = o.opt_parse::<MacAddr>(s, "mac_address");
    let unprivileged = o.opt_bool(s, "unprivileged");
    if unprivileged.is_none() && !o.has("unprivileged") && !o.has("clone_from_ctid") {
        s.warn(&o.path.key("unprivileged"), "required", "\"unprivileged\" is not set; phx creates the container unprivileged (the Proxmox 9 default)");
    }
    let start_at_boot = o.opt_bool(s, "start_at_boot").unwrap_or(false);
    // Proxmox's `startup` order and delays are 32-bit.
    let boot_order = o.opt_uint_max(s, "boot_order", u32::MAX.into());
    let boot_delay = o.opt_uint_max(s, "boot_delay", u32::MAX.into());
    let features = names_list(&mut o, s, "features");
    let application_script = match o.raw("application_script") {
        None => None,
        Some((Json::String(x), _)) if x.trim().is_empty() => None,
        Some((v, p)) => {
            let path = script_path(v, &p, s);
            o.failed |= path.is_none();
            path
        }
    };
    let pct_items = o.str_list(s, "pct_options");
    let pct_options = match LxcFeatures::from_items(pct_items.iter().map(|(x, _)| x.as_str())) {
        Ok(f) => f,
        Err(e) => {
            s.error(&o.path.key("pct_options"), "value", e.reason);
            o.failed = true;
            LxcFeatures::default()
        }
    };
    let lxc_items = o.str_list(s, "lxc_options");
    let apparmor_profile = o
        .opt_str(s, "apparmor_profile")
        .filter(|x| !x.trim().is_empty());
    // Both become lines of /etc/pve/lxc/<id>.conf: a line break would add lines of its own.
    if let Some(x) = &apparmor_profile
        && x.chars().any(char::is_control)
    {
        s.error(
            &o.path.key("apparmor_profile"),
            "value",
            format!(
                "{x:?} holds a line break or control character; an AppArmor profile is one name"
            ),
        );
        o.failed = true;
    }
    for (x, p) in &lxc_items {
        if x.chars().any(char::is_control) {
            s.error(
                p,
                "value",
                format!("{x:?} holds a line break or control character; each lxc_options item is one line of the container's config"),
            );
            o.failed = true;
        }
    }
    let lxc_options: Vec<String> = lxc_items.into_iter().map(|(x, _)| x).collect();
    let apparmor_manages_nesting = o.opt_bool(s, "apparmor_manages_nesting").unwrap_or(false);
    let gpu_assignment = parse_gpus(&mut o, s);
    let id_maps = parse_idmaps(&mut o, s);
    let zfs_volumes = parse_volumes(&mut o, s, "zfs_volumes");
    let volumes = parse_volumes(&mut o, s, "volumes");
    let mount_points = parse_binds(&mut o, s);
    let firewall = parse_guest_firewall(&mut o, s);
    let dependencies = id_list(&mut o, s, "dependencies");
    let tests = parse_tests(&mut o, s);
    let health_check = parse_health_check(&mut o, s);
    let health_checks = parse_host_checks(&mut o, s);
    let enable_lifecycle_snapshots = o.opt_bool(s, "enable_lifecycle_snapshots").unwrap_or(false);
    let portainer_role = o.raw("portainer_role").and_then(|(v, p)| {
        enum_value::<PortainerRole>(v, &p, s, "server, agent, infrastructure, none")
    });
    if o.has("portainer_role") && portainer_role.is_none() {
        o.failed = true;
    }
    let ports = o.str_list(s, "ports").into_iter().map(|(x, _)| x).collect();
    let traefik_service = parse_traefik(&mut o, s);
    let bootstrap_ca_url = o.opt_str(s, "bootstrap_ca_url").filter(|x| !x.is_empty());
    let trigger_sync_on_completion = o.opt_bool(s, "trigger_sync_on_completion").unwrap_or(false);
    let vllm_engine_config = o.value("vllm_engine_config");
    let mut legacy_vllm = BTreeMap::new();
    for k in LEGACY_VLLM_KEYS {
        if let Some(v) = o.value(k) {
            legacy_vllm.insert((*k).to_string(), v);
        }
    }
    let legacy_integration_tests = match (
        o.value("integration_tests"),
        o.value("run_integration_tests"),
    ) {
        (None, None) => None,
        (a, b) => Some(serde_json::json!({"integration_tests": a, "run_integration_tests": b})),
    };
    let nvidia_driver_version = o.opt_str(s, "nvidia_driver_version");
    let nvidia_repo_url = o.opt_str(s, "nvidia_repo_url");
    let nvidia_runfile_url = o.opt_str(s, "nvidia_runfile_url");
    let failed = o.failed;
    let extra = o.extra(s, &[]);
    if failed {
        return None;
    }
    Some(LxcSpec {
        id,
        name: name?,
        node,
        source: source?,
        template_snapshot_name,
        memory_mb: memory_mb?,
        swap_mb,
        cores: cores?,
        storage_pool: storage_pool?,
        storage_size_gb: storage_size_gb?,
        network,
        mac_address,
        unprivileged,
        start_at_boot,
        boot_order,
        boot_delay,
        features,
        application_script,
        pct_options,
        lxc_options,
        apparmor_profile,
        apparmor_manages_nesting,
        gpu_assignment,
        id_maps,
        zfs_volumes,
        volumes,
        mount_points,
        firewall,
        dependencies,
        tests,
        health_check,
        health_checks,
        enable_lifecycle_snapshots,
        portainer_role,
        ports,
        traefik_service,
        bootstrap_ca_url,
        trigger_sync_on_completion,
        vllm_engine_config,
        legacy_vllm,
        legacy_integration_tests,
        nvidia_driver_version,
        nvidia_repo_url,
        nvidia_runfile_url,
        extra,
    })
}

/// A positive integer (sizes, memory, cores): zero is reported under `non-positive`.
pub(crate) fn positive(
    o: &mut Obj<'_>,
    s: &mut Sink,
    key: &'static str,
    required: bool,
) -> Option<u64> {
    let v = if required {
        o.req_uint(s, key)
    } else {
        o.opt_uint(s, key)
    };
    let max = match key {
        // Proxmox's limit for a container (pve-container `cores`: 1..=8192); no VM has more.
        "cores" => 8192,
        // A size in GiB whose bytes still fit in 64 bits (16 EiB).
        k if k.ends_with("_gb") => u64::MAX >> 30,
        _ => u64::MAX,
    };
    if let Some(n) = v
        && n > max
    {
        s.error(
            &o.path.key(key),
            "too-large",
            format!("{key} {n} is too large (at most {max})"),
        );
        o.failed = true;
        return None;
    }
    if v == Some(0) {
        s.error(
            &o.path.key(key),
            "non-positive",
            format!("{key} must be greater than 0"),
        );
        o.failed = true;
        return None;
    }
    v
}

/// A list of guest ids given as strings or numbers (`["103"]`, `[103]`).
pub(crate) fn id_list(o: &mut Obj<'_>, s: &mut Sink, key: &'static str) -> Vec<GuestId> {
    let mut out = Vec::new();
    for (v, p) in o.arr(s, key) {
        match parse_value::<GuestId>(v, &p, s) {
            Some(id) => out.push(id),
            None => o.failed = true,
        }
    }
    out
}

/// A list of script names (features): ASCII letters, digits, '_' and '-', as the message
/// says; a path, a space or a shell character is not a feature.
pub(crate) fn names_list(o: &mut Obj<'_>, s: &mut Sink, key: &'static str) -> Vec<String> {
    let mut out = Vec::new();
    for (name, p) in o.str_list(s, key) {
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            s.error(&p, "value", format!("{name:?} is not a feature name (letters, digits, '_' and '-'; no paths or spaces)"));
            o.failed = true;
        } else {
            out.push(name);
        }
    }
    out
}

fn parse_network(o: &mut Obj<'_>, s: &mut Sink) -> Option<LxcNetwork> {
    let mut n = o.obj(s, "network_config")?;
    let name = plain_name(&mut n, s, "name", "an interface name").unwrap_or_else(|| "eth0".into());
    let bridge = plain_name(&mut n, s, "bridge", "a bridge name");
    if bridge.is_none() && !n.has("bridge") {
        n.req_str(s, "bridge");
    }
    let ip = n.raw("ip").and_then(|(v, p)| match v.as_str() {
        Some("dhcp") => Some(NetIp::Dhcp),
        Some("manual") => Some(NetIp::Manual),
        _ => parse_value::<crate::types::Cidr>(v, &p, s).map(NetIp::Static),
    });
    if n.raw("ip").is_none() {
        s.error(
            &n.path.key("ip"),
            "required",
            "missing required key \"ip\" (a CIDR such as 10.0.0.12/24, or dhcp)",
        );
        n.failed = true;
    }
    let gw = n.opt_parse::<Ipv4Addr4>(s, "gw").map(|g| g.0);
    let mut nameservers = Vec::new();
    let key = if n.has("nameservers") {
        "nameservers"
    } else {
        "nameserver"
    };
    for (ns, p) in n.str_or_list(s, key) {
        match ns.parse::<Ipv4Addr>() {
            Ok(a) => nameservers.push(a),
            Err(_) => {
                s.error(&p, "value", format!("{ns:?} is not an IPv4 address"));
                n.failed = true;
            }
        }
    }
    let failed = n.failed || ip.is_none();
    n.extra(s, &[]);
    if failed {
        o.failed = true;
        return None;
    }
    Some(LxcNetwork {
        name,
        bridge: bridge?,
        ip: ip?,
        gw,
        nameservers,
    })
}

/// An IPv4 address with a checked-constructor error message.
pub(crate) struct Ipv4Addr4(pub Ipv4Addr);
impl std::str::FromStr for Ipv4Addr4 {
    type Err = crate::types::ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse()
            .map(Ipv4Addr4)
            .map_err(|_| crate::types::ParseError {
                value: s.to_string(),
                expected: "an IPv4 address (expected a.b.c.d)".into(),
            })
    }
}

fn parse_gpus(o: &mut Obj<'_>, s: &mut Sink) -> Vec<u32> {
    let Some((v, p)) = o.raw("gpu_assignment") else {
        return Vec::new();
    };
    let text = match v {
        Json::String(x) => x.to_string(),
        Json::Number(n) => n.to_string(),
        other => {
            s.error(
                &p,
                "type",
                format!(
                    "expected \"none\" or a GPU list like \"0,1\", found {}",
                    type_name(other)
                ),
            );
            o.failed = true;
            return Vec::new();
        }
    };
    let t = text.trim();
    if t.is_empty() || t.eq_ignore_ascii_case("none") {
        return Vec::new();
    }
    let mut out = Vec::new();
    for part in t.split(',') {
        match part.trim().parse::<u32>() {
            Ok(n) if !out.contains(&n) => out.push(n),
            Ok(_) => {}
            Err(_) => {
                s.error(
                    &p,
                    "value",
                    format!("{text:?} is not \"none\" or a GPU list like \"0,1\""),
                );
                o.failed = true;
                return Vec::new();
            }
        }
    }
    out
}

fn parse_idmaps(o: &mut Obj<'_>, s: &mut Sink) -> Vec<IdMap> {
    let mut out = Vec::new();
    for (v, p) in o.arr(s, "id_maps") {
        let Some(mut m) = Obj::of(v, p, s) else {
            o.failed = true;
            continue;
        };
        let kind = match m.req_str(s, "type").as_deref() {
            Some("uid" | "u") => Some('u'),
            Some("gid" | "g") => Some('g'),
            Some(other) => {
                s.error(
                    &m.path.key("type"),
                    "invalid-enum",
                    format!("{other:?} is not one of: uid, gid"),
                );
                None
            }
            None => None,
        };
        let host_id = m.req_uint(s, "host_id");
        let container_id = m.req_uint(s, "container_id");
        let size = positive(&mut m, s, "size", true);
        m.extra(s, &[]);
        match (kind, host_id, container_id, size) {
            (Some(kind), Some(host_id), Some(container_id), Some(size)) => out.push(IdMap {
                kind,
                container_id,
                host_id,
                size,
            }),
            _ => o.failed = true,
        }
    }
    out
}

fn parse_volumes(o: &mut Obj<'_>, s: &mut Sink, key: &'static str) -> Vec<StorageVolume> {
    let mut out = Vec::new();
    for (v, p) in o.arr(s, key) {
        let Some(mut m) = Obj::of(v, p, s) else {
            o.failed = true;
            continue;
        };
        let name = m.opt_str(s, "name").unwrap_or_default();
        let pool = m.req_parse::<StorageId>(s, "pool");
        let size_gb = positive(&mut m, s, "size_gb", true);
        let mount_point = m.req_str(s, "mount_point");
        if let Some(mp) = &mount_point
            && !mp.starts_with('/')
        {
            s.error(
                &m.path.key("mount_point"),
                "value",
                format!("{mp:?} is not an absolute path"),
            );
            m.failed = true;
        }
        let failed = m.failed;
        m.extra(s, &[]);
        match (pool, size_gb, mount_point) {
            (Some(pool), Some(size_gb), Some(mount_point)) if !failed => out.push(StorageVolume {
                name,
                pool,
                size_gb,
                mount_point,
            }),
            _ => o.failed = true,
        }
    }
    out
}

fn parse_binds(o: &mut Obj<'_>, s: &mut Sink) -> Vec<BindMount> {
    let mut out = Vec::new();
    for (v, p) in o.arr(s, "mount_points") {
        let Some(mut m) = Obj::of(v, p, s) else {
            o.failed = true;
            continue;
        };
        let host_path = m.req_str(s, "host_path");
        let container_path = m.req_str(s, "container_path");
        for (k, val) in [
            ("host_path", &host_path),
            ("container_path", &container_path),
        ] {
            if let Some(x) = val
                && (!x.starts_with('/') || x.contains(','))
            {
                s.error(
                    &m.path.key(k),
                    "value",
                    format!("{x:?} is not an absolute path without commas"),
                );
                m.failed = true;
            }
        }
        let owner_uid = m.opt_uint(s, "owner_uid");
        let owner_gid = m.opt_uint(s, "owner_gid");
        let failed = m.failed;
        m.extra(s, &[]);
        match (host_path, container_path) {
            (Some(host_path), Some(container_path)) if !failed => out.push(BindMount {
                host_path,
                container_path,
                owner_uid,
                owner_gid,
            }),
            _ => o.failed = true,
        }
    }
    out
}
