//! # phx-core
//!
//! The library behind `phx`, an orchestrator for Proxmox VE driven by the Phoenix Hypervisor
//! JSON configs.
//!
//! ```text
//!  config files ──► config::Inventory ──► graph::DepGraph
//!                                             │
//!  backend::Hypervisor ◄── engine: observe ──► plan ──► execute (scheduler, retry)
//!   ▲        ▲       ▲                                      │
//!   pct     api     fake (phx-testkit)                report::Reporter
//! ```
//!
//! - [`config`] reads and validates the files into an [`config::Inventory`].
//! - [`graph`] orders guests by their prerequisites (clone sources and dependencies).
//! - [`backend`] defines the traits every backend implements (pct/qm CLI, HTTP API, fake).
//! - [`engine`] diffs desired against observed state into a [`engine::Plan`] and executes it
//!   with bounded concurrency; the executor is the only code that calls mutating backend
//!   methods, so a dry run is safe by construction.
//! - [`propstr`] parses Proxmox property strings so diffs compare values, not text.
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod backend;
pub mod config;
pub mod engine;
pub mod error;
pub mod graph;
pub mod propstr;
pub mod report;
pub mod types;
pub mod util;

pub use error::{Error, Result};
