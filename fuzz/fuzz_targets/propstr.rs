//! Property strings and the checked value types behind them.
//!
//! The engine compares *parsed* values and writes their `Display` form back to Proxmox, so
//! beyond "no panic" each parser must round-trip: whatever it accepts prints as a string
//! that parses to the same value, and printing that again changes nothing.
#![no_main]

use std::fmt::{Debug, Display};
use std::str::FromStr;

use libfuzzer_sys::fuzz_target;
use phx_core::propstr::{
    IpConfig, LxcFeatures, LxcNet, MountPoint, NetIp, QemuDisk, QemuNet, Startup, diff_pairs,
};
use phx_core::types::{
    Cidr, DiskSize, FirewallAction, FirewallDirection, FirewallRule, GuestId, Hostname, MacAddr,
    NodeName, PortSpec, Protocol, SnapshotName, StorageId,
};
use phx_fuzz::{select, text};

/// `s` parses to `v` ⇒ `v` prints as a string that parses to `v`, and prints the same again.
fn round_trip<T>(s: &str)
where
    T: FromStr + Display + PartialEq + Debug,
    T::Err: Display,
{
    let Ok(v) = s.parse::<T>() else {
        return;
    };
    let shown = v.to_string();
    match shown.parse::<T>() {
        Ok(again) => {
            assert_eq!(again, v, "{s:?} -> {shown:?} reads back differently");
            assert_eq!(again.to_string(), shown, "{s:?}: printing is not stable");
        }
        Err(e) => panic!("{s:?} parsed, but its printed form {shown:?} does not: {e}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((which, rest)) = select(data, 20) else {
        return;
    };
    let s = text(rest);
    match which {
        0 => round_trip::<LxcNet>(&s),
        1 => round_trip::<MountPoint>(&s),
        2 => round_trip::<LxcFeatures>(&s),
        3 => round_trip::<Startup>(&s),
        4 => round_trip::<QemuNet>(&s),
        5 => round_trip::<QemuDisk>(&s),
        6 => round_trip::<IpConfig>(&s),
        7 => round_trip::<NetIp>(&s),
        8 => round_trip::<Cidr>(&s),
        9 => round_trip::<MacAddr>(&s),
        10 => round_trip::<DiskSize>(&s),
        11 => round_trip::<GuestId>(&s),
        12 => round_trip::<Hostname>(&s),
        13 => round_trip::<NodeName>(&s),
        14 => round_trip::<StorageId>(&s),
        15 => round_trip::<SnapshotName>(&s),
        16 => round_trip::<PortSpec>(&s),
        17 => {
            round_trip::<Protocol>(&s);
            round_trip::<FirewallAction>(&s);
            round_trip::<FirewallDirection>(&s);
        }
        18 => {
            // A normalised address list is accepted again unchanged.
            if let Ok(a) = FirewallRule::check_address(&s) {
                assert_eq!(FirewallRule::check_address(&a).as_deref(), Ok(a.as_str()));
            }
        }
        _ => {
            // Two property strings, as a plan shows their difference.
            let (a, b) = s.split_once('\n').unwrap_or((&s, ""));
            let d = diff_pairs(a, b);
            if a == b {
                assert!(d.is_empty(), "{a:?} differs from itself: {d}");
            }
        }
    }
});
