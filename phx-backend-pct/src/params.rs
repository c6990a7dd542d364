//! What phx sends to Proxmox, built once for both backends: `pvesh create --key value` and the
//! API's form fields carry the same parameter names and values.

use phx_core::backend::{ExecRequest, FirewallOptions};
use phx_core::types::FirewallRule;

fn bool01(b: bool) -> String {
    if b { "1" } else { "0" }.to_string()
}

/// `PUT .../firewall/options`: the values that are set, and `delete` naming the others.
pub fn firewall_options(o: &FirewallOptions) -> Vec<(&'static str, String)> {
    let mut p = Vec::new();
    let mut delete = Vec::new();
    match o.enable {
        Some(e) => p.push(("enable", bool01(e))),
        None => delete.push("enable"),
    }
    for (k, v) in [("policy_in", &o.policy_in), ("policy_out", &o.policy_out)] {
        match v {
            Some(v) => p.push((k, v.clone())),
            None => delete.push(k),
        }
    }
    if !delete.is_empty() {
        p.push(("delete", delete.join(",")));
    }
    p
}

/// `POST .../firewall/rules`: one rule at position `pos`.
pub fn firewall_rule(r: &FirewallRule, pos: usize) -> Vec<(&'static str, String)> {
    let mut p = vec![
        ("pos", pos.to_string()),
        ("type", r.direction.to_string()),
        ("action", r.action.to_string()),
        ("enable", bool01(r.enable)),
    ];
    let opt = [
        ("proto", r.proto.as_ref().map(ToString::to_string)),
        ("dport", r.dport.as_ref().map(ToString::to_string)),
        ("sport", r.sport.as_ref().map(ToString::to_string)),
        ("source", r.source.clone()),
        ("dest", r.dest.clone()),
        ("iface", r.iface.clone()),
        ("comment", r.comment.clone()),
    ];
    p.extend(opt.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
    p
}

/// The command line of `req` for a runner that takes no environment of its own (`pct exec`,
/// the guest agent): `env K=V ... argv`, or just the argv when there is no environment.
pub fn command_with_env(req: &ExecRequest) -> Vec<String> {
    let mut a = Vec::new();
    if !req.env.is_empty() {
        a.push("env".to_string());
        a.extend(req.env.iter().map(|(k, v)| format!("{k}={v}")));
    }
    a.extend(req.argv.iter().cloned());
    a
}

/// One write of a firewall rule replacement, under `<base>/rules`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleWrite {
    /// `DELETE <base>/rules/<pos>`.
    Delete {
        /// The rule's position.
        pos: usize,
    },
    /// `POST <base>/rules` with these parameters.
    Create(Vec<(&'static str, String)>),
}

/// The writes that turn the rules `have` into `want`: none when they are equal; otherwise
/// delete every rule from the last position up (the positions of the others do not move),
/// then add each wanted rule at its position.
pub fn replace_rules(have: &[FirewallRule], want: &[FirewallRule]) -> Vec<RuleWrite> {
    if have == want {
        return Vec::new();
    }
    (0..have.len())
        .rev()
        .map(|pos| RuleWrite::Delete { pos })
        .chain(
            want.iter()
                .enumerate()
                .map(|(pos, r)| RuleWrite::Create(firewall_rule(r, pos))),
        )
        .collect()
}
