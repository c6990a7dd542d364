//! phx-backend-api against the fake HTTPS Proxmox API: the conformance suite, request
//! snapshots, auth and TLS, tasks and faults, several nodes, real Proxmox answers, and `phx
//! --backend api` end to end.

mod auth_tls;
mod conformance;
mod e2e;
mod malformed;
mod multinode;
mod requests;
mod samples;
mod support;
mod tasks;
mod wire;
