//! Reading what the tools print.
//!
//! The backend reads through `pvesh get ... --output-format json` wherever Proxmox offers it
//! (the JSON mappers below take the bare `data` value, the same shape the HTTP API returns);
//! the text parsers read `pct`/`qm`/`pvesm`/`pveam` output exactly as Proxmox prints it
//! (proxmox-api.md B.2–B.6): `printf` columns with trailing spaces, names with spaces in
//! `qm list`, old and new `pvesm status` headers, two- and three-column `pveam available`.

use std::collections::BTreeMap;
use std::str::FromStr;

use phx_core::backend::{
    FirewallOptions, GuestConfig, GuestSummary, NodeInfo, PowerState, SnapshotInfo, StorageInfo,
    Version, VolumeInfo,
};
use phx_core::types::{
    FirewallAction, FirewallDirection, FirewallRule, GuestId, GuestKind, NodeName, PortSpec,
    Protocol, StorageId,
};
use serde_json::Value;

/// A parse failure: what was being read and why it does not fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {reason}")]
pub struct ParseError {
    /// What was read (`pct list line 3`).
    pub what: String,
    /// Why it does not fit.
    pub reason: String,
}

/// At most this many bytes of what a tool printed are quoted in an error.
const QUOTED: usize = 200;

/// Output quoted in an error: in full when short, else its start and its length, so that a
/// runaway tool (or a 50 MB line) does not become a 50 MB error message.
struct Excerpt<'a>(&'a str);

impl Excerpt<'_> {
    /// The quoted part, and the full length when it is cut.
    fn cut(&self) -> (&str, Option<usize>) {
        let s = self.0;
        if s.len() <= QUOTED {
            return (s, None);
        }
        let mut end = QUOTED;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        (&s[..end], Some(s.len()))
    }
}

/// As a Rust string literal (`"abc"… (52428800 bytes)`).
impl std::fmt::Debug for Excerpt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.cut() {
            (s, None) => write!(f, "{s:?}"),
            (s, Some(n)) => write!(f, "{s:?}… ({n} bytes)"),
        }
    }
}

/// As is (JSON text).
impl std::fmt::Display for Excerpt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.cut() {
            (s, None) => f.write_str(s),
            (s, Some(n)) => write!(f, "{s}… ({n} bytes)"),
        }
    }
}

fn perr(what: impl Into<String>, reason: impl Into<String>) -> ParseError {
    ParseError {
        what: what.into(),
        reason: reason.into(),
    }
}

// ----- JSON (pvesh get / API data) -------------------------------------------------------

/// A JSON value as Proxmox means it, as text: strings as they are, numbers printed, `null`
/// as nothing. (Proxmox sends `vmid`, `pid`, `disk` sometimes as strings, sometimes as numbers.)
pub fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "1" } else { "0" }.to_string()),
        _ => None,
    }
}

/// A number sent as a number or a numeric string.
pub fn number(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A Proxmox boolean (`1`/`0`, `"1"`, `""`, `true`).
pub fn flag(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.as_u64() == Some(1),
        Value::String(s) => s == "1",
        Value::Bool(b) => *b,
        _ => false,
    }
}

fn nonempty(v: &Value) -> Option<String> {
    text(v).filter(|s| !s.is_empty())
}

/// A list answer; anything else is an error (an empty list is not "nothing to read").
fn list<'a>(v: &'a Value, what: &str) -> Result<&'a [Value], ParseError> {
    v.as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| perr(what, format!("not a list: {}", Excerpt(&v.to_string()))))
}

fn guest_id(v: &Value, what: &str) -> Result<GuestId, ParseError> {
    let n = number(v).ok_or_else(|| {
        perr(
            what,
            format!("vmid {} is not a number", Excerpt(&v.to_string())),
        )
    })?;
    GuestId::new(n).map_err(|e| perr(what, e.to_string()))
}

