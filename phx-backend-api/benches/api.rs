//! The API backend over HTTPS against the fake Proxmox API server (`FakeServer`), with the
//! backend's real polling policy. Run with `cargo bench -p phx-backend-api --bench api`.
//! The server runs on a runtime of its own (like a remote pveproxy); phx on a current-thread
//! runtime, as the `phx` binary does.
//!
//! 1. Connections: 100 sequential GETs, then one `up` of 20 new containers (create, template
//!    snapshot, start) at `jobs` 1 and 4: TCP connections and TLS handshakes the server saw
//!    (target: one per run when requests are sequential; otherwise at most one per request in
//!    flight at once), and the requests per created guest by method and path.
//! 2. Task polling: one container (3 tasks) at 250 ms, 1 s and 4 s per task: status polls
//!    per task and per second of task time (the backoff at work), and how long after a task
//!    ended phx noticed (wall time over the sum of task times).
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use phx_backend_api::{ApiBackend, ApiOptions, ApiToken, Auth, TlsMode};
use phx_core::backend::Hypervisor;
use phx_core::config::{Inventory, Sources};
use phx_core::engine::{Engine, EngineOptions, Operation, RetryPolicy, RunResult};
use phx_core::report::NullReporter;
use phx_testkit::FakeCluster;
use phx_testkit::server::{ConnectionStats, FakeServer, RecordedRequest, ServerOptions};

const TEMPLATE: &str = "debian-12-standard_12.12-1_amd64.tar.zst";
const TOKEN: &str = "root@pam!bench=00000000-0000-4000-8000-000000000000";

/// `n` independent containers from the OS template, each with a firewall rule, a template
/// snapshot, and started at boot.
fn inventory(n: usize) -> Inventory {
    let e: Vec<String> = (0..n)
        .map(|i| {
            let id = 1000 + i;
            format!(
                r#""{id}": {{"name": "ct{id}", "template": "{TEMPLATE}", "template_snapshot_name": "base", "memory_mb": 512, "cores": 1, "storage_pool": "local-lvm", "storage_size_gb": 4, "start_at_boot": true, "unprivileged": true,
                    "network_config": {{"name": "eth0", "bridge": "vmbr0", "ip": "10.0.{}.{}/16", "gw": "10.0.0.1"}},
                    "firewall": {{"enabled": true, "rules": [{{"type": "in", "action": "ACCEPT", "proto": "tcp", "port": "22"}}]}}}}"#,
                i / 250,
                2 + i % 250
            )
        })
        .collect();
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

fn cluster(latency_ms: u64) -> FakeCluster {
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
    c
}

/// A fake server on a runtime of its own.
struct Server {
    rt: tokio::runtime::Runtime,
    server: FakeServer,
}

impl Server {
    fn start(latency_ms: u64) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let server = rt
            .block_on(FakeServer::start(
                ServerOptions::default()
                    .token(TOKEN)
                    .cluster(cluster(latency_ms)),
            ))
            .unwrap();
        Self { rt, server }
    }

    /// A fresh backend (default polling), pinned to the server's certificate.
    fn backend(&self) -> ApiBackend {
        let mut o = ApiOptions::new(
            self.server.url(),
            Auth::Token(ApiToken::parse(TOKEN).unwrap()),
        );
        o.tls = TlsMode::Fingerprint(
            phx_backend_api::tls::parse_fingerprint(self.server.fingerprint()).unwrap(),
        );
        ApiBackend::new(o).unwrap()
    }

    fn stop(self) {
        self.rt.block_on(self.server.shutdown());
    }
}

/// `up` of `n` containers through a fresh backend.
async fn up(server: &Server, n: usize, jobs: usize) -> (RunResult, Duration) {
    let e = Engine::new(Arc::new(server.backend()), inventory(n)).with_options(EngineOptions {
        jobs,
        retry: RetryPolicy::fast(),
        ..EngineOptions::default()
    });
    let t = Instant::now();
    let plan = e.plan(&[], Operation::Up).await.unwrap();
    let r = e.apply(&plan, &NullReporter).await;
    let took = t.elapsed();
    assert_eq!(
        r.result(),
        "ok",
        "{:?}",
        r.guests.iter().find(|g| g.error.is_some())
    );
    (r, took)
}

