//! `phx-fake-pve`: fake `pct`, `qm`, `pvesh`, `pvesm` and `pveam` over a FakeCluster, so
//! `phx-backend-pct` runs real processes in tests.
//!
//! Invoked through a symlink named after a tool (dispatch on `argv[0]`) or as
//! `phx-fake-pve <tool> ...`. The cluster lives in the JSON file named by `PHX_FAKE_STATE`
//! (created fresh when missing; the format of the sim backend), under an exclusive lock on
//! `<state>.lock` so parallel invocations are safe. A task's injected latency is slept with the
//! lock released; a task whose tool was killed meanwhile ends on time all the same, at the
//! next invocation (Proxmox workers outlive their client). Guest files live in
//! `<state>.guests/guests/<id>`. With `PHX_FAKE_ETC` set, every container's config file is
//! rendered to `$PHX_FAKE_ETC/lxc/<id>.conf` after each change, and raw `lxc.*` edits in
//! those files are read back, like `/etc/pve` on a node.
//! `PHX_FAKE_NODE` names the local node (default: the cluster's first node).
//!
//! Output follows proxmox-api.md part B byte for byte: `printf` layouts with their trailing
//! spaces, nothing for empty lists, exit 255 with the error on stderr when a task or a
//! precondition fails, `pct exec` passing the command's exit code through, and `pvesh`'s
//! rules (bare canonical JSON, task log before the UPID, exit 0 on a failed task).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use phx_core::backend::PowerState;
use phx_core::types::GuestKind;
use phx_testkit::fake::{self, FakeCluster, PveError, TaskOutcome, guest};
use phx_testkit::router::{Method, Params, Reply, Router};
use serde_json::Value;

const TOOLS: &[&str] = &["pct", "qm", "pvesh", "pvesm", "pveam"];

/// What a tool invocation prints and how it exits.
#[derive(Default)]
struct Out {
    out: String,
    err: String,
    code: u8,
}

impl Out {
    fn fail(mut self, msg: impl AsRef<str>) -> Self {
        let m = msg.as_ref();
        self.err.push_str(m);
        if !m.ends_with('\n') {
            self.err.push('\n');
        }
        self.code = 255;
        self
    }
}

// ----- state ------------------------------------------------------------------------------

struct Store {
    state: PathBuf,
    lock: PathBuf,
    etc: Option<PathBuf>,
}

impl Store {
    /// Run `f` on the cluster under the exclusive lock: load (taking raw `lxc.*` edits from
    /// the etc files), apply, save, render the etc files.
    fn with<T>(&self, f: impl FnOnce(&mut FakeCluster) -> T) -> Result<T, String> {
        let lock = File::options()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&self.lock)
            .map_err(|e| format!("opening {}: {e}", self.lock.display()))?;
        lock.lock()
            .map_err(|e| format!("locking {}: {e}", self.lock.display()))?;
        let mut c = fake::load_state(&self.state).map_err(|e| e.to_string())?;
        if let Some(etc) = &self.etc {
            fake::read_etc(&mut c, etc);
        }
        let before = self.etc.as_ref().map(|_| c.clone());
        // a task whose `pct`/`qm` was killed (a client's timeout, a killed phx) runs on, as
        // a Proxmox worker does: it ends on time, whoever looks next
        c.complete_due();
        let r = f(&mut c);
        fake::save_state(&self.state, &c).map_err(|e| e.to_string())?;
        if let Some(etc) = &self.etc {
            // only files of guests this call changed: a backend may be editing another
            // container's file directly, as on a real node
            fake::write_etc_since(before.as_ref(), &c, etc).map_err(|e| e.to_string())?;
        }
        let _ = lock.unlock();
        Ok(r)
    }
}

struct Ctx {
    store: Store,
    node: String,
    router: Router,
    scratch: PathBuf,
}

/// A finished call: the reply and, for a task, how it ended and its log (without the final
/// `TASK ...` line, which the CLI does not print).
struct Done {
    reply: Reply,
    failed: Option<String>,
    warnings: u32,
    log: Vec<String>,
}

enum CallError {
    Pve(PveError),
    State(String),
}

impl From<PveError> for CallError {
    fn from(e: PveError) -> Self {
        Self::Pve(e)
    }
}

impl Ctx {
    fn call(
        &self,
        method: Method,
        path: &str,
        params: &[(String, String)],
    ) -> Result<Done, CallError> {
        let (reply, due_ms) = self
            .store
            .with(|c| {
                c.lost_response = None;
                self.router.handle(c, method, path, params).map(|r| {
                    let due = r.task.as_deref().and_then(|u| c.task(u)).map(|t| t.due_ms);
                    (r, due.unwrap_or(0))
                })
            })
            .map_err(CallError::State)??;
        let Some(upid) = reply.task.clone() else {
            return Ok(Done {
                reply,
                failed: None,
                warnings: 0,
                log: Vec::new(),
            });
        };
        // the task runs for the cluster's latency (or an injected slow task's time)
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        if due_ms > now {
            std::thread::sleep(Duration::from_millis(due_ms - now));
        }
        let (outcome, mut log) = self
            .store
            .with(|c| {
                let o = c.complete(&upid);
                (o, c.task(&upid).map(|t| t.log.clone()).unwrap_or_default())
            })
            .map_err(CallError::State)?;
        if log.last().is_some_and(|l| l.starts_with("TASK ")) {
            log.pop();
        }
        let (failed, warnings) = match outcome {
            TaskOutcome::Ok { warnings } => (None, warnings),
            TaskOutcome::Failed { exitstatus, .. } => (Some(exitstatus), 0),
            TaskOutcome::Running => (Some(format!("task {upid} did not finish")), 0),
        };
        Ok(Done {
            reply,
            failed,
            warnings,
            log,
        })
    }

    fn path(&self, rest: &str) -> String {
        format!("/nodes/{}/{rest}", self.node)
    }
}