/// The `node` of a list item: a string holding a node name.
fn node_name(v: &Value, what: &str) -> Result<NodeName, ParseError> {
    let s = v.as_str().ok_or_else(|| {
        perr(
            what,
            format!("node {} is not a node name", Excerpt(&v.to_string())),
        )
    })?;
    NodeName::new(s).map_err(|e| perr(what, e.to_string()))
}

/// A list item or answer that must be a JSON object.
fn object<'a>(v: &'a Value, what: &str) -> Result<&'a Value, ParseError> {
    if v.is_object() {
        Ok(v)
    } else {
        Err(perr(
            what,
            format!("expected an object, found {}", Excerpt(&v.to_string())),
        ))
    }
}

/// `GET /nodes/{n}/{lxc|qemu}/{id}/status/current` (or a list item) → [`GuestSummary`].
pub fn guest_status(
    v: &Value,
    kind: GuestKind,
    node: &NodeName,
) -> Result<GuestSummary, ParseError> {
    let v = object(v, "guest status")?;
    let status = v
        .get("qmpstatus")
        .and_then(Value::as_str)
        .filter(|_| kind == GuestKind::Vm)
        .or_else(|| v.get("status").and_then(Value::as_str))
        .unwrap_or("unknown");
    Ok(GuestSummary {
        id: guest_id(&v["vmid"], "guest status")?,
        kind,
        node: node.clone(),
        name: nonempty(&v["name"]),
        status: PowerState::parse(status),
        template: flag(&v["template"]),
        lock: nonempty(&v["lock"]),
    })
}

/// `GET /cluster/resources?type=vm` → every guest with its node.
pub fn resources(v: &Value) -> Result<Vec<GuestSummary>, ParseError> {
    let items = v
        .as_array()
        .ok_or_else(|| perr("cluster resources", "not a list"))?;
    let mut out = Vec::new();
    for it in items {
        let kind = match it["type"].as_str() {
            Some("lxc") => GuestKind::Lxc,
            Some("qemu") => GuestKind::Vm,
            _ => continue,
        };
        let node = node_name(&it["node"], "cluster resources")?;
        let mut g = guest_status(it, kind, &node)?;
        // the resources index has no qmpstatus: `status` it is
        g.status = PowerState::parse(it["status"].as_str().unwrap_or("unknown"));
        out.push(g);
    }
    out.sort_by_key(|g| g.id);
    Ok(out)
}

/// `GET .../config` → [`GuestConfig`]: values as strings, `lxc` pairs, `digest`.
pub fn guest_config(v: &Value) -> Result<GuestConfig, ParseError> {
    let m = v
        .as_object()
        .ok_or_else(|| perr("guest config", "not an object"))?;
    let mut cfg = GuestConfig::default();
    for (k, x) in m {
        match k.as_str() {
            "digest" => cfg.digest = text(x),
            "lxc" => {
                for pair in x.as_array().map(Vec::as_slice).unwrap_or_default() {
                    match (pair.get(0).and_then(text), pair.get(1).and_then(text)) {
                        (Some(a), Some(b)) => cfg.raw_lxc.push((a, b)),
                        _ => {
                            return Err(perr(
                                "guest config",
                                format!(
                                    "lxc entry {} is not a [key, value] pair",
                                    Excerpt(&pair.to_string())
                                ),
                            ));
                        }
                    }
                }
            }
            _ => {
                if let Some(t) = text(x) {
                    cfg.entries.insert(k.clone(), t);
                }
            }
        }
    }
    Ok(cfg)
}

/// `GET .../snapshot` → snapshots oldest first, without `current`.
pub fn snapshots(v: &Value) -> Result<Vec<SnapshotInfo>, ParseError> {
    let items = v
        .as_array()
        .ok_or_else(|| perr("snapshot list", "not a list"))?;
    let mut out: Vec<SnapshotInfo> = items
        .iter()
        .filter(|s| s["name"].as_str() != Some("current"))
        .map(|s| SnapshotInfo {
            name: text(&s["name"]).unwrap_or_default(),
            parent: nonempty(&s["parent"]),
            description: text(&s["description"]).unwrap_or_default(),
            snaptime: number(&s["snaptime"]).and_then(|n| i64::try_from(n).ok()),
        })
        .collect();
    out.sort_by_key(|s| s.snaptime.unwrap_or(i64::MAX));
    Ok(out)
}

