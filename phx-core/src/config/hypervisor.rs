//! `phoenix_hypervisor_config.json`: the host's desired state (storages, users, firewall, DNS,
//! ZFS, NFS, Samba, NVIDIA), in both the HEAD and the older `c6672e0` layouts.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::Serialize;
use serde_json::Value;

use super::common::{Secret, TestCase, enum_value, parse_rule, parse_tests};
use super::finding::{JsonPath, Sink};
use super::json::Json;
use super::lxc::Ipv4Addr4;
use super::reader::{Obj, type_name};
use crate::types::{Cidr, FirewallAction, FirewallRule, StorageId};

/// The whole host config.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HypervisorConfig {
    /// DNS domain of the site (`domain_name`).
    pub domain_name: Option<String>,
    /// Admin user (`users`).
    pub admin_user: Option<AdminUser>,
    /// Timezone (`timezone`).
    pub timezone: Option<String>,
    /// Host network (`network`).
    pub network: HostNetwork,
    /// NFS exports (`nfs.exports`).
    pub nfs_exports: Vec<NfsExport>,
    /// Samba (`samba`).
    pub samba: Option<Samba>,
    /// ZFS pools and datasets (`zfs`).
    pub zfs: Option<Zfs>,
    /// `proxmox_storage_ids`: logical name -> storage id.
    pub storage_ids: BTreeMap<String, StorageId>,
    /// `mount_point_base` (`/mnt/pve`).
    pub mount_point_base: Option<String>,
    /// Host test suites (`tests`).
    pub tests: BTreeMap<String, Vec<TestCase>>,
    /// NVIDIA host driver (`nvidia_driver`).
    pub nvidia_driver: Option<NvidiaDriver>,
    /// Cluster firewall, from `firewall` or (as the shell tool reads it) `shared_volumes.firewall`.
    pub firewall: Option<HostFirewall>,
    /// Portainer API credentials (`portainer_api`).
    pub portainer_api: Option<PortainerApi>,
    /// Ubuntu release for cloud images (`vm_defaults.ubuntu_release`, default `noble`).
    pub ubuntu_release: Option<String>,
    /// dnsmasq settings (`dns_server`).
    pub dns_server: Option<DnsServer>,
    /// Keys phx reads but does not act on (`core_paths`, `docker`, `step_ca`, ...), kept as JSON.
    pub informational: BTreeMap<String, Value>,
    /// Keys phx does not know, kept verbatim.
    pub extra: BTreeMap<String, Value>,
}

/// `users`.
#[derive(Debug, Clone, Serialize)]
pub struct AdminUser {
    /// Login name; the Proxmox user is `<username>@pam`.
    pub username: String,
    /// Password hash (`NOT_SET`/empty mean none).
    pub password_hash: Option<Secret>,
    /// Member of `sudo`.
    pub sudo_access: bool,
    /// SSH public key.
    pub ssh_public_key: Option<String>,
}

/// `network`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HostNetwork {
    /// `network.hostname`.
    pub hostname: Option<String>,
    /// `network.interfaces`.
    pub interface: Option<HostInterface>,
    /// `network.nfs_server`.
    pub nfs_server: Option<Ipv4Addr>,
    /// Other keys under `network`, informational.
    pub other: BTreeMap<String, Value>,
}

/// `network.interfaces`.
#[derive(Debug, Clone, Serialize)]
pub struct HostInterface {
    /// Bridge name (`vmbr0`).
    pub name: String,
    /// Host address.
    pub address: Option<Cidr>,
    /// Gateway.
    pub gateway: Option<Ipv4Addr>,
    /// DNS servers (string or array in the data).
    pub dns_nameservers: Vec<Ipv4Addr>,
}

/// `nfs.exports[]`.
#[derive(Debug, Clone, Serialize)]
pub struct NfsExport {
    /// Exported directory.
    pub path: String,
    /// Allowed clients.
    pub clients: Vec<String>,
    /// Export options.
    pub options: Vec<String>,
}