/// `GET /nodes/{node}/lxc/{id}/config`: ids, nodes and UPIDs replaced.
fn shape(r: &RecordedRequest) -> String {
    let mut parts: Vec<&str> = r.path.split('/').collect();
    for i in 0..parts.len() {
        if parts[i].starts_with("UPID:") {
            parts[i] = "{upid}";
        } else if !parts[i].is_empty() && parts[i].bytes().all(|b| b.is_ascii_digit()) {
            parts[i] = "{id}";
        } else if i > 0 && parts[i - 1] == "nodes" {
            parts[i] = "{node}";
        }
    }
    format!("{} {}", r.method, parts.join("/"))
}

fn is_poll(r: &RecordedRequest) -> bool {
    r.method == "GET" && r.path.contains("/tasks/") && r.path.ends_with("/status")
}

fn handshakes(c: ConnectionStats) -> String {
    format!(
        "{} connections (TLS: {} full, {} resumed)",
        c.accepted, c.full_handshakes, c.resumed_handshakes
    )
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let server = Server::start(0);
    let hv = server.backend();
    let t = Instant::now();
    rt.block_on(async {
        for _ in 0..100 {
            hv.nodes().await.unwrap();
        }
    });
    let took = t.elapsed();
    let c = server.server.connections();
    println!(
        "100 sequential GET /nodes: {:.2} ms each, {}{}",
        took.as_secs_f64() * 10.0,
        handshakes(c),
        verdict(c)
    );
    server.stop();

    const N: usize = 20;
    for jobs in [1, 4] {
        let server = Server::start(0);
        let (r, took) = rt.block_on(up(&server, N, jobs));
        let c = server.server.connections();
        let reqs = server.server.requests();
        let polls = reqs.iter().filter(|r| is_poll(r)).count();
        println!(
            "up of {N} new containers, jobs={jobs}: {} ms, {} requests ({:.1} per guest; {:.1} without task polls), {} tasks; {}{}",
            took.as_millis(),
            reqs.len(),
            reqs.len() as f64 / N as f64,
            (reqs.len() - polls) as f64 / N as f64,
            r.stats.tasks,
            handshakes(c),
            if jobs == 1 { verdict(c) } else { String::new() }
        );
        if jobs == 1 {
            let mut by: BTreeMap<String, usize> = BTreeMap::new();
            for r in &reqs {
                *by.entry(shape(r)).or_default() += 1;
            }
            for (s, n) in by {
                println!("  {:>6.2} per guest  {s}", n as f64 / N as f64);
            }
        }
        server.stop();
    }

    for latency in [250u64, 1000, 4000] {
        let server = Server::start(latency);
        let (r, took) = rt.block_on(up(&server, 1, 1));
        let polls = server
            .server
            .requests()
            .iter()
            .filter(|r| is_poll(r))
            .count();
        let task_time = Duration::from_millis(latency * r.stats.tasks);
        println!(
            "1 container, {latency} ms/task: {} tasks, {polls} status polls ({:.2} per task, {:.2} per second of task time); wall {} ms for {} ms of tasks ({:+.0}%)",
            r.stats.tasks,
            polls as f64 / r.stats.tasks as f64,
            polls as f64 / task_time.as_secs_f64(),
            took.as_millis(),
            task_time.as_millis(),
            (took.as_secs_f64() / task_time.as_secs_f64() - 1.0) * 100.0
        );
        server.stop();
    }
}

fn verdict(c: ConnectionStats) -> String {
    let n = c.full_handshakes + c.resumed_handshakes;
    format!(
        " — target one handshake per run: {}",
        if n == 1 { "pass" } else { "MISS" }
    )
}
