//! Pre-flight: before anything changes, check that every step of a plan can run: the site
//! scripts it names exist, and the backend can do what each step needs.
//!
//! A backend without container exec (the API backend without `--ssh`) would otherwise create
//! a container and fail at its first in-guest step, and a missing feature script would stop a
//! chain half-way. Checking the whole plan first turns either into one error that lists every
//! problem, with nothing changed. [`Engine::apply`] runs it itself; callers run it earlier to
//! show the problem next to the plan.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{Engine, Plan, Presence, Step};
use crate::backend::Capabilities;
use crate::config::Guest;
use crate::error::{Error, Result};
use crate::types::GuestKind;

/// A capability a step needs, in the words the error uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Need {
    ContainerExec,
    NodeExec,
    RawLxc,
    VmAgent,
}

impl Need {
    fn describe(self) -> &'static str {
        match self {
            Need::ContainerExec => "commands inside containers",
            Need::NodeExec => "commands on the node",
            Need::RawLxc => "raw lxc.* config lines",
            Need::VmAgent => "guest-agent commands inside VMs",
        }
    }

    fn available(self, caps: &Capabilities) -> bool {
        match self {
            Need::ContainerExec => caps.lxc_exec,
            Need::NodeExec => caps.host_exec,
            Need::RawLxc => caps.raw_lxc_config,
            Need::VmAgent => caps.vm_agent,
        }
    }
}

impl Engine {
    /// Refuse a plan with a step that cannot run (a site script it names is missing, or the
    /// backend cannot do what the step needs), naming every such step. Reads nothing from
    /// the cluster; [`Engine::apply`] calls it before its first step.
    pub fn preflight(&self, plan: &Plan) -> Result<()> {
        self.scripts_present(plan)?;
        let caps = self.hv.capabilities();
        let mut missing: BTreeMap<Need, Vec<String>> = BTreeMap::new();
        for gp in &plan.guests {
            let guest = format!("{} {}", gp.kind.proxmox_word(), gp.id);
            for a in &gp.actions {
                for need in needs(&a.step, gp.kind, self.inv.guest(gp.id)) {
                    if !need.available(&caps) {
                        let what = if a.detail.is_empty() {
                            format!("{guest} {}", a.op)
                        } else {
                            format!("{guest} {} {}", a.op, a.detail)
                        };
                        missing.entry(need).or_default().push(what);
                    }
                }
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        let needs: Vec<String> = missing
            .iter()
            .map(|(need, steps)| format!("{} ({})", need.describe(), summarize(steps)))
            .collect();
        Err(Error::Unsupported {
            operation: "this plan",
            backend: self.hv.name(),
            hint: Some(format!(
                "it needs {}; nothing was changed",
                needs.join(", ")
            )),
        })
    }
}

impl Engine {
    /// Every site script the plan will run exists (feature, application and host health-check
    /// scripts). Missing ones are listed with the guest and step that need them.
    fn scripts_present(&self, plan: &Plan) -> Result<()> {
        let mut missing: Vec<String> = Vec::new();
        for gp in &plan.guests {
            let guest = format!("{} {}", gp.kind.proxmox_word(), gp.id);
            let mut needed: Vec<(String, PathBuf)> = Vec::new();
            if gp.presence == Presence::Absent || gp.error.is_some() {
                // its in-guest steps are planned once it exists: every script it names
                needed.extend(self.config_scripts(gp.id));
            }
            for a in &gp.actions {
                match &a.step {
                    Step::RunFeature { script, .. } | Step::RunApplicationScript { script, .. } => {
                        needed.push((a.op.to_string(), script.clone()));
                    }
                    Step::HealthCheck => needed.extend(
                        self.config_scripts(gp.id)
                            .into_iter()
                            .filter(|(op, _)| op == "health-check"),
                    ),
                    _ => {}
                }
            }
            needed.sort();
            needed.dedup();
            for (op, s) in needed.into_iter().filter(|(_, s)| !s.is_file()) {
                missing.push(format!("{guest} {op} needs {}", s.display()));
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        Err(Error::Refused {
            message: format!(
                "{} site script{} the plan runs {} missing: {}; nothing was changed (restore {} under --scripts-dir {}, or fix the config; `phx config validate` lists every script reference)",
                missing.len(),
                if missing.len() == 1 { "" } else { "s" },
                if missing.len() == 1 { "is" } else { "are" },
                missing.join("; "),
                if missing.len() == 1 { "it" } else { "them" },
                self.inv.scripts_dir.display()
            ),
        })
    }
}

impl Engine {
    /// Every site script the config names for a guest, with the step that runs it.
    fn config_scripts(&self, id: crate::types::GuestId) -> Vec<(String, PathBuf)> {
        let mut out = Vec::new();
        match self.inv.guest(id) {
            Some(Guest::Lxc(c)) => {
                for f in &c.features {
                    out.push(("feature".to_string(), self.inv.lxc_feature_script(f)));
                }
                if let Some(app) = &c.application_script {
                    out.push(("app-script".to_string(), self.inv.application_script(app)));
                }
                for h in &c.health_checks {
                    out.push((
                        "health-check".to_string(),
                        self.inv.health_check_script(&h.script),
                    ));
                }
            }
            Some(Guest::Vm(v)) => {
                for f in &v.features {
                    out.push(("feature".to_string(), self.inv.vm_feature_script(f)));
                }
                for h in &v.health_checks {
                    out.push((
                        "health-check".to_string(),
                        self.inv.health_check_script(&h.script),
                    ));
                }
            }
            None => {}
        }
        out
    }
}

/// The capabilities one step needs.
fn needs(step: &Step, kind: GuestKind, guest: Option<Guest<'_>>) -> Vec<Need> {
    let guest_exec = match kind {
        GuestKind::Lxc => Need::ContainerExec,
        GuestKind::Vm => Need::VmAgent,
    };
    match step {
        Step::SetRawLxc { .. } => vec![Need::RawLxc],
        // Container features run on the node (`<script> <CTID>`); VM features via the agent.
        Step::RunFeature { .. } => match kind {
            GuestKind::Lxc => vec![Need::NodeExec],
            GuestKind::Vm => vec![Need::VmAgent],
        },
        Step::RunApplicationScript { .. } => vec![guest_exec],
        Step::CleanTemplate => vec![Need::VmAgent],
        Step::HealthCheck => {
            let mut v = Vec::new();
            let Some(g) = guest else { return v };
            let (in_guest, on_host) = match g {
                Guest::Lxc(c) => (
                    c.health_check.is_some() || c.features.iter().any(|f| f == "nvidia"),
                    !c.health_checks.is_empty(),
                ),
                Guest::Vm(v) => (v.health_check.is_some(), !v.health_checks.is_empty()),
            };
            if in_guest {
                v.push(guest_exec);
            }
            if on_host {
                v.push(Need::NodeExec);
            }
            v
        }
        _ => Vec::new(),
    }
}

/// The first few steps, and how many more.
fn summarize(steps: &[String]) -> String {
    const SHOWN: usize = 3;
    let mut s = steps
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if steps.len() > SHOWN {
        s.push_str(&format!("; and {} more", steps.len() - SHOWN));
    }
    s
}
