//! Engine benchmarks against the FakeCluster (run with `cargo bench -p phx-testkit --bench engine`).
//!
//! 1. `plan` for 1,000 guests: on an empty cluster (everything to create) and on a converged
//!    one (every guest read and diffed). Target: under 200 ms.
//! 2. Parallelism: 20 independent containers with 250 ms injected task latency at `jobs = 10`
//!    against one container. Target: under 2.5x the time of one.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use phx_core::config::{Inventory, Sources};
use phx_core::engine::{Engine, EngineOptions, Operation, RetryPolicy};
use phx_core::report::NullReporter;
use phx_testkit::{FakeBackend, FakeCluster};

const TEMPLATE: &str = "debian-12-standard_12.12-1_amd64.tar.zst";

/// `n` containers: every tenth a template-created base with a snapshot, the rest clones of it,
/// each depending on the previous one of its group.
fn inventory(n: usize, chained: bool) -> Inventory {
    let mut e = Vec::new();
    for i in 0..n {
        let id = 1000 + i;
        let base = 1000 + (i / 10) * 10;
        let origin = if !chained || i % 10 == 0 {
            format!(r#""template": "{TEMPLATE}", "template_snapshot_name": "base""#)
        } else {
            format!(
                r#""clone_from_ctid": "{base}", "dependencies": ["{}"]"#,
                id - 1
            )
        };
        e.push(format!(
            r#""{id}": {{"name": "ct{id}", {origin}, "memory_mb": 512, "cores": 1, "storage_pool": "local-lvm", "storage_size_gb": 4, "start_at_boot": true, "unprivileged": true,
                "network_config": {{"name": "eth0", "bridge": "vmbr0", "ip": "10.{}.{}.{}/16", "gw": "10.{}.0.1"}},
                "firewall": {{"enabled": true, "rules": [{{"type": "in", "action": "ACCEPT", "proto": "tcp", "port": "22"}}]}}}}"#,
            10 + i / 60000,
            (i / 250) % 250,
            2 + i % 250,
            10 + i / 60000
        ));
    }
    let src = Sources {
        hypervisor: Some("{}".into()),
        lxc: Some(format!(r#"{{"lxc_configs": {{{}}}}}"#, e.join(","))),
        vm: None,
        stacks: None,
    };
    let v = Inventory::check_sources(&src, "/nonexistent".into(), "/nonexistent/bin".into());
    assert!(v.is_valid(), "{:?}", v.errors().take(3).collect::<Vec<_>>());
    v.inventory.unwrap()
}

fn fake_with_template() -> FakeBackend {
    let mut c = FakeCluster::new();
    c.storages.get_mut("local-lvm").unwrap().total = 1 << 50;
    c.volumes.push(phx_testkit::fake::FakeVolume {
        node: Some("pve".into()),
        storage: "local".into(),
        name: format!("vztmpl/{TEMPLATE}"),
        content: "vztmpl".into(),
        format: "tzst".into(),
        size: 1 << 27,
        vmid: None,
    });
    FakeBackend::new(c)
}

fn engine(fake: &FakeBackend, inv: Inventory, jobs: usize) -> Engine {
    Engine::new(Arc::new(fake.clone()), inv).with_options(EngineOptions {
        jobs,
        retry: RetryPolicy::fast(),
        ..EngineOptions::default()
    })
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // 1. plan for 1,000 guests
        let fake = fake_with_template();
        let e = engine(&fake, inventory(1000, true), 4);
        let ids = e.inventory().ids();
        let mut empty = Vec::new();
        for _ in 0..7 {
            let t = Instant::now();
            let p = e.plan(&ids, Operation::Up).await.unwrap();
            empty.push(t.elapsed());
            assert_eq!(p.guests.len(), 1000);
        }
        let plan = e.plan(&ids, Operation::Up).await.unwrap();
        let r = e.apply(&plan, &NullReporter).await;
        assert_eq!(r.result(), "ok");
        let mut converged = Vec::new();
        let mut reads = 0;
        for _ in 0..7 {
            let t = Instant::now();
            let p = e.plan(&ids, Operation::Up).await.unwrap();
            converged.push(t.elapsed());
            assert!(p.is_empty());
            reads = p.reads;
        }
        println!(
            "plan 1000 guests, empty cluster:     median {} (min {})",
            ms(median(empty.clone())),
            ms(*empty.iter().min().unwrap())
        );
        println!(
            "plan 1000 guests, converged cluster: median {} (min {}), {reads} backend reads",
            ms(median(converged.clone())),
            ms(*converged.iter().min().unwrap())
        );

        // 2. parallelism with 250 ms per task
        let mut timings = Vec::new();
        for n in [1usize, 20] {
            let fake = fake_with_template();
            fake.with(|c| c.set_latency_ms(250));
            let e = engine(&fake, inventory(n, false), 10);
            let ids = e.inventory().ids();
            let t = Instant::now();
            let plan = e.plan(&ids, Operation::Up).await.unwrap();
            let r = e.apply(&plan, &NullReporter).await;
            let took = t.elapsed();
            assert_eq!(r.result(), "ok");
            println!(
                "{n:>2} independent guests, 250 ms/task, jobs=10: {} ({} tasks)",
                ms(took),
                r.stats.tasks
            );
            timings.push(took);
        }
        println!(
            "ratio 20 guests / 1 guest: {:.2}x (target < 2.5x)",
            timings[1].as_secs_f64() / timings[0].as_secs_f64()
        );
    });
}
