//! Containers: the desired Proxmox config of an [`LxcSpec`] and its diff against what a
//! container has. Everything is compared parsed (`net0` as [`LxcNet`], `features` as
//! [`LxcFeatures`], `startup` as [`Startup`]), never as raw text.

use std::collections::{BTreeMap, BTreeSet};

use crate::backend::{FirewallOptions, FirewallState, GuestConfig};
use crate::config::{GuestFirewall, LxcSpec};
use crate::propstr::{LxcFeatures, LxcNet, MountPoint, Startup};
use crate::types::{DiskSize, FirewallRule, StorageId};

use super::plan::Change;

/// A mount point phx manages, matched to an `mpN` by its path inside the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MpSource {
    /// Storage-backed volume (`zfs_volumes`, `volumes`).
    Storage { pool: StorageId, size_gb: u64 },
    /// Host bind mount (`mount_points`).
    Bind { host_path: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DesiredMp {
    pub path: String,
    pub source: MpSource,
}

impl DesiredMp {
    /// The value that allocates / defines this mount point (`pool:10,mp=/data`).
    pub(crate) fn create_value(&self) -> String {
        match &self.source {
            MpSource::Storage { pool, size_gb } => format!("{pool}:{size_gb},mp={}", self.path),
            MpSource::Bind { host_path } => format!("{host_path},mp={}", self.path),
        }
    }
}

/// The desired state of a container, in Proxmox terms.
#[derive(Debug, Clone)]
pub(crate) struct Desired {
    /// Managed config keys and their values.
    pub entries: BTreeMap<String, String>,
    pub storage: StorageId,
    pub rootfs_gib: u64,
    pub mps: Vec<DesiredMp>,
    /// Raw `lxc.*` lines; `None` when the config says nothing about them.
    pub raw: Option<Vec<(String, String)>>,
    pub firewall: Option<GuestFirewall>,
    pub unprivileged: Option<bool>,
    pub notes: Vec<String>,
}

/// Keys whose change only applies after a restart of a running container.
const RESTART_KEYS: &[&str] = &["features", "hostname", "unprivileged"];

pub(crate) fn is_restart_key(k: &str) -> bool {
    RESTART_KEYS.contains(&k) || k.starts_with("mp") || k == "rootfs"
}

/// Compute the desired state. `uvm_major` is the host's `nvidia-uvm` device major, when known.
pub(crate) fn desired(spec: &LxcSpec, uvm_major: Option<u32>) -> Desired {
    let mut e = BTreeMap::new();
    let mut notes = Vec::new();
    e.insert("hostname".to_string(), spec.name.to_string());
    e.insert("memory".to_string(), spec.memory_mb.to_string());
    e.insert("cores".to_string(), spec.cores.to_string());
    if let Some(s) = spec.swap_mb {
        e.insert("swap".to_string(), s.to_string());
    }
    e.insert(
        "onboot".to_string(),
        u8::from(spec.start_at_boot).to_string(),
    );
    if spec.boot_order.is_some() || spec.boot_delay.is_some() {
        let st = Startup {
            order: spec.boot_order.map(|v| v.min(u64::from(u32::MAX)) as u32),
            up: spec.boot_delay.map(|v| v.min(u64::from(u32::MAX)) as u32),
            down: spec.boot_delay.map(|v| v.min(u64::from(u32::MAX)) as u32),
        };
        e.insert("startup".to_string(), st.to_string());
    }
    if let Some(n) = &spec.network {
        let net = LxcNet {
            name: n.name.clone(),
            bridge: Some(n.bridge.clone()),
            firewall: spec.firewall.as_ref().map(|f| f.enabled),
            gw: n.gw,
            hwaddr: spec.mac_address,
            ip: Some(n.ip),
            kind: Some("veth".into()),
            ..LxcNet::default()
        };
        e.insert("net0".to_string(), net.to_string());
        if let Some(ns) = super::nameserver(&n.nameservers) {
            e.insert("nameserver".to_string(), ns);
        }
    }
    if !spec.pct_options.is_empty() {
        e.insert("features".to_string(), spec.pct_options.to_string());
    }
    let mut mps = Vec::new();
    for v in spec.zfs_volumes.iter().chain(&spec.volumes) {
        mps.push(DesiredMp {
            path: v.mount_point.clone(),
            source: MpSource::Storage {
                pool: v.pool.clone(),
                size_gb: v.size_gb,
            },
        });
    }
    for b in &spec.mount_points {
        mps.push(DesiredMp {
            path: b.container_path.clone(),
            source: MpSource::Bind {
                host_path: b.host_path.clone(),
            },
        });
    }
    let raw = raw_lines(spec, uvm_major, &mut notes);
    Desired {
        entries: e,
        storage: spec.storage_pool.clone(),
        rootfs_gib: spec.storage_size_gb,
        mps,
        raw,
        firewall: spec.firewall.clone(),
        unprivileged: spec.unprivileged,
        notes,
    }
}

/// Parse one `lxc_options` item: `lxc.key=value`, `lxc.key: value` or `lxc.key:value`.
/// `lxc.cap.keep=a,b` becomes one line per capability.
pub(crate) fn parse_raw_option(item: &str) -> Option<Vec<(String, String)>> {
    let item = item.trim();
    let cut = item.find(['=', ':'])?;
    let key = item[..cut].trim();
    let value = item[cut + 1..].trim();
    if !key.starts_with("lxc.")
        || key.len() < 5
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return None;
    }
    if key == "lxc.cap.keep" || key == "lxc.cap.drop" {
        return Some(
            value
                .split([',', ' '])
                .filter(|c| !c.is_empty())
                .map(|c| (key.to_string(), c.to_string()))
                .collect(),
        );
    }
    Some(vec![(key.to_string(), value.to_string())])
}

