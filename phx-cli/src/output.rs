//! Everything phx prints on stdout goes through here: tables, plans, results, JSON.

use std::io::{IsTerminal, Write};

use comfy_table::{ContentArrangement, Table, presets};
use phx_core::engine::{GuestPlan, Plan, Presence, RunResult, Step};
use phx_core::report::Outcome;
use serde::Serialize;

use crate::cli::{ColorChoice, OutputFormat};

static OUTPUT_FAILED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether a result could not be written (the run must not exit 0).
pub fn output_failed() -> bool {
    OUTPUT_FAILED.load(std::sync::atomic::Ordering::Relaxed)
}

/// The stdout side of a run.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// Human or JSON.
    pub format: OutputFormat,
    /// Whether to colour.
    pub color: bool,
}

impl Output {
    pub fn new(format: OutputFormat, color: ColorChoice) -> Self {
        let color = match color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
            }
        };
        Self { format, color }
    }

    pub fn json(&self) -> bool {
        self.format == OutputFormat::Json
    }

    /// Print text to stdout (a closed pipe is not an error).
    #[allow(clippy::print_stdout)]
    pub fn text(&self, s: &str) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(s.as_bytes());
        if !s.ends_with('\n') {
            let _ = out.write_all(b"\n");
        }
        let _ = out.flush();
    }

    /// Print one JSON document to stdout.
    pub fn json_doc<T: Serialize>(&self, v: &T) {
        match serde_json::to_string_pretty(v) {
            Ok(s) => self.text(&s),
            Err(e) => {
                // a bug in phx, not in the input: make sure the run does not look successful
                OUTPUT_FAILED.store(true, std::sync::atomic::Ordering::Relaxed);
                tracing::error!(
                    "cannot write the JSON result ({e}); this is a bug in phx, please report it"
                );
            }
        }
    }

    pub fn table(&self) -> Table {
        let mut t = Table::new();
        t.load_preset(if self.color {
            presets::UTF8_FULL_CONDENSED
        } else {
            presets::ASCII_FULL_CONDENSED
        });
        t.set_content_arrangement(ContentArrangement::Dynamic);
        if !std::io::stdout().is_terminal() {
            t.set_width(160);
        }
        t
    }

    pub fn paint(&self, s: &str, code: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
}

/// The sigil of a guest plan: `+` create, `-` destroy, `~` change, `!` error.
fn sigil(g: &GuestPlan) -> &'static str {
    if g.error.is_some() {
        "!"
    } else if g.actions.iter().any(|a| matches!(a.step, Step::Destroy(_))) {
        "-"
    } else if g.presence == Presence::Absent {
        "+"
    } else {
        "~"
    }
}

/// A plan as a readable diff: one line per change, with reasons.
pub fn plan_human(out: &Output, plan: &Plan) -> String {
    let mut s = String::new();
    for g in &plan.guests {
        if g.is_empty() && g.notes.is_empty() {
            continue;
        }
        let sig = sigil(g);
        let head = format!("{sig} {} {}", g.id, g.name);
        let head = match sig {
            "+" => out.paint(&head, "32"),
            "-" => out.paint(&head, "31"),
            "!" => out.paint(&head, "31;1"),
            _ => out.paint(&head, "33"),
        };
        if let Some(e) = &g.error {
            s.push_str(&format!("{head}: cannot proceed: {e}\n"));
        }
        for a in &g.actions {
            let then = if a.predicted { "then " } else { "" };
            if matches!(a.step, Step::Converge) {
                continue;
            }
            if !a.changes.is_empty() {
                for c in &a.changes {
                    s.push_str(&format!("{head}: {then}{c}\n"));
                }
                continue;
            }
            let detail = if a.detail.is_empty() {
                String::new()
            } else {
                format!(" {}", a.detail)
            };
            s.push_str(&format!("{head}: {then}{}{detail} ({})\n", a.op, a.reason));
        }
        if g.boot_start {
            s.push_str(&format!(
                "{head}: start (start_at_boot, boot order {})\n",
                plan.boot_order
                    .iter()
                    .position(|i| *i == g.id)
                    .map_or(0, |p| p + 1)
            ));
        }
        for n in &g.notes {
            s.push_str(&format!("{head}: note: {n}\n"));
        }
    }
    let changed = plan.guests.iter().filter(|g| !g.is_empty()).count();
    if changed == 0 {
        s.push_str("No changes: every guest matches its config.\n");
    } else {
        s.push_str(&format!(
            "{} change{} in {changed} guest{}.\n",
            plan.changes(),
            if plan.changes() == 1 { "" } else { "s" },
            if changed == 1 { "" } else { "s" }
        ));
    }
    s
}

