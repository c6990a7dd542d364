//! Peak memory (and wall time) of the real `phx` binary for 1,000 guests on the sim backend.
//! Run with `cargo bench -p phx-cli --bench memory` (`PHX_BENCH_RUNS` sets the repetitions).
//!
//! `PHX_BENCH_BIN` names another `phx` binary to measure (to compare two builds).
//!
//! The config (1,000 containers in groups of ten: a template-created base with a snapshot and
//! nine clones of it, each depending on the one before, all started at boot) and the sim state
//! live in a temp dir. Every repetition starts from an empty simulated cluster and runs
//! `phx up` (everything created), then `phx up` again (nothing to do) and `phx plan`. Peak RSS
//! is the kernel's `ru_maxrss` of the `phx` process, read with `getrusage(RUSAGE_CHILDREN)` in
//! a helper process (this binary again) that runs nothing else. Tasks take no time
//! (`PHX_SIM_LATENCY_MS=0`), so the wall time is phx's own (plus the sim's) cost. Target:
//! peak RSS under 100 MB.
//!
//! Then the converged cluster is served by the fake HTTPS API (`FakeServer`, in memory) and
//! `phx --backend api` runs a no-op `up` (with the status table it ends with) and a `plan`
//! against it: every request the server saw, per guest and by kind, and the wall time.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use std::collections::BTreeMap;

use phx_testkit::FakeCluster;
use phx_testkit::fake::{load_state, save_state};
use phx_testkit::server::{ConnectionStats, FakeServer, RecordedRequest, ServerOptions};

const TEMPLATE: &str = "debian-12-standard_12.12-1_amd64.tar.zst";
const GUESTS: usize = 1000;
const CHILD: &str = "--rss-child";
const TOKEN: &str = "root@pam!bench=00000000-0000-4000-8000-000000000000";

/// The `phx` under test: this build's, or `PHX_BENCH_BIN` (to compare two builds).
fn phx_exe() -> PathBuf {
    std::env::var_os("PHX_BENCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_phx")))
}

fn runs() -> usize {
    std::env::var("PHX_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .filter(|r| *r > 0)
        .unwrap_or(5)
}

fn container(i: usize) -> String {
    let id = 1000 + i;
    let base = 1000 + (i / 10) * 10;
    let origin = if i.is_multiple_of(10) {
        format!(r#""template": "{TEMPLATE}", "template_snapshot_name": "base""#)
    } else {
        format!(
            r#""clone_from_ctid": "{base}", "dependencies": ["{}"]"#,
            id - 1
        )
    };
    format!(
        r#""{id}": {{"name": "ct{id}", {origin}, "memory_mb": 512, "cores": 1, "storage_pool": "local-lvm", "storage_size_gb": 4, "start_at_boot": true, "unprivileged": true,
            "network_config": {{"name": "eth0", "bridge": "vmbr0", "ip": "10.10.{}.{}/16", "gw": "10.10.0.1"}},
            "firewall": {{"enabled": true, "rules": [{{"type": "in", "action": "ACCEPT", "proto": "tcp", "port": "22"}}]}}}}"#,
        i / 250,
        2 + i % 250,
    )
}

/// The config dir (`etc/`) and a fresh sim state with room for every disk and the template.
fn setup(dir: &Path) -> (PathBuf, FakeCluster) {
    let etc = dir.join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    let body: Vec<String> = (0..GUESTS).map(container).collect();
    std::fs::write(
        etc.join("phoenix_lxc_configs.json"),
        format!(r#"{{"lxc_configs": {{{}}}}}"#, body.join(",")),
    )
    .unwrap();
    std::fs::write(etc.join("phoenix_hypervisor_config.json"), "{}").unwrap();
    std::fs::write(etc.join("phoenix_vm_configs.json"), r#"{"vms": []}"#).unwrap();
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
    (etc, c)
}

/// One measured `phx` run: wall time and peak RSS in KiB (through the helper process).
fn measure(args: &[&str], state: &Path, etc: &Path) -> (Duration, u64) {
    let me = std::env::current_exe().unwrap();
    let t = Instant::now();
    let out = Command::new(me)
        .arg(CHILD)
        .arg(phx_exe())
        .args(["--backend", "sim", "--sim-state"])
        .arg(state)
        .arg("-C")
        .arg(etc)
        .args(args)
        .env("PHX_SIM_LATENCY_MS", "0")
        .env_remove("PHX_SIM_FAULTS")
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    let took = t.elapsed();
    let text = String::from_utf8(out.stdout).unwrap();
    let kib = text
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("helper said {text:?}"));
    (took, kib)
}

/// The helper: run the command, wait, print the children's peak RSS (KiB).
fn child(cmd: &[String]) -> ! {
    let st = Command::new(&cmd[0])
        .args(&cmd[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    if !st.status.success() {
        eprintln!(
            "{:?} failed: {}\n{}",
            cmd,
            st.status,
            String::from_utf8_lossy(&st.stderr)
        );
        std::process::exit(1);
    }
    let ru = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).unwrap();
    // ru_maxrss is in KiB on Linux
    println!("{}", ru.max_rss());
    std::process::exit(0);
}

fn median<T: Ord + Copy>(mut v: Vec<T>) -> T {
    v.sort();
    v[v.len() / 2]
}

/// `cluster` served over HTTPS while `f(url, fingerprint)` runs; what the server saw.
fn serve<T>(
    cluster: FakeCluster,
    f: impl FnOnce(&str, &str) -> T,
) -> (T, Vec<RecordedRequest>, ConnectionStats) {
    let (tx, rx) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let s = FakeServer::start(ServerOptions::default().token(TOKEN).cluster(cluster))
                .await
                .unwrap();
            tx.send((s.url().to_string(), s.fingerprint().to_string()))
                .unwrap();
            let _ = stopped.await;
            let seen = (s.requests(), s.connections());
            s.shutdown().await;
            seen
        })
    });
    let (url, fingerprint) = rx.recv().unwrap();
    let r = f(&url, &fingerprint);
    stop.send(()).unwrap();
    let (requests, conns) = server.join().unwrap();
    (r, requests, conns)
}

