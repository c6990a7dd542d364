//! The exact commands the backend runs for representative specs, recorded by a
//! [`CommandRunner`] that answers like a node with one CT template and no tasks.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use phx_backend_pct::quote::sh_join;
use phx_backend_pct::{Cmd, CmdOutput, CommandRunner, PctBackend, PctOptions, RunError};
use phx_core::backend::{CloneRequest, ConfigUpdate, ExecRequest, Hypervisor, LxcCreate, VmCreate};
use phx_core::types::{GuestId, NodeName};

/// Records every command (shell-quoted, with the size of its stdin) and answers `pvesh get
/// /nodes`, `mktemp` and the task list; everything else succeeds silently.
#[derive(Debug, Default)]
struct Recorder {
    log: Mutex<Vec<String>>,
}

#[async_trait]
impl CommandRunner for Recorder {
    async fn run(&self, cmd: &Cmd) -> Result<CmdOutput, RunError> {
        let mut line = sh_join(&cmd.argv);
        if let Some(b) = &cmd.stdin {
            line.push_str(&format!(
                "  <<< {} bytes: {:?}",
                b.len(),
                String::from_utf8_lossy(b)
            ));
        }
        let mut log = self.log.lock().unwrap();
        log.push(line);
        let stdout = match cmd
            .argv
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
        {
            ["pvesh", "get", "/nodes", ..] => {
                "[{\"node\":\"pve\",\"status\":\"online\"}]\n".to_string()
            }
            ["mktemp", ..] => format!("/tmp/phx.TEST{:04}\n", log.len()),
            ["pvesh", "get", p, ..] if p.ends_with("/tasks") => "[]\n".to_string(),
            _ => String::new(),
        };
        Ok(CmdOutput {
            code: 0,
            stdout: stdout.into_bytes(),
            stderr: Vec::new(),
        })
    }
    fn is_local(&self) -> bool {
        false
    }
}

fn backend() -> (PctBackend, Arc<Recorder>) {
    let rec = Arc::new(Recorder::default());
    (PctBackend::new(rec.clone(), PctOptions::default()), rec)
}

fn take(rec: &Recorder) -> String {
    std::mem::take(&mut *rec.log.lock().unwrap()).join("\n")
}

fn pve() -> NodeName {
    NodeName::new("pve").unwrap()
}

fn id(n: u64) -> GuestId {
    GuestId::new(n).unwrap()
}

fn params(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

#[tokio::test]
async fn lxc_create_from_template_runs_pct_create_with_every_option() {
    let (b, rec) = backend();
    let req = LxcCreate {
        id: id(102),
        ostemplate: "local:vztmpl/debian-12-standard_12.12-1_amd64.tar.zst".into(),
        params: params(&[
            ("hostname", "traefik"),
            ("memory", "2048"),
            ("cores", "2"),
            ("rootfs", "local-lvm:8"),
            (
                "net0",
                "name=eth0,bridge=vmbr0,ip=10.0.0.12/24,gw=10.0.0.1,firewall=1",
            ),
            ("features", "nesting=1,keyctl=1"),
            ("unprivileged", "1"),
            ("description", "Traefik proxy; managed by phx"),
            ("ssh-public-keys", "ssh-ed25519 AAAAC3Nza phx@example"),
        ]),
    };
    b.lxc().create(&pve(), &req).await.unwrap();
    insta::assert_snapshot!(take(&rec));
}

#[tokio::test]
async fn lxc_clone_of_a_template_snapshot() {
    let (b, rec) = backend();
    let req = CloneRequest {
        source: id(900),
        target: id(901),
        snapname: Some("base".into()),
        name: Some("web01".into()),
        storage: None,
        full: false,
    };
    b.lxc().clone_guest(&pve(), &req).await.unwrap();
    insta::assert_snapshot!(take(&rec));
}

#[tokio::test]
async fn config_update_sets_deletes_and_guards_with_the_digest() {
    let (b, rec) = backend();
    let change = ConfigUpdate {
        set: params(&[
            ("memory", "4096"),
            ("features", "nesting=1,keyctl=1"),
            ("mp0", "local-lvm:10,mp=/data,backup=1"),
        ]),
        delete: vec!["description".into(), "mp1".into()],
        digest: Some("dae623bbbefd94477f4873cdc47cbb06bb5f290b".into()),
    };
    b.lxc()
        .update_config(&pve(), id(102), &change)
        .await
        .unwrap();
    insta::assert_snapshot!(take(&rec));
}

#[tokio::test]
async fn cloud_init_vm_create_imports_the_image_and_writes_the_keys_file() {
    let (b, rec) = backend();
    let req = VmCreate {
        id: id(9000),
        params: params(&[
            ("name", "ubuntu-cloud"),
            ("memory", "2048"),
            ("cores", "2"),
            ("scsihw", "virtio-scsi-single"),
            (
                "scsi0",
                "local-lvm:0,import-from=/var/lib/vz/import/noble.img",
            ),
            ("ide2", "local-lvm:cloudinit"),
            ("boot", "order=scsi0"),
            ("serial0", "socket"),
            ("vga", "serial0"),
            ("agent", "enabled=1"),
            ("ciuser", "admin"),
            ("cipassword", "s3cret"),
            ("ipconfig0", "ip=10.0.0.50/24,gw=10.0.0.1"),
            ("net0", "virtio,bridge=vmbr0,firewall=1"),
            ("sshkeys", "ssh-ed25519%20AAAAC3Nza%20phx%40example%0A"),
        ]),
    };
    b.vm().create(&pve(), &req).await.unwrap();
    b.vm().cloudinit_update(&pve(), id(9000)).await.unwrap();
    insta::assert_snapshot!(take(&rec));
}

#[tokio::test]
async fn exec_and_push_go_through_pct_with_argv_intact() {
    let (b, rec) = backend();
    let req = ExecRequest::new(["sh", "-c", "echo \"$1\"; exit 3", "sh", "a b; $c"])
        .env("PHX_ROLE", "db primary");
    b.lxc().exec(&pve(), id(102), &req).await.unwrap();
    b.lxc()
        .push(
            &pve(),
            id(102),
            b"#!/bin/sh\necho hi\n",
            "/tmp/phoenix_run/x.sh",
            0o755,
        )
        .await
        .unwrap();
    insta::assert_snapshot!(take(&rec));
}
