use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{Cidr, ParseError};

/// Rule direction (`type` in Proxmox).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FirewallDirection {
    /// Incoming traffic.
    In,
    /// Outgoing traffic.
    Out,
}

impl FromStr for FirewallDirection {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("in") {
            Ok(Self::In)
        } else if s.eq_ignore_ascii_case("out") {
            Ok(Self::Out)
        } else {
            Err(ParseError::new(s, "a firewall rule type (in or out)"))
        }
    }
}
impl fmt::Display for FirewallDirection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::In => "in",
            Self::Out => "out",
        })
    }
}

/// Rule verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum FirewallAction {
    /// Let the packet through.
    Accept,
    /// Silently drop it.
    Drop,
    /// Drop it and tell the sender.
    Reject,
}

impl FromStr for FirewallAction {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            (Self::Accept, "ACCEPT"),
            (Self::Drop, "DROP"),
            (Self::Reject, "REJECT"),
        ]
        .into_iter()
        .find(|(_, name)| name.eq_ignore_ascii_case(s))
        .map(|(action, _)| action)
        .ok_or_else(|| ParseError::new(s, "a firewall action (ACCEPT, DROP or REJECT)"))
    }
}
impl fmt::Display for FirewallAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Accept => "ACCEPT",
            Self::Drop => "DROP",
            Self::Reject => "REJECT",
        })
    }
}

/// An IP protocol as Proxmox accepts it: a name from `/etc/protocols` or a number.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Protocol(String);

const PROTOCOLS: &[&str] = &[
    "tcp",
    "udp",
    "icmp",
    "icmpv6",
    "ipv6-icmp",
    "igmp",
    "esp",
    "ah",
    "gre",
    "sctp",
    "udplite",
    "ipip",
    "ipv6",
    "ospf",
    "vrrp",
    "pim",
    "l2tp",
    "dccp",
    "egp",
    "rsvp",
    "encap",
    "mpls-in-ip",
    "etherip",
];

impl FromStr for Protocol {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let l = s.trim().to_ascii_lowercase();
        let numeric = !l.is_empty()
            && l.len() <= 3
            && l.bytes().all(|b| b.is_ascii_digit())
            && l.parse::<u16>().is_ok_and(|n| n <= 255);
        if numeric || PROTOCOLS.contains(&l.as_str()) {
            Ok(Self(l))
        } else {
            Err(ParseError::new(
                s,
                "a protocol (tcp, udp, icmp, ... or a number 0-255)",
            ))
        }
    }
}
impl TryFrom<String> for Protocol {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}
impl From<Protocol> for String {
    fn from(p: Protocol) -> String {
        p.0
    }
}
impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl Protocol {
    /// Whether ports are meaningful for this protocol.
    pub fn has_ports(&self) -> bool {
        matches!(
            self.0.as_str(),
            "tcp" | "udp" | "sctp" | "udplite" | "dccp" | "6" | "17"
        )
    }
}

/// A port list (`80`, `80,443`, `8000:8100`, `ssh`), normalised without spaces.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PortSpec(String);

fn valid_port(p: &str) -> bool {
    if p.bytes().all(|b| b.is_ascii_digit()) {
        return p.parse::<u32>().is_ok_and(|n| (1..=65535).contains(&n));
    }
    // service name from /etc/services
    let b = p.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphabetic()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

impl FromStr for PortSpec {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || {
            ParseError::new(
                s,
                "a port list (e.g. 80, 80,443 or 8000:8100; ports 1-65535)",
            )
        };
        let valid = |item: &str| match item.split_once(':') {
            Some((a, b)) => valid_port(a) && valid_port(b),
            None => valid_port(item),
        };
        normalised_list(s, valid).map(Self).ok_or_else(err)
    }
}
impl TryFrom<String> for PortSpec {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}
impl From<PortSpec> for String {
    fn from(p: PortSpec) -> String {
        p.0
    }
}
impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Validate a firewall address list: IPs, CIDRs, ranges, aliases, `+ipset` names.
pub(crate) fn check_address(s: &str) -> Result<String, ParseError> {
    let err = || {
        ParseError::new(
            s,
            "a firewall address (IP, CIDR, a.b.c.d-e.f.g.h range, alias or +ipset, comma-separated)",
        )
    };
    let valid = |item: &str| {
        if let Some(set) = item.strip_prefix('+') {
            is_ident(set)
        } else if item.contains('/') {
            item.parse::<Cidr>().is_ok()
        } else if let Some((a, b)) = item
            .split_once('-')
            .filter(|(a, _)| a.parse::<Ipv4Addr>().is_ok())
        {
            a.parse::<Ipv4Addr>().is_ok() && b.parse::<Ipv4Addr>().is_ok()
        } else {
            item.parse::<Ipv4Addr>().is_ok() || is_ident(item)
        }
    };
    normalised_list(s, valid).ok_or_else(err)
}

/// A comma-separated list with every item trimmed and valid, joined again without spaces.
fn normalised_list(s: &str, valid: impl Fn(&str) -> bool) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    for item in s.split(',').map(str::trim) {
        if !valid(item) {
            return None;
        }
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(item);
    }
    Some(out)
}

