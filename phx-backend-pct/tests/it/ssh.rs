//! The ssh runner against a fake `ssh` on PATH that behaves like the real one: it hands the
//! words after `--` to the remote shell as one string. Arguments arrive intact only if every
//! one was quoted right.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use phx_backend_pct::{Cmd, CommandRunner, PctBackend, PctOptions, SshRunner};
use phx_core::backend::{ExecRequest, Hypervisor, LxcCreate};
use phx_core::types::{GuestId, NodeName};
use phx_testkit::FakePve;

const FAKE_SSH: &str = r#"#!/bin/sh
# like ssh: options, the target, `--`, then one command line for the remote shell
printf '%s|' "$@" > "$PHX_SSH_LOG"
while [ $# -gt 0 ] && [ "$1" != "--" ]; do shift; done
shift
exec sh -c "$*"
"#;

fn fake_ssh(dir: &Path) {
    let p = dir.join("ssh");
    std::fs::write(&p, FAKE_SSH).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

fn path_with(dir: &Path, rest: &str) -> String {
    format!("{}:{rest}", dir.display())
}

const TRICKY: &[&str] = &[
    "a b",
    "it's",
    "$HOME",
    "x;y",
    "line1\nline2",
    "*",
    "",
    "back\\slash",
    "`id`",
    "\"dq\"",
    "--",
];

#[tokio::test]
async fn every_argument_survives_the_remote_shell() {
    let dir = tempfile::tempdir().unwrap();
    fake_ssh(dir.path());
    let log = dir.path().join("ssh.log");
    let runner = SshRunner::new("root@pve1")
        .env(
            "PATH",
            path_with(dir.path(), &std::env::var("PATH").unwrap_or_default()),
        )
        .env("PHX_SSH_LOG", log.to_string_lossy());
    let mut argv = vec!["printf".to_string(), "<%s>\\n".to_string()];
    argv.extend(TRICKY.iter().map(|s| s.to_string()));
    let out = runner
        .run(&Cmd::new(argv, std::time::Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(out.code, 0, "{}", out.stderr_text());
    let want: String = TRICKY.iter().map(|a| format!("<{a}>\n")).collect();
    assert_eq!(out.stdout_text(), want);
    let seen = std::fs::read_to_string(&log).unwrap();
    assert!(
        seen.starts_with("-o|BatchMode=yes|root@pve1|--|printf|"),
        "{seen}"
    );
    // stdin goes through too
    let out = runner
        .run(
            &Cmd::new(vec!["cat".into()], std::time::Duration::from_secs(10))
                .stdin(b"piped $x 'y'\n".to_vec()),
        )
        .await
        .unwrap();
    assert_eq!(out.stdout_text(), "piped $x 'y'\n");
}

#[tokio::test]
async fn the_backend_works_over_ssh_including_exec_push_and_raw_lxc_lines() {
    let dir = tempfile::tempdir().unwrap();
    fake_ssh(dir.path());
    let fake = FakePve::new().unwrap();
    let mut runner =
        SshRunner::new("root@pve").env("PHX_SSH_LOG", dir.path().join("ssh.log").to_string_lossy());
    for (k, v) in fake.env() {
        runner = if k == "PATH" {
            runner.env(k, path_with(dir.path(), &v))
        } else {
            runner.env(k, v)
        };
    }
    let b = PctBackend::new(
        Arc::new(runner),
        PctOptions {
            pve_etc: fake.etc_dir(),
            ..PctOptions::default()
        },
    );
    let node = NodeName::new("pve").unwrap();
    let id = GuestId::new(7001).unwrap();
    b.download_template(
        &node,
        &"local".parse().unwrap(),
        "debian-12-standard_12.12-1_amd64.tar.zst",
    )
    .await
    .unwrap();
    let params = BTreeMap::from([
        ("hostname".to_string(), "over-ssh".to_string()),
        ("rootfs".to_string(), "local-lvm:2".to_string()),
        (
            "description".to_string(),
            "quoted 'desc'; $PATH".to_string(),
        ),
    ]);
    b.lxc()
        .create(
            &node,
            &LxcCreate {
                id,
                ostemplate: "local:vztmpl/debian-12-standard_12.12-1_amd64.tar.zst".into(),
                params,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        b.lxc().config(&node, id).await.unwrap().get("description"),
        Some("quoted 'desc'; $PATH")
    );
    b.lxc().start(&node, id).await.unwrap();
    b.lxc()
        .push(
            &node,
            id,
            b"#!/bin/sh\nprintf '%s|' \"$@\"\n",
            "/root/args.sh",
            0o755,
        )
        .await
        .unwrap();
    let mut argv = vec!["/root/args.sh".to_string()];
    argv.extend(TRICKY.iter().map(|s| s.to_string()));
    let out = b
        .lxc()
        .exec(&node, id, &ExecRequest::new(argv))
        .await
        .unwrap();
    assert_eq!(
        out.stdout,
        TRICKY.iter().map(|a| format!("{a}|")).collect::<String>()
    );
    let lines = vec![("lxc.apparmor.profile".to_string(), "unconfined".to_string())];
    b.lxc().set_raw_config(&node, id, &lines).await.unwrap();
    assert_eq!(b.lxc().config(&node, id).await.unwrap().raw_lxc, lines);
}
