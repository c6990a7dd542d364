//! The Phoenix shell tool's command lines, for installs that switch over.
//!
//! When phx runs under one of the shell tool's names (`phoenix_orchestrator.sh`, `phoenix`,
//! `phoenix-cli`, usually a symlink to `phx`), it accepts the old forms of both generations —
//! the monolith's flags (`--setup-hypervisor`, `<ID>...`, `--delete <ID>`, `--reconfigure`,
//! `--test <SUITE>`, `--LetsGo`, `--dry-run`, `--wipe-disks`) and the dispatcher's verbs
//! (`setup`, `create`, `converge`, `delete`, `start`, `stop`, `restart`, `status`, `LetsGo`) —
//! prints the new spelling as a hint on stderr and runs it. Ids are routed to `phx lxc` or
//! `phx vm` by where the loaded config defines them, as the old dispatcher did; a list that
//! mixes containers and VMs becomes one phx command per kind, in dependency order (dependents
//! first for `stop` and `delete`), run one after the other and stopping at the first that
//! fails. What has no equivalent is refused with the reason and the table of new commands.
//! A phx command line given under an old name (`phoenix lxc list`) runs as it is.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use phx_core::config::{DEFAULT_CONFIG_DIR, Inventory, LoadOptions};
use phx_core::graph::DepGraph;
use phx_core::types::{GuestId, GuestKind};

use crate::cli::Cli;
use crate::error::{EXIT_OK, EXIT_USAGE};

/// The names the shell tool was installed under.
pub const NAMES: &[&str] = &["phoenix_orchestrator.sh", "phoenix", "phoenix-cli"];

/// The old command lines and what they are in phx (`--help` under an old name, and errors).
pub const TABLE: &[(&str, &str)] = &[
    (
        "--setup-hypervisor [--wipe-disks]\nsetup [--wipe-disks]",
        "phx hypervisor setup [--allow-destructive]",
    ),
    (
        "<ID>...\ncreate <ID>...\nconverge <ID>...",
        "phx lxc create <ID>... / phx vm create <ID>...",
    ),
    (
        "--delete <ID>\ndelete <ID>...",
        "phx lxc delete <ID>... / phx vm delete <ID>...",
    ),
    (
        "start|stop|restart <ID>...",
        "phx lxc|vm start|stop|restart <ID>...",
    ),
    ("status [<ID>...]", "phx lxc|vm status <ID>... (phx status)"),
    ("--reconfigure <ID>...", "phx lxc|vm reconfigure <ID>..."),
    (
        "--test <SUITE> [<ID>...]",
        "phx lxc|vm test <ID> --suite <SUITE> (no ID: phx hypervisor test --suite <SUITE>)",
    ),
    ("LetsGo\n--LetsGo", "phx up"),
    (
        "--provision-template",
        "phx vm create <the VM with is_template>",
    ),
    (
        "--dry-run",
        "--dry-run (shows the plan and changes nothing at all)",
    ),
    (
        "--smoke-test, sync, health-check, --reset-portainer",
        "no equivalent (see docs/MIGRATING.md)",
    ),
];

/// The shell tool's name `argv0` was invoked as, if any.
pub fn legacy_name(argv0: &OsStr) -> Option<&'static str> {
    let base = Path::new(argv0).file_name()?;
    NAMES.iter().copied().find(|n| OsStr::new(n) == base)
}

/// Run phx with the process's arguments: `run` once, or, under an old name, once per
/// translated command line until one fails. The exit code is the first failure's.
pub fn main(run: fn(Vec<OsString>) -> u8) -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    match args.first().and_then(|a| legacy_name(a)) {
        Some(name) => ExitCode::from(run_legacy(name, &args[1..], run)),
        None => ExitCode::from(run(args)),
    }
}