/// `samba`.
#[derive(Debug, Clone, Serialize)]
pub struct Samba {
    /// Samba user.
    pub user: Option<String>,
    /// Shares.
    pub shares: Vec<SambaShare>,
}

/// `samba.shares[]`.
#[derive(Debug, Clone, Serialize)]
pub struct SambaShare {
    /// Share name.
    pub name: String,
    /// Path relative to `/`.
    pub path: String,
    /// Allowed users.
    pub valid_users: Vec<String>,
}

/// `zfs`.
#[derive(Debug, Clone, Serialize)]
pub struct Zfs {
    /// ARC limit in GiB.
    pub arc_max_gb: Option<u64>,
    /// `settings.allow_destructive_operations`.
    pub allow_destructive: bool,
    /// Pools.
    pub pools: Vec<ZfsPool>,
    /// Datasets, each registered as a Proxmox storage.
    pub datasets: Vec<ZfsDataset>,
}

/// `zfs.pools[]`.
#[derive(Debug, Clone, Serialize)]
pub struct ZfsPool {
    /// Pool name.
    pub name: String,
    /// `mirror`, `single`, `RAIDZ1`.
    pub raid_level: String,
    /// Disks by id.
    pub disks: Vec<String>,
}

/// Proxmox storage type of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DatasetStorageType {
    /// `zfspool` storage.
    Zfspool,
    /// `dir` storage on the dataset's mountpoint.
    Dir,
}

impl std::str::FromStr for DatasetStorageType {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "zfspool" => Ok(Self::Zfspool),
            "dir" => Ok(Self::Dir),
            _ => Err(()),
        }
    }
}

/// `zfs.datasets[]`.
#[derive(Debug, Clone, Serialize)]
pub struct ZfsDataset {
    /// Dataset name within the pool.
    pub name: String,
    /// Pool.
    pub pool: String,
    /// `k=v` ZFS properties.
    pub properties: Vec<(String, String)>,
    /// Storage type.
    pub storage_type: Option<DatasetStorageType>,
    /// Proxmox content types (`images`, `rootdir`, `iso`, `vztmpl`, `backup`, ...).
    pub content: Vec<String>,
}

/// `nvidia_driver`.
#[derive(Debug, Clone, Serialize)]
pub struct NvidiaDriver {
    /// Install the host driver.
    pub install: bool,
    /// Expected driver version.
    pub version: Option<String>,
    /// Runfile URL.
    pub runfile_url: Option<String>,
}

/// The cluster firewall.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostFirewall {
    /// `enabled`.
    pub enabled: bool,
    /// `default_input_policy`.
    pub policy_in: Option<FirewallAction>,
    /// `default_output_policy`.
    pub policy_out: Option<FirewallAction>,
    /// `global_firewall_rules`.
    pub rules: Vec<FirewallRule>,
    /// Where it was found (`firewall` or `shared_volumes.firewall`).
    pub found_at: String,
}

/// `portainer_api`.
#[derive(Debug, Clone, Serialize)]
pub struct PortainerApi {
    /// Admin login.
    pub admin_user: Option<String>,
    /// Admin password.
    pub admin_password: Option<Secret>,
    /// Hostname.
    pub hostname: Option<String>,
}

/// `dns_server`.
#[derive(Debug, Clone, Serialize)]
pub struct DnsServer {
    /// Run dnsmasq.
    pub enabled: bool,
    /// Upstream resolvers.
    pub upstream_servers: Vec<Ipv4Addr>,
}

const INFORMATIONAL: &[&str] = &[
    "version",
    "author",
    "core_paths",
    "docker",
    "proxmox_defaults",
    "behavior",
    "step_ca",
    "$schema",
];

