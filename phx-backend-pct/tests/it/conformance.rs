//! The whole conformance suite against [`PctBackend`] running the `phx-fake-pve` executables:
//! each test gets its own fake node (state file, /etc/pve, tool symlinks) and passes it to the
//! runner's environment; the test process's own environment is never changed.

use std::ops::Deref;
use std::sync::Arc;

use phx_backend_pct::{LocalRunner, PctBackend, PctOptions};
use phx_core::backend::Hypervisor;
use phx_testkit::FakePve;

/// A backend with the fake node it runs against (kept alive for the test).
pub struct Fixture {
    /// The fake node; dropping it removes its temp dir.
    #[allow(dead_code)]
    pub fake: FakePve,
    pub backend: PctBackend,
}

impl Deref for Fixture {
    type Target = dyn Hypervisor;
    fn deref(&self) -> &Self::Target {
        &self.backend
    }
}

pub fn fixture() -> Fixture {
    let fake = FakePve::new().expect("fake node");
    let runner = LocalRunner::new().envs(fake.env());
    let opts = PctOptions {
        pve_etc: fake.etc_dir(),
        ..PctOptions::default()
    };
    Fixture {
        backend: PctBackend::new(Arc::new(runner), opts),
        fake,
    }
}

phx_testkit::conformance_suite!(fixture());