#[allow(clippy::print_stderr, clippy::print_stdout)]
fn run_legacy(name: &str, args: &[OsString], run: fn(Vec<OsString>) -> u8) -> u8 {
    let mut text = Vec::with_capacity(args.len());
    for a in args {
        match a.to_str() {
            Some(s) => text.push(s.to_string()),
            None => {
                eprintln!("error: argument {} is not UTF-8 text", a.to_string_lossy());
                return EXIT_USAGE;
            }
        }
    }
    let env_dir = std::env::var_os("PHX_CONFIG_DIR").map(PathBuf::from);
    let translated = translate(name, &text, |dir| {
        let dir = dir
            .or(env_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_DIR));
        load(&dir)
    });
    match translated {
        Ok(Translation::Help(s)) => {
            print!("{s}");
            EXIT_OK
        }
        Ok(Translation::Passthrough(argv)) => run(argv.into_iter().map(OsString::from).collect()),
        Ok(Translation::Run {
            commands,
            notes,
            quiet,
        }) => {
            if !quiet {
                eprint!("{}", hint(name, &text, &commands, &notes));
            }
            for argv in commands {
                let code = run(argv.into_iter().map(OsString::from).collect());
                if code != EXIT_OK {
                    return code;
                }
            }
            EXIT_OK
        }
        Err(r) => {
            eprint!("{}", r.render(name));
            EXIT_USAGE
        }
    }
}

fn load(dir: &Path) -> Result<Inventory, Refusal> {
    Inventory::load(&LoadOptions::new(dir)).map_err(|e| {
        let n = e.errors.len();
        let mut msg = format!(
            "cannot route the ids: the config in {} is invalid ({n} error{}):",
            dir.display(),
            if n == 1 { "" } else { "s" }
        );
        for f in &e.errors {
            msg.push_str(&format!("\n  {f}"));
        }
        Refusal::new(msg).hint("`phx config validate` lists every problem; nothing was changed")
    })
}

/// The stderr hint: the old command line and the phx command lines it runs.
fn hint(name: &str, args: &[String], commands: &[Vec<String>], notes: &[String]) -> String {
    let old = std::iter::once(name.to_string())
        .chain(args.iter().map(|a| quote(a)))
        .collect::<Vec<_>>()
        .join(" ");
    let new = commands
        .iter()
        .map(|c| {
            format!(
                "`{}`",
                c.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ")
            )
        })
        .collect::<Vec<_>>();
    let mut s = match new.as_slice() {
        [one] => format!("hint: `{old}` is {one} in phx; running it\n"),
        _ => format!(
            "hint: `{old}` is {} in phx; running them in turn, stopping at the first that fails\n",
            new.join(" then ")
        ),
    };
    for n in notes {
        s.push_str(&format!("note: {n}\n"));
    }
    s
}

/// An argument as it would be typed in a shell.
fn quote(a: &str) -> String {
    let plain = !a.is_empty()
        && a.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'-' | b'_' | b'.' | b'/' | b'=' | b':' | b',' | b'@' | b'+'
                )
        });
    if plain {
        a.to_string()
    } else {
        format!("'{}'", a.replace('\'', r"'\''"))
    }
}

/// What an old command line becomes.
#[derive(Debug, PartialEq, Eq)]
pub enum Translation {
    /// Run these phx command lines (each starting with `phx`) in turn, stopping at the first
    /// failure; `notes` say where phx behaves differently; `quiet` (`-q`) drops the hint.
    Run {
        /// The command lines.
        commands: Vec<Vec<String>>,
        /// Behaviour differences worth a line on stderr.
        notes: Vec<String>,
        /// `-q` was given.
        quiet: bool,
    },
    /// Print this on stdout and exit 0 (`--help`).
    Help(String),
    /// A phx command line given under an old name: run as it is.
    Passthrough(Vec<String>),
}

/// An old command line phx does not run: why, what to do, and whether the table helps.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    /// What is wrong.
    pub message: String,
    /// What to do instead.
    pub hint: Option<String>,
    /// Show the table of new commands.
    pub table: bool,
}

