//! Proxmox property strings: the canonical forms Proxmox stores parse and print back
//! unchanged (every one in the captured configs of `shared/fixtures/pve-samples`, and random
//! ones), items in another order parse to the same value, and the planner compares parsed
//! values, so a string Proxmox wrote in another order is not drift.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::str::FromStr;

use phx_core::propstr::{
    IpConfig, LxcFeatures, LxcNet, MountPoint, NetIp, QemuDisk, QemuNet, Startup,
};
use phx_core::types::{Cidr, DiskSize, MacAddr};
use proptest::prelude::*;

use crate::support::pve_samples;

/// Parse `s` and print it again: the same text.
fn round_trip<T>(s: &str) -> T
where
    T: FromStr + Display,
    T::Err: Display,
{
    let v: T = s
        .parse()
        .unwrap_or_else(|e| panic!("{s:?} does not parse: {e}"));
    assert_eq!(v.to_string(), s, "printed back differently");
    v
}

#[test]
fn container_strings_in_canonical_form_print_back_unchanged() {
    let net: LxcNet = round_trip(
        "name=eth0,bridge=vmbr0,firewall=1,gw=10.0.0.1,hwaddr=BC:24:11:AA:BB:CC,ip=10.0.0.5/24,ip6=dhcp,mtu=1400,tag=20,type=veth",
    );
    assert_eq!(net.name, "eth0");
    assert_eq!(net.bridge.as_deref(), Some("vmbr0"));
    assert_eq!(net.firewall, Some(true));
    assert_eq!(net.gw, Some("10.0.0.1".parse().unwrap()));
    assert_eq!(net.hwaddr, Some("BC:24:11:AA:BB:CC".parse().unwrap()));
    assert_eq!(net.ip, Some(NetIp::Static("10.0.0.5/24".parse().unwrap())));
    assert_eq!((net.tag, net.mtu), (Some(20), Some(1400)));
    assert_eq!(net.kind.as_deref(), Some("veth"));
    assert_eq!(
        net.extra,
        BTreeMap::from([("ip6".to_string(), "dhcp".to_string())])
    );
    round_trip::<LxcNet>("name=eth1,ip=manual");

    let root: MountPoint = round_trip("local-lvm:vm-100-disk-0,size=8G");
    assert_eq!(root.storage(), Some("local-lvm"));
    assert_eq!(root.size, Some(DiskSize::from_gib(8)));
    assert!(!root.is_bind());
    let mp: MountPoint =
        round_trip("local-zfs:subvol-101-disk-1,mp=/data,acl=1,backup=0,ro=1,size=512M");
    assert_eq!(mp.mp.as_deref(), Some("/data"));
    assert_eq!((mp.backup, mp.ro), (Some(false), Some(true)));
    assert_eq!(mp.size, Some(DiskSize::from_bytes(512 << 20)));
    let bind: MountPoint = round_trip("/srv/share,mp=/mnt/share,shared=1");
    assert!(bind.is_bind());
    assert_eq!(bind.storage(), None);

    let f: LxcFeatures = round_trip("fuse=1,keyctl=1,mount=nfs;cifs,nesting=1");
    assert_eq!(f.0["mount"], "nfs;cifs");
    let s: Startup = round_trip("order=3,up=5,down=10");
    assert_eq!((s.order, s.up, s.down), (Some(3), Some(5), Some(10)));
    round_trip::<Startup>("order=1");
}