/// `GET /nodes/{n}/storage` → [`StorageInfo`]s.
pub fn storages(v: &Value) -> Result<Vec<StorageInfo>, ParseError> {
    let items = v
        .as_array()
        .ok_or_else(|| perr("storage list", "not a list"))?;
    items
        .iter()
        .map(|s| {
            Ok(StorageInfo {
                id: StorageId::new(text(&s["storage"]).unwrap_or_default())
                    .map_err(|e| perr("storage list", e.to_string()))?,
                kind: text(&s["type"]).unwrap_or_default(),
                content: text(&s["content"])
                    .unwrap_or_default()
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect(),
                active: flag(&s["active"]),
                enabled: s.get("enabled").is_none_or(flag),
                shared: flag(&s["shared"]),
                total: number(&s["total"]).unwrap_or(0),
                used: number(&s["used"]).unwrap_or(0),
                avail: number(&s["avail"]).unwrap_or(0),
            })
        })
        .collect()
}

/// `GET /nodes/{n}/storage/{s}/content` → [`VolumeInfo`]s.
pub fn volumes(v: &Value) -> Result<Vec<VolumeInfo>, ParseError> {
    let items = v
        .as_array()
        .ok_or_else(|| perr("storage content", "not a list"))?;
    Ok(items
        .iter()
        .map(|x| VolumeInfo {
            volid: text(&x["volid"]).unwrap_or_default(),
            content: text(&x["content"]).unwrap_or_default(),
            format: text(&x["format"]).unwrap_or_default(),
            size: number(&x["size"]).unwrap_or(0),
            vmid: number(&x["vmid"]).and_then(|n| GuestId::new(n).ok()),
        })
        .collect())
}

/// `GET /nodes` → [`NodeInfo`]s.
pub fn nodes(v: &Value) -> Result<Vec<NodeInfo>, ParseError> {
    let items = v
        .as_array()
        .ok_or_else(|| perr("node list", "not a list"))?;
    items
        .iter()
        .map(|n| {
            Ok(NodeInfo {
                name: node_name(&n["node"], "node list")?,
                status: text(&n["status"]).unwrap_or_else(|| "unknown".into()),
                maxcpu: number(&n["maxcpu"]),
                maxmem: number(&n["maxmem"]),
            })
        })
        .collect()
}

/// `GET /version` → [`Version`].
pub fn version(v: &Value) -> Result<Version, ParseError> {
    let version = text(&v["version"]).ok_or_else(|| perr("version", "no version"))?;
    let release = text(&v["release"]).unwrap_or_else(|| {
        version
            .rsplit_once('.')
            .map(|(a, _)| a.to_string())
            .unwrap_or_default()
    });
    Ok(Version { version, release })
}

/// How a task ended, from `GET /nodes/{n}/tasks/{upid}/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskStatus {
    /// Still running.
    Running,
    /// `OK` or `WARNINGS: n`.
    Ok {
        /// Warning count.
        warnings: u32,
    },
    /// Any other exit status: the error text.
    Failed(String),
}

/// `GET .../tasks/{upid}/status` → [`TaskStatus`] (error = anything but `OK` / `WARNINGS: n`).
pub fn task_status(v: &Value) -> TaskStatus {
    if v["status"].as_str() == Some("running") {
        return TaskStatus::Running;
    }
    let e = text(&v["exitstatus"]).unwrap_or_else(|| "unexpected status".into());
    if e == "OK" {
        return TaskStatus::Ok { warnings: 0 };
    }
    if let Some(n) = e.strip_prefix("WARNINGS: ").and_then(|n| n.parse().ok()) {
        return TaskStatus::Ok { warnings: n };
    }
    TaskStatus::Failed(e)
}

// JSON of the node and cluster: firewall, access, network, DNS, time, tasks, agent.