fn raw_lines(
    spec: &LxcSpec,
    uvm_major: Option<u32>,
    notes: &mut Vec<String>,
) -> Option<Vec<(String, String)>> {
    let managed = !spec.lxc_options.is_empty()
        || spec.apparmor_profile.is_some()
        || !spec.gpu_assignment.is_empty()
        || !spec.id_maps.is_empty();
    if !managed {
        return None;
    }
    let mut lines: Vec<(String, String)> = Vec::new();
    let mut push = |k: &str, v: String| {
        let l = (k.to_string(), v);
        if !lines.contains(&l) {
            lines.push(l);
        }
    };
    if let Some(p) = &spec.apparmor_profile {
        push("lxc.apparmor.profile", p.clone());
        if p != "unconfined" && spec.apparmor_manages_nesting {
            push("lxc.apparmor.allow_nesting", "1".into());
            push("lxc.include", "/usr/share/lxc/config/nesting.conf".into());
        }
    }
    for item in &spec.lxc_options {
        match parse_raw_option(item) {
            Some(ls) => {
                for (k, v) in ls {
                    // apparmor_profile is authoritative for the profile line
                    if k == "lxc.apparmor.profile" && spec.apparmor_profile.is_some() {
                        continue;
                    }
                    push(&k, v);
                }
            }
            None => notes.push(format!(
                "lxc_options item {item:?} is not an lxc.* option (expected lxc.key=value); ignored"
            )),
        }
    }
    if !spec.gpu_assignment.is_empty() {
        push("lxc.cgroup2.devices.allow", "c 195:* rwm".into());
        match uvm_major {
            Some(m) => push("lxc.cgroup2.devices.allow", format!("c {m}:* rwm")),
            None => notes.push("the nvidia-uvm device major of the node is unknown (no nvidia-uvm in /proc/devices); only /dev/nvidia* (major 195) is allowed".into()),
        }
        let mut devs: Vec<String> = vec![
            "nvidiactl".into(),
            "nvidia-uvm".into(),
            "nvidia-uvm-tools".into(),
        ];
        devs.extend(spec.gpu_assignment.iter().map(|g| format!("nvidia{g}")));
        for d in devs {
            push(
                "lxc.mount.entry",
                format!("/dev/{d} dev/{d} none bind,optional,create=file"),
            );
        }
    }
    if !spec.id_maps.is_empty() {
        for kind in ['u', 'g'] {
            for (ct, host, size) in idmap_ranges(
                spec.id_maps
                    .iter()
                    .filter(|m| m.kind == kind)
                    .map(|m| (m.container_id, m.host_id, m.size))
                    .collect(),
            ) {
                push("lxc.idmap", format!("{kind} {ct} {host} {size}"));
            }
        }
    }
    Some(lines)
}

