//! Container property strings: `netN`, `rootfs`/`mpN`, `features`, `startup`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use super::{Pairs, PropError, Writer, parse_bool, write_sorted};
use crate::types::{Cidr, DiskSize, MacAddr};

/// The `ip=` of a container NIC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NetIp {
    /// Static address.
    Static(Cidr),
    /// DHCP.
    Dhcp,
    /// Configured inside the guest.
    Manual,
}

impl fmt::Display for NetIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetIp::Static(c) => write!(f, "{c}"),
            NetIp::Dhcp => f.write_str("dhcp"),
            NetIp::Manual => f.write_str("manual"),
        }
    }
}

impl FromStr for NetIp {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "dhcp" => Ok(NetIp::Dhcp),
            "manual" => Ok(NetIp::Manual),
            _ => s
                .parse::<Cidr>()
                .map(NetIp::Static)
                .map_err(|e| e.to_string()),
        }
    }
}

/// A container NIC: `name=eth0,bridge=vmbr0,firewall=1,gw=10.0.0.1,hwaddr=..,ip=10.0.0.5/24,type=veth`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LxcNet {
    /// Interface name inside the container (required).
    pub name: String,
    /// Host bridge.
    pub bridge: Option<String>,
    /// Proxmox firewall on this NIC.
    pub firewall: Option<bool>,
    /// IPv4 gateway.
    pub gw: Option<Ipv4Addr>,
    /// MAC address.
    pub hwaddr: Option<MacAddr>,
    /// IPv4 address.
    pub ip: Option<NetIp>,
    /// VLAN tag.
    pub tag: Option<u16>,
    /// MTU.
    pub mtu: Option<u16>,
    /// NIC type (`veth`).
    pub kind: Option<String>,
    /// Keys phx does not interpret (`ip6`, `gw6`, `rate`, `trunks`, `link_down`, ...), kept verbatim.
    pub extra: BTreeMap<String, String>,
}

impl FromStr for LxcNet {
    type Err = PropError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const W: &str = "container network (netN)";
        let mut p = Pairs::parse(W, s, None)?;
        let err = |reason: String| PropError {
            what: W,
            value: s.to_string(),
            reason,
        };
        let name = p
            .take("name")
            .ok_or_else(|| err("missing required key 'name'".into()))?;
        Ok(Self {
            name,
            bridge: p.take("bridge"),
            firewall: p.take("firewall").map(|v| parse_bool(W, &v)).transpose()?,
            gw: p
                .take("gw")
                .map(|v| {
                    v.parse()
                        .map_err(|_| err(format!("gw {v:?} is not an IPv4 address")))
                })
                .transpose()?,
            hwaddr: p
                .take("hwaddr")
                .map(|v| {
                    v.parse()
                        .map_err(|e: crate::types::ParseError| err(e.to_string()))
                })
                .transpose()?,
            ip: p.take("ip").map(|v| v.parse().map_err(err)).transpose()?,
            tag: p
                .take("tag")
                .map(|v| {
                    v.parse()
                        .map_err(|_| err(format!("tag {v:?} is not a VLAN id")))
                })
                .transpose()?,
            mtu: p
                .take("mtu")
                .map(|v| {
                    v.parse()
                        .map_err(|_| err(format!("mtu {v:?} is not a number")))
                })
                .transpose()?,
            kind: p.take("type"),
            extra: p.0,
        })
    }
}

impl fmt::Display for LxcNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut w = Writer::new(f);
        w.kv("name", &self.name)?;
        let mut known = Vec::new();
        if let Some(v) = &self.bridge {
            known.push(("bridge", v.clone()));
        }
        if let Some(v) = self.firewall {
            known.push(("firewall", u8::from(v).to_string()));
        }
        if let Some(v) = self.gw {
            known.push(("gw", v.to_string()));
        }
        if let Some(v) = self.hwaddr {
            known.push(("hwaddr", v.to_string()));
        }
        if let Some(v) = self.ip {
            known.push(("ip", v.to_string()));
        }
        if let Some(v) = self.tag {
            known.push(("tag", v.to_string()));
        }
        if let Some(v) = self.mtu {
            known.push(("mtu", v.to_string()));
        }
        if let Some(v) = &self.kind {
            known.push(("type", v.clone()));
        }
        write_sorted(&mut w, known, &self.extra)
    }
}

/// `rootfs` or `mpN`: `local-lvm:vm-100-disk-1,mp=/data,backup=1,size=10G`, or a bind mount
/// `/host/path,mp=/ct/path`. On create/set, `STORAGE:SIZE_GIB` allocates a new volume.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MountPoint {
    /// Volume id, `STORAGE:GiB` allocation request, or host path (the default key).
    pub volume: String,
    /// Mount path inside the container (required for `mpN`, absent for `rootfs`).
    pub mp: Option<String>,
    /// Volume size.
    pub size: Option<DiskSize>,
    /// Include in backups.
    pub backup: Option<bool>,
    /// Read-only.
    pub ro: Option<bool>,
    /// Other keys (`acl`, `mountoptions`, `quota`, `replicate`, `shared`), kept verbatim.
    pub extra: BTreeMap<String, String>,
}