impl Refusal {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: None,
            table: false,
        }
    }
    fn hint(mut self, h: impl Into<String>) -> Self {
        self.hint = Some(h.into());
        self
    }
    fn with_table(mut self) -> Self {
        self.table = true;
        self
    }

    /// `error: …`, the table when it helps, `hint: …`.
    pub fn render(&self, name: &str) -> String {
        let mut s = format!("error: {}\n", self.message);
        if self.table {
            s.push('\n');
            s.push_str(&table(name));
        }
        if let Some(h) = &self.hint {
            s.push_str(&format!("hint: {h}\n"));
        }
        s
    }
}

/// The table of old forms and their phx commands.
pub fn table(name: &str) -> String {
    let rows: Vec<(Vec<String>, &str)> = TABLE
        .iter()
        .map(|(old, new)| (old.lines().map(|l| format!("{name} {l}")).collect(), *new))
        .collect();
    let width = rows
        .iter()
        .flat_map(|(o, _)| o.iter().map(|l| l.chars().count()))
        .max()
        .unwrap_or(0);
    let mut s = format!("{:width$}  phx\n", "shell tool");
    for (old, new) in rows {
        for (i, l) in old.iter().enumerate() {
            let right = if i == 0 { new } else { "" };
            s.push_str(format!("{l:width$}  {right}").trim_end());
            s.push('\n');
        }
    }
    s
}

fn help(name: &str) -> String {
    format!(
        "{name} is phx now: it accepts the shell tool's command lines, prints the phx command they\n\
         are and runs it. Every phx command works under this name too (`{name} lxc list`), and\n\
         phx's global options (-C/--config-dir, --backend, -y, -o json, -v, ...) can be added.\n\n{}\n\
         `phx --help` lists every command; docs/MIGRATING.md explains what behaves differently.\n",
        table(name)
    )
}

/// The dispatcher's verbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Setup,
    Create,
    Converge,
    Delete,
    Start,
    Stop,
    Restart,
    Status,
    LetsGo,
    Sync,
    HealthCheck,
}

impl Verb {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "setup" => Self::Setup,
            "create" => Self::Create,
            "converge" => Self::Converge,
            "delete" => Self::Delete,
            "start" => Self::Start,
            "stop" => Self::Stop,
            "restart" => Self::Restart,
            "status" => Self::Status,
            "LetsGo" => Self::LetsGo,
            "sync" => Self::Sync,
            "health-check" => Self::HealthCheck,
            _ => return None,
        })
    }
}

/// The monolith's mode flags.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    SetupHypervisor,
    Delete,
    Reconfigure,
    LetsGo,
    Test(String),
    ProvisionTemplate,
}

/// What the old command line asks for, before routing.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Request {
    HypervisorSetup { destructive: bool },
    Create(Vec<GuestId>),
    Delete(Vec<GuestId>),
    Start(Vec<GuestId>),
    Stop(Vec<GuestId>),
    Restart(Vec<GuestId>),
    Status(Vec<GuestId>),
    Reconfigure(Vec<GuestId>),
    Test(String, Vec<GuestId>),
    Up(Vec<GuestId>),
    ProvisionTemplate,
}

/// One of phx's global options, from the clap definition.
struct GlobalOpt {
    long: String,
    short: Option<char>,
    takes_value: bool,
}

fn global_opts() -> Vec<GlobalOpt> {
    Cli::command()
        .get_arguments()
        .filter(|a| a.is_global_set())
        .filter_map(|a| {
            Some(GlobalOpt {
                long: a.get_long()?.to_string(),
                short: a.get_short(),
                takes_value: a.get_action().takes_values(),
            })
        })
        .collect()
}

/// The subcommands of phx itself (a phx command line under an old name runs as it is).
fn phx_subcommands() -> Vec<String> {
    Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect()
}