#[derive(Serialize)]
struct PlanJson<'a> {
    changes: usize,
    guests: Vec<GuestPlanJson<'a>>,
}

#[derive(Serialize)]
struct GuestPlanJson<'a> {
    id: u32,
    kind: phx_core::types::GuestKind,
    name: &'a str,
    node: &'a str,
    presence: &'a Presence,
    actions: Vec<serde_json::Value>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    notes: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

/// The plan as JSON: `{"changes":N,"guests":[{"id","kind","actions":[{"op","detail","reason"}]}]}`.
pub fn plan_json(plan: &Plan) -> serde_json::Value {
    let guests = plan
        .guests
        .iter()
        .map(|g| {
            let mut actions: Vec<serde_json::Value> = g.actions.iter().filter(|a| !matches!(a.step, Step::Converge)).filter_map(|a| serde_json::to_value(a).ok()).collect();
            if g.boot_start {
                actions.push(serde_json::json!({"op": "start", "detail": "", "reason": "start_at_boot (boot order)"}));
            }
            GuestPlanJson { id: g.id.get(), kind: g.kind, name: &g.name, node: g.node.as_str(), presence: &g.presence, actions, notes: &g.notes, error: g.error.as_deref() }
        })
        .collect();
    serde_json::to_value(PlanJson {
        changes: plan.changes(),
        guests,
    })
    .unwrap_or_default()
}

/// The result of a mutating command, for people.
pub fn result_human(out: &Output, r: &RunResult) -> String {
    let mut s = String::new();
    let mut t = out.table();
    t.set_header(vec!["OUTCOME", "ID", "KIND", "NAME", "ACTIONS / ERROR"]);
    for g in &r.guests {
        let what = match (&g.error, g.actions.is_empty()) {
            (Some(e), _) => e.clone(),
            (None, true) => String::new(),
            (None, false) => g
                .actions
                .iter()
                .map(|a| a.op)
                .collect::<Vec<_>>()
                .join(", "),
        };
        let outcome = match g.outcome {
            Outcome::Changed => out.paint("changed", "32"),
            Outcome::Unchanged => "unchanged".into(),
            Outcome::Failed => out.paint("failed", "31;1"),
            Outcome::Skipped => out.paint("skipped", "33"),
        };
        t.add_row(vec![
            outcome,
            g.id.to_string(),
            g.kind.to_string(),
            g.name.clone(),
            what,
        ]);
    }
    if !r.guests.is_empty() {
        s.push_str(&t.to_string());
        s.push('\n');
    }
    for g in &r.guests {
        for n in &g.notes {
            s.push_str(&format!("note: {} {}: {n}\n", g.id, g.name));
        }
    }
    s.push_str(&summary_line(r));
    s
}

/// `3 changed, 9 unchanged, 0 failed`.
pub fn summary_line(r: &RunResult) -> String {
    let mut line = format!(
        "{} changed, {} unchanged, {} failed",
        r.count(Outcome::Changed),
        r.count(Outcome::Unchanged),
        r.count(Outcome::Failed)
    );
    let skipped = r.count(Outcome::Skipped);
    if skipped > 0 {
        line.push_str(&format!(", {skipped} skipped"));
    }
    if r.cancelled {
        line.push_str(" (interrupted)");
    }
    line.push('\n');
    line
}

#[derive(Serialize)]
struct ResultJson<'a> {
    result: &'a str,
    guests: &'a [phx_core::engine::GuestResult],
    stats: &'a phx_core::engine::Stats,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    interrupted: bool,
}

/// `{"result":"ok|partial|failed","guests":[...],"stats":{...}}`.
pub fn result_json(r: &RunResult) -> serde_json::Value {
    let result = r.result();
    serde_json::to_value(ResultJson {
        result,
        guests: &r.guests,
        stats: &r.stats,
        interrupted: r.cancelled,
    })
    .unwrap_or_default()
}
