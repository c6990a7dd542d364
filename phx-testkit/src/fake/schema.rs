//! Which config keys Proxmox accepts and how it canonicalises their values.

use phx_core::propstr::{IpConfig, LxcFeatures, LxcNet, MountPoint, QemuDisk, QemuNet, Startup};
use phx_core::types::GuestKind;

use super::PveError;

const LXC_KEYS: &[&str] = &[
    "arch",
    "cmode",
    "console",
    "cores",
    "cpulimit",
    "cpuunits",
    "debug",
    "description",
    "entrypoint",
    "env",
    "features",
    "hookscript",
    "hostname",
    "lock",
    "memory",
    "nameserver",
    "onboot",
    "ostype",
    "protection",
    "rootfs",
    "searchdomain",
    "startup",
    "swap",
    "tags",
    "template",
    "timezone",
    "tty",
    "unprivileged",
];
const LXC_INDEXED: &[&str] = &["mp", "net", "unused", "dev"];

const VM_KEYS: &[&str] = &[
    "acpi",
    "agent",
    "balloon",
    "bios",
    "boot",
    "bootdisk",
    "cicustom",
    "cipassword",
    "citype",
    "ciupgrade",
    "ciuser",
    "cores",
    "cpu",
    "cpulimit",
    "cpuunits",
    "description",
    "efidisk0",
    "kvm",
    "lock",
    "machine",
    "memory",
    "meta",
    "name",
    "nameserver",
    "numa",
    "onboot",
    "ostype",
    "protection",
    "scsihw",
    "searchdomain",
    "smbios1",
    "sockets",
    "sshkeys",
    "startup",
    "tablet",
    "tags",
    "template",
    "tpmstate0",
    "vga",
    "vmgenid",
];
const VM_INDEXED: &[&str] = &[
    "ide", "sata", "scsi", "virtio", "net", "ipconfig", "serial", "unused", "hostpci", "usb",
];

const LXC_BOOL: &[&str] = &[
    "console",
    "debug",
    "onboot",
    "protection",
    "template",
    "unprivileged",
];
const VM_BOOL: &[&str] = &[
    "acpi",
    "ciupgrade",
    "kvm",
    "numa",
    "onboot",
    "protection",
    "tablet",
    "template",
];
const INTS: &[&str] = &[
    "cores", "cpuunits", "memory", "swap", "sockets", "balloon", "tty",
];

/// Split `net12` into (`net`, 12).
pub(crate) fn indexed(key: &str) -> Option<(&str, u32)> {
    let pos = key.find(|c: char| c.is_ascii_digit())?;
    let (p, n) = key.split_at(pos);
    n.parse().ok().map(|n| (p, n))
}

/// Whether `key` is a config key of `kind`.
pub(crate) fn known(kind: GuestKind, key: &str) -> bool {
    let (keys, idx) = match kind {
        GuestKind::Lxc => (LXC_KEYS, LXC_INDEXED),
        GuestKind::Vm => (VM_KEYS, VM_INDEXED),
    };
    keys.contains(&key) || indexed(key).is_some_and(|(p, n)| idx.contains(&p) && n < 256)
}

pub(crate) fn is_disk(kind: GuestKind, key: &str) -> bool {
    match kind {
        GuestKind::Lxc => key == "rootfs" || indexed(key).is_some_and(|(p, _)| p == "mp"),
        GuestKind::Vm => {
            indexed(key).is_some_and(|(p, _)| matches!(p, "ide" | "sata" | "scsi" | "virtio"))
                || key == "efidisk0"
                || key == "tpmstate0"
        }
    }
}

fn bad(key: &str, msg: impl Into<String>) -> PveError {
    PveError::param(key, msg)
}

/// Canonicalise one value as Proxmox stores it (booleans `1`/`0`, property strings reprinted).
pub(crate) fn canonical(kind: GuestKind, key: &str, value: &str) -> Result<String, PveError> {
    if !known(kind, key) {
        return Err(bad(
            key,
            "property is not defined in schema and the schema does not allow additional properties",
        ));
    }
    let bools = if kind == GuestKind::Lxc {
        LXC_BOOL
    } else {
        VM_BOOL
    };
    if bools.contains(&key) {
        return match value {
            "1" | "on" | "yes" | "true" => Ok("1".into()),
            "0" | "off" | "no" | "false" => Ok("0".into()),
            _ => Err(bad(
                key,
                format!("type check ('boolean') failed - got '{value}'"),
            )),
        };
    }
    if INTS.contains(&key) && !(kind == GuestKind::Vm && key == "memory") {
        return value
            .trim()
            .parse::<u64>()
            .map(|n| n.to_string())
            .map_err(|_| {
                bad(
                    key,
                    format!("type check ('integer') failed - got '{value}'"),
                )
            });
    }
    let pe = |e: phx_core::propstr::PropError| bad(key, e.reason);
    Ok(match (kind, indexed(key).map(|(p, _)| p).unwrap_or(key)) {
        (GuestKind::Vm, "memory") => {
            let n = value.strip_prefix("current=").unwrap_or(value);
            n.trim()
                .parse::<u64>()
                .map(|n| n.to_string())
                .map_err(|_| bad(key, format!("value '{value}' does not match format")))?
        }
        (GuestKind::Lxc, "net") => value.parse::<LxcNet>().map_err(pe)?.to_string(),
        (GuestKind::Lxc, "rootfs" | "mp") => value.parse::<MountPoint>().map_err(pe)?.to_string(),
        (GuestKind::Lxc, "features") => value.parse::<LxcFeatures>().map_err(pe)?.to_string(),
        (_, "startup") => {
            value.parse::<Startup>().map_err(pe)?;
            value.to_string()
        }
        (GuestKind::Vm, "net") => value.parse::<QemuNet>().map_err(pe)?.to_string(),
        (GuestKind::Vm, "ipconfig") => value.parse::<IpConfig>().map_err(pe)?.to_string(),
        (GuestKind::Vm, "ide" | "sata" | "scsi" | "virtio") => {
            value.parse::<QemuDisk>().map_err(pe)?.to_string()
        }
        (_, "hostname" | "name") => {
            if phx_core::types::Hostname::new(value).is_err() {
                return Err(bad(
                    key,
                    format!("value '{value}' does not look like a valid DNS name"),
                ));
            }
            value.to_string()
        }
        _ => value.to_string(),
    })
}

#[cfg(feature = "fake-pve")]
/// A stored config value typed as `GET .../config` returns it: integers and `1`/`0` booleans
/// as JSON numbers, everything else (property strings, `number`-type values) as strings.
pub(crate) fn json_value(kind: GuestKind, key: &str, value: &str) -> serde_json::Value {
    let bools = if kind == GuestKind::Lxc {
        LXC_BOOL
    } else {
        VM_BOOL
    };
    let int = INTS.contains(&key) && !(kind == GuestKind::Vm && key == "memory");
    if (bools.contains(&key) || int)
        && let Ok(n) = value.parse::<u64>()
    {
        return serde_json::Value::from(n);
    }
    serde_json::Value::from(value)
}

/// Whether `key` is a boolean config key of `kind`.
#[cfg(feature = "fake-pve")]
pub(crate) fn is_bool(kind: GuestKind, key: &str) -> bool {
    if kind == GuestKind::Lxc {
        LXC_BOOL
    } else {
        VM_BOOL
    }
    .contains(&key)
}