// ----- arguments --------------------------------------------------------------------------

/// Split a command line into positional arguments, `--key value` options (`--flag` alone is
/// `1`) and the argv after `--`.
fn parse_args(args: &[String]) -> (Vec<String>, Params, Vec<String>) {
    let mut pos = Vec::new();
    let mut opts = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            return (pos, opts, args[i + 1..].to_vec());
        }
        let is_opt = |s: &str| s.starts_with('-') && s.len() > 1 && s.parse::<f64>().is_err();
        if is_opt(a) {
            let name = a.trim_start_matches('-');
            if let Some((k, v)) = name.split_once('=') {
                opts.push((k.to_string(), v.to_string()));
            } else if i + 1 < args.len() && !is_opt(&args[i + 1]) && args[i + 1] != "--" {
                opts.push((name.to_string(), args[i + 1].clone()));
                i += 1;
            } else {
                opts.push((name.to_string(), "1".to_string()));
            }
        } else {
            pos.push(a.clone());
        }
        i += 1;
    }
    (pos, opts, Vec::new())
}

fn take(opts: &mut Params, key: &str) -> Option<String> {
    let i = opts.iter().position(|(k, _)| k == key)?;
    Some(opts.remove(i).1)
}

fn usage(tool: &str, cmd: &str, syntax: &str) -> Out {
    Out::default().fail(format!("400 not enough arguments\n{tool} {cmd} {syntax}"))
}

fn pve_error(tool: &str, cmd: &str, e: &PveError) -> String {
    if e.status == 400 {
        let mut s = format!("400 {}\n", e.message);
        for (k, v) in &e.errors {
            let _ = writeln!(s, "{k}: {}", v.trim_end());
        }
        let _ = write!(s, "{tool} {cmd} <vmid> [OPTIONS]");
        s
    } else {
        e.message.clone()
    }
}

fn call_error(tool: &str, cmd: &str, e: CallError) -> Out {
    match e {
        CallError::Pve(e) => Out::default().fail(pve_error(tool, cmd, &e)),
        CallError::State(m) => Out::default().fail(m),
    }
}

/// Run a call the way `pct`/`qm` run API handlers in the foreground: task log on stdout, the
/// error on stderr and exit 255 when it fails.
fn cli_call(
    ctx: &Ctx,
    tool: &str,
    cmd: &str,
    method: Method,
    path: &str,
    params: &[(String, String)],
) -> (Out, Option<Reply>) {
    match ctx.call(method, path, params) {
        Ok(d) => {
            let mut out = Out::default();
            for l in &d.log {
                out.out.push_str(l);
                out.out.push('\n');
            }
            if let Some(e) = d.failed {
                return (out.fail(e), None);
            }
            if d.warnings > 0 {
                let _ = writeln!(out.err, "Task finished with {} warning(s)!", d.warnings);
            }
            (out, Some(d.reply))
        }
        Err(e) => (call_error(tool, cmd, e), None),
    }
}

fn get(
    ctx: &Ctx,
    tool: &str,
    cmd: &str,
    path: &str,
    params: &[(String, String)],
) -> Result<Value, Out> {
    match ctx.call(Method::Get, path, params) {
        Ok(d) => Ok(d.reply.data),
        Err(e) => Err(call_error(tool, cmd, e)),
    }
}

// ----- formatting -------------------------------------------------------------------------

fn as_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn num(v: &Value, k: &str) -> f64 {
    match &v[k] {
        Value::Number(n) => n.as_f64().unwrap_or(0.0),
        Value::String(s) => s.parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

/// Perl `JSON->pretty->canonical`: 3-space indent, `"key" : value`.
fn pretty(v: &Value, indent: usize, out: &mut String) {
    let pad = "   ".repeat(indent + 1);
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push_str("{\n");
            for (i, (k, x)) in m.iter().enumerate() {
                let _ = write!(out, "{pad}{} : ", Value::String(k.clone()));
                pretty(x, indent + 1, out);
                out.push_str(if i + 1 < m.len() { ",\n" } else { "\n" });
            }
            let _ = write!(out, "{}}}", "   ".repeat(indent));
        }
        Value::Array(a) if !a.is_empty() => {
            out.push_str("[\n");
            for (i, x) in a.iter().enumerate() {
                out.push_str(&pad);
                pretty(x, indent + 1, out);
                out.push_str(if i + 1 < a.len() { ",\n" } else { "\n" });
            }
            let _ = write!(out, "{}]", "   ".repeat(indent));
        }
        other => out.push_str(&other.to_string()),
    }
}

fn pretty_line(v: &Value) -> String {
    let mut s = String::new();
    pretty(v, 0, &mut s);
    s.push('\n');
    s
}

