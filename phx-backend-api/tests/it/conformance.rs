//! The whole conformance suite against ApiBackend over real HTTPS to the fake server.
//!
//! `with_ssh`: the server keeps the cluster in a fake node's state file and the backend runs
//! `pct exec`/`pct push`, raw `lxc.*` edits and host commands over a fake `ssh` with that
//! node's fake tools, so every case runs. `api_only`: no ssh, an in-memory cluster; the cases
//! that need exec skip themselves through `capabilities()`.

mod with_ssh {
    phx_testkit::conformance_suite!(
        crate::support::with_ssh(phx_testkit::FakeCluster::new()).await
    );
}

mod api_only {
    phx_testkit::conformance_suite!(crate::support::memory(phx_testkit::FakeCluster::new()).await);
}
