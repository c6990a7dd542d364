//! The conformance suite against [`FakeBackend`]: the reference every other backend is held to.

use std::sync::{Arc, LazyLock};

use phx_core::backend::Hypervisor;
use phx_testkit::{FakeBackend, FakeCluster};

fn fake() -> Arc<dyn Hypervisor> {
    Arc::new(FakeBackend::with_scratch(
        FakeCluster::new(),
        tempfile::tempdir().expect("tempdir").keep(),
    ))
}

// one cluster per case
phx_testkit::conformance_suite!(fake());

/// Every case against one shared cluster, concurrently: cases use disjoint guest ids.
mod shared {
    use super::*;

    static SHARED: LazyLock<Arc<dyn Hypervisor>> = LazyLock::new(fake);

    phx_testkit::conformance_suite!(SHARED.clone());
}
