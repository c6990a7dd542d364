//! From the `data` of Proxmox's answers to phx-core values. The mappers are phx-backend-pct's
//! JSON mappers (`pvesh get --output-format json` prints the same `data` the API sends), so
//! both backends read Proxmox the same way; only what pvesh never reads (the guest agent's
//! exec status, the answering node) is here.
//! Every mapper tolerates numbers sent as strings (`"vmid":"100"`, `"template":""`).

use serde_json::Value;

pub use phx_backend_pct::parse::{
    ParseError, TaskStatus, acl, active_tasks, agent_file_content, aplinfo, bridges, dns, flag,
    fw_options, fw_rules, guest_config, guest_status, nodes, number, resources, snapshots,
    storages, task_status, text, timezone, users, version, volumes,
};

pub use crate::client::{parse_ticket, task_log_lines};

fn perr(what: &str, reason: impl Into<String>) -> ParseError {
    ParseError {
        what: what.into(),
        reason: reason.into(),
    }
}

fn nonempty(v: &Value) -> Option<String> {
    text(v).filter(|s| !s.is_empty())
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
