//! Domain types with checked constructors ("parse, don't validate").
//!
//! Everything past the config loader and the backend parsers sees only these types, so an
//! invalid id, address or name cannot reach the engine.

mod firewall;
mod guest_id;
mod names;
mod net;
mod secret;
mod size;

pub use firewall::{
    FirewallAction, FirewallDirection, FirewallRule, PortSpec, Protocol, rule_changes,
};
pub use guest_id::{GuestId, GuestKind};
pub use names::{Hostname, NodeName, SnapshotName, StorageId};
pub use net::{Cidr, MacAddr, ip_in_subnet};
pub use secret::Secret;
pub use size::DiskSize;

/// A value that failed a checked constructor: what was given and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not {expected}")]
pub struct ParseError {
    /// The rejected input, as given.
    pub value: String,
    /// What a valid value looks like (`a CIDR (expected a.b.c.d/nn)`).
    pub expected: String,
}

impl ParseError {
    pub(crate) fn new(value: impl Into<String>, expected: impl Into<String>) -> Self {
        Self {
            value: value.into(),
            expected: expected.into(),
        }
    }
}
