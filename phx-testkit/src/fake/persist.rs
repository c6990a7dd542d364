//! The FakeCluster on disk: the JSON state file shared by the sim backend
//! ([`FakeBackend::open`](super::FakeBackend::open)) and the `phx-fake-pve` executables, and the
//! rendered `/etc/pve/lxc/<id>.conf` files the executables keep in sync with it.

use std::path::{Path, PathBuf};

use phx_core::types::GuestKind;

use super::cluster::{FakeCluster, escape_description, render_conf};
use super::state::FakeGuest;

/// Why a state file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The file exists but is not a FakeCluster.
    #[error("{path} is not a phx fake state file ({source}); remove it to start afresh")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why it does not parse.
        source: serde_json::Error,
    },
    /// Reading or writing failed.
    #[error("{context}")]
    Io {
        /// What was done.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> StateError {
    move |source| StateError::Io { context, source }
}

/// The scratch directory for guest files next to a state file (`<state>.guests`).
pub fn scratch_of(state: &Path) -> PathBuf {
    state.with_extension("guests")
}

/// Read a state file; a missing file is a fresh single-node cluster.
pub fn load_state(path: &Path) -> Result<FakeCluster, StateError> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|source| StateError::Corrupt {
            path: path.to_path_buf(),
            source,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(FakeCluster::new()),
        Err(e) => Err(io(format!("reading {}", path.display()))(e)),
    }
}

/// Write a state file atomically (temp file and rename).
pub fn save_state(path: &Path, c: &FakeCluster) -> Result<(), StateError> {
    let tmp = path.with_extension("json.tmp");
    let data = serde_json::to_vec(c)
        .map_err(|e| io(format!("encoding {}", path.display()))(std::io::Error::other(e)))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    }
    std::fs::write(&tmp, data).map_err(io(format!("writing {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(io(format!("replacing {}", path.display())))
}

/// A container's config file as Proxmox writes it: description `#` lines, sorted `key: value`
/// lines, raw `lxc.*` lines, then one `[snapshot]` section per snapshot.
pub fn render_lxc_conf_file(g: &FakeGuest) -> String {
    let mut s = render_conf(g);
    for snap in &g.snapshots {
        s.push_str(&format!("\n[{}]\n", snap.name));
        if !snap.description.is_empty() {
            for l in snap.description.lines() {
                s.push_str(&format!("#{}\n", escape_description(l)));
            }
        }
        for (k, v) in &snap.config {
            if k != "description" {
                s.push_str(&format!("{k}: {v}\n"));
            }
        }
        for (k, v) in &snap.raw_lxc {
            s.push_str(&format!("{k}: {v}\n"));
        }
        s.push_str(&format!("snaptime: {}\n", snap.snaptime));
    }
    s
}

/// The raw `lxc.*` lines of a config file's main section (before the first `[section]`).
pub fn raw_lxc_of_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .take_while(|l| !l.starts_with('['))
        .filter(|l| l.starts_with("lxc."))
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

/// Take raw `lxc.*` edits from `<etc>/lxc/<id>.conf` into the cluster (a backend edited the
/// files directly, as on a real node).
pub fn read_etc(c: &mut FakeCluster, etc: &Path) {
    for g in c.guests.values_mut().filter(|g| g.kind == GuestKind::Lxc) {
        if let Ok(text) = std::fs::read_to_string(etc.join("lxc").join(format!("{}.conf", g.id))) {
            let raw = raw_lxc_of_file(&text);
            if raw != g.raw_lxc {
                g.raw_lxc = raw;
            }
        }
    }
}

/// Write every container's config file under `<etc>/lxc/` and remove files of containers that
/// no longer exist. Files whose text is unchanged are not rewritten.
pub fn write_etc(c: &FakeCluster, etc: &Path) -> Result<(), StateError> {
    write_etc_since(None, c, etc)
}

/// Like [`write_etc`], but with `before` (the cluster as loaded) only the files of containers
/// whose config changed since are written: another process may be editing the other files.
pub fn write_etc_since(
    before: Option<&FakeCluster>,
    c: &FakeCluster,
    etc: &Path,
) -> Result<(), StateError> {
    let dir = etc.join("lxc");
    std::fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
    for g in c.guests.values().filter(|g| g.kind == GuestKind::Lxc) {
        let p = dir.join(format!("{}.conf", g.id));
        let text = render_lxc_conf_file(g);
        if let Some(b) = before.and_then(|b| b.guests.get(&g.id))
            && render_lxc_conf_file(b) == text
            && p.exists()
        {
            continue;
        }
        if std::fs::read_to_string(&p).ok().as_deref() != Some(text.as_str()) {
            std::fs::write(&p, text).map_err(io(format!("writing {}", p.display())))?;
        }
    }
    let entries = std::fs::read_dir(&dir).map_err(io(format!("listing {}", dir.display())))?;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(id) = name
            .strip_suffix(".conf")
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if c.guests.get(&id).is_none_or(|g| g.kind != GuestKind::Lxc) {
            let _ = std::fs::remove_file(e.path());
        }
    }
    Ok(())
}
