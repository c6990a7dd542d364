//! What the Proxmox HTTP API answers: the `{"data": ...}` envelope, error answers (status,
//! reason phrase, body), UPIDs, the mappers of `data`, tickets, task logs, and what an
//! operator hands the API backend (token, fingerprint).
//!
//! Beyond "no panic": a decode error names the request; an error answer always has a
//! message; a UPID that parses is made of the fields Proxmox prints; a path segment encodes
//! to URL-safe text; a refused token's error does not depend on its secret.
#![no_main]

use libfuzzer_sys::fuzz_target;
use phx_backend_api::response::{parse_error, parse_success};
use phx_backend_api::{ApiError, ApiToken, Upid, encode, map, tls};
use phx_fuzz::{select, text};
use serde_json::Value;

const WHAT: &str = "GET /nodes/pve/lxc";

fn data_mappers(v: &Value) {
    let _ = map::fw_options(v);
    let _ = map::fw_rules(v);
    let _ = map::agent_exec_status(v);
    let _ = map::agent_pid(v);
    let _ = map::aplinfo(v);
    let _ = map::users(v);
    let _ = map::acl(v);
    let _ = map::bridges(v);
    let _ = map::dns(v);
    let _ = map::timezone(v);
    let _ = map::local_node(v);
    let _ = map::parse_ticket(v);
    let _ = map::task_log_lines(v);
    let _ = map::task_status(v);
}

fn upid(s: &str) {
    let Ok(u) = s.parse::<Upid>() else {
        return;
    };
    assert_eq!(u.as_str(), s);
    let f: Vec<&str> = s.split(':').collect();
    assert_eq!(f.len(), 9, "{s:?}");
    // pid, pstart and starttime are hex digits and nothing else (no sign, no spaces).
    for (i, field) in [(2, f[2]), (3, f[3]), (4, f[4])] {
        assert!(
            !field.is_empty() && field.bytes().all(|b| b.is_ascii_hexdigit()),
            "field {i} of {s:?} is not hex"
        );
    }
    assert_eq!(u.pid, u32::from_str_radix(f[2], 16).expect("hex"));
    assert!(!u.node.is_empty() && !u.kind.is_empty() && !u.user.is_empty());
}

fuzz_target!(|data: &[u8]| {
    let Some((which, rest)) = select(data, 8) else {
        return;
    };
    match which {
        0 => match parse_success(WHAT, rest) {
            Ok(reply) => data_mappers(&reply.data),
            Err(e) => {
                assert!(matches!(e, ApiError::Decode { .. }), "{e:?}");
                assert!(e.to_string().contains(WHAT), "{e}");
                let core: phx_core::Error = e.into();
                assert!(!core.is_retryable(), "a bad answer is not retried: {core}");
            }
        },
        1 => {
            // status (2 bytes), reason phrase up to a 0xFF byte, then the body.
            let (status, after) = match rest {
                [a, b, tail @ ..] => (u16::from_be_bytes([*a, *b]), tail),
                _ => return,
            };
            let (reason, body) = match after.iter().position(|b| *b == 0xFF) {
                Some(i) => (Some(text(&after[..i])), &after[i + 1..]),
                None => (None, after),
            };
            let e = parse_error(status, reason.as_deref(), body);
            assert_eq!(e.status, status);
            assert!(!e.message.trim().is_empty(), "no message: {e:?}");
            let shown = e.to_string();
            assert!(shown.starts_with(&status.to_string()), "{shown}");
            let core = e.into_core();
            assert!(!core.to_string().is_empty());
        }
        2 => upid(&text(rest)),
        3 => {
            if let Ok(v) = serde_json::from_slice::<Value>(rest) {
                data_mappers(&v);
            }
        }
        4 => {
            // The secret is what follows the last '='. Whatever it is, a refusal reads the
            // same: the error cannot repeat it.
            let s = text(rest);
            let t = s.trim();
            if let (Err(e), Some((id, secret))) = (ApiToken::parse(t), t.rsplit_once('=')) {
                if !secret.is_empty() && !secret.contains(char::is_whitespace) {
                    let other = format!("{id}={}", "Z".repeat(secret.len()));
                    assert_eq!(
                        ApiToken::parse(&other).map(|_| ()),
                        Err(e),
                        "the refusal depends on the secret"
                    );
                }
            }
        }
        5 => {
            let s = text(rest);
            if let Ok(f) = tls::parse_fingerprint(&s) {
                let shown = tls::format_fingerprint(&f);
                assert_eq!(tls::parse_fingerprint(&shown), Ok(f));
            }
        }
        6 => {
            let s = text(rest);
            let seg = encode::segment(&s);
            assert!(
                seg.bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'/' && b != b'?' && b != b'#'),
                "{s:?} -> {seg:?}"
            );
        }
        _ => {
            // A body as the task-status poll reads it.
            if let Ok(reply) = parse_success(WHAT, rest) {
                let _ = map::task_status(&reply.data);
                let _ = map::task_log_lines(&reply.data);
            }
        }
    }
});
