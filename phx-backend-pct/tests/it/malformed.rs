//! Bad output from the Proxmox tools: what a broken, newer or older `pvesh`/`qm` might print.
//! The backend runs against a runner that prints exactly the given bytes; every case must be
//! a clear error naming the command (no panic, no hang), with the output quoted only in part.
//! The text parsers the fake tools are checked with get the same treatment directly.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use phx_backend_pct::parse;
use phx_backend_pct::{Cmd, CmdOutput, CommandRunner, PctBackend, PctOptions, RunError};
use phx_core::Error;
use phx_core::backend::{ExecRequest, Hypervisor};
use phx_core::types::{GuestId, NodeName, StorageId};

/// Prints `stdout` (exit `code`) for any command whose argv contains `pattern`; exit 0 and
/// nothing for any other. Records every argv.
#[derive(Debug, Default)]
struct Canned {
    rules: Vec<(String, i32, Vec<u8>)>,
    calls: Mutex<Vec<String>>,
}

impl Canned {
    fn answer(mut self, pattern: &str, code: i32, stdout: impl Into<Vec<u8>>) -> Self {
        self.rules.push((pattern.to_string(), code, stdout.into()));
        self
    }
}

#[async_trait]
impl CommandRunner for Canned {
    async fn run(&self, cmd: &Cmd) -> Result<CmdOutput, RunError> {
        let line = cmd.argv.join(" ");
        self.calls.lock().unwrap().push(line.clone());
        let out = self
            .rules
            .iter()
            .find(|(p, _, _)| line.contains(p.as_str()))
            .map(|(_, code, stdout)| CmdOutput {
                code: *code,
                stdout: stdout.clone(),
                stderr: Vec::new(),
            })
            .unwrap_or_default();
        Ok(out)
    }
    fn is_local(&self) -> bool {
        true
    }
}

fn pve() -> NodeName {
    NodeName::new("pve").unwrap()
}

fn id() -> GuestId {
    GuestId::new(101).unwrap()
}

fn backend(runner: Canned) -> (Arc<Canned>, PctBackend) {
    let runner = Arc::new(runner);
    let b = PctBackend::new(
        runner.clone(),
        PctOptions {
            node: Some(pve()),
            read_timeout: Duration::from_secs(5),
            ..PctOptions::default()
        },
    );
    (runner, b)
}

/// The error of a backend call, as a line for the snapshot: a parse error is a permanent
/// `Backend` error of the pct backend.
fn line<T: std::fmt::Debug>(case: &str, r: phx_core::Result<T>) -> String {
    let e = match r {
        Ok(v) => panic!("{case}: accepted as {v:?}"),
        Err(e) => e,
    };
    assert!(
        matches!(e, Error::Backend { backend: "pct", .. }),
        "{case}: {e:?}"
    );
    assert!(!e.is_retryable(), "{case}: retrying cannot fix bad output");
    format!("{case}\n  -> {e}")
}

const STATUS: &str = "/status/current";

