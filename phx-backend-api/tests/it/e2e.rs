//! `phx --backend api` end to end: the real `phx` binary against the fake HTTPS API (in this
//! process), with `--ssh` through a fake `ssh` that runs the fake node's `pct` for container
//! features; without `--ssh` the plan is refused (Unsupported) before anything changes. Credentials
//! never show in any output, at any verbosity.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use phx_testkit::FakePve;
use phx_testkit::server::FakeServer;

use crate::support::{TOKEN, TOKEN_SECRET, server_options, write_fake_ssh};
use phx_testkit::server::ServerOptions;

/// The `phx` binary of this workspace, built (or found up to date) once per test run.
fn phx_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        let mut profile = exe.parent().unwrap().to_path_buf();
        if profile.ends_with("deps") {
            profile.pop();
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
        let mut cmd = Command::new(cargo);
        cmd.args([
            "build",
            "-q",
            "-p",
            "phx-cli",
            "--bin",
            "phx",
            "--manifest-path",
        ])
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", profile.parent().unwrap());
        match profile.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => {}
            Some("release") => {
                cmd.arg("--release");
            }
            Some(other) => {
                cmd.args(["--profile", other]);
            }
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "building phx failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        profile.join("phx")
    })
    .clone()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// The example site, a fake node and the fake API over its state.
struct Site {
    dir: tempfile::TempDir,
    fake: FakePve,
    server: FakeServer,
}

impl Site {
    async fn new() -> Self {
        Self::with(|o| o).await
    }

