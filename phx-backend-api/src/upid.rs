//! Proxmox task ids: `UPID:node:pid:pstart:starttime:type:id:user:` (proxmox-api.md A.5).

use std::fmt;
use std::str::FromStr;

/// A parsed UPID. The node is where the task runs and where its status is polled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upid {
    /// The node the task runs on.
    pub node: String,
    /// Worker pid.
    pub pid: u32,
    /// Worker process start time (clock ticks; 8 or 9 hex digits).
    pub pstart: u64,
    /// Start time, epoch seconds.
    pub starttime: i64,
    /// Task type (`vzcreate`, `qmstart`, ...).
    pub kind: String,
    /// Task id (usually the guest id; may be empty).
    pub id: String,
    /// The user (`root@pam`, or `root@pam!phx` for a token).
    pub user: String,
    raw: String,
}

/// Why a string is not a UPID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a Proxmox task id (UPID): {0:?}")]
pub struct UpidError(pub String);

/// `min..=max` hex digits, and nothing else (`from_str_radix` alone takes a leading '+').
fn hex(s: &str, min: usize, max: usize) -> Option<u64> {
    ((min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u64::from_str_radix(s, 16).ok())
        .flatten()
}

fn field_ok(s: &str) -> bool {
    !s.contains(|c: char| c == '/' || c.is_whitespace() || c.is_control())
}

/// At most this much of a bad input is kept in an error (a server can send megabytes).
const SHOWN: usize = 120;

/// `s`, or its start and its length when it is long.
pub(crate) fn excerpt(s: &str) -> String {
    if s.len() <= SHOWN {
        return s.to_string();
    }
    let mut end = SHOWN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &s[..end], s.len())
}

impl FromStr for Upid {
    type Err = UpidError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || UpidError(excerpt(s));
        let parts: Vec<&str> = s.split(':').collect();
        let ["UPID", node, pid, pstart, starttime, kind, id, user, ""] = parts.as_slice() else {
            return Err(bad());
        };
        let node_ok = !node.is_empty()
            && node.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !node.starts_with('-')
            && !node.ends_with('-');
        if !node_ok
            || kind.is_empty()
            || user.is_empty()
            || ![kind, id, user].iter().all(|f| field_ok(f))
        {
            return Err(bad());
        }
        Ok(Self {
            node: (*node).to_string(),
            pid: hex(pid, 8, 8)
                .and_then(|p| u32::try_from(p).ok())
                .ok_or_else(bad)?,
            pstart: hex(pstart, 8, 9).ok_or_else(bad)?,
            starttime: hex(starttime, 8, 8)
                .and_then(|t| i64::try_from(t).ok())
                .ok_or_else(bad)?,
            kind: (*kind).to_string(),
            id: (*id).to_string(),
            user: (*user).to_string(),
            raw: s.to_string(),
        })
    }
}

impl Upid {
    /// The UPID as Proxmox printed it.
    pub fn as_str(&self) -> &str {
        &self.raw
    }
}

impl fmt::Display for Upid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_upids_parse() {
        let u: Upid = "UPID:proxmox2:000D7AA2:08D5A17C:63DF62A5:vzclone:200:root@pam!api_token:"
            .parse()
            .unwrap();
        assert_eq!(
            (
                u.node.as_str(),
                u.pid,
                u.kind.as_str(),
                u.id.as_str(),
                u.user.as_str()
            ),
            (
                "proxmox2",
                0x000D_7AA2,
                "vzclone",
                "200",
                "root@pam!api_token"
            )
        );
        assert_eq!(u.starttime, 0x63DF_62A5);
        let nine: Upid = "UPID:pve:00001234:1ABCDEF01:66DC5987:download::root@pam:"
            .parse()
            .unwrap();
        assert_eq!((nine.pstart, nine.id.as_str()), (0x1_ABCD_EF01, ""));
        assert_eq!(nine.to_string(), nine.as_str());
    }

    #[test]
    fn a_huge_bad_upid_is_quoted_in_part() {
        let huge = format!("UPID:{}", "x".repeat(100_000));
        let e = huge.parse::<Upid>().unwrap_err().to_string();
        assert!(e.len() < 200, "{e}");
        assert!(e.ends_with("… (100005 bytes)\""), "{e}");
    }

    #[test]
    fn garbage_is_not_a_upid() {
        for s in [
            "",
            "UPID:pve:1:2:3:vzstart:100:root@pam:",
            "UPID:pve:00001234:00005678:66DC5987:vzstart:100:root@pam",
            "UPID:-pve:00001234:00005678:66DC5987:vzstart:100:root@pam:",
            "UPID:pve:00001234:00005678:66DC5987::100:root@pam:",
            "TASK:pve:00001234:00005678:66DC5987:vzstart:100:root@pam:",
            // found by the api_response fuzz target: a sign before the pid, NULs in the id
            "UPID:pve:+0001234:00005678:66DC5987:vzcreate:101:root@pam:",
            "UPID:pve:00001234:00005678:66DC5987:vzcreate:\u{0}\u{0}1:root@pam:",
        ] {
            assert!(s.parse::<Upid>().is_err(), "{s}");
        }
    }
}
