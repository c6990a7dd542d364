//! Engine benchmarks against the FakeCluster (run with `cargo bench -p phx-testkit --bench engine`;
//! `PHX_BENCH_RUNS` sets the repetitions of the timed parts, `PHX_BENCH_ONLY=plan|calls|parallel`
//! runs one part).
//!
//! 1. `plan` for 1,000 guests: on an empty cluster (everything to create) and on a converged
//!    one (every guest read and diffed). Target: under 200 ms each. Also plan + apply of 1,000
//!    creates with no task latency: phx's own cost per guest.
//! 2. Backend calls, counted by the fake (not by the engine): a no-op `up` over 1,000
//!    converged guests (target: at most 2 reads per guest, 0 writes), and reads / writes /
//!    tasks per guest for create, clone, reconfigure and start.
//! 3. Parallelism with 250 ms per Proxmox task: 20 independent containers at `jobs` 1, 4 and
//!    10 against one container (target: `jobs = 10` under 2.5x one guest), and a 10-deep
//!    clone chain, which is serial by nature (target: at most the sum of its tasks + 5%).
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use phx_core::config::{Inventory, Sources};
use phx_core::engine::{Engine, EngineOptions, Operation, RetryPolicy, RunResult};
use phx_core::report::NullReporter;
use phx_core::types::GuestId;
use phx_testkit::fake::Counters;
use phx_testkit::{FakeBackend, FakeCluster};

const TEMPLATE: &str = "debian-12-standard_12.12-1_amd64.tar.zst";
const LATENCY_MS: u64 = 250;

