//! # phx-core
//!
//! The library behind `phx`, an orchestrator for Proxmox VE driven by the JSON configs of a
//! Phoenix Hypervisor install. The `phx` command line is one user of it; anything else that
//! wants to read those configs, plan changes or converge guests can link it the same way.
//!
//! ## Architecture
//!
//! ```text
//!  config files ──► config::Inventory ──► graph::DepGraph (prerequisites first, cycles named)
//!                        │                      │
//!                        ▼                      ▼
//!  backend::Hypervisor ◄── engine::Engine: observe ──► plan ──► apply (scheduler, retry)
//!    ▲         ▲         ▲                                           │
//!   pct       api      fake                                   report::Reporter
//!  (phx-backend-pct, phx-backend-api, phx-testkit)          (progress, logs, JSON lines)
//! ```
//!
//! 1. [`config`] reads and validates the Phoenix files (`phoenix_hypervisor_config.json`,
//!    `phoenix_lxc_configs.json`, `phoenix_vm_configs.json`, `phoenix_stacks_config.json`) into
//!    an [`Inventory`] of typed, checked values: past the loader no code sees raw JSON. Every
//!    problem is a [`Finding`] naming file, JSON path and check; [`config::audit`] lists what
//!    phx does differently from the shell tool.
//! 2. [`graph`] orders guests by their prerequisites (`clone_from_*`, `dependencies`, LXC and
//!    VM ids in one namespace) and by boot order.
//! 3. [`backend`] defines the [`Hypervisor`] traits: thin, Proxmox-shaped primitives with a
//!    documented contract. phx-core has no backend of its own: `phx-backend-pct` runs
//!    `pct`/`qm`/`pvesh`, `phx-backend-api` speaks the HTTP API, and `phx-testkit`'s
//!    `FakeBackend` is a strict in-memory Proxmox for tests and simulations.
//! 4. [`engine`] observes the cluster, diffs it against the inventory into a [`Plan`] (every
//!    action with its reason; a converged guest has none) and applies a plan on a scheduler
//!    with bounded concurrency and the retry rule of [`engine::retry`]. The executor is the
//!    only code that calls mutating backend methods, so planning without applying (a dry
//!    run) changes nothing by construction.
//! 5. [`report`] carries what happens during a run, as [`Event`]s to a [`Reporter`] you
//!    supply.
//! 6. [`types`] and [`propstr`] are the domain values: ids, names, sizes, CIDRs, firewall
//!    rules, and Proxmox property strings parsed so diffs compare values, not text.
//!
//! Errors are one [`Error`] enum of semantic kinds (`NotFound`, `Locked`, `TaskFailed`, ...);
//! [`Error::is_retryable`] says whether sending the same request again can help.
//!
//! ## Example
//!
//! Plan and apply `up` for a config held in memory, against the fake Proxmox of
//! `phx-testkit` (no Proxmox needed). `examples/plan_and_apply.rs` does the same for a config
//! directory, with a reporter that writes every event as a JSON line.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//!
//! use phx_core::config::Sources;
//! use phx_core::{Engine, Inventory, NullReporter, Operation, Outcome};
//! use phx_testkit::{FakeBackend, FakeCluster};
//!
//! // The text of the Phoenix files (`Inventory::load` reads them from a directory).
//! let sources = Sources {
//!     hypervisor: Some("{}".into()),
//!     lxc: Some(
//!         r#"{"lxc_configs": {"101": {
//!             "name": "dns", "template": "debian-12-standard_12.12-1_amd64.tar.zst",
//!             "memory_mb": 512, "cores": 1, "storage_pool": "local-lvm",
//!             "storage_size_gb": 8, "unprivileged": true, "start_at_boot": true
//!         }}}"#
//!             .into(),
//!     ),
//!     ..Sources::default()
//! };
//! let inventory = Inventory::check_sources(&sources, "etc".into(), "bin".into())
//!     .inventory
//!     .ok_or("the config is invalid")?;
//!
//! // A fresh single-node cluster in memory.
//! let engine = Engine::new(Arc::new(FakeBackend::new(FakeCluster::new())), inventory);
//! let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! rt.block_on(async {
//!     let plan = engine.plan(&[], Operation::Up).await?;
//!     let ops: Vec<&str> = plan.guests[0].actions.iter().map(|a| a.op).collect();
//!     assert_eq!(ops, ["download-template", "create", "configure"]);
//!     let result = engine.apply(&plan, &NullReporter).await;
//!     assert_eq!(result.count(Outcome::Changed), 1);
//!     // converged: planning again finds nothing to do
//!     assert!(engine.plan(&[], Operation::Up).await?.is_empty());
//!     Ok::<_, phx_core::Error>(())
//! })?;
//! # Ok(()) }
//! ```
//!
//! ## What is at the crate root
//!
//! The types most users need are re-exported here: [`Inventory`], [`LoadOptions`], [`Guest`]
//! and [`Finding`] to read a config; [`Engine`], [`EngineOptions`], [`Operation`], [`Plan`]
//! and [`RunResult`] to plan and apply; [`Hypervisor`] for backends; [`Reporter`], [`Event`]
//! and [`Outcome`] to follow a run; [`GuestId`] and [`GuestKind`]; [`Error`] and [`Result`].
//! Everything else is in its module.
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

pub use backend::Hypervisor;
pub use config::{Finding, Guest, Inventory, LoadOptions};
pub use engine::{Engine, EngineOptions, Operation, Plan, RunResult};
pub use error::{Error, Result};
pub use report::{Event, NullReporter, Outcome, Reporter};
pub use types::{GuestId, GuestKind};
