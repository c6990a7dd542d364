//! Checked constructors round-trip every valid value and reject every invalid one.

use std::net::Ipv4Addr;

use phx_core::types::{Cidr, GuestId, MacAddr};
use proptest::prelude::*;

fn unicast_octets() -> impl Strategy<Value = [u8; 6]> {
    any::<[u8; 6]>().prop_map(|mut o| {
        o[0] &= !1;
        o
    })
}

fn mac_text(o: [u8; 6]) -> String {
    let parts: Vec<String> = o.iter().map(|b| format!("{b:02X}")).collect();
    parts.join(":")
}

proptest! {
    #[test]
    fn guest_id_round_trips_through_text(n in u64::from(GuestId::MIN)..=u64::from(GuestId::MAX)) {
        let id = GuestId::new(n).unwrap();
        prop_assert_eq!(u64::from(id), n);
        prop_assert_eq!(id.to_string(), n.to_string());
        prop_assert_eq!(id.to_string().parse::<GuestId>().unwrap(), id);
    }

    #[test]
    fn guest_id_below_100_is_rejected(n in 0u64..u64::from(GuestId::MIN)) {
        prop_assert!(GuestId::new(n).is_err());
        prop_assert!(n.to_string().parse::<GuestId>().is_err());
    }

    #[test]
    fn guest_id_above_max_is_rejected(n in u64::from(GuestId::MAX) + 1..) {
        prop_assert!(GuestId::new(n).is_err());
        prop_assert!(n.to_string().parse::<GuestId>().is_err());
    }

    #[test]
    fn guest_id_with_leading_zero_is_rejected(n in u64::from(GuestId::MIN)..=u64::from(GuestId::MAX)) {
        let padded = format!("0{n}");
        prop_assert!(padded.parse::<GuestId>().is_err());
    }

    #[test]
    fn cidr_round_trips_through_text(addr in any::<[u8; 4]>(), prefix in 0u8..=32) {
        let text = format!("{}/{prefix}", Ipv4Addr::from(addr));
        let cidr: Cidr = text.parse().unwrap();
        prop_assert_eq!(cidr.addr(), Ipv4Addr::from(addr));
        prop_assert_eq!(cidr.prefix(), prefix);
        prop_assert_eq!(cidr.to_string(), text);
        prop_assert!(cidr.contains(cidr.addr()));
    }

    #[test]
    fn cidr_with_prefix_over_32_is_rejected(addr in any::<[u8; 4]>(), prefix in 33u16..1000) {
        let text = format!("{}/{prefix}", Ipv4Addr::from(addr));
        prop_assert!(text.parse::<Cidr>().is_err());
        if let Ok(p) = u8::try_from(prefix) {
            prop_assert!(Cidr::new(Ipv4Addr::from(addr), p).is_err());
        }
    }

    #[test]
    fn cidr_without_prefix_is_rejected(addr in any::<[u8; 4]>()) {
        let ip = Ipv4Addr::from(addr);
        let err = ip.to_string().parse::<Cidr>().unwrap_err();
        prop_assert_eq!(err.to_string(), format!("\"{ip}\" is not a CIDR (expected a.b.c.d/nn)"));
        let empty_prefix = format!("{ip}/");
        prop_assert!(empty_prefix.parse::<Cidr>().is_err());
    }

    #[test]
    fn unicast_mac_round_trips_through_text(octets in unicast_octets()) {
        let text = mac_text(octets);
        let mac: MacAddr = text.parse().unwrap();
        prop_assert_eq!(mac.octets(), octets);
        prop_assert_eq!(mac.to_string(), text.clone());
        // Proxmox stores upper case; lower case input means the same address.
        prop_assert_eq!(text.to_lowercase().parse::<MacAddr>().unwrap(), mac);
    }

    #[test]
    fn multicast_mac_is_rejected(mut octets in any::<[u8; 6]>()) {
        octets[0] |= 1;
        prop_assert!(MacAddr::new(octets).is_err());
        prop_assert!(mac_text(octets).parse::<MacAddr>().is_err());
    }
}