#[test]
fn vm_strings_in_canonical_form_print_back_unchanged() {
    let net: QemuNet = round_trip("virtio=BC:24:11:3B:FC:BD,bridge=vmbr0,firewall=1,tag=30");
    assert_eq!(net.model, "virtio");
    assert_eq!(net.macaddr, Some("BC:24:11:3B:FC:BD".parse().unwrap()));
    assert_eq!((net.firewall, net.tag), (Some(true), Some(30)));
    // without a MAC, Proxmox generates one
    let net: QemuNet = round_trip("e1000,bridge=vmbr1");
    assert_eq!((net.model.as_str(), net.macaddr), ("e1000", None));

    let d: QemuDisk = round_trip("local-lvm:vm-101-disk-0,discard=on,iothread=1,size=32G");
    assert_eq!(d.storage(), Some("local-lvm"));
    assert_eq!(d.size, Some(DiskSize::from_gib(32)));
    assert_eq!(d.extra["discard"], "on");
    let ci: QemuDisk = round_trip("local-lvm:vm-101-cloudinit,media=cdrom");
    assert!(ci.is_cloudinit());
    assert_eq!(ci.media.as_deref(), Some("cdrom"));

    let ip: IpConfig = round_trip("gw=10.0.0.1,ip=10.0.0.21/24");
    assert_eq!(ip.ip, Some(NetIp::Static("10.0.0.21/24".parse().unwrap())));
    assert_eq!(ip.gw, Some("10.0.0.1".parse().unwrap()));
    let ip: IpConfig = round_trip("ip=dhcp,ip6=auto");
    assert_eq!(ip.ip, Some(NetIp::Dhcp));
}

#[test]
fn items_in_another_order_parse_to_the_same_value_and_print_canonically() {
    fn same<T>(other_order: &str, canonical: &str)
    where
        T: FromStr + Display + PartialEq + std::fmt::Debug,
        T::Err: std::fmt::Debug,
    {
        let a: T = other_order.parse().unwrap();
        assert_eq!(a, canonical.parse::<T>().unwrap(), "{other_order}");
        assert_eq!(a.to_string(), canonical);
    }
    same::<LxcNet>(
        "type=veth,ip=10.0.0.5/24,hwaddr=BC:24:11:AA:BB:CC,bridge=vmbr0,name=eth0,gw=10.0.0.1",
        "name=eth0,bridge=vmbr0,gw=10.0.0.1,hwaddr=BC:24:11:AA:BB:CC,ip=10.0.0.5/24,type=veth",
    );
    same::<MountPoint>(
        "local-lvm:vm-100-disk-1,size=10G,backup=1,mp=/data",
        "local-lvm:vm-100-disk-1,mp=/data,backup=1,size=10G",
    );
    // the volume is the default key: named, or first
    same::<MountPoint>("mp=/data,volume=/srv/x", "/srv/x,mp=/data");
    same::<LxcFeatures>("nesting=1,keyctl=1", "keyctl=1,nesting=1");
    // booleans in any spelling Proxmox accepts
    same::<LxcFeatures>("nesting=yes,fuse=on", "fuse=1,nesting=1");
    same::<Startup>("down=5,up=5,order=2", "order=2,up=5,down=5");
    // `startup: 3` is `order=3`
    same::<Startup>("3", "order=3");
    same::<QemuNet>(
        "bridge=vmbr0,virtio=BC:24:11:3B:FC:BD,firewall=1",
        "virtio=BC:24:11:3B:FC:BD,bridge=vmbr0,firewall=1",
    );
    same::<QemuNet>(
        "bridge=vmbr0,model=virtio,macaddr=BC:24:11:3B:FC:BD",
        "virtio=BC:24:11:3B:FC:BD,bridge=vmbr0",
    );
    same::<QemuDisk>(
        "size=32G,discard=on,file=local-lvm:vm-101-disk-0",
        "local-lvm:vm-101-disk-0,discard=on,size=32G",
    );
    same::<IpConfig>("ip=10.0.0.21/24,gw=10.0.0.1", "gw=10.0.0.1,ip=10.0.0.21/24");
}

