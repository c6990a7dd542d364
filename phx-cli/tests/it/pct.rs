//! `phx --backend pct` against the fake `pct`/`qm`/`pvesh`/`pvesm`/`pveam` executables, locally
//! and over a fake `ssh`.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use phx_testkit::router::FakePve;

use crate::support::{World, run};

fn pct_cmd(w: &World, fake: &FakePve, args: &[&str]) -> Command {
    let mut c = w.cmd(args);
    c.env("PHX_BACKEND", "pct")
        .env("PHX_PVE_ETC", fake.etc_dir());
    for (k, v) in fake.env() {
        c.env(k, v);
    }
    c
}

#[test]
fn up_status_and_delete_through_the_proxmox_tools() {
    let w = World::new();
    let fake = FakePve::new().unwrap();
    let r = run(
        pct_cmd(&w, &fake, &["up", "-j", "2", "--no-progress"]),
        w.dir.path(),
    );
    assert_eq!(r.code, 0, "{}", r.render());
    assert!(
        r.stdout.contains("6 changed, 0 unchanged, 0 failed"),
        "{}",
        r.render()
    );
    // the container features ran on the "node" and used `pct exec`/`pct push` into the guest
    let marker = fake
        .root()
        .join("state.guests/guests/101/etc/phx/base_setup");
    assert!(
        !marker.exists(),
        "101 inherits base_setup from its clone source"
    );
    let marker = fake
        .root()
        .join("state.guests/guests/900/etc/phx/base_setup");
    assert!(marker.is_file(), "base_setup ran through pct push");
    let r = run(pct_cmd(&w, &fake, &["up"]), w.dir.path());
    assert!(
        r.stdout.contains("0 changed, 6 unchanged"),
        "{}",
        r.render()
    );
    let r = run(pct_cmd(&w, &fake, &["status", "-o", "json"]), w.dir.path());
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let running: Vec<u64> = v["guests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["status"] == "running")
        .map(|g| g["id"].as_u64().unwrap())
        .collect();
    assert_eq!(running, [101, 102, 103, 1001]);
    let r = run(
        pct_cmd(&w, &fake, &["lxc", "delete", "103", "--yes"]),
        w.dir.path(),
    );
    assert_eq!(r.code, 0, "{}", r.render());
    assert!(fake.with(|c| !c.guests.contains_key(&103)).unwrap());
    // raw lxc lines went into the node's config file
    let conf = std::fs::read_to_string(fake.etc_dir().join("lxc/900.conf")).unwrap();
    assert!(conf.contains("lxc.apparmor.profile: unconfined"), "{conf}");
}

/// A fake `ssh` that checks the command line phx builds and runs the remote command the way
/// sshd would (one string for the remote shell), logging what it received.
fn fake_ssh(dir: &std::path::Path) -> std::path::PathBuf {
    let bin = dir.join("ssh-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = dir.join("ssh.log");
    let script = format!(
        "#!/bin/sh\n[ \"$1\" = -o ] && [ \"$2\" = BatchMode=yes ] || {{ echo 'missing -o BatchMode=yes' >&2; exit 255; }}\nshift 2\ntarget=\"$1\"; shift\n[ \"$1\" = -- ] || {{ echo 'missing --' >&2; exit 255; }}\nshift\nprintf '%s\\n' \"$target $*\" >> '{}'\nexec sh -c \"$*\"\n",
        log.display()
    );
    std::fs::write(bin.join("ssh"), script).unwrap();
    std::fs::set_permissions(bin.join("ssh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

#[test]
fn pct_over_ssh_quotes_every_argument() {
    let w = World::new();
    let fake = FakePve::new().unwrap();
    let ssh_bin = fake_ssh(w.dir.path());
    let mut c = pct_cmd(
        &w,
        &fake,
        &[
            "--ssh",
            "root@pve1",
            "lxc",
            "create",
            "101",
            "--no-progress",
        ],
    );
    let path = fake
        .env()
        .into_iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v)
        .unwrap();
    c.env("PATH", format!("{}:{path}", ssh_bin.display()));
    let r = run(c, w.dir.path());
    assert_eq!(r.code, 0, "{}", r.render());
    let log = std::fs::read_to_string(w.dir.path().join("ssh.log")).unwrap();
    let log = log.replace(&w.dir.path().display().to_string(), "[TMP]");
    // every command went to the target, as one string for the remote shell
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines.iter().all(|l| l.starts_with("root@pve1 ")), "{log}");
    // exactly as sent: words that need no quoting as they are, the others in single quotes
    for want in [
        "root@pve1 pct create 900 local:vztmpl/debian-12-standard_12.12-1_amd64.tar.zst --cores 1 --features nesting=1 --hostname Base-Template --memory 1024 --nameserver 9.9.9.9 --net0 name=eth0,bridge=vmbr0,gw=192.168.50.1,hwaddr=52:54:00:50:00:C8,ip=192.168.50.200/24,type=veth --onboot 0 --rootfs local-lvm:8 --startup order=0,up=0,down=0 --storage local-lvm --unprivileged 1",
        "root@pve1 pct set 900 --description '[phx] features=base_setup'",
        "root@pve1 pct snapshot 900 golden --description 'phx template snapshot'",
        "root@pve1 pvesh create /nodes/pve/lxc/101/firewall/rules --pos 1 --type in --action ACCEPT --enable 1 --proto tcp --dport 53 --source 192.168.50.0/24 --comment 'DNS over TCP from the LAN' --output-format json",
        "root@pve1 pct exec 101 --keep-env 0 -- env PHX_GUEST_ID=101 PHX_GUEST_KIND=lxc PHX_NODE=pve PHX_CONFIG_DIR=[TMP]/etc /tmp/phoenix_run/homelab_dns.sh 101",
        "root@pve1 pct set 101 --description '[phx] features=base_setup,dns_server app=homelab_dns.sh@7ea24fa8070d91d3'",
    ] {
        assert_eq!(
            lines.iter().filter(|l| **l == want).count(),
            1,
            "{want}\nnot once in:\n{log}"
        );
    }
    // and the remote shell splits them back into the words phx meant
    let words = |prefix: &str| -> Vec<String> {
        let line = lines
            .iter()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in:\n{log}"));
        shell_words(line.trim_start_matches("root@pve1 "))
    };
    assert_eq!(
        words("root@pve1 pct snapshot 900"),
        [
            "pct",
            "snapshot",
            "900",
            "golden",
            "--description",
            "phx template snapshot"
        ]
    );
    assert_eq!(
        words("root@pve1 pvesh create /nodes/pve/lxc/101/firewall/rules --pos 1 "),
        [
            "pvesh",
            "create",
            "/nodes/pve/lxc/101/firewall/rules",
            "--pos",
            "1",
            "--type",
            "in",
            "--action",
            "ACCEPT",
            "--enable",
            "1",
            "--proto",
            "tcp",
            "--dport",
            "53",
            "--source",
            "192.168.50.0/24",
            "--comment",
            "DNS over TCP from the LAN",
            "--output-format",
            "json"
        ]
    );
}

/// How a POSIX shell splits a command line quoted with single quotes (`'\''` for a quote) and
/// backslashes: the argv the remote side runs.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => words.extend(word.take()),
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    w.push(q);
                }
            }
            '\\' => word.get_or_insert_with(String::new).extend(chars.next()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}

/// Config values are data: shell syntax in them reaches the node and the guest as literal
/// arguments (quoted for the remote shell of ssh, never interpreted by one).
#[test]
fn shell_syntax_in_config_values_is_never_run_over_ssh() {
    let w = World::new();
    let fake = FakePve::new().unwrap();
    let ssh_bin = fake_ssh(w.dir.path());
    let marks = w.dir.path().join("marks");
    std::fs::create_dir_all(&marks).unwrap();
    let m = |n: &str| marks.join(n).display().to_string();
    // an in-guest health check command and host health-check arguments with shell syntax
    w.edit(
        "phoenix_lxc_configs.json",
        r#""command": "/usr/local/bin/dns_ok""#,
        &format!(
            r#""command": "/usr/local/bin/dns_ok $(touch${{IFS}}{}) ;touch${{IFS}}{} `touch${{IFS}}{}`""#,
            m("in-guest-1"),
            m("in-guest-2"),
            m("in-guest-3")
        ),
    );
    w.edit(
        "phoenix_lxc_configs.json",
        r#""args": ["192.168.50.11", "443"]"#,
        &format!(
            r#""args": ["192.168.50.11", "443", "$(touch {})", "; touch {}", "| touch {}", "&& touch {}"]"#,
            m("host-1"),
            m("host-2"),
            m("host-3"),
            m("host-4")
        ),
    );
    let mut c = pct_cmd(
        &w,
        &fake,
        &["--ssh", "root@pve1", "up", "-j", "2", "--no-progress"],
    );
    let path = fake
        .env()
        .into_iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v)
        .unwrap();
    c.env("PATH", format!("{}:{path}", ssh_bin.display()));
    let r = run(c, w.dir.path());
    assert_eq!(r.code, 0, "{}", r.render());
    // the checks ran (over ssh) with the values as arguments ...
    let log = std::fs::read_to_string(w.dir.path().join("ssh.log")).unwrap();
    assert!(log.contains("check_port.sh"), "{log}");
    assert!(log.contains("/usr/local/bin/dns_ok"), "{log}");
    assert!(log.contains("'$(touch "), "{log}");
    // ... and no shell ever ran them
    let made: Vec<_> = std::fs::read_dir(&marks).unwrap().collect();
    assert!(
        made.is_empty(),
        "shell syntax was executed: {made:?}\n{log}"
    );
}