/// Complete a partial id map for container ids 0..65536: configured entries as given, the
/// gaps mapped to the default unprivileged offset 100000.
fn idmap_ranges(mut custom: Vec<(u64, u64, u64)>) -> Vec<(u64, u64, u64)> {
    const SPAN: u64 = 65_536;
    const OFFSET: u64 = 100_000;
    custom.sort();
    let mut out = Vec::new();
    let mut next = 0u64;
    for (ct, host, size) in custom {
        if ct > next {
            out.push((next, OFFSET + next, ct - next));
        }
        out.push((ct, host, size));
        next = next.max(ct + size);
    }
    if next < SPAN {
        out.push((next, OFFSET + next, SPAN - next));
    }
    out
}

/// The config a freshly created container has (for predicting the plan of an absent guest).
pub(crate) fn predicted_after_create(d: &Desired, id: crate::types::GuestId) -> GuestConfig {
    let mut c = GuestConfig {
        entries: d.entries.clone(),
        ..GuestConfig::default()
    };
    c.entries.insert(
        "rootfs".into(),
        format!("{}:vm-{id}-disk-0,size={}G", d.storage, d.rootfs_gib),
    );
    for (i, mp) in d.mps.iter().enumerate() {
        let v = match &mp.source {
            MpSource::Storage { pool, size_gb } => format!(
                "{pool}:vm-{id}-disk-{},mp={},size={size_gb}G",
                i + 1,
                mp.path
            ),
            MpSource::Bind { host_path } => format!("{host_path},mp={}", mp.path),
        };
        c.entries.insert(format!("mp{i}"), v);
    }
    c.entries.insert(
        "unprivileged".into(),
        u8::from(d.unprivileged.unwrap_or(true)).to_string(),
    );
    // `pct create` cannot set raw lxc.* lines: they follow as their own step
    c
}

/// Parameters of `pct create` for a desired state.
pub(crate) fn create_params(d: &Desired) -> BTreeMap<String, String> {
    let mut p = d.entries.clone();
    p.insert("rootfs".into(), format!("{}:{}", d.storage, d.rootfs_gib));
    p.insert("storage".into(), d.storage.to_string());
    p.insert(
        "unprivileged".into(),
        u8::from(d.unprivileged.unwrap_or(true)).to_string(),
    );
    for (i, mp) in d.mps.iter().enumerate() {
        p.insert(format!("mp{i}"), mp.create_value());
    }
    p
}

/// Raw `lxc.*` lines as `(key, value)` pairs.
pub(crate) type RawLines = Vec<(String, String)>;

/// The differences between desired and actual.
#[derive(Debug, Default)]
pub(crate) struct Diff {
    pub set: BTreeMap<String, String>,
    pub changes: Vec<Change>,
    pub resizes: Vec<(String, DiskSize, String)>,
    /// New raw lines and their `+`/`-` description.
    pub raw: Option<(RawLines, Vec<String>)>,
    pub fw_options: Option<FirewallOptions>,
    pub fw_rules: Option<Vec<FirewallRule>>,
    pub notes: Vec<String>,
    pub error: Option<String>,
}

impl Diff {
    /// Changed keys that need a restart of a running container.
    pub(crate) fn restart_keys(&self) -> Vec<String> {
        let mut k: Vec<String> = self
            .changes
            .iter()
            .filter(|c| c.restart)
            .map(|c| c.key.clone())
            .collect();
        if self.raw.is_some() {
            k.push("lxc.* lines".into());
        }
        k
    }
}

fn same_value(key: &str, want: &str, have: Option<&str>) -> bool {
    let Some(have) = have else { return false };
    match key {
        "memory" | "cores" | "swap" | "onboot" => {
            want.trim().parse::<u64>().ok() == have.trim().parse::<u64>().ok()
        }
        "startup" => want.parse::<Startup>().ok() == have.parse::<Startup>().ok(),
        "features" => want.parse::<LxcFeatures>().ok() == have.parse::<LxcFeatures>().ok(),
        "nameserver" | "searchdomain" => {
            let a: BTreeSet<&str> = want.split_whitespace().collect();
            let b: BTreeSet<&str> = have
                .split([' ', ',', ';'])
                .filter(|s| !s.is_empty())
                .collect();
            a == b
        }
        _ => want == have,
    }
}