/// `GET .../firewall/options` → [`FirewallOptions`].
pub fn fw_options(v: &Value) -> FirewallOptions {
    FirewallOptions {
        enable: v.get("enable").filter(|e| !e.is_null()).map(flag),
        policy_in: nonempty(&v["policy_in"]),
        policy_out: nonempty(&v["policy_out"]),
    }
}

/// `GET .../firewall/rules` → rules in position order.
pub fn fw_rules(v: &Value) -> Result<Vec<FirewallRule>, ParseError> {
    let what = "firewall rules";
    let mut items: Vec<(u64, FirewallRule)> = Vec::new();
    for (i, r) in list(v, what)?.iter().enumerate() {
        let pos = number(&r["pos"]).unwrap_or(i as u64);
        let at = |field: &str, e: phx_core::types::ParseError| {
            perr(what, format!("rule at position {pos}: {field}: {e}"))
        };
        let direction = FirewallDirection::from_str(&text(&r["type"]).unwrap_or_default())
            .map_err(|e| at("type", e))?;
        let action = FirewallAction::from_str(&text(&r["action"]).unwrap_or_default())
            .map_err(|e| at("action", e))?;
        let opt = |field: &'static str| nonempty(&r[field]);
        let rule = FirewallRule {
            direction,
            action,
            enable: flag(&r["enable"]),
            proto: opt("proto")
                .map(|p| Protocol::from_str(&p))
                .transpose()
                .map_err(|e| at("proto", e))?,
            dport: opt("dport")
                .map(|p| PortSpec::from_str(&p))
                .transpose()
                .map_err(|e| at("dport", e))?,
            sport: opt("sport")
                .map(|p| PortSpec::from_str(&p))
                .transpose()
                .map_err(|e| at("sport", e))?,
            source: opt("source")
                .map(|a| FirewallRule::check_address(&a))
                .transpose()
                .map_err(|e| at("source", e))?,
            dest: opt("dest")
                .map(|a| FirewallRule::check_address(&a))
                .transpose()
                .map_err(|e| at("dest", e))?,
            iface: opt("iface"),
            comment: opt("comment"),
        };
        items.push((pos, rule));
    }
    items.sort_by_key(|(p, _)| *p);
    Ok(items.into_iter().map(|(_, r)| r).collect())
}

/// `GET /nodes/{n}/aplinfo` → template file names.
pub fn aplinfo(v: &Value) -> Result<Vec<String>, ParseError> {
    let mut t: Vec<String> = list(v, "appliance index")?
        .iter()
        .filter_map(|a| nonempty(&a["template"]))
        .collect();
    t.sort();
    Ok(t)
}

/// `GET /access/users` → user ids.
pub fn users(v: &Value) -> Result<Vec<String>, ParseError> {
    Ok(list(v, "users")?
        .iter()
        .filter_map(|u| nonempty(&u["userid"]))
        .collect())
}

/// `GET /access/acl` → `(path, user-or-group, role)`.
pub fn acl(v: &Value) -> Result<Vec<(String, String, String)>, ParseError> {
    Ok(list(v, "acl")?
        .iter()
        .filter_map(|a| {
            Some((
                nonempty(&a["path"])?,
                nonempty(&a["ugid"])?,
                nonempty(&a["roleid"])?,
            ))
        })
        .collect())
}

/// `GET /nodes/{n}/network?type=bridge` → bridge names.
pub fn bridges(v: &Value) -> Result<Vec<String>, ParseError> {
    let mut out: Vec<String> = list(v, "network")?
        .iter()
        .filter(|i| matches!(i["type"].as_str(), None | Some("bridge" | "OVSBridge")))
        .filter_map(|i| nonempty(&i["iface"]))
        .collect();
    out.sort();
    Ok(out)
}

/// `GET /nodes/{n}/dns` → `(search, nameservers)`.
pub fn dns(v: &Value) -> (Option<String>, Vec<String>) {
    (
        nonempty(&v["search"]),
        ["dns1", "dns2", "dns3"]
            .iter()
            .filter_map(|k| nonempty(&v[*k]))
            .collect(),
    )
}

