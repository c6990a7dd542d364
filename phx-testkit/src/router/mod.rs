//! One request router over a [`FakeCluster`]: `(method, path, params)` → the JSON `data` of
//! the answer, or a [`PveError`] with Proxmox's status, message and per-parameter errors.
//!
//! It serves every front of the fake: `pvesh` in the `phx-fake-pve` executables today, the
//! fake HTTPS API later. A front owns transport concerns: it holds the cluster lock around
//! [`Router::handle`], completes the task named in [`Reply::task`] (at once or after the
//! injected latency), maps errors to its own output (HTTP status and body, or pvesh's stderr
//! and exit code), and honours [`FakeCluster::lost_response`].
//!
//! What it copies from Proxmox (proxmox-api.md A.3–A.10):
//! - task-starting calls return a UPID exactly where Proxmox does, including the LXC
//!   `template` call that answers `null` while a `vztemplate` task runs;
//! - precondition failures come back synchronously (500) and everything else as a failed task,
//!   as the cluster models them;
//! - JSON typing: integers as numbers, booleans as `1`/`0`, `digest` on configs, raw `lxc.*`
//!   lines as `[[key, value], ...]`, `/cluster/nextid` as a string;
//! - parameters: unknown ones are a 400 with `errors` naming them, booleans must be `1`/`0`,
//!   integers decimal. Parameters Proxmox knows but the fake does not model are a 501 naming
//!   the parameter, never silently ignored.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use phx_core::backend::{FirewallOptions, PowerState};
use phx_core::types::{
    FirewallAction, FirewallDirection, FirewallRule, GuestKind, PortSpec, Protocol,
};
use serde_json::{Value, json};

mod binary;

pub use binary::{FakePve, TOOLS, fake_pve_binary, link_tools};

use crate::fake::guest;
use crate::fake::{
    AgentExec, FakeCluster, FakeGuest, FakeStorage, FwFile, PveError, digest_of_guest,
};

/// Request parameters in order; a repeated key is an array parameter (`command`).
pub type Params = Vec<(String, String)>;

/// HTTP method (pvesh: `get`, `create`, `set`, `delete`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET` / `pvesh get`.
    Get,
    /// `POST` / `pvesh create`.
    Post,
    /// `PUT` / `pvesh set`.
    Put,
    /// `DELETE` / `pvesh delete`.
    Delete,
}

impl FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "get" => Ok(Self::Get),
            "post" | "create" => Ok(Self::Post),
            "put" | "set" => Ok(Self::Put),
            "delete" => Ok(Self::Delete),
            _ => Err(format!("unknown method '{s}'")),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Delete => "DELETE",
        })
    }
}

/// A successful answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The `data` value.
    pub data: Value,
    /// `total` beside `data` (task logs).
    pub total: Option<u64>,
    /// The task this call started, also when `data` does not name it (LXC `template`).
    pub task: Option<String>,
}

impl Reply {
    fn data(data: Value) -> Self {
        Self {
            data,
            total: None,
            task: None,
        }
    }
    fn null() -> Self {
        Self::data(Value::Null)
    }
    fn task(upid: String) -> Self {
        Self {
            data: Value::String(upid.clone()),
            total: None,
            task: Some(upid),
        }
    }
}

/// The router. `scratch` is where guest files live (`<scratch>/guests/<id>`), for the guest
/// agent's `exec` and `file-write`.
#[derive(Debug, Clone)]
pub struct Router {
    scratch: PathBuf,
    agent_exec_limit: Duration,
    /// The node that answers (`local: 1` in `/cluster/status`); default the first node.
    local_node: Option<String>,
}

// ----- parameter checking ----------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Str,
    Int,
    Bool,
    /// Known to Proxmox, not modelled by the fake (501 when given).
    Unmodelled,
}
use Ty::*;

type Spec = &'static [(&'static str, Ty, bool)];

const UNKNOWN: &str =
    "property is not defined in schema and the schema does not allow additional properties";
const MISSING: &str = "property is missing and it is not optional";

struct P<'a> {
    map: BTreeMap<&'a str, Vec<&'a str>>,
}

impl<'a> P<'a> {
    fn str(&self, k: &str) -> Option<&'a str> {
        self.map.get(k).and_then(|v| v.last().copied())
    }
    fn req(&self, k: &str) -> Result<&'a str, PveError> {
        self.str(k).ok_or_else(|| PveError::param(k, MISSING))
    }
    fn flag(&self, k: &str) -> bool {
        self.str(k) == Some("1")
    }
    fn opt_flag(&self, k: &str) -> Option<bool> {
        self.str(k).map(|v| v == "1")
    }
    fn int(&self, k: &str) -> Option<u64> {
        self.str(k).and_then(|v| v.parse().ok())
    }
    fn list(&self, k: &str) -> Vec<&'a str> {
        self.map.get(k).cloned().unwrap_or_default()
    }
    /// Every parameter not named in `except`, as config keys.
    fn rest(&self, except: &[&str]) -> BTreeMap<String, String> {
        self.map
            .iter()
            .filter(|(k, _)| !except.contains(k))
            .filter_map(|(k, v)| Some(((*k).to_string(), (*v.last()?).to_string())))
            .collect()
    }
}

fn type_error(k: &str, ty: &str, v: &str) -> (String, String) {
    (
        k.to_string(),
        format!("type check ('{ty}') failed - got '{v}'"),
    )
}

/// Check `params` against `spec` (plus config keys of `kind` when given), like JSONSchema.pm.
fn check<'a>(
    route: &str,
    params: &'a [(String, String)],
    spec: Spec,
    config: Option<GuestKind>,
) -> Result<P<'a>, PveError> {
    let mut map: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (k, v) in params {
        map.entry(k.as_str()).or_default().push(v.as_str());
    }
    let mut errors = BTreeMap::new();
    for (k, vals) in &map {
        let Some((_, ty, _)) = spec.iter().find(|(n, _, _)| n == k) else {
            if let Some(kind) = config.filter(|kind| crate::fake::schema_known(*kind, k)) {
                // config keys: typed and canonicalised like the cluster will; report every error
                for v in vals {
                    // on the wire booleans are `1`/`0` only (JSONSchema.pm check_type)
                    if crate::fake::schema_is_bool(kind, k) && !matches!(*v, "0" | "1") {
                        let (k, m) = type_error(k, "boolean", v);
                        errors.insert(k, m);
                    } else if let Err(e) = crate::fake::schema_canonical(kind, k, v) {
                        errors.extend(e.errors);
                    }
                }
                continue;
            }
            errors.insert((*k).to_string(), UNKNOWN.to_string());
            continue;
        };
        for v in vals {
            match ty {
                Bool if !matches!(*v, "0" | "1") => {
                    let (k, m) = type_error(k, "boolean", v);
                    errors.insert(k, m);
                }
                Int if v.parse::<i64>().is_err() => {
                    let (k, m) = type_error(k, "integer", v);
                    errors.insert(k, m);
                }
                Unmodelled => {
                    return Err(PveError {
                        status: 501,
                        message: format!("phx fake: parameter '{k}' of {route} is not implemented"),
                        errors: BTreeMap::new(),
                    });
                }
                _ => {}
            }
        }
    }
    for (k, _, required) in spec {
        if *required && !map.contains_key(k) {
            errors.insert((*k).to_string(), MISSING.to_string());
        }
    }
    if !errors.is_empty() {
        return Err(PveError {
            status: 400,
            message: "Parameter verification failed.".into(),
            errors,
        });
    }
    Ok(P { map })
}

fn not_implemented(method: Method, path: &str) -> PveError {
    PveError {
        status: 501,
        message: format!("Method '{method} {path}' not implemented"),
        errors: BTreeMap::new(),
    }
}

fn vmid(s: &str) -> Result<u32, PveError> {
    s.parse::<u32>()
        .ok()
        .filter(|n| (100..=999_999_999).contains(n))
        .ok_or_else(|| {
            PveError::param(
                "vmid",
                "invalid format - value does not look like a valid VM ID",
            )
        })
}

fn b(v: bool) -> Value {
    Value::from(u8::from(v))
}