/// pvesh's default `text` format: a Unicode box table (key/value for an object, one row per
/// item for a list of objects), plain text for a scalar.
fn text_table(v: &Value) -> String {
    let (head, rows): (Vec<String>, Vec<Vec<String>>) = match v {
        Value::Object(m) => (
            vec!["key".into(), "value".into()],
            m.iter().map(|(k, x)| vec![k.clone(), as_str(x)]).collect(),
        ),
        Value::Array(a) => {
            let mut keys: Vec<String> = a
                .iter()
                .filter_map(Value::as_object)
                .flat_map(|o| o.keys().cloned())
                .collect();
            keys.sort();
            keys.dedup();
            if keys.is_empty() {
                return a.iter().map(|x| as_str(x) + "\n").collect();
            }
            let rows = a
                .iter()
                .map(|x| keys.iter().map(|k| as_str(&x[k])).collect())
                .collect();
            (keys, rows)
        }
        Value::Null => return String::new(),
        other => return as_str(other) + "\n",
    };
    let widths: Vec<usize> = (0..head.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([head[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |l: &str, m: &str, r: &str, f: &str| -> String {
        format!(
            "{l}{}{r}\n",
            widths
                .iter()
                .map(|w| f.repeat(w + 2))
                .collect::<Vec<_>>()
                .join(m)
        )
    };
    let row = |cells: &[String]| -> String {
        format!(
            "│{}│\n",
            cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!(" {c}{} ", " ".repeat(w - c.chars().count())))
                .collect::<Vec<_>>()
                .join("│")
        )
    };
    let mut s = line("┌", "┬", "┐", "─");
    s.push_str(&row(&head));
    s.push_str(&line("╞", "╪", "╡", "═"));
    for (i, r) in rows.iter().enumerate() {
        s.push_str(&row(r));
        if i + 1 < rows.len() {
            s.push_str(&line("├", "┼", "┤", "─"));
        }
    }
    s.push_str(&line("└", "┴", "┘", "─"));
    s
}

/// `YYYY-MM-DD HH:MM:SS` of an epoch (UTC).
fn timestamp(epoch: i64) -> String {
    let days = epoch.div_euclid(86_400);
    let secs = epoch.rem_euclid(86_400);
    // civil_from_days (H. Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// `pct|qm listsnapshot`: the snapshot tree (gc `print_snapshot_tree`).
fn snapshot_tree(list: &[Value]) -> String {
    let name = |v: &Value| as_str(&v["name"]);
    let by_name: BTreeMap<String, &Value> = list.iter().map(|v| (name(v), v)).collect();
    let mut children: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    let mut roots = Vec::new();
    for v in list {
        match v["parent"].as_str().filter(|p| by_name.contains_key(*p)) {
            Some(p) => children.entry(p.to_string()).or_default().push(v),
            None => roots.push(v),
        }
    }
    // by snaptime, `current` (no snaptime) last
    let key = |v: &&Value| v["snaptime"].as_i64().unwrap_or(i64::MAX);
    roots.sort_by_key(key);
    for c in children.values_mut() {
        c.sort_by_key(key);
    }
    fn walk(out: &mut String, prefix: &str, v: &Value, children: &BTreeMap<String, Vec<&Value>>) {
        let n = as_str(&v["name"]);
        let desc = v["description"]
            .as_str()
            .filter(|d| !d.is_empty())
            .unwrap_or("no-description");
        let desc = desc.lines().next().unwrap_or_default();
        let time = v["snaptime"].as_i64().map(timestamp).unwrap_or_default();
        let len = 30usize.saturating_sub(prefix.chars().count());
        let _ = writeln!(out, "{prefix} {n:<len$} {time:<23} {desc}");
        for c in children.get(&n).map(Vec::as_slice).unwrap_or_default() {
            walk(out, &format!(" {prefix}"), c, children);
        }
    }
    let mut out = String::new();
    for r in roots {
        walk(&mut out, "`->", r, &children);
    }
    out
}

/// `pct config` / `qm config`: sorted `key: value` lines, `digest` and `lxc` left out,
/// `description` url-escaped, then the raw `lxc.*` lines.
fn config_text(cfg: &Value, mask: &[&str]) -> String {
    let mut s = String::new();
    let Some(m) = cfg.as_object() else { return s };
    for (k, v) in m {
        if k == "digest" || k == "lxc" {
            continue;
        }
        let v = if k == "description" {
            fake::escape_description(&as_str(v))
        } else if mask.contains(&k.as_str()) {
            "**********".to_string()
        } else {
            as_str(v)
        };
        let _ = writeln!(s, "{k}: {v}");
    }
    for pair in m
        .get("lxc")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let _ = writeln!(s, "{}: {}", as_str(&pair[0]), as_str(&pair[1]));
    }
    s
}

// ----- pct / qm ---------------------------------------------------------------------------

fn kind_path(kind: GuestKind) -> &'static str {
    if kind == GuestKind::Lxc {
        "lxc"
    } else {
        "qemu"
    }
}

/// Percent-encode like Proxmox's `urlencoded` format (`qm set --sshkeys <file>`).
fn uri_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// CLI-only parameter mappings whose value is a file path.
fn map_file_params(opts: &mut Params) -> Result<(), String> {
    for (k, v) in opts.iter_mut() {
        match k.as_str() {
            "ssh-public-keys" => {
                *v = std::fs::read_to_string(&*v)
                    .map_err(|e| format!("unable to read file '{v}': {e}"))?
            }
            "sshkeys" => {
                *v = uri_escape(
                    &std::fs::read_to_string(&*v)
                        .map_err(|e| format!("unable to read file '{v}': {e}"))?,
                )
            }
            _ => {}
        }
    }
    Ok(())
}

fn guest_tool(ctx: &Ctx, kind: GuestKind, args: &[String]) -> Out {
    let tool = if kind == GuestKind::Lxc { "pct" } else { "qm" };
    let Some((cmd, rest)) = args.split_first() else {
        return Out::default().fail(format!(
            "ERROR: no command specified\nUSAGE: {tool} <COMMAND> [ARGS] [OPTIONS]"
        ));
    };
    let (pos, mut opts, after) = parse_args(rest);
    let kp = kind_path(kind);
    let guest = |i: usize| pos.get(i).cloned();
    let need = |n: usize, syntax: &str| {
        if pos.len() < n {
            Some(usage(tool, cmd, syntax))
        } else {
            None
        }
    };
    match cmd.as_str() {
        "list" => {
            let list = match get(ctx, tool, cmd, &ctx.path(kp), &[]) {
                Ok(v) => v,
                Err(o) => return o,
            };
            let mut items: Vec<Value> = list.as_array().cloned().unwrap_or_default();
            items.sort_by_key(|v| v["vmid"].as_u64().unwrap_or(0));
            let mut out = Out::default();
            if items.is_empty() {
                return out;
            }
            if kind == GuestKind::Lxc {
                let _ = writeln!(
                    out.out,
                    "{:<10} {:<10} {:<12} {:<20}",
                    "VMID", "Status", "Lock", "Name"
                );
                for v in &items {
                    let _ = writeln!(
                        out.out,
                        "{:<10} {:<10} {:<12} {:<20}",
                        as_str(&v["vmid"]),
                        as_str(&v["status"]),
                        as_str(&v["lock"]),
                        as_str(&v["name"])
                    );
                }
            } else {
                let _ = writeln!(
                    out.out,
                    "{:>10} {:<20} {:<10} {:<10} {:>12} {:<10}",
                    "VMID", "NAME", "STATUS", "MEM(MB)", "BOOTDISK(GB)", "PID"
                );
                for v in &items {
                    let status = v["qmpstatus"]
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| as_str(&v["status"]));
                    let mem = (num(v, "maxmem") / 1_048_576.0) as u64;
                    let disk = num(v, "maxdisk") / 1_073_741_824.0;
                    let pid = v["pid"].as_u64().unwrap_or(0);
                    let _ = writeln!(
                        out.out,
                        "{:>10} {:<20} {:<10} {:<10} {:>12.2} {:<10}",
                        as_str(&v["vmid"]),
                        as_str(&v["name"]),
                        status,
                        mem,
                        disk,
                        pid
                    );
                }
            }
            out
        }
        "status" => {
            if let Some(u) = need(1, "<vmid> [OPTIONS]") {
                return u;
            }
            let id = guest(0).unwrap_or_default();
            match get(
                ctx,
                tool,
                cmd,
                &ctx.path(&format!("{kp}/{id}/status/current")),
                &[],
            ) {
                Ok(v) => {
                    let s = if kind == GuestKind::Vm {
                        v["qmpstatus"]
                            .as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| as_str(&v["status"]))
                    } else {
                        as_str(&v["status"])
                    };
                    Out {
                        out: format!("status: {s}\n"),
                        ..Out::default()
                    }
                }
                Err(o) => o,
            }
        }
        "config" => {
            if let Some(u) = need(1, "<vmid> [OPTIONS]") {
                return u;
            }
            let id = guest(0).unwrap_or_default();
            match get(
                ctx,
                tool,
                cmd,
                &ctx.path(&format!("{kp}/{id}/config")),
                &opts,
            ) {
                Ok(v) => Out {
                    out: config_text(
                        &v,
                        if kind == GuestKind::Vm {
                            &["cipassword"]
                        } else {
                            &[]
                        },
                    ),
                    ..Out::default()
                },
                Err(o) => o,
            }
        }
        "listsnapshot" => {
            if let Some(u) = need(1, "<vmid>") {
                return u;
            }
            let id = guest(0).unwrap_or_default();
            match get(
                ctx,
                tool,
                cmd,
                &ctx.path(&format!("{kp}/{id}/snapshot")),
                &[],
            ) {
                Ok(v) => Out {
                    out: snapshot_tree(v.as_array().map(Vec::as_slice).unwrap_or_default()),
                    ..Out::default()
                },
                Err(o) => o,
            }
        }
        "create" => {
            let (n, syntax) = if kind == GuestKind::Lxc {
                (2, "<vmid> <ostemplate> [OPTIONS]")
            } else {
                (1, "<vmid> [OPTIONS]")
            };
            if let Some(u) = need(n, syntax) {
                return u;
            }
            if let Err(e) = map_file_params(&mut opts) {
                return Out::default().fail(e);
            }
            let mut params = vec![("vmid".to_string(), pos[0].clone())];
            if kind == GuestKind::Lxc {
                params.push(("ostemplate".into(), pos[1].clone()));
            }
            params.extend(opts);
            cli_call(ctx, tool, cmd, Method::Post, &ctx.path(kp), &params).0
        }
        "set" => {
            if let Some(u) = need(1, "<vmid> [OPTIONS]") {
                return u;
            }
            if let Err(e) = map_file_params(&mut opts) {
                return Out::default().fail(e);
            }
            let mut out = Out::default();
            if kind == GuestKind::Vm {
                let mut sorted = opts.clone();
                sorted.sort();
                let args: Vec<String> = sorted.iter().map(|(k, v)| format!("-{k} {v}")).collect();
                let _ = writeln!(out.out, "update VM {}: {}", pos[0], args.join(" "));
            }
            let (o, _) = cli_call(
                ctx,
                tool,
                cmd,
                Method::Put,
                &ctx.path(&format!("{kp}/{}/config", pos[0])),
                &opts,
            );
            Out {
                out: out.out + &o.out,
                ..o
            }
        }
        "clone" => {
            if let Some(u) = need(2, "<vmid> <newid> [OPTIONS]") {
                return u;
            }
            let mut params = vec![("newid".to_string(), pos[1].clone())];
            params.extend(opts);
            cli_call(
                ctx,
                tool,
                cmd,
                Method::Post,
                &ctx.path(&format!("{kp}/{}/clone", pos[0])),
                &params,
            )
            .0
        }
        "resize" | "disk" => {
            let pos = if cmd == "disk" && pos.first().map(String::as_str) == Some("resize") {
                pos[1..].to_vec()
            } else {
                pos.clone()
            };
            if pos.len() < 3 {
                return usage(tool, cmd, "<vmid> <disk> <size> [OPTIONS]");
            }
            let mut params = vec![
                ("disk".to_string(), pos[1].clone()),
                ("size".to_string(), pos[2].clone()),
            ];
            params.extend(opts);
            cli_call(
                ctx,
                tool,
                cmd,
                Method::Put,
                &ctx.path(&format!("{kp}/{}/resize", pos[0])),
                &params,
            )
            .0
        }
        "start" | "stop" | "shutdown" | "reboot" => {
            if let Some(u) = need(1, "<vmid> [OPTIONS]") {
                return u;
            }
            cli_call(
                ctx,
                tool,
                cmd,
                Method::Post,
                &ctx.path(&format!("{kp}/{}/status/{cmd}", pos[0])),
                &opts,
            )
            .0
        }
        "destroy" => {
            if let Some(u) = need(1, "<vmid> [OPTIONS]") {
                return u;
            }
            let purge = opts.iter().any(|(k, v)| k == "purge" && v == "1");
            let (mut o, ok) = cli_call(
                ctx,
                tool,
                cmd,
                Method::Delete,
                &ctx.path(&format!("{kp}/{}", pos[0])),
                &opts,
            );
            if ok.is_some() && purge && !o.out.contains("purging") {
                let _ = writeln!(
                    o.out,
                    "purging {} {} from related configurations..",
                    kind.proxmox_word(),
                    pos[0]
                );
            }
            if ok.is_some() {
                let _ = std::fs::remove_dir_all(guest::guest_root(
                    &ctx.scratch,
                    pos[0].parse().unwrap_or(0),
                ));
            }
            o
        }
        "snapshot" => {
            if let Some(u) = need(2, "<vmid> <snapname> [OPTIONS]") {
                return u;
            }
            let mut params = vec![("snapname".to_string(), pos[1].clone())];
            params.extend(opts);
            cli_call(
                ctx,
                tool,
                cmd,
                Method::Post,
                &ctx.path(&format!("{kp}/{}/snapshot", pos[0])),
                &params,
            )
            .0
        }
        "delsnapshot" => {
            if let Some(u) = need(2, "<vmid> <snapname> [OPTIONS]") {
                return u;
            }
            cli_call(
                ctx,
                tool,
                cmd,
                Method::Delete,
                &ctx.path(&format!("{kp}/{}/snapshot/{}", pos[0], pos[1])),
                &opts,
            )
            .0
        }
        "rollback" => {
            if let Some(u) = need(2, "<vmid> <snapname> [OPTIONS]") {
                return u;
            }
            cli_call(
                ctx,
                tool,
                cmd,
                Method::Post,
                &ctx.path(&format!("{kp}/{}/snapshot/{}/rollback", pos[0], pos[1])),
                &opts,
            )
            .0
        }
        "template" => {
            if let Some(u) = need(1, "<vmid> [OPTIONS]") {
                return u;
            }
            cli_call(
                ctx,
                tool,
                cmd,
                Method::Post,
                &ctx.path(&format!("{kp}/{}/template", pos[0])),
                &opts,
            )
            .0
        }
        "unlock" => {
            if let Some(u) = need(1, "<vmid>") {
                return u;
            }
            let id: u32 = pos[0].parse().unwrap_or(0);
            let node = ctx.node.clone();
            match ctx.store.with(|c| {
                c.guest(kind, &node, id)?;
                if let Some(g) = c.guests.get_mut(&id) {
                    g.config.remove("lock");
                }
                Ok::<(), PveError>(())
            }) {
                Ok(Ok(())) => Out::default(),
                Ok(Err(e)) => Out::default().fail(e.message),
                Err(e) => Out::default().fail(e),
            }
        }
        "exec" if kind == GuestKind::Lxc => {
            if let Some(u) = need(1, "<vmid> [<extra-args>] [OPTIONS]") {
                return u;
            }
            let mut argv = after;
            argv.extend(pos[1..].iter().cloned());
            lxc_exec(ctx, &pos[0], &argv)
        }
        "push" if kind == GuestKind::Lxc => {
            if let Some(u) = need(3, "<vmid> <file> <destination> [OPTIONS]") {
                return u;
            }
            let perms = take(&mut opts, "perms").map(|p| {
                if let Some(h) = p.strip_prefix("0x") {
                    u32::from_str_radix(h, 16)
                } else {
                    u32::from_str_radix(&p, 8)
                }
            });
            let mode = match perms {
                Some(Ok(m)) => m,
                Some(Err(_)) => {
                    return Out::default()
                        .fail("400 Parameter verification failed.\nperms: invalid format");
                }
                None => 0o644,
            };
            lxc_push(ctx, &pos[0], &pos[1], &pos[2], mode)
        }
        "guest" if kind == GuestKind::Vm => match pos.first().map(String::as_str) {
            Some("exec") if pos.len() >= 2 => {
                let timeout = take(&mut opts, "timeout")
                    .and_then(|t| t.parse::<u64>().ok())
                    .unwrap_or(30);
                let mut argv = after;
                argv.extend(pos[2..].iter().cloned());
                qm_guest_exec(ctx, &pos[1], &argv, Duration::from_secs(timeout))
            }
            Some("cmd") if pos.len() >= 3 => agent_cmd(ctx, &pos[1], &pos[2]),
            _ => usage(tool, "guest", "exec <vmid> [<extra-args>] [OPTIONS]"),
        },
        "agent" if kind == GuestKind::Vm => {
            if let Some(u) = need(2, "<vmid> <command>") {
                return u;
            }
            agent_cmd(ctx, &pos[0], &pos[1])
        }
        "cloudinit" if kind == GuestKind::Vm => match (pos.first().map(String::as_str), pos.get(1))
        {
            (Some("update"), Some(id)) => {
                cli_call(
                    ctx,
                    tool,
                    cmd,
                    Method::Put,
                    &ctx.path(&format!("qemu/{id}/cloudinit")),
                    &opts,
                )
                .0
            }
            _ => usage(tool, "cloudinit", "update <vmid>"),
        },
        other => Out::default().fail(format!("unknown command '{tool} {other}'")),
    }
}