/// `GET /nodes/{n}/time` → the timezone.
pub fn timezone(v: &Value) -> Result<String, ParseError> {
    nonempty(&v["timezone"]).ok_or_else(|| perr("node time", "no timezone"))
}

/// `GET /nodes/{n}/tasks` → the tasks (`upid`, `type`, `id`), in the order listed.
pub fn active_tasks(v: &Value) -> Result<Vec<phx_core::backend::ActiveTask>, ParseError> {
    let Some(items) = v.as_array() else {
        return Err(perr(
            "task list",
            format!("not a list: {}", Excerpt(&v.to_string())),
        ));
    };
    items
        .iter()
        .map(|t| {
            let field = |k: &str| {
                text(&t[k]).ok_or_else(|| {
                    perr(
                        "task list",
                        format!("no {k} in {}", Excerpt(&t.to_string())),
                    )
                })
            };
            Ok(phx_core::backend::ActiveTask {
                upid: field("upid")?,
                kind: field("type")?,
                id: text(&t["id"]).unwrap_or_default(),
            })
        })
        .collect()
}

/// `GET .../agent/file-read` (`{"content": "...", "truncated": true?}`) → the content, and
/// whether the file was longer.
pub fn agent_file_content(v: &Value) -> Result<phx_core::backend::AgentFile, ParseError> {
    match &v["content"] {
        Value::String(s) => Ok(phx_core::backend::AgentFile {
            content: s.clone(),
            truncated: flag(&v["truncated"]),
        }),
        other => Err(perr(
            "agent file-read",
            format!("no text content in {}", Excerpt(&other.to_string())),
        )),
    }
}

/// The JSON value `pvesh` printed: its last non-empty line (a task's log comes first).
/// Nothing printed is `null`.
pub fn pvesh_output(stdout: &str) -> Result<Value, ParseError> {
    match stdout.lines().rev().find(|l| !l.trim().is_empty()) {
        None => Ok(Value::Null),
        Some(l) => serde_json::from_str(l.trim())
            .map_err(|e| perr("pvesh output", format!("{e}: {:?}", Excerpt(l)))),
    }
}

// ----- text (pct, qm, pvesm, pveam) ------------------------------------------------------

/// One row of `pct list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PctListEntry {
    /// VMID.
    pub vmid: GuestId,
    /// `running` / `stopped`.
    pub status: PowerState,
    /// `lock:` value.
    pub lock: Option<String>,
    /// Hostname (or `CT<id>`).
    pub name: String,
}

/// `pct list` (`%-10s %-10s %-12s %-20s`): nothing at all when there are no containers.
pub fn pct_list(out: &str) -> Result<Vec<PctListEntry>, ParseError> {
    let mut v = Vec::new();
    for (i, line) in out.lines().enumerate() {
        let t: Vec<&str> = line.split_whitespace().collect();
        if t.is_empty() || (t[0] == "VMID" && t.get(1) == Some(&"Status")) {
            continue;
        }
        let what = format!("pct list line {}", i + 1);
        let vmid = GuestId::new(
            t[0].parse::<u64>()
                .map_err(|_| perr(&what, format!("{:?} is not a VMID", Excerpt(t[0]))))?,
        )
        .map_err(|e| perr(&what, e.to_string()))?;
        let (lock, name) = match t.len() {
            3 => (None, t[2].to_string()),
            4 => (Some(t[2].to_string()), t[3].to_string()),
            _ => {
                return Err(perr(
                    &what,
                    format!("expected VMID, Status, [Lock,] Name: {:?}", Excerpt(line)),
                ));
            }
        };
        v.push(PctListEntry {
            vmid,
            status: PowerState::parse(t[1]),
            lock,
            name,
        });
    }
    Ok(v)
}

/// `pct status` / `qm status`: `status: running`.
pub fn status_line(out: &str) -> Result<PowerState, ParseError> {
    out.lines()
        .find_map(|l| l.trim().strip_prefix("status:"))
        .map(|s| PowerState::parse(s.trim()))
        .ok_or_else(|| perr("status", format!("no 'status:' line in {:?}", Excerpt(out))))
}

