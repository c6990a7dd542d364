//! # phx-testkit
//!
//! - [`fake::FakeCluster`]: a strict in-memory Proxmox VE cluster, and [`fake::FakeBackend`],
//!   the phx-core traits over it (tests and `phx --backend sim`).
//! - [`conformance`]: one set of async cases over `&dyn Hypervisor` every backend runs, and
//!   [`conformance_suite!`] to expand them into one test per case.
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod conformance;
pub mod fake;

pub use fake::{FakeBackend, FakeCluster, Fault};
