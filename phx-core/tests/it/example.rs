//! `examples/plan_and_apply.rs` runs: it is compiled into this test binary and its `run` is
//! called on the example homelab, so `cargo test` checks the library example end to end.

#[path = "../../examples/plan_and_apply.rs"]
#[allow(
    dead_code,
    reason = "its `main` is for `cargo run --example plan_and_apply`"
)]
mod plan_and_apply;

use std::collections::BTreeMap;
use std::path::Path;

use phx_core::Outcome;
use serde_json::Value;

#[test]
fn plan_and_apply_example_prints_the_plan_then_one_json_line_per_event() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/homelab");
    let (result, out) =
        plan_and_apply::run(&example.join("etc"), &example.join("bin"), Vec::new()).unwrap();
    assert_eq!(result.result(), "ok", "{result:#?}");
    assert_eq!(result.count(Outcome::Changed), 6);
    let text = String::from_utf8(out).unwrap();
    let (plan, events): (Vec<&str>, Vec<&str>) = text.lines().partition(|l| !l.starts_with('{'));
    assert!(plan[0].starts_with("plan: "), "{text}");
    assert!(plan.contains(&"lxc 101 dns (Absent)"), "{text}");
    let events: Vec<Value> = events
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // every guest started and finished, changed
    let mut finished = BTreeMap::new();
    for e in &events {
        if e["event"] == "guest-finished" {
            finished.insert(e["id"].as_u64().unwrap(), e["outcome"].clone());
        }
    }
    let ids: Vec<u64> = finished.keys().copied().collect();
    assert_eq!(ids, [101, 102, 103, 900, 1001, 9000]);
    assert!(finished.values().all(|o| o == "changed"), "{finished:?}");
    // steps come in started/finished pairs, and the features' output is there
    let started = events
        .iter()
        .filter(|e| e["event"] == "step-started")
        .count();
    let done = events
        .iter()
        .filter(|e| e["event"] == "step-finished")
        .count();
    assert_eq!(started, done);
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "output" && e["source"] == "feature base_setup"),
        "{text}"
    );
    assert!(!events.iter().any(|e| e["event"] == "other"), "{text}");
}