/// Undo Proxmox's `encode_text` (`%XX` escapes) of a description line.
pub fn unescape_description(s: &str) -> String {
    phx_core::util::percent_decode(s)
}

/// `pct config` / `qm config`: sorted `key: value` lines (description url-escaped), then raw
/// `lxc.*` lines. Stops at a `[section]` header.
pub fn config_text(out: &str) -> Result<GuestConfig, ParseError> {
    let mut cfg = GuestConfig::default();
    for (i, line) in out.lines().enumerate() {
        if line.starts_with('[') {
            break;
        }
        if line.trim().is_empty() {
            continue;
        }
        let (k, v) = line
            .split_once(": ")
            .or_else(|| line.strip_suffix(':').map(|k| (k, "")))
            .ok_or_else(|| {
                perr(
                    format!("config line {}", i + 1),
                    format!("not 'key: value': {:?}", Excerpt(line)),
                )
            })?;
        if k.starts_with("lxc.") {
            cfg.raw_lxc.push((k.to_string(), v.to_string()));
        } else if k == "description" {
            cfg.entries.insert(k.to_string(), unescape_description(v));
        } else {
            cfg.entries.insert(k.to_string(), v.to_string());
        }
    }
    Ok(cfg)
}

/// Epoch seconds of `YYYY-MM-DD HH:MM:SS` read as UTC.
fn epoch(date: &str, time: &str) -> Option<i64> {
    let d: Vec<i64> = date
        .split('-')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let t: Vec<i64> = time
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    if d.len() != 3 || t.len() != 3 {
        return None;
    }
    // A date Proxmox can print; anything else is not a time (and would overflow below).
    let in_range = (1..=9999).contains(&d[0])
        && (1..=12).contains(&d[1])
        && (1..=31).contains(&d[2])
        && (0..=23).contains(&t[0])
        && (0..=59).contains(&t[1])
        && (0..=60).contains(&t[2]);
    if !in_range {
        return None;
    }
    let (y, m, day) = (d[0] - i64::from(d[1] <= 2), d[1], d[2]);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some((era * 146_097 + doe - 719_468) * 86_400 + t[0] * 3600 + t[1] * 60 + t[2])
}

/// `pct listsnapshot` / `qm listsnapshot`: the tree (`` `-> name  YYYY-MM-DD HH:MM:SS  desc``,
/// one more leading space per level). `current` is left out; parents come from the indentation;
/// `no-description` reads as empty; times are read as UTC.
pub fn listsnapshot(out: &str) -> Result<Vec<SnapshotInfo>, ParseError> {
    let mut v: Vec<SnapshotInfo> = Vec::new();
    let mut stack: Vec<(usize, String)> = Vec::new();
    for (i, line) in out.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let what = format!("listsnapshot line {}", i + 1);
        let depth = line.len() - line.trim_start().len();
        let rest = line
            .trim_start()
            .strip_prefix("`->")
            .ok_or_else(|| perr(&what, format!("no '`->' marker: {:?}", Excerpt(line))))?;
        let mut words = rest.split_whitespace();
        let name = words
            .next()
            .ok_or_else(|| perr(&what, "no snapshot name"))?
            .to_string();
        let after_name = rest.trim_start()[name.len()..].trim_start();
        let (snaptime, desc) = match after_name.split_whitespace().collect::<Vec<_>>().as_slice() {
            [d, t, ..] if epoch(d, t).is_some() => (
                epoch(d, t),
                after_name[d.len()..].trim_start()[t.len()..]
                    .trim()
                    .to_string(),
            ),
            _ => (None, after_name.trim().to_string()),
        };
        while stack.last().is_some_and(|(d, _)| *d >= depth) {
            stack.pop();
        }
        let parent = stack.last().map(|(_, n)| n.clone());
        stack.push((depth, name.clone()));
        if name == "current" {
            continue;
        }
        v.push(SnapshotInfo {
            name,
            parent,
            description: if desc == "no-description" {
                String::new()
            } else {
                desc
            },
            snaptime,
        });
    }
    Ok(v)
}

