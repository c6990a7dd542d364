//! Every real Proxmox API answer in `shared/fixtures/pve-samples` (`api-*.json`, with the
//! status line in `*.status.txt` for errors) goes through the backend's own envelope, error and
//! data parsing. The samples are read where they lie (`phx_testkit::fixtures::pve_samples`).

use std::path::PathBuf;

use phx_backend_api::map::{self, AgentExecStatus, TaskStatus};
use phx_backend_api::response::{parse_error, parse_success};
use phx_backend_api::{HttpError, Upid};
use phx_core::error::Error;
use phx_core::types::{GuestKind, NodeName};

fn samples_dir() -> Option<PathBuf> {
    phx_testkit::fixtures::pve_samples()
}

/// The error a sample maps to, by name.
fn kind(e: &Error) -> &'static str {
    match e {
        Error::InvalidRequest { .. } => "InvalidRequest",
        Error::Unauthenticated { .. } => "Unauthenticated",
        Error::NotFound { .. } => "NotFound",
        Error::AlreadyExists { .. } => "AlreadyExists",
        Error::Locked { .. } => "Locked",
        _ => "other",
    }
}

fn error_sample(name: &str, status_line: &str, body: &[u8]) -> (HttpError, Error) {
    let (code, reason) = status_line
        .trim_end()
        .split_once(' ')
        .unwrap_or((status_line.trim(), ""));
    let status: u16 = code
        .parse()
        .unwrap_or_else(|_| panic!("{name}: status {code:?}"));
    let h = parse_error(status, Some(reason), body);
    (h.clone(), h.into_core())
}

/// Map the data of a success sample the way the backend does for that endpoint; returns a
/// one-line summary.
fn success_sample(name: &str, data: &serde_json::Value) -> String {
    let pve = NodeName::new("pve").unwrap();
    let stem = name.trim_end_matches(".json");
    let stem = stem
        .trim_end_matches(char::is_numeric)
        .trim_end_matches('-');
    match stem {
        "api-version" => format!("{:?}", map::version(data).unwrap()),
        "api-nodes" => format!("{} nodes", map::nodes(data).unwrap().len()),
        "api-cluster-resources-vm" => {
            let g = map::resources(data).unwrap();
            assert!(
                g.iter().any(|g| g.kind == GuestKind::Lxc)
                    && g.iter().any(|g| g.kind == GuestKind::Vm)
            );
            format!(
                "{} guests on {:?}",
                g.len(),
                g.iter()
                    .map(|g| g.node.to_string())
                    .collect::<std::collections::BTreeSet<_>>()
            )
        }
        "api-lxc-list" | "api-qemu-list" => {
            let kind = if stem == "api-lxc-list" {
                GuestKind::Lxc
            } else {
                GuestKind::Vm
            };
            let items = data.as_array().unwrap();
            for it in items {
                map::guest_status(it, kind, &pve).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            format!("{} guests", items.len())
        }
        s if s.starts_with("api-lxc-status-current")
            || s.starts_with("api-qemu-status-current") =>
        {
            let kind = if s.starts_with("api-lxc") {
                GuestKind::Lxc
            } else {
                GuestKind::Vm
            };
            let g = map::guest_status(data, kind, &pve).unwrap();
            format!("{} {}", g.id, g.status)
        }
        "api-lxc-config" | "api-qemu-config" => {
            let c = map::guest_config(data).unwrap();
            assert!(c.digest.is_some(), "{name}: digest");
            format!("{} keys", c.entries.len())
        }
        "api-qemu-snapshot-list" => {
            let s = map::snapshots(data).unwrap();
            assert!(s.iter().all(|s| s.name != "current"));
            format!("{} snapshots", s.len())
        }
        "api-storage-list" => format!("{} storages", map::storages(data).unwrap().len()),
        s if s.starts_with("api-storage-content") => {
            format!("{} volumes", map::volumes(data).unwrap().len())
        }
        s if s.starts_with("api-task-status") => match map::task_status(data) {
            TaskStatus::Running => "running".into(),
            TaskStatus::Ok { warnings } => format!("ok, {warnings} warnings"),
            TaskStatus::Failed(e) => format!("failed: {e}"),
        },
        s if s.starts_with("api-task-log") => {
            let lines = map::task_log_lines(data);
            assert!(!lines.is_empty(), "{name}");
            lines.last().cloned().unwrap_or_default()
        }
        "api-tasks-list" => {
            for t in data.as_array().unwrap() {
                let u: Upid = t["upid"]
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(Some(u.node.as_str()), t["node"].as_str());
            }
            format!("{} tasks", data.as_array().unwrap().len())
        }
        s if s.starts_with("api-post-") => {
            let u: Upid = data
                .as_str()
                .unwrap()
                .parse()
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            format!("{} on {}", u.kind, u.node)
        }
        "api-put-lxc-config" => {
            assert!(data.is_null());
            "null".into()
        }
        "api-access-ticket" => {
            let (t, c) = map::parse_ticket(data).unwrap();
            assert!(!t.is_empty() && !c.is_empty());
            "ticket".into()
        }
        "api-agent-exec-status-running" => {
            assert_eq!(map::agent_exec_status(data), AgentExecStatus::Running);
            "running".into()
        }
        other => panic!("no mapper for sample {other} ({name}); add one"),
    }
}

#[test]
#[allow(clippy::print_stderr)]
fn every_api_sample_parses() {
    let Some(dir) = samples_dir() else {
        return;
    };
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("api-"))
        .collect();
    names.sort();
    let mut report = Vec::new();
    for name in &names {
        let path = dir.join(name);
        if name.ends_with(".status.txt") {
            continue;
        }
        if name.starts_with("api-error-") {
            let status_file = path.with_extension("status.txt");
            let (status_line, body) = if name.ends_with(".json") {
                (
                    std::fs::read_to_string(&status_file)
                        .unwrap_or_else(|e| panic!("{}: {e}", status_file.display())),
                    std::fs::read(&path).unwrap(),
                )
            } else {
                // a provider's log line: `... HTTP 500 response - Reason: <reason phrase>`
                let text = std::fs::read_to_string(&path).unwrap();
                let reason = text
                    .split_once("Reason: ")
                    .map(|(_, r)| r.lines().next().unwrap_or_default())
                    .unwrap_or_else(|| panic!("{name}: no reason phrase"));
                (format!("500 {reason}"), Vec::new())
            };
            let (h, e) = error_sample(name, &status_line, &body);
            let want = match h.status {
                400 => "InvalidRequest",
                401 => "Unauthenticated",
                _ if name.contains("missing") => "NotFound",
                _ if name.contains("exists") => "AlreadyExists",
                _ if name.contains("lock") => "Locked",
                _ => "other",
            };
            assert_eq!(kind(&e), want, "{name}: {e:?}");
            if h.status == 400 {
                assert!(!h.errors.is_empty(), "{name}: per-parameter errors");
            }
            report.push(format!(
                "{name}: {} {}",
                kind(&e),
                e.to_string().replace('\n', " |")
            ));
            continue;
        }
        let body = std::fs::read(&path).unwrap();
        let raw: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let data = if raw.get("data").is_some() {
            parse_success(name, &body)
                .unwrap_or_else(|e| panic!("{name}: {e}"))
                .data
        } else {
            // reconstructed from a client that had already stripped the envelope (SOURCES.md)
            assert!(parse_success(name, &body).is_err(), "{name}");
            raw
        };
        report.push(format!("{name}: {}", success_sample(name, &data)));
    }
    assert!(report.len() >= 40, "{report:#?}");
    insta::assert_snapshot!(report.join("\n"));
}
