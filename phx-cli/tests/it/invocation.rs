//! How phx is invoked: the default backend, test knobs in the environment, and stdout that
//! closes early.

use crate::support::World;

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