#[test]
fn malformed_strings_are_refused_with_the_reason() {
    let err = |r: Result<(), String>| r.unwrap_err();
    assert_eq!(
        err("bridge=vmbr0"
            .parse::<LxcNet>()
            .map(drop)
            .map_err(|e| e.to_string())),
        "invalid container network (netN) \"bridge=vmbr0\": missing required key 'name'"
    );
    assert_eq!(
        err("name=eth0,name=eth1"
            .parse::<LxcNet>()
            .map(drop)
            .map_err(|e| e.to_string())),
        "invalid container network (netN) \"name=eth0,name=eth1\": duplicate key \"name\""
    );
    assert_eq!(
        err("nesting=1,bogus=1"
            .parse::<LxcFeatures>()
            .map(drop)
            .map_err(|e| e.to_string())),
        "invalid container features \"nesting=1,bogus=1\": unknown feature \"bogus\" (known: force_rw_sys, fuse, keyctl, mknod, mount, nesting)"
    );
    assert_eq!(
        err("order=1,later=2"
            .parse::<Startup>()
            .map(drop)
            .map_err(|e| e.to_string())),
        "invalid startup \"order=1,later=2\": unknown key \"later\""
    );
    assert_eq!(
        err("bridge=vmbr0"
            .parse::<QemuNet>()
            .map(drop)
            .map_err(|e| e.to_string())),
        "invalid VM network (netN) \"bridge=vmbr0\": missing NIC model (e.g. virtio)"
    );
}

// ----- every property string Proxmox wrote in the captured configs -------------------------

/// `(file, key, value)` of every config sample: the `data` of an API answer, or the
/// `key: value` lines of `pct config`/`qm config` (without the shell prompt).
fn sample_configs(kind: &str) -> Option<Vec<(String, String, String)>> {
    let dir = pve_samples()?;
    let mut out = Vec::new();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let (api, cli) = match kind {
        "lxc" => ("api-lxc-config-", "cli-pct-config-"),
        _ => ("api-qemu-config-", "cli-qm-config-"),
    };
    for name in names {
        let text = std::fs::read_to_string(dir.join(&name)).unwrap();
        if name.starts_with(api) {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            for (k, v) in v["data"].as_object().unwrap() {
                if let Some(s) = v.as_str() {
                    out.push((name.clone(), k.clone(), s.to_string()));
                }
            }
        } else if name.starts_with(cli) {
            for l in text.lines().filter(|l| !l.contains(":~#")) {
                if let Some((k, v)) = l.split_once(": ") {
                    out.push((name.clone(), k.to_string(), v.to_string()));
                }
            }
        }
    }
    Some(out)
}

fn numbered(key: &str, prefix: &str) -> bool {
    key.strip_prefix(prefix)
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Round-trips every sample value whose key `is` picks; returns `key=value` of each.
fn check_samples<T>(samples: &[(String, String, String)], is: impl Fn(&str) -> bool) -> Vec<String>
where
    T: FromStr + Display,
    T::Err: Display,
{
    let mut seen = Vec::new();
    for (file, k, v) in samples.iter().filter(|(_, k, _)| is(k)) {
        let parsed: T = v
            .parse()
            .unwrap_or_else(|e| panic!("{file}: {k}: {v:?} does not parse: {e}"));
        assert_eq!(
            &parsed.to_string(),
            v,
            "{file}: {k} printed back differently"
        );
        seen.push(format!("{k}={v}"));
    }
    seen
}

#[test]
fn every_container_property_string_in_the_samples_prints_back_unchanged() {
    let Some(samples) = sample_configs("lxc") else {
        return;
    };
    let nets = check_samples::<LxcNet>(&samples, |k| numbered(k, "net"));
    let disks = check_samples::<MountPoint>(&samples, |k| k == "rootfs" || numbered(k, "mp"));
    let features = check_samples::<LxcFeatures>(&samples, |k| k == "features");
    let startup = check_samples::<Startup>(&samples, |k| k == "startup");
    // what the samples hold (a sample that stops parsing, or goes missing, shows here)
    assert_eq!(nets.len(), 3, "{nets:#?}");
    assert_eq!(disks.len(), 7, "{disks:#?}");
    assert_eq!(features, ["features=nesting=1", "features=nesting=1"]);
    assert!(startup.is_empty());
}

#[test]
fn every_vm_property_string_in_the_samples_prints_back_unchanged() {
    let Some(samples) = sample_configs("qemu") else {
        return;
    };
    let disk = |k: &str| {
        ["scsi", "virtio", "ide", "sata", "unused"]
            .iter()
            .any(|p| numbered(k, p))
    };
    let nets = check_samples::<QemuNet>(&samples, |k| numbered(k, "net"));
    let disks = check_samples::<QemuDisk>(&samples, disk);
    let ipconfigs = check_samples::<IpConfig>(&samples, |k| numbered(k, "ipconfig"));
    assert_eq!(nets.len(), 4, "{nets:#?}");
    assert_eq!(disks.len(), 11, "{disks:#?}");
    assert_eq!(ipconfigs, ["ipconfig0=ip=dhcp,ip6=dhcp"]);
}

// ----- random values ------------------------------------------------------------------------

fn mac() -> impl Strategy<Value = MacAddr> {
    any::<[u8; 6]>().prop_map(|mut o| {
        o[0] &= 0xfe;
        MacAddr::new(o).unwrap()
    })
}

fn net_ip() -> impl Strategy<Value = NetIp> {
    prop_oneof![
        Just(NetIp::Dhcp),
        Just(NetIp::Manual),
        (any::<[u8; 4]>(), 0u8..=32)
            .prop_map(|(a, p)| NetIp::Static(Cidr::new(a.into(), p).unwrap())),
    ]
}

fn word() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_-]{0,8}"
}