/// Translate the arguments (without `argv[0]`) of an old command line. `load` reads the
/// config to route ids (given `-C/--config-dir` when the command line has it).
pub fn translate(
    name: &str,
    args: &[String],
    load: impl FnOnce(Option<PathBuf>) -> Result<Inventory, Refusal>,
) -> Result<Translation, Refusal> {
    let globals = global_opts();
    let first_word = first_positional(args, &globals);
    if let Some(w) = first_word
        && Verb::parse(w).is_none()
        && w.parse::<u64>().is_err()
        && phx_subcommands().contains(w)
    {
        return Ok(Translation::Passthrough(
            std::iter::once("phx".to_string())
                .chain(args.iter().cloned())
                .collect(),
        ));
    }
    let mut verb: Option<Verb> = None;
    let mut modes: Vec<(String, Mode)> = Vec::new();
    let mut ids: Vec<GuestId> = Vec::new();
    let mut pass: Vec<String> = Vec::new();
    let mut config_dir: Option<PathBuf> = None;
    let (mut dry_run, mut wipe_disks, mut quiet) = (false, false, false);
    let id_of = |s: &str| -> Result<GuestId, Refusal> {
        s.parse::<GuestId>().map_err(|e| {
            Refusal::new(e.to_string()).hint(format!("`{name} --help` shows the forms phx accepts"))
        })
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-h" | "--help" | "help" if verb.is_none() => return Ok(Translation::Help(help(name))),
            "--dry-run" => dry_run = true,
            "--wipe-disks" => wipe_disks = true,
            "--setup-hypervisor" => modes.push((a.clone(), Mode::SetupHypervisor)),
            "--reconfigure" => modes.push((a.clone(), Mode::Reconfigure)),
            "--LetsGo" => modes.push((a.clone(), Mode::LetsGo)),
            "--provision-template" => modes.push((a.clone(), Mode::ProvisionTemplate)),
            "--delete" => match it.next() {
                Some(id) if !id.starts_with('-') => {
                    ids.push(id_of(id)?);
                    modes.push((a.clone(), Mode::Delete));
                }
                _ => {
                    return Err(Refusal::new("--delete needs the ID of the guest to delete")
                        .hint(format!("`{name} --delete <ID>`, or `phx lxc delete <ID>` / `phx vm delete <ID>`")));
                }
            },
            "--test" => {
                match it.next() {
                    Some(suite) if !suite.starts_with('-') => {
                        modes.push((a.clone(), Mode::Test(suite.clone())));
                    }
                    _ => {
                        return Err(Refusal::new("--test needs the name of a test suite")
                        .hint(format!("`{name} --test <SUITE> <ID>`, or `phx lxc test <ID> --suite <SUITE>`")));
                    }
                }
            }
            "--smoke-test" => {
                return Err(Refusal::new(
                    "--smoke-test has no phx equivalent: its checks (nginx on 953, vLLM on 950, qdrant on 952) were hard-coded",
                )
                .hint("put the checks in a guest's `tests` and run `phx lxc test <ID> --suite <SUITE>`"));
            }
            "--reset-portainer" => {
                return Err(Refusal::new(
                    "--reset-portainer only applied to `sync`, which phx does not have",
                )
                .hint("run the site's Portainer tooling (portainer-manager.sh) directly"));
            }
            s if s.starts_with('-') => {
                let (flag, inline) = match s.split_once('=') {
                    Some((f, v)) => (f, Some(v)),
                    None => (s, None),
                };
                let known = find_global(&globals, flag);
                let Some(g) = known else {
                    return Err(Refusal::new(format!(
                        "{s} is not an option of {name} that phx knows"
                    ))
                    .with_table()
                    .hint("`phx --help` lists every phx command and option"));
                };
                pass.push(s.to_string());
                let value = if g.takes_value && inline.is_none() {
                    let Some(v) = it.next() else {
                        return Err(Refusal::new(format!("{flag} needs a value")));
                    };
                    pass.push(v.clone());
                    Some(v.as_str())
                } else {
                    inline
                };
                match g.long.as_str() {
                    "config-dir" => config_dir = value.map(PathBuf::from),
                    "quiet" => quiet = true,
                    _ => {}
                }
            }
            s => match (verb, Verb::parse(s)) {
                (None, Some(v)) if ids.is_empty() && modes.is_empty() => {
                    // the rest of `sync all` / `health-check <VMID>` is not worth parsing
                    if let Some(r) = unsupported(v) {
                        return Err(r);
                    }
                    verb = Some(v);
                }
                (None, None) if ids.is_empty() && s.parse::<u64>().is_err() => {
                    return Err(Refusal::new(format!(
                        "{s:?} is not a command of {name} that phx knows"
                    ))
                    .with_table()
                    .hint("`phx --help` lists every phx command"));
                }
                _ => ids.push(id_of(s)?),
            },
        }
    }
    if modes.len() > 1 {
        let names: Vec<&str> = modes.iter().map(|(n, _)| n.as_str()).collect();
        return Err(Refusal::new(format!(
            "{} cannot be combined: each is its own command",
            names.join(" and ")
        ))
        .with_table());
    }
    let mode = modes.pop();
    let mut request = match (verb, mode) {
        (Some(_), Some((flag, _))) => {
            return Err(
                Refusal::new(format!("{flag} cannot be combined with a command word")).with_table(),
            );
        }
        (Some(v), None) => request_for_verb(name, v, ids)?,
        (None, Some((flag, m))) => request_for_mode(&flag, m, ids)?,
        (None, None) if ids.is_empty() => {
            return Err(Refusal::new(format!("{name} needs a command"))
                .with_table()
                .hint(format!("`{name} --help` shows the forms phx accepts")));
        }
        (None, None) => Request::Create(ids),
    };
    if let Request::HypervisorSetup { destructive } = &mut request {
        *destructive = wipe_disks;
    } else if wipe_disks {
        return Err(Refusal::new(
            "--wipe-disks only applies to hypervisor setup (its ZFS step); it does nothing here",
        )
        .hint(format!(
            "`{name} --setup-hypervisor --wipe-disks` is `phx hypervisor setup --allow-destructive`"
        )));
    }
    let mut tail = pass;
    if dry_run {
        tail.push("--dry-run".into());
    }
    let mut notes = Vec::new();
    if dry_run {
        notes.push("phx's --dry-run prints the plan and changes nothing (the shell tool's still ran qm, pvesh and the scripts)".to_string());
    }
    let commands = route(request, &tail, load, config_dir, &mut notes)?;
    if dry_run && commands.len() > 1 {
        notes.push("each command's dry run plans alone, so a prerequisite they share shows in each plan; a real run creates it once".to_string());
    }
    Ok(Translation::Run {
        commands,
        notes,
        quiet,
    })
}