pub(crate) fn parse_file(root: &Json<'_>, s: &mut Sink) -> HypervisorConfig {
    let mut cfg = HypervisorConfig::default();
    let Some(mut o) = root.as_object().map(|m| Obj::new(m, JsonPath::root())) else {
        s.error(
            &JsonPath::root(),
            "shape",
            format!("expected an object, found {}", type_name(root)),
        );
        return cfg;
    };
    cfg.domain_name = o.opt_str(s, "domain_name");
    cfg.timezone = o.opt_str(s, "timezone");
    cfg.mount_point_base = o.opt_str(s, "mount_point_base");
    if let Some(mut u) = o.obj(s, "users") {
        if let Some(username) = u.req_str(s, "username") {
            cfg.admin_user = Some(AdminUser {
                username,
                password_hash: u
                    .opt_str(s, "password_hash")
                    .filter(|h| !h.is_empty() && h != "NOT_SET")
                    .map(Secret::new),
                sudo_access: u.opt_bool(s, "sudo_access").unwrap_or(false),
                ssh_public_key: u.opt_str(s, "ssh_public_key").filter(|k| !k.is_empty()),
            });
        }
        u.extra(s, &[]);
    }
    if let Some(mut n) = o.obj(s, "network") {
        cfg.network.hostname = n.opt_str(s, "hostname");
        cfg.network.nfs_server = n.opt_parse::<Ipv4Addr4>(s, "nfs_server").map(|a| a.0);
        if let Some(mut i) = n.obj(s, "interfaces") {
            let name = i.opt_str(s, "name").unwrap_or_else(|| "vmbr0".into());
            let address = i.opt_parse::<Cidr>(s, "address");
            let gateway = i.opt_parse::<Ipv4Addr4>(s, "gateway").map(|a| a.0);
            let mut dns = Vec::new();
            for (x, p) in i.str_or_list(s, "dns_nameservers") {
                match x.parse() {
                    Ok(a) => dns.push(a),
                    Err(_) => s.error(&p, "value", format!("{x:?} is not an IPv4 address")),
                }
            }
            i.extra(s, &[]);
            cfg.network.interface = Some(HostInterface {
                name,
                address,
                gateway,
                dns_nameservers: dns,
            });
        }
        for k in [
            "portainer_server_ip",
            "portainer_server_port",
            "portainer_agent_port",
            "external_registry_url",
            "default_subnet",
            "fallback_dns",
            "workgroup",
        ] {
            if let Some(v) = n.value(k) {
                cfg.network.other.insert(k.to_string(), v);
            }
        }
        n.extra(s, &[]);
    }
    if let Some(mut nfs) = o.obj(s, "nfs") {
        for (v, p) in nfs.arr(s, "exports") {
            let Some(mut e) = Obj::of(v, p, s) else {
                continue;
            };
            let path = e.req_str(s, "path");
            let clients = e
                .str_or_list(s, "clients")
                .into_iter()
                .map(|(c, _)| c)
                .collect();
            let options = e
                .str_or_list(s, "options")
                .into_iter()
                .map(|(c, _)| c)
                .collect();
            e.extra(s, &[]);
            if let Some(path) = path {
                cfg.nfs_exports.push(NfsExport {
                    path,
                    clients,
                    options,
                });
            }
        }
        nfs.extra(s, &[]);
    }
    if let Some(mut sb) = o.obj(s, "samba") {
        let user = sb.opt_str(s, "user");
        let mut shares = Vec::new();
        for (v, p) in sb.arr(s, "shares") {
            let Some(mut e) = Obj::of(v, p, s) else {
                continue;
            };
            let name = e.req_str(s, "name");
            let path = e.req_str(s, "path");
            let valid_users = e
                .str_or_list(s, "valid_users")
                .into_iter()
                .map(|(c, _)| c)
                .collect();
            e.extra(s, &["options", "browsable", "read_only", "guest_ok"]);
            if let (Some(name), Some(path)) = (name, path) {
                shares.push(SambaShare {
                    name,
                    path,
                    valid_users,
                });
            }
        }
        sb.extra(s, &[]);
        cfg.samba = Some(Samba { user, shares });
    }
    if let Some(mut z) = o.obj(s, "zfs") {
        cfg.zfs = Some(parse_zfs(&mut z, s));
        z.extra(s, &[]);
    }
    if let Some((v, p)) = o.raw("proxmox_storage_ids") {
        match v.as_object() {
            Some(m) => {
                for (k, val) in m {
                    if let Some(id) = super::reader::parse_value::<StorageId>(val, &p.key(k), s) {
                        cfg.storage_ids.insert(k.to_string(), id);
                    }
                }
            }
            None => s.error(
                &p,
                "type",
                format!("expected an object of storage ids, found {}", type_name(v)),
            ),
        }
    }
    cfg.tests = parse_tests(&mut o, s);
    if let Some(mut nv) = o.obj(s, "nvidia_driver") {
        cfg.nvidia_driver = Some(NvidiaDriver {
            install: nv.opt_bool(s, "install").unwrap_or(false),
            version: nv.opt_str(s, "version"),
            runfile_url: nv.opt_str(s, "runfile_url"),
        });
        nv.extra(s, &["cuda_version", "install_vllm_libs"]);
    }
    // The host firewall lives at the top level in some layouts and, by accident, under
    // `shared_volumes` in the HEAD data (which the shell tool reads).
    let top_fw = o
        .obj(s, "firewall")
        .map(|mut f| parse_host_firewall(&mut f, s, "firewall"));
    if let Some(mut sv) = o.obj(s, "shared_volumes") {
        let nested = sv
            .obj(s, "firewall")
            .map(|mut f| parse_host_firewall(&mut f, s, "shared_volumes.firewall"));
        if top_fw.is_some() && nested.is_some() {
            s.warn(&JsonPath::root().key("shared_volumes").key("firewall"), "ignored-key", "the host firewall is defined both at the top level and under shared_volumes; phx uses the top-level \"firewall\"");
        }
        cfg.firewall = top_fw.or(nested);
        // The remaining shared_volumes entries are the legacy bind-mount mechanism (unused).
        const LEGACY: [&str; 6] = [
            "ssl_certs",
            "nginx_sites",
            "nginx_logs",
            "ollama_models",
            "llamacpp_models",
            "vllm_models",
        ];
        for k in LEGACY {
            if let Some(v) = sv.value(k) {
                cfg.informational.insert(format!("shared_volumes.{k}"), v);
            }
        }
        sv.extra(s, &[]);
    } else {
        cfg.firewall = top_fw;
    }
    if let Some(mut p) = o.obj(s, "portainer_api") {
        cfg.portainer_api = Some(PortainerApi {
            admin_user: p.opt_str(s, "admin_user"),
            admin_password: p.opt_str(s, "admin_password").map(Secret::new),
            hostname: p.opt_str(s, "portainer_hostname"),
        });
        p.extra(s, &[]);
    }
    if let Some(mut v) = o.obj(s, "vm_defaults") {
        cfg.ubuntu_release = v.opt_str(s, "ubuntu_release");
        v.extra(s, &[]);
    }
    if let Some(mut d) = o.obj(s, "dns_server") {
        let enabled = d.opt_bool(s, "enabled").unwrap_or(false);
        let mut ups = Vec::new();
        for (x, p) in d.str_or_list(s, "upstream_servers") {
            match x.parse() {
                Ok(a) => ups.push(a),
                Err(_) => s.error(&p, "value", format!("{x:?} is not an IPv4 address")),
            }
        }
        d.extra(s, &["authoritative_zones"]);
        cfg.dns_server = Some(DnsServer {
            enabled,
            upstream_servers: ups,
        });
    }
    for k in INFORMATIONAL {
        if let Some(v) = o.value(k) {
            cfg.informational.insert((*k).to_string(), v);
        }
    }
    cfg.extra = o.extra(s, &[]);
    cfg
}

