//! A fake Proxmox API for each test: the HTTPS server over a FakeCluster (in memory, or in a
//! fake node's state file so `pct` over a fake `ssh` sees the same guests), and an ApiBackend
//! pinned to its certificate.

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::time::Duration;

use phx_backend_api::{ApiBackend, ApiOptions, ApiToken, Auth, PollPolicy, SshOptions, TlsMode};
use phx_core::backend::Hypervisor;
use phx_testkit::FakeCluster;
use phx_testkit::FakePve;
use phx_testkit::server::{FakeServer, ServerOptions};

/// The token every fake server accepts.
pub const TOKEN: &str = "root@pam!phx=5ec7e7aa-0b1e-4c8f-9d2a-phxtestsecret";
/// Its secret, to look for in output.
pub const TOKEN_SECRET: &str = "5ec7e7aa-0b1e-4c8f-9d2a-phxtestsecret";

/// A fake `ssh`: runs the remote command on this machine the way sshd would (one string for
/// the remote shell), as the node named by the target's host (`PHX_FAKE_NODE`).
pub const FAKE_SSH: &str = r#"#!/bin/sh
target=
while [ $# -gt 0 ]; do
  case "$1" in
    --) shift; break ;;
    -o|-p|-i|-l|-F|-J) shift 2 ;;
    -*) shift ;;
    *) if [ -z "$target" ]; then target=$1; shift; else break; fi ;;
  esac
done
PHX_FAKE_NODE=${target#*@}
export PHX_FAKE_NODE
exec sh -c "$*"
"#;

/// Write the fake `ssh` into `dir`.
pub fn write_fake_ssh(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join("ssh");
    std::fs::write(&p, FAKE_SSH).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

pub fn token() -> ApiToken {
    ApiToken::parse(TOKEN).unwrap()
}

/// Fast polling for tests.
pub fn fast(mut o: ApiOptions) -> ApiOptions {
    o.poll = PollPolicy {
        initial: Duration::from_millis(5),
        max: Duration::from_millis(50),
    };
    o.get_retries = 2;
    o
}

/// Options for a backend talking to `server`, pinned to its certificate.
pub fn options(server: &FakeServer) -> ApiOptions {
    let mut o = fast(ApiOptions::new(server.url(), Auth::Token(token())));
    o.tls = TlsMode::Fingerprint(
        phx_backend_api::tls::parse_fingerprint(server.fingerprint()).unwrap(),
    );
    o
}

/// Server options with the test token and no authentication delay.
pub fn server_options() -> ServerOptions {
    ServerOptions::default()
        .token(TOKEN)
        .auth_failure_delay(Duration::ZERO)
}

/// A backend over a fake server (and, with ssh, the fake node whose tools it runs).
pub struct Fixture {
    pub server: FakeServer,
    pub backend: ApiBackend,
    #[allow(dead_code)]
    pub fake: Option<FakePve>,
}

impl Deref for Fixture {
    type Target = dyn Hypervisor;
    fn deref(&self) -> &Self::Target {
        &self.backend
    }
}

/// An in-memory fake server and a backend without ssh.
pub async fn memory(cluster: FakeCluster) -> Fixture {
    let server = FakeServer::start(server_options().cluster(cluster))
        .await
        .unwrap();
    let backend = ApiBackend::new(options(&server)).unwrap();
    Fixture {
        server,
        backend,
        fake: None,
    }
}

/// A fake node (state file, `/etc/pve`, tools, a fake `ssh`), the server over its state file,
/// and a backend that reaches the node's `pct` over the fake ssh.
pub async fn with_ssh(cluster: FakeCluster) -> Fixture {
    let fake = FakePve::with_cluster(cluster).unwrap();
    write_fake_ssh(&fake.bin_dir());
    let server = FakeServer::start(server_options().state(fake.state_path(), Some(fake.etc_dir())))
        .await
        .unwrap();
    let mut o = options(&server);
    let mut ssh = SshOptions::new("root@pve");
    ssh.env = fake.env();
    ssh.pve_etc = fake.etc_dir();
    o.ssh = Some(ssh);
    let backend = ApiBackend::new(o).unwrap();
    Fixture {
        server,
        backend,
        fake: Some(fake),
    }
}
