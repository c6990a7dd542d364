//! How phx is invoked: the default backend, test knobs in the environment, and stdout that
//! closes early.

use crate::support::{World, run};

#[test]
fn completions_into_a_closed_pipe_exit_cleanly() {
    let w = World::new();
    // the reader is gone before phx writes anything (`phx completions bash | head -0`)
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut c = w.cmd(&["completions", "bash"]);
    c.stdout(writer);
    let out = c.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stderr, "", "no panic, no error");
}

/// A directory with a `pct` that does nothing useful: a machine that looks like a Proxmox node.
fn dummy_pct(w: &World) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = w.dir.path().join("dummy-bin");
    std::fs::create_dir_all(&dir).unwrap();
    let pct = dir.join("pct");
    std::fs::write(&pct, "#!/bin/sh\necho 'dummy pct' >&2\nexit 1\n").unwrap();
    std::fs::set_permissions(&pct, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

#[test]
fn without_a_backend_phx_uses_pct_when_it_is_on_path() {
    let w = World::new();
    let bin = dummy_pct(&w);
    let mut c = w.cmd(&["status", "-vv"]);
    // only the dummy: the pct backend's first call (pvesh) is not there
    c.env_remove("PHX_BACKEND").env("PATH", &bin);
    let r = run(c, w.dir.path());
    assert_eq!(r.code, 1, "{}", r.render());
    assert!(
        r.stderr.contains(
            "DEBUG run argv=pvesh get /cluster/resources --type vm --output-format json timeout_s=60.0\n"
        ),
        "{}",
        r.render()
    );
    assert!(
        r.stderr.ends_with(
            "error: pct backend: cannot run pvesh: No such file or directory (os error 2)\n\nCaused by:\n    0: cannot run pvesh: No such file or directory (os error 2)\n    1: No such file or directory (os error 2)\n"
        ),
        "{}",
        r.render()
    );
    assert!(!w.state().exists(), "the simulated cluster was not used");

    // the same without pct on PATH: no backend is chosen for you
    std::fs::remove_file(bin.join("pct")).unwrap();
    let mut c = w.cmd(&["status"]);
    c.env_remove("PHX_BACKEND").env("PATH", &bin);
    let r = run(c, w.dir.path());
    assert_eq!(r.code, 2, "{}", r.render());
    assert_eq!(r.stdout, "");
    assert_eq!(
        r.stderr,
        "error: no backend chosen, and `pct` is not on PATH (this is not a Proxmox node)\nhint: use `--backend api` with PHX_API_URL and PHX_API_TOKEN to drive a node over its HTTP API, or `--backend sim` to try phx on a simulated cluster (PHX_BACKEND sets the default)\n"
    );
    assert!(!w.state().exists());
}

#[test]
fn a_sim_fault_for_an_operation_the_sim_does_not_have_is_refused() {
    let w = World::new();
    let mut c = w.cmd(&["lxc", "create", "101"]);
    c.env("PHX_SIM_FAULTS", "start:lock-timeout,strat:lock-timeout");
    let r = run(c, w.dir.path());
    assert_eq!(r.code, 2, "{}", r.render());
    assert_eq!(r.stdout, "");
    let known = phx_testkit::fake::FAULT_OPS.join(", ");
    assert_eq!(
        r.stderr,
        format!(
            "error: PHX_SIM_FAULTS item \"strat:lock-timeout\": the simulated cluster has no operation \"strat\"\nhint: the operations are {known}; without the lxc./vm. prefix an operation applies to both kinds\n"
        )
    );
    assert!(known.contains("lxc.start, lxc.stop"), "{known}");
    assert!(!w.state().exists(), "nothing was started");

    // a prefixed name must be one too
    let mut c = w.cmd(&["lxc", "create", "101"]);
    c.env("PHX_SIM_FAULTS", "lxc.raw.sett:error");
    let r = run(c, w.dir.path());
    assert_eq!(r.code, 2, "{}", r.render());
    assert!(
        r.stderr.starts_with(
            "error: PHX_SIM_FAULTS item \"lxc.raw.sett:error\": the simulated cluster has no operation \"lxc.raw.sett\"\n"
        ),
        "{}",
        r.render()
    );

    // a known one, without its prefix, fails the next call of either kind
    assert_eq!(w.run(&["lxc", "create", "101", "--no-progress"]).code, 0);
    let mut c = w.cmd(&["lxc", "stop", "101", "--no-progress", "-o", "json"]);
    c.env("PHX_SIM_FAULTS", "shutdown:error=injected refusal");
    let r = run(c, w.dir.path());
    assert_eq!(r.code, 1, "{}", r.render());
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["guests"][0]["error"], "shutdown: injected refusal");
}
