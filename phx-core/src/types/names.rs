use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::ParseError;

macro_rules! string_newtype {
    ($(#[$m:meta])* $name:ident, $check:path, $expected:literal) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Checked constructor.
            pub fn new(s: impl Into<String>) -> Result<Self, ParseError> {
                let s = s.into();
                if $check(&s) { Ok(Self(s)) } else { Err(ParseError::new(s, $expected)) }
            }
            /// The validated string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl FromStr for $name {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }
        impl TryFrom<String> for $name {
            type Error = ParseError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

fn is_dns_label(l: &str) -> bool {
    let b = l.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

/// Proxmox `dns-name`: dot-separated labels of letters, digits and inner hyphens.
fn is_dns_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// Proxmox `pve-storage-id`: `^[a-z][a-z0-9\-_.]*[a-z0-9]$`, case-insensitive.
fn is_storage_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphabetic()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// Proxmox `pve-configid` as used for snapshot names: `^[a-z][a-z0-9_-]+$`, case-insensitive,
/// and never the reserved `current`.
fn is_snapshot_name(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2
        && b.len() <= 40
        && b[0].is_ascii_alphabetic()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_'))
        && s != "current"
}

string_newtype!(
    /// A guest hostname (`dns-name`): `Traefik-Internal`, `granite-3.3-8b-fp8`.
    Hostname,
    is_dns_name,
    "a hostname (letters, digits and inner hyphens, dot-separated labels of at most 63 characters)"
);
string_newtype!(
    /// A cluster node name (one DNS label): `pve`, `pve-2`.
    NodeName,
    is_dns_label,
    "a node name (letters, digits and inner hyphens)"
);
string_newtype!(
    /// A Proxmox storage id: `local-lvm`, `quickOS-lxc-disks`.
    StorageId,
    is_storage_id,
    "a storage id (starts with a letter; letters, digits, '-', '_', '.')"
);
string_newtype!(
    /// A snapshot name (`pve-configid`, not `current`): `final-form`, `initial_clean_state`.
    SnapshotName,
    is_snapshot_name,
    "a snapshot name (starts with a letter; letters, digits, '-', '_'; 2-40 characters; not 'current')"
);
