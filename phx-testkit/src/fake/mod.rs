//! [`FakeCluster`]: an in-memory Proxmox VE cluster that is *strict* like the real one: ids in
//! use, locks (`lock: create`, `lock: disk` on an LXC clone source, `lock: snapshot`),
//! protection, the LXC/QEMU asymmetries, snapshot chains, storages with content types, tasks
//! with real UPIDs and logs, and Proxmox's exact error messages. It can inject faults and task
//! latency, counts reads and writes, and keeps an operation log for snapshot tests.
//!
//! It is served three ways: directly as [`FakeBackend`] (tests, `phx --backend sim`), as fake
//! `pct`/`qm`/`pvesh` executables, and as a fake HTTPS API.

mod backend;
mod cluster;
pub mod guest;
mod persist;
mod schema;
mod state;

pub use backend::FakeBackend;
pub use cluster::{
    ConfigView, FAULT_OPS, FakeCluster, TaskOutcome, digest, escape_description, render_conf,
};
pub use persist::{
    StateError, load_state, raw_lxc_of_file, read_etc, render_lxc_conf_file, save_state,
    scratch_of, write_etc, write_etc_since,
};
pub use state::*;

use std::collections::BTreeMap;
use std::fmt;

/// An error as Proxmox reports it: HTTP status, message, per-parameter errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PveError {
    /// HTTP status (400, 500, 596, ...).
    pub status: u16,
    /// Message (the HTTP reason phrase's source).
    pub message: String,
    /// Parameter errors of a 400.
    pub errors: BTreeMap<String, String>,
}

impl PveError {
    /// A 500 with a message.
    pub fn e500(msg: impl Into<String>) -> Self {
        Self {
            status: 500,
            message: msg.into(),
            errors: BTreeMap::new(),
        }
    }
    /// A 400 "Parameter verification failed." for one parameter.
    pub fn param(key: &str, msg: impl Into<String>) -> Self {
        Self {
            status: 400,
            message: "Parameter verification failed.".into(),
            errors: BTreeMap::from([(key.to_string(), msg.into())]),
        }
    }
    /// Convert into a phx-core error.
    pub fn into_core(self) -> phx_core::Error {
        match self.status {
            400 => phx_core::Error::InvalidRequest {
                message: self.message,
                params: self.errors,
            },
            401 => phx_core::Error::Unauthenticated {
                message: self.message,
            },
            403 => phx_core::Error::PermissionDenied {
                message: self.message,
            },
            595..=599 => phx_core::Error::Transient {
                message: format!("{} {}", self.status, self.message),
            },
            _ => phx_core::Error::from_proxmox_message(&self.message),
        }
    }
}

impl fmt::Display for PveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        for (k, v) in &self.errors {
            write!(f, "\n{k}: {v}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PveError {}

/// SHA-1 of a guest's config file, as `GET .../config` reports it in `digest`.
pub fn digest_of_guest(g: &FakeGuest) -> String {
    digest(&render_conf(g))
}

#[cfg(feature = "fake-pve")]
pub(crate) fn schema_known(kind: phx_core::types::GuestKind, key: &str) -> bool {
    schema::known(kind, key)
}

#[cfg(feature = "fake-pve")]
pub(crate) fn schema_json_value(
    kind: phx_core::types::GuestKind,
    key: &str,
    value: &str,
) -> serde_json::Value {
    schema::json_value(kind, key, value)
}

#[cfg(feature = "fake-pve")]
pub(crate) fn schema_canonical(
    kind: phx_core::types::GuestKind,
    key: &str,
    value: &str,
) -> Result<String, PveError> {
    schema::canonical(kind, key, value)
}

#[cfg(feature = "fake-pve")]
pub(crate) fn schema_is_bool(kind: phx_core::types::GuestKind, key: &str) -> bool {
    schema::is_bool(kind, key)
}