fn size_of(g: &FakeGuest, key: &str) -> u64 {
    let v = g.config.get(key).map(String::as_str).unwrap_or_default();
    let size = match g.kind {
        GuestKind::Lxc => v
            .parse::<phx_core::propstr::MountPoint>()
            .ok()
            .and_then(|m| m.size),
        GuestKind::Vm => v
            .parse::<phx_core::propstr::QemuDisk>()
            .ok()
            .and_then(|d| d.size),
    };
    size.map(phx_core::types::DiskSize::bytes).unwrap_or(0)
}

fn memory_bytes(g: &FakeGuest) -> u64 {
    let default = if g.kind == GuestKind::Lxc { 512 } else { 2048 };
    g.config
        .get("memory")
        .and_then(|m| m.strip_prefix("current=").unwrap_or(m).parse::<u64>().ok())
        .unwrap_or(default)
        * 1024
        * 1024
}

/// Status fields shared by lists, `status/current` and `/cluster/resources`.
fn guest_status(g: &FakeGuest, now: i64) -> serde_json::Map<String, Value> {
    let running = g.status == PowerState::Running;
    let disk_key = if g.kind == GuestKind::Lxc {
        "rootfs"
    } else {
        "scsi0"
    };
    let mut m = serde_json::Map::new();
    m.insert("vmid".into(), json!(g.id));
    m.insert("name".into(), json!(g.name()));
    m.insert(
        "status".into(),
        json!(if running { "running" } else { "stopped" }),
    );
    m.insert(
        "uptime".into(),
        json!(if running {
            g.started_at.map(|s| (now - s).max(0)).unwrap_or(0)
        } else {
            0
        }),
    );
    m.insert(
        "cpus".into(),
        json!(
            g.config
                .get("cores")
                .and_then(|c| c.parse::<u64>().ok())
                .unwrap_or(1)
        ),
    );
    m.insert("cpu".into(), json!(0));
    m.insert("maxmem".into(), json!(memory_bytes(g)));
    m.insert(
        "mem".into(),
        json!(if running { memory_bytes(g) / 8 } else { 0 }),
    );
    m.insert("maxdisk".into(), json!(size_of(g, disk_key)));
    m.insert("disk".into(), json!(0));
    for k in ["netin", "netout", "diskread", "diskwrite"] {
        m.insert(k.into(), json!(0));
    }
    if g.kind == GuestKind::Lxc {
        m.insert(
            "maxswap".into(),
            json!(
                g.config
                    .get("swap")
                    .and_then(|s| s.parse::<u64>().ok())
                    .unwrap_or(512)
                    * 1024
                    * 1024
            ),
        );
        m.insert("swap".into(), json!(0));
        m.insert("type".into(), json!("lxc"));
    } else {
        m.insert(
            "qmpstatus".into(),
            json!(if running { "running" } else { "stopped" }),
        );
        if running {
            m.insert("pid".into(), json!(10_000 + g.id));
        }
    }
    if let Some(l) = g.lock() {
        m.insert("lock".into(), json!(l));
    }
    if let Some(t) = g.config.get("tags") {
        m.insert("tags".into(), json!(t));
    }
    if g.is_template() {
        m.insert("template".into(), json!(1));
    }
    m
}

fn config_json(
    g: &FakeGuest,
    cfg: &BTreeMap<String, String>,
    raw: &[(String, String)],
    digest: Option<String>,
) -> Value {
    let mut m = serde_json::Map::new();
    for (k, v) in cfg {
        m.insert(k.clone(), crate::fake::schema_json_value(g.kind, k, v));
    }
    if !raw.is_empty() {
        m.insert(
            "lxc".into(),
            Value::Array(raw.iter().map(|(k, v)| json!([k, v])).collect()),
        );
    }
    if let Some(d) = digest {
        m.insert("digest".into(), json!(d));
    }
    Value::Object(m)
}

fn rule_json(pos: usize, r: &FirewallRule) -> Value {
    let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("pos".into(), json!(pos));
        m.insert("enable".into(), b(r.enable));
    }
    v
}

fn options_json(o: &FirewallOptions, digest: String) -> Value {
    let mut m = serde_json::Map::new();
    if let Some(e) = o.enable {
        m.insert("enable".into(), b(e));
    }
    if let Some(p) = &o.policy_in {
        m.insert("policy_in".into(), json!(p));
    }
    if let Some(p) = &o.policy_out {
        m.insert("policy_out".into(), json!(p));
    }
    m.insert("digest".into(), json!(digest));
    Value::Object(m)
}

fn fw_digest(f: &FwFile) -> String {
    crate::fake::digest(&serde_json::to_string(&(&f.options, &f.rules)).unwrap_or_default())
}

const POLICIES: &[&str] = &["ACCEPT", "REJECT", "DROP"];

fn policy(p: &P<'_>, k: &str) -> Result<Option<String>, PveError> {
    match p.str(k) {
        None => Ok(None),
        Some(v) if POLICIES.contains(&v) => Ok(Some(v.to_string())),
        Some(v) => Err(PveError::param(
            k,
            format!("value '{v}' does not have a value in the enumeration 'ACCEPT, REJECT, DROP'"),
        )),
    }
}

const FW_OPTIONS: Spec = &[
    ("enable", Bool, false),
    ("policy_in", Str, false),
    ("policy_out", Str, false),
    ("delete", Str, false),
    ("digest", Str, false),
    ("dhcp", Unmodelled, false),
    ("ipfilter", Unmodelled, false),
    ("log_level_in", Unmodelled, false),
    ("log_level_out", Unmodelled, false),
    ("macfilter", Unmodelled, false),
    ("ndp", Unmodelled, false),
    ("radv", Unmodelled, false),
    ("ebtables", Unmodelled, false),
    ("log_ratelimit", Unmodelled, false),
    ("policy_forward", Unmodelled, false),
];

const FW_RULE: Spec = &[
    ("type", Str, true),
    ("action", Str, true),
    ("enable", Int, false),
    ("proto", Str, false),
    ("dport", Str, false),
    ("sport", Str, false),
    ("source", Str, false),
    ("dest", Str, false),
    ("iface", Str, false),
    ("comment", Str, false),
    ("pos", Int, false),
    ("digest", Str, false),
    ("log", Unmodelled, false),
    ("macro", Unmodelled, false),
    ("icmp-type", Unmodelled, false),
];

const FW_RULE_UPDATE: Spec = &[
    ("type", Str, false),
    ("action", Str, false),
    ("enable", Int, false),
    ("proto", Str, false),
    ("dport", Str, false),
    ("sport", Str, false),
    ("source", Str, false),
    ("dest", Str, false),
    ("iface", Str, false),
    ("comment", Str, false),
    ("moveto", Int, false),
    ("delete", Str, false),
    ("digest", Str, false),
    ("log", Unmodelled, false),
    ("macro", Unmodelled, false),
    ("icmp-type", Unmodelled, false),
];

