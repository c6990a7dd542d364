//! Config pieces shared by containers, VMs and the host: firewall, tests, health checks, secrets.

use std::collections::BTreeMap;

use serde::Serialize;

use super::finding::{JsonPath, Sink};
use super::json::Json;
use super::reader::{Obj, parse_value, type_name};
pub use crate::types::Secret;
use crate::types::{FirewallAction, FirewallDirection, FirewallRule, PortSpec, Protocol};

/// A guest's Proxmox firewall: enable flag and rule list (replaced as a whole when different).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GuestFirewall {
    /// Whether the firewall is on for this guest (`firewall=1` on net0).
    pub enabled: bool,
    /// Rules in order.
    pub rules: Vec<FirewallRule>,
}

/// `type` of a test case (only scripts exist).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestCase {
    /// Display name.
    pub name: String,
    /// `script`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Path relative to `<scripts-dir>/tests/`.
    pub path: String,
}

/// `health_check`: a command run inside the guest until it succeeds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthCheck {
    /// Command line run inside the guest (split on whitespace into argv, never through a shell).
    pub command: String,
    /// Attempts (default 3).
    pub retries: u32,
    /// Seconds between attempts (default 5).
    pub interval: u32,
}

/// `health_checks[]`: a host script with arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostCheck {
    /// Display name.
    pub name: String,
    /// Script path relative to `<scripts-dir>/health_checks/`.
    pub script: String,
    /// Arguments, passed as argv.
    pub args: Vec<String>,
}

/// `traefik_service`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TraefikService {
    /// Router name.
    pub name: String,
    /// Backend port.
    pub port: u64,
}

pub(crate) const RULE_TYPES: &str = "in, out";

/// Parse one firewall rule object (`{type, action, proto?, port?, source?, dest?, comment?, iface?}`).
pub(crate) fn parse_rule(v: &Json<'_>, p: JsonPath, s: &mut Sink) -> Option<FirewallRule> {
    let mut o = Obj::of(v, p, s)?;
    let direction = enum_field::<FirewallDirection>(&mut o, s, "type", RULE_TYPES);
    let action = enum_field::<FirewallAction>(&mut o, s, "action", "ACCEPT, DROP, REJECT");
    let proto = o.raw("proto").and_then(|(v, p)| {
        enum_value::<Protocol>(v, &p, s, "tcp, udp, icmp, ... or a protocol number")
    });
    // Phoenix writes `port`; Proxmox calls it `dport`. Accept both.
    let dport_key = if o.has("dport") { "dport" } else { "port" };
    let dport: Option<PortSpec> = o.raw(dport_key).and_then(|(v, p)| parse_value(v, &p, s));
    let sport: Option<PortSpec> = o.raw("sport").and_then(|(v, p)| parse_value(v, &p, s));
    let source = address(&mut o, s, "source");
    let dest = address(&mut o, s, "dest");
    let comment = o.opt_str(s, "comment");
    let iface = o.opt_str(s, "iface");
    let enable = o
        .opt_bool(s, "enable")
        .or_else(|| o.opt_bool(s, "enabled"))
        .unwrap_or(true);
    if let (Some(pr), Some(_)) = (&proto, &dport)
        && !pr.has_ports()
    {
        s.error(
            &o.path.key(dport_key),
            "value",
            format!("ports need a port-based protocol (tcp or udp), not {pr}"),
        );
        o.failed = true;
    }
    let failed = o.failed;
    o.extra(s, &[]);
    if failed {
        return None;
    }
    Some(FirewallRule {
        direction: direction?,
        action: action?,
        enable,
        proto,
        dport,
        sport,
        source,
        dest,
        iface,
        comment,
    })
}