/// `phx --backend api` with the bench token.
fn phx_api(url: &str, fingerprint: &str, etc: &Path, args: &[&str]) -> Duration {
    let t = Instant::now();
    let out = Command::new(phx_exe())
        .args([
            "--backend",
            "api",
            "--api-url",
            url,
            "--fingerprint",
            fingerprint,
        ])
        .arg("-C")
        .arg(etc)
        .args(args)
        .env("PHX_API_TOKEN", TOKEN)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let took = t.elapsed();
    assert!(
        out.status.success(),
        "phx {args:?} over the API failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

/// `GET /nodes/{node}/lxc/{id}/config`: ids and nodes replaced.
fn shape(r: &RecordedRequest) -> String {
    let mut parts: Vec<&str> = r.path.split('/').collect();
    for i in 0..parts.len() {
        if !parts[i].is_empty() && parts[i].bytes().all(|b| b.is_ascii_digit()) {
            parts[i] = "{id}";
        } else if i > 0 && parts[i - 1] == "nodes" {
            parts[i] = "{node}";
        }
    }
    format!("{} {}", r.method, parts.join("/"))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(CHILD) {
        child(&args[2..]);
    }
    let tmp = tempfile::tempdir().unwrap();
    let (etc, fresh) = setup(tmp.path());
    let state = tmp.path().join("sim.json");
    let runs = runs();
    let mut rows: [(Vec<Duration>, Vec<u64>); 3] = Default::default();
    for _ in 0..runs {
        save_state(&state, &fresh).unwrap();
        let _ = std::fs::remove_dir_all(tmp.path().join("sim.guests"));
        for (i, argv) in [&["up"][..], &["up"][..], &["plan"][..]].iter().enumerate() {
            let (t, kib) = measure(argv, &state, &etc);
            rows[i].0.push(t);
            rows[i].1.push(kib);
        }
        let c = load_state(&state).unwrap();
        assert_eq!(c.guests.len(), GUESTS, "every guest was created");
    }
    println!("{GUESTS} containers on the sim backend, 0 ms/task, release phx, {runs} runs:");
    for (label, (times, kib)) in ["up (create all)", "up (no-op)", "plan (converged)"]
        .iter()
        .zip(rows)
    {
        let peak = median(kib.clone());
        println!(
            "  phx {label:<17} wall median {:>8.1} ms   peak RSS median {:>6.1} MiB (max {:.1} MiB; target < 100 MB: {})",
            median(times).as_secs_f64() * 1e3,
            peak as f64 / 1024.0,
            *kib.iter().max().unwrap() as f64 / 1024.0,
            if peak * 1024 < 100_000_000 {
                "pass"
            } else {
                "MISS"
            }
        );
    }

    // the converged cluster over HTTPS
    let converged = load_state(&state).unwrap();
    for argv in [&["up"][..], &["plan"][..]] {
        let mut times = Vec::new();
        let mut seen = (Vec::new(), ConnectionStats::default());
        for _ in 0..runs {
            let (t, reqs, conns) = serve(converged.clone(), |url, fp| phx_api(url, fp, &etc, argv));
            times.push(t);
            seen = (reqs, conns);
        }
        let (reqs, conns) = seen;
        let writes = reqs.iter().filter(|r| r.method != "GET").count();
        let mut by: BTreeMap<String, usize> = BTreeMap::new();
        for r in &reqs {
            *by.entry(shape(r)).or_default() += 1;
        }
        let kinds: Vec<String> = by.iter().map(|(k, n)| format!("{n} {k}")).collect();
        println!(
            "  phx --backend api {:<5} (no-op) wall median {:>8.1} ms, {} requests ({:.2} per guest), {writes} writes, {} TLS handshake(s): {}",
            argv[0],
            median(times).as_secs_f64() * 1e3,
            reqs.len(),
            reqs.len() as f64 / GUESTS as f64,
            conns.full_handshakes + conns.resumed_handshakes,
            kinds.join(", ")
        );
    }
}