fn parse_zfs(z: &mut Obj<'_>, s: &mut Sink) -> Zfs {
    let arc_max_gb = z.opt_uint(s, "arc_max_gb");
    let allow_destructive = z.obj(s, "settings").map(|mut st| {
        let v = st
            .opt_bool(s, "allow_destructive_operations")
            .unwrap_or(false);
        st.extra(s, &[]);
        v
    });
    let mut pools = Vec::new();
    for (v, p) in z.arr(s, "pools") {
        let Some(mut e) = Obj::of(v, p, s) else {
            continue;
        };
        let name = e.req_str(s, "name");
        let raid_level = e
            .opt_str(s, "raid_level")
            .unwrap_or_else(|| "single".into());
        if !["mirror", "single", "raidz1", "raidz2", "raidz3"]
            .contains(&raid_level.to_ascii_lowercase().as_str())
        {
            s.error(
                &e.path.key("raid_level"),
                "invalid-enum",
                format!("{raid_level:?} is not one of: mirror, single, RAIDZ1, RAIDZ2, RAIDZ3"),
            );
        }
        let disks = e
            .str_or_list(s, "disks")
            .into_iter()
            .map(|(d, _)| d)
            .collect();
        e.extra(s, &[]);
        if let Some(name) = name {
            pools.push(ZfsPool {
                name,
                raid_level,
                disks,
            });
        }
    }
    let mut datasets = Vec::new();
    for (v, p) in z.arr(s, "datasets") {
        let Some(mut e) = Obj::of(v, p, s) else {
            continue;
        };
        let name = e.req_str(s, "name");
        let pool = e.req_str(s, "pool");
        let mut properties = Vec::new();
        if let Some(props) = e.opt_str(s, "properties") {
            for kv in props.split(',').map(str::trim).filter(|x| !x.is_empty()) {
                match kv.split_once('=') {
                    Some((k, v)) => properties.push((k.trim().to_string(), v.trim().to_string())),
                    None => s.error(
                        &e.path.key("properties"),
                        "value",
                        format!("{kv:?} is not a k=v ZFS property"),
                    ),
                }
            }
        }
        let storage_type = e
            .raw("proxmox_storage_type")
            .and_then(|(v, p)| enum_value::<DatasetStorageType>(v, &p, s, "zfspool, dir"));
        let content = e
            .str_or_list(s, "proxmox_content_type")
            .into_iter()
            .map(|(c, _)| c)
            .collect();
        e.extra(s, &["storage_class"]);
        if let (Some(name), Some(pool)) = (name, pool) {
            datasets.push(ZfsDataset {
                name,
                pool,
                properties,
                storage_type,
                content,
            });
        }
    }
    Zfs {
        arc_max_gb,
        allow_destructive: allow_destructive.unwrap_or(false),
        pools,
        datasets,
    }
}