/// Build a rule from parameters, starting from `base` (PUT) or nothing (POST).
fn rule_from(p: &P<'_>, base: Option<&FirewallRule>) -> Result<FirewallRule, PveError> {
    let perr = |k: &str, e: phx_core::types::ParseError| PveError::param(k, e.to_string());
    let direction = match p.str("type") {
        Some(t) => FirewallDirection::from_str(t).map_err(|e| perr("type", e))?,
        None => base
            .map(|r| r.direction)
            .ok_or_else(|| PveError::param("type", MISSING))?,
    };
    let action = match p.str("action") {
        Some(a) => FirewallAction::from_str(a).map_err(|e| perr("action", e))?,
        None => base
            .map(|r| r.action)
            .ok_or_else(|| PveError::param("action", MISSING))?,
    };
    let mut r = base.cloned().unwrap_or(FirewallRule {
        direction,
        action,
        enable: false,
        proto: None,
        dport: None,
        sport: None,
        source: None,
        dest: None,
        iface: None,
        comment: None,
    });
    r.direction = direction;
    r.action = action;
    if let Some(e) = p.int("enable") {
        r.enable = e != 0;
    }
    for k in p
        .str("delete")
        .map(|d| {
            d.split([',', ' ', ';'])
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
    {
        match k {
            "proto" => r.proto = None,
            "dport" => r.dport = None,
            "sport" => r.sport = None,
            "source" => r.source = None,
            "dest" => r.dest = None,
            "iface" => r.iface = None,
            "comment" => r.comment = None,
            "enable" => r.enable = false,
            other => {
                return Err(PveError::param(
                    "delete",
                    format!("invalid option '{other}'"),
                ));
            }
        }
    }
    if let Some(v) = p.str("proto") {
        r.proto = Some(Protocol::from_str(v).map_err(|e| perr("proto", e))?);
    }
    if let Some(v) = p.str("dport") {
        r.dport = Some(PortSpec::from_str(v).map_err(|e| perr("dport", e))?);
    }
    if let Some(v) = p.str("sport") {
        r.sport = Some(PortSpec::from_str(v).map_err(|e| perr("sport", e))?);
    }
    if let Some(v) = p.str("source") {
        r.source = Some(FirewallRule::check_address(v).map_err(|e| perr("source", e))?);
    }
    if let Some(v) = p.str("dest") {
        r.dest = Some(FirewallRule::check_address(v).map_err(|e| perr("dest", e))?);
    }
    if let Some(v) = p.str("iface") {
        r.iface = Some(v.to_string());
    }
    if let Some(v) = p.str("comment") {
        r.comment = Some(v.to_string());
    }
    if (r.dport.is_some() || r.sport.is_some())
        && !r.proto.as_ref().is_some_and(Protocol::has_ports)
    {
        return Err(PveError::param(
            "proto",
            "missing property - 'dport' or 'sport' requires this property",
        ));
    }
    Ok(r)
}

fn check_digest(p: &P<'_>, current: &str) -> Result<(), PveError> {
    match p.str("digest") {
        Some(d) if d != current => Err(PveError::e500(
            "detected modified configuration - file changed by other user? Try again.",
        )),
        _ => Ok(()),
    }
}

/// Serve the firewall routes of one firewall file.
fn firewall(
    file: &mut FwFile,
    method: Method,
    rest: &[&str],
    params: &[(String, String)],
    route: &str,
) -> Result<Reply, PveError> {
    let digest = fw_digest(file);
    match (method, rest) {
        (Method::Get, ["options"]) => {
            check(route, params, &[], None)?;
            Ok(Reply::data(options_json(&file.options, digest)))
        }
        (Method::Put, ["options"]) => {
            let p = check(route, params, FW_OPTIONS, None)?;
            check_digest(&p, &digest)?;
            let mut o = file.options.clone();
            for k in p
                .str("delete")
                .map(|d| {
                    d.split([',', ' ', ';'])
                        .filter(|s| !s.is_empty())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
            {
                match k {
                    "enable" => o.enable = None,
                    "policy_in" => o.policy_in = None,
                    "policy_out" => o.policy_out = None,
                    other => {
                        return Err(PveError::param(
                            "delete",
                            format!("invalid option '{other}'"),
                        ));
                    }
                }
            }
            if let Some(e) = p.opt_flag("enable") {
                o.enable = Some(e);
            }
            if let Some(v) = policy(&p, "policy_in")? {
                o.policy_in = Some(v);
            }
            if let Some(v) = policy(&p, "policy_out")? {
                o.policy_out = Some(v);
            }
            file.options = o;
            Ok(Reply::null())
        }
        (Method::Get, ["rules"]) => {
            check(route, params, &[], None)?;
            Ok(Reply::data(Value::Array(
                file.rules
                    .iter()
                    .enumerate()
                    .map(|(i, r)| rule_json(i, r))
                    .collect(),
            )))
        }
        (Method::Post, ["rules"]) => {
            let p = check(route, params, FW_RULE, None)?;
            check_digest(&p, &digest)?;
            let r = rule_from(&p, None)?;
            let pos = p
                .int("pos")
                .map(|n| n as usize)
                .unwrap_or(0)
                .min(file.rules.len());
            file.rules.insert(pos, r);
            Ok(Reply::null())
        }
        (m, ["rules", pos]) => {
            let idx: usize = pos.parse().map_err(|_| {
                PveError::param(
                    "pos",
                    format!("type check ('integer') failed - got '{pos}'"),
                )
            })?;
            if idx >= file.rules.len() {
                return Err(PveError::e500("no rule at position"));
            }
            match m {
                Method::Get => {
                    check(route, params, &[], None)?;
                    Ok(Reply::data(rule_json(idx, &file.rules[idx])))
                }
                Method::Put => {
                    let p = check(route, params, FW_RULE_UPDATE, None)?;
                    check_digest(&p, &digest)?;
                    let r = rule_from(&p, Some(&file.rules[idx]))?;
                    file.rules[idx] = r;
                    if let Some(to) = p.int("moveto") {
                        let r = file.rules.remove(idx);
                        let to = (to as usize).min(file.rules.len());
                        file.rules.insert(to, r);
                    }
                    Ok(Reply::null())
                }
                Method::Delete => {
                    let p = check(route, params, &[("digest", Str, false)], None)?;
                    check_digest(&p, &digest)?;
                    file.rules.remove(idx);
                    Ok(Reply::null())
                }
                Method::Post => Err(not_implemented(m, route)),
            }
        }
        _ => Err(not_implemented(method, route)),
    }
}

fn parse_upid(upid: &str) -> Option<(String, u32, u32, i64, String, String, String)> {
    let parts: Vec<&str> = upid.split(':').collect();
    if parts.len() != 9 || parts[0] != "UPID" || !parts[8].is_empty() {
        return None;
    }
    Some((
        parts[1].to_string(),
        u32::from_str_radix(parts[2], 16).ok()?,
        u32::from_str_radix(parts[3], 16).ok()?,
        i64::from_str_radix(parts[4], 16).ok()?,
        parts[5].to_string(),
        parts[6].to_string(),
        parts[7].to_string(),
    ))
}

fn task_item(t: &crate::fake::FakeTask, with_exitstatus_as_status: bool) -> Value {
    let (node, pid, pstart, starttime, kind, id, user) = parse_upid(&t.upid).unwrap_or_default();
    let mut m = serde_json::Map::new();
    m.insert("upid".into(), json!(t.upid));
    m.insert("node".into(), json!(node));
    m.insert("pid".into(), json!(pid));
    m.insert("pstart".into(), json!(pstart));
    m.insert("starttime".into(), json!(starttime));
    m.insert("type".into(), json!(kind));
    m.insert("id".into(), json!(id));
    m.insert("user".into(), json!(user));
    if with_exitstatus_as_status {
        if let Some(e) = &t.exitstatus {
            m.insert("status".into(), json!(e));
            m.insert("endtime".into(), json!(t.endtime.unwrap_or(starttime)));
        }
    } else {
        m.insert(
            "status".into(),
            json!(if t.exitstatus.is_some() {
                "stopped"
            } else {
                "running"
            }),
        );
        if let Some(e) = &t.exitstatus {
            m.insert("exitstatus".into(), json!(e));
        }
    }
    Value::Object(m)
}

fn storage_config_json(s: &FakeStorage) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("storage".into(), json!(s.id));
    m.insert("type".into(), json!(s.kind));
    m.insert("content".into(), json!(s.content.join(",")));
    for (k, v) in &s.params {
        if k == "shared" || k == "nodes" || k == "disable" {
            continue;
        }
        m.insert(k.clone(), json!(v));
    }
    if s.shared {
        m.insert("shared".into(), json!(1));
    }
    if s.disabled {
        m.insert("disable".into(), json!(1));
    }
    if let Some(n) = &s.nodes {
        m.insert("nodes".into(), json!(n.join(",")));
    }
    m.insert(
        "digest".into(),
        json!(crate::fake::digest(
            &serde_json::to_string(&s.params).unwrap_or_default()
        )),
    );
    Value::Object(m)
}

fn split_list(v: &str) -> Vec<String> {
    v.split([',', ';', ' '])
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

const CONTENT_TYPES: &[&str] = &[
    "images", "rootdir", "vztmpl", "iso", "backup", "snippets", "import",
];

fn content_list(v: &str) -> Result<Vec<String>, PveError> {
    let list = split_list(v);
    for c in &list {
        if !CONTENT_TYPES.contains(&c.as_str()) {
            return Err(PveError::param(
                "content",
                format!("invalid content type '{c}'"),
            ));
        }
    }
    Ok(list)
}

impl Router {
    /// A router whose guests keep their files under `scratch`.
    pub fn new(scratch: impl Into<PathBuf>) -> Self {
        Self {
            scratch: scratch.into(),
            agent_exec_limit: Duration::from_secs(60),
            local_node: None,
        }
    }

    /// Answer as `node` (the node a front pretends to be: `local: 1` in `/cluster/status`).
    pub fn local_node(mut self, node: impl Into<String>) -> Self {
        self.local_node = Some(node.into());
        self
    }

    /// Answer one request. The caller holds the cluster (and its lock) for the duration.
    pub fn handle(
        &self,
        c: &mut FakeCluster,
        method: Method,
        path: &str,
        params: &[(String, String)],
    ) -> Result<Reply, PveError> {
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let route = format!("/{}", segs.join("/"));
        let r = route.as_str();
        match (method, segs.as_slice()) {
            (Method::Get, ["version"]) => {
                check(r, params, &[], None)?;
                c.count("version", false, String::new());
                let release = c
                    .version
                    .rsplit_once('.')
                    .map(|(a, _)| a.to_string())
                    .unwrap_or_else(|| c.version.clone());
                Ok(Reply::data(
                    json!({"version": c.version, "release": release, "repoid": "0000c0de", "console": "xtermjs"}),
                ))
            }
            (Method::Get, ["nodes"]) => {
                check(r, params, &[], None)?;
                c.count("nodes", false, String::new());
                Ok(Reply::data(Value::Array(
                    c.nodes.values().map(node_json).collect(),
                )))
            }
            (Method::Get, ["cluster", "resources"]) => {
                let p = check(r, params, &[("type", Str, false)], None)?;
                c.count(
                    "cluster.resources",
                    false,
                    p.str("type").unwrap_or_default().to_string(),
                );
                let t = p.str("type");
                if t.is_some_and(|t| !matches!(t, "vm" | "storage" | "node" | "sdn")) {
                    return Err(PveError::param(
                        "type",
                        "value does not have a value in the enumeration 'vm, storage, node, sdn'",
                    ));
                }
                let mut out = Vec::new();
                if t.is_none() || t == Some("node") {
                    out.extend(c.nodes.values().map(node_json));
                }
                if t.is_none() || t == Some("vm") {
                    for g in c.guests.values() {
                        let mut m = guest_status(g, c.clock);
                        let ty = if g.kind == GuestKind::Lxc {
                            "lxc"
                        } else {
                            "qemu"
                        };
                        m.insert("id".into(), json!(format!("{ty}/{}", g.id)));
                        m.insert("type".into(), json!(ty));
                        m.insert("node".into(), json!(g.node));
                        m.insert("template".into(), b(g.is_template()));
                        let cpus = m.remove("cpus").unwrap_or(json!(1));
                        m.insert("maxcpu".into(), cpus);
                        m.remove("qmpstatus");
                        m.remove("maxswap");
                        m.remove("swap");
                        out.push(Value::Object(m));
                    }
                }
                if t.is_none() || t == Some("storage") {
                    for n in c.nodes.keys() {
                        for (s, used) in c.storage_status(n)? {
                            out.push(json!({"id": format!("storage/{n}/{}", s.id), "type": "storage", "storage": s.id, "node": n, "status": if s.disabled { "unknown" } else { "available" }, "content": s.content.join(","), "plugintype": s.kind, "shared": b(s.shared), "maxdisk": s.total, "disk": used}));
                        }
                    }
                }
                Ok(Reply::data(Value::Array(out)))
            }
            (Method::Get, ["cluster", "status"]) => {
                check(r, params, &[], None)?;
                c.count("cluster.status", false, String::new());
                let local = self
                    .local_node
                    .clone()
                    .or_else(|| c.nodes.keys().next().cloned())
                    .unwrap_or_default();
                let mut out = Vec::new();
                if c.nodes.len() > 1 {
                    out.push(json!({"type": "cluster", "id": "cluster", "name": "phx-fake", "nodes": c.nodes.len(), "quorate": 1, "version": c.nodes.len()}));
                }
                for (i, n) in c.nodes.values().enumerate() {
                    out.push(json!({"type": "node", "id": format!("node/{}", n.name), "name": n.name, "nodeid": i + 1, "ip": format!("192.0.2.{}", i + 1), "local": b(n.name == local), "online": b(n.status == "online"), "level": ""}));
                }
                Ok(Reply::data(Value::Array(out)))
            }
            (Method::Get, ["cluster", "nextid"]) => {
                let p = check(r, params, &[("vmid", Int, false)], None)?;
                c.count("cluster.nextid", false, String::new());
                if let Some(v) = p.str("vmid") {
                    let id = vmid(v)?;
                    if c.guests.contains_key(&id) {
                        return Err(PveError::param("vmid", format!("VM {id} already exists")));
                    }
                    return Ok(Reply::data(json!(id.to_string())));
                }
                let id = (100u32..1_000_000)
                    .find(|i| !c.guests.contains_key(i))
                    .ok_or_else(|| {
                        PveError::e500("unable to get any free VMID in range [100, 999999]")
                    })?;
                Ok(Reply::data(json!(id.to_string())))
            }
            (_, ["cluster", "firewall", rest @ ..]) => {
                c.count(
                    if method == Method::Get {
                        "cluster.firewall"
                    } else {
                        "cluster.firewall.set"
                    },
                    method != Method::Get,
                    rest.join("/"),
                );
                firewall(&mut c.cluster_firewall, method, rest, params, r)
            }
            (Method::Get, ["storage"]) => {
                let p = check(r, params, &[("type", Str, false)], None)?;
                c.count("storage.config", false, String::new());
                Ok(Reply::data(Value::Array(
                    c.storages
                        .values()
                        .filter(|s| p.str("type").is_none_or(|t| s.kind == t))
                        .map(storage_config_json)
                        .collect(),
                )))
            }
            (Method::Post, ["storage"]) => self.add_storage(c, r, params),
            (Method::Get, ["storage", id]) => {
                check(r, params, &[], None)?;
                c.count("storage.config", false, (*id).to_string());
                c.storages
                    .get(*id)
                    .map(|s| Reply::data(storage_config_json(s)))
                    .ok_or_else(|| PveError::e500(format!("storage '{id}' does not exist")))
            }
            (Method::Put, ["storage", id]) => {
                let p = check(
                    r,
                    params,
                    &[
                        ("content", Str, false),
                        ("digest", Str, false),
                        ("nodes", Unmodelled, false),
                        ("disable", Unmodelled, false),
                        ("shared", Unmodelled, false),
                        ("delete", Unmodelled, false),
                        ("options", Unmodelled, false),
                    ],
                    None,
                )?;
                match p.str("content") {
                    Some(v) => c.set_storage_content(id, &content_list(v)?)?,
                    None => {
                        c.storages.get(*id).ok_or_else(|| {
                            PveError::e500(format!("storage '{id}' does not exist"))
                        })?;
                    }
                }
                Ok(Reply::null())
            }
            (Method::Delete, ["storage", id]) => {
                check(r, params, &[], None)?;
                c.remove_storage(id)?;
                Ok(Reply::null())
            }
            (Method::Get, ["access", "users"]) => {
                check(
                    r,
                    params,
                    &[("enabled", Bool, false), ("full", Bool, false)],
                    None,
                )?;
                c.count("access.users", false, String::new());
                Ok(Reply::data(Value::Array(
                    c.users
                        .iter()
                        .map(|(u, comment)| {
                            let mut m = json!({"userid": u, "enable": 1, "expire": 0});
                            if !comment.is_empty() {
                                m["comment"] = json!(comment);
                            }
                            m
                        })
                        .collect(),
                )))
            }
            (Method::Post, ["access", "users"]) => {
                let p = check(
                    r,
                    params,
                    &[
                        ("userid", Str, true),
                        ("comment", Str, false),
                        ("enable", Bool, false),
                        ("expire", Int, false),
                        ("password", Unmodelled, false),
                        ("email", Unmodelled, false),
                        ("firstname", Unmodelled, false),
                        ("lastname", Unmodelled, false),
                        ("groups", Unmodelled, false),
                        ("keys", Unmodelled, false),
                    ],
                    None,
                )?;
                c.add_user(p.req("userid")?, p.str("comment").unwrap_or_default())?;
                Ok(Reply::null())
            }
            (Method::Get, ["access", "acl"]) => {
                check(r, params, &[], None)?;
                c.count("access.acl", false, String::new());
                Ok(Reply::data(Value::Array(c.acl.iter().map(|(path, ugid, role)| json!({"path": path, "ugid": ugid, "roleid": role, "type": "user", "propagate": 1})).collect())))
            }
            (Method::Put, ["access", "acl"]) => {
                let p = check(
                    r,
                    params,
                    &[
                        ("path", Str, true),
                        ("roles", Str, true),
                        ("users", Str, false),
                        ("propagate", Bool, false),
                        ("delete", Bool, false),
                        ("digest", Str, false),
                        ("groups", Unmodelled, false),
                        ("tokens", Unmodelled, false),
                    ],
                    None,
                )?;
                let path = p.req("path")?;
                let users = split_list(p.str("users").unwrap_or_default());
                for u in &users {
                    for role in split_list(p.req("roles")?) {
                        if p.flag("delete") {
                            c.count("access.acl.delete", true, format!("{path} {u} {role}"));
                            c.acl.retain(|e| !(e.0 == path && &e.1 == u && e.2 == role));
                        } else {
                            c.set_acl(path, u, &role)?;
                        }
                    }
                }
                Ok(Reply::null())
            }
            (_, ["nodes", node, rest @ ..]) => {
                if !c.nodes.contains_key(*node) {
                    return Err(PveError::param(
                        "node",
                        format!("no such cluster node '{node}'"),
                    ));
                }
                self.node_route(c, method, node, rest, params, r)
            }
            _ => Err(not_implemented(method, r)),
        }
    }

    fn add_storage(
        &self,
        c: &mut FakeCluster,
        r: &str,
        params: &[(String, String)],
    ) -> Result<Reply, PveError> {
        let p = check(
            r,
            params,
            &[
                ("storage", Str, true),
                ("type", Str, true),
                ("content", Str, false),
                ("path", Str, false),
                ("pool", Str, false),
                ("vgname", Str, false),
                ("thinpool", Str, false),
                ("server", Str, false),
                ("export", Str, false),
                ("options", Str, false),
                ("nodes", Str, false),
                ("shared", Bool, false),
                ("disable", Bool, false),
                ("mkdir", Bool, false),
                ("sparse", Bool, false),
                ("blocksize", Str, false),
            ],
            None,
        )?;
        let id = p.req("storage")?;
        let kind = p.req("type")?;
        let content = match p.str("content") {
            Some(v) => content_list(v)?,
            None if kind == "dir" => vec!["images".into(), "rootdir".into()],
            None => vec!["images".into()],
        };
        let params: BTreeMap<String, String> =
            p.rest(&["storage", "type", "content", "nodes", "disable", "shared"]);
        let s = FakeStorage {
            id: id.to_string(),
            kind: kind.to_string(),
            content,
            shared: p.flag("shared") || kind == "nfs",
            disabled: p.flag("disable"),
            nodes: p.str("nodes").map(split_list),
            total: 1024 * 1024 * 1024 * 1024,
            params,
        };
        c.add_storage(s)?;
        Ok(Reply::null())
    }

    fn node_route(
        &self,
        c: &mut FakeCluster,
        method: Method,
        node: &str,
        rest: &[&str],
        params: &[(String, String)],
        r: &str,
    ) -> Result<Reply, PveError> {
        match (method, rest) {
            (Method::Get, ["network"]) => {
                let p = check(r, params, &[("type", Str, false)], None)?;
                c.count("node.network", false, node.to_string());
                let kind = p.str("type");
                let list: Vec<Value> = c.nodes[node]
                    .bridges
                    .iter()
                    .filter(|_| kind.is_none_or(|k| k == "bridge" || k == "any_bridge"))
                    .map(|b| json!({"iface": b, "type": "bridge", "active": 1, "autostart": 1, "families": ["inet"], "method": "manual", "priority": 3}))
                    .collect();
                Ok(Reply::data(Value::Array(list)))
            }
            (Method::Get, ["dns"]) => {
                check(r, params, &[], None)?;
                c.count("node.dns", false, node.to_string());
                let n = &c.nodes[node];
                let mut m = serde_json::Map::new();
                if let Some(s) = &n.dns_search {
                    m.insert("search".into(), json!(s));
                }
                for (i, s) in n.dns_servers.iter().take(3).enumerate() {
                    m.insert(format!("dns{}", i + 1), json!(s));
                }
                Ok(Reply::data(Value::Object(m)))
            }
            (Method::Put, ["dns"]) => {
                let p = check(
                    r,
                    params,
                    &[
                        ("search", Str, true),
                        ("dns1", Str, false),
                        ("dns2", Str, false),
                        ("dns3", Str, false),
                    ],
                    None,
                )?;
                let servers: Vec<String> = ["dns1", "dns2", "dns3"]
                    .iter()
                    .filter_map(|k| p.str(k))
                    .map(str::to_string)
                    .collect();
                for (k, v) in ["dns1", "dns2", "dns3"]
                    .iter()
                    .filter_map(|k| p.str(k).map(|v| (k, v)))
                {
                    if v.parse::<std::net::IpAddr>().is_err() {
                        return Err(PveError::param(
                            k,
                            format!("value '{v}' does not look like a valid IP address"),
                        ));
                    }
                }
                c.set_dns(node, p.req("search")?, &servers)?;
                Ok(Reply::null())
            }
            (Method::Get, ["time"]) => {
                check(r, params, &[], None)?;
                c.count("node.time", false, node.to_string());
                Ok(Reply::data(
                    json!({"timezone": c.nodes[node].timezone, "time": c.clock, "localtime": c.clock}),
                ))
            }
            (Method::Put, ["time"]) => {
                let p = check(r, params, &[("timezone", Str, true)], None)?;
                c.set_timezone(node, p.req("timezone")?)?;
                Ok(Reply::null())
            }
            (Method::Get, ["storage"]) => {
                let p = check(
                    r,
                    params,
                    &[
                        ("content", Str, false),
                        ("enabled", Bool, false),
                        ("storage", Str, false),
                        ("format", Bool, false),
                        ("target", Unmodelled, false),
                    ],
                    None,
                )?;
                c.count("storage.status", false, node.to_string());
                let list = c.storage_status(node)?;
                let out = list
                    .iter()
                    .filter(|(s, _)| p.str("content").is_none_or(|want| split_list(want).iter().all(|w| s.content.contains(w))))
                    .filter(|(s, _)| !p.flag("enabled") || !s.disabled)
                    .filter(|(s, _)| p.str("storage").is_none_or(|id| s.id == id))
                    .map(|(s, used)| {
                        let avail = s.total.saturating_sub(*used);
                        let mut m = json!({"storage": s.id, "type": s.kind, "content": s.content.join(","), "active": b(!s.disabled), "enabled": b(!s.disabled), "shared": b(s.shared)});
                        if !s.disabled {
                            m["total"] = json!(s.total);
                            m["used"] = json!(used);
                            m["avail"] = json!(avail);
                            m["used_fraction"] = json!(if s.total == 0 { 0.0 } else { *used as f64 / s.total as f64 });
                        }
                        m
                    })
                    .collect();
                Ok(Reply::data(Value::Array(out)))
            }
            (Method::Get, ["storage", storage, "content"]) => {
                let p = check(
                    r,
                    params,
                    &[("content", Str, false), ("vmid", Int, false)],
                    None,
                )?;
                c.count(
                    "storage.content",
                    false,
                    format!("{storage} {}", p.str("content").unwrap_or_default()),
                );
                let vols = c.content(node, storage, p.str("content"))?;
                let want_vmid = p.int("vmid");
                let clock = c.clock;
                Ok(Reply::data(Value::Array(
                    vols.iter()
                        .filter(|v| want_vmid.is_none_or(|w| v.vmid.map(u64::from) == Some(w)))
                        .map(|v| {
                            let mut m = json!({"volid": v.volid(), "content": v.content, "format": v.format, "size": v.size, "ctime": clock});
                            if let Some(id) = v.vmid {
                                m["vmid"] = json!(id);
                            }
                            m
                        })
                        .collect(),
                )))
            }
            (Method::Post, ["storage", storage, "download-url"]) => {
                let p = check(
                    r,
                    params,
                    &[
                        ("content", Str, true),
                        ("filename", Str, true),
                        ("url", Str, true),
                        ("checksum", Str, false),
                        ("checksum-algorithm", Str, false),
                        ("verify-certificates", Bool, false),
                        ("compression", Unmodelled, false),
                    ],
                    None,
                )?;
                let content = p.req("content")?;
                if !matches!(content, "iso" | "vztmpl" | "import") {
                    return Err(PveError::param(
                        "content",
                        format!(
                            "value '{content}' does not have a value in the enumeration 'iso, vztmpl, import'"
                        ),
                    ));
                }
                Ok(Reply::task(c.download_url(
                    node,
                    storage,
                    content,
                    p.req("filename")?,
                    p.req("url")?,
                )?))
            }
            (Method::Get, ["aplinfo"]) => {
                check(r, params, &[], None)?;
                c.count("aplinfo", false, String::new());
                Ok(Reply::data(Value::Array(
                    c.catalogue
                        .iter()
                        .map(|(section, t)| aplinfo_json(section, t))
                        .collect(),
                )))
            }
            (Method::Post, ["aplinfo"]) => {
                let p = check(
                    r,
                    params,
                    &[("storage", Str, true), ("template", Str, true)],
                    None,
                )?;
                Ok(Reply::task(c.download_template(
                    node,
                    p.req("storage")?,
                    p.req("template")?,
                )?))
            }
            (Method::Get, ["tasks"]) => {
                let p = check(
                    r,
                    params,
                    &[
                        ("vmid", Int, false),
                        ("typefilter", Str, false),
                        ("limit", Int, false),
                        ("start", Int, false),
                        ("source", Str, false),
                        ("errors", Bool, false),
                        ("userfilter", Str, false),
                        ("since", Int, false),
                        ("until", Int, false),
                        ("statusfilter", Unmodelled, false),
                    ],
                    None,
                )?;
                c.count("tasks", false, node.to_string());
                let source = p.str("source").unwrap_or("archive");
                let vmid = p.str("vmid");
                let mut list: Vec<&crate::fake::FakeTask> = c
                    .tasks
                    .iter()
                    .filter(|t| t.node == node)
                    .filter(|t| match source {
                        "active" => t.exitstatus.is_none(),
                        "all" => true,
                        _ => t.exitstatus.is_some(),
                    })
                    .filter(|t| vmid.is_none_or(|v| t.id == v))
                    .filter(|t| p.str("typefilter").is_none_or(|f| t.kind == f))
                    .filter(|t| {
                        !p.flag("errors")
                            || t.exitstatus
                                .as_deref()
                                .is_some_and(|e| e != "OK" && !e.starts_with("WARNINGS"))
                    })
                    .filter(|t| p.str("userfilter").is_none_or(|u| t.user.contains(u)))
                    .filter(|t| p.int("since").is_none_or(|s| t.starttime >= s as i64))
                    .filter(|t| p.int("until").is_none_or(|u| t.starttime <= u as i64))
                    .collect();
                list.reverse();
                let start = p.int("start").unwrap_or(0) as usize;
                let limit = p.int("limit").unwrap_or(50) as usize;
                let total = list.len() as u64;
                let items = list
                    .into_iter()
                    .skip(start)
                    .take(limit)
                    .map(|t| task_item(t, true))
                    .collect();
                Ok(Reply {
                    data: Value::Array(items),
                    total: Some(total),
                    task: None,
                })
            }
            (Method::Get, ["tasks", upid, what @ ("status" | "log")]) => {
                let p = check(
                    r,
                    params,
                    &[
                        ("start", Int, false),
                        ("limit", Int, false),
                        ("download", Unmodelled, false),
                    ],
                    None,
                )?;
                c.count("tasks", false, format!("{what} {upid}"));
                c.complete_due();
                if parse_upid(upid).is_none() {
                    return Err(PveError::param("upid", "unable to parse worker upid"));
                }
                let t = c
                    .task(upid)
                    .ok_or_else(|| PveError::param("upid", "no such task"))?;
                if *what == "status" {
                    return Ok(Reply::data(task_item(t, false)));
                }
                let mut lines: Vec<&str> = t.log.iter().map(String::as_str).collect();
                if lines.is_empty() {
                    lines.push("no content");
                }
                let total = lines.len() as u64;
                let start = p.int("start").unwrap_or(0) as usize;
                let limit = p.int("limit").unwrap_or(50) as usize;
                let items = lines
                    .iter()
                    .enumerate()
                    .skip(start)
                    .take(limit)
                    .map(|(i, l)| json!({"n": i + 1, "t": l}))
                    .collect();
                Ok(Reply {
                    data: Value::Array(items),
                    total: Some(total),
                    task: None,
                })
            }
            (_, [kind @ ("lxc" | "qemu")]) => {
                let kind = if *kind == "lxc" {
                    GuestKind::Lxc
                } else {
                    GuestKind::Vm
                };
                match method {
                    Method::Get => {
                        check(r, params, &[("full", Bool, false)], None)?;
                        c.count(
                            if kind == GuestKind::Lxc {
                                "lxc.list"
                            } else {
                                "vm.list"
                            },
                            false,
                            node.to_string(),
                        );
                        let clock = c.clock;
                        Ok(Reply::data(Value::Array(
                            c.guests
                                .values()
                                .filter(|g| g.kind == kind && g.node == node)
                                .map(|g| Value::Object(guest_status(g, clock)))
                                .collect(),
                        )))
                    }
                    Method::Post => self.create(c, kind, node, params, r),
                    _ => Err(not_implemented(method, r)),
                }
            }
            (_, [kind @ ("lxc" | "qemu"), id, rest @ ..]) => {
                let kind = if *kind == "lxc" {
                    GuestKind::Lxc
                } else {
                    GuestKind::Vm
                };
                let id = vmid(id)?;
                self.guest_route(c, kind, method, node, id, rest, params, r)
            }
            _ => Err(not_implemented(method, r)),
        }
    }

    fn create(
        &self,
        c: &mut FakeCluster,
        kind: GuestKind,
        node: &str,
        params: &[(String, String)],
        r: &str,
    ) -> Result<Reply, PveError> {
        match kind {
            GuestKind::Lxc => {
                let p = check(
                    r,
                    params,
                    &[
                        ("vmid", Int, true),
                        ("ostemplate", Str, true),
                        ("storage", Str, false),
                        ("password", Str, false),
                        ("ssh-public-keys", Str, false),
                        ("start", Unmodelled, false),
                        ("force", Unmodelled, false),
                        ("restore", Unmodelled, false),
                        ("unique", Unmodelled, false),
                        ("pool", Unmodelled, false),
                        ("ha-managed", Unmodelled, false),
                        ("bwlimit", Unmodelled, false),
                        ("ignore-unpack-errors", Unmodelled, false),
                    ],
                    Some(GuestKind::Lxc),
                )?;
                let id = vmid(p.req("vmid")?)?;
                let rest = p.rest(&["vmid", "ostemplate", "password", "ssh-public-keys"]);
                Ok(Reply::task(c.lxc_create(
                    node,
                    id,
                    p.req("ostemplate")?,
                    &rest,
                )?))
            }
            GuestKind::Vm => {
                let p = check(
                    r,
                    params,
                    &[
                        ("vmid", Int, true),
                        ("start", Unmodelled, false),
                        ("archive", Unmodelled, false),
                        ("force", Unmodelled, false),
                        ("unique", Unmodelled, false),
                        ("pool", Unmodelled, false),
                        ("storage", Unmodelled, false),
                        ("live-restore", Unmodelled, false),
                        ("bwlimit", Unmodelled, false),
                        ("import-working-storage", Unmodelled, false),
                    ],
                    Some(GuestKind::Vm),
                )?;
                let id = vmid(p.req("vmid")?)?;
                Ok(Reply::task(c.vm_create(node, id, &p.rest(&["vmid"]))?))
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn guest_route(
        &self,
        c: &mut FakeCluster,
        kind: GuestKind,
        method: Method,
        node: &str,
        id: u32,
        rest: &[&str],
        params: &[(String, String)],
        r: &str,
    ) -> Result<Reply, PveError> {
        let lxc = kind == GuestKind::Lxc;
        let name = if lxc { "lxc" } else { "vm" };
        match (method, rest) {
            (Method::Get, ["config"]) => {
                let p = check(
                    r,
                    params,
                    &[("current", Bool, false), ("snapshot", Str, false)],
                    None,
                )?;
                c.count(&format!("{name}.config"), false, id.to_string());
                let g = c.guest(kind, node, id)?;
                match p.str("snapshot") {
                    Some(s) => {
                        let snap = g.snapshots.iter().find(|x| x.name == s).ok_or_else(|| {
                            PveError::e500(format!("snapshot '{s}' does not exist"))
                        })?;
                        let mut cfg = snap.config.clone();
                        cfg.insert("snaptime".into(), snap.snaptime.to_string());
                        if !snap.description.is_empty() {
                            cfg.insert("description".into(), snap.description.clone());
                        }
                        Ok(Reply::data(config_json(g, &cfg, &snap.raw_lxc, None)))
                    }
                    None => Ok(Reply::data(config_json(
                        g,
                        &g.config,
                        &g.raw_lxc,
                        Some(digest_of_guest(g)),
                    ))),
                }
            }
            (Method::Put | Method::Post, ["config"]) => {
                let spec: Spec = if lxc {
                    &[
                        ("delete", Str, false),
                        ("digest", Str, false),
                        ("revert", Unmodelled, false),
                    ]
                } else {
                    &[
                        ("delete", Str, false),
                        ("digest", Str, false),
                        ("skiplock", Unmodelled, false),
                        ("force", Unmodelled, false),
                        ("revert", Unmodelled, false),
                        ("background_delay", Unmodelled, false),
                    ]
                };
                if lxc && method == Method::Post {
                    return Err(not_implemented(method, r));
                }
                let p = check(r, params, spec, Some(kind))?;
                let set = p.rest(&["delete", "digest"]);
                let delete = p.str("delete").map(split_list).unwrap_or_default();
                if method == Method::Post {
                    return Ok(Reply::task(c.update_config_task(
                        node,
                        id,
                        &set,
                        &delete,
                        p.str("digest"),
                    )?));
                }
                c.update_config(kind, node, id, &set, &delete, p.str("digest"))?;
                Ok(Reply::null())
            }
            (Method::Get, ["status", "current"]) => {
                check(r, params, &[], None)?;
                c.count(&format!("{name}.status"), false, id.to_string());
                let g = c.guest(kind, node, id)?;
                let mut m = guest_status(g, c.clock);
                m.insert("ha".into(), json!({"managed": 0}));
                if !lxc
                    && g.config
                        .get("agent")
                        .is_some_and(|a| a.split(',').any(|kv| matches!(kv, "1" | "enabled=1")))
                {
                    m.insert("agent".into(), json!(1));
                }
                Ok(Reply::data(Value::Object(m)))
            }
            (
                Method::Post,
                [
                    "status",
                    action @ ("start" | "stop" | "shutdown" | "reboot"),
                ],
            ) => {
                let spec: Spec = match *action {
                    "start" => &[
                        ("skiplock", Unmodelled, false),
                        ("debug", Bool, false),
                        ("timeout", Int, false),
                        ("machine", Unmodelled, false),
                        ("force-cpu", Unmodelled, false),
                    ],
                    "stop" => &[
                        ("skiplock", Unmodelled, false),
                        ("overrule-shutdown", Bool, false),
                        ("timeout", Int, false),
                        ("keepActive", Bool, false),
                    ],
                    "shutdown" => &[
                        ("timeout", Int, false),
                        ("forceStop", Bool, false),
                        ("keepActive", Bool, false),
                        ("skiplock", Unmodelled, false),
                    ],
                    _ => &[("timeout", Int, false)],
                };
                check(r, params, spec, None)?;
                Ok(Reply::task(c.power(kind, node, id, action)?))
            }
            (Method::Delete, []) => {
                let p = check(
                    r,
                    params,
                    &[
                        ("purge", Bool, false),
                        ("destroy-unreferenced-disks", Bool, false),
                        ("force", Unmodelled, false),
                        ("skiplock", Unmodelled, false),
                    ],
                    None,
                )?;
                Ok(Reply::task(c.destroy(kind, node, id, p.flag("purge"))?))
            }
            (Method::Post, ["clone"]) => {
                let name_key = if lxc { "hostname" } else { "name" };
                let spec: Spec = if lxc {
                    &[
                        ("newid", Int, true),
                        ("hostname", Str, false),
                        ("snapname", Str, false),
                        ("storage", Str, false),
                        ("full", Bool, false),
                        ("description", Unmodelled, false),
                        ("pool", Unmodelled, false),
                        ("target", Unmodelled, false),
                        ("bwlimit", Unmodelled, false),
                    ]
                } else {
                    &[
                        ("newid", Int, true),
                        ("name", Str, false),
                        ("snapname", Str, false),
                        ("storage", Str, false),
                        ("full", Bool, false),
                        ("format", Unmodelled, false),
                        ("description", Unmodelled, false),
                        ("pool", Unmodelled, false),
                        ("target", Unmodelled, false),
                        ("bwlimit", Unmodelled, false),
                    ]
                };
                let p = check(r, params, spec, None)?;
                let newid = vmid(p.req("newid")?).map_err(|_| {
                    PveError::param(
                        "newid",
                        "invalid format - value does not look like a valid VM ID",
                    )
                })?;
                Ok(Reply::task(c.clone_guest(
                    kind,
                    node,
                    id,
                    newid,
                    p.str("snapname"),
                    p.str(name_key),
                    p.str("storage"),
                    p.opt_flag("full"),
                )?))
            }
            (Method::Put, ["resize"]) => {
                let p = check(
                    r,
                    params,
                    &[
                        ("disk", Str, true),
                        ("size", Str, true),
                        ("digest", Str, false),
                        ("skiplock", Unmodelled, false),
                    ],
                    None,
                )?;
                if let Some(d) = p.str("digest") {
                    let cur = digest_of_guest(c.guest(kind, node, id)?);
                    if d != cur {
                        return Err(PveError::e500(
                            "detected modified configuration - file changed by other user? Try again.",
                        ));
                    }
                }
                Ok(Reply::task(c.resize(
                    kind,
                    node,
                    id,
                    p.req("disk")?,
                    p.req("size")?,
                )?))
            }
            (Method::Post, ["template"]) => {
                check(
                    r,
                    params,
                    if lxc {
                        &[]
                    } else {
                        &[("disk", Unmodelled, false)]
                    },
                    None,
                )?;
                let upid = c.template(kind, node, id)?;
                // LXC answers null although its `vztemplate` task runs (pct-src API2/LXC.pm)
                Ok(if lxc {
                    Reply {
                        data: Value::Null,
                        total: None,
                        task: Some(upid),
                    }
                } else {
                    Reply::task(upid)
                })
            }
            (Method::Get, ["snapshot"]) => {
                check(r, params, &[], None)?;
                c.count(&format!("{name}.snapshots"), false, id.to_string());
                let g = c.guest(kind, node, id)?;
                let mut out: Vec<Value> = g
                    .snapshots
                    .iter()
                    .map(|s| {
                        let mut m = json!({"name": s.name, "description": s.description, "snaptime": s.snaptime});
                        if let Some(p) = &s.parent {
                            m["parent"] = json!(p);
                        }
                        if !lxc {
                            m["vmstate"] = b(false);
                        }
                        m
                    })
                    .collect();
                let mut cur = json!({"name": "current", "description": "You are here!", "running": b(g.status == PowerState::Running), "digest": digest_of_guest(g)});
                if let Some(p) = g.config.get("parent") {
                    cur["parent"] = json!(p);
                }
                out.push(cur);
                Ok(Reply::data(Value::Array(out)))
            }
            (Method::Post, ["snapshot"]) => {
                let spec: Spec = if lxc {
                    &[("snapname", Str, true), ("description", Str, false)]
                } else {
                    &[
                        ("snapname", Str, true),
                        ("description", Str, false),
                        ("vmstate", Unmodelled, false),
                    ]
                };
                let p = check(r, params, spec, None)?;
                Ok(Reply::task(c.snapshot(
                    kind,
                    node,
                    id,
                    p.req("snapname")?,
                    p.str("description").unwrap_or_default(),
                )?))
            }
            (Method::Delete, ["snapshot", s]) => {
                check(r, params, &[("force", Bool, false)], None)?;
                Ok(Reply::task(c.delete_snapshot(kind, node, id, s)?))
            }
            (Method::Post, ["snapshot", s, "rollback"]) => {
                check(r, params, &[("start", Unmodelled, false)], None)?;
                Ok(Reply::task(c.rollback(kind, node, id, s)?))
            }
            (_, ["firewall", fw @ ..]) => {
                c.count(
                    &format!(
                        "{name}.firewall{}",
                        if method == Method::Get { "" } else { ".set" }
                    ),
                    method != Method::Get,
                    format!("{id} {}", fw.join("/")),
                );
                c.guest(kind, node, id)?;
                let g = c
                    .guests
                    .get_mut(&id)
                    .ok_or_else(|| PveError::e500("vanished"))?;
                firewall(&mut g.firewall, method, fw, params, r)
            }
            (Method::Put, ["cloudinit"]) if !lxc => {
                check(r, params, &[], None)?;
                c.count("vm.cloudinit.update", true, id.to_string());
                c.guest(kind, node, id)?;
                Ok(Reply::null())
            }
            (Method::Post, ["agent", "ping"]) if !lxc => {
                check(r, params, &[], None)?;
                c.count("vm.agent.ping", false, id.to_string());
                c.agent_ready(node, id)?;
                Ok(Reply::data(json!({"result": {}})))
            }
            (Method::Post, ["agent", "exec"]) if !lxc => {
                let p = check(
                    r,
                    params,
                    &[("command", Str, true), ("input-data", Str, false)],
                    None,
                )?;
                let argv: Vec<String> = p.list("command").into_iter().map(str::to_string).collect();
                c.count("vm.agent.exec", false, format!("{id} {}", argv.join(" ")));
                c.agent_ready(node, id)?;
                let rec = self.agent_exec(id, &argv, p.str("input-data").map(str::as_bytes))?;
                Ok(Reply::data(json!({"pid": c.record_agent_exec(rec)})))
            }
            (Method::Get, ["agent", "exec-status"]) if !lxc => {
                let p = check(r, params, &[("pid", Int, true)], None)?;
                c.agent_ready(node, id)?;
                let pid = p.int("pid").unwrap_or(0) as u32;
                let rec = c
                    .agent_execs
                    .get(&pid)
                    .filter(|e| e.vmid == id)
                    .ok_or_else(|| {
                        PveError::e500(format!(
                            "Agent error: Invalid parameter 'pid': PID {pid} does not exist"
                        ))
                    })?;
                let mut m = json!({"exited": 1, "exitcode": rec.exitcode});
                if !rec.out_data.is_empty() {
                    m["out-data"] = json!(rec.out_data);
                }
                if !rec.err_data.is_empty() {
                    m["err-data"] = json!(rec.err_data);
                }
                Ok(Reply::data(m))
            }
            (Method::Post, ["agent", "file-write"]) if !lxc => {
                let p = check(
                    r,
                    params,
                    &[
                        ("file", Str, true),
                        ("content", Str, true),
                        ("encode", Bool, false),
                    ],
                    None,
                )?;
                let file = p.req("file")?;
                let content = p.req("content")?;
                c.count(
                    "vm.agent.file-write",
                    true,
                    format!("{id} {file} {}B", content.len()),
                );
                c.agent_ready(node, id)?;
                // encode=1 (default): Proxmox base64-encodes plain content for QEMU; encode=0:
                // the content is base64 already
                let bytes = if p.opt_flag("encode") == Some(false) {
                    use base64::Engine as _;
                    base64::engine::general_purpose::STANDARD
                        .decode(content)
                        .map_err(|e| {
                            PveError::e500(format!("Agent error: invalid base64 content: {e}"))
                        })?
                } else {
                    content.as_bytes().to_vec()
                };
                guest::write_into(&guest::guest_root(&self.scratch, id), file, &bytes, 0o644)
                    .map_err(|m| PveError::e500(format!("Agent error: {m}")))?;
                Ok(Reply::null())
            }
            (Method::Get, ["agent", "file-read"]) if !lxc => {
                let p = check(r, params, &[("file", Str, true)], None)?;
                let file = p.req("file")?;
                c.count("vm.agent.file-read", false, format!("{id} {file}"));
                c.agent_ready(node, id)?;
                let (content, truncated) =
                    guest::read_from(&guest::guest_root(&self.scratch, id), file)
                        .map_err(PveError::e500)?;
                let mut m = json!({ "content": content });
                if truncated {
                    m["truncated"] = json!(1);
                }
                Ok(Reply::data(m))
            }
            _ => Err(not_implemented(method, r)),
        }
    }

    /// Run a guest-agent command synchronously in the guest's scratch directory.
    fn agent_exec(
        &self,
        id: u32,
        argv: &[String],
        input: Option<&[u8]>,
    ) -> Result<AgentExec, PveError> {
        use std::io::Write as _;
        let root = guest::guest_root(&self.scratch, id);
        guest::ensure_root(&root).map_err(|e| PveError::e500(format!("Agent error: {e}")))?;
        let Some(mut cmd) = guest::guest_command(&root, argv, &[]) else {
            return Err(PveError::param("command", MISSING));
        };
        cmd.stdin(if input.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                return Err(PveError::e500(format!(
                    "Agent error: Guest agent command failed, error was 'Failed to execute child process “{}” ({e})'",
                    argv[0]
                )));
            }
        };
        if let (Some(data), Some(mut stdin)) = (input, child.stdin.take()) {
            let _ = stdin.write_all(data);
        }
        let deadline = std::time::Instant::now() + self.agent_exec_limit;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                _ => {
                    let _ = child.kill();
                    break;
                }
            }
        }
        let out = child
            .wait_with_output()
            .map_err(|e| PveError::e500(format!("Agent error: {e}")))?;
        Ok(AgentExec {
            vmid: id,
            exitcode: out.status.code().unwrap_or(-1),
            out_data: String::from_utf8_lossy(&out.stdout).into_owned(),
            err_data: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

fn node_json(n: &crate::fake::FakeNode) -> Value {
    json!({"node": n.name, "id": format!("node/{}", n.name), "type": "node", "status": n.status, "cpu": 0.01, "maxcpu": n.maxcpu, "mem": n.maxmem / 16, "maxmem": n.maxmem, "uptime": 86_400, "level": "", "ssl_fingerprint": "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF"})
}

/// An appliance index entry as `GET /nodes/{n}/aplinfo` builds it from `aplinfo.dat`.
fn aplinfo_json(section: &str, template: &str) -> Value {
    let mut parts = template.splitn(3, '_');
    let package = parts.next().unwrap_or_default();
    let version = parts.next().unwrap_or_default();
    let arch = parts
        .next()
        .and_then(|r| r.split('.').next())
        .unwrap_or("amd64");
    let os = package
        .trim_end_matches("-standard")
        .trim_end_matches("-default");
    json!({
        "template": template,
        "package": package,
        "version": version,
        "os": os,
        "section": section,
        "type": "lxc",
        "headline": format!("{os} ({})", if package.ends_with("-standard") { "standard" } else { "default" }),
        "description": format!("A small {os} system."),
        "location": format!("http://download.proxmox.com/images/{section}/{template}"),
        "infopage": "https://pve.proxmox.com/wiki/Linux_Container#pct_supported_distributions",
        "maintainer": "Proxmox Support Team <support@proxmox.com>",
        "architecture": arch,
        "source": "http://download.proxmox.com/images/aplinfo-pve-9.dat",
        "sha512sum": crate::fake::digest(template),
    })
}
