//! Bad command lines: every case exits 2 with a message on stderr naming the bad value,
//! prints nothing on stdout and changes nothing in the simulated cluster (its state file is
//! byte for byte the same).

use std::path::Path;

use crate::support::World;

/// A world with container 101 created, so there is state to leave alone.
fn world() -> World {
    let w = World::new();
    let r = w.run(&["lxc", "create", "101"]);
    assert_eq!(r.code, 0, "{}", r.render());
    w
}

/// The sim's state: its file and the guests' scratch files.
fn state(w: &World) -> Vec<(String, Vec<u8>)> {
    fn walk(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = vec![(
        "sim.json".to_string(),
        std::fs::read(w.state()).expect("the sim state exists"),
    )];
    walk(&w.dir.path().join("sim.guests"), &mut out);
    out
}

/// Run `args`, check the rules, and render the case for the snapshot (`shown` stands in for
/// the arguments when they are too many to print).
fn refused(w: &World, args: &[&str], bad: &str, shown: Option<&str>) -> String {
    let before = state(w);
    let r = w.run(args);
    let line = shown.map_or_else(|| format!("{args:?}"), str::to_string);
    assert_eq!(r.code, 2, "{line}: {}", r.render());
    assert_eq!(r.stdout, "", "{line}: nothing on stdout");
    assert!(
        r.stderr.contains(bad),
        "{line}: stderr does not name {bad:?}:\n{}",
        r.stderr
    );
    assert!(state(w) == before, "{line}: the sim state changed");
    format!("$ phx {line}\n{}", r.stderr)
}

#[test]
fn guest_ids_that_are_not_ids_are_refused() {
    let w = world();
    let cases: &[(&[&str], &str)] = &[
        (&["lxc", "start", "abc"], "'abc'"),
        (&["lxc", "start", "99"], "'99'"),
        (&["lxc", "start", "1e3"], "'1e3'"),
        (&["lxc", "start", "-5"], "'-5'"),
        (&["lxc", "start", "--", "-5"], "'-5'"),
        (&["lxc", "start", "4294967296"], "'4294967296'"),
        (
            &["lxc", "start", "18446744073709551616"],
            "'18446744073709551616'",
        ),
        (&["lxc", "start", ""], "''"),
        (&["lxc", "start", " "], "' '"),
        (&["lxc", "start", "0101"], "'0101'"),
        (&["lxc", "start", "+101"], "'+101'"),
        (
            &["lxc", "start", "\u{661}\u{660}\u{661}"],
            "'\u{661}\u{660}\u{661}'",
        ),
        (&["lxc", "stop", "101", "abc"], "'abc'"),
        (&["vm", "delete", "--yes", "1e3"], "'1e3'"),
        (&["up", "99"], "'99'"),
        (&["down", "--yes", "-1"], "'-1'"),
        (&["plan", ""], "''"),
        (&["status", "4294967296"], "'4294967296'"),
        (&["config", "show", "abc"], "'abc'"),
        (&["lxc", "snapshot", "create", "101", ""], "''"),
        (&["lxc", "exec", "abc", "--", "true"], "'abc'"),
    ];
    let out: Vec<String> = cases
        .iter()
        .map(|(args, bad)| refused(&w, args, bad, None))
        .collect();
    insta::assert_snapshot!(out.join("\n"));
}

#[test]
fn option_values_that_are_not_values_are_refused() {
    let w = world();
    let cases: &[(&[&str], &str)] = &[
        (&["-j", "0", "up"], "'0'"),
        (&["-j", "1e3", "up"], "'1e3'"),
        (&["-j", "-5", "up"], "'-5'"),
        (&["-j", "4294967296", "up"], "'4294967296'"),
        (&["-j", "", "up"], "''"),
        (&["-o", "", "status"], "--output"),
        (&["-o", "yaml", "status"], "'yaml'"),
        (&["--backend", "", "status"], "--backend"),
        (&["--config-dir", "", "status"], "--config-dir"),
        (&["--sim-state", "", "status"], "--sim-state"),
        (&["--color", "sometimes", "status"], "'sometimes'"),
    ];
    let out: Vec<String> = cases
        .iter()
        .map(|(args, bad)| refused(&w, args, bad, None))
        .collect();
    insta::assert_snapshot!(out.join("\n"));
}

#[test]
fn a_thousand_ids_are_refused_by_the_bad_one_and_nothing_runs() {
    let w = world();
    // 999 defined-looking ids and one that is not an id: nothing starts.
    let mut ids: Vec<String> = (1000..1999).map(|i| i.to_string()).collect();
    ids.push("abc".into());
    let mut args = vec!["lxc", "start"];
    args.extend(ids.iter().map(String::as_str));
    let one = refused(
        &w,
        &args,
        "'abc'",
        Some("lxc start 1000 … 1998 abc (1000 ids)"),
    );
    // A thousand valid ids, none defined: refused before the cluster is asked.
    let ids: Vec<String> = (1000..2000).map(|i| i.to_string()).collect();
    let mut args = vec!["lxc", "start"];
    args.extend(ids.iter().map(String::as_str));
    let two = refused(&w, &args, "1000", Some("lxc start 1000 … 1999 (1000 ids)"));
    // A thousand times the same defined id with one undefined one among them.
    let mut args = vec!["lxc", "stop"];
    args.extend(std::iter::repeat_n("101", 999));
    args.push("4242");
    let three = refused(&w, &args, "4242", Some("lxc stop 101 ×999 4242"));
    insta::assert_snapshot!([one, two, three].join("\n"));
}