/// Repetitions of a timed measurement; `PHX_BENCH_RUNS` overrides.
fn runs(default: usize) -> usize {
    std::env::var("PHX_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .filter(|r| *r > 0)
        .unwrap_or(default)
}

/// Where a generated container comes from.
#[derive(Clone, Copy)]
enum Origin {
    /// The OS template.
    Template,
    /// A clone of this container.
    Clone(usize),
}

/// One generated container: `memory` MB, a firewall rule, a template snapshot when it is the
/// source of clones, `depends` as `dependencies`.
struct Ct {
    id: usize,
    origin: Origin,
    snapshot: bool,
    start: bool,
    memory: u32,
    depends: Option<usize>,
}

impl Ct {
    fn new(id: usize, origin: Origin) -> Self {
        Self {
            id,
            origin,
            snapshot: false,
            start: false,
            memory: 512,
            depends: None,
        }
    }

    fn json(&self) -> String {
        let i = self.id;
        let mut extra = match self.origin {
            Origin::Template => format!(r#""template": "{TEMPLATE}""#),
            Origin::Clone(src) => format!(r#""clone_from_ctid": "{src}""#),
        };
        if self.snapshot {
            extra.push_str(r#", "template_snapshot_name": "base""#);
        }
        if let Some(d) = self.depends {
            extra.push_str(&format!(r#", "dependencies": ["{d}"]"#));
        }
        format!(
            r#""{i}": {{"name": "ct{i}", {extra}, "memory_mb": {}, "cores": 1, "storage_pool": "local-lvm", "storage_size_gb": 4, "start_at_boot": {}, "unprivileged": true,
                "network_config": {{"name": "eth0", "bridge": "vmbr0", "ip": "10.{}.{}.{}/16", "gw": "10.{}.0.1"}},
                "firewall": {{"enabled": true, "rules": [{{"type": "in", "action": "ACCEPT", "proto": "tcp", "port": "22"}}]}}}}"#,
            self.memory,
            self.start,
            10 + i / 60000,
            (i / 250) % 250,
            2 + i % 250,
            10 + i / 60000
        )
    }
}

fn inventory(cts: &[Ct]) -> Inventory {
    let body: Vec<String> = cts.iter().map(Ct::json).collect();
    let src = Sources {
        hypervisor: Some("{}".into()),
        lxc: Some(format!(r#"{{"lxc_configs": {{{}}}}}"#, body.join(","))),
        vm: None,
        stacks: None,
    };
    let v = Inventory::check_sources(&src, "/nonexistent".into(), "/nonexistent/bin".into());
    assert!(v.is_valid(), "{:?}", v.errors().take(3).collect::<Vec<_>>());
    v.inventory.unwrap()
}

/// `n` containers: every tenth a template-created base with a snapshot, the rest clones of it,
/// each depending on the previous one of its group; all started at boot.
fn groups(n: usize) -> Vec<Ct> {
    (0..n)
        .map(|i| {
            let id = 1000 + i;
            let base = 1000 + (i / 10) * 10;
            let mut c = if i.is_multiple_of(10) {
                Ct::new(id, Origin::Template)
            } else {
                let mut c = Ct::new(id, Origin::Clone(base));
                c.depends = Some(id - 1);
                c
            };
            c.snapshot = i.is_multiple_of(10);
            c.start = true;
            c
        })
        .collect()
}

fn fake_with_template(latency_ms: u64) -> FakeBackend {
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
    c.set_latency_ms(latency_ms);
    FakeBackend::new(c)
}

fn engine(fake: &FakeBackend, inv: Inventory, jobs: usize) -> Engine {
    Engine::new(Arc::new(fake.clone()), inv).with_options(EngineOptions {
        jobs,
        retry: RetryPolicy::fast(),
        ..EngineOptions::default()
    })
}

/// Plan and apply `op` for `ids` (empty: every guest).
async fn run(e: &Engine, ids: &[GuestId], op: Operation) -> RunResult {
    let plan = e.plan(ids, op).await.unwrap();
    let r = e.apply(&plan, &NullReporter).await;
    assert_eq!(
        r.result(),
        "ok",
        "{:?}",
        r.guests.iter().find(|g| g.error.is_some())
    );
    r
}

fn id(n: usize) -> GuestId {
    GuestId::new(n as u64).unwrap()
}

/// Time this thread has spent on a CPU (zero where Linux's schedstat is missing): the wall
/// time on a shared machine includes waiting for a core.
fn on_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn take_counters(fake: &FakeBackend) -> Counters {
    fake.with(|c| std::mem::take(&mut c.counters))
}

fn part(name: &str) -> bool {
    std::env::var("PHX_BENCH_ONLY").map_or(true, |p| p == name)
}

async fn plan_bench() {
    let runs = runs(7);
    let fake = fake_with_template(0);
    let e = engine(&fake, inventory(&groups(1000)), 4);
    let ids = e.inventory().ids();
    let (mut empty, mut empty_cpu) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let (t, c) = (Instant::now(), on_cpu());
        let p = e.plan(&ids, Operation::Up).await.unwrap();
        empty.push(t.elapsed());
        empty_cpu.push(on_cpu() - c);
        assert_eq!(p.guests.len(), 1000);
    }
    let t = Instant::now();
    run(&e, &[], Operation::Up).await;
    let up = t.elapsed();
    let (mut converged, mut converged_cpu) = (Vec::new(), Vec::new());
    let mut reads = 0;
    for _ in 0..runs {
        let (t, c) = (Instant::now(), on_cpu());
        let p = e.plan(&ids, Operation::Up).await.unwrap();
        converged.push(t.elapsed());
        converged_cpu.push(on_cpu() - c);
        assert!(p.is_empty());
        reads = p.reads;
    }
    println!(
        "plan 1000 guests, empty cluster:      median {} (min {}, on-CPU median {}, {runs} runs; target < 200 ms)",
        ms(median(empty.clone())),
        ms(*empty.iter().min().unwrap()),
        ms(median(empty_cpu))
    );
    println!(
        "plan 1000 guests, converged cluster:  median {} (min {}, on-CPU median {}, {runs} runs; target < 200 ms), {reads} backend reads",
        ms(median(converged.clone())),
        ms(*converged.iter().min().unwrap()),
        ms(median(converged_cpu))
    );
    println!(
        "up 1000 guests (create+snapshot+start), 0 ms/task, jobs=4: {} (one run)",
        ms(up)
    );
}

/// Counters of `op` per guest, with the calls per operation.
fn report_calls(label: &str, guests: usize, c: &Counters, r: &RunResult) {
    let per = |n: u64| n as f64 / guests as f64;
    let ops: Vec<String> = c
        .per_op
        .iter()
        .map(|(op, n)| format!("{op} {:.2}", per(*n)))
        .collect();
    println!(
        "{label:<12} {guests:>4} guests: per guest {:.2} reads, {:.2} writes, {:.2} tasks (engine counted {} reads, {} writes, {} tasks)",
        per(c.reads),
        per(c.writes),
        per(c.tasks),
        r.stats.backend_reads,
        r.stats.backend_writes,
        r.stats.tasks
    );
    println!("             per op and guest: {}", ops.join(", "));
}

async fn calls_bench() {
    // no-op `up` over 1,000 converged guests
    let fake = fake_with_template(0);
    let e = engine(&fake, inventory(&groups(1000)), 4);
    run(&e, &[], Operation::Up).await;
    take_counters(&fake);
    let (mut plans, mut applies) = (Vec::new(), Vec::new());
    let mut last = None;
    for _ in 0..runs(7) {
        let t = Instant::now();
        let plan = e.plan(&[], Operation::Up).await.unwrap();
        plans.push(t.elapsed());
        let t = Instant::now();
        let r = e.apply(&plan, &NullReporter).await;
        applies.push(t.elapsed());
        assert_eq!(r.result(), "ok");
        last = Some((take_counters(&fake), r));
    }
    let (c, r) = last.unwrap();
    println!(
        "no-op up 1000 guests, jobs=4: plan median {}, apply median {} ({} runs)",
        ms(median(plans)),
        ms(median(applies)),
        runs(7)
    );
    report_calls("no-op up", 1000, &c, &r);
    // reads of one guest (`lxc.*`, `vm.*`) against cluster-wide ones (the guest listing)
    let per_guest: u64 = c
        .per_op
        .iter()
        .filter(|(op, _)| op.starts_with("lxc.") || op.starts_with("vm."))
        .map(|(_, n)| n)
        .sum();
    let pass = per_guest <= 2 * 1000 && c.reads - per_guest <= 2 && c.writes == 0 && c.tasks == 0;
    println!(
        "no-op up: {} reads for 1000 guests = {per_guest} reads of guests ({:.2} per guest) + {} cluster-wide; {} writes, {} tasks (target <= 2 reads per guest, 0 writes): {}",
        c.reads,
        per_guest as f64 / 1000.0,
        c.reads - per_guest,
        c.writes,
        c.tasks,
        if pass { "pass" } else { "MISS" }
    );

    // per operation kind, 100 guests each, no latency
    const N: usize = 100;
    let fake = fake_with_template(0);
    let created: Vec<Ct> = (0..N)
        .map(|i| Ct::new(3000 + i, Origin::Template))
        .collect();
    let e = engine(&fake, inventory(&created), 4);
    take_counters(&fake);
    let r = run(&e, &[], Operation::Up).await;
    report_calls("create", N, &take_counters(&fake), &r);

    let mut changed: Vec<Ct> = (0..N)
        .map(|i| Ct::new(3000 + i, Origin::Template))
        .collect();
    for c in &mut changed {
        c.memory = 1024;
    }
    let e = engine(&fake, inventory(&changed), 4);
    let r = run(&e, &[], Operation::Up).await;
    report_calls("reconfigure", N, &take_counters(&fake), &r);

    let ids = e.inventory().ids();
    let r = run(&e, &ids, Operation::Start).await;
    report_calls("start", N, &take_counters(&fake), &r);

    let fake = fake_with_template(0);
    let mut base = Ct::new(4000, Origin::Template);
    base.snapshot = true;
    let mut clones = vec![base];
    clones.extend((1..=N).map(|i| Ct::new(4000 + i, Origin::Clone(4000))));
    let e = engine(&fake, inventory(&clones), 4);
    run(&e, &[id(4000)], Operation::Up).await;
    take_counters(&fake);
    let targets: Vec<GuestId> = (1..=N).map(|i| id(4000 + i)).collect();
    let r = run(&e, &targets, Operation::Up).await;
    report_calls("clone", N, &take_counters(&fake), &r);
}

/// Wall time and task count of `up` for `cts` at `jobs`, with [`LATENCY_MS`] per task.
async fn timed_up(cts: &[Ct], jobs: usize) -> (Duration, u64) {
    let fake = fake_with_template(LATENCY_MS);
    let e = engine(&fake, inventory(cts), jobs);
    let t = Instant::now();
    let r = run(&e, &[], Operation::Up).await;
    let took = t.elapsed();
    assert_eq!(r.stats.tasks, fake.with(|c| c.counters.tasks));
    (took, r.stats.tasks)
}

async fn parallel_bench() {
    let runs = runs(3);
    let independent = |n: usize| -> Vec<Ct> {
        (0..n)
            .map(|i| {
                let mut c = Ct::new(1000 + i, Origin::Template);
                c.snapshot = true;
                c.start = true;
                c
            })
            .collect()
    };
    let mut rows: Vec<(String, Duration, u64)> = Vec::new();
    for (n, jobs) in [(1, 10), (20, 1), (20, 4), (20, 10)] {
        let mut times = Vec::new();
        let mut tasks = 0;
        for _ in 0..runs {
            let (t, k) = timed_up(&independent(n), jobs).await;
            times.push(t);
            tasks = k;
        }
        let m = median(times);
        println!(
            "{n:>2} independent guests, {LATENCY_MS} ms/task, jobs={jobs:<2}: median {} ({tasks} tasks, {runs} runs)",
            ms(m)
        );
        rows.push((format!("{n}@{jobs}"), m, tasks));
    }
    let one = rows[0].1.as_secs_f64();
    for (label, t, _) in &rows[1..] {
        println!("  {label}: {:.2}x one guest", t.as_secs_f64() / one);
    }
    let ratio = rows[3].1.as_secs_f64() / one;
    println!(
        "ratio 20 guests at jobs=10 / 1 guest: {ratio:.2}x (target < 2.5x): {}",
        if ratio < 2.5 { "pass" } else { "MISS" }
    );
    println!(
        "speed-up over sequential (jobs=1): jobs=4 {:.2}x, jobs=10 {:.2}x",
        rows[1].1.as_secs_f64() / rows[2].1.as_secs_f64(),
        rows[1].1.as_secs_f64() / rows[3].1.as_secs_f64()
    );

    // a 10-deep clone chain: each guest clones the previous one's snapshot
    let chain: Vec<Ct> = (0..10)
        .map(|i| {
            let id = 2000 + i;
            let mut c = if i == 0 {
                Ct::new(id, Origin::Template)
            } else {
                Ct::new(id, Origin::Clone(id - 1))
            };
            c.snapshot = true;
            c
        })
        .collect();
    let mut times = Vec::new();
    let mut tasks = 0;
    for _ in 0..runs {
        let (t, k) = timed_up(&chain, 10).await;
        times.push(t);
        tasks = k;
    }
    let m = median(times);
    let sum = Duration::from_millis(tasks * LATENCY_MS);
    let over = m.as_secs_f64() / sum.as_secs_f64();
    println!(
        "10-deep clone chain, jobs=10: median {} for {tasks} tasks (sum of tasks {}), {:+.1}% (target <= +5%): {}",
        ms(m),
        ms(sum),
        (over - 1.0) * 100.0,
        if over <= 1.05 { "pass" } else { "MISS" }
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        if part("plan") {
            plan_bench().await;
        }
        if part("calls") {
            calls_bench().await;
        }
        if part("parallel") {
            parallel_bench().await;
        }
    });
}
