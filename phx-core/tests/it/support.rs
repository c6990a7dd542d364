//! Helpers shared by the config tests: the Phoenix fixtures, config directories written from
//! JSON text, and a stable text rendering of findings for snapshots.

use std::collections::BTreeMap;
use std::path::Path;

use phx_core::config::{
    ConfigError, Finding, HYPERVISOR_FILE, Inventory, LXC_FILE, LoadOptions, Severity, VM_FILE,
    Validation,
};
use serde_json::Value;
use tempfile::TempDir;

pub use phx_testkit::fixtures::{phoenix_fixtures, pve_samples};

/// A config directory holding the `.c6672e0` fixture set under the standard file names.
pub fn c6672e0_dir(fixtures: &Path) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in [HYPERVISOR_FILE, LXC_FILE, VM_FILE] {
        let old = name.replace(".json", ".c6672e0.json");
        std::fs::copy(fixtures.join(&old), dir.path().join(name)).unwrap();
    }
    dir
}

/// One finding per line: severity, check, file, JSON path, message.
pub fn render_findings<'a>(findings: impl IntoIterator<Item = &'a Finding>) -> String {
    let lines: Vec<String> = findings
        .into_iter()
        .map(|f| {
            let severity = match f.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            let path = if f.path.is_empty() { "(file)" } else { &f.path };
            format!("{severity} [{}] {} {path}: {}", f.check, f.file, f.message)
        })
        .collect();
    if lines.is_empty() {
        "(no findings)".into()
    } else {
        lines.join("\n")
    }
}

/// A config directory described as JSON text per file, written to a temporary directory.
#[derive(Debug, Clone)]
pub struct Case {
    files: BTreeMap<&'static str, String>,
    scripts: Vec<&'static str>,
}

/// A small valid site: template CT 900, its clones 102 (depends on 103) and 103, template VM
/// 9000 and its clone 1001 (depends on CT 102).
const HYPERVISOR: &str = r#"{"domain_name":"lab.internal",
 "network":{"interfaces":{"name":"vmbr0","address":"10.0.0.13/24","gateway":"10.0.0.1","dns_nameservers":"10.0.0.1"}},
 "portainer_api":{"admin_user":"admin","admin_password":"base-s3cret-pw","portainer_hostname":"portainer.lab.internal"}}"#;

const LXC: &str = r#"{"lxc_configs":{
 "900":{"name":"base","template":"local:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst","template_snapshot_name":"final-form",
        "memory_mb":1024,"cores":1,"storage_pool":"local-lvm","storage_size_gb":8,"unprivileged":true,
        "network_config":{"name":"eth0","bridge":"vmbr0","ip":"10.0.0.200/24","gw":"10.0.0.1"},"mac_address":"52:54:00:AA:BB:CC"},
 "102":{"name":"traefik","clone_from_ctid":"900","dependencies":["103"],"memory_mb":2048,"cores":2,"storage_pool":"local-lvm",
        "storage_size_gb":16,"network_config":{"name":"eth0","bridge":"vmbr0","ip":"10.0.0.12/24","gw":"10.0.0.1"},
        "mac_address":"52:54:00:AA:BB:CB","portainer_role":"none",
        "firewall":{"enabled":true,"rules":[{"type":"in","action":"ACCEPT","proto":"tcp","port":"80,443"}]}},
 "103":{"name":"step-ca","clone_from_ctid":"900","memory_mb":1024,"cores":1,"storage_pool":"local-lvm","storage_size_gb":8,
        "network_config":{"name":"eth0","bridge":"vmbr0","ip":"10.0.0.10/24","gw":"10.0.0.1"},"mac_address":"52:54:00:AA:BB:CA"}}}"#;

const VM: &str = r#"{"vm_defaults":{"cores":2,"memory_mb":4096,"storage_pool":"local-lvm","network_bridge":"vmbr0"},
 "vms":[{"vmid":9000,"name":"cloud-template","is_template":true,"template_image":"noble-server-cloudimg-amd64.img","network_config":{"ip":"dhcp"}},
        {"vmid":1001,"name":"portainer","clone_from_vmid":9000,"dependencies":["102"],"network_config":{"ip":"10.0.0.111/24","gw":"10.0.0.1"}}]}"#;

impl Case {
    /// The valid base site.
    pub fn valid() -> Self {
        let files = [
            (HYPERVISOR_FILE, HYPERVISOR),
            (LXC_FILE, LXC),
            (VM_FILE, VM),
        ]
        .into_iter()
        .map(|(name, text)| (name, text.to_string()))
        .collect();
        Self {
            files,
            scripts: Vec::new(),
        }
    }

