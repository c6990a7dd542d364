use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::ParseError;

/// A Proxmox guest id (VMID), shared by containers and VMs: 100..=999_999_999.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct GuestId(u32);

impl GuestId {
    /// Smallest id Proxmox accepts.
    pub const MIN: u32 = 100;
    /// Largest id Proxmox accepts.
    pub const MAX: u32 = 999_999_999;

    /// Checked constructor.
    pub fn new(id: u64) -> Result<Self, ParseError> {
        if (u64::from(Self::MIN)..=u64::from(Self::MAX)).contains(&id) {
            Ok(Self(id as u32))
        } else {
            Err(ParseError::new(
                id.to_string(),
                "a guest id (100..=999999999)",
            ))
        }
    }

    /// The numeric value.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl FromStr for GuestId {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.is_empty()
            || !t.bytes().all(|b| b.is_ascii_digit())
            || (t.len() > 1 && t.starts_with('0'))
        {
            return Err(ParseError::new(s, "a guest id (100..=999999999)"));
        }
        let n: u64 = t
            .parse()
            .map_err(|_| ParseError::new(s, "a guest id (100..=999999999)"))?;
        Self::new(n)
    }
}

impl TryFrom<u64> for GuestId {
    type Error = ParseError;
    fn try_from(v: u64) -> Result<Self, Self::Error> {
        Self::new(v)
    }
}

impl From<GuestId> for u64 {
    fn from(v: GuestId) -> u64 {
        u64::from(v.0)
    }
}

impl fmt::Display for GuestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Container or virtual machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GuestKind {
    /// An LXC container (`pct`).
    Lxc,
    /// A QEMU virtual machine (`qm`).
    Vm,
}

impl GuestKind {
    /// The word Proxmox uses in messages: `CT` or `VM`.
    pub fn proxmox_word(self) -> &'static str {
        match self {
            GuestKind::Lxc => "CT",
            GuestKind::Vm => "VM",
        }
    }

    /// The CLI noun / API path segment: `lxc` or `vm` (API uses `qemu`).
    pub fn noun(self) -> &'static str {
        match self {
            GuestKind::Lxc => "lxc",
            GuestKind::Vm => "vm",
        }
    }
}

impl fmt::Display for GuestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.noun())
    }
}
