//! # phx-backend-pct
//!
//! The phx-core backend traits over the Proxmox VE command-line tools, as an operator on a
//! node uses them: `pct`, `qm`, `pvesh`, `pvesm`, `pveam`.
//!
//! ```text
//!  PctBackend ──► CommandRunner ──► LocalRunner  (tokio processes on this node)
//!    │   │                     └──► SshRunner    (ssh -o BatchMode=yes root@node -- <quoted argv>)
//!    │   └─ reads:  pvesh get <path> --output-format json      → parse (JSON mappers)
//!    └──── writes: pct/qm (tasks in the foreground, exit 255 on failure), pvesh create/set/
//!                  delete (task result read back), pvesm, pveam, /etc/pve/lxc/<id>.conf
//! ```
//!
//! - [`runner`]: commands are argv, never a shell string; every run has a timeout and is logged
//!   at debug level with secrets redacted.
//! - [`parse`]: the JSON mappers and the text parsers of `pct list`, `qm list`, `pct config`,
//!   `pct listsnapshot`, `pvesm status`, `pveam list`/`available`, `qm guest exec`.
//! - Failures become [`phx_core::Error`]s: a failed task is `TaskFailed` (with its UPID when it
//!   can be found), Proxmox's messages are classified by `Error::from_proxmox_message`.
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod backend;
mod error;
pub mod lxcconf;
pub mod params;
pub mod parse;
pub mod quote;
pub mod runner;

pub use backend::{Manager, PctBackend, PctOptions};
pub use error::{classify_stderr, error_line};
pub use runner::{Cmd, CmdOutput, CommandRunner, LocalRunner, RunError, SshRunner};
