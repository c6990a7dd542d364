//! VMs: the desired Proxmox config of a [`VmSpec`] and its diff against what a VM has.

use std::collections::BTreeMap;

use crate::backend::{FirewallState, GuestConfig};
use crate::config::{Inventory, VmSpec};
use crate::propstr::{IpConfig, NetIp, QemuNet, Startup};
use crate::types::DiskSize;

use super::lxc::{Diff, firewall};
use super::plan::Change;

/// Cloud-init keys: a change regenerates the drive (it applies at the next boot).
pub(crate) const CLOUDINIT_KEYS: &[&str] = &["ciuser", "ipconfig0", "nameserver", "searchdomain"];
/// Keys that only apply after a restart of a running VM.
const RESTART_KEYS: &[&str] = &["cores", "memory", "agent"];

#[derive(Debug, Clone)]
pub(crate) struct Desired {
    pub entries: BTreeMap<String, String>,
    pub disk_gib: Option<u64>,
}

pub(crate) fn desired(spec: &VmSpec, inv: &Inventory) -> Desired {
    let mut e = BTreeMap::new();
    e.insert("name".to_string(), spec.name.to_string());
    e.insert("cores".to_string(), spec.cores.to_string());
    e.insert("memory".to_string(), spec.memory_mb.to_string());
    e.insert(
        "onboot".to_string(),
        u8::from(spec.start_at_boot).to_string(),
    );
    e.insert("agent".to_string(), "enabled=1".to_string());
    if spec.boot_order.is_some() || spec.boot_delay.is_some() {
        let st = Startup {
            order: spec.boot_order.map(|v| v.min(u64::from(u32::MAX)) as u32),
            up: spec.boot_delay.map(|v| v.min(u64::from(u32::MAX)) as u32),
            down: None,
        };
        e.insert("startup".to_string(), st.to_string());
    }
    let net = QemuNet {
        model: "virtio".into(),
        bridge: Some(spec.network_bridge.clone()),
        firewall: spec.firewall.as_ref().map(|f| f.enabled),
        ..QemuNet::default()
    };
    e.insert("net0".to_string(), net.to_string());
    if let Some(u) = &spec.ci_user {
        e.insert("ciuser".to_string(), u.clone());
    }
    if let Some(n) = &spec.network {
        let ipc = IpConfig {
            ip: Some(n.ip),
            gw: if matches!(n.ip, NetIp::Static(_)) {
                n.gw
            } else {
                None
            },
            ..IpConfig::default()
        };
        e.insert("ipconfig0".to_string(), ipc.to_string());
        if let Some(ns) = super::nameserver(&n.nameservers) {
            e.insert("nameserver".to_string(), ns);
        }
        if let Some(sd) = n
            .searchdomain
            .as_ref()
            .or(inv.hypervisor.domain_name.as_ref())
        {
            e.insert("searchdomain".to_string(), sd.clone());
        }
    }
    Desired {
        entries: e,
        disk_gib: spec.disk_size_gb,
    }
}

/// `qm create` parameters for a VM built from a cloud image already on `image_volid`.
pub(crate) fn create_params(
    d: &Desired,
    spec: &VmSpec,
    image_volid: &str,
) -> BTreeMap<String, String> {
    let mut p = d.entries.clone();
    let pool = &spec.storage_pool;
    p.insert("scsihw".into(), "virtio-scsi-pci".into());
    p.insert(
        "scsi0".into(),
        format!("{pool}:0,import-from={image_volid}"),
    );
    p.insert("ide2".into(), format!("{pool}:cloudinit"));
    p.insert("boot".into(), "order=scsi0".into());
    p.insert("serial0".into(), "socket".into());
    p.insert("vga".into(), "serial0".into());
    p.insert("ostype".into(), "l26".into());
    p
}

fn agent_enabled(v: &str) -> bool {
    v.split(',').any(|kv| {
        matches!(
            kv.trim(),
            "1" | "enabled=1" | "enabled=on" | "enabled=yes" | "enabled=true"
        )
    })
}

fn memory_mb(v: &str) -> Option<u64> {
    v.split(',')
        .find_map(|kv| {
            kv.strip_prefix("current=")
                .or(if kv.contains('=') { None } else { Some(kv) })
        })
        .and_then(|n| n.trim().parse().ok())
}

