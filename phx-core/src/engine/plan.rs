//! Plans: per guest, the ordered actions that bring it to its desired state, each with the
//! reason it is needed. A plan is pure data; only the executor acts on it.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::backend::{
    CloneRequest, ConfigUpdate, DestroyOptions, FirewallOptions, LxcCreate, VmCreate,
};
use crate::types::{DiskSize, FirewallRule, GuestId, GuestKind, NodeName, SnapshotName, StorageId};

/// What a command asks the engine to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// Create missing guests and converge the targets to their config (`phx lxc create`).
    /// With `require_existing`, absent targets are an error (`phx lxc reconfigure`).
    Converge {
        /// Refuse absent targets.
        require_existing: bool,
    },
    /// Converge, then start in boot order every `start_at_boot` guest (`phx up`).
    Up,
    /// Start targets, and their runnable prerequisites first.
    Start,
    /// Stop targets (and, with `with_dependents`, running guests that depend on them, first).
    Stop {
        /// Stop running dependents first.
        with_dependents: bool,
    },
    /// Restart running targets, start stopped ones.
    Restart,
    /// Stop every (or every given) running guest in reverse boot order (`phx down`).
    Down,
    /// Destroy targets, dependents first.
    Delete {
        /// Override the dependents and name-mismatch guards.
        force: bool,
    },
}

/// One change of a config key (for display: `memory 2048 -> 4096`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// Config key.
    pub key: String,
    /// Current value (`None`: absent).
    pub from: Option<String>,
    /// New value (`None`: deleted).
    pub to: Option<String>,
    /// Only takes effect after a restart.
    pub restart: bool,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.from, &self.to) {
            (Some(a), Some(b)) if a.contains('=') && b.contains('=') => {
                write!(f, "{} {}", self.key, crate::propstr::diff_pairs(a, b))?
            }
            (Some(a), Some(b)) => write!(f, "{} {} -> {}", self.key, a, b)?,
            (None, Some(b)) => write!(f, "{} = {}", self.key, b)?,
            (Some(a), None) => write!(f, "{} {} -> (removed)", self.key, a)?,
            (None, None) => write!(f, "{}", self.key)?,
        }
        if self.restart {
            f.write_str(" (restart needed)")?;
        }
        Ok(())
    }
}

/// The executable content of an action.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// Download an OS template from the appliance catalogue.
    DownloadTemplate {
        /// Target storage.
        storage: StorageId,
        /// Template file name.
        template: String,
    },
    /// Download a cloud image.
    DownloadImage {
        /// Target storage.
        storage: StorageId,
        /// Content type (`import` or `iso`).
        content: String,
        /// File name.
        filename: String,
        /// Source URL.
        url: String,
    },
    /// `pct create`.
    CreateLxc(LxcCreate),
    /// `qm create`.
    CreateVm(VmCreate),
    /// `pct clone` / `qm clone`.
    Clone(CloneRequest),
    /// Re-read the new guest and apply whatever its config still needs.
    Converge,
    /// Set/delete config keys.
    SetConfig(ConfigUpdate),
    /// Replace the raw `lxc.*` lines.
    SetRawLxc {
        /// The complete new set of lines.
        lines: Vec<(String, String)>,
    },
    /// Grow a disk.
    Resize {
        /// `rootfs`, `mpN`, `scsi0`.
        disk: String,
        /// New size.
        size: DiskSize,
    },
    /// Set guest firewall options.
    SetFirewallOptions(FirewallOptions),
    /// Replace guest firewall rules.
    SetFirewallRules {
        /// The complete new rule set.
        rules: Vec<FirewallRule>,
    },
    /// Regenerate the cloud-init drive.
    CloudInitUpdate,
    /// Take a snapshot (deleting an existing one of the same name first when `replace`).
    Snapshot {
        /// Name.
        name: SnapshotName,
        /// Description.
        description: String,
        /// Delete an existing snapshot of this name first.
        replace: bool,
    },
    /// Convert into a Proxmox template.
    ConvertToTemplate,
    /// Hard stop (before a change that needs it).
    Stop,
    /// Clean shutdown, hard stop after the timeout.
    Shutdown {
        /// Seconds before the hard stop.
        timeout_secs: u64,
    },
    /// Start (VMs: and wait for the guest agent when configured).
    Start,
    /// Reboot a running guest.
    Reboot,
    /// Destroy.
    Destroy(DestroyOptions),
    /// Run a feature installer: on the node for a container (`<scripts>/lxc_setup/...`),
    /// staged into and run inside a VM (`<scripts>/vm_features/...`).
    RunFeature {
        /// Feature name.
        name: String,
        /// The script on the machine phx runs on.
        script: PathBuf,
    },
    /// Push the application script and the config files into `/tmp/phoenix_run`, run it as
    /// `<script> <CTID>`, clean up.
    RunApplicationScript {
        /// Script name (relative to the scripts dir).
        name: String,
        /// The script file.
        script: PathBuf,
        /// Content fingerprint, recorded when it succeeded.
        fingerprint: String,
    },
    /// Health checks: the in-guest command with retries, host scripts, the NVIDIA driver check.
    HealthCheck,
    /// Record applied features / application script in the guest's description.
    Record {
        /// Features to record as applied (appended to those already recorded).
        features: Vec<String>,
        /// Application script `(name, fingerprint)` to record.
        app: Option<(String, String)>,
    },
    /// Reset cloud-init and the machine id of a template VM before it is converted.
    CleanTemplate,
}