/// One row of `qm list`.
#[derive(Debug, Clone, PartialEq)]
pub struct QmListEntry {
    /// VMID.
    pub vmid: GuestId,
    /// Name (may contain spaces, e.g. `VM 104`).
    pub name: String,
    /// QMP status.
    pub status: PowerState,
    /// Memory in MiB.
    pub mem_mb: u64,
    /// Boot disk in GiB.
    pub bootdisk_gb: f64,
    /// QEMU pid (0 when stopped).
    pub pid: u64,
}

/// `qm list` (`%10s %-20s %-10s %-10s %12s %-10s`): read from both ends, since names may hold
/// spaces and long names push the columns right. Nothing at all when there are no VMs.
pub fn qm_list(out: &str) -> Result<Vec<QmListEntry>, ParseError> {
    let mut v = Vec::new();
    for (i, line) in out.lines().enumerate() {
        let t: Vec<&str> = line.split_whitespace().collect();
        if t.is_empty() || (t[0] == "VMID" && t.get(1) == Some(&"NAME")) {
            continue;
        }
        let what = format!("qm list line {}", i + 1);
        if t.len() < 6 {
            return Err(perr(
                &what,
                format!("expected 6 columns: {:?}", Excerpt(line)),
            ));
        }
        let n = t.len();
        let vmid = GuestId::new(
            t[0].parse::<u64>()
                .map_err(|_| perr(&what, format!("{:?} is not a VMID", Excerpt(t[0]))))?,
        )
        .map_err(|e| perr(&what, e.to_string()))?;
        let num = |s: &str, col: &str| {
            s.parse::<f64>()
                .map_err(|_| perr(&what, format!("{col} {:?} is not a number", Excerpt(s))))
        };
        let trimmed = line.trim();
        let start = trimmed.find(t[0]).map(|p| p + t[0].len()).unwrap_or(0);
        let end = trimmed.rfind(t[n - 4]).unwrap_or(trimmed.len());
        let name = trimmed
            .get(start..end)
            .unwrap_or_default()
            .trim()
            .to_string();
        v.push(QmListEntry {
            vmid,
            name,
            status: PowerState::parse(t[n - 4]),
            mem_mb: num(t[n - 3], "MEM(MB)")? as u64,
            bootdisk_gb: num(t[n - 2], "BOOTDISK(GB)")?,
            pid: num(t[n - 1], "PID")? as u64,
        });
    }
    Ok(v)
}

/// One row of `pvesm status`.
#[derive(Debug, Clone, PartialEq)]
pub struct PvesmStatus {
    /// Storage id.
    pub name: String,
    /// Type (`dir`, `lvmthin`, ...).
    pub kind: String,
    /// `active`, `inactive` or `disabled`.
    pub status: String,
    /// KiB total.
    pub total_kib: u64,
    /// KiB used.
    pub used_kib: u64,
    /// KiB available.
    pub avail_kib: u64,
    /// Percent used (`None` for `N/A`).
    pub percent: Option<f64>,
}

/// `pvesm status`: the header (with or without the `(KiB)` units), then one row per storage.
pub fn pvesm_status(out: &str) -> Result<Vec<PvesmStatus>, ParseError> {
    let mut v = Vec::new();
    for (i, line) in out.lines().enumerate() {
        let t: Vec<&str> = line.split_whitespace().collect();
        if t.is_empty() || (t[0] == "Name" && t.get(1) == Some(&"Type")) {
            continue;
        }
        let what = format!("pvesm status line {}", i + 1);
        if t.len() != 7 {
            return Err(perr(
                &what,
                format!("expected 7 columns: {:?}", Excerpt(line)),
            ));
        }
        let kib = |s: &str| {
            s.parse::<u64>()
                .map_err(|_| perr(&what, format!("{:?} is not a number of KiB", Excerpt(s))))
        };
        v.push(PvesmStatus {
            name: t[0].into(),
            kind: t[1].into(),
            status: t[2].into(),
            total_kib: kib(t[3])?,
            used_kib: kib(t[4])?,
            avail_kib: kib(t[5])?,
            percent: t[6].strip_suffix('%').and_then(|p| p.parse().ok()),
        });
    }
    Ok(v)
}