fn same(key: &str, want: &str, have: Option<&str>) -> bool {
    let Some(have) = have else { return false };
    match key {
        "cores" | "onboot" => want.parse::<u64>().ok() == have.trim().parse::<u64>().ok(),
        "memory" => memory_mb(want) == memory_mb(have),
        "agent" => agent_enabled(want) == agent_enabled(have),
        "startup" => want.parse::<Startup>().ok() == have.parse::<Startup>().ok(),
        "ipconfig0" => want.parse::<IpConfig>().ok() == have.parse::<IpConfig>().ok(),
        "nameserver" | "searchdomain" => {
            want.split_whitespace().collect::<Vec<_>>()
                == have.split_whitespace().collect::<Vec<_>>()
        }
        _ => want == have,
    }
}

/// The boot disk key of a VM config.
pub(crate) fn boot_disk(cfg: &GuestConfig) -> Option<&'static str> {
    ["scsi0", "virtio0", "sata0", "ide0"]
        .into_iter()
        .find(|k| cfg.get(k).is_some())
}

pub(crate) fn diff(
    d: &Desired,
    spec: &VmSpec,
    cfg: &GuestConfig,
    fw: Option<&FirewallState>,
) -> Diff {
    let mut out = Diff::default();
    for (k, want) in &d.entries {
        let have = cfg.get(k);
        if k == "net0" {
            let (Ok(w), h) = (
                want.parse::<QemuNet>(),
                have.and_then(|h| h.parse::<QemuNet>().ok()),
            ) else {
                continue;
            };
            let mut merged = h.clone().unwrap_or_else(|| w.clone());
            merged.model = w.model.clone();
            merged.bridge = w.bridge.clone();
            if w.firewall.is_some() {
                merged.firewall = if w.firewall == Some(false)
                    && h.as_ref().is_some_and(|h| h.firewall.is_none())
                {
                    None
                } else {
                    w.firewall
                };
            }
            if Some(&merged) != h.as_ref() {
                let v = merged.to_string();
                out.changes.push(Change {
                    key: k.clone(),
                    from: have.map(str::to_string),
                    to: Some(v.clone()),
                    restart: false,
                });
                out.set.insert(k.clone(), v);
            }
            continue;
        }
        if k == "onboot" && want == "0" && have.is_none() {
            continue;
        }
        if !same(k, want, have) {
            out.changes.push(Change {
                key: k.clone(),
                from: have.map(str::to_string),
                to: Some(want.clone()),
                restart: RESTART_KEYS.contains(&k.as_str()),
            });
            out.set.insert(k.clone(), want.clone());
        }
    }
    if let (Some(gib), Some(disk)) = (d.disk_gib, boot_disk(cfg))
        && let Ok(Some(dk)) = cfg.disk(disk)
    {
        let want = DiskSize::from_gib(gib);
        match dk.size {
            None => out
                .resizes
                .push((disk.to_string(), want, format!("{disk} -> {want}"))),
            Some(have) if have < want => {
                out.resizes
                    .push((disk.to_string(), want, format!("{disk} {have} -> {want}")))
            }
            Some(have) if have > want => {
                out.error = Some(format!(
                    "{disk} is {have} but disk_size_gb is {gib}: Proxmox cannot shrink a VM disk; set disk_size_gb to at least {} or recreate the VM",
                    have.gib_ceil()
                ));
            }
            _ => {}
        }
    }
    firewall(spec.firewall.as_ref(), fw, &mut out);
    out
}

/// Whether a diff touches cloud-init settings.
pub(crate) fn touches_cloudinit(diff: &Diff) -> bool {
    diff.set
        .keys()
        .any(|k| CLOUDINIT_KEYS.contains(&k.as_str()))
}

/// The config a VM has right after creation from `create_params` (for predictions).
pub(crate) fn predicted_after_create(d: &Desired, spec: &VmSpec) -> GuestConfig {
    let mut c = GuestConfig {
        entries: d.entries.clone(),
        ..GuestConfig::default()
    };
    let id = spec.id;
    c.entries.insert(
        "scsi0".into(),
        format!("{}:vm-{id}-disk-0", spec.storage_pool),
    );
    c.entries.insert(
        "ide2".into(),
        format!("{}:vm-{id}-cloudinit,media=cdrom", spec.storage_pool),
    );
    c
}