    /// Edit the LXC file's JSON.
    pub fn lxc(self, edit: impl FnOnce(&mut Value)) -> Self {
        self.edit(LXC_FILE, edit)
    }

    /// Edit the VM file's JSON.
    pub fn vm(self, edit: impl FnOnce(&mut Value)) -> Self {
        self.edit(VM_FILE, edit)
    }

    /// Edit the hypervisor file's JSON.
    pub fn hypervisor(self, edit: impl FnOnce(&mut Value)) -> Self {
        self.edit(HYPERVISOR_FILE, edit)
    }

    fn edit(mut self, file: &'static str, edit: impl FnOnce(&mut Value)) -> Self {
        let mut v: Value = serde_json::from_str(&self.files[file]).unwrap();
        edit(&mut v);
        self.files.insert(file, serde_json::to_string(&v).unwrap());
        self
    }

    /// Replace a file's text as is.
    pub fn text(mut self, file: &'static str, text: &str) -> Self {
        self.files.insert(file, text.to_string());
        self
    }

    /// A file's text.
    pub fn file(&self, file: &'static str) -> String {
        self.files[file].clone()
    }

    /// Leave a file out.
    pub fn without(mut self, file: &'static str) -> Self {
        self.files.remove(file);
        self
    }

    /// Create these scripts (paths relative to the scripts dir) and check scripts against it.
    pub fn with_scripts(mut self, scripts: &[&'static str]) -> Self {
        self.scripts = scripts.to_vec();
        self
    }

    /// Write the files (and scripts) into `<tmp>/etc` (and `<tmp>/bin`).
    fn write(&self) -> (TempDir, LoadOptions) {
        let tmp = tempfile::tempdir().unwrap();
        let etc = tmp.path().join("etc");
        std::fs::create_dir(&etc).unwrap();
        for (name, text) in &self.files {
            std::fs::write(etc.join(name), text).unwrap();
        }
        let mut opts = LoadOptions::new(&etc);
        if !self.scripts.is_empty() {
            let bin = tmp.path().join("bin");
            for script in &self.scripts {
                let p = bin.join(script);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(p, "#!/bin/sh\n").unwrap();
            }
            opts.scripts_dir = Some(bin);
        }
        (tmp, opts)
    }

    /// Check the directory, which lives as long as the result.
    pub fn check(&self) -> Checked {
        let (tmp, opts) = self.write();
        let validation = Inventory::check(&opts);
        Checked { tmp, validation }
    }

    /// Load the directory, which must fail: the error's Display and its findings, for a
    /// snapshot.
    pub fn rejection(&self) -> String {
        let (tmp, opts) = self.write();
        let err: ConfigError = Inventory::load(&opts).expect_err("the config should be rejected");
        assert!(
            !err.errors.is_empty(),
            "a rejection names at least one error"
        );
        assert!(err.errors.iter().all(|f| f.severity == Severity::Error));
        let text = format!("{err}\n---\n{}", render_findings(&err.errors));
        normalise(&text, tmp.path())
    }
}

/// A checked case, keeping its directory alive.
#[derive(Debug)]
pub struct Checked {
    tmp: TempDir,
    /// What the check found.
    pub validation: Validation,
}

impl Checked {
    /// The inventory of a valid config.
    pub fn inventory(&self) -> &Inventory {
        let rendered = render_findings(&self.validation.findings);
        self.validation
            .inventory
            .as_ref()
            .unwrap_or_else(|| panic!("config is invalid:\n{rendered}"))
    }

    /// Every finding, temp paths replaced by `[TMP]`.
    pub fn findings(&self) -> String {
        normalise(&render_findings(&self.validation.findings), self.tmp.path())
    }
}

fn normalise(text: &str, tmp: &Path) -> String {
    text.replace(&tmp.display().to_string(), "[TMP]")
}

/// Set the value at a JSON pointer, creating the last key.
pub fn set(root: &mut Value, pointer: &str, value: Value) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    match root.pointer_mut(parent) {
        Some(Value::Object(m)) => {
            m.insert(unescape(key), value);
        }
        Some(Value::Array(a)) => a[key.parse::<usize>().unwrap()] = value,
        other => panic!("{parent} is not an object or array: {other:?}"),
    }
}

/// Remove the key at a JSON pointer.
pub fn remove(root: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let removed = root
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .and_then(|m| m.remove(&unescape(key)));
    assert!(removed.is_some(), "{pointer} does not exist");
}

fn unescape(key: &str) -> String {
    key.replace("~1", "/").replace("~0", "~")
}