/// Desired NIC merged onto the actual one: configured fields win, generated ones (a MAC
/// Proxmox picked, `type=veth`) and unmanaged keys are kept.
fn merge_net(want: &LxcNet, have: Option<&LxcNet>) -> LxcNet {
    let Some(have) = have else {
        return want.clone();
    };
    let mut m = have.clone();
    m.name = want.name.clone();
    if want.bridge.is_some() {
        m.bridge = want.bridge.clone();
    }
    if want.firewall.is_some() {
        // `firewall=0` and no firewall key mean the same to Proxmox.
        m.firewall = if want.firewall == Some(false) && have.firewall.is_none() {
            None
        } else {
            want.firewall
        };
    }
    if want.gw.is_some() {
        m.gw = want.gw;
    }
    if want.hwaddr.is_some() {
        m.hwaddr = want.hwaddr;
    }
    if want.ip.is_some() {
        m.ip = want.ip;
    }
    if m.kind.is_none() {
        m.kind = want.kind.clone();
    }
    m
}

pub(crate) fn diff(d: &Desired, cfg: &GuestConfig, fw: Option<&FirewallState>) -> Diff {
    let mut out = Diff {
        notes: d.notes.clone(),
        ..Diff::default()
    };
    for (k, want) in &d.entries {
        let have = cfg.get(k);
        if k == "net0" {
            let want_net: Option<LxcNet> = want.parse().ok();
            let have_net: Option<LxcNet> = have.and_then(|h| h.parse().ok());
            if let Some(wn) = want_net {
                let merged = merge_net(&wn, have_net.as_ref());
                if Some(&merged) != have_net.as_ref() {
                    let v = merged.to_string();
                    out.changes.push(Change {
                        key: k.clone(),
                        from: have.map(str::to_string),
                        to: Some(v.clone()),
                        restart: false,
                    });
                    out.set.insert(k.clone(), v);
                }
            }
            continue;
        }
        // `onboot: 0` and no onboot key mean the same.
        if k == "onboot" && want == "0" && have.is_none() {
            continue;
        }
        if !same_value(k, want, have) {
            out.changes.push(Change {
                key: k.clone(),
                from: have.map(str::to_string),
                to: Some(want.clone()),
                restart: is_restart_key(k),
            });
            out.set.insert(k.clone(), want.clone());
        }
    }
    // unprivileged is read-only after creation
    if let Some(want) = d.unprivileged {
        let have = cfg.flag("unprivileged").unwrap_or(false);
        if have != want {
            out.notes.push(format!(
                "the container is {} but the config says unprivileged={want}; Proxmox cannot change this after creation (recreate the container to change it)",
                if have { "unprivileged" } else { "privileged" }
            ));
        }
    }
    // rootfs: grow only
    match cfg.mount_point("rootfs") {
        Ok(Some(root)) => {
            let want = DiskSize::from_gib(d.rootfs_gib);
            match root.size {
                Some(have) if have < want => {
                    out.resizes
                        .push(("rootfs".into(), want, format!("rootfs {have} -> {want}")))
                }
                Some(have) if have > want => {
                    out.error = Some(format!(
                        "rootfs is {have} but storage_size_gb is {}: Proxmox cannot shrink a container disk; set storage_size_gb to at least {} or recreate the container",
                        d.rootfs_gib,
                        have.gib_ceil()
                    ));
                }
                _ => {}
            }
        }
        Ok(None) => {}
        Err(e) => out.notes.push(e.to_string()),
    }
    mount_points(d, cfg, &mut out);
    // raw lxc lines
    if let Some(want) = &d.raw {
        let mut a = want.clone();
        let mut b = cfg.raw_lxc.clone();
        a.sort();
        b.sort();
        if a != b {
            let mut detail = Vec::new();
            for l in &b {
                if !a.contains(l) {
                    detail.push(format!("- {}: {}", l.0, l.1));
                }
            }
            for l in &a {
                if !b.contains(l) {
                    detail.push(format!("+ {}: {}", l.0, l.1));
                }
            }
            out.raw = Some((want.clone(), detail));
        }
    }
    firewall(d.firewall.as_ref(), fw, &mut out);
    out
}