/// The global option matching `flag` (`--config-dir`, `-C`; without an `=value`).
fn find_global<'g>(globals: &'g [GlobalOpt], flag: &str) -> Option<&'g GlobalOpt> {
    globals.iter().find(|g| {
        flag.strip_prefix("--") == Some(g.long.as_str())
            || (flag.len() == 2
                && flag.starts_with('-')
                && g.short.is_some_and(|c| flag.ends_with(c)))
    })
}

/// The first argument that is neither an option nor an option's value.
fn first_positional<'a>(args: &'a [String], globals: &[GlobalOpt]) -> Option<&'a String> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if !a.starts_with('-') {
            return Some(a);
        }
        let takes_value = matches!(a.as_str(), "--delete" | "--test")
            || (!a.contains('=') && find_global(globals, a).is_some_and(|g| g.takes_value));
        if takes_value {
            it.next();
        }
    }
    None
}

fn request_for_verb(name: &str, v: Verb, ids: Vec<GuestId>) -> Result<Request, Refusal> {
    let need_ids = |word: &str, ids: Vec<GuestId>| {
        if ids.is_empty() {
            Err(Refusal::new(format!("{word} needs at least one guest ID"))
                .hint(format!("`{name} {word} <ID>...`")))
        } else {
            Ok(ids)
        }
    };
    Ok(match v {
        Verb::Setup if ids.is_empty() => Request::HypervisorSetup { destructive: false },
        Verb::Setup => {
            return Err(Refusal::new("setup takes no IDs (only --wipe-disks)")
                .hint("`phx hypervisor setup`; `--step NAME` runs one host step"));
        }
        Verb::Create | Verb::Converge => Request::Create(need_ids(
            if v == Verb::Create {
                "create"
            } else {
                "converge"
            },
            ids,
        )?),
        Verb::Delete => Request::Delete(need_ids("delete", ids)?),
        Verb::Start => Request::Start(need_ids("start", ids)?),
        Verb::Stop => Request::Stop(need_ids("stop", ids)?),
        Verb::Restart => Request::Restart(need_ids("restart", ids)?),
        Verb::Status => Request::Status(ids),
        Verb::LetsGo => Request::Up(ids),
        Verb::Sync => return Err(sync_refusal()),
        Verb::HealthCheck => return Err(health_check_refusal()),
    })
}