fn guest_id(s: &str) -> Result<u32, Out> {
    s.parse::<u32>().map_err(|_| Out::default().fail("400 Parameter verification failed.\nvmid: invalid format - value does not look like a valid VM ID"))
}

/// Preconditions of `pct exec`/`pct push`: the config exists and the CT runs.
fn running_ct(ctx: &Ctx, id: u32, not_running: &str) -> Result<(), Out> {
    let node = ctx.node.clone();
    match ctx.store.with(|c| {
        c.guest(GuestKind::Lxc, &node, id)
            .map(|g| g.status == PowerState::Running)
    }) {
        Ok(Ok(true)) => Ok(()),
        Ok(Ok(false)) => Err(Out::default().fail(not_running)),
        Ok(Err(e)) => Err(Out::default().fail(e.message)),
        Err(e) => Err(Out::default().fail(e)),
    }
}

/// `pct exec`: replace this process with the command in the guest root, so stdout, stderr
/// and the exit code are the command's own (pct execs `lxc-attach`).
fn lxc_exec(ctx: &Ctx, id: &str, argv: &[String]) -> Out {
    let id = match guest_id(id) {
        Ok(i) => i,
        Err(o) => return o,
    };
    if let Err(o) = running_ct(ctx, id, &format!("container '{id}' not running!")) {
        return o;
    }
    let root = guest::guest_root(&ctx.scratch, id);
    if let Err(e) = guest::ensure_root(&root) {
        return Out::default().fail(format!("creating {}: {e}", root.display()));
    }
    let Some(mut cmd) = guest::guest_command(&root, argv, &[]) else {
        return Out::default().fail("missing command");
    };
    let e = exec_replace(&mut cmd);
    Out {
        err: format!("lxc-attach: {id}: failed to exec '{}': {e}\n", argv[0]),
        code: u8::try_from(guest::exec_failure_code(&e)).unwrap_or(127),
        ..Out::default()
    }
}