fn address(o: &mut Obj<'_>, s: &mut Sink, key: &'static str) -> Option<String> {
    let (v, p) = o.raw(key)?;
    match v.as_str().map(FirewallRule::check_address) {
        Some(Ok(a)) => Some(a),
        Some(Err(e)) => {
            s.error(&p, "value", e.to_string());
            o.failed = true;
            None
        }
        None => {
            s.error(
                &p,
                "type",
                format!("expected a string, found {}", type_name(v)),
            );
            o.failed = true;
            None
        }
    }
}

/// A required enum-valued field; invalid values are reported under the `invalid-enum` check.
pub(crate) fn enum_field<T: std::str::FromStr>(
    o: &mut Obj<'_>,
    s: &mut Sink,
    key: &'static str,
    allowed: &str,
) -> Option<T> {
    match o.raw(key) {
        None => {
            s.error(
                &o.path.key(key),
                "required",
                format!("missing required key {key:?}"),
            );
            o.failed = true;
            None
        }
        Some((v, p)) => {
            let r = enum_value(v, &p, s, allowed);
            if r.is_none() {
                o.failed = true;
            }
            r
        }
    }
}

pub(crate) fn enum_value<T: std::str::FromStr>(
    v: &Json<'_>,
    p: &JsonPath,
    s: &mut Sink,
    allowed: &str,
) -> Option<T> {
    match v.as_str() {
        Some(x) => match x.parse::<T>() {
            Ok(t) => Some(t),
            Err(_) => {
                s.error(p, "invalid-enum", format!("{x:?} is not one of: {allowed}"));
                None
            }
        },
        None => {
            s.error(
                p,
                "type",
                format!("expected a string, found {}", type_name(v)),
            );
            None
        }
    }
}

/// `firewall: {enabled, rules[]}` of a guest.
pub(crate) fn parse_guest_firewall(o: &mut Obj<'_>, s: &mut Sink) -> Option<GuestFirewall> {
    let mut fw = o.obj(s, "firewall")?;
    let enabled = fw.opt_bool(s, "enabled").unwrap_or(false);
    let mut rules = Vec::new();
    for (v, p) in fw.arr(s, "rules") {
        match parse_rule(v, p, s) {
            Some(r) => rules.push(r),
            None => o.failed = true,
        }
    }
    fw.extra(s, &[]);
    Some(GuestFirewall { enabled, rules })
}

/// A site script named relative to the scripts dir (`application_script`, a test's `path`, a
/// health check's `script`): ASCII letters, digits, '.', '_', '-' and '+' in '/'-separated
/// segments, never absolute and never `..`. phx runs scripts as argv, but the name must not
/// reach a file outside the scripts dir or hold characters a shell would read.
pub(crate) fn script_path(v: &Json<'_>, p: &JsonPath, s: &mut Sink) -> Option<String> {
    let Json::String(x) = v else {
        s.error(
            p,
            "type",
            format!("expected a string, found {}", type_name(v)),
        );
        return None;
    };
    let ok = !x.starts_with('/')
        && x.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+'))
        });
    if ok {
        Some(x.to_string())
    } else {
        s.error(
            p,
            "value",
            format!("{x:?} is not a script path under the scripts dir (relative, no '..'; letters, digits, '.', '_', '-', '+' and '/')"),
        );
        None
    }
}

/// A name phx writes into a Proxmox property string (`bridge=vmbr0`, `name=eth0`,
/// `import-from=...`): ASCII letters, digits, '-', '_' and '.' (Proxmox's `pve-bridge-id`
/// pattern), so it can neither end its item (',') nor add a key of its own ('=').
pub(crate) fn plain_name(
    o: &mut Obj<'_>,
    s: &mut Sink,
    key: &'static str,
    what: &str,
) -> Option<String> {
    let (v, p) = o.raw(key)?;
    let Json::String(x) = v else {
        s.error(
            &p,
            "type",
            format!("expected a string, found {}", type_name(v)),
        );
        o.failed = true;
        return None;
    };
    let ok = !x.is_empty()
        && x.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Some(x.to_string())
    } else {
        s.error(
            &p,
            "value",
            format!("{x:?} is not {what} (letters, digits, '-', '_' and '.')"),
        );
        o.failed = true;
        None
    }
}

