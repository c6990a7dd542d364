use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::ParseError;

const K: u64 = 1024;
const M: u64 = K * 1024;
const G: u64 = M * 1024;
const T: u64 = G * 1024;

/// A disk size in bytes, parsed from and printed in Proxmox's `format_size` form (`8G`, `512M`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DiskSize(u64);

impl DiskSize {
    /// A size of `gib` GiB.
    pub fn from_gib(gib: u64) -> Self {
        Self(gib.saturating_mul(G))
    }
    /// The size in bytes.
    pub fn bytes(self) -> u64 {
        self.0
    }
    /// The size in bytes.
    pub fn from_bytes(b: u64) -> Self {
        Self(b)
    }
    /// The size in whole GiB, rounded up.
    pub fn gib_ceil(self) -> u64 {
        self.0.div_ceil(G)
    }
}

impl FromStr for DiskSize {
    type Err = ParseError;
    /// Accepts `123`, `8G`, `512M`, `1.5T`, `100K` (binary units, as Proxmox).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || {
            ParseError::new(
                s,
                "a size (expected a number with an optional K, M, G or T suffix)",
            )
        };
        let t = s.trim();
        let (num, mult) = match t.as_bytes().last() {
            Some(b'K' | b'k') => (&t[..t.len() - 1], K),
            Some(b'M' | b'm') => (&t[..t.len() - 1], M),
            Some(b'G' | b'g') => (&t[..t.len() - 1], G),
            Some(b'T' | b't') => (&t[..t.len() - 1], T),
            Some(_) => (t, 1),
            None => return Err(err()),
        };
        if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return Err(err());
        }
        if let Ok(n) = num.parse::<u64>() {
            return n.checked_mul(mult).map(Self).ok_or_else(err);
        }
        let f: f64 = num.parse().map_err(|_| err())?;
        if !f.is_finite() || f < 0.0 {
            return Err(err());
        }
        Ok(Self((f * mult as f64).round() as u64))
    }
}

impl fmt::Display for DiskSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        for (unit, sfx) in [(T, "T"), (G, "G"), (M, "M"), (K, "K")] {
            if b >= unit && b.is_multiple_of(unit) {
                return write!(f, "{}{}", b / unit, sfx);
            }
        }
        write!(f, "{b}")
    }
}
impl TryFrom<String> for DiskSize {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}
impl From<DiskSize> for String {
    fn from(d: DiskSize) -> String {
        d.to_string()
    }
}