fn parse_host_firewall(f: &mut Obj<'_>, s: &mut Sink, found_at: &str) -> HostFirewall {
    let enabled = f.opt_bool(s, "enabled").unwrap_or(false);
    let policy = |f: &mut Obj<'_>, s: &mut Sink, k: &'static str| {
        f.raw(k)
            .and_then(|(v, p)| enum_value::<FirewallAction>(v, &p, s, "ACCEPT, DROP, REJECT"))
    };
    let policy_in = policy(f, s, "default_input_policy");
    let policy_out = policy(f, s, "default_output_policy");
    let mut rules = Vec::new();
    for (v, p) in f.arr(s, "global_firewall_rules") {
        if let Some(r) = parse_rule(v, p, s) {
            rules.push(r);
        }
    }
    f.extra(s, &[]);
    HostFirewall {
        enabled,
        policy_in,
        policy_out,
        rules,
        found_at: found_at.to_string(),
    }
}

impl HypervisorConfig {
    /// The storage id for a dataset: `proxmox_storage_ids["<pool>_<dataset with - as _>"]`,
    /// else `<pool>-<dataset>` (the shell tool's rule).
    pub fn dataset_storage_id(&self, ds: &ZfsDataset) -> String {
        let key = format!("{}_{}", ds.pool, ds.name.replace('-', "_"));
        let lower = key.to_ascii_lowercase();
        self.storage_ids
            .iter()
            .find(|(k, _)| **k == key || k.to_ascii_lowercase() == lower)
            .map(|(_, v)| v.to_string())
            .unwrap_or_else(|| format!("{}-{}", ds.pool, ds.name))
    }
}
