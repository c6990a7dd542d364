//! `phx config audit`: every key of a loaded config that phx ignores or acts on differently
//! from the Phoenix shell tool, so an operator switching over knows what changes before the
//! first run.
//!
//! The findings come from the behavioural inventory of the shell tool (`phoenix-cli` at HEAD,
//! with the older `phoenix_orchestrator.sh` noted where it differed) and from what the engine
//! does with the same key. [`audit`] is a pure function of the [`Inventory`]: it reads
//! nothing and reports only keys the config actually sets.

use std::fmt;

use serde::Serialize;

use super::{
    Guest, HYPERVISOR_FILE, Inventory, LxcSource, LxcSpec, PortainerRole, VmSource, VmSpec,
};
use crate::types::{GuestId, GuestKind};

/// How phx's handling of a key differs from the shell tool's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Difference {
    /// The shell tool ignored the key (or broke on it); phx applies it.
    NowApplied,
    /// The shell tool acted on the key; phx does not.
    Ignored,
    /// Both act on the key, differently.
    Changed,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Difference::NowApplied => "now applied",
            Difference::Ignored => "ignored",
            Difference::Changed => "changed",
        })
    }
}

/// One key whose meaning changes when phx replaces the shell tool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditFinding {
    /// The key, relative to its guest or file (`id_maps`, `network_config.nameserver`,
    /// `shared_volumes.firewall`).
    pub key: String,
    /// The guest it belongs to; `None` for the host config.
    pub guest: Option<GuestId>,
    /// Container or VM, with `guest`.
    pub kind: Option<GuestKind>,
    /// The config file.
    pub file: &'static str,
    /// The full JSON path (`lxc_configs."102".id_maps`, `vms[2].boot_order`).
    pub path: String,
    /// What kind of difference.
    pub difference: Difference,
    /// What the shell tool did with it.
    pub shell: String,
    /// What phx does with it.
    pub phx: String,
}

/// Every key of `inv` that phx ignores or interprets differently from the shell tool: guests
/// in id order, then the host config.
pub fn audit(inv: &Inventory) -> Vec<AuditFinding> {
    let mut a = Audit {
        inv,
        out: Vec::new(),
    };
    for g in inv.guests() {
        match g {
            Guest::Lxc(c) => a.container(c),
            Guest::Vm(v) => a.vm(v),
        }
    }
    a.host();
    a.out
}

struct Audit<'a> {
    inv: &'a Inventory,
    out: Vec<AuditFinding>,
}