/// The dispatcher's verbs phx has no equivalent for.
fn unsupported(v: Verb) -> Option<Refusal> {
    match v {
        Verb::Sync => Some(sync_refusal()),
        Verb::HealthCheck => Some(health_check_refusal()),
        _ => None,
    }
}

fn sync_refusal() -> Refusal {
    Refusal::new(
        "sync (the Portainer, Traefik, NGINX, DNS and certificate refresh) has no phx equivalent",
    )
    .hint("run the site's portainer-manager.sh directly; phx converges guests and the host")
}

fn health_check_refusal() -> Refusal {
    Refusal::new("health-check has no phx equivalent: it ran the hard-coded check_vm_foundation.sh")
        .hint("phx runs a guest's health_check and health_checks whenever the guest changes (`phx vm reconfigure <ID>`); run the script directly for a one-off check")
}

fn request_for_mode(flag: &str, m: Mode, ids: Vec<GuestId>) -> Result<Request, Refusal> {
    let no_ids = |r: Request, ids: &[GuestId]| {
        if ids.is_empty() {
            Ok(r)
        } else {
            Err(Refusal::new(format!("{flag} cannot be combined with guest IDs")).with_table())
        }
    };
    match m {
        Mode::SetupHypervisor => no_ids(Request::HypervisorSetup { destructive: false }, &ids),
        Mode::ProvisionTemplate => no_ids(Request::ProvisionTemplate, &ids),
        Mode::LetsGo => Ok(Request::Up(ids)),
        Mode::Delete => Ok(Request::Delete(ids)),
        Mode::Test(suite) => Ok(Request::Test(suite, ids)),
        Mode::Reconfigure if ids.is_empty() => Err(Refusal::new(
            "--reconfigure needs the IDs of the guests to reconfigure",
        )
        .hint("`phx lxc reconfigure <ID>...` / `phx vm reconfigure <ID>...`")),
        Mode::Reconfigure => Ok(Request::Reconfigure(ids)),
    }
}

fn cmd(words: &[&str], ids: &[GuestId], tail: &[String]) -> Vec<String> {
    std::iter::once("phx".to_string())
        .chain(words.iter().map(|w| (*w).to_string()))
        .chain(ids.iter().map(ToString::to_string))
        .chain(tail.iter().cloned())
        .collect()
}

