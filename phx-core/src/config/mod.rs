//! The Phoenix config files as a validated [`Inventory`].
//!
//! phx reads the shell tool's files as they are: `phoenix_hypervisor_config.json`,
//! `phoenix_lxc_configs.json`, `phoenix_vm_configs.json` and the optional
//! `phoenix_stacks_config.json`, in both the HEAD and the older `c6672e0` layouts. Loading
//! is tolerant of the data's drift (ids as strings or numbers, string-or-array lists, the host
//! firewall nested under `shared_volumes`) and strict about meaning: every problem becomes a
//! [`Finding`] naming file, JSON path and check. Keys phx does not model are kept (`extra`)
//! and reported as warnings, never dropped silently.

mod audit;
mod common;
mod finding;
mod hypervisor;
mod json;
mod lxc;
mod reader;
mod stacks;
mod validate;
mod vm;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

pub use audit::{AuditFinding, Difference, audit};
pub use common::{GuestFirewall, HealthCheck, HostCheck, Secret, TestCase, TraefikService};
pub use finding::{Finding, Severity};
pub use hypervisor::{
    AdminUser, DatasetStorageType, DnsServer, HostFirewall, HostInterface, HostNetwork,
    HypervisorConfig, NfsExport, NvidiaDriver, PortainerApi, Samba, SambaShare, Zfs, ZfsDataset,
    ZfsPool,
};
pub use lxc::{BindMount, IdMap, LxcNetwork, LxcSource, LxcSpec, PortainerRole, StorageVolume};
pub use stacks::{Stack, StackEnvironment};
pub use vm::{NfsVolume, VmDefaults, VmNetwork, VmSnapshots, VmSource, VmSpec};

use crate::types::{FirewallRule, GuestId, GuestKind, Hostname, NodeName};
use finding::{JsonPath, Sink};
use json::Json;

/// Host config file name.
pub const HYPERVISOR_FILE: &str = "phoenix_hypervisor_config.json";
/// Container config file name.
pub const LXC_FILE: &str = "phoenix_lxc_configs.json";
/// VM config file name.
pub const VM_FILE: &str = "phoenix_vm_configs.json";
/// Stacks config file name (optional).
pub const STACKS_FILE: &str = "phoenix_stacks_config.json";
/// Where existing Phoenix installs keep their configs.
pub const DEFAULT_CONFIG_DIR: &str = "/usr/local/phoenix_hypervisor/etc";

/// Where to load from.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Directory holding the JSON files.
    pub config_dir: PathBuf,
    /// Root of the site's scripts; default `<config-dir>/../bin`.
    pub scripts_dir: Option<PathBuf>,
}

impl LoadOptions {
    /// Load from `dir` with the default scripts dir.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            config_dir: dir.into(),
            scripts_dir: None,
        }
    }
    /// The effective scripts dir.
    pub fn scripts_dir(&self) -> PathBuf {
        self.scripts_dir
            .clone()
            .unwrap_or_else(|| self.config_dir.join("..").join("bin"))
    }
}

/// The validated desired state: host, containers, VMs and stacks.
#[derive(Debug, Clone)]
pub struct Inventory {
    /// Where the files were read from.
    pub config_dir: PathBuf,
    /// Root of the site's scripts.
    pub scripts_dir: PathBuf,
    /// Host config.
    pub hypervisor: HypervisorConfig,
    /// Containers by id.
    pub lxc: BTreeMap<GuestId, LxcSpec>,
    /// VMs by id.
    pub vms: BTreeMap<GuestId, VmSpec>,
    /// `vm_defaults`.
    pub vm_defaults: VmDefaults,
    /// Stacks, when the stacks file exists.
    pub stacks: Option<BTreeMap<String, Stack>>,
    /// Warnings found while loading (the config is still usable).
    pub warnings: Vec<Finding>,
    /// Where each guest is defined (`lxc_configs."102"`, `vms[1]`), for [`Inventory::location`].
    locations: BTreeMap<GuestId, String>,
}

