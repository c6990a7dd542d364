//! Run the real `phx` binary in an isolated environment and render what it did.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A scratch world: its own sim state and (optionally) a copy of the example config.
pub struct World {
    pub dir: TempDir,
    pub config: PathBuf,
    pub scripts: PathBuf,
}

impl World {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("etc");
        let scripts = dir.path().join("bin");
        copy_dir(&repo().join("examples/homelab/etc"), &config);
        copy_dir(&repo().join("examples/homelab/bin"), &scripts);
        Self {
            dir,
            config,
            scripts,
        }
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("sim.json")
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_phx"));
        for (k, _) in std::env::vars() {
            if k.starts_with("PHX_") || k == "RUST_LOG" {
                c.env_remove(k);
            }
        }
        c.env("PHX_BACKEND", "sim")
            .env("PHX_SIM_STATE", self.state())
            .env("PHX_SIM_LATENCY_MS", "0")
            .env("PHX_CONFIG_DIR", &self.config)
            .env("PHX_SCRIPTS_DIR", &self.scripts)
            .env("XDG_STATE_HOME", self.dir.path().join("state"))
            .env("NO_COLOR", "1")
            .env("COLUMNS", "160")
            .args(args)
            .stdin(Stdio::null());
        c
    }

    /// Run and render `exit`, stdout and stderr for a snapshot.
    pub fn run(&self, args: &[&str]) -> Run {
        run(self.cmd(args), self.dir.path())
    }

    /// Edit a config file in place.
    pub fn edit(&self, file: &str, from: &str, to: &str) {
        let p = self.config.join(file);
        let s = std::fs::read_to_string(&p).unwrap();
        assert!(s.contains(from), "{from:?} not in {file}");
        std::fs::write(&p, s.replacen(from, to, 1)).unwrap();
    }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The `-o json` document on stdout.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.render()))
    }

    pub fn render(&self) -> String {
        format!(
            "exit: {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

pub fn run(mut c: Command, tmp: &Path) -> Run {
    let out = c.output().unwrap();
    let clean = |b: &[u8]| -> String {
        let s = String::from_utf8_lossy(b).replace(&tmp.display().to_string(), "[TMP]");
        let mut lines = Vec::new();
        for l in s.lines() {
            // timestamps of plain progress lines
            let l = if l.len() > 20 && l.as_bytes()[4] == b'-' && l.as_bytes()[13] == b':' {
                format!("[TIME]{}", &l[19..])
            } else {
                l.to_string()
            };
            lines.push(durations(&l));
        }
        let mut s = lines.join("\n");
        if !s.is_empty() {
            s.push('\n');
        }
        s
    };
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: clean(&out.stdout),
        stderr: clean(&out.stderr),
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
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

/// `(0.01s)` -> `(T)`: test durations vary run to run.
fn durations(l: &str) -> String {
    let mut out = String::new();
    let mut rest = l;
    while let Some(i) = rest.find('(') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let end = after.find(')').unwrap_or(0);
        let inner = &after[..end];
        let is_secs = inner.ends_with('s')
            && inner.len() > 1
            && inner[..inner.len() - 1]
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'.')
            && inner.contains('.');
        if is_secs {
            out.push_str("(T)");
            rest = &after[end + 1..];
        } else {
            out.push('(');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}