/// The phx command lines of a request, routing ids by kind.
fn route(
    request: Request,
    tail: &[String],
    load: impl FnOnce(Option<PathBuf>) -> Result<Inventory, Refusal>,
    config_dir: Option<PathBuf>,
    notes: &mut Vec<String>,
) -> Result<Vec<Vec<String>>, Refusal> {
    let (verb, ids, teardown) = match request {
        Request::HypervisorSetup { destructive } => {
            let words: &[&str] = if destructive {
                &["hypervisor", "setup", "--allow-destructive"]
            } else {
                &["hypervisor", "setup"]
            };
            return Ok(vec![cmd(words, &[], tail)]);
        }
        Request::Up(ids) => return Ok(vec![cmd(&["up"], &ids, tail)]),
        Request::Status(ids) if ids.is_empty() => return Ok(vec![cmd(&["status"], &[], tail)]),
        Request::Test(suite, ids) if ids.is_empty() => {
            return Ok(vec![cmd(
                &["hypervisor", "test", "--suite", &suite],
                &[],
                tail,
            )]);
        }
        Request::ProvisionTemplate => {
            let inv = load(config_dir)?;
            let templates: Vec<GuestId> = inv
                .vms
                .values()
                .filter(|v| v.is_template)
                .map(|v| v.id)
                .collect();
            if templates.is_empty() {
                return Err(Refusal::new(
                    "--provision-template creates the VM with \"is_template\": true, and phoenix_vm_configs.json defines none",
                )
                .hint("add the template VM (template_image, is_template) to phoenix_vm_configs.json"));
            }
            return Ok(vec![cmd(&["vm", "create"], &templates, tail)]);
        }
        Request::Create(ids) => ("create", ids, false),
        Request::Delete(ids) => {
            notes.push("phx deletes dependents first, refuses while other guests depend on a named one (--force), and asks before destroying (--yes off a terminal)".into());
            ("delete", ids, true)
        }
        Request::Start(ids) => ("start", ids, false),
        Request::Stop(ids) => {
            notes.push("phx stops only the named guests (the shell tool also stopped their prerequisites); --with-dependents stops running dependents first".into());
            ("stop", ids, true)
        }
        Request::Restart(ids) => ("restart", ids, false),
        Request::Status(ids) => ("status", ids, false),
        Request::Reconfigure(ids) => ("reconfigure", ids, false),
        Request::Test(suite, ids) => {
            let inv = load(config_dir)?;
            let mut out = Vec::new();
            for id in ids {
                let kind = kind_of(&inv, id)?;
                out.push(cmd(
                    &[kind.noun(), "test", &id.to_string(), "--suite", &suite],
                    &[],
                    tail,
                ));
            }
            return Ok(out);
        }
    };
    let inv = load(config_dir)?;
    let mut unique: Vec<GuestId> = Vec::new();
    for id in ids {
        kind_of(&inv, id)?;
        if !unique.contains(&id) {
            unique.push(id);
        }
    }
    let graph = DepGraph::new(&inv);
    let mut order: Vec<GuestId> = graph
        .order(&unique)
        .map_err(|c| Refusal::new(format!("the config has a dependency cycle: {c}")))?
        .into_iter()
        .filter(|id| unique.contains(id))
        .collect();
    if teardown {
        order.reverse();
    }
    // consecutive ids of one kind share one command
    let mut groups: Vec<(GuestKind, Vec<GuestId>)> = Vec::new();
    for id in order {
        let kind = kind_of(&inv, id)?;
        match groups.last_mut() {
            Some((k, g)) if *k == kind => g.push(id),
            _ => groups.push((kind, vec![id])),
        }
    }
    Ok(groups
        .into_iter()
        .map(|(k, ids)| cmd(&[k.noun(), verb], &ids, tail))
        .collect())
}

fn kind_of(inv: &Inventory, id: GuestId) -> Result<GuestKind, Refusal> {
    inv.guest(id).map(|g| g.kind()).ok_or_else(|| {
        Refusal::new(format!(
            "{id} is not defined in phoenix_lxc_configs.json or phoenix_vm_configs.json (config dir {}); the shell tool skipped unknown ids, phx refuses and changes nothing",
            inv.config_dir.display()
        ))
        .hint("`phx status` lists the defined guests")
    })
}
