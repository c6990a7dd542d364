//! Integration tests of phx-testkit: the engine against the FakeCluster (one binary).

mod conformance;
mod engine;
mod host;
mod props;
mod support;
mod fake_pve;
mod router;