impl MountPoint {
    /// Whether the volume is a host bind mount (an absolute path) rather than storage-backed.
    pub fn is_bind(&self) -> bool {
        self.volume.starts_with('/')
    }
    /// The storage id of a storage-backed volume (`local-lvm` of `local-lvm:vm-100-disk-0`).
    pub fn storage(&self) -> Option<&str> {
        if self.is_bind() {
            None
        } else {
            self.volume.split_once(':').map(|(s, _)| s)
        }
    }
}

impl FromStr for MountPoint {
    type Err = PropError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const W: &str = "mount point (rootfs/mpN)";
        let mut p = Pairs::parse(W, s, Some("volume"))?;
        let err = |reason: String| PropError {
            what: W,
            value: s.to_string(),
            reason,
        };
        let volume = p
            .take("volume")
            .filter(|v| !v.is_empty())
            .ok_or_else(|| err("missing volume".into()))?;
        Ok(Self {
            volume,
            mp: p.take("mp"),
            size: p
                .take("size")
                .map(|v| {
                    v.parse()
                        .map_err(|e: crate::types::ParseError| err(e.to_string()))
                })
                .transpose()?,
            backup: p.take("backup").map(|v| parse_bool(W, &v)).transpose()?,
            ro: p.take("ro").map(|v| parse_bool(W, &v)).transpose()?,
            extra: p.0,
        })
    }
}

impl fmt::Display for MountPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut w = Writer::new(f);
        w.default_key("volume", &self.volume)?;
        // `mp` is a required key of mpN, so it is printed right after the default key.
        w.opt("mp", self.mp.as_ref())?;
        let mut known = Vec::new();
        if let Some(v) = self.backup {
            known.push(("backup", u8::from(v).to_string()));
        }
        if let Some(v) = self.ro {
            known.push(("ro", u8::from(v).to_string()));
        }
        if let Some(v) = self.size {
            known.push(("size", v.to_string()));
        }
        write_sorted(&mut w, known, &self.extra)
    }
}

/// Container `features`: `fuse=1,keyctl=1,nesting=1` (`mount=nfs;cifs`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LxcFeatures(pub BTreeMap<String, String>);

const FEATURE_KEYS: &[&str] = &[
    "force_rw_sys",
    "fuse",
    "keyctl",
    "mknod",
    "mount",
    "nesting",
];

impl LxcFeatures {
    /// Whether no feature is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Build from `pct_options` items (`nesting=1`, `keyctl=1`).
    pub fn from_items<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<Self, PropError> {
        let joined: Vec<&str> = items.into_iter().collect();
        joined.join(",").parse()
    }
}

impl FromStr for LxcFeatures {
    type Err = PropError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const W: &str = "container features";
        let p = Pairs::parse(W, s, None)?;
        let mut out = BTreeMap::new();
        for (k, v) in p.0 {
            if !FEATURE_KEYS.contains(&k.as_str()) {
                return Err(PropError {
                    what: W,
                    value: s.to_string(),
                    reason: format!("unknown feature {k:?} (known: {})", FEATURE_KEYS.join(", ")),
                });
            }
            let v = if k == "mount" {
                v
            } else {
                u8::from(parse_bool(W, &v)?).to_string()
            };
            out.insert(k, v);
        }
        Ok(Self(out))
    }
}

impl fmt::Display for LxcFeatures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut w = Writer::new(f);
        w.rest(&self.0)
    }
}

/// `startup`: `order=3,up=5,down=5`. Proxmox stores it as given; compare parsed values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Startup {
    /// Boot order.
    pub order: Option<u32>,
    /// Delay after start, seconds.
    pub up: Option<u32>,
    /// Shutdown timeout, seconds.
    pub down: Option<u32>,
}

impl FromStr for Startup {
    type Err = PropError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const W: &str = "startup";
        // `startup: 3` is accepted by Proxmox as `order=3`.
        let mut p = Pairs::parse(W, s, Some("order"))?;
        let num = |k: &str, p: &mut Pairs| -> Result<Option<u32>, PropError> {
            p.take(k)
                .map(|v| {
                    v.parse().map_err(|_| PropError {
                        what: W,
                        value: s.to_string(),
                        reason: format!("{k} {v:?} is not a number"),
                    })
                })
                .transpose()
        };
        let out = Self {
            order: num("order", &mut p)?,
            up: num("up", &mut p)?,
            down: num("down", &mut p)?,
        };
        if let Some(k) = p.0.keys().next() {
            return Err(PropError {
                what: W,
                value: s.to_string(),
                reason: format!("unknown key {k:?}"),
            });
        }
        Ok(out)
    }
}

impl fmt::Display for Startup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut w = Writer::new(f);
        w.opt("order", self.order)?;
        w.opt("up", self.up)?;
        w.opt("down", self.down)
    }
}
