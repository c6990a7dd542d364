//! Progress on stderr: one live line per running guest on a terminal, plain timestamped lines
//! otherwise, nothing with `-q` or `-o json`.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use phx_core::report::{Event, Outcome, Reporter};
use phx_core::types::GuestId;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Live lines (terminal).
    Bars,
    /// Timestamped lines (pipes, CI).
    Lines,
    /// Nothing.
    Silent,
}

/// The CLI's [`Reporter`].
pub struct Progress {
    mode: Mode,
    /// Print script output live (`-v`).
    stream: bool,
    /// `<logs>/<ID>/<run>.log` files, opened on first output.
    logs: std::path::PathBuf,
    run: String,
    files: Mutex<HashMap<GuestId, Option<std::fs::File>>>,
    multi: MultiProgress,
    bars: Mutex<HashMap<GuestId, (ProgressBar, String)>>,
    names: Mutex<HashMap<GuestId, String>>,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Progress({:?})", self.mode)
    }
}

fn now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    phx_core::util::format_utc(secs)
}

#[allow(clippy::print_stderr)]
fn line(s: &str) {
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "{s}");
}

impl Progress {
    pub fn new(mode: Mode, stream: bool, logs: std::path::PathBuf) -> Self {
        let multi = MultiProgress::with_draw_target(if mode == Mode::Bars {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        let run = now().replace([' ', ':'], "").replacen('-', "", 2);
        Self {
            mode,
            stream,
            logs,
            run,
            files: Mutex::new(HashMap::new()),
            multi,
            bars: Mutex::new(HashMap::new()),
            names: Mutex::new(HashMap::new()),
        }
    }

    /// Append a host step's line to `logs/host/<run>.log`.
    fn log_host(&self, source: &str, line: &str) {
        let dir = self.logs.join("host");
        if std::fs::create_dir_all(&dir).is_err() {
            return;
        }
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(format!("{}.log", self.run)))
        {
            let _ = writeln!(f, "{} [{source}] {line}", now());
        }
    }

    /// Append a script line to the guest's log of this run (`$XDG_STATE_HOME/phx/logs/<ID>/`).
    fn log(&self, id: GuestId, source: &str, line: &str) {
        let mut files = self
            .files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let f = files.entry(id).or_insert_with(|| {
            let dir = self.logs.join(id.to_string());
            std::fs::create_dir_all(&dir).ok()?;
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join(format!("{}.log", self.run)))
                .ok()
        });
        if let Some(f) = f {
            let _ = writeln!(f, "{} [{source}] {line}", now());
        }
    }

    fn label(&self, id: GuestId) -> String {
        let names = self
            .names
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match names.get(&id) {
            Some(n) => format!("{id} {n}"),
            None => id.to_string(),
        }
    }

    /// Learn the guests' names up front (skipped guests never report a start).
    pub fn names(&self, plan: &phx_core::engine::Plan) {
        let mut names = self
            .names
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for g in &plan.guests {
            names.insert(g.id, g.name.clone());
        }
    }

    /// Print a message without tearing the live lines.
    pub fn println(&self, s: &str) {
        match self.mode {
            Mode::Bars => {
                let _ = self.multi.println(s);
            }
            Mode::Lines => line(&format!("{} {s}", now())),
            Mode::Silent => {}
        }
    }
}

impl Progress {
    /// A line of script output at `-v`: through the progress display when there is one, as
    /// a plain stderr line with `--no-progress`.
    fn stream_line(&self, s: &str) {
        if !self.stream {
            return;
        }
        if self.mode == Mode::Silent {
            line(s);
        } else {
            self.println(s);
        }
    }
}

impl Reporter for Progress {
    fn report(&self, e: &Event<'_>) {
        match e {
            Event::HostOutput { source, line: l } => {
                self.log_host(source, l);
                self.stream_line(&format!("host | [{source}] {l}"));
                return;
            }
            Event::HostStepStarted { op, detail } => {
                self.println(&format!("host: {op} {detail}"));
                return;
            }
            Event::HostStepFinished {
                op,
                duration,
                error: Some(err),
            } => {
                self.println(&format!(
                    "host: {op} failed after {:.1}s: {err}",
                    duration.as_secs_f64()
                ));
                return;
            }
            Event::HostStepFinished { .. } => return,
            _ => {}
        }
        if let Event::Output {
            id,
            source,
            line: l,
        } = e
        {
            self.log(*id, source, l);
            self.stream_line(&format!("{} | [{source}] {l}", self.label(*id)));
            return;
        }
        if self.mode == Mode::Silent {
            if let Event::GuestStarted { id, name, .. } = e {
                self.names
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(*id, name.to_string());
            }
            return;
        }
        match e {
            Event::GuestStarted { id, name, .. } => {
                self.names
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(*id, name.to_string());
                if self.mode == Mode::Bars {
                    let pb = self.multi.add(ProgressBar::new_spinner());
                    pb.set_style(
                        ProgressStyle::with_template(
                            "{spinner:.cyan} {prefix:.bold} {wide_msg} {elapsed:>4}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    pb.set_prefix(format!("{id} {name}"));
                    pb.set_message("waiting");
                    pb.enable_steady_tick(Duration::from_millis(120));
                    self.bars
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert(*id, (pb, String::new()));
                }
            }
            Event::StepStarted { id, op, detail } => {
                let msg = if detail.is_empty() {
                    op.to_string()
                } else {
                    format!("{op} {detail}")
                };
                match self.mode {
                    Mode::Bars => {
                        if let Some((pb, last)) = self
                            .bars
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .get_mut(id)
                        {
                            pb.set_message(msg.clone());
                            *last = msg;
                        }
                    }
                    _ => self.println(&format!("{}: {msg}", self.label(*id))),
                }
            }
            Event::StepFinished {
                id,
                op,
                duration,
                error: Some(err),
            } => self.println(&format!(
                "{}: {op} failed after {:.1}s: {err}",
                self.label(*id),
                duration.as_secs_f64()
            )),
            Event::Retry {
                id,
                op,
                attempt,
                delay,
                error,
            } => self.println(&format!(
                "{}: {op} attempt {attempt} failed ({error}); retrying in {:.1}s",
                self.label(*id),
                delay.as_secs_f64()
            )),
            Event::Warning { id, message } => {
                let who = id
                    .map(|i| format!("{}: ", self.label(i)))
                    .unwrap_or_default();
                if self.mode == Mode::Silent {
                    // no progress display (--no-progress, -o json): still on stderr (not with -q)
                    tracing::warn!("{who}{message}");
                } else {
                    self.println(&format!("warning: {who}{message}"));
                }
            }
            Event::GuestFinished { id, outcome } => {
                let word = match outcome {
                    Outcome::Changed => "changed",
                    Outcome::Unchanged => "unchanged",
                    Outcome::Failed => "failed",
                    Outcome::Skipped => "skipped",
                };
                match self.mode {
                    Mode::Bars => {
                        if let Some((pb, _)) = self
                            .bars
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .remove(id)
                        {
                            pb.finish_and_clear();
                            self.multi.remove(&pb);
                        }
                        let mark = match outcome {
                            Outcome::Changed => "✓",
                            Outcome::Unchanged => "·",
                            Outcome::Failed => "✗",
                            Outcome::Skipped => "-",
                        };
                        self.println(&format!("{mark} {} {word}", self.label(*id)));
                    }
                    _ => self.println(&format!("{}: {word}", self.label(*id))),
                }
            }
            _ => {}
        }
    }
}