/// The result of checking a config directory: every finding, and the inventory when valid.
#[derive(Debug)]
pub struct Validation {
    /// Errors and warnings, in file order.
    pub findings: Vec<Finding>,
    /// Number of containers defined.
    pub containers: usize,
    /// Number of VMs defined.
    pub vms: usize,
    /// The inventory, if there were no errors.
    pub inventory: Option<Inventory>,
}

impl Validation {
    /// Whether no finding is an error.
    pub fn is_valid(&self) -> bool {
        self.errors().next().is_none()
    }
    /// The error findings.
    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
    }
    /// The warning findings.
    pub fn warnings(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
    }
}

/// The config is invalid: every error finding (nothing was changed anywhere).
#[derive(Debug, Clone)]
pub struct ConfigError {
    /// The errors.
    pub errors: Vec<Finding>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.errors.as_slice() {
            [one] => write!(f, "{one}"),
            [first, rest @ ..] => write!(
                f,
                "{first} (and {} more error{})",
                rest.len(),
                if rest.len() == 1 { "" } else { "s" }
            ),
            [] => f.write_str("invalid config"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The raw text of the config files, for loading from memory (tests, benchmarks, other tools).
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// `phoenix_hypervisor_config.json`.
    pub hypervisor: Option<String>,
    /// `phoenix_lxc_configs.json`.
    pub lxc: Option<String>,
    /// `phoenix_vm_configs.json`.
    pub vm: Option<String>,
    /// `phoenix_stacks_config.json`.
    pub stacks: Option<String>,
}

/// The largest config file phx reads. Phoenix's files are tens of kilobytes; anything near
/// this is not a config file (a log, a disk image, the wrong `--config-dir`).
pub const MAX_CONFIG_BYTES: usize = 16 * 1024 * 1024;

fn too_large(name: &str, bytes: u64) -> Finding {
    Finding {
        severity: Severity::Error,
        file: name.into(),
        path: String::new(),
        check: "too-large",
        message: format!(
            "the file is {bytes} bytes ({:.1} MiB); phx reads config files of at most {} MiB: check that --config-dir (PHX_CONFIG_DIR) holds the Phoenix config files",
            bytes as f64 / (1024.0 * 1024.0),
            MAX_CONFIG_BYTES / (1024 * 1024)
        ),
    }
}

impl Sources {
    /// Read the files of `dir`; missing files stay `None`.
    pub fn read_dir(dir: &Path) -> Result<(Self, Vec<Finding>), crate::Error> {
        let mut findings = Vec::new();
        let mut read = |name: &str| -> Result<Option<String>, crate::Error> {
            let p = dir.join(name);
            // Not read at all when too large (a file of gigabytes must not fill the memory).
            if let Ok(m) = std::fs::metadata(&p)
                && m.len() > MAX_CONFIG_BYTES as u64
            {
                findings.push(too_large(name, m.len()));
                return Ok(None);
            }
            match std::fs::read(&p) {
                Ok(bytes) => match String::from_utf8(bytes) {
                    Ok(s) => Ok(Some(s)),
                    Err(_) => {
                        findings.push(Finding {
                            severity: Severity::Error,
                            file: name.into(),
                            path: String::new(),
                            check: "syntax",
                            message: "not UTF-8 text".into(),
                        });
                        Ok(None)
                    }
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(crate::Error::io(format!("reading {}", p.display()), e)),
            }
        };
        let s = Self {
            hypervisor: read(HYPERVISOR_FILE)?,
            lxc: read(LXC_FILE)?,
            vm: read(VM_FILE)?,
            stacks: read(STACKS_FILE)?,
        };
        Ok((s, findings))
    }
}

fn parse_json<'t>(text: &'t str, s: &mut Sink) -> Option<Json<'t>> {
    if text.len() > MAX_CONFIG_BYTES {
        let f = too_large("", text.len() as u64);
        s.error(&JsonPath::root(), f.check, f.message);
        return None;
    }
    // jq (the shell tool) skips a UTF-8 byte order mark; so does phx, and says so.
    let text = match text.strip_prefix('\u{FEFF}') {
        Some(rest) => {
            s.warn(
                &JsonPath::root(),
                "byte-order-mark",
                "the file starts with a UTF-8 byte order mark; phx ignores it (as jq does), but other JSON tools may not: save the file without it",
            );
            rest
        }
        None => text,
    };
    if text.trim().is_empty() {
        s.error(
            &JsonPath::root(),
            "syntax",
            "the file is empty (expected a JSON object)",
        );
        return None;
    }
    match Json::parse(text) {
        Ok(v) => Some(v),
        Err(e) => {
            let msg = e.to_string();
            // serde_json appends " at line L column C"; report it as line:column first.
            let mut detail = msg
                .rsplit_once(" at line ")
                .map_or(msg.as_str(), |(d, _)| d);
            // serde_json stops at 128 levels, before the stack could run out.
            if detail == "recursion limit exceeded" {
                detail = "nested more than 128 levels deep (Phoenix configs nest a few levels)";
            }
            s.error(
                &JsonPath::root(),
                "syntax",
                format!("invalid JSON at line {}:{}: {detail}", e.line(), e.column()),
            );
            None
        }
    }
}

impl Inventory {
    /// Load and validate `opts.config_dir`. Fails with every error finding; warnings are kept
    /// in [`Inventory::warnings`].
    pub fn load(opts: &LoadOptions) -> Result<Inventory, ConfigError> {
        let v = Self::check(opts);
        match v.inventory {
            Some(inv) => Ok(inv),
            None => Err(ConfigError {
                errors: v
                    .findings
                    .into_iter()
                    .filter(|f| f.severity == Severity::Error)
                    .collect(),
            }),
        }
    }