/// Firewall options and rules: replaced only when they differ.
pub(crate) fn firewall(want: Option<&GuestFirewall>, have: Option<&FirewallState>, out: &mut Diff) {
    let Some(want) = want else { return };
    let empty = FirewallState::default();
    let have = have.unwrap_or(&empty);
    if have.options.enable.unwrap_or(false) != want.enabled {
        out.fw_options = Some(FirewallOptions {
            enable: Some(want.enabled),
            ..have.options.clone()
        });
    }
    if have.rules != want.rules {
        out.fw_rules = Some(want.rules.clone());
    }
}

fn mount_points(d: &Desired, cfg: &GuestConfig, out: &mut Diff) {
    let have = match cfg.mount_points() {
        Ok(m) => m,
        Err(e) => {
            out.notes.push(e.to_string());
            return;
        }
    };
    let mut used: BTreeSet<u32> = have.keys().copied().collect();
    let by_path: BTreeMap<&str, (u32, &MountPoint)> = have
        .iter()
        .filter_map(|(i, m)| m.mp.as_deref().map(|p| (p, (*i, m))))
        .collect();
    let mut matched = BTreeSet::new();
    for mp in &d.mps {
        match by_path.get(mp.path.as_str()) {
            Some((idx, m)) => {
                matched.insert(*idx);
                let key = format!("mp{idx}");
                match (&mp.source, m.is_bind()) {
                    (MpSource::Storage { pool, size_gb }, false) => {
                        if m.storage() != Some(pool.as_str()) {
                            out.notes.push(format!("{key} ({}) is on storage {} but the config says {pool}; move it with `pct move-volume` (phx does not move data)", mp.path, m.storage().unwrap_or("?")));
                        }
                        let want = DiskSize::from_gib(*size_gb);
                        match m.size {
                            Some(h) if h < want => out.resizes.push((key.clone(), want, format!("{key} ({}) {h} -> {want}", mp.path))),
                            Some(h) if h > want => out.notes.push(format!("{key} ({}) is {h}, larger than the configured {want}; volumes are never shrunk", mp.path)),
                            _ => {}
                        }
                    }
                    (MpSource::Bind { host_path }, true) => {
                        if &m.volume != host_path {
                            let mut nm = (*m).clone();
                            nm.volume = host_path.clone();
                            let v = nm.to_string();
                            out.changes.push(Change {
                                key: key.clone(),
                                from: Some(m.to_string()),
                                to: Some(v.clone()),
                                restart: true,
                            });
                            out.set.insert(key, v);
                        }
                    }
                    _ => out.notes.push(format!(
                        "{key} ({}) is a {} but the config defines a {}; phx leaves it as it is",
                        mp.path,
                        if m.is_bind() {
                            "bind mount"
                        } else {
                            "storage volume"
                        },
                        if m.is_bind() {
                            "storage volume"
                        } else {
                            "bind mount"
                        }
                    )),
                }
            }
            None => {
                let idx = (0..).find(|i| !used.contains(i)).unwrap_or(0);
                used.insert(idx);
                let key = format!("mp{idx}");
                let v = mp.create_value();
                out.changes.push(Change {
                    key: key.clone(),
                    from: None,
                    to: Some(v.clone()),
                    restart: true,
                });
                out.set.insert(key, v);
            }
        }
    }
    for (idx, m) in &have {
        if !matched.contains(idx) && !out.set.contains_key(&format!("mp{idx}")) {
            out.notes.push(format!("mp{idx} ({}) is not in the config; phx leaves it (remove it with `pct set <id> --delete mp{idx}`)", m.mp.as_deref().unwrap_or("?")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_options_accept_both_separators_and_expand_caps() {
        assert_eq!(
            parse_raw_option("lxc.apparmor.profile=unconfined").unwrap(),
            vec![("lxc.apparmor.profile".into(), "unconfined".into())]
        );
        assert_eq!(
            parse_raw_option("lxc.mount.auto:sys:rw").unwrap(),
            vec![("lxc.mount.auto".into(), "sys:rw".into())]
        );
        assert_eq!(
            parse_raw_option("lxc.cap.keep=sys_admin,mknod")
                .unwrap()
                .len(),
            2
        );
        assert!(parse_raw_option("nesting=1").is_none());
    }

    #[test]
    fn idmap_gaps_are_filled_with_the_default_offset() {
        assert_eq!(
            idmap_ranges(vec![(33, 33, 1)]),
            vec![(0, 100_000, 33), (33, 33, 1), (34, 100_034, 65_502)]
        );
    }
}