#[cfg(unix)]
fn exec_replace(cmd: &mut std::process::Command) -> std::io::Error {
    use std::os::unix::process::CommandExt as _;
    cmd.exec()
}

#[cfg(not(unix))]
fn exec_replace(cmd: &mut std::process::Command) -> std::io::Error {
    match cmd.status() {
        Ok(s) => std::process::exit(s.code().unwrap_or(255)),
        Err(e) => e,
    }
}

fn lxc_push(ctx: &Ctx, id: &str, file: &str, dest: &str, mode: u32) -> Out {
    let id = match guest_id(id) {
        Ok(i) => i,
        Err(o) => return o,
    };
    if let Err(o) = running_ct(ctx, id, "can only push files to a running CT") {
        return o;
    }
    let content = match std::fs::read(file) {
        Ok(c) => c,
        Err(e) => return Out::default().fail(format!("failed to open {file} for reading: {e}")),
    };
    match guest::write_into(&guest::guest_root(&ctx.scratch, id), dest, &content, mode) {
        Ok(()) => Out::default(),
        Err(m) => Out::default().fail(m),
    }
}

fn agent_ready(ctx: &Ctx, id: u32) -> Result<(), Out> {
    let node = ctx.node.clone();
    match ctx.store.with(|c| c.agent_ready(&node, id).map(|_| ())) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Out::default().fail(e.message)),
        Err(e) => Err(Out::default().fail(e)),
    }
}

