use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::ParseError;

/// An IPv4 address with prefix length: `10.0.0.12/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cidr {
    addr: Ipv4Addr,
    prefix: u8,
}

const CIDR_EXPECTED: &str = "a CIDR (expected a.b.c.d/nn)";

impl Cidr {
    /// Checked constructor.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Self, ParseError> {
        if prefix > 32 {
            return Err(ParseError::new(format!("{addr}/{prefix}"), CIDR_EXPECTED));
        }
        Ok(Self { addr, prefix })
    }
    /// The host address.
    pub fn addr(self) -> Ipv4Addr {
        self.addr
    }
    /// The prefix length (0..=32).
    pub fn prefix(self) -> u8 {
        self.prefix
    }
    /// Whether `ip` lies in this address's subnet.
    pub fn contains(self, ip: Ipv4Addr) -> bool {
        ip_in_subnet(ip, self.addr, self.prefix)
    }
}

/// Whether `ip` and `net` share the first `prefix` bits.
pub fn ip_in_subnet(ip: Ipv4Addr, net: Ipv4Addr, prefix: u8) -> bool {
    if prefix == 0 {
        return true;
    }
    let mask = u32::MAX << (32 - u32::from(prefix.min(32)));
    (u32::from(ip) & mask) == (u32::from(net) & mask)
}

impl FromStr for Cidr {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseError::new(s, CIDR_EXPECTED);
        let (a, p) = s.split_once('/').ok_or_else(err)?;
        let addr: Ipv4Addr = a.parse().map_err(|_| err())?;
        if p.is_empty() || p.len() > 2 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let prefix: u8 = p.parse().map_err(|_| err())?;
        Self::new(addr, prefix).map_err(|_| err())
    }
}

impl TryFrom<String> for Cidr {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}
impl From<Cidr> for String {
    fn from(c: Cidr) -> String {
        c.to_string()
    }
}
impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A unicast Ethernet MAC address, printed the way Proxmox stores it (`BC:24:11:5E:3A:01`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MacAddr([u8; 6]);

const MAC_EXPECTED: &str = "a unicast MAC address (expected xx:xx:xx:xx:xx:xx, first octet even)";

impl MacAddr {
    /// The six octets.
    pub fn octets(self) -> [u8; 6] {
        self.0
    }
    /// Checked constructor: rejects multicast addresses, which Proxmox refuses.
    pub fn new(octets: [u8; 6]) -> Result<Self, ParseError> {
        if octets[0] & 1 == 1 {
            return Err(ParseError::new(Self(octets).to_string(), MAC_EXPECTED));
        }
        Ok(Self(octets))
    }
}

impl FromStr for MacAddr {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseError::new(s, MAC_EXPECTED);
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() != 6 {
            return Err(err());
        }
        let mut o = [0u8; 6];
        for (i, p) in parts.iter().enumerate() {
            if p.len() != 2 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(err());
            }
            o[i] = u8::from_str_radix(p, 16).map_err(|_| err())?;
        }
        Self::new(o).map_err(|_| err())
    }
}
impl TryFrom<String> for MacAddr {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}
impl From<MacAddr> for String {
    fn from(m: MacAddr) -> String {
        m.to_string()
    }
}
impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = self.0;
        write!(
            f,
            "{:02X}:{:02X}:{:02X}:{:02X}:{:02X}:{:02X}",
            o[0], o[1], o[2], o[3], o[4], o[5]
        )
    }
}