#[tokio::test]
async fn malformed_guest_status_is_an_error_naming_the_command() {
    let cases: &[(&str, &[u8])] = &[
        ("not JSON", b"Use of uninitialized value in string eq at /usr/share/perl5/PVE/CLI/pvesh.pm line 42.\n"),
        ("truncated JSON", br#"{"vmid": 101, "status": "runn"#),
        ("JSON without vmid", br#"{"status": "running", "name": "dns"}"#),
        ("vmid of the wrong type", br#"{"vmid": ["101"], "status": "running"}"#),
        ("vmid that is not a number", br#"{"vmid": "abc", "status": "running"}"#),
        ("vmid out of range", br#"{"vmid": 99, "status": "running"}"#),
        ("vmid too large", br#"{"vmid": 4294967296, "status": "running"}"#),
        ("a list instead of an object", br#"[{"vmid": 101}]"#),
        ("nothing at all", b""),
        ("not UTF-8", b"\xff\xfe{\"vmid\": 101}"),
    ];
    let mut out = Vec::new();
    for (case, stdout) in cases {
        let (_, b) = backend(Canned::default().answer(STATUS, 0, *stdout));
        out.push(line(case, b.lxc().status(&pve(), id()).await));
    }
    insta::assert_snapshot!(out.join("\n"));
}

#[tokio::test]
async fn malformed_lists_and_configs_are_errors_naming_what_was_read() {
    let (_, b) = backend(Canned::default().answer("/config", 0, "[1, 2]"));
    let mut out = vec![line(
        "config that is a list",
        b.lxc().config(&pve(), id()).await,
    )];
    let (_, b) = backend(Canned::default().answer("/config", 0, r#"{"lxc": [["lxc.idmap"]]}"#));
    out.push(line(
        "config with a half lxc pair",
        b.lxc().config(&pve(), id()).await,
    ));
    let (_, b) = backend(Canned::default().answer("/snapshot", 0, r#"{"name": "golden"}"#));
    out.push(line(
        "snapshots that are an object",
        b.vm().snapshots(&pve(), id()).await,
    ));
    let (_, b) = backend(Canned::default().answer(
        "/cluster/resources",
        0,
        r#"[{"type": "lxc", "vmid": 101, "node": "bad node; rm -rf /", "status": "running"}]"#,
    ));
    out.push(line("a guest on a node with a bad name", b.guests().await));
    let (_, b) = backend(Canned::default().answer(
        "/storage",
        0,
        r#"[{"storage": "../../etc", "type": "dir"}]"#,
    ));
    out.push(line("a storage with a bad id", b.storages(&pve()).await));
    let (_, b) = backend(Canned::default().answer("/nodes", 0, r#"[{"node": 5}]"#));
    out.push(line("a node whose name is a number", b.nodes().await));
    let (_, b) = backend(Canned::default().answer("/version", 0, r#"{"release": "9.1"}"#));
    out.push(line("a version without version", b.version().await));
    let (_, b) =
        backend(Canned::default().answer("/version", 0, r#"{"data": {"version": "9.1.2"}}"#));
    out.push(line("a version wrapped in data", b.version().await));
    insta::assert_snapshot!(out.join("\n"));
}

#[tokio::test]
async fn host_lists_that_are_not_lists_are_errors_not_empty_lists() {
    // read as "no users" or "no rules", they would make phx add a user or drop rules
    let (_, b) = backend(Canned::default().answer("/access/users", 0, r#"{"userid": "x"}"#));
    let users = b.users().await.unwrap_err().to_string();
    assert!(
        users.contains("pvesh get /access/users") && users.contains("not a list"),
        "{users}"
    );
    let (_, b) = backend(Canned::default().answer("/firewall/rules", 0, "null"));
    let rules = b.cluster_firewall().await.unwrap_err().to_string();
    assert!(
        rules.contains("pvesh get /cluster/firewall/rules") && rules.contains("not a list"),
        "{rules}"
    );
}

#[tokio::test]
async fn an_unreadable_task_status_after_a_write_is_an_error_not_a_success() {
    let upid = "UPID:pve:00001234:00005678:66DC5987:download:noble.img:root@pam:";
    let (runner, b) = backend(
        Canned::default()
            .answer("pvesh create", 0, format!("downloading...\n\"{upid}\"\n"))
            .answer("/tasks/", 0, r#"{"status": "stopped", "exitstatus": "#),
    );
    let r = b
        .download_url(
            &pve(),
            &StorageId::new("local").unwrap(),
            "iso",
            "noble.img",
            "https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img",
        )
        .await;
    let text = line("a truncated task status", r);
    insta::assert_snapshot!(text);
    let calls = runner.calls.lock().unwrap().clone();
    assert_eq!(
        calls.iter().filter(|c| c.contains("pvesh create")).count(),
        1,
        "the write is never sent twice: {calls:#?}"
    );
}

#[tokio::test]
async fn malformed_guest_agent_output_is_an_error() {
    let mut out = Vec::new();
    for (case, stdout) in [
        (
            "qm guest exec printing text",
            "QEMU guest agent is not running\n",
        ),
        (
            "qm guest exec with neither exited nor pid",
            "{\"exited\": 0}",
        ),
        (
            "qm guest exec cut short",
            "{\n   \"exitcode\" : 0,\n   \"exi",
        ),
    ] {
        let (_, b) = backend(Canned::default().answer("guest exec", 0, stdout));
        out.push(line(
            case,
            b.vm()
                .agent_exec(&pve(), id(), &ExecRequest::new(["true"]))
                .await,
        ));
    }
    insta::assert_snapshot!(out.join("\n"));
}

#[tokio::test]
async fn a_huge_answer_is_refused_with_an_error_that_quotes_only_its_start() {
    // 50 MB of something that is not JSON, on one line.
    let junk = "x".repeat(50 * 1024 * 1024);
    let (_, b) = backend(Canned::default().answer(STATUS, 0, junk.clone()));
    let e = b.lxc().status(&pve(), id()).await.unwrap_err();
    let text = e.to_string();
    assert!(text.len() < 1000, "the error is {} bytes long", text.len());
    assert!(text.contains("(52428800 bytes)"), "{text}");
    insta::assert_snapshot!(text);

    // A huge but well-formed list is read in full.
    let many: Vec<String> = (0..100_000)
        .map(|i| format!(r#"{{"volid": "local:backup/vzdump-lxc-{i}.tar.zst", "content": "backup", "size": {i}, "vmid": 101}}"#))
        .collect();
    let (_, b) = backend(Canned::default().answer("/content", 0, format!("[{}]", many.join(","))));
    let volumes = b
        .storage_content(&pve(), &StorageId::new("local").unwrap(), None)
        .await
        .unwrap();
    assert_eq!(volumes.len(), 100_000);
}

#[test]
fn malformed_tool_text_is_an_error_naming_the_line() {
    let long = format!("{} running dns", "1".repeat(10_000));
    let cases: Vec<(&str, String)> = vec![
        (
            "pct list",
            "VMID       Status     Lock         Name\nabc        running                 dns\n"
                .into(),
        ),
        ("pct list", "101 running\n".into()),
        ("pct list", long.clone()),
        (
            "qm list",
            "      VMID NAME STATUS\n       104 web running 2048 lots 0\n".into(),
        ),
        ("pct status", "state: running\n".into()),
        ("pct config", "arch amd64\n".into()),
        (
            "pct listsnapshot",
            "golden 2024-05-01 10:00:00 no-description\n".into(),
        ),
        ("pvesm status", "local dir active 100 5\n".into()),
        ("pvesm status", "local dir active 100 -5 95 5.00%\n".into()),
        (
            "pveam list",
            "local:vztmpl/debian.tar.zst 120.29GB\n".into(),
        ),
        ("pveam available", "system debian-12 amd64 extra\n".into()),
    ];
    let mut out = Vec::new();
    for (tool, text) in &cases {
        let e = match *tool {
            "pct list" => parse::pct_list(text).map(|_| ()),
            "qm list" => parse::qm_list(text).map(|_| ()),
            "pct status" => parse::status_line(text).map(|_| ()),
            "pct config" => parse::config_text(text).map(|_| ()),
            "pct listsnapshot" => parse::listsnapshot(text).map(|_| ()),
            "pvesm status" => parse::pvesm_status(text).map(|_| ()),
            "pveam list" => parse::pveam_list(text).map(|_| ()),
            "pveam available" => parse::pveam_available(text).map(|_| ()),
            other => unreachable!("{other}"),
        }
        .expect_err(tool);
        let shown = e.to_string();
        assert!(shown.len() < 400, "{tool}: {} bytes", shown.len());
        out.push(format!("{tool}\n  -> {shown}"));
    }
    insta::assert_snapshot!(out.join("\n"));
}

#[test]
fn snapshot_dates_proxmox_cannot_print_are_not_times() {
    // Found by the pct_output fuzz target: a date this large overflowed the epoch arithmetic
    // (a panic in debug builds, a wrong time in release).
    let out = "`-> golden 9999999999999999-01-01 00:00:00 no-description\n\
               `-> second 2024-13-01 10:00:00 month 13\n\
               `-> third 2024-05-01 24:00:00 hour 24\n\
               `-> fourth 2024-05-01 10:00:00 fine\n";
    let snaps = parse::listsnapshot(out).unwrap();
    let got: Vec<(&str, Option<i64>, &str)> = snaps
        .iter()
        .map(|s| (s.name.as_str(), s.snaptime, s.description.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "golden",
                None,
                "9999999999999999-01-01 00:00:00 no-description"
            ),
            ("second", None, "2024-13-01 10:00:00 month 13"),
            ("third", None, "2024-05-01 24:00:00 hour 24"),
            ("fourth", Some(1_714_557_600), "fine"),
        ]
    );
}
