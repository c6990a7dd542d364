//! The command line of `phx-fake-pve serve`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::ServerOptions;
use crate::fake::{self, FakeCluster};

/// Usage of `phx-fake-pve serve`.
pub const SERVE_USAGE: &str = "usage: phx-fake-pve serve [--listen ADDR:PORT] [--state FILE] [--etc DIR] \
[--token USER@REALM!ID=SECRET]... [--user USER@REALM:PASSWORD]... [--nodes N1,N2,...] [--node NAME] \
[--latency-ms MS] [--auth-delay-ms MS] [--ca-out FILE]";

/// `phx-fake-pve serve` settings.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The server's options.
    pub options: ServerOptions,
    /// Write the CA certificate (PEM) here once started.
    pub ca_out: Option<PathBuf>,
}

impl ServeConfig {
    /// Parse the arguments after `serve`.
    ///
    /// - `--listen 127.0.0.1:PORT` (port 0 picks one; default `127.0.0.1:0`);
    /// - `--state FILE`: keep the cluster in FILE (shared with the fake `pct`, `qm`, ... that
    ///   use `PHX_FAKE_STATE=FILE`); without it the cluster lives in memory;
    /// - `--etc DIR` (default `$PHX_FAKE_ETC`): render `lxc/<id>.conf` there;
    /// - `--token`, `--user` (repeatable): accepted credentials;
    /// - `--nodes pve1,pve2`: a fresh cluster with these nodes (when FILE does not exist yet);
    /// - `--node NAME`: the node this server is (default the first);
    /// - `--latency-ms MS`: how long every task takes; `--auth-delay-ms MS` (default 3000):
    ///   delay of a 401;
    /// - `--ca-out FILE`: write the CA certificate for `--ca-cert`.
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let mut o = ServerOptions {
            etc: std::env::var_os("PHX_FAKE_ETC")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            ..ServerOptions::default()
        };
        let mut ca_out = None;
        let mut nodes: Option<Vec<String>> = None;
        let mut latency: Option<u64> = None;
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let (flag, inline) = match a.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
                _ => (a.as_str(), None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| it.next().cloned())
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            let ms = |v: String| {
                v.parse::<u64>()
                    .map_err(|_| format!("{flag}: {v:?} is not a number of milliseconds"))
            };
            match flag {
                "--listen" => {
                    let v = value()?;
                    o.listen = v
                        .parse::<SocketAddr>()
                        .map_err(|e| format!("--listen {v:?}: {e} (expected ADDR:PORT)"))?;
                }
                "--state" => o.state = Some(PathBuf::from(value()?)),
                "--etc" => o.etc = Some(PathBuf::from(value()?)),
                "--token" => o.tokens.push(value()?),
                "--user" => {
                    let v = value()?;
                    let (u, p) = v
                        .split_once(':')
                        .ok_or("--user needs USER@REALM:PASSWORD")?;
                    o.users.push((u.to_string(), p.to_string()));
                }
                "--nodes" => {
                    nodes = Some(
                        value()?
                            .split(',')
                            .filter(|n| !n.is_empty())
                            .map(str::to_string)
                            .collect(),
                    );
                }
                "--node" => o.local_node = Some(value()?),
                "--latency-ms" => latency = Some(ms(value()?)?),
                "--auth-delay-ms" => o.auth_failure_delay = Duration::from_millis(ms(value()?)?),
                "--ca-out" => ca_out = Some(PathBuf::from(value()?)),
                "-h" | "--help" => return Err(SERVE_USAGE.to_string()),
                other => return Err(format!("unknown option {other:?}\n{SERVE_USAGE}")),
            }
        }
        if o.tokens.is_empty() && o.users.is_empty() {
            return Err(format!(
                "give at least one --token or --user (every request is authenticated)\n{SERVE_USAGE}"
            ));
        }
        let existing = o.state.as_ref().is_some_and(|s| s.exists());
        if nodes.is_some() || latency.is_some() {
            let mut c = match (&o.state, existing) {
                (Some(s), true) => fake::load_state(s).map_err(|e| e.to_string())?,
                _ => match &nodes {
                    Some(n) => {
                        let names: Vec<&str> = n.iter().map(String::as_str).collect();
                        FakeCluster::with_nodes(&names)
                    }
                    None => FakeCluster::new(),
                },
            };
            if existing && nodes.is_some() {
                return Err(format!(
                    "--nodes makes a fresh cluster, but {} exists already",
                    o.state
                        .as_ref()
                        .map(|s| s.display().to_string())
                        .unwrap_or_default()
                ));
            }
            if let Some(ms) = latency {
                c.set_latency_ms(ms);
            }
            o.cluster = Some(c);
        }
        Ok(Self { options: o, ca_out })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn serve_flags_parse() {
        let c = ServeConfig::parse(&args(
            "--listen 127.0.0.1:0 --token root@pam!phx=S --user root@pam:pw --nodes a,b --node b --latency-ms=50 --auth-delay-ms 0",
        ))
        .unwrap();
        assert_eq!(c.options.tokens, vec!["root@pam!phx=S"]);
        assert_eq!(c.options.users, vec![("root@pam".into(), "pw".into())]);
        assert_eq!(c.options.local_node.as_deref(), Some("b"));
        assert_eq!(c.options.auth_failure_delay, Duration::ZERO);
        let cl = c.options.cluster.unwrap();
        assert_eq!(cl.nodes.len(), 2);
        assert_eq!(cl.latency_ms, 50);
        assert!(ServeConfig::parse(&args("--listen 127.0.0.1:0")).is_err());
        assert!(ServeConfig::parse(&args("--token x --bogus")).is_err());
    }
}