impl Step {
    /// Short operation name for display and JSON (`create`, `set`, `start`, ...).
    pub fn op(&self) -> &'static str {
        match self {
            Step::DownloadTemplate { .. } => "download-template",
            Step::DownloadImage { .. } => "download-image",
            Step::CreateLxc(_) | Step::CreateVm(_) => "create",
            Step::Clone(_) => "clone",
            Step::Converge => "configure",
            Step::SetConfig(_) => "set",
            Step::SetRawLxc { .. } => "set-lxc-raw",
            Step::Resize { .. } => "resize",
            Step::SetFirewallOptions(_) => "firewall-options",
            Step::SetFirewallRules { .. } => "firewall-rules",
            Step::CloudInitUpdate => "cloudinit-update",
            Step::Snapshot { .. } => "snapshot",
            Step::ConvertToTemplate => "template",
            Step::Stop => "stop",
            Step::Shutdown { .. } => "shutdown",
            Step::Start => "start",
            Step::Reboot => "reboot",
            Step::Destroy(_) => "destroy",
            Step::RunFeature { .. } => "feature",
            Step::RunApplicationScript { .. } => "app-script",
            Step::HealthCheck => "health-check",
            Step::Record { .. } => "record",
            Step::CleanTemplate => "clean-template",
        }
    }

    /// Whether this step changes the guest (everything but `Converge`, which only re-reads).
    pub fn mutates(&self) -> bool {
        !matches!(self, Step::Converge)
    }
}

/// One planned action: what, in human words, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Action {
    /// Executable content.
    #[serde(skip)]
    pub step: Step,
    /// Operation name (`create`, `set`, ...).
    pub op: &'static str,
    /// Human detail (`memory 2048 -> 4096`).
    pub detail: String,
    /// Why it is needed (`absent`, `config differs`, `restart needed for features`).
    pub reason: String,
    /// Key-level changes of a `set`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    /// Predicted: shown in the plan, recomputed after the guest is created.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub predicted: bool,
}

impl Action {
    /// An action with a detail and a reason.
    pub fn new(step: Step, detail: impl Into<String>, reason: impl Into<String>) -> Self {
        let op = step.op();
        Self {
            step,
            op,
            detail: detail.into(),
            reason: reason.into(),
            changes: Vec::new(),
            predicted: false,
        }
    }
}

/// The observed state of a guest when the plan was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Presence {
    /// Not on the cluster.
    Absent,
    /// Exists and is stopped.
    Stopped,
    /// Exists and is running.
    Running,
    /// Exists in another state (paused, unknown).
    Other,
}

/// The plan of one guest.
#[derive(Debug, Clone, Serialize)]
pub struct GuestPlan {
    /// Id.
    pub id: GuestId,
    /// Kind.
    pub kind: GuestKind,
    /// Name from the config.
    pub name: String,
    /// Node it is (or will be) on.
    pub node: NodeName,
    /// State when planned.
    pub presence: Presence,
    /// Ordered actions (empty: converged / nothing to do).
    pub actions: Vec<Action>,
    /// Drift phx reports but does not change (read-only keys, unmanaged mount points).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Why this guest cannot be handled (it fails without touching anything).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Started in the boot-order phase (`up`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub boot_start: bool,
    /// The guest is a target of the command (not only a prerequisite).
    pub target: bool,
}

impl GuestPlan {
    /// Whether the guest needs no change.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty() && !self.boot_start && self.error.is_none()
    }
}

/// A whole plan: guests in execution order.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// The operation.
    pub operation: Operation,
    /// Guests in dependency (or teardown) order.
    pub guests: Vec<GuestPlan>,
    /// For `up`: guests to start after converging, in boot order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub boot_order: Vec<GuestId>,
    /// Guests kept running because a dependent runs setup steps inside itself.
    #[serde(skip)]
    pub needed_running: Vec<GuestId>,
    /// Backend reads made while planning.
    #[serde(skip)]
    pub reads: u64,
}

impl Plan {
    /// Number of actions (boot-phase starts included).
    pub fn changes(&self) -> usize {
        self.guests
            .iter()
            .map(|g| g.actions.len() + usize::from(g.boot_start))
            .sum()
    }
    /// Whether nothing would change and nothing is in error.
    pub fn is_empty(&self) -> bool {
        self.guests.iter().all(GuestPlan::is_empty)
    }
    /// The plan of one guest.
    pub fn guest(&self, id: GuestId) -> Option<&GuestPlan> {
        self.guests.iter().find(|g| g.id == id)
    }
}