    /// A site whose fake server takes extra options (a user for ticket logins, ...).
    async fn with(opts: impl FnOnce(ServerOptions) -> ServerOptions) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        copy_dir(&repo.join("examples/homelab/etc"), &dir.path().join("etc"));
        copy_dir(&repo.join("examples/homelab/bin"), &dir.path().join("bin"));
        let fake = FakePve::new().unwrap();
        write_fake_ssh(&fake.bin_dir());
        let server = FakeServer::start(opts(
            server_options().state(fake.state_path(), Some(fake.etc_dir())),
        ))
        .await
        .unwrap();
        Self { dir, fake, server }
    }

    /// `phx --backend api` with the token, the pinned fingerprint and `--ssh root@pve`.
    fn phx(&self, args: &[&str]) -> Command {
        let mut c = Command::new(phx_binary());
        for (k, _) in std::env::vars() {
            if k.starts_with("PHX_") || k == "RUST_LOG" {
                c.env_remove(k);
            }
        }
        for (k, v) in self.fake.env() {
            c.env(k, v);
        }
        c.env("PHX_BACKEND", "api")
            .env("PHX_API_URL", self.server.url())
            .env("PHX_API_TOKEN", TOKEN)
            .env("PHX_FINGERPRINT", self.server.fingerprint())
            .env("PHX_SSH", "root@pve")
            .env("PHX_PVE_ETC", self.fake.etc_dir())
            .env("PHX_CONFIG_DIR", self.dir.path().join("etc"))
            .env("PHX_SCRIPTS_DIR", self.dir.path().join("bin"))
            .env("XDG_STATE_HOME", self.dir.path().join("state"))
            .env("NO_COLOR", "1")
            .env("COLUMNS", "160")
            .args(args)
            .stdin(Stdio::null());
        c
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn all(&self) -> String {
        format!(
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Run on a blocking thread (the fake server answers on this test's runtime).
async fn run(mut c: Command) -> Run {
    let out = tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_status_plan_delete_over_https() {
    let s = Site::new().await;
    let r = run(s.phx(&["up", "-j", "2", "--no-progress"])).await;
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout.contains("6 changed, 0 unchanged, 0 failed"),
        "{}",
        r.all()
    );
    // the container feature ran in the guest through pct push/exec over ssh
    let marker = s
        .fake
        .root()
        .join("state.guests/guests/900/etc/phx/base_setup");
    assert!(marker.is_file(), "base_setup ran through pct over ssh");
    // raw lxc lines went into the node's config file over ssh
    let conf = std::fs::read_to_string(s.fake.etc_dir().join("lxc/900.conf")).unwrap();
    assert!(conf.contains("lxc.apparmor.profile: unconfined"), "{conf}");

    let r = run(s.phx(&["plan"])).await;
    assert_eq!(r.code, 0, "{}", r.all());
    let r = run(s.phx(&["up", "--no-progress"])).await;
    assert!(r.stdout.contains("0 changed, 6 unchanged"), "{}", r.all());

    let r = run(s.phx(&["status", "-o", "json"])).await;
    assert_eq!(r.code, 0, "{}", r.all());
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let running: Vec<u64> = v["guests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["status"] == "running")
        .map(|g| g["id"].as_u64().unwrap())
        .collect();
    assert_eq!(running, [101, 102, 103, 1001]);

    let r = run(s.phx(&["lxc", "delete", "103", "--yes", "--no-progress"])).await;
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(s.server.with(|c| !c.guests.contains_key(&103)).unwrap());
    let r = run(s.phx(&["vm", "delete", "1001", "--yes", "--no-progress"])).await;
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(s.server.with(|c| !c.guests.contains_key(&1001)).unwrap());

    // every write went over HTTPS with the token, none with a secret in the URL
    let reqs = s.server.requests();
    assert!(
        reqs.iter()
            .any(|r| r.method == "POST" && r.path == "/nodes/pve/lxc")
    );
    assert!(reqs.iter().all(|r| !r.query.contains(TOKEN_SECRET)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_ssh_the_plan_is_refused_before_anything_changes() {
    let s = Site::new().await;
    for args in [&["up", "-j", "2", "--no-progress"][..], &["plan"][..]] {
        let mut c = s.phx(args);
        c.env_remove("PHX_SSH");
        let r = run(c).await;
        assert_eq!(r.code, 1, "{}", r.all());
        assert!(
            r.stderr
                .contains("error: this plan is not supported by the api backend (it needs"),
            "{}",
            r.all()
        );
        // every step the backend cannot run is named, by guest
        for need in [
            "commands inside containers (CT 101 app-script",
            "commands on the node (CT 900 feature",
            "raw lxc.* config lines (CT 900 set-lxc-raw",
            "nothing was changed",
        ] {
            assert!(r.stderr.contains(need), "{need}\n{}", r.all());
        }
        assert!(
            r.stderr.contains("hint: pass --ssh root@<node>"),
            "{}",
            r.all()
        );
    }
    // reading needs no ssh: status shows every guest as absent
    let mut c = s.phx(&["status", "-o", "json"]);
    c.env_remove("PHX_SSH");
    let r = run(c).await;
    assert_eq!(r.code, 0, "{}", r.all());
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["guests"].as_array().unwrap().len(), 6, "{}", r.all());
    // refused before the first write: no guest, no download, no task
    let reqs = s.server.requests();
    let writes: Vec<_> = reqs.iter().filter(|r| r.method != "GET").collect();
    assert!(writes.is_empty(), "{writes:?}");
    assert!(s.server.with(|c| c.guests.is_empty()).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_fails_clearly_and_no_secret_is_ever_printed() {
    let s = Site::new().await;
    let wrong_secret = "0000dead-beef-4bad-8bad-wrongsecret00";
    for v in ["-v", "-vv", "-vvv"] {
        let mut c = s.phx(&[v, "status"]);
        c.env("PHX_API_TOKEN", format!("root@pam!phx={wrong_secret}"));
        let r = run(c).await;
        assert_eq!(r.code, 1, "{}", r.all());
        assert!(
            r.stderr.contains("error: authentication failed: Authentication failed! (API token root@pam!phx was refused by https://127.0.0.1:"),
            "{}",
            r.all()
        );
        assert!(
            r.stderr.contains("hint: check the API token"),
            "{}",
            r.all()
        );
        assert!(!r.all().contains(wrong_secret), "{v}: {}", r.all());

        let r = run(s.phx(&[v, "status"])).await;
        assert_eq!(r.code, 0, "{}", r.all());
        assert!(!r.all().contains(TOKEN_SECRET), "{v}: {}", r.all());
    }
    // a token file works the same, and its content stays hidden too
    let file = s.dir.path().join("token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    let mut c = s.phx(&["-vv", "status", "--api-token-file"]);
    c.arg(&file).env_remove("PHX_API_TOKEN");
    let r = run(c).await;
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(!r.all().contains(TOKEN_SECRET), "{}", r.all());
    // there is no way to give the token on the command line
    let r = run(s.phx(&["status", "--api-token", TOKEN])).await;
    assert_eq!(r.code, 2, "{}", r.all());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_most_verbose_run_shows_no_secret() {
    const PASSWORD: &str = "correct-horse-battery-staple-31337";
    let s = Site::with(|o| o.user("phx@pve", PASSWORD)).await;
    // token, most verbose, the whole example with container steps over ssh
    let r = run(s.phx(&["-vvv", "up", "-j", "2"])).await;
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stderr.lines().count() > 100, "not verbose: {}", r.all());
    assert!(!r.all().contains(TOKEN_SECRET), "{}", r.all());
    // ticket login with a password, most verbose, JSON output too
    for args in [&["-vvv", "up"][..], &["-vvv", "-o", "json", "status"]] {
        let mut c = s.phx(args);
        c.env_remove("PHX_API_TOKEN")
            .env("PHX_API_USER", "phx@pve")
            .env("PHX_API_PASSWORD", PASSWORD);
        let r = run(c).await;
        assert_eq!(r.code, 0, "{args:?}\n{}", r.all());
        assert!(!r.all().contains(PASSWORD), "{args:?}\n{}", r.all());
        assert!(!r.all().contains("PVEAuthCookie="), "{args:?}\n{}", r.all());
    }
    // a token file other users can read works, with a warning saying how to fix it
    use std::os::unix::fs::PermissionsExt;
    let file = s.dir.path().join("token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    for (mode, warned) in [(0o644, true), (0o600, false)] {
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
        let mut c = s.phx(&["status", "--api-token-file"]);
        c.arg(&file).env_remove("PHX_API_TOKEN");
        let r = run(c).await;
        assert_eq!(r.code, 0, "{}", r.all());
        assert_eq!(
            r.stderr.contains(&format!(
                "can be read by other users (mode {mode:o}); run `chmod 600"
            )),
            warned,
            "{mode:o}: {}",
            r.all()
        );
        assert!(!r.all().contains(TOKEN_SECRET), "{}", r.all());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_options_from_the_command_line() {
    let s = Site::new().await;
    let ca = s.dir.path().join("pve-root-ca.pem");
    std::fs::write(&ca, s.server.ca_pem()).unwrap();

    let mut c = s.phx(&["status", "--ca-cert"]);
    c.arg(&ca).env_remove("PHX_FINGERPRINT");
    let r = run(c).await;
    assert_eq!(r.code, 0, "{}", r.all());

    let mut c = s.phx(&["status", "--insecure"]);
    c.env_remove("PHX_FINGERPRINT");
    let r = run(c).await;
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stderr
            .starts_with("warning: --insecure: the certificate of https://127.0.0.1:"),
        "{}",
        r.all()
    );

    let wrong = "AB:".repeat(31) + "AB";
    let r = run(s.phx(&["status", "--fingerprint", &wrong])).await;
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains(&format!("is not the pinned {wrong}")),
        "{}",
        r.all()
    );

    let mut c = s.phx(&["status"]);
    c.env_remove("PHX_FINGERPRINT");
    let r = run(c).await;
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("--ca-cert"), "{}", r.all());

    let r = run(s.phx(&["status", "--insecure", "--ca-cert", "x.pem"])).await;
    assert_eq!(r.code, 2, "{}", r.all());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_serve_binary_prints_its_url_and_fingerprint_first() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let mut child = Command::new(phx_testkit::fake_pve_binary().unwrap())
        .args(["serve", "--listen", "127.0.0.1:0", "--token", TOKEN])
        .args(["--auth-delay-ms", "0", "--nodes", "pve1,pve2", "--ca-out"])
        .arg(&ca)
        .arg("--state")
        .arg(dir.path().join("state.json"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut l = String::new();
        std::io::BufReader::new(stdout).read_line(&mut l).unwrap();
        l
    })
    .await
    .unwrap();
    let (url, fp) = line.trim().split_once(' ').unwrap();
    assert!(url.starts_with("https://127.0.0.1:"), "{line}");
    let mut o = phx_backend_api::ApiOptions::new(
        url,
        phx_backend_api::Auth::Token(crate::support::token()),
    );
    o.tls =
        phx_backend_api::TlsMode::Fingerprint(phx_backend_api::tls::parse_fingerprint(fp).unwrap());
    let by_fp = phx_backend_api::ApiBackend::new(o.clone()).unwrap();
    let names: Vec<String> = phx_core::backend::Hypervisor::nodes(&by_fp)
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.name.to_string())
        .collect();
    assert_eq!(names, ["pve1", "pve2"]);
    o.tls = phx_backend_api::TlsMode::CaFile(ca);
    let by_ca = phx_backend_api::ApiBackend::new(o).unwrap();
    assert_eq!(
        phx_core::backend::Hypervisor::version(&by_ca)
            .await
            .unwrap()
            .release,
        "9.1"
    );
    // the state file is the fake executables' format, written after every request
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("state.json")).unwrap()).unwrap();
    assert!(state["nodes"]["pve2"].is_object());
    child.kill().unwrap();
    child.wait().unwrap();
}
