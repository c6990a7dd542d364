//! From the `data` of Proxmox's answers to phx-core values. The guest, storage, node and task
//! mappers are phx-backend-pct's JSON mappers (`pvesh get --output-format json` prints the
//! same `data` the API sends), so both backends read Proxmox the same way; the rest is here.
//! Every mapper tolerates numbers sent as strings (`"vmid":"100"`, `"template":""`).

use std::str::FromStr;

use phx_core::backend::FirewallOptions;
use phx_core::types::{FirewallAction, FirewallDirection, FirewallRule, PortSpec, Protocol};
use serde_json::Value;

pub use phx_backend_pct::parse::{
    ParseError, TaskStatus, active_tasks, agent_file_content, flag, guest_config, guest_status,
    nodes, number, resources, snapshots, storages, task_status, text, version, volumes,
};

pub use crate::client::{parse_ticket, task_log_lines};

fn perr(what: &str, reason: impl Into<String>) -> ParseError {
    ParseError {
        what: what.into(),
        reason: reason.into(),
    }
}

fn list<'a>(v: &'a Value, what: &str) -> Result<&'a [Value], ParseError> {
    v.as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| perr(what, "not a list"))
}

fn nonempty(v: &Value) -> Option<String> {
    text(v).filter(|s| !s.is_empty())
}

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

/// A guest-agent command's state (`GET .../agent/exec-status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentExecStatus {
    /// Still running (`exited: 0`).
    Running,
    /// Finished.
    Exited {
        /// Exit code (`-1` when killed by a signal).
        code: i32,
        /// Standard output (already decoded by Proxmox).
        out: String,
        /// Standard error.
        err: String,
    },
}

/// `GET .../agent/exec-status` → [`AgentExecStatus`].
pub fn agent_exec_status(v: &Value) -> AgentExecStatus {
    if !flag(&v["exited"]) {
        return AgentExecStatus::Running;
    }
    let code = match &v["exitcode"] {
        Value::Number(n) => n.as_i64().and_then(|c| i32::try_from(c).ok()).unwrap_or(-1),
        Value::String(s) => s.trim().parse().unwrap_or(-1),
        _ => -1,
    };
    AgentExecStatus::Exited {
        code,
        out: text(&v["out-data"]).unwrap_or_default(),
        err: text(&v["err-data"]).unwrap_or_default(),
    }
}

/// `POST .../agent/exec` → the guest pid.
pub fn agent_pid(v: &Value) -> Result<u64, ParseError> {
    number(&v["pid"]).ok_or_else(|| perr("agent exec", format!("no pid in {v}")))
}

/// `GET /nodes/{n}/aplinfo` → template file names.
pub fn aplinfo(v: &Value) -> Result<Vec<String>, ParseError> {
    Ok(list(v, "appliance index")?
        .iter()
        .filter_map(|a| nonempty(&a["template"]))
        .collect())
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

/// `GET /cluster/status` → the node that answered (`local: 1`).
pub fn local_node(v: &Value) -> Option<String> {
    v.as_array()?
        .iter()
        .find(|e| e["type"].as_str() == Some("node") && flag(&e["local"]))
        .and_then(|e| nonempty(&e["name"]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn firewall_rules_read_in_position_order() {
        let v = json!([
            {"pos": 1, "type": "out", "action": "DROP", "enable": 0, "dest": "10.9.9.9", "digest": "x"},
            {"pos": "0", "type": "in", "action": "ACCEPT", "enable": "1", "proto": "tcp", "dport": "22, 80", "source": "10.0.0.0/24", "ipversion": 4}
        ]);
        let r = fw_rules(&v).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].summary(), "in ACCEPT tcp dport 22,80 from 10.0.0.0/24");
        assert_eq!(r[1].summary(), "out DROP to 10.9.9.9 (disabled)");
        assert!(fw_rules(&json!([{"type": "group", "action": "x"}])).is_err());
    }

    #[test]
    fn agent_status_running_and_exited() {
        assert_eq!(
            agent_exec_status(&json!({"exited": 0})),
            AgentExecStatus::Running
        );
        assert_eq!(
            agent_exec_status(&json!({"exited": 1, "exitcode": 3, "out-data": "o"})),
            AgentExecStatus::Exited {
                code: 3,
                out: "o".into(),
                err: String::new()
            }
        );
    }

    #[test]
    fn the_local_node_answers_cluster_status() {
        let v = json!([
            {"type": "cluster", "name": "c", "nodes": 2, "quorate": 1},
            {"type": "node", "name": "pve1", "local": 0, "online": 1},
            {"type": "node", "name": "pve2", "local": 1, "online": 1}
        ]);
        assert_eq!(local_node(&v).as_deref(), Some("pve2"));
    }
}
