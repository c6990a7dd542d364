//! Finding (or building) the `phx-fake-pve` binary, and a ready-to-use fake node for tests:
//! a temp dir with `pct`/`qm`/`pvesh`/`pvesm`/`pveam` symlinks, a state file and an `/etc/pve`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use crate::fake::{self, FakeCluster};

/// The tool names `phx-fake-pve` answers to.
pub const TOOLS: &[&str] = &["pct", "qm", "pvesh", "pvesm", "pveam"];

static BUILD: Mutex<()> = Mutex::new(());

/// The target directory of the running executable (`target/<profile>`), from
/// `std::env::current_exe()` (`target/<profile>/deps/<test>-<hash>`).
fn profile_dir() -> std::io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().ok_or_else(|| {
        std::io::Error::other(format!("{} has no parent directory", exe.display()))
    })?;
    Ok(if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().unwrap_or(dir).to_path_buf()
    } else {
        dir.to_path_buf()
    })
}

/// Path of `phx-fake-pve` next to the running test executable (`target/<profile>/`). When it
/// is missing (or older than phx-testkit's sources) it is built with `$CARGO build -p phx-testkit --features fake-pve --bin
/// phx-fake-pve` (cargo sets `CARGO` for tests; `cargo` otherwise) into the same target dir,
/// so `cargo test` on a fresh clone finds it.
pub fn fake_pve_binary() -> std::io::Result<PathBuf> {
    let dir = profile_dir()?;
    let bin = dir.join(format!("phx-fake-pve{}", std::env::consts::EXE_SUFFIX));
    let _guard = BUILD
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let built = std::fs::metadata(&bin).and_then(|m| m.modified()).ok();
    let src = newest_source(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    // a binary older than the fake's sources (a `cargo test -p` that did not build it) is rebuilt
    if built.is_some_and(|b| src.is_none_or(|s| s <= b)) {
        return Ok(bin);
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "-p",
        "phx-testkit",
        "--features",
        "fake-pve",
        "--bin",
        "phx-fake-pve",
        "--manifest-path",
    ])
    .arg(&manifest);
    if let Some(profile) = dir.file_name().and_then(|n| n.to_str()) {
        match profile {
            "debug" => {}
            "release" => {
                cmd.arg("--release");
            }
            other => {
                cmd.args(["--profile", other]);
            }
        }
    }
    if let Some(target) = dir.parent() {
        cmd.env("CARGO_TARGET_DIR", target);
    }
    let out = cmd.output()?;
    if !out.status.success() || !bin.is_file() {
        return Err(std::io::Error::other(format!(
            "building phx-fake-pve failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(bin)
}

/// The newest modification time of the files under `dir`.
fn newest_source(dir: &Path) -> Option<std::time::SystemTime> {
    let mut newest = None;
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let t = if e.path().is_dir() {
            newest_source(&e.path())
        } else {
            e.metadata().and_then(|m| m.modified()).ok()
        };
        newest = newest.max(t);
    }
    newest
}

/// Create `dir` with one symlink per tool (`pct`, `qm`, ...) pointing at `binary`; put `dir`
/// first on a child's `PATH` to make it run the fakes.
pub fn link_tools(binary: &Path, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for t in TOOLS {
        let link = dir.join(t);
        if link.symlink_metadata().is_ok() {
            std::fs::remove_file(&link)?;
        }
        #[cfg(unix)]
        std::os::unix::fs::symlink(binary, &link)?;
        #[cfg(not(unix))]
        std::fs::copy(binary, &link).map(|_| ())?;
    }
    Ok(())
}

/// A fake Proxmox node for one test: a temp dir holding the tool symlinks (`bin/`), the state
/// file (`state.json`, guest files in `state.guests/`) and `etc/` for `PHX_FAKE_ETC`. Pass
/// [`FakePve::env`] to the child processes; the test's own environment stays untouched.
#[derive(Debug)]
pub struct FakePve {
    dir: tempfile::TempDir,
}

impl FakePve {
    /// A fresh single-node cluster (`pve`).
    pub fn new() -> std::io::Result<Self> {
        Self::with_cluster(FakeCluster::new())
    }

    /// A fake node over `cluster`.
    pub fn with_cluster(cluster: FakeCluster) -> std::io::Result<Self> {
        let bin = fake_pve_binary()?;
        let dir = tempfile::Builder::new().prefix("phx-fake-pve-").tempdir()?;
        link_tools(&bin, &dir.path().join("bin"))?;
        std::fs::create_dir_all(dir.path().join("etc"))?;
        let me = Self { dir };
        fake::save_state(&me.state_path(), &cluster).map_err(std::io::Error::other)?;
        Ok(me)
    }

    /// The temp dir.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }
    /// The directory with the tool symlinks.
    pub fn bin_dir(&self) -> PathBuf {
        self.dir.path().join("bin")
    }
    /// `PHX_FAKE_STATE`.
    pub fn state_path(&self) -> PathBuf {
        self.dir.path().join("state.json")
    }
    /// `PHX_FAKE_ETC` (the node's `/etc/pve`).
    pub fn etc_dir(&self) -> PathBuf {
        self.dir.path().join("etc")
    }

    /// The environment a child needs to run the fakes: `PATH` with the tools first,
    /// `PHX_FAKE_STATE`, `PHX_FAKE_ETC`.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut path = self.bin_dir().to_string_lossy().into_owned();
        if let Some(p) = std::env::var_os("PATH") {
            path.push(':');
            path.push_str(&p.to_string_lossy());
        }
        vec![
            ("PATH".into(), path),
            (
                "PHX_FAKE_STATE".into(),
                self.state_path().to_string_lossy().into_owned(),
            ),
            (
                "PHX_FAKE_ETC".into(),
                self.etc_dir().to_string_lossy().into_owned(),
            ),
        ]
    }

    /// Read and change the cluster (test setup, fault injection, inspection) under the same
    /// lock the executables take.
    pub fn with<T>(&self, f: impl FnOnce(&mut FakeCluster) -> T) -> std::io::Result<T> {
        let lock = std::fs::File::options()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(self.state_path().with_extension("lock"))?;
        lock.lock()?;
        let mut c = fake::load_state(&self.state_path()).map_err(std::io::Error::other)?;
        let r = f(&mut c);
        fake::save_state(&self.state_path(), &c).map_err(std::io::Error::other)?;
        let _ = lock.unlock();
        Ok(r)
    }
}
