//! Pre-flight: before anything changes, check that the backend can do every step of a plan.
//!
//! A backend without container exec (the API backend without `--ssh`) would otherwise create
//! a container and fail at its first in-guest step, leaving it half set up. Checking the whole
//! plan first turns that into one error that lists every step the backend cannot run.

use std::collections::BTreeMap;

use super::{Engine, Plan, Step};
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
    /// Refuse a plan that contains a step the backend cannot run, before any step runs.
    pub(super) fn preflight(&self, plan: &Plan) -> Result<()> {
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