/// Keys phx keeps verbatim: never one it interprets.
fn extra(known: &'static [&'static str]) -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(
        word().prop_filter("a key phx interprets", move |k| {
            !known.contains(&k.as_str())
        }),
        "[a-zA-Z0-9./:;_-]{1,12}",
        0..3,
    )
}

fn size() -> impl Strategy<Value = DiskSize> {
    prop_oneof![
        (1u64..4096).prop_map(DiskSize::from_gib),
        (1u64..1 << 20).prop_map(|k| DiskSize::from_bytes(k << 10)),
    ]
}

fn lxc_net() -> impl Strategy<Value = LxcNet> {
    (
        "eth[0-9]",
        prop::option::of("vmbr[0-9]{1,2}"),
        prop::option::of(any::<bool>()),
        prop::option::of(any::<[u8; 4]>()),
        prop::option::of(mac()),
        prop::option::of(net_ip()),
        prop::option::of(1u16..4095),
        prop::option::of(576u16..9000),
        prop::option::of(Just("veth".to_string())),
        extra(&[
            "name", "bridge", "firewall", "gw", "hwaddr", "ip", "tag", "mtu", "type",
        ]),
    )
        .prop_map(
            |(name, bridge, firewall, gw, hwaddr, ip, tag, mtu, kind, extra)| LxcNet {
                name,
                bridge,
                firewall,
                gw: gw.map(Into::into),
                hwaddr,
                ip,
                tag,
                mtu,
                kind,
                extra,
            },
        )
}

fn mount_point() -> impl Strategy<Value = MountPoint> {
    (
        prop_oneof![
            "[a-z][a-z0-9-]{0,8}:vm-[1-9][0-9]{2}-disk-[0-9]",
            "/[a-z]{1,8}(/[a-z]{1,8}){0,2}",
        ],
        prop::option::of("/[a-z]{1,8}(/[a-z]{1,8}){0,2}"),
        prop::option::of(size()),
        prop::option::of(any::<bool>()),
        prop::option::of(any::<bool>()),
        extra(&["volume", "mp", "size", "backup", "ro"]),
    )
        .prop_map(|(volume, mp, size, backup, ro, extra)| MountPoint {
            volume,
            mp,
            size,
            backup,
            ro,
            extra,
        })
}