/// `pveam list <storage>`: `(volid, size in MB)`; the `NAME SIZE` header is optional.
pub fn pveam_list(out: &str) -> Result<Vec<(String, f64)>, ParseError> {
    let mut v = Vec::new();
    for (i, line) in out.lines().enumerate() {
        let t: Vec<&str> = line.split_whitespace().collect();
        if t.is_empty() || (t[0] == "NAME" && t.get(1) == Some(&"SIZE")) {
            continue;
        }
        let what = format!("pveam list line {}", i + 1);
        match t.as_slice() {
            [volid, size] => {
                let mb = size
                    .strip_suffix("MB")
                    .and_then(|s| s.parse::<f64>().ok())
                    .ok_or_else(|| {
                        perr(&what, format!("size {:?} is not NN.NNMB", Excerpt(size)))
                    })?;
                v.push(((*volid).to_string(), mb));
            }
            _ => {
                return Err(perr(
                    &what,
                    format!("expected volid and size: {:?}", Excerpt(line)),
                ));
            }
        }
    }
    Ok(v)
}

/// One line of `pveam available`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appliance {
    /// `system`, `turnkeylinux`, `mail`.
    pub section: String,
    /// Template file name.
    pub template: String,
    /// Architecture (the newer three-column format only).
    pub arch: Option<String>,
}

/// `pveam available [--section s]`: `%-15s %s` (older) or `%-15s %-60s %s` (with the arch).
pub fn pveam_available(out: &str) -> Result<Vec<Appliance>, ParseError> {
    let mut v = Vec::new();
    for (i, line) in out.lines().enumerate() {
        match line.split_whitespace().collect::<Vec<_>>().as_slice() {
            [] => {}
            [s, t] => v.push(Appliance {
                section: (*s).into(),
                template: (*t).into(),
                arch: None,
            }),
            [s, t, a] => v.push(Appliance {
                section: (*s).into(),
                template: (*t).into(),
                arch: Some((*a).into()),
            }),
            _ => {
                return Err(perr(
                    format!("pveam available line {}", i + 1),
                    format!("expected section, template [, arch]: {:?}", Excerpt(line)),
                ));
            }
        }
    }
    Ok(v)
}

/// `qm guest exec` output: Perl's pretty JSON with `exitcode`, `exited`, `out-data`,
/// `err-data`; or `{"pid": N}` when the timeout was reached first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestExec {
    /// The command finished.
    Exited {
        /// Its exit code.
        exitcode: i32,
        /// Its stdout.
        out: String,
        /// Its stderr.
        err: String,
    },
    /// Still running when `qm` stopped waiting.
    Running {
        /// The guest pid.
        pid: u64,
    },
}

/// Parse `qm guest exec` output.
pub fn guest_exec(out: &str) -> Result<GuestExec, ParseError> {
    let v: Value = serde_json::from_str(out.trim())
        .map_err(|e| perr("qm guest exec", format!("{e}: {:?}", Excerpt(out))))?;
    if flag(&v["exited"]) {
        let exitcode = v["exitcode"]
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .unwrap_or(-1);
        return Ok(GuestExec::Exited {
            exitcode,
            out: text(&v["out-data"]).unwrap_or_default(),
            err: text(&v["err-data"]).unwrap_or_default(),
        });
    }
    match number(&v["pid"]) {
        Some(pid) => Ok(GuestExec::Running { pid }),
        None => Err(perr(
            "qm guest exec",
            format!("neither exited nor a pid: {:?}", Excerpt(out)),
        )),
    }
}

/// Key/value pairs of a `GET` object as strings (options, dns, time).
pub fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, x)| Some((k.clone(), text(x)?)))
                .collect()
        })
        .unwrap_or_default()
}
