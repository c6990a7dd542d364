//! Load + validate a 5,000-guest inventory, and order it by dependencies.
//!
//! `cargo bench -p phx-core --bench load` prints the minimum and median wall time of several
//! runs per operation, and the median time the thread spent on a CPU (`/proc/thread-self/
//! schedstat`): on a shared machine the wall time includes waiting for a core, the CPU time
//! does not. The inventory is generated as JSON text shaped like the Phoenix files: 4,000
//! containers (OS templates, template clones, clone chains, dependencies on containers and
//! VMs, firewall rules, mounts) and 1,000 VMs (cloud-image templates and their clones).

// A bench binary's output is its result.
#![allow(clippy::print_stdout)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use phx_core::config::{Inventory, Sources};
use phx_core::graph::DepGraph;
use serde_json::{Map, Value, json};

const CONTAINERS: usize = 4_000;
const VMS: usize = 1_000;
const TEMPLATES: usize = 200;
/// Timed runs per operation; `PHX_BENCH_RUNS` overrides (1 for a profiler).
fn runs() -> usize {
    std::env::var("PHX_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .filter(|r| *r > 0)
        .unwrap_or(21)
}

const LXC_FEATURES: &[&str] = &["base_setup", "trusted_ca", "step_cli", "docker", "traefik"];

fn ct_id(i: usize) -> usize {
    10_000 + i
}

fn vm_id(j: usize) -> usize {
    20_000 + j
}

/// `10.x.y.z/8`, unique per index; `offset` keeps containers and VMs apart.
fn ip(index: usize, offset: usize) -> String {
    let n = index + offset + 2;
    format!("10.{}.{}.{}/8", n >> 16, (n >> 8) & 0xff, n & 0xff)
}

fn rules(index: usize) -> Value {
    json!([
        {"type": "in", "action": "ACCEPT", "source": "10.0.0.12", "proto": "tcp", "port": "80,443",
         "comment": format!("Allow Traefik to reach guest {index}")},
        {"type": "in", "action": "ACCEPT", "source": "10.0.0.0/24", "proto": "tcp", "port": "22"},
        {"type": "out", "action": "ACCEPT", "dest": "10.0.0.13", "proto": "udp", "port": "53"},
    ])
}

/// Container `i`: the first [`TEMPLATES`] are templates (20 from an OS template, the rest
/// clones of those); every other container clones a template or, four times in five, the
/// container before it (chains of five), and depends on two earlier containers and, every
/// 50th, on a VM.
fn container(i: usize) -> Value {
    let mut c = json!({
        "name": format!("guest-{i}"),
        "memory_mb": 2048 + (i % 8) * 1024,
        "cores": 1 + i % 8,
        "storage_pool": "quickOS-lxc-disks",
        "storage_size_gb": 16 + i % 64,
        "network_config": {"name": "eth0", "bridge": "vmbr0", "ip": ip(i, 0), "gw": "10.0.0.1", "nameservers": "10.0.0.13"},
        "mac_address": format!("52:54:00:{:02X}:{:02X}:{:02X}", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff),
        "gpu_assignment": "none",
        "portainer_role": "none",
        "unprivileged": true,
        "features": [LXC_FEATURES[i % LXC_FEATURES.len()], LXC_FEATURES[(i + 2) % LXC_FEATURES.len()]],
        "firewall": {"enabled": true, "rules": rules(i)},
        "apparmor_profile": "unconfined",
        "apparmor_manages_nesting": false,
        "lxc_options": ["lxc.apparmor.profile=unconfined"],
        "mount_points": [{"host_path": format!("/mnt/pve/quickOS/lxc-persistent-data/{i}"), "container_path": "/data", "owner_uid": 0, "owner_gid": 0}],
        "template_snapshot_name": "final-form",
    });
    let m = c.as_object_mut().expect("an object");
    if i < 20 {
        m.insert(
            "template".into(),
            json!(
                "/fastData/shared-iso/template/cache/ubuntu-24.04-standard_24.04-2_amd64.tar.zst"
            ),
        );
    } else if i < TEMPLATES {
        m.insert("clone_from_ctid".into(), json!(ct_id(i % 20).to_string()));
    } else {
        let source = if i.is_multiple_of(5) {
            ct_id(i % TEMPLATES)
        } else {
            ct_id(i - 1)
        };
        m.insert("clone_from_ctid".into(), json!(source.to_string()));
        m.insert("start_at_boot".into(), json!(true));
        m.insert("boot_order".into(), json!(10 + i % 90));
        let mut deps = vec![ct_id(i - 7).to_string(), ct_id(i - 13).to_string()];
        if i.is_multiple_of(50) {
            deps.push(vm_id(i % VMS).to_string());
        }
        m.insert("dependencies".into(), json!(deps));
    }
    c
}

/// VM `j`: five cloud-image templates, the rest full clones of them depending on a template
/// container (which never depends on a VM, so there is no cycle).
fn vm(j: usize) -> Value {
    let mut v = json!({
        "vmid": vm_id(j),
        "name": format!("vm-{j}"),
        "network_config": {"ip": ip(j, CONTAINERS), "gw": "10.0.0.1", "nameserver": "10.0.0.13"},
        "user_config": {"username": "phoenix_user"},
    });
    let m = v.as_object_mut().expect("an object");
    if j < 5 {
        m.insert("is_template".into(), json!(true));
        m.insert(
            "template_image".into(),
            json!("noble-server-cloudimg-amd64.img"),
        );
    } else {
        m.insert("clone_from_vmid".into(), json!(vm_id(j % 5)));
        m.insert("cores".into(), json!(2 + j % 6));
        m.insert("start_at_boot".into(), json!(true));
        m.insert("features".into(), json!(["base_setup", "docker"]));
        m.insert(
            "dependencies".into(),
            json!([ct_id(j % TEMPLATES).to_string()]),
        );
        m.insert("docker_stacks".into(), json!(["qdrant_service"]));
        m.insert(
            "firewall".into(),
            json!({"enabled": true, "rules": rules(j)}),
        );
        m.insert(
            "volumes".into(),
            json!([{"type": "nfs", "name": "persistent-storage", "path": format!("/quickOS/vm-persistent-data/{j}"),
                    "mount_point": "/persistent-storage", "server": "10.0.0.13"}]),
        );
    }
    v
}

fn sources() -> Sources {
    let hypervisor = json!({
        "domain_name": "internal.thinkheads.ai",
        "network": {"interfaces": {"name": "vmbr0", "address": "10.0.0.13/24", "gateway": "10.0.0.1", "dns_nameservers": ["10.0.0.153", "8.8.8.8"]}},
        "portainer_api": {"admin_user": "admin", "admin_password": "bench", "portainer_hostname": "portainer.internal.thinkheads.ai"},
    });
    let configs: Map<String, Value> = (0..CONTAINERS)
        .map(|i| (ct_id(i).to_string(), container(i)))
        .collect();
    let lxc = json!({"nvidia_driver_version": "580.76.05", "lxc_configs": configs});
    let vms = json!({
        "vm_defaults": {"template": "ubuntu-24.04-standard", "cores": 2, "memory_mb": 4096, "disk_size_gb": 50,
                        "storage_pool": "quickOS-vm-disks", "network_bridge": "vmbr0"},
        "vms": (0..VMS).map(vm).collect::<Vec<_>>(),
    });
    let pretty = |v: &Value| serde_json::to_string_pretty(v).expect("JSON text");
    Sources {
        hypervisor: Some(pretty(&hypervisor)),
        lxc: Some(pretty(&lxc)),
        vm: Some(pretty(&vms)),
        stacks: None,
    }
}

/// A scripts dir holding every feature script, so the script checks run and find them.
fn scripts_dir(root: &Path) -> PathBuf {
    let bin = root.join("bin");
    let lxc = bin.join("lxc_setup");
    let vm = bin.join("vm_features");
    for dir in [&lxc, &vm] {
        std::fs::create_dir_all(dir).expect("scripts dir");
    }
    for f in LXC_FEATURES {
        std::fs::write(
            lxc.join(format!("phoenix_hypervisor_feature_install_{f}.sh")),
            "#!/bin/sh\n",
        )
        .expect("script");
    }
    for f in ["base_setup", "docker"] {
        std::fs::write(vm.join(format!("feature_install_{f}.sh")), "#!/bin/sh\n").expect("script");
    }
    bin
}

/// Time this thread has spent on a CPU (Linux; `None` elsewhere).
fn on_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = s.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

fn bench<T>(name: &str, mut f: impl FnMut() -> T) {
    let runs = runs();
    black_box(f());
    let (mut times, mut cpu): (Vec<Duration>, Vec<Duration>) = (0..runs)
        .map(|_| {
            let c = on_cpu();
            let start = Instant::now();
            black_box(f());
            let wall = start.elapsed();
            (wall, on_cpu().zip(c).map_or(Duration::ZERO, |(b, a)| b - a))
        })
        .unzip();
    times.sort();
    cpu.sort();
    println!(
        "{name:<48} min {:>10.2?}   median {:>10.2?}   on-CPU median {:>10.2?}   ({runs} runs)",
        times[0],
        times[runs / 2],
        cpu[runs / 2]
    );
}

fn main() {
    let src = sources();
    let bytes: usize = [&src.hypervisor, &src.lxc, &src.vm]
        .iter()
        .filter_map(|s| s.as_ref())
        .map(String::len)
        .sum();
    let tmp = tempfile::tempdir().expect("temp dir");
    let etc = tmp.path().join("etc");
    let scripts = scripts_dir(tmp.path());
    let no_scripts = tmp.path().join("no-such-bin");

    let v = Inventory::check_sources(&src, etc.clone(), scripts.clone());
    assert!(
        v.is_valid(),
        "the generated inventory is invalid: {:?}",
        v.errors().take(5).collect::<Vec<_>>()
    );
    assert_eq!((v.containers, v.vms), (CONTAINERS, VMS));
    assert_eq!(v.findings, vec![], "the generated inventory has findings");
    let inv = v.inventory.expect("valid");
    let ids = inv.ids();
    assert_eq!(
        DepGraph::new(&inv).order(&ids).expect("no cycle").len(),
        ids.len()
    );

    println!(
        "{} guests ({CONTAINERS} containers, {VMS} VMs), {:.1} MiB of JSON",
        ids.len(),
        bytes as f64 / (1024.0 * 1024.0)
    );
    let texts = [
        src.lxc.as_deref().expect("lxc text"),
        src.vm.as_deref().expect("vm text"),
    ];
    bench("reference: serde_json::Value parse of lxc + vm", || {
        texts.map(|t| serde_json::from_str::<Value>(t).expect("valid JSON"))
    });
    bench("load + validate (scripts dir checked)", || {
        Inventory::check_sources(&src, etc.clone(), scripts.clone())
    });
    bench("load + validate (no scripts dir)", || {
        Inventory::check_sources(&src, etc.clone(), no_scripts.clone())
    });
    bench("DepGraph::new + order(all ids)", || {
        DepGraph::new(&inv).order(&ids)
    });
    let graph = DepGraph::new(&inv);
    bench("order(all ids) on a built graph", || graph.order(&ids));
}
