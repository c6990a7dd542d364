//! Integration tests of phx-testkit: the engine against the FakeCluster (one binary).

mod conformance;
mod engine;
mod props;
mod support;
