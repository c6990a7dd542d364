//! `phx config validate|show|graph|audit`.

use clap::{Args, Subcommand};
use phx_core::config::{AuditFinding, Difference, Severity};
use phx_core::graph::DepGraph;
use phx_core::types::GuestId;
use serde::Serialize;

use crate::context::Ctx;
use crate::error::{EXIT_OK, EXIT_USAGE, usage};

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check the config files: syntax, types and every semantic check
    Validate,
    /// The effective config of one guest, defaults applied (JSON)
    Show {
        /// Guest id
        id: GuestId,
    },
    /// The execution order (prerequisites first)
    Graph(GraphArgs),
    /// Keys phx ignores or applies differently from the Phoenix shell tool (read before switching)
    Audit,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// Only these guests and their prerequisites
    #[arg(value_name = "ID")]
    pub ids: Vec<GuestId>,
    /// Print Graphviz dot instead of the order
    #[arg(long)]
    pub dot: bool,
}

#[derive(Serialize)]
struct ValidateJson<'a> {
    valid: bool,
    containers: usize,
    vms: usize,
    errors: Vec<&'a phx_core::config::Finding>,
    warnings: Vec<&'a phx_core::config::Finding>,
}

pub async fn run(ctx: &mut Ctx, cmd: ConfigCommand) -> anyhow::Result<u8> {
    match cmd {
        ConfigCommand::Validate => {
            let v = ctx.check();
            let code = if v.is_valid() { EXIT_OK } else { EXIT_USAGE };
            if ctx.out.json() {
                ctx.out.json_doc(&ValidateJson {
                    valid: v.is_valid(),
                    containers: v.containers,
                    vms: v.vms,
                    errors: v.errors().collect(),
                    warnings: v.warnings().collect(),
                });
                return Ok(code);
            }
            let (e, w) = (v.errors().count(), v.warnings().count());
            let mut s = format!(
                "{} container{}, {} VM{}: {}, {w} warning{}\n",
                v.containers,
                if v.containers == 1 { "" } else { "s" },
                v.vms,
                if v.vms == 1 { "" } else { "s" },
                if e == 0 {
                    "valid".to_string()
                } else {
                    format!("invalid, {e} error{}", if e == 1 { "" } else { "s" })
                },
                if w == 1 { "" } else { "s" }
            );
            for f in &v.findings {
                let tag = match f.severity {
                    Severity::Error => ctx.out.paint("error", "31;1"),
                    Severity::Warning => ctx.out.paint("warning", "33"),
                };
                s.push_str(&format!("{tag}[{}]: {f}\n", f.check));
            }
            ctx.out.text(&s);
            Ok(code)
        }
        ConfigCommand::Show { id } => {
            let inv = ctx.inventory()?;
            let g = inv.guest(id).ok_or_else(|| {
                usage(format!("{id} is not defined in the config"))
                    .hint("`phx status` lists the defined guests")
            })?;
            ctx.out.json_doc(&g.to_json());
            Ok(EXIT_OK)
        }
        ConfigCommand::Audit => {
            let inv = ctx.inventory()?;
            let findings = phx_core::config::audit(&inv);
            if ctx.out.json() {
                ctx.out.json_doc(&serde_json::json!({
                    "config_dir": inv.config_dir,
                    "findings": findings,
                }));
            } else {
                ctx.out.text(&audit_human(ctx, &findings));
            }
            Ok(EXIT_OK)
        }
        ConfigCommand::Graph(a) => {
            let inv = ctx.inventory()?;
            crate::cmd::check_ids(&inv, None, &a.ids, "graph")?;
            let graph = DepGraph::new(&inv);
            if a.dot {
                ctx.out.text(&graph.to_dot(&inv, &a.ids)?);
                return Ok(EXIT_OK);
            }
            let targets = if a.ids.is_empty() {
                inv.ids()
            } else {
                a.ids.clone()
            };
            let order = graph.order(&targets)?;
            let boot = phx_core::graph::boot_order(&inv, &order);
            if ctx.out.json() {
                ctx.out.json_doc(&serde_json::json!({
                    "order": order,
                    "boot_order": boot,
                    "edges": order.iter().map(|id| serde_json::json!({"id": id, "prerequisites": graph.prerequisites(*id)})).collect::<Vec<_>>(),
                }));
                return Ok(EXIT_OK);
            }
            let mut t = ctx.out.table();
            t.set_header(vec!["#", "ID", "KIND", "NAME", "NEEDS", "BOOT"]);
            for (i, id) in order.iter().enumerate() {
                let Some(g) = inv.guest(*id) else { continue };
                let needs: Vec<String> = graph
                    .prerequisites(*id)
                    .iter()
                    .map(|p| {
                        if g.clone_source() == Some(*p) {
                            format!("{p} (clone)")
                        } else {
                            p.to_string()
                        }
                    })
                    .collect();
                let boot = if g.is_template() {
                    "template".to_string()
                } else {
                    g.boot_order().to_string()
                };
                t.add_row(vec![
                    (i + 1).to_string(),
                    id.to_string(),
                    g.kind().to_string(),
                    g.name().to_string(),
                    needs.join(", "),
                    boot,
                ]);
            }
            ctx.out.text(&format!(
                "{t}\nboot order: {}",
                boot.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
            Ok(EXIT_OK)
        }
    }
}

/// Findings that say the same about one key, grouped: one row per key and text, listing where.
fn audit_human(ctx: &Ctx, findings: &[AuditFinding]) -> String {
    if findings.is_empty() {
        return "nothing in this config behaves differently under phx than under the shell tool"
            .into();
    }
    struct Group<'a> {
        first: &'a AuditFinding,
        places: Vec<String>,
    }
    let file_rank = |f: &AuditFinding| match f.file {
        phx_core::config::LXC_FILE => 0,
        phx_core::config::VM_FILE => 1,
        _ => 2,
    };
    let mut groups: Vec<Group<'_>> = Vec::new();
    for f in findings {
        let place = match (f.guest, f.kind) {
            (Some(id), Some(phx_core::types::GuestKind::Vm)) => format!("VM {id}"),
            (Some(id), _) => format!("CT {id}"),
            (None, _) => "host".to_string(),
        };
        match groups.iter_mut().find(|g| {
            g.first.file == f.file
                && g.first.key == f.key
                && g.first.shell == f.shell
                && g.first.phx == f.phx
        }) {
            Some(g) => {
                if !g.places.contains(&place) {
                    g.places.push(place);
                }
            }
            None => groups.push(Group {
                first: f,
                places: vec![place],
            }),
        }
    }
    groups.sort_by_key(|g| file_rank(g.first));
    let mut t = ctx.out.table();
    t.set_header(vec!["KEY", "WHERE", "CHANGE", "SHELL TOOL DID", "PHX DOES"]);
    for g in &groups {
        t.add_row(vec![
            g.first.key.clone(),
            g.places.join(", "),
            g.first.difference.to_string(),
            g.first.shell.clone(),
            g.first.phx.clone(),
        ]);
    }
    let count = |d: Difference| findings.iter().filter(|f| f.difference == d).count();
    format!(
        "{t}\n{} finding{}: {} now applied, {} changed, {} ignored; `phx config audit -o json` gives the JSON path of each, docs/MIGRATING.md explains the differences",
        findings.len(),
        if findings.len() == 1 { "" } else { "s" },
        count(Difference::NowApplied),
        count(Difference::Changed),
        count(Difference::Ignored),
    )
}