    /// Check `opts.config_dir`, never failing: every finding, plus the inventory when valid.
    pub fn check(opts: &LoadOptions) -> Validation {
        let dir = &opts.config_dir;
        let (sources, mut pre) = match Sources::read_dir(dir) {
            Ok(x) => x,
            Err(e) => {
                return Validation {
                    findings: vec![Finding {
                        severity: Severity::Error,
                        file: dir.display().to_string(),
                        path: String::new(),
                        check: "io",
                        message: e.to_string(),
                    }],
                    containers: 0,
                    vms: 0,
                    inventory: None,
                };
            }
        };
        for (name, present) in [
            (HYPERVISOR_FILE, sources.hypervisor.is_some()),
            (LXC_FILE, sources.lxc.is_some()),
        ] {
            if !present && !pre.iter().any(|f| f.file == name) {
                pre.push(Finding {
                    severity: Severity::Error,
                    file: name.into(),
                    path: String::new(),
                    check: "missing-file",
                    message: format!("not found at {} (set --config-dir or PHX_CONFIG_DIR to the directory holding the Phoenix config files)", dir.join(name).display()),
                });
            }
        }
        let mut v = Self::check_sources(&sources, dir.clone(), opts.scripts_dir());
        pre.append(&mut v.findings);
        v.findings = pre;
        if !v.is_valid() {
            v.inventory = None;
        }
        v
    }