fn qemu_net() -> impl Strategy<Value = QemuNet> {
    (
        prop::sample::select(vec!["virtio", "e1000", "vmxnet3", "rtl8139"]),
        prop::option::of(mac()),
        prop::option::of("vmbr[0-9]{1,2}"),
        prop::option::of(any::<bool>()),
        prop::option::of(1u16..4095),
        extra(&[
            "model", "macaddr", "bridge", "firewall", "tag", "virtio", "e1000", "vmxnet3",
            "rtl8139", "e1000e", "i82551", "i82557b", "i82559er", "ne2k_isa", "ne2k_pci", "pcnet",
        ]),
    )
        .prop_map(|(model, macaddr, bridge, firewall, tag, extra)| QemuNet {
            model: model.to_string(),
            macaddr,
            bridge,
            firewall,
            tag,
            extra,
        })
}

fn qemu_disk() -> impl Strategy<Value = QemuDisk> {
    (
        "[a-z][a-z0-9-]{0,8}:vm-[1-9][0-9]{2}-disk-[0-9]",
        prop::option::of(size()),
        prop::option::of(Just("cdrom".to_string())),
        extra(&["file", "size", "media"]),
    )
        .prop_map(|(file, size, media, extra)| QemuDisk {
            file,
            size,
            media,
            extra,
        })
}

fn ip_config() -> impl Strategy<Value = IpConfig> {
    (
        prop::option::of(prop_oneof![
            Just(NetIp::Dhcp),
            (any::<[u8; 4]>(), 0u8..=32)
                .prop_map(|(a, p)| NetIp::Static(Cidr::new(a.into(), p).unwrap())),
        ]),
        prop::option::of(any::<[u8; 4]>()),
        extra(&["ip", "gw"]),
    )
        .prop_map(|(ip, gw, extra)| IpConfig {
            ip,
            gw: gw.map(Into::into),
            extra,
        })
}