impl Audit<'_> {
    /// A finding on `key` of guest `id`, at `<guest>.<key>`.
    fn guest(
        &mut self,
        id: GuestId,
        key: &str,
        difference: Difference,
        shell: impl Into<String>,
        phx: impl Into<String>,
    ) {
        self.at(id, key, key, difference, shell.into(), phx.into());
    }

    /// A finding on `key` of guest `id`, at `<guest>.<sub>` (`sub` empty: the guest itself).
    fn at(
        &mut self,
        id: GuestId,
        key: &str,
        sub: &str,
        difference: Difference,
        shell: String,
        phx: String,
    ) {
        let Some(g) = self.inv.guest(id) else { return };
        let (file, base) = match self.inv.location(id) {
            Some((f, p)) => (f, p.to_string()),
            None => match g.kind() {
                GuestKind::Lxc => (super::LXC_FILE, format!("lxc_configs.\"{id}\"")),
                GuestKind::Vm => (super::VM_FILE, format!("vms[vmid={id}]")),
            },
        };
        let path = if sub.is_empty() {
            base
        } else {
            format!("{base}.{sub}")
        };
        self.out.push(AuditFinding {
            key: key.to_string(),
            guest: Some(id),
            kind: Some(g.kind()),
            file,
            path,
            difference,
            shell,
            phx,
        });
    }

    fn host(&mut self) {
        let h = &self.inv.hypervisor;
        let mut push = |key: &str, difference, shell: &str, phx: &str| {
            self.out.push(AuditFinding {
                key: key.to_string(),
                guest: None,
                kind: None,
                file: HYPERVISOR_FILE,
                path: key.to_string(),
                difference,
                shell: shell.to_string(),
                phx: phx.to_string(),
            });
        };
        if let Some(fw) = &h.firewall {
            let shell = if fw.found_at == "shared_volumes.firewall" {
                "c6672e0 read `.firewall` (absent) and ran `pve-firewall stop` on every setup; HEAD read it here and rewrote cluster.fw with the global rules plus every rule of every container and VM"
            } else {
                "HEAD read only `shared_volumes.firewall`, so a top-level `firewall` was never applied; c6672e0 read it but called the non-existent `pve-firewall set`"
            };
            push(
                &fw.found_at,
                Difference::Changed,
                shell,
                "sets the cluster firewall's enable flag and default policies and replaces its rules with global_firewall_rules when they differ; guest rules stay on their guests",
            );
        }
        if h.zfs.as_ref().is_some_and(|z| z.allow_destructive) {
            push(
                "zfs.settings.allow_destructive_operations",
                Difference::Ignored,
                "forced the ZFS step into force-destructive mode (wiping disks that carry ZFS labels)",
                "destructive host steps need `phx hypervisor setup --allow-destructive` on the command line; the config cannot turn it on",
            );
        }
        if h.zfs.as_ref().is_some_and(|z| !z.datasets.is_empty()) {
            push(
                "zfs.datasets",
                Difference::Changed,
                "HEAD's ZFS step registered each dataset as a storage and removed (`pvesm remove`) every other storage except local, local-lvm and local-zfs, including the nfs-* storages and any added by hand",
                "adds the missing storages and fixes their content types; removes a storage only when named with `--prune` (the site's own hypervisor_feature_setup_zfs.sh, if present, still runs as a host step)",
            );
        }
        if h.nvidia_driver.as_ref().is_some_and(|n| n.install) {
            push(
                "nvidia_driver",
                Difference::Changed,
                "the driver step rebooted the node in the middle of setup; the operator had to run setup again",
                "runs the site's hypervisor_feature_install_nvidia.sh with --no-reboot; a host step that exits 100 stops setup and asks for a reboot, and the next run continues after it",
            );
        }
        if !h.tests.is_empty() {
            push(
                "tests",
                Difference::NowApplied,
                "never read",
                "`phx hypervisor test` runs these suites on the node, after its built-in checks",
            );
        }
        if h.informational.contains_key("core_paths") {
            push(
                "core_paths",
                Difference::Ignored,
                "the dispatcher routed ids with core_paths.lxc_config_file and vm_config_file (the managers still used the fixed /usr/local/phoenix_hypervisor/etc paths)",
                "reads every file from the config dir (-C/--config-dir, PHX_CONFIG_DIR); core_paths has no effect",
            );
        }
        if h.portainer_api.is_some() {
            push(
                "portainer_api",
                Difference::Ignored,
                "`phoenix sync all` logged into Portainer with it to deploy stacks",
                "phx has no sync command; run the site's Portainer tooling yourself",
            );
        }
        for k in h.extra.keys() {
            push(
                k,
                Difference::Ignored,
                "available to any script that queried it",
                "unknown key: kept, reported by `phx config validate`, no effect",
            );
        }
    }

    fn container(&mut self, c: &LxcSpec) {
        let id = c.id;
        if !c.id_maps.is_empty() {
            self.guest(
                id,
                "id_maps",
                Difference::NowApplied,
                "deleted every lxc.idmap line and wrote only the default `u 0 100000 65536` / `g 0 100000 65536`: the listed maps were never applied",
                "writes the listed maps as lxc.idmap lines and maps the rest of 0..65536 at the default offset 100000",
            );
        }
        if c.swap_mb.is_some() {
            self.guest(
                id,
                "swap_mb",
                Difference::NowApplied,
                "never read",
                "sets the container's swap",
            );
        }
        if c.health_check.is_some() {
            self.guest(
                id,
                "health_check",
                Difference::NowApplied,
                "ignored at HEAD (c6672e0 ran the command with `pct exec` after every create)",
                "runs the command inside the container as argv (no shell), `retries` times `interval` s apart, whenever the container changed; a failure fails the container",
            );
        }
        if !c.health_checks.is_empty() {
            self.guest(
                id,
                "health_checks",
                Difference::Changed,
                "`eval bin/health_checks/<script> <args>` on the node (through a shell) after every create",
                "runs <scripts-dir>/health_checks/<script> with its args as argv (never through a shell) whenever the container changed",
            );
        }
        if !c.tests.is_empty() {
            self.guest(
                id,
                "tests",
                Difference::Changed,
                "never run at HEAD (c6672e0 ran every suite after each create)",
                "runs them on demand: `phx lxc test <ID> [--suite NAME]`, never during create",
            );
        }
        if !c.features.is_empty() {
            self.guest(
                id,
                "features",
                Difference::Changed,
                "re-ran every feature script on every create/converge as `<script> <CTID> <bootstrap_ca_url or \"\">` (the always-present 2nd argument made scripts that take one argument fail)",
                "runs each feature once as `<script> <CTID>` (bootstrap_ca_url in PHX_BOOTSTRAP_CA_URL) and records it in the guest's description so a re-run skips it; `--rerun-features` forces",
            );
            for (i, f) in c.features.iter().enumerate() {
                if self.inherited(id).contains(f) {
                    self.at(
                        id,
                        "features",
                        &format!("features[{i}]"),
                        Difference::Changed,
                        "ran it again on the clone".into(),
                        "does not run it: a container this one is cloned from lists it, so the clone's disk already has it".into(),
                    );
                }
            }
        }
        if c.application_script.is_some() {
            self.guest(
                id,
                "application_script",
                Difference::Changed,
                "re-ran the script on every create (CT 101 twice), after pushing site-specific extra files for CTs 101 and 102",
                "pushes the script, phoenix_hypervisor_common_utils.sh and the three config files into /tmp/phoenix_run and runs it once per script content (fingerprint in the description); no site-specific extras",
            );
        }
        match c.apparmor_profile.as_deref() {
            Some("unconfined") => self.guest(
                id,
                "apparmor_profile",
                Difference::Changed,
                "deleted the lxc.apparmor.profile line (lxc_options could then append one verbatim)",
                "writes `lxc.apparmor.profile: unconfined` as one of the container's managed lxc.* lines",
            ),
            Some(_) => self.guest(
                id,
                "apparmor_profile",
                Difference::Changed,
                "copied etc/apparmor/<profile> to /etc/apparmor.d, set the lxc.apparmor.profile line (appending the nesting lines again on every run) and reloaded AppArmor",
                "writes the lxc.apparmor.profile (and nesting) lines once; the profile must already be loaded on the node (e.g. by the site's hypervisor_feature_setup_apparmor step); phx copies and reloads nothing",
            ),
            None => {}
        }
        if !c.lxc_options.is_empty() {
            self.guest(
                id,
                "lxc_options",
                Difference::Changed,
                "appended each item verbatim to /etc/pve/lxc/<CTID>.conf when not already there; never removed one",
                "writes each item as a `key: value` lxc.* line (`key=value` accepted, lxc.cap.keep split per capability) and replaces the container's whole set of lxc.* lines with the configured ones (apparmor_profile wins over an lxc.apparmor.profile item)",
            );
        }
        if !c.gpu_assignment.is_empty() {
            self.guest(
                id,
                "gpu_assignment",
                Difference::Changed,
                "allowed the nvidia-uvm devices with the hard-coded major 243, appending the lines on every run",
                "allows major 195 and the nvidia-uvm major read from the node's /proc/devices, and bind-mounts nvidiactl, nvidia-uvm, nvidia-uvm-tools and each nvidia<N>, once",
            );
        }
        if !c.mount_points.is_empty() {
            self.guest(
                id,
                "mount_points",
                Difference::Changed,
                "created each host_path (`mkdir -p`) and ran `chown -R 100000+owner_uid:100000+owner_gid` on it",
                "only adds the bind mount (matched by its path in the container): the host directory must exist, owner_uid/owner_gid are not applied",
            );
        }
        if !c.volumes.is_empty() {
            self.guest(
                id,
                "volumes",
                Difference::Changed,
                "allocated `volumes` from mp0 on every run, over the mount points zfs_volumes had just taken",
                "matches each volume to an mpN by its mount point; a new one takes the first free mpN; sizes grow, never shrink",
            );
        }
        if c.enable_lifecycle_snapshots {
            self.guest(
                id,
                "enable_lifecycle_snapshots",
                Difference::Changed,
                "deleted and re-took pre-configured and final-form on every create",
                "re-takes them only when the container changed or ran features or scripts",
            );
        }
        if let Some(fw) = &c.firewall
            && fw.enabled
        {
            self.guest(
                id,
                "firewall",
                Difference::Changed,
                "deleted every rule with pvesh and created them again on every create (a failure left a partial rule set), never set the guest's firewall options, and copied the rules into cluster.fw",
                "enables the guest firewall and replaces its rules only when they differ; the rules stay on the container, not in the cluster firewall",
            );
        }
        if c.template_snapshot_name.is_some() && !c.start_at_boot {
            self.guest(
                id,
                "template_snapshot_name",
                Difference::Changed,
                "LetsGo and `start`/`stop` of a dependent started and stopped it too",
                "treats it as a template (a clone source not started at boot): `up`, and `start` of its clones, never start it",
            );
        }
        if c.portainer_role.is_some_and(|r| r != PortainerRole::None) {
            self.guest(
                id,
                "portainer_role",
                Difference::Ignored,
                "c6672e0 ran lxc_setup/phoenix_hypervisor_feature_install_portainer.sh after the features (HEAD did nothing with it)",
                "no effect; list `portainer` in features to run that script",
            );
        }
        if c.trigger_sync_on_completion {
            self.guest(
                id,
                "trigger_sync_on_completion",
                Difference::Ignored,
                "LetsGo ran `portainer-manager.sh sync all` after starting the guest (and crashed doing so)",
                "no effect: phx has no sync command",
            );
        }
        for k in c.extra.keys() {
            self.guest(
                id,
                k,
                Difference::Ignored,
                "available to any script that queried it",
                "unknown key: kept, reported by `phx config validate`, no effect",
            );
        }
    }

    fn vm(&mut self, v: &VmSpec) {
        let id = v.id;
        if v.boot_order.is_some() {
            self.guest(
                id,
                "boot_order",
                Difference::NowApplied,
                "set `--startup order=`, but LetsGo started every VM last (as if boot_order were 999)",
                "`phx up` starts containers and VMs together in boot_order",
            );
        }
        if let Some(gib) = v.disk_size_gb {
            let shell = "ignored at HEAD (clones kept the source's disk; a template was resized to a fixed 32G)";
            let phx = "grows the boot disk (scsi0) to disk_size_gb; never shrinks it".to_string();
            if self.inv.vm_defaults.disk_size_gb == Some(gib) {
                // the VM's own key or the default: the same value either way
                self.out.push(AuditFinding {
                    key: "disk_size_gb".into(),
                    guest: Some(id),
                    kind: Some(GuestKind::Vm),
                    file: super::VM_FILE,
                    path: "vm_defaults.disk_size_gb".into(),
                    difference: Difference::NowApplied,
                    shell: shell.into(),
                    phx,
                });
            } else {
                self.guest(id, "disk_size_gb", Difference::NowApplied, shell, phx);
            }
        }
        // The shell tool set the hard-coded 10.0.0.13 whatever the config said; only a
        // config that says something else changes anything.
        const HARD_CODED: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 0, 0, 13);
        if let Some(n) = &v.network
            && n.nameservers != [HARD_CODED]
        {
            let phx = if n.nameservers.is_empty() {
                "sets no nameserver: cloud-init uses the node's DNS settings"
            } else {
                "sets the configured nameserver(s)"
            };
            self.at(
                id,
                "network_config.nameserver",
                "network_config",
                Difference::NowApplied,
                "always set the hard-coded nameserver 10.0.0.13, whatever the config said".into(),
                phx.into(),
            );
        }
        if v.template_snapshot_name.is_some() {
            self.guest(
                id,
                "template_snapshot_name",
                Difference::NowApplied,
                "ignored at HEAD",
                "takes the snapshot once at the end of creation; clones of a VM that is not a Proxmox template start from it",
            );
        }
        if v.snapshots.post_features.is_some() {
            self.guest(
                id,
                "snapshots.post-features",
                Difference::Changed,
                "taken once, never replaced",
                "re-taken after every run of features",
            );
        }
        if let VmSource::CloudImage { .. } = v.source {
            self.guest(
                id,
                "template_image",
                Difference::Changed,
                "downloaded the image to /tmp on every create, installed qemu-guest-agent and nfs-common into it with virt-customize, and imported it with qm importdisk",
                "downloads it once into a storage with import (or iso) content and creates the VM with import-from; the image is not modified, so the guest agent must come with the image or cloud-init",
            );
        }
        if !v.features.is_empty() {
            self.guest(
                id,
                "features",
                Difference::Changed,
                "staged the scripts on the VM's first NFS volume and re-ran every feature on every create (fatal without an NFS volume)",
                "writes each script into /tmp/phoenix_features through the guest agent and runs `bash <script> <VMID>` once per feature (recorded in the description); `--rerun-features` forces",
            );
        }
        if !v.volumes.is_empty() {
            self.guest(
                id,
                "volumes",
                Difference::Ignored,
                "mounted each NFS volume inside the VM (an /etc/fstab line and `mount -a`)",
                "no effect: mount NFS in a feature script",
            );
        }
        if !v.docker_stacks.is_empty() {
            self.guest(
                id,
                "docker_stacks",
                Difference::Ignored,
                "added each stack's production firewall_rules to the VM's firewall and deployed the stacks through `phoenix sync`",
                "no effect: list the rules under firewall.rules; phx has no sync command",
            );
        }
        match &v.firewall {
            Some(fw) if fw.enabled => self.guest(
                id,
                "firewall",
                Difference::Changed,
                "overwrote /etc/pve/firewall/<VMID>.fw on every create, restarted pve-firewall, and copied the rules into cluster.fw",
                "enables the guest firewall and replaces its rules only when they differ; the rules stay on the VM",
            ),
            Some(_) => self.guest(
                id,
                "firewall",
                Difference::Changed,
                "ran `qm set --firewall 0`, which qm rejects, so create failed",
                "turns the firewall off on net0 and in the VM's firewall options",
            ),
            None => {}
        }
        if v.health_check.is_some() {
            self.guest(
                id,
                "health_check",
                Difference::NowApplied,
                "never run for VMs",
                "runs the command through the guest agent as argv, `retries` times `interval` s apart, whenever the VM changed",
            );
        }
        if !v.health_checks.is_empty() {
            self.guest(
                id,
                "health_checks",
                Difference::NowApplied,
                "never run for VMs",
                "runs <scripts-dir>/health_checks/<script> with its args on the node whenever the VM changed",
            );
        }
        if !v.tests.is_empty() {
            self.guest(
                id,
                "tests",
                Difference::NowApplied,
                "never run for VMs",
                "runs them on demand through the guest agent: `phx vm test <ID> [--suite NAME]`",
            );
        }
        if v.portainer_role.is_some_and(|r| r != PortainerRole::None) {
            self.guest(
                id,
                "portainer_role",
                Difference::Ignored,
                "`phoenix sync all` deployed the Portainer server or agent by role",
                "no effect: phx has no sync command",
            );
        }
        if v.trigger_sync_on_completion {
            self.guest(
                id,
                "trigger_sync_on_completion",
                Difference::Ignored,
                "LetsGo ran `portainer-manager.sh sync all` after starting the guest (and crashed doing so)",
                "no effect: phx has no sync command",
            );
        }
        for k in v.extra.keys() {
            self.guest(
                id,
                k,
                Difference::Ignored,
                "available to any script that queried it",
                "unknown key: kept, reported by `phx config validate`, no effect",
            );
        }
    }

    /// The features of the containers `id` is (transitively) cloned from.
    fn inherited(&self, id: GuestId) -> Vec<String> {
        let mut have = Vec::new();
        let mut seen = vec![id];
        let mut cur = self.inv.lxc.get(&id).and_then(LxcSpec::clone_source);
        while let Some(src) = cur {
            if seen.contains(&src) {
                break;
            }
            seen.push(src);
            let Some(s) = self.inv.lxc.get(&src) else {
                break;
            };
            have.extend(s.features.iter().cloned());
            cur = match &s.source {
                LxcSource::Clone { from } => Some(*from),
                LxcSource::Template { .. } => None,
            };
        }
        have
    }
}
