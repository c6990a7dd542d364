//! # phx-testkit
//!
//! - [`fake::FakeCluster`]: a strict in-memory Proxmox VE cluster, and [`fake::FakeBackend`],
//!   the phx-core traits over it (tests and `phx --backend sim`).
//! - [`conformance`]: one set of async cases over `&dyn Hypervisor` every backend runs, and
//!   [`conformance_suite!`] to expand them into one test per case.
//! - `router` (feature `fake-pve`): one request router over a FakeCluster for every fake
//!   front; the `phx-fake-pve` binary (fake `pct`, `qm`, `pvesh`, `pvesm`, `pveam`) and
//!   `fake_pve_binary()`/`FakePve` to find it and give a test its own fake node.
//! - `server` (feature `fake-pve`): the fake HTTPS Proxmox API over the same router
//!   (`phx-fake-pve serve`, `server::FakeServer` in tests).
//! - [`fixtures`]: where tests find the real Phoenix configs and Proxmox outputs.
//! - [`WriteTrap`]: a mock backend that answers reads from another and fails every write, to
//!   prove that dry runs, plans and status never change anything.
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod conformance;
pub mod fake;
pub mod fixtures;
#[cfg(feature = "fake-pve")]
pub mod router;
#[cfg(feature = "fake-pve")]
pub mod server;
pub mod trap;

pub use fake::{FakeBackend, FakeCluster, Fault};
#[cfg(feature = "fake-pve")]
pub use router::{FakePve, fake_pve_binary};
pub use trap::WriteTrap;
