//! Shared test helpers.
#![allow(clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use phx_core::config::{Inventory, LoadOptions};
use phx_core::engine::{Engine, EngineOptions, Operation, Plan, RetryPolicy, RunResult};
use phx_core::report::NullReporter;
use phx_core::types::GuestId;
use phx_testkit::{FakeBackend, FakeCluster};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn example() -> Inventory {
    let dir = repo().join("examples/homelab");
    Inventory::load(&LoadOptions {
        config_dir: dir.join("etc"),
        scripts_dir: Some(dir.join("bin")),
    })
    .expect("the example config is valid")
}

/// The real Phoenix fixtures (see [`phx_testkit::fixtures`]).
pub fn fixtures_dir() -> Option<PathBuf> {
    phx_testkit::fixtures::phoenix_fixtures()
}

pub fn ids(v: &[u32]) -> Vec<GuestId> {
    v.iter()
        .map(|n| GuestId::new(u64::from(*n)).unwrap())
        .collect()
}

pub fn fake() -> FakeBackend {
    FakeBackend::new(FakeCluster::new())
}

pub fn engine(fake: &FakeBackend, inv: Inventory) -> Engine {
    let opts = EngineOptions {
        jobs: 1,
        retry: RetryPolicy::fast(),
        ..EngineOptions::default()
    };
    Engine::new(Arc::new(fake.clone()), inv).with_options(opts)
}

pub async fn run(engine: &Engine, targets: &[u32], op: Operation) -> (Plan, RunResult) {
    let plan = engine.plan(&ids(targets), op).await.expect("plan");
    let result = engine.apply(&plan, &NullReporter).await;
    (plan, result)
}

/// The fake's operation log since the last call, one call per line.
pub fn oplog(fake: &FakeBackend) -> String {
    fake.with(|c| c.take_oplog()).join("\n")
}

/// Only the writes of the operation log.
pub fn writes(fake: &FakeBackend) -> String {
    fake.with(|c| c.take_oplog())
        .into_iter()
        .filter(|l| !l.starts_with("read "))
        .map(|l| without_sizes(&l))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `lxc.push 101 /tmp/x 5060B mode=644` -> `... [SIZE] ...`: pushed files change with the
/// example config.
fn without_sizes(l: &str) -> String {
    l.split(' ')
        .map(|w| {
            let digits = w
                .strip_suffix('B')
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if digits { "[SIZE]" } else { w }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// One line per guest: id, outcome, executed ops, error.
pub fn summary(r: &RunResult) -> String {
    r.guests
        .iter()
        .map(|g| {
            let ops: Vec<String> = g
                .actions
                .iter()
                .map(|a| {
                    if a.detail.is_empty() {
                        a.op.to_string()
                    } else {
                        format!("{}({})", a.op, a.detail)
                    }
                })
                .collect();
            format!(
                "{} {:?}: {}{}",
                g.id,
                g.outcome,
                ops.join(", "),
                g.error
                    .as_ref()
                    .map(|e| format!(" ERROR {e}"))
                    .unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A plan rendered as text (for snapshots).
pub fn plan_text(p: &Plan) -> String {
    let mut s = String::new();
    for g in &p.guests {
        s.push_str(&format!(
            "{} {} ({:?}{})\n",
            g.id,
            g.name,
            g.presence,
            if g.target { ", target" } else { "" }
        ));
        for a in &g.actions {
            s.push_str(&format!(
                "  {}{} {} [{}]\n",
                if a.predicted { "~" } else { "" },
                a.op,
                a.detail,
                a.reason
            ));
        }
        for n in &g.notes {
            s.push_str(&format!("  note: {n}\n"));
        }
        if let Some(e) = &g.error {
            s.push_str(&format!("  ERROR: {e}\n"));
        }
        if g.boot_start {
            s.push_str("  + start in boot phase\n");
        }
    }
    if !p.boot_order.is_empty() {
        s.push_str(&format!(
            "boot order: {}\n",
            p.boot_order
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    s
}
