//! # phx-backend-api
//!
//! The phx-core backend traits over the Proxmox VE HTTP API, for driving a node or a whole
//! cluster from anywhere.
//!
//! ```text
//!  ApiBackend ──► Client (one reqwest client, rustls + ring, connection reuse)
//!    │              ├─ auth: API token header | ticket cookie + CSRF header (renewed)
//!    │              ├─ encode: form bodies / query strings, 1/0 booleans, repeated keys
//!    │              ├─ response: {"data":…} envelope; errors from the reason phrase,
//!    │              │            the body message and per-parameter `errors`
//!    │              └─ tasks: UPID → poll status with backoff → TaskDone | TaskFailed + log tail
//!    ├── map: answers → phx-core values (shared with phx-backend-pct's JSON mappers)
//!    └── ssh (optional): phx-backend-pct over SshRunner on the guest's node, for what the
//!        API cannot do: pct exec / pct push, raw lxc.* lines, host commands
//! ```
//!
//! - Guests are located with `/cluster/resources`; every guest call goes to its node.
//! - Errors map to [`phx_core::Error`] at the edge: 400 `InvalidRequest` with every
//!   parameter, 401 `Unauthenticated`, 403 `PermissionDenied`, 500 by message
//!   ([`phx_core::Error::from_proxmox_message`]), 595–599 `Transient`. Retryable writes are
//!   retried by the engine; this crate retries only GETs, and never resends a call whose task
//!   was accepted.
//! - Secrets (token, password, ticket) live in [`Secret`]: never in `Debug`, logs or errors.
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod backend;
mod client;
pub mod encode;
mod error;
pub mod map;
mod options;
pub mod response;
pub mod secret;
pub mod tls;
pub mod upid;

pub use backend::{ApiBackend, Manager};
pub use error::{ApiError, HttpError};
pub use options::{ApiOptions, Auth, PollPolicy, SshOptions, Timeouts, TlsMode};
pub use secret::{ApiToken, Secret, TokenError};
pub use upid::Upid;
