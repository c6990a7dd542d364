//! The conformance suite against [`FakeBackend`]: the reference every other backend is held to.

use std::sync::Arc;

use phx_core::backend::Hypervisor;
use phx_testkit::{FakeBackend, FakeCluster};

fn fake() -> Arc<dyn Hypervisor> {
    Arc::new(FakeBackend::with_scratch(
        FakeCluster::new(),
        tempfile::tempdir().expect("tempdir").keep(),
    ))
}

phx_testkit::conformance_suite!(fake());
