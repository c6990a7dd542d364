//! Proxmox property strings (`net0`, `rootfs`, `mpN`, `features`, `startup`, QEMU `netN`,
//! `scsiN`, `ipconfigN`): typed values with `parse` and a `Display` that prints the canonical
//! form Proxmox stores (default key first, then required keys, then the rest sorted).
//!
//! Proxmox rewrites what it is sent into this form, so the engine always compares *parsed*
//! values, never raw strings.

mod lxc;
mod qemu;

use std::collections::BTreeMap;
use std::fmt;

pub use lxc::{LxcFeatures, LxcNet, MountPoint, NetIp, Startup};
pub use qemu::{IpConfig, QemuDisk, QemuNet};

/// A property string that failed to parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: {reason}")]
pub struct PropError {
    /// Which property (`net0`).
    pub what: &'static str,
    /// The input.
    pub value: String,
    /// What is wrong.
    pub reason: String,
}

/// The raw key/value pairs of a property string, with the default key resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Pairs(pub BTreeMap<String, String>);

impl Pairs {
    /// Split `a=1,b=2` (and one key-less item for `default_key`).
    pub(crate) fn parse(
        what: &'static str,
        s: &str,
        default_key: Option<&str>,
    ) -> Result<Self, PropError> {
        let mut map = BTreeMap::new();
        let err = |reason: String| PropError {
            what,
            value: s.to_string(),
            reason,
        };
        for (i, item) in s.split(',').enumerate() {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let (k, v) = match item.split_once('=') {
                Some((k, v)) => (k.trim().to_string(), v.trim().to_string()),
                None => match default_key {
                    Some(dk) if i == 0 => (dk.to_string(), item.to_string()),
                    _ => {
                        return Err(err(format!(
                            "item {item:?} has no '=' and {what} has no default key here"
                        )));
                    }
                },
            };
            if map.insert(k.clone(), v).is_some() {
                return Err(err(format!("duplicate key {k:?}")));
            }
        }
        Ok(Self(map))
    }

    pub(crate) fn take(&mut self, k: &str) -> Option<String> {
        self.0.remove(k)
    }
}

/// Parse a Proxmox boolean inside a property string (`1|0|on|off|yes|no|true|false`).
pub(crate) fn parse_bool(what: &'static str, v: &str) -> Result<bool, PropError> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "on" | "yes" | "true" => Ok(true),
        "0" | "off" | "no" | "false" => Ok(false),
        _ => Err(PropError {
            what,
            value: v.to_string(),
            reason: "not a boolean".into(),
        }),
    }
}

/// Writes `k=v` items separated by commas.
pub(crate) struct Writer<'a, 'b> {
    f: &'a mut fmt::Formatter<'b>,
    first: bool,
}

impl<'a, 'b> Writer<'a, 'b> {
    pub(crate) fn new(f: &'a mut fmt::Formatter<'b>) -> Self {
        Self { f, first: true }
    }
    fn sep(&mut self) -> fmt::Result {
        if !self.first {
            self.f.write_str(",")?;
        }
        self.first = false;
        Ok(())
    }
    pub(crate) fn bare(&mut self, v: impl fmt::Display) -> fmt::Result {
        self.sep()?;
        write!(self.f, "{v}")
    }
    /// The default key's value: bare (`local-lvm:vm-100-disk-0`), unless it holds a `=` and
    /// would read back as a key of its own (`volume=a=b`).
    pub(crate) fn default_key(&mut self, k: &str, v: &str) -> fmt::Result {
        if v.contains('=') {
            self.kv(k, v)
        } else {
            self.bare(v)
        }
    }
    pub(crate) fn kv(&mut self, k: &str, v: impl fmt::Display) -> fmt::Result {
        self.sep()?;
        write!(self.f, "{k}={v}")
    }
    pub(crate) fn opt(&mut self, k: &str, v: Option<impl fmt::Display>) -> fmt::Result {
        match v {
            Some(v) => self.kv(k, v),
            None => Ok(()),
        }
    }
    /// Writes every remaining pair; the caller has already written keys that sort before.
    pub(crate) fn rest(&mut self, extra: &BTreeMap<String, String>) -> fmt::Result {
        for (k, v) in extra {
            self.kv(k, v)?;
        }
        Ok(())
    }
}