fn agent_cmd(ctx: &Ctx, id: &str, command: &str) -> Out {
    if command != "ping" {
        return Out::default().fail(format!(
            "phx fake: guest agent command '{command}' is not implemented"
        ));
    }
    match ctx.call(
        Method::Post,
        &ctx.path(&format!("qemu/{id}/agent/ping")),
        &[],
    ) {
        Ok(_) => Out::default(),
        Err(e) => call_error("qm", "agent", e),
    }
}

/// `qm guest exec`: run the command in the guest root, wait up to `timeout`, print Perl's
/// pretty JSON of the result. Exit 0 even when the command failed.
fn qm_guest_exec(ctx: &Ctx, id: &str, argv: &[String], timeout: Duration) -> Out {
    let id = match guest_id(id) {
        Ok(i) => i,
        Err(o) => return o,
    };
    if let Err(o) = agent_ready(ctx, id) {
        return o;
    }
    let root = guest::guest_root(&ctx.scratch, id);
    if let Err(e) = guest::ensure_root(&root) {
        return Out::default().fail(format!("creating {}: {e}", root.display()));
    }
    let Some(mut cmd) = guest::guest_command(&root, argv, &[]) else {
        return Out::default().fail("400 Parameter verification failed.\ncommand: property is missing and it is not optional");
    };
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Out::default().fail(format!("Agent error: Guest agent command failed, error was 'Failed to execute child process “{}” ({e})'", argv[0])),
    };
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Ok(None) => {
                let pid = child.id();
                return Out {
                    out: pretty_line(&serde_json::json!({ "pid": pid })),
                    err: "timeout reached, returning pid\n".into(),
                    code: 0,
                };
            }
            Err(e) => return Out::default().fail(format!("Agent error: {e}")),
        }
    }
    let out = match child.wait_with_output() {
        Ok(o) => o,
        Err(e) => return Out::default().fail(format!("Agent error: {e}")),
    };
    let mut v = serde_json::json!({"exited": 1, "exitcode": out.status.code().unwrap_or(-1)});
    if !out.stdout.is_empty() {
        v["out-data"] = Value::String(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    if !out.stderr.is_empty() {
        v["err-data"] = Value::String(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Out {
        out: pretty_line(&v),
        ..Out::default()
    }
}

// ----- pvesh / pvesm / pveam --------------------------------------------------------------

fn pvesh(ctx: &Ctx, args: &[String]) -> Out {
    let Some((verb, rest)) = args.split_first() else {
        return Out::default()
            .fail("ERROR: no command specified\nUSAGE: pvesh <COMMAND> [ARGS] [OPTIONS]");
    };
    let Ok(method) = Method::from_str(verb) else {
        return Out::default().fail(format!("unknown command 'pvesh {verb}'"));
    };
    let (pos, mut opts, _) = parse_args(rest);
    let Some(path) = pos.first() else {
        return usage("pvesh", verb, "<api_path> [OPTIONS] [FORMAT_OPTIONS]");
    };
    let format = take(&mut opts, "output-format").unwrap_or_else(|| "text".into());
    let _ = take(&mut opts, "noproxy");
    let quiet = take(&mut opts, "quiet").is_some_and(|v| v == "1");
    let nooutput = take(&mut opts, "nooutput").is_some_and(|v| v == "1");
    if !matches!(format.as_str(), "json" | "json-pretty" | "text" | "yaml") {
        return Out::default().fail(format!("400 Parameter verification failed.\noutput-format: value '{format}' does not have a value in the enumeration 'text, json, json-pretty, yaml'"));
    }
    match ctx.call(method, path, &opts) {
        Ok(d) => {
            let mut out = Out::default();
            for l in &d.log {
                out.out.push_str(l);
                out.out.push('\n');
            }
            if let Some(e) = &d.failed {
                // pvesh has no $upid_exit: the exit code stays 0
                out.err.push_str(e);
                out.err.push('\n');
            }
            if quiet || nooutput || d.reply.data.is_null() {
                return out;
            }
            let data = &d.reply.data;
            out.out.push_str(&match format.as_str() {
                "json" => format!("{}\n", serde_json::to_string(data).unwrap_or_default()),
                "json-pretty" => pretty_line(data),
                _ => text_table(data),
            });
            out
        }
        Err(CallError::Pve(e)) => {
            let mut msg = if e.status == 500 {
                e.message.clone()
            } else {
                format!("{} {}", e.status, e.message)
            };
            for (k, v) in &e.errors {
                let _ = write!(msg, "\n{k}: {}", v.trim_end());
            }
            Out::default().fail(msg)
        }
        Err(CallError::State(m)) => Out::default().fail(m),
    }
}

fn pvesm(ctx: &Ctx, args: &[String]) -> Out {
    let Some((cmd, rest)) = args.split_first() else {
        return Out::default()
            .fail("ERROR: no command specified\nUSAGE: pvesm <COMMAND> [ARGS] [OPTIONS]");
    };
    let (pos, opts, _) = parse_args(rest);
    match cmd.as_str() {
        "status" => {
            let v = match get(ctx, "pvesm", cmd, &ctx.path("storage"), &opts) {
                Ok(v) => v,
                Err(o) => return o,
            };
            let mut items = v.as_array().cloned().unwrap_or_default();
            items.sort_by_key(|s| as_str(&s["storage"]));
            let maxlen = items
                .iter()
                .map(|s| as_str(&s["storage"]).len())
                .max()
                .unwrap_or(0)
                .max(4)
                + 1;
            let mut out = Out::default();
            let _ = writeln!(
                out.out,
                "{:<maxlen$} {:>10} {:>10} {:>15} {:>15} {:>15} {:>8}",
                "Name", "Type", "Status", "Total (KiB)", "Used (KiB)", "Available (KiB)", "%"
            );
            for s in &items {
                let enabled = s["enabled"].as_u64() == Some(1);
                let active = s["active"].as_u64() == Some(1);
                let status = if !enabled {
                    "disabled"
                } else if active {
                    "active"
                } else {
                    "inactive"
                };
                let (t, u, a) = (
                    num(s, "total") as u64 / 1024,
                    num(s, "used") as u64 / 1024,
                    num(s, "avail") as u64 / 1024,
                );
                let pct = if !enabled || t == 0 {
                    "N/A".to_string()
                } else {
                    format!("{:.2}%", u as f64 * 100.0 / t as f64)
                };
                let _ = writeln!(
                    out.out,
                    "{:<maxlen$} {:>10} {:>10} {:>15} {:>15} {:>15} {:>8}",
                    as_str(&s["storage"]),
                    as_str(&s["type"]),
                    status,
                    t,
                    u,
                    a,
                    pct
                );
            }
            out
        }
        "add" => {
            if pos.len() < 2 {
                return usage("pvesm", cmd, "<type> <storage> [OPTIONS]");
            }
            let mut params = vec![
                ("type".to_string(), pos[0].clone()),
                ("storage".to_string(), pos[1].clone()),
            ];
            params.extend(opts);
            cli_call(ctx, "pvesm", cmd, Method::Post, "/storage", &params).0
        }
        "set" => {
            if pos.is_empty() {
                return usage("pvesm", cmd, "<storage> [OPTIONS]");
            }
            cli_call(
                ctx,
                "pvesm",
                cmd,
                Method::Put,
                &format!("/storage/{}", pos[0]),
                &opts,
            )
            .0
        }
        "remove" => {
            if pos.is_empty() {
                return usage("pvesm", cmd, "<storage>");
            }
            cli_call(
                ctx,
                "pvesm",
                cmd,
                Method::Delete,
                &format!("/storage/{}", pos[0]),
                &opts,
            )
            .0
        }
        other => Out::default().fail(format!("unknown command 'pvesm {other}'")),
    }
}

fn pveam(ctx: &Ctx, args: &[String]) -> Out {
    let Some((cmd, rest)) = args.split_first() else {
        return Out::default()
            .fail("ERROR: no command specified\nUSAGE: pveam <COMMAND> [ARGS] [OPTIONS]");
    };
    let (pos, opts, _) = parse_args(rest);
    match cmd.as_str() {
        "update" => Out {
            out: "update successful\n".into(),
            ..Out::default()
        },
        "available" => {
            let v = match get(ctx, "pveam", cmd, &ctx.path("aplinfo"), &[]) {
                Ok(v) => v,
                Err(o) => return o,
            };
            let section = opts
                .iter()
                .find(|(k, _)| k == "section")
                .map(|(_, v)| v.clone());
            let mut items: Vec<Value> = v
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|t| section.as_deref().is_none_or(|s| t["section"] == s))
                .collect();
            items.sort_by_key(|t| (as_str(&t["section"]), as_str(&t["template"])));
            let mut out = Out::default();
            for t in &items {
                let _ = writeln!(
                    out.out,
                    "{:<15} {:<60} {}",
                    as_str(&t["section"]),
                    as_str(&t["template"]),
                    as_str(&t["architecture"])
                );
            }
            out
        }
        "list" => {
            let Some(storage) = pos.first() else {
                return usage("pveam", cmd, "<storage> [OPTIONS]");
            };
            let stores = match get(
                ctx,
                "pveam",
                cmd,
                &ctx.path("storage"),
                &[("storage".into(), storage.clone())],
            ) {
                Ok(v) => v,
                Err(o) => return o,
            };
            let supports = stores
                .as_array()
                .and_then(|a| a.first())
                .is_some_and(|s| as_str(&s["content"]).split(',').any(|c| c == "vztmpl"));
            if !supports {
                return Out::default().fail("Storage does not support templates!");
            }
            let v = match get(
                ctx,
                "pveam",
                cmd,
                &ctx.path(&format!("storage/{storage}/content")),
                &[("content".into(), "vztmpl".into())],
            ) {
                Ok(v) => v,
                Err(o) => return o,
            };
            let mut out = Out::default();
            let _ = writeln!(out.out, "{:<60} {:<6}", "NAME", "SIZE");
            let mut items = v.as_array().cloned().unwrap_or_default();
            items.sort_by_key(|x| as_str(&x["volid"]));
            for x in &items {
                let _ = writeln!(
                    out.out,
                    "{:<60} {:<4.2}MB",
                    as_str(&x["volid"]),
                    num(x, "size") / 1_048_576.0
                );
            }
            out
        }
        "download" => {
            if pos.len() < 2 {
                return usage("pveam", cmd, "<storage> <template>");
            }
            let params = vec![
                ("storage".to_string(), pos[0].clone()),
                ("template".to_string(), pos[1].clone()),
            ];
            match ctx.call(Method::Post, &ctx.path("aplinfo"), &params) {
                Ok(d) => {
                    let mut out = Out::default();
                    for l in &d.log {
                        out.out.push_str(l);
                        out.out.push('\n');
                    }
                    if let Some(e) = d.failed {
                        // no $upid_exit in pveam: exit 0 even on failure
                        out.err.push_str(&e);
                        out.err.push('\n');
                    }
                    out
                }
                Err(e) => call_error("pveam", cmd, e),
            }
        }
        other => Out::default().fail(format!("unknown command 'pveam {other}'")),
    }
}

// ----- main -------------------------------------------------------------------------------

fn context() -> Result<Ctx, String> {
    let state = std::env::var_os("PHX_FAKE_STATE")
        .map(PathBuf::from)
        .ok_or("phx-fake-pve: PHX_FAKE_STATE is not set (path of the fake cluster's state file)")?;
    let lock = state.with_extension("lock");
    let etc = std::env::var_os("PHX_FAKE_ETC")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let scratch = fake::scratch_of(&state);
    let store = Store { state, lock, etc };
    let node = match std::env::var("PHX_FAKE_NODE") {
        Ok(n) if !n.is_empty() => n,
        _ => store
            .with(|c| c.nodes.keys().next().cloned())?
            .ok_or("phx-fake-pve: the fake cluster has no nodes")?,
    };
    Ok(Ctx {
        router: Router::new(scratch.clone()),
        store,
        node,
        scratch,
    })
}

fn run(args: &[String]) -> Out {
    let argv0 = args
        .first()
        .map(|a| {
            Path::new(a)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .unwrap_or_default();
    let (tool, rest) = if TOOLS.contains(&argv0.as_str()) {
        (argv0, &args[1.min(args.len())..])
    } else if let Some(t) = args.get(1).filter(|t| TOOLS.contains(&t.as_str())) {
        (t.clone(), &args[2..])
    } else {
        return Out::default().fail(format!(
            "usage: phx-fake-pve <{}> [ARGS...] (or call it through a symlink named like the tool)",
            TOOLS.join("|")
        ));
    };
    let ctx = match context() {
        Ok(c) => c,
        Err(e) => return Out::default().fail(e),
    };
    match tool.as_str() {
        "pct" => guest_tool(&ctx, GuestKind::Lxc, rest),
        "qm" => guest_tool(&ctx, GuestKind::Vm, rest),
        "pvesh" => pvesh(&ctx, rest),
        "pvesm" => pvesm(&ctx, rest),
        _ => pveam(&ctx, rest),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).is_some_and(|a| a == "serve") {
        return serve(&args[2..]);
    }
    let out = run(&args);
    let _ = std::io::stdout().write_all(out.out.as_bytes());
    let _ = std::io::stderr().write_all(out.err.as_bytes());
    ExitCode::from(out.code)
}

// ----- serve ------------------------------------------------------------------------------

/// `phx-fake-pve serve ...`: the fake HTTPS API until SIGINT/SIGTERM. The first stdout line is
/// `<url> <sha256 fingerprint>`, for scripts and tests to read.
fn serve(args: &[String]) -> ExitCode {
    let cfg = match phx_testkit::server::ServeConfig::parse(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "phx-fake-pve serve: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "phx-fake-pve serve: runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let r: std::io::Result<()> = rt.block_on(async {
        let server = phx_testkit::server::FakeServer::start(cfg.options).await?;
        if let Some(p) = &cfg.ca_out {
            std::fs::write(p, server.ca_pem())?;
        }
        let mut out = std::io::stdout();
        writeln!(out, "{} {}", server.url(), server.fingerprint())?;
        out.flush()?;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        server.shutdown().await;
        Ok(())
    });
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "phx-fake-pve serve: {e}");
            ExitCode::from(1)
        }
    }
}
