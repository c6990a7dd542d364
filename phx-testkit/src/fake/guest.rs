//! A guest's "filesystem" for the fakes: a scratch directory per guest
//! (`<scratch>/guests/<id>`). `exec` runs host processes there with absolute guest paths mapped
//! into it; `push`/`file-write` write into it. Not isolation: enough for test scripts. Shared by
//! [`FakeBackend`](super::FakeBackend) and the `phx-fake-pve` executables.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Directories every guest root has, like a fresh container image.
const SKELETON: &[&str] = &[
    "tmp", "root", "etc", "opt", "srv", "home", "var/tmp", "var/log",
];

/// Host directories that stay host paths when they appear in an argv (programs, devices).
const HOST_DIRS: &[&str] = &[
    "/bin/", "/sbin/", "/usr/", "/lib/", "/lib64/", "/dev/", "/proc/", "/sys/",
];

/// Where a guest's shell looks for a program named without a path, in order (a container's
/// default `PATH`).
const GUEST_PATH: &[&str] = &[
    "usr/local/sbin",
    "usr/local/bin",
    "usr/sbin",
    "usr/bin",
    "sbin",
    "bin",
];

/// Where guest `id`'s files live under `scratch`.
pub fn guest_root(scratch: &Path, id: u32) -> PathBuf {
    scratch.join("guests").join(id.to_string())
}

/// Create the guest root and its skeleton directories.
pub fn ensure_root(root: &Path) -> std::io::Result<()> {
    for d in SKELETON {
        std::fs::create_dir_all(root.join(d))?;
    }
    Ok(())
}

/// Map a guest path (`/tmp/phoenix_run/x.sh`) into the guest's root.
pub fn guest_path(root: &Path, p: &str) -> PathBuf {
    root.join(p.trim_start_matches('/'))
}

/// A command that runs `argv` "inside" the guest: working directory is the root, absolute
/// paths that are not host directories point into the root, `PHX_GUEST_ROOT` names it. The
/// program is the guest's own when the root has it: an absolute path under the root, or a bare
/// name in the root's PATH directories (`/usr/local/sbin` ... `/bin`) (a test drops `usr/bin/nvidia-smi` there);
/// otherwise the host's (`sh`, `cat`, ...). `None` for an empty argv (Proxmox: "missing
/// command").
pub fn guest_command(root: &Path, argv: &[String], env: &[(String, String)]) -> Option<Command> {
    let (prog, args) = argv.split_first()?;
    let map = |a: &String| -> String {
        if a.starts_with('/') && !HOST_DIRS.iter().any(|d| a.starts_with(d)) {
            guest_path(root, a).to_string_lossy().into_owned()
        } else {
            a.clone()
        }
    };
    let prog = if prog.starts_with('/') && guest_path(root, prog).exists() {
        guest_path(root, prog).to_string_lossy().into_owned()
    } else if !prog.is_empty() && !prog.contains('/') {
        GUEST_PATH
            .iter()
            .map(|d| root.join(d).join(prog))
            .find(|p| p.is_file())
            .map_or_else(|| prog.clone(), |p| p.to_string_lossy().into_owned())
    } else {
        prog.clone()
    };
    let mut cmd = Command::new(prog);
    cmd.args(args.iter().map(map))
        .current_dir(root)
        .env("PHX_GUEST_ROOT", root);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Some(cmd)
}

/// The exit code `lxc-attach` reports when the program cannot be executed: 126 when it is not
/// executable, 127 when it does not exist.
pub fn exec_failure_code(e: &std::io::Error) -> i32 {
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        126
    } else {
        127
    }
}

/// Read guest path `path` as the guest agent's `file-read` does: the first 16 MiB, as text,
/// and whether there was more; the agent's error when it cannot be opened.
pub fn read_from(root: &Path, path: &str) -> Result<(String, bool), String> {
    use std::io::Read as _;
    let open = std::fs::File::open(guest_path(root, path)).map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => "No such file or directory".to_string(),
            _ => e.to_string(),
        };
        format!("Agent error: failed to open file '{path}' (mode: 'r'): {why}")
    })?;
    const MOST: u64 = 16 << 20;
    let mut bytes = Vec::new();
    open.take(MOST + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("Agent error: failed to read file '{path}': {e}"))?;
    let truncated = bytes.len() as u64 > MOST;
    bytes.truncate(MOST as usize);
    Ok((String::from_utf8_lossy(&bytes).into_owned(), truncated))
}

/// Write `content` to guest path `dest` with `mode`. The parent directory must exist, as in a
/// real guest.
pub fn write_into(root: &Path, dest: &str, content: &[u8], mode: u32) -> Result<(), String> {
    ensure_root(root).map_err(|e| format!("creating {}: {e}", root.display()))?;
    let p = guest_path(root, dest);
    if !p.parent().is_some_and(Path::is_dir) {
        return Err(format!(
            "failed to open {dest} for writing: No such file or directory"
        ));
    }
    std::fs::write(&p, content).map_err(|e| format!("failed to write {dest}: {e}"))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("chmod {dest}: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_read_hands_over_16_mib_and_says_when_there_was_more() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("small"), "a\nb").unwrap();
        assert_eq!(
            read_from(root.path(), "/small").unwrap(),
            ("a\nb".to_string(), false)
        );
        std::fs::write(root.path().join("big"), vec![b'x'; (16 << 20) + 3]).unwrap();
        let (content, truncated) = read_from(root.path(), "/big").unwrap();
        assert_eq!((content.len(), truncated), (16 << 20, true));
        assert_eq!(
            read_from(root.path(), "/none").unwrap_err(),
            "Agent error: failed to open file '/none' (mode: 'r'): No such file or directory"
        );
    }
}
