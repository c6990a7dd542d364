//! Integration tests of phx-testkit: the engine against the FakeCluster (one binary).

mod engine;
mod support;
