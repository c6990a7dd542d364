//! Running commands: the [`CommandRunner`] seam, with a local implementation (tokio processes)
//! and one that runs each command on a node over `ssh`. Commands are argv, never a shell
//! string; every run has a timeout and is logged at debug level with secrets redacted.

use std::fmt;
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use phx_core::backend::LiveOutput;
use phx_core::backend::live::read_output;
use tokio::io::AsyncWriteExt as _;

use crate::quote::sh_quote;

/// One command to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Bytes for standard input (none: stdin is `/dev/null`).
    pub stdin: Option<Vec<u8>>,
    /// Kill the command after this long.
    pub timeout: Duration,
    /// Where the output goes line by line while the command runs.
    pub live: Option<LiveOutput>,
}

impl Cmd {
    /// A command with a timeout.
    pub fn new(argv: Vec<String>, timeout: Duration) -> Self {
        Self {
            argv,
            stdin: None,
            timeout,
            live: None,
        }
    }
    /// Feed `bytes` on standard input.
    pub fn stdin(mut self, bytes: Vec<u8>) -> Self {
        self.stdin = Some(bytes);
        self
    }
    /// Stream the output into `live` while the command runs (`None`: only collect it).
    pub fn live(mut self, live: Option<LiveOutput>) -> Self {
        self.live = live;
        self
    }
}

/// What a command did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CmdOutput {
    /// Exit code (`-1` when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
}

