//! The request router: what each path answers, Proxmox's JSON typing, parameter checking and
//! where failures land (synchronous error or failed task).

use phx_testkit::FakeCluster;
use phx_testkit::fake::{PveError, TaskOutcome};
use phx_testkit::router::{Method, Reply, Router};
use serde_json::{Value, json};

fn p(kv: &[(&str, &str)]) -> Vec<(String, String)> {
    kv.iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

struct T {
    c: FakeCluster,
    r: Router,
    _dir: tempfile::TempDir,
}

impl T {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self {
            c: FakeCluster::new(),
            r: Router::new(dir.path()),
            _dir: dir,
        }
    }
    fn call(&mut self, m: Method, path: &str, params: &[(&str, &str)]) -> Result<Reply, PveError> {
        self.r.handle(&mut self.c, m, path, &p(params))
    }
    /// A call that starts a task, completed at once.
    fn task(&mut self, m: Method, path: &str, params: &[(&str, &str)]) -> (Reply, TaskOutcome) {
        let r = self
            .call(m, path, params)
            .unwrap_or_else(|e| panic!("{m} {path}: {e}"));
        let upid = r
            .task
            .clone()
            .unwrap_or_else(|| panic!("{m} {path} started no task"));
        let o = self.c.complete(&upid);
        (r, o)
    }
    fn ct(&mut self, id: &str) {
        self.task(
            Method::Post,
            "/nodes/pve/aplinfo",
            &[
                ("storage", "local"),
                ("template", "debian-12-standard_12.12-1_amd64.tar.zst"),
            ],
        );
        let (_, o) = self.task(
            Method::Post,
            "/nodes/pve/lxc",
            &[
                ("vmid", id),
                (
                    "ostemplate",
                    "local:vztmpl/debian-12-standard_12.12-1_amd64.tar.zst",
                ),
                ("rootfs", "local-lvm:2"),
                ("hostname", "web"),
                ("features", "nesting=1,keyctl=1"),
            ],
        );
        assert_eq!(o, TaskOutcome::Ok { warnings: 0 });
    }
}

#[test]
fn config_is_typed_like_proxmox_with_digest_and_raw_lxc_pairs() {
    let mut t = T::new();
    t.ct("100");
    t.c.set_raw_lxc(
        "pve",
        100,
        &[("lxc.apparmor.profile".into(), "unconfined".into())],
    )
    .unwrap();
    let cfg = t
        .call(Method::Get, "/nodes/pve/lxc/100/config", &[])
        .unwrap()
        .data;
    assert_eq!(cfg["memory"], json!(512), "integers are numbers");
    assert_eq!(cfg["unprivileged"], json!(1), "booleans are 1/0");
    assert_eq!(
        cfg["features"],
        json!("keyctl=1,nesting=1"),
        "property strings canonical"
    );
    assert_eq!(cfg["lxc"], json!([["lxc.apparmor.profile", "unconfined"]]));
    assert_eq!(cfg["digest"].as_str().map(str::len), Some(40));
    assert!(cfg.get("lock").is_none(), "the create task finished");
    assert_eq!(
        t.call(Method::Get, "/cluster/nextid", &[]).unwrap().data,
        json!("101"),
        "nextid is a JSON string"
    );
}

#[test]
fn unknown_and_mistyped_parameters_are_400_with_errors() {
    let mut t = T::new();
    t.ct("100");
    let e = t
        .call(
            Method::Put,
            "/nodes/pve/lxc/100/config",
            &[("bogus", "1"), ("onboot", "true")],
        )
        .unwrap_err();
    assert_eq!(
        (e.status, e.message.as_str()),
        (400, "Parameter verification failed.")
    );
    assert_eq!(
        e.errors.get("bogus").map(String::as_str),
        Some(
            "property is not defined in schema and the schema does not allow additional properties"
        )
    );
    assert_eq!(
        e.errors.get("onboot").map(String::as_str),
        Some("type check ('boolean') failed - got 'true'")
    );
    let e = t
        .call(Method::Post, "/nodes/pve/lxc/100/clone", &[])
        .unwrap_err();
    assert_eq!(
        e.errors.get("newid").map(String::as_str),
        Some("property is missing and it is not optional")
    );
    let e = t
        .call(Method::Get, "/cluster/nextid", &[("vmid", "100")])
        .unwrap_err();
    assert_eq!(
        (e.status, e.errors.get("vmid").map(String::as_str)),
        (400, Some("VM 100 already exists"))
    );
    let e = t
        .call(
            Method::Post,
            "/nodes/pve/lxc",
            &[("vmid", "101"), ("ostemplate", "x:y"), ("start", "1")],
        )
        .unwrap_err();
    assert_eq!(
        e.status, 501,
        "known to Proxmox, not modelled by the fake: {e}"
    );
    let e = t.call(Method::Get, "/nodes/pve/execute", &[]).unwrap_err();
    assert_eq!(
        (e.status, e.message.as_str()),
        (501, "Method 'GET /nodes/pve/execute' not implemented")
    );
}

#[test]
fn lxc_template_answers_null_while_its_task_runs_and_qemu_returns_the_upid() {
    let mut t = T::new();
    t.ct("100");
    let r = t
        .call(Method::Post, "/nodes/pve/lxc/100/template", &[])
        .unwrap();
    assert_eq!(r.data, Value::Null);
    assert!(
        r.task
            .as_deref()
            .is_some_and(|u| u.contains(":vztemplate:100:")),
        "{r:?}"
    );
    t.task(
        Method::Post,
        "/nodes/pve/qemu",
        &[("vmid", "200"), ("name", "vm")],
    );
    let (r, o) = t.task(Method::Post, "/nodes/pve/qemu/200/template", &[]);
    assert!(
        r.data.as_str().is_some_and(|u| u.starts_with("UPID:pve:")
            && u.contains(":qmtemplate:200:")
            && u.ends_with(':')),
        "{r:?}"
    );
    assert_eq!(o, TaskOutcome::Ok { warnings: 0 });
}