/// `tests: {suite: [{name, type, path}]}`.
pub(crate) fn parse_tests(o: &mut Obj<'_>, s: &mut Sink) -> BTreeMap<String, Vec<TestCase>> {
    let mut out = BTreeMap::new();
    let Some((v, p)) = o.raw("tests") else {
        return out;
    };
    let Some(map) = v.as_object() else {
        s.error(
            &p,
            "type",
            format!("expected an object of test suites, found {}", type_name(v)),
        );
        o.failed = true;
        return out;
    };
    for (suite, list) in map {
        let sp = p.key(suite);
        let Some(items) = list.as_array() else {
            s.error(
                &sp,
                "type",
                format!("expected an array of tests, found {}", type_name(list)),
            );
            o.failed = true;
            continue;
        };
        let mut cases = Vec::new();
        for (i, it) in items.iter().enumerate() {
            let Some(mut t) = Obj::of(it, sp.index(i), s) else {
                o.failed = true;
                continue;
            };
            let name = t.req_str(s, "name");
            let kind = t.opt_str(s, "type").unwrap_or_else(|| "script".into());
            let path = match t.raw("path") {
                Some((v, p)) => script_path(v, &p, s),
                None => t.req_str(s, "path"),
            };
            t.failed |= path.is_none();
            if kind != "script" {
                s.error(
                    &t.path.key("type"),
                    "invalid-enum",
                    format!("{kind:?} is not one of: script"),
                );
                t.failed = true;
            }
            let failed = t.failed;
            t.extra(s, &[]);
            match (name, path) {
                (Some(name), Some(path)) if !failed => cases.push(TestCase { name, kind, path }),
                _ => o.failed = true,
            }
        }
        out.insert(suite.to_string(), cases);
    }
    out
}

pub(crate) fn parse_health_check(o: &mut Obj<'_>, s: &mut Sink) -> Option<HealthCheck> {
    let mut h = o.obj(s, "health_check")?;
    let command = h.req_str(s, "command");
    let retries = h.opt_uint(s, "retries").unwrap_or(3);
    let interval = h.opt_uint(s, "interval").unwrap_or(5);
    if retries == 0 {
        s.error(
            &h.path.key("retries"),
            "non-positive",
            "retries must be at least 1",
        );
        h.failed = true;
    }
    let failed = h.failed;
    h.extra(s, &[]);
    if failed {
        o.failed = true;
        return None;
    }
    Some(HealthCheck {
        command: command?,
        retries: retries.min(1000) as u32,
        interval: interval.min(86_400) as u32,
    })
}

pub(crate) fn parse_host_checks(o: &mut Obj<'_>, s: &mut Sink) -> Vec<HostCheck> {
    let mut out = Vec::new();
    for (v, p) in o.arr(s, "health_checks") {
        let Some(mut h) = Obj::of(v, p, s) else {
            continue;
        };
        let script = match h.raw("script") {
            Some((v, p)) => script_path(v, &p, s),
            None => h.req_str(s, "script"),
        };
        if script.is_none() {
            o.failed = true;
        }
        let name = h
            .opt_str(s, "name")
            .or_else(|| script.clone())
            .unwrap_or_default();
        let args = h
            .str_or_list(s, "args")
            .into_iter()
            .map(|(a, _)| a)
            .collect();
        h.extra(s, &[]);
        if let Some(script) = script {
            out.push(HostCheck { name, script, args });
        }
    }
    out
}

pub(crate) fn parse_traefik(o: &mut Obj<'_>, s: &mut Sink) -> Option<TraefikService> {
    let mut t = o.obj(s, "traefik_service")?;
    let name = t.req_str(s, "name");
    let port = t.req_uint(s, "port");
    t.extra(s, &[]);
    Some(TraefikService {
        name: name?,
        port: port?,
    })
}