impl CmdOutput {
    /// Standard output as (lossy) UTF-8.
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    /// Standard error as (lossy) UTF-8.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Why a command did not run to completion.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The program could not be started.
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The command outlived its timeout and was killed.
    #[error("{argv} timed out after {}s", after.as_secs_f64())]
    Timeout {
        /// The (redacted) command line.
        argv: String,
        /// The timeout.
        after: Duration,
    },
    /// Talking to the process failed.
    #[error("running {argv}: {source}")]
    Io {
        /// The (redacted) command line.
        argv: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Runs commands on a Proxmox node.
#[async_trait]
pub trait CommandRunner: Send + Sync + fmt::Debug {
    /// Run `cmd` to completion (or its timeout) and return its exit code and output.
    async fn run(&self, cmd: &Cmd) -> Result<CmdOutput, RunError>;
    /// Whether commands run on this machine (files of the node are local files).
    fn is_local(&self) -> bool;
}

/// Options whose value is a secret, redacted in logs.
const SECRET_FLAGS: &[&str] = &["--password", "--cipassword", "-password", "-cipassword"];

/// The argv with secret values replaced by `<redacted>`, for logs.
pub fn redact(argv: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(argv.len());
    let mut hide = false;
    for a in argv {
        if hide {
            out.push("<redacted>".to_string());
            hide = false;
            continue;
        }
        match a.split_once('=') {
            Some((k, _)) if SECRET_FLAGS.contains(&k) => out.push(format!("{k}=<redacted>")),
            _ => {
                hide = SECRET_FLAGS.contains(&a.as_str());
                out.push(a.clone());
            }
        }
    }
    out
}

/// Spawn `command`, feed stdin, wait with a timeout (the child is killed when it expires).
async fn spawn_wait(
    mut command: tokio::process::Command,
    cmd: &Cmd,
    shown: String,
) -> Result<CmdOutput, RunError> {
    command
        .stdin(if cmd.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        // its own process group: a Ctrl-C at the terminal interrupts phx, which lets running
        // Proxmox commands finish, instead of killing them half-way
        .process_group(0);
    let program = cmd.argv.first().cloned().unwrap_or_default();
    let mut child = command
        .spawn()
        .map_err(|source| RunError::Spawn { program, source })?;
    let _running = phx_core::backend::inflight::command(shown.clone(), child.id());
    let feeder = match (cmd.stdin.clone(), child.stdin.take()) {
        (Some(bytes), Some(mut pipe)) => Some(tokio::spawn(async move {
            // a child that exits without reading its input is not our error
            let _ = pipe.write_all(&bytes).await;
            let _ = pipe.shutdown().await;
        })),
        _ => None,
    };
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let finished = async {
        let (out, status) =
            tokio::join!(read_output(stdout, stderr, cmd.live.as_ref()), child.wait());
        let (stdout, stderr) = out?;
        std::io::Result::Ok(std::process::Output {
            status: status?,
            stdout,
            stderr,
        })
    };
    let out = match tokio::time::timeout(cmd.timeout, finished).await {
        Ok(Ok(o)) => o,
        Ok(Err(source)) => {
            return Err(RunError::Io {
                argv: shown,
                source,
            });
        }
        Err(_) => {
            return Err(RunError::Timeout {
                argv: shown,
                after: cmd.timeout,
            });
        }
    };
    if let Some(f) = feeder {
        let _ = f.await;
    }
    Ok(CmdOutput {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: out.stderr,
    })
}

/// Runs commands on this machine (phx on the Proxmox node itself).
#[derive(Debug, Clone, Default)]
pub struct LocalRunner {
    env: Vec<(String, String)>,
}

impl LocalRunner {
    /// A runner with the inherited environment.
    pub fn new() -> Self {
        Self::default()
    }
    /// Set an environment variable for every command (`PATH` to a directory of fakes in tests).
    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }
    /// Set several environment variables.
    pub fn envs(mut self, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        self.env.extend(vars);
        self
    }
}

#[async_trait]
impl CommandRunner for LocalRunner {
    async fn run(&self, cmd: &Cmd) -> Result<CmdOutput, RunError> {
        let shown = redact(&cmd.argv).join(" ");
        tracing::debug!(argv = %shown, timeout_s = cmd.timeout.as_secs_f64(), "run");
        let Some((prog, args)) = cmd.argv.split_first() else {
            return Err(RunError::Spawn {
                program: String::new(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty argv"),
            });
        };
        let mut command = tokio::process::Command::new(prog);
        command.args(args);
        for (k, v) in &self.env {
            command.env(k, v);
        }
        let out = spawn_wait(command, cmd, shown.clone()).await?;
        tracing::debug!(argv = %shown, code = out.code, "done");
        Ok(out)
    }

    fn is_local(&self) -> bool {
        true
    }
}

/// Runs every command on a node over ssh: `ssh -o BatchMode=yes <target> -- <quoted argv>`.
/// ssh hands the remote shell one string, so each argument is POSIX-quoted to arrive intact.
#[derive(Debug, Clone)]
pub struct SshRunner {
    target: String,
    program: String,
    options: Vec<String>,
    env: Vec<(String, String)>,
}

impl SshRunner {
    /// Run on `target` (`root@pve1`), as given to `--ssh` / `PHX_SSH`.
    pub fn new(target: impl Into<String>) -> Self {
        Self {
            target: target.into(),
            program: "ssh".into(),
            options: Vec::new(),
            env: Vec::new(),
        }
    }
    /// Extra `ssh` options (`-p`, `2222`, `-i`, key file, ...), placed before the target.
    pub fn option(mut self, o: impl Into<String>) -> Self {
        self.options.push(o.into());
        self
    }
    /// Environment of the local `ssh` process (e.g. `PATH`, `SSH_AUTH_SOCK`).
    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }
    /// The target.
    pub fn target(&self) -> &str {
        &self.target
    }
    /// The local argv that runs `argv` on the target.
    pub fn ssh_argv(&self, argv: &[String]) -> Vec<String> {
        let mut v = vec![self.program.clone(), "-o".into(), "BatchMode=yes".into()];
        v.extend(self.options.iter().cloned());
        v.push(self.target.clone());
        v.push("--".into());
        v.extend(argv.iter().map(|a| sh_quote(a)));
        v
    }
}

#[async_trait]
impl CommandRunner for SshRunner {
    async fn run(&self, cmd: &Cmd) -> Result<CmdOutput, RunError> {
        let shown = format!("[{}] {}", self.target, redact(&cmd.argv).join(" "));
        tracing::debug!(argv = %shown, timeout_s = cmd.timeout.as_secs_f64(), "run over ssh");
        let full = self.ssh_argv(&cmd.argv);
        let mut command = tokio::process::Command::new(&full[0]);
        command.args(&full[1..]);
        for (k, v) in &self.env {
            command.env(k, v);
        }
        let out = spawn_wait(
            command,
            &Cmd {
                argv: full,
                stdin: cmd.stdin.clone(),
                timeout: cmd.timeout,
                live: cmd.live.clone(),
            },
            shown.clone(),
        )
        .await?;
        tracing::debug!(argv = %shown, code = out.code, "done");
        Ok(out)
    }

    fn is_local(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The process group (field 5 of `/proc/<pid>/stat`).
    fn pgrp(stat: &str) -> String {
        // the command name (field 2) is in parentheses and may contain spaces
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        after.split(' ').nth(2).unwrap().to_string()
    }

    #[tokio::test]
    async fn commands_run_in_their_own_process_group_and_are_in_flight_meanwhile() {
        let ours = pgrp(&std::fs::read_to_string("/proc/self/stat").unwrap());
        let cmd = Cmd {
            argv: vec!["cat".into(), "/proc/self/stat".into()],
            stdin: None,
            timeout: Duration::from_secs(10),
            live: None,
        };
        let out = LocalRunner::new().run(&cmd).await.unwrap();
        let theirs = pgrp(&String::from_utf8(out.stdout).unwrap());
        // a Ctrl-C at the terminal goes to phx's group, not to the command's
        assert_ne!(ours, theirs);

        // while it runs, the command is listed as in flight with its pid
        let slow = Cmd {
            argv: vec!["sleep".into(), "0.5".into()],
            stdin: None,
            timeout: Duration::from_secs(10),
            live: None,
        };
        let runner = LocalRunner::new();
        let run = tokio::spawn(async move { runner.run(&slow).await });
        let mut seen = false;
        for _ in 0..40 {
            if phx_core::backend::inflight::in_flight()
                .iter()
                .any(|e| e.what == "sleep 0.5" && e.pid.is_some())
            {
                seen = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        run.await.unwrap().unwrap();
        assert!(seen, "sleep 0.5 was never in flight");
        assert!(
            !phx_core::backend::inflight::in_flight()
                .iter()
                .any(|e| e.what == "sleep 0.5")
        );
    }

    #[test]
    fn passwords_are_redacted_in_logs() {
        let argv: Vec<String> = [
            "pct",
            "create",
            "100",
            "t",
            "--password",
            "s3cret",
            "--cipassword=x",
            "--hostname",
            "a",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            redact(&argv).join(" "),
            "pct create 100 t --password <redacted> --cipassword=<redacted> --hostname a"
        );
    }

    #[test]
    fn ssh_argv_quotes_every_argument() {
        let r = SshRunner::new("root@pve1");
        let argv: Vec<String> = ["pct", "exec", "100", "--", "sh", "-c", "echo $HOME; ls 'x'"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            r.ssh_argv(&argv),
            vec![
                "ssh",
                "-o",
                "BatchMode=yes",
                "root@pve1",
                "--",
                "pct",
                "exec",
                "100",
                "--",
                "sh",
                "-c",
                "'echo $HOME; ls '\\''x'\\'''"
            ]
        );
    }
}
