//! Startup cost of `phx --version` and `phx --help` (they touch neither config nor backend).
//! Run with `cargo bench -p phx-cli --bench startup`. Target: median under 10 ms.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    let exe = env!("CARGO_BIN_EXE_phx");
    for args in [&["--version"][..], &["--help"][..], &["lxc", "--help"][..]] {
        let mut times: Vec<Duration> = (0..50)
            .map(|_| {
                let t = Instant::now();
                let st = Command::new(exe)
                    .args(args)
                    .env("PHX_CONFIG_DIR", "/nonexistent")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .unwrap();
                assert!(st.success());
                t.elapsed()
            })
            .collect();
        times.sort();
        println!(
            "phx {:<12} median {:.2} ms, p90 {:.2} ms (50 runs)",
            args.join(" "),
            times[25].as_secs_f64() * 1e3,
            times[45].as_secs_f64() * 1e3
        );
    }
}
