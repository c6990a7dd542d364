//! What `pct`, `qm`, `pvesh`, `pvesm` and `pveam` print, and `/etc/pve/lxc/<id>.conf`.
//!
//! Selectors 0–12 feed the text parsers, the stderr classifier and the raw `lxc.*` editor;
//! 13–22 parse the input as JSON and feed the mappers of `pvesh get --output-format json`
//! (the same `data` the API sends). Beyond "no panic": a parse error says what it read, the
//! `lxc.*` editor keeps every other line, and `pct list` reads back the ids it printed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use phx_backend_pct::lxcconf;
use phx_backend_pct::parse::{self, ParseError};
use phx_core::types::{GuestKind, NodeName};
use phx_fuzz::{select, text};
use serde_json::Value;

/// A parse error names what was read and why it failed.
fn said<T>(r: Result<T, ParseError>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            assert!(!e.what.is_empty() && !e.reason.is_empty(), "{e:?}");
            None
        }
    }
}

fn lxc_conf(text: &str) {
    // A file is written back ending with a newline.
    let s = &if text.is_empty() || text.ends_with('\n') {
        text.to_string()
    } else {
        format!("{text}\n")
    };
    let lines = lxcconf::raw_lxc(text);
    let _ = lxcconf::lock(text);
    // Rewriting the lines that are there keeps every other line of the file.
    let same = lxcconf::replace_raw_lxc(text, &lines);
    let others = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| !l.starts_with("lxc.") && !l.trim().is_empty())
            // `lines()` drops a '\r' only before a '\n': the snapshot sections are kept
            // byte for byte, so a last line "x\r" stays without the newline `s` added.
            .map(|l| l.trim_end_matches('\r').to_string())
            .collect()
    };
    assert_eq!(others(&same), others(s), "other lines changed in {s:?}");
    // Well-formed new lines are read back as written.
    let new = vec![
        ("lxc.apparmor.profile".to_string(), "unconfined".to_string()),
        ("lxc.idmap".to_string(), "u 0 100000 65536".to_string()),
    ];
    let out = lxcconf::replace_raw_lxc(text, &new);
    assert_eq!(lxcconf::raw_lxc(&out), new, "{s:?} -> {out:?}");
    assert_eq!(others(&out), others(s), "other lines changed in {s:?}");
}

fn mappers(which: u8, v: &Value) {
    let node = NodeName::new("pve").expect("a node name");
    match which {
        0 => {
            let _ = said(parse::guest_status(v, GuestKind::Lxc, &node));
            let _ = said(parse::guest_status(v, GuestKind::Vm, &node));
        }
        1 => {
            if let Some(all) = said(parse::resources(v)) {
                assert!(all.windows(2).all(|w| w[0].id <= w[1].id), "unsorted");
            }
        }
        2 => {
            let _ = said(parse::guest_config(v));
        }
        3 => {
            let _ = said(parse::snapshots(v));
        }
        4 => {
            let _ = said(parse::storages(v));
        }
        5 => {
            let _ = said(parse::volumes(v));
        }
        6 => {
            let _ = said(parse::nodes(v));
        }
        7 => {
            let _ = said(parse::version(v));
        }
        8 => {
            let _ = parse::task_status(v);
            let _ = parse::string_map(v);
            let _ = said(parse::active_tasks(v));
            let _ = said(parse::agent_file_content(v));
        }
        _ => {
            let _ = parse::text(v);
            let _ = parse::number(v);
            let _ = parse::flag(v);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((which, rest)) = select(data, 23) else {
        return;
    };
    let s = text(rest);
    match which {
        0 => {
            if let Some(rows) = said(parse::pct_list(&s)) {
                for r in rows {
                    assert!(s.contains(&r.vmid.to_string()), "{r:?} not in {s:?}");
                }
            }
        }
        1 => {
            let _ = said(parse::qm_list(&s));
        }
        2 => {
            let _ = said(parse::status_line(&s));
        }
        3 => {
            let _ = said(parse::config_text(&s));
        }
        4 => {
            if let Some(snaps) = said(parse::listsnapshot(&s)) {
                assert!(snaps.iter().all(|x| x.name != "current"));
            }
        }
        5 => {
            let _ = said(parse::pvesm_status(&s));
        }
        6 => {
            let _ = said(parse::pveam_list(&s));
        }
        7 => {
            let _ = said(parse::pveam_available(&s));
        }
        8 => {
            let _ = said(parse::guest_exec(&s));
        }
        9 => {
            let _ = said(parse::pvesh_output(&s));
        }
        10 => {
            let plain = parse::unescape_description(&s);
            // `%XX` becomes one byte (or one U+FFFD): unescaping never makes text longer.
            assert!(plain.len() <= s.len(), "{s:?} -> {plain:?}");
        }
        11 => {
            let e = phx_backend_pct::classify_stderr(&s);
            assert!(!e.to_string().is_empty());
            let _ = phx_backend_pct::error_line(&s);
        }
        12 => lxc_conf(&s),
        n => {
            if let Ok(v) = serde_json::from_slice::<Value>(rest) {
                mappers(n - 13, &v);
            }
        }
    }
});
