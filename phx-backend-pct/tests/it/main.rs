//! Integration tests of phx-backend-pct (one binary): the conformance suite against the fake
//! executables, argv snapshots, parsers against real Proxmox output and against malformed
//! output, the ssh runner.

mod argv;
mod conformance;
mod failures;
mod malformed;
mod parsers;
mod ssh;