#[test]
fn preconditions_fail_synchronously_and_the_rest_in_the_task() {
    let mut t = T::new();
    t.ct("100");
    t.task(Method::Post, "/nodes/pve/lxc/100/status/start", &[]);
    let e = t
        .call(Method::Post, "/nodes/pve/lxc/100/status/start", &[])
        .unwrap_err();
    assert_eq!(
        (e.status, e.message.as_str()),
        (500, "CT 100 already running")
    );
    // a start of a missing CT is a failed task
    let (_, o) = t.task(Method::Post, "/nodes/pve/lxc/101/status/start", &[]);
    assert!(
        matches!(&o, TaskOutcome::Failed { exitstatus, .. } if exitstatus == "Configuration file 'nodes/pve/lxc/101.conf' does not exist"),
        "{o:?}"
    );
    // QEMU: start of a running VM is a task that fails; stop of a stopped VM is fine
    t.task(Method::Post, "/nodes/pve/qemu", &[("vmid", "200")]);
    assert_eq!(
        t.task(Method::Post, "/nodes/pve/qemu/200/status/stop", &[])
            .1,
        TaskOutcome::Ok { warnings: 0 }
    );
    t.task(Method::Post, "/nodes/pve/qemu/200/status/start", &[]);
    let (_, o) = t.task(Method::Post, "/nodes/pve/qemu/200/status/start", &[]);
    assert!(
        matches!(&o, TaskOutcome::Failed { exitstatus, .. } if exitstatus == "VM 200 already running"),
        "{o:?}"
    );
}

#[test]
fn task_status_and_log_look_like_proxmox() {
    let mut t = T::new();
    t.ct("100");
    let (r, _) = t.task(Method::Post, "/nodes/pve/lxc/100/status/start", &[]);
    let upid = r.data.as_str().unwrap().to_string();
    let st = t
        .call(Method::Get, &format!("/nodes/pve/tasks/{upid}/status"), &[])
        .unwrap()
        .data;
    assert_eq!(
        (
            st["status"].as_str(),
            st["exitstatus"].as_str(),
            st["type"].as_str(),
            st["id"].as_str()
        ),
        (Some("stopped"), Some("OK"), Some("vzstart"), Some("100"))
    );
    assert!(st["pid"].is_u64() && st["starttime"].is_i64());
    let log = t
        .call(Method::Get, &format!("/nodes/pve/tasks/{upid}/log"), &[])
        .unwrap();
    assert_eq!(log.data, json!([{"n": 1, "t": "TASK OK"}]));
    assert_eq!(log.total, Some(1));
    let e = t
        .call(Method::Get, "/nodes/pve/tasks/UPID:nope/status", &[])
        .unwrap_err();
    assert_eq!(
        e.errors.get("upid").map(String::as_str),
        Some("unable to parse worker upid")
    );
    let list = t
        .call(
            Method::Get,
            "/nodes/pve/tasks",
            &[("vmid", "100"), ("typefilter", "vzstart")],
        )
        .unwrap()
        .data;
    assert_eq!(list[0]["upid"].as_str(), Some(upid.as_str()));
    assert_eq!(
        list[0]["status"].as_str(),
        Some("OK"),
        "the task list carries the exit status in `status`"
    );
}

#[test]
fn snapshots_list_current_last_and_firewall_rules_insert_at_pos() {
    let mut t = T::new();
    t.ct("100");
    t.task(
        Method::Post,
        "/nodes/pve/lxc/100/snapshot",
        &[("snapname", "s1"), ("description", "first")],
    );
    let l = t
        .call(Method::Get, "/nodes/pve/lxc/100/snapshot", &[])
        .unwrap()
        .data;
    assert_eq!(l[0]["name"], json!("s1"));
    assert_eq!(
        (
            l[1]["name"].as_str(),
            l[1]["description"].as_str(),
            l[1]["parent"].as_str()
        ),
        (Some("current"), Some("You are here!"), Some("s1"))
    );
    t.call(
        Method::Post,
        "/nodes/pve/lxc/100/firewall/rules",
        &[
            ("type", "in"),
            ("action", "ACCEPT"),
            ("proto", "tcp"),
            ("dport", "22"),
            ("enable", "1"),
        ],
    )
    .unwrap();
    t.call(
        Method::Post,
        "/nodes/pve/lxc/100/firewall/rules",
        &[("type", "out"), ("action", "DROP")],
    )
    .unwrap();
    let rules = t
        .call(Method::Get, "/nodes/pve/lxc/100/firewall/rules", &[])
        .unwrap()
        .data;
    assert_eq!(
        (
            rules[0]["pos"].as_u64(),
            rules[0]["type"].as_str(),
            rules[0]["enable"].as_u64()
        ),
        (Some(0), Some("out"), Some(0)),
        "new rules go on top"
    );
    assert_eq!(rules[1]["dport"], json!("22"));
    let e = t
        .call(
            Method::Post,
            "/nodes/pve/lxc/100/firewall/rules",
            &[("type", "in"), ("action", "ACCEPT"), ("dport", "22")],
        )
        .unwrap_err();
    assert_eq!(e.status, 400, "ports need a protocol");
}