/// Printed, parsed back: the same value, and printing again gives the same text; with its
/// items shuffled, still the same value.
fn holds<T>(v: &T, shuffle: &[usize]) -> Result<(), TestCaseError>
where
    T: FromStr + Display + PartialEq + std::fmt::Debug,
    T::Err: Display,
{
    let text = v.to_string();
    let back: T = text
        .parse()
        .map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?;
    prop_assert_eq!(&back, v, "{}", text);
    prop_assert_eq!(back.to_string(), text.clone());
    // another order of the items: the first (a default key's bare value) stays first
    let mut items: Vec<&str> = text.split(',').collect();
    if items.len() > 2 {
        let first = items.remove(0);
        let n = items.len();
        for (i, j) in shuffle.iter().enumerate() {
            items.swap(i % n, j % n);
        }
        items.insert(0, first);
        let other = items.join(",");
        let again: T = other
            .parse()
            .map_err(|e| TestCaseError::fail(format!("{other:?}: {e}")))?;
        prop_assert_eq!(&again, v, "{} (from {})", other, text);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn container_nets_round_trip(v in lxc_net(), s in prop::collection::vec(0usize..16, 4)) {
        holds(&v, &s)?;
    }

    #[test]
    fn mount_points_round_trip(v in mount_point(), s in prop::collection::vec(0usize..16, 4)) {
        holds(&v, &s)?;
    }

    #[test]
    fn features_round_trip(
        v in prop::collection::btree_map(
            prop::sample::select(vec!["force_rw_sys", "fuse", "keyctl", "mknod", "nesting"]),
            prop::sample::select(vec!["0", "1"]),
            0..5,
        ),
        mount in prop::option::of("(nfs|cifs|ext4)(;(nfs|cifs|ext4)){0,2}"),
        s in prop::collection::vec(0usize..16, 4),
    ) {
        let mut m: BTreeMap<String, String> =
            v.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        if let Some(mount) = mount {
            m.insert("mount".into(), mount);
        }
        holds(&LxcFeatures(m), &s)?;
    }

    #[test]
    fn startups_round_trip(
        order in prop::option::of(0u32..1000),
        up in prop::option::of(0u32..600),
        down in prop::option::of(0u32..600),
        s in prop::collection::vec(0usize..16, 4),
    ) {
        holds(&Startup { order, up, down }, &s)?;
    }

    #[test]
    fn vm_nets_round_trip(v in qemu_net(), s in prop::collection::vec(0usize..16, 4)) {
        holds(&v, &s)?;
    }

    #[test]
    fn vm_disks_round_trip(v in qemu_disk(), s in prop::collection::vec(0usize..16, 4)) {
        holds(&v, &s)?;
    }

    #[test]
    fn ip_configs_round_trip(v in ip_config(), s in prop::collection::vec(0usize..16, 4)) {
        holds(&v, &s)?;
    }
}

// ----- the planner compares parsed values ---------------------------------------------------

/// `s`'s items in reverse order (a default key's bare value stays first).
fn reversed_items(s: &str) -> String {
    let mut items: Vec<&str> = s.split(',').collect();
    let bare = items.first().filter(|i| !i.contains('=')).copied();
    if bare.is_some() {
        items.remove(0);
    }
    items.reverse();
    bare.into_iter().chain(items).collect::<Vec<_>>().join(",")
}

#[tokio::test]
async fn a_property_string_in_another_order_on_the_cluster_is_not_drift() {
    use std::sync::Arc;

    use phx_core::config::{Inventory, LoadOptions};
    use phx_core::engine::{Engine, Operation};
    use phx_core::report::NullReporter;
    use phx_core::types::GuestId;

    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/homelab");
    let inv = || {
        Inventory::load(&LoadOptions {
            config_dir: example.join("etc"),
            scripts_dir: Some(example.join("bin")),
        })
        .unwrap()
    };
    let fake = phx_testkit::FakeBackend::new(phx_testkit::FakeCluster::new());
    let engine = Engine::new(Arc::new(fake.clone()), inv());
    let ids = [GuestId::new(102).unwrap(), GuestId::new(1001).unwrap()];
    let plan = engine.plan(&ids, Operation::Up).await.unwrap();
    assert_eq!(engine.apply(&plan, &NullReporter).await.result(), "ok");
    // as if another tool had written the same values in another order
    let rewritten = fake.with(|c| {
        let mut keys = Vec::new();
        for id in [102, 1001] {
            let g = c.guests.get_mut(&id).unwrap();
            for (k, v) in g.config.iter_mut() {
                let prop = k.starts_with("net")
                    || k.starts_with("mp")
                    || k.starts_with("scsi")
                    || k.starts_with("ipconfig")
                    || ["rootfs", "features", "startup"].contains(&k.as_str());
                let other = reversed_items(v);
                if prop && other != *v {
                    *v = other;
                    keys.push(format!("{id} {k}"));
                }
            }
        }
        keys
    });
    assert_eq!(
        rewritten,
        [
            "102 features",
            "102 mp0",
            "102 net0",
            "102 startup",
            "1001 ipconfig0",
            "1001 net0",
            "1001 startup"
        ]
    );
    let again = engine.plan(&ids, Operation::Up).await.unwrap();
    assert!(
        again.is_empty(),
        "{:#?}",
        again
            .guests
            .iter()
            .flat_map(|g| g.actions.iter().map(|a| format!("{} {}", g.id, a.detail)))
            .collect::<Vec<_>>()
    );
    // a different value in the same place is drift
    fake.with(|c| {
        let g = c.guests.get_mut(&102).unwrap();
        let net = g.config["net0"].replace("ip=192.168.50.11/24", "ip=192.168.50.99/24");
        g.config.insert("net0".into(), net);
    });
    let plan = engine.plan(&ids[..1], Operation::Up).await.unwrap();
    let changes: Vec<String> = plan
        .guests
        .iter()
        .flat_map(|g| g.actions.iter())
        .flat_map(|a| a.changes.iter().map(ToString::to_string))
        .collect();
    assert_eq!(changes, ["net0 ip 192.168.50.99/24 -> 192.168.50.11/24"]);
}
