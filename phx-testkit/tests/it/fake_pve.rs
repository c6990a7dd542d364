//! The `phx-fake-pve` executables: byte-exact output layouts, exit codes, stderr, pvesh's
//! output rules, the state lock and `/etc/pve` rendering.

use std::process::{Command, Output};

use phx_testkit::FakePve;

fn run(f: &FakePve, argv: &[&str]) -> Output {
    let mut c = Command::new(argv[0]);
    c.args(&argv[1..]);
    for (k, v) in f.env() {
        c.env(k, v);
    }
    c.output().unwrap_or_else(|e| panic!("{argv:?}: {e}"))
}

fn ok(f: &FakePve, argv: &[&str]) -> String {
    let o = run(f, argv);
    assert!(
        o.status.success(),
        "{argv:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

const TMPL: &str = "local:vztmpl/debian-12-standard_12.12-1_amd64.tar.zst";

fn node_with_ct() -> FakePve {
    let f = FakePve::new().unwrap();
    ok(
        &f,
        &[
            "pveam",
            "download",
            "local",
            "debian-12-standard_12.12-1_amd64.tar.zst",
        ],
    );
    ok(
        &f,
        &[
            "pct",
            "create",
            "100",
            TMPL,
            "--hostname",
            "web01",
            "--rootfs",
            "local-lvm:8",
            "--memory",
            "1024",
            "--features",
            "nesting=1,keyctl=1",
        ],
    );
    f
}

#[test]
fn empty_lists_print_nothing() {
    let f = FakePve::new().unwrap();
    assert_eq!(ok(&f, &["pct", "list"]), "");
    assert_eq!(ok(&f, &["qm", "list"]), "");
}

#[test]
fn pct_list_and_qm_list_use_the_printf_layouts_with_trailing_spaces() {
    let f = node_with_ct();
    ok(
        &f,
        &[
            "qm",
            "create",
            "9000",
            "--name",
            "tmpl",
            "--memory",
            "1536",
            "--scsi0",
            "local-lvm:32",
        ],
    );
    assert_eq!(
        ok(&f, &["pct", "list"]),
        "VMID       Status     Lock         Name                \n100        stopped                 web01               \n"
    );
    assert_eq!(
        ok(&f, &["qm", "list"]),
        "      VMID NAME                 STATUS     MEM(MB)    BOOTDISK(GB) PID       \n      9000 tmpl                 stopped    1536              32.00 0         \n"
    );
    assert_eq!(ok(&f, &["pct", "status", "100"]), "status: stopped\n");
}

#[test]
fn pct_config_prints_sorted_keys_then_raw_lines() {
    let f = node_with_ct();
    ok(
        &f,
        &["pct", "set", "100", "--description", "web: 100% ready"],
    );
    let out = ok(&f, &["pct", "config", "100"]);
    let keys: Vec<&str> = out
        .lines()
        .map(|l| l.split(':').next().unwrap_or_default())
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert!(out.contains("description: web%3A 100%25 ready\n"), "{out}");
    assert!(
        out.contains("features: keyctl=1,nesting=1\n") && !out.contains("digest"),
        "{out}"
    );
    let conf = std::fs::read_to_string(f.etc_dir().join("lxc/100.conf")).unwrap();
    std::fs::write(
        f.etc_dir().join("lxc/100.conf"),
        format!("{conf}lxc.apparmor.profile: unconfined\n"),
    )
    .unwrap();
    assert!(
        ok(&f, &["pct", "config", "100"]).ends_with("lxc.apparmor.profile: unconfined\n"),
        "raw lines edited in /etc/pve are read back"
    );
}

#[test]
fn failures_exit_255_with_the_message_on_stderr() {
    let f = node_with_ct();
    let o = run(&f, &["pct", "start", "101"]);
    assert_eq!(
        (o.status.code(), String::from_utf8_lossy(&o.stderr).as_ref()),
        (
            Some(255),
            "Configuration file 'nodes/pve/lxc/101.conf' does not exist\n"
        )
    );
    ok(&f, &["pct", "start", "100"]);
    let o = run(&f, &["pct", "start", "100"]);
    assert_eq!(
        (o.status.code(), String::from_utf8_lossy(&o.stderr).as_ref()),
        (Some(255), "CT 100 already running\n")
    );
    let o = run(&f, &["pct", "set", "100", "--memory", "lots"]);
    assert_eq!(o.status.code(), Some(255));
    assert!(String::from_utf8_lossy(&o.stderr).starts_with(
        "400 Parameter verification failed.\nmemory: type check ('integer') failed - got 'lots'\n"
    ));
}

#[test]
fn pct_exec_passes_the_exit_code_and_output_through() {
    let f = node_with_ct();
    let o = run(&f, &["pct", "exec", "100", "--", "true"]);
    assert_eq!(
        (o.status.code(), String::from_utf8_lossy(&o.stderr).as_ref()),
        (Some(255), "container '100' not running!\n")
    );
    ok(&f, &["pct", "start", "100"]);
    let o = run(
        &f,
        &[
            "pct",
            "exec",
            "100",
            "--",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 7",
        ],
    );
    assert_eq!(
        (o.status.code(), o.stdout.as_slice(), o.stderr.as_slice()),
        (Some(7), &b"out\n"[..], &b"err\n"[..])
    );
}

#[test]
fn pvesh_prints_bare_canonical_json_and_exits_0_on_a_failed_task() {
    let f = node_with_ct();
    let v = ok(
        &f,
        &[
            "pvesh",
            "get",
            "/nodes/pve/lxc/100/status/current",
            "--output-format",
            "json",
        ],
    );
    assert!(
        v.starts_with("{\"cpu\":") && v.ends_with("}\n") && !v.contains("\"data\""),
        "{v}"
    );
    assert_eq!(
        ok(
            &f,
            &[
                "pvesh",
                "set",
                "/nodes/pve/lxc/100/config",
                "--onboot",
                "1",
                "--output-format",
                "json"
            ]
        ),
        "",
        "null prints nothing"
    );
    let o = run(
        &f,
        &[
            "pvesh",
            "create",
            "/nodes/pve/lxc/101/status/start",
            "--output-format",
            "json",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "pvesh has no $upid_exit");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.lines()
            .last()
            .is_some_and(|l| l.starts_with("\"UPID:pve:") && l.contains(":vzstart:101:")),
        "{out}"
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "Configuration file 'nodes/pve/lxc/101.conf' does not exist\n"
    );
    let pretty = ok(
        &f,
        &[
            "pvesh",
            "get",
            "/nodes/pve/dns",
            "--output-format",
            "json-pretty",
        ],
    );
    assert_eq!(
        pretty,
        "{\n   \"dns1\" : \"192.168.1.1\",\n   \"search\" : \"localdomain\"\n}\n"
    );
}

#[test]
fn pvesm_and_pveam_layouts() {
    let f = node_with_ct();
    let st = ok(&f, &["pvesm", "status"]);
    let mut lines = st.lines();
    assert_eq!(
        lines.next(),
        Some(
            "Name             Type     Status     Total (KiB)      Used (KiB) Available (KiB)        %"
        )
    );
    assert!(
        lines
            .next()
            .is_some_and(|l| l.starts_with("local             dir     active ")),
        "{st}"
    );
    assert_eq!(
        ok(&f, &["pveam", "list", "local"]),
        format!("{:<60} {:<6}\n{:<60} 135.00MB\n", "NAME", "SIZE", TMPL)
    );
    assert!(
        ok(&f, &["pveam", "available", "--section", "system"]).starts_with(
            "system          alpine-3.22-default_20250617_amd64.tar.xz                    amd64\n"
        )
    );
    let o = run(
        &f,
        &["pveam", "download", "local", "no-such-template.tar.zst"],
    );
    assert_ne!(
        o.status.code(),
        Some(0),
        "an unknown template is refused before any task"
    );
}

#[test]
fn qm_guest_exec_prints_perl_pretty_json_and_exits_0() {
    let f = FakePve::new().unwrap();
    ok(&f, &["qm", "create", "200", "--agent", "1"]);
    ok(&f, &["qm", "start", "200"]);
    let out = ok(
        &f,
        &[
            "qm",
            "guest",
            "exec",
            "200",
            "--",
            "sh",
            "-c",
            "echo hello; exit 4",
        ],
    );
    assert_eq!(
        out,
        "{\n   \"exitcode\" : 4,\n   \"exited\" : 1,\n   \"out-data\" : \"hello\\n\"\n}\n"
    );
}

#[test]
fn parallel_invocations_do_not_lose_updates_and_latency_is_slept_unlocked() {
    let f = FakePve::new().unwrap();
    f.with(|c| c.set_latency_ms(300)).unwrap();
    ok(
        &f,
        &[
            "pveam",
            "download",
            "local",
            "debian-12-standard_12.12-1_amd64.tar.zst",
        ],
    );
    let started = std::time::Instant::now();
    let children: Vec<_> = (0..6)
        .map(|i| {
            let id = (300 + i).to_string();
            let mut c = Command::new("pct");
            c.args(["create", &id, TMPL, "--rootfs", "local-lvm:1"]);
            for (k, v) in f.env() {
                c.env(k, v);
            }
            c.spawn().unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_millis(1500),
        "six 300 ms tasks overlapped ({took:?})"
    );
    let list = ok(&f, &["pct", "list"]);
    assert_eq!(list.lines().count(), 7, "{list}");
}