fn is_ident(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphabetic()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_'))
        && !s.bytes().all(|c| c.is_ascii_digit() || c == b'.')
}

/// One firewall rule in the form Proxmox stores it (`type`, `action`, `proto`, `dport`, ...).
///
/// Equality compares normalised fields, so a rule read back from Proxmox equals the one phx wrote.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FirewallRule {
    /// `in` or `out`.
    #[serde(rename = "type")]
    pub direction: FirewallDirection,
    /// `ACCEPT`, `DROP`, `REJECT`.
    pub action: FirewallAction,
    /// Whether the rule is active.
    pub enable: bool,
    /// Protocol, if restricted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proto: Option<Protocol>,
    /// Destination ports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dport: Option<PortSpec>,
    /// Source ports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sport: Option<PortSpec>,
    /// Source address list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Destination address list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dest: Option<String>,
    /// Interface (`net0`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iface: Option<String>,
    /// Free-text comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

impl FirewallRule {
    /// Checked constructor for the address fields.
    pub fn check_address(s: &str) -> Result<String, ParseError> {
        check_address(s)
    }

    /// A one-line human form: `in ACCEPT tcp dport 80,443 from 10.0.0.10`.
    pub fn summary(&self) -> String {
        let mut s = format!("{} {}", self.direction, self.action);
        if let Some(p) = &self.proto {
            s.push_str(&format!(" {p}"));
        }
        if let Some(p) = &self.sport {
            s.push_str(&format!(" sport {p}"));
        }
        if let Some(p) = &self.dport {
            s.push_str(&format!(" dport {p}"));
        }
        if let Some(p) = &self.source {
            s.push_str(&format!(" from {p}"));
        }
        if let Some(p) = &self.dest {
            s.push_str(&format!(" to {p}"));
        }
        if let Some(i) = &self.iface {
            s.push_str(&format!(" on {i}"));
        }
        if !self.enable {
            s.push_str(" (disabled)");
        }
        s
    }

    /// [`Self::summary`] with the comment, so rules that differ only there read differently.
    pub(crate) fn describe(&self) -> String {
        match &self.comment {
            Some(c) => format!("{} ({c:?})", self.summary()),
            None => self.summary(),
        }
    }

    /// The fields in which this rule (as found) differs from `want`:
    /// `dport 2222 instead of 22`, `source (unset) instead of 10.0.0.0/24`.
    pub fn differences(&self, want: &FirewallRule) -> Vec<String> {
        fn opt(v: Option<&impl fmt::Display>) -> String {
            v.map_or_else(|| "(unset)".to_string(), ToString::to_string)
        }
        fn quoted(v: Option<&String>) -> String {
            v.map_or_else(|| "(unset)".to_string(), |c| format!("{c:?}"))
        }
        let fields = [
            (
                "type",
                self.direction.to_string(),
                want.direction.to_string(),
            ),
            ("action", self.action.to_string(), want.action.to_string()),
            (
                "enable",
                u8::from(self.enable).to_string(),
                u8::from(want.enable).to_string(),
            ),
            ("proto", opt(self.proto.as_ref()), opt(want.proto.as_ref())),
            ("sport", opt(self.sport.as_ref()), opt(want.sport.as_ref())),
            ("dport", opt(self.dport.as_ref()), opt(want.dport.as_ref())),
            (
                "source",
                opt(self.source.as_ref()),
                opt(want.source.as_ref()),
            ),
            ("dest", opt(self.dest.as_ref()), opt(want.dest.as_ref())),
            ("iface", opt(self.iface.as_ref()), opt(want.iface.as_ref())),
            (
                "comment",
                quoted(self.comment.as_ref()),
                quoted(want.comment.as_ref()),
            ),
        ];
        fields
            .into_iter()
            .filter(|(_, have, want)| have != want)
            .map(|(name, have, want)| format!("{name} {have} instead of {want}"))
            .collect()
    }
}

/// How the rules found (`have`) differ from the wanted ones, one item per rule: `- RULE` for a
/// rule found but not wanted, `+ RULE` for a wanted rule that is missing (a changed rule is
/// both); `same rules in another order` when only the order differs. Empty when equal.
pub fn rule_changes(have: &[FirewallRule], want: &[FirewallRule]) -> Vec<String> {
    // match as multisets: each wanted rule takes one equal rule found
    let mut unmatched: Vec<Option<&FirewallRule>> = have.iter().map(Some).collect();
    let mut added = Vec::new();
    for w in want {
        match unmatched.iter_mut().find(|h| h.is_some_and(|h| h == w)) {
            Some(h) => *h = None,
            None => added.push(w),
        }
    }
    let mut out: Vec<String> = unmatched
        .into_iter()
        .flatten()
        .map(|r| format!("- {}", r.describe()))
        .collect();
    out.extend(added.into_iter().map(|r| format!("+ {}", r.describe())));
    if out.is_empty() && have != want {
        out.push("same rules in another order".into());
    }
    out
}