/// Print `known` (already typed) and `extra` keys merged in sorted order.
pub(crate) fn write_sorted(
    w: &mut Writer<'_, '_>,
    mut known: Vec<(&'static str, String)>,
    extra: &BTreeMap<String, String>,
) -> fmt::Result {
    let mut all: Vec<(&str, &str)> = known.iter_mut().map(|(k, v)| (*k, v.as_str())).collect();
    all.extend(extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    all.sort_by(|a, b| a.0.cmp(b.0));
    for (k, v) in all {
        w.kv(k, v)?;
    }
    Ok(())
}

/// The differing items of two property strings, for display:
/// `ip 10.0.0.5/24 -> 10.0.0.6/24, firewall (unset) -> 1`.
pub fn diff_pairs(from: &str, to: &str) -> String {
    let split = |s: &str| -> BTreeMap<String, String> {
        s.split(',')
            .filter(|i| !i.is_empty())
            .enumerate()
            .map(|(i, item)| match item.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (format!("#{i}"), item.to_string()),
            })
            .collect()
    };
    let (a, b) = (split(from), split(to));
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    let parts: Vec<String> = keys
        .into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            let label = if k.starts_with('#') {
                "value"
            } else {
                k.as_str()
            };
            format!(
                "{label} {} -> {}",
                a.get(k).map_or("(unset)", String::as_str),
                b.get(k).map_or("(unset)", String::as_str)
            )
        })
        .collect();
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    //! Inputs the `propstr` fuzz target found: each must read back as itself once printed.
    use super::*;
    use std::fmt::Debug;
    use std::str::FromStr;

    fn round_trips<T>(s: &str) -> T
    where
        T: FromStr + fmt::Display + PartialEq + Debug,
        T::Err: fmt::Display,
    {
        let v: T = s.parse().unwrap_or_else(|e| panic!("{s:?}: {e}"));
        let shown = v.to_string();
        let again: T = shown
            .parse()
            .unwrap_or_else(|e| panic!("{s:?} prints as {shown:?}, which does not parse: {e}"));
        assert_eq!(again, v, "{s:?} -> {shown:?}");
        v
    }

    #[test]
    fn a_default_key_value_holding_an_equals_sign_is_printed_with_its_key() {
        let m: MountPoint = round_trips("volume=local:subvol-875-disk-0.size=G80,acl=1");
        assert_eq!(m.volume, "local:subvol-875-disk-0.size=G80");
        assert_eq!(
            m.to_string(),
            "volume=local:subvol-875-disk-0.size=G80,acl=1"
        );
        let d: QemuDisk = round_trips("file=local:a=b,size=1G");
        assert_eq!(d.to_string(), "file=local:a=b,size=1G");
        // The usual form stays bare.
        let m: MountPoint = round_trips("local-lvm:vm-100-disk-0,mp=/data,size=8G");
        assert_eq!(m.to_string(), "local-lvm:vm-100-disk-0,mp=/data,size=8G");
    }

    #[test]
    fn a_nic_model_proxmox_does_not_list_is_printed_with_its_key() {
        let n: QemuNet = round_trips("model=e1001,macaddr=BC:24:11:AA:BB:CD,tag=5");
        assert_eq!(n.to_string(), "model=e1001,macaddr=BC:24:11:AA:BB:CD,tag=5");
        let n: QemuNet = round_trips("model=virtio,macaddr=BC:24:11:AA:BB:CD,bridge=vmbr0");
        assert_eq!(n.to_string(), "virtio=BC:24:11:AA:BB:CD,bridge=vmbr0");
        let e = "model=,bridge=vmbr0".parse::<QemuNet>().unwrap_err();
        assert_eq!(e.reason, "missing NIC model (e.g. virtio)");
    }

    #[test]
    fn two_nic_models_are_refused() {
        // Proxmox maps `virtio=` and `e1000=` both to `model`, and refuses the duplicate;
        // taking one silently made "e1000=MAC,virtio=x" print back as a different NIC.
        for s in [
            "model=e1000,macaddr=BC:24:11:AA:BB:CD,virtio=BC:24:11:AA:BB:CE",
            "e1000=BC:24:11:AA:BB:CD,virtio=BC:24:11:AA:BB:CE",
        ] {
            let e = s.parse::<QemuNet>().unwrap_err();
            assert!(e.reason.contains("more than one NIC model"), "{s}: {e}");
        }
    }

    #[test]
    fn an_empty_volume_is_missing() {
        for s in ["volume=", "volume=,mp=/data", ",size=8G"] {
            let e = s.parse::<MountPoint>().unwrap_err();
            assert_eq!(e.reason, "missing volume", "{s:?}");
        }
        let e = "file=,size=1G".parse::<QemuDisk>().unwrap_err();
        assert_eq!(e.reason, "missing volume");
    }
}