    /// Check config text held in memory. A missing LXC or hypervisor text is treated as empty
    /// (callers reading files report missing files themselves), except that references to
    /// guests are not checked without the LXC text.
    pub fn check_sources(src: &Sources, config_dir: PathBuf, scripts_dir: PathBuf) -> Validation {
        let mut findings = Vec::new();
        let mut hs = Sink::new(HYPERVISOR_FILE);
        let hypervisor = src
            .hypervisor
            .as_deref()
            .and_then(|t| parse_json(t, &mut hs))
            .map(|v| hypervisor::parse_file(&v, &mut hs))
            .unwrap_or_default();
        findings.append(&mut hs.findings);
        let mut ctx = validate::Context::default();
        let mut ls = Sink::new(LXC_FILE);
        let lxc = src
            .lxc
            .as_deref()
            .and_then(|t| parse_json(t, &mut ls))
            .and_then(|v| lxc::parse_file(&v, &mut ls, &mut ctx));
        // Without a readable LXC file (the VM file is optional) references cannot be resolved.
        ctx.complete = lxc.is_some();
        findings.append(&mut ls.findings);
        let mut vs = Sink::new(VM_FILE);
        let vm = src
            .vm
            .as_deref()
            .and_then(|t| parse_json(t, &mut vs))
            .and_then(|v| vm::parse_file(&v, &mut vs, &mut ctx));
        ctx.complete &= src.vm.is_none() || vm.is_some();
        let (vm_defaults, vms) = vm.unwrap_or_default();
        findings.append(&mut vs.findings);
        let mut ss = Sink::new(STACKS_FILE);
        let stacks = src
            .stacks
            .as_deref()
            .and_then(|t| parse_json(t, &mut ss))
            .map(|v| stacks::parse_file(&v, &mut ss));
        findings.append(&mut ss.findings);
        let inv = Inventory {
            config_dir,
            scripts_dir,
            hypervisor,
            lxc: lxc.unwrap_or_default(),
            vms,
            vm_defaults,
            stacks,
            warnings: Vec::new(),
            locations: ctx
                .paths
                .iter()
                .map(|((_, id), p)| (*id, p.to_string()))
                .collect(),
        };
        findings.extend(validate::semantic_checks(&inv, &ctx));
        let defined = |kind| ctx.paths.keys().filter(|(k, _)| *k == kind).count();
        let (containers, nvms) = (defined(GuestKind::Lxc), defined(GuestKind::Vm));
        let valid = !findings.iter().any(|f| f.severity == Severity::Error);
        let inventory = valid.then(|| Inventory {
            warnings: findings.clone(),
            ..inv
        });
        Validation {
            findings,
            containers,
            vms: nvms,
            inventory,
        }
    }

    /// The guest with this id, container or VM.
    pub fn guest(&self, id: GuestId) -> Option<Guest<'_>> {
        self.lxc
            .get(&id)
            .map(Guest::Lxc)
            .or_else(|| self.vms.get(&id).map(Guest::Vm))
    }

    /// Every guest, by id.
    pub fn guests(&self) -> impl Iterator<Item = Guest<'_>> {
        let mut all: Vec<Guest<'_>> = self
            .lxc
            .values()
            .map(Guest::Lxc)
            .chain(self.vms.values().map(Guest::Vm))
            .collect();
        all.sort_by_key(|g| g.id());
        all.into_iter()
    }

    /// Where a guest is defined: its file and the JSON path of its object
    /// (`phoenix_lxc_configs.json`, `lxc_configs."102"`; `phoenix_vm_configs.json`, `vms[1]`).
    pub fn location(&self, id: GuestId) -> Option<(&'static str, &str)> {
        let file = match self.guest(id)?.kind() {
            GuestKind::Lxc => LXC_FILE,
            GuestKind::Vm => VM_FILE,
        };
        Some((file, self.locations.get(&id)?.as_str()))
    }

    /// Every guest id, sorted.
    pub fn ids(&self) -> Vec<GuestId> {
        self.guests().map(|g| g.id()).collect()
    }

    /// Path of a container feature script.
    pub fn lxc_feature_script(&self, feature: &str) -> PathBuf {
        self.scripts_dir
            .join("lxc_setup")
            .join(format!("phoenix_hypervisor_feature_install_{feature}.sh"))
    }
    /// Path of a VM feature script.
    pub fn vm_feature_script(&self, feature: &str) -> PathBuf {
        self.scripts_dir
            .join("vm_features")
            .join(format!("feature_install_{feature}.sh"))
    }
    /// Path of an application script.
    pub fn application_script(&self, name: &str) -> PathBuf {
        self.scripts_dir.join(name)
    }
    /// Path of a test script.
    pub fn test_script(&self, path: &str) -> PathBuf {
        self.scripts_dir.join("tests").join(path)
    }
    /// Path of a host health check script.
    pub fn health_check_script(&self, script: &str) -> PathBuf {
        self.scripts_dir.join("health_checks").join(script)
    }
}

