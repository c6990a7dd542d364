//! Integration tests of phx-testkit: the engine against the FakeCluster (one binary).

mod conformance;
mod dry_run;
mod engine;
mod engine_steps;
mod fake_pve;
mod host;
mod props;
mod router;
mod support;