/// A container or a VM, for code that handles both.
#[derive(Debug, Clone, Copy)]
pub enum Guest<'a> {
    /// A container.
    Lxc(&'a LxcSpec),
    /// A VM.
    Vm(&'a VmSpec),
}

/// Boot order used when none is configured.
pub const DEFAULT_BOOT_ORDER: u64 = 999;

impl<'a> Guest<'a> {
    /// Id.
    pub fn id(&self) -> GuestId {
        match self {
            Guest::Lxc(c) => c.id,
            Guest::Vm(v) => v.id,
        }
    }
    /// Container or VM.
    pub fn kind(&self) -> GuestKind {
        match self {
            Guest::Lxc(_) => GuestKind::Lxc,
            Guest::Vm(_) => GuestKind::Vm,
        }
    }
    /// Name.
    pub fn name(&self) -> &'a Hostname {
        match self {
            Guest::Lxc(c) => &c.name,
            Guest::Vm(v) => &v.name,
        }
    }
    /// Configured node.
    pub fn node(&self) -> Option<&'a NodeName> {
        match self {
            Guest::Lxc(c) => c.node.as_ref(),
            Guest::Vm(v) => v.node.as_ref(),
        }
    }
    /// Clone source.
    pub fn clone_source(&self) -> Option<GuestId> {
        match self {
            Guest::Lxc(c) => c.clone_source(),
            Guest::Vm(v) => v.clone_source(),
        }
    }
    /// `dependencies`.
    pub fn dependencies(&self) -> &'a [GuestId] {
        match self {
            Guest::Lxc(c) => &c.dependencies,
            Guest::Vm(v) => &v.dependencies,
        }
    }
    /// Clone source first, then dependencies, without duplicates.
    pub fn prerequisites(&self) -> Vec<GuestId> {
        let mut out: Vec<GuestId> = self.clone_source().into_iter().collect();
        for d in self.dependencies() {
            if !out.contains(d) {
                out.push(*d);
            }
        }
        out
    }
    /// `start_at_boot`.
    pub fn start_at_boot(&self) -> bool {
        match self {
            Guest::Lxc(c) => c.start_at_boot,
            Guest::Vm(v) => v.start_at_boot,
        }
    }
    /// `boot_order`, 999 when unset.
    pub fn boot_order(&self) -> u64 {
        match self {
            Guest::Lxc(c) => c.boot_order,
            Guest::Vm(v) => v.boot_order,
        }
        .unwrap_or(DEFAULT_BOOT_ORDER)
    }
    /// A template is never started by phx: a VM with `is_template`, or a container that is a
    /// clone source (`template_snapshot_name`) and not started at boot (the Phoenix "Copy-Base").
    pub fn is_template(&self) -> bool {
        match self {
            Guest::Lxc(c) => c.template_snapshot_name.is_some() && !c.start_at_boot,
            Guest::Vm(v) => v.is_template,
        }
    }
    /// Feature names.
    pub fn features(&self) -> &'a [String] {
        match self {
            Guest::Lxc(c) => &c.features,
            Guest::Vm(v) => &v.features,
        }
    }
    /// Firewall.
    pub fn firewall(&self) -> Option<&'a GuestFirewall> {
        match self {
            Guest::Lxc(c) => c.firewall.as_ref(),
            Guest::Vm(v) => v.firewall.as_ref(),
        }
    }
    /// Firewall rules (empty when none).
    pub fn firewall_rules(&self) -> &'a [FirewallRule] {
        self.firewall().map(|f| f.rules.as_slice()).unwrap_or(&[])
    }
    /// Test suites.
    pub fn tests(&self) -> &'a BTreeMap<String, Vec<TestCase>> {
        match self {
            Guest::Lxc(c) => &c.tests,
            Guest::Vm(v) => &v.tests,
        }
    }
    /// The effective config as JSON (for `phx config show`).
    pub fn to_json(&self) -> Value {
        #[derive(Serialize)]
        struct Shown<'b, T> {
            kind: GuestKind,
            #[serde(flatten)]
            spec: &'b T,
            is_template: bool,
            effective_boot_order: u64,
        }
        let r = match self {
            Guest::Lxc(c) => serde_json::to_value(Shown {
                kind: GuestKind::Lxc,
                spec: *c,
                is_template: self.is_template(),
                effective_boot_order: self.boot_order(),
            }),
            Guest::Vm(v) => serde_json::to_value(Shown {
                kind: GuestKind::Vm,
                spec: *v,
                is_template: self.is_template(),
                effective_boot_order: self.boot_order(),
            }),
        };
        r.unwrap_or(Value::Null)
    }
}
