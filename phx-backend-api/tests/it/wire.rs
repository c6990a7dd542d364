//! The fake server speaks Proxmox on the wire (proxmox-api.md A.1–A.5, checklist E), checked
//! with a plain HTTP client: status codes and reason phrases, the error body, request encoding
//! rules, UPIDs and task logs.

use std::time::Duration;

use phx_backend_api::TlsMode;
use phx_testkit::FakeCluster;
use phx_testkit::server::FakeServer;
use serde_json::Value;

use crate::support::{TOKEN, memory, server_options};

struct Wire {
    http: reqwest::Client,
    api: String,
}

struct Answer {
    status: u16,
    reason: Option<String>,
    close: bool,
    body: Value,
}

impl Wire {
    fn new(server: &FakeServer) -> Self {
        let tls = phx_backend_api::tls::client_config(&TlsMode::Fingerprint(
            phx_backend_api::tls::parse_fingerprint(server.fingerprint()).unwrap(),
        ))
        .unwrap();
        Self {
            http: reqwest::Client::builder()
                .tls_backend_preconfigured(tls)
                .build()
                .unwrap(),
            api: format!("{}/api2/json", server.url()),
        }
    }

    async fn send(&self, method: &str, path: &str, ctype: Option<&str>, body: &str) -> Answer {
        let mut rb = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.api))
            .header("Authorization", format!("PVEAPIToken={TOKEN}"));
        if let Some(c) = ctype {
            rb = rb.header("Content-Type", c);
        }
        if !body.is_empty() {
            rb = rb.body(body.to_string());
        }
        let r = rb.send().await.unwrap();
        let reason = r
            .extensions()
            .get::<hyper::ext::ReasonPhrase>()
            .map(|p| String::from_utf8_lossy(p.as_bytes()).into_owned());
        let close = r.headers().get("connection").is_some_and(|v| v == "close");
        let status = r.status().as_u16();
        let bytes = r.bytes().await.unwrap();
        Answer {
            status,
            reason,
            close,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    async fn form(&self, method: &str, path: &str, body: &str) -> Answer {
        self.send(
            method,
            path,
            Some("application/x-www-form-urlencoded"),
            body,
        )
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_carry_status_reason_message_and_parameter_errors() {
    let f = memory(FakeCluster::new()).await;
    let w = Wire::new(&f.server);

    let a = w
        .form("POST", "/nodes/pve/lxc", "vmid=100&onboot=true&bogus=1")
        .await;
    assert_eq!(
        (a.status, a.reason.as_deref(), a.close),
        (400, Some("Parameter verification failed."), true)
    );
    assert_eq!(a.body["data"], Value::Null);
    assert_eq!(a.body["message"], "Parameter verification failed.\n");
    assert_eq!(
        a.body["errors"]["onboot"],
        "type check ('boolean') failed - got 'true'"
    );
    assert_eq!(
        a.body["errors"]["bogus"],
        "property is not defined in schema and the schema does not allow additional properties"
    );
    assert_eq!(
        a.body["errors"]["ostemplate"],
        "property is missing and it is not optional"
    );

    let a = w.form("GET", "/nodes/pve/lxc/100/config", "").await;
    assert_eq!(
        (a.status, a.reason.as_deref()),
        (
            500,
            Some("Configuration file 'nodes/pve/lxc/100.conf' does not exist")
        )
    );

    let a = w.form("GET", "/no/such/path", "").await;
    assert_eq!(
        (a.status, a.reason.as_deref()),
        (501, Some("Method 'GET /no/such/path' not implemented"))
    );
    let a = w.form("DELETE", "/storage/local", "x=1").await;
    assert_eq!(
        (a.status, a.reason.as_deref()),
        (501, Some("Unexpected content for method 'DELETE'"))
    );
    let other_format = w
        .http
        .get(w.api.replace("/api2/json", "/api2/extjs/version"))
        .header("Authorization", format!("PVEAPIToken={TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(other_format.status(), 501);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_bodies_and_query_parameters_are_accepted() {
    let f = memory(FakeCluster::new()).await;
    let w = Wire::new(&f.server);
    let a = w
        .send(
            "POST",
            "/nodes/pve/aplinfo",
            Some("application/json"),
            r#"{"storage":"local","template":"debian-12-standard_12.12-1_amd64.tar.zst"}"#,
        )
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let upid = a.body["data"].as_str().unwrap().to_string();
    let parts: Vec<&str> = upid.split(':').collect();
    assert_eq!(parts.len(), 9, "{upid}");
    assert_eq!(
        (parts[0], parts[1], parts[5], parts[8]),
        ("UPID", "pve", "download", "")
    );
    assert!(
        parts[2..5].iter().all(|h| h.len() == 8
            && h.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())),
        "{upid}"
    );
    // JSON booleans are fine in JSON bodies; query parameters win over the body
    let a = w
        .send(
            "PUT",
            "/nodes/pve/dns?search=from.query",
            Some("application/json"),
            r#"{"search":"from.body","dns1":"10.0.0.53"}"#,
        )
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let dns = w.form("GET", "/nodes/pve/dns", "").await;
    assert_eq!(dns.body["data"]["search"], "from.query");

    let status = w
        .form("GET", &format!("/nodes/pve/tasks/{upid}/status"), "")
        .await;
    assert_eq!(
        (
            status.body["data"]["status"].as_str(),
            status.body["data"]["exitstatus"].as_str()
        ),
        (Some("stopped"), Some("OK"))
    );
    let log = w
        .form("GET", &format!("/nodes/pve/tasks/{upid}/log"), "")
        .await;
    assert!(log.body["total"].as_u64().unwrap() >= 1);
    assert_eq!(log.body["data"][0]["n"], 1);
    let unknown = w
        .form("GET", "/nodes/pve/tasks/UPID:pve:nope/status", "")
        .await;
    assert_eq!(unknown.status, 400);
    assert_eq!(
        unknown.body["errors"]["upid"],
        "unable to parse worker upid"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lxc_template_call_answers_null_and_the_backend_waits_for_the_flag() {
    let f = memory(FakeCluster::new()).await;
    let w = Wire::new(&f.server);
    let pve: phx_core::types::NodeName = "pve".parse().unwrap();
    w.form(
        "POST",
        "/nodes/pve/aplinfo",
        "storage=local&template=debian-12-standard_12.12-1_amd64.tar.zst",
    )
    .await;
    for id in [120, 121] {
        let a = w
            .form(
                "POST",
                "/nodes/pve/lxc",
                &format!("vmid={id}&ostemplate=local%3Avztmpl%2Fdebian-12-standard_12.12-1_amd64.tar.zst&rootfs=local-lvm%3A2"),
            )
            .await;
        assert_eq!(a.status, 200, "{:?}", a.body);
    }
    f.server.with(|c| c.set_latency_ms(300)).unwrap();
    let a = w.form("POST", "/nodes/pve/lxc/120/template", "").await;
    assert_eq!(
        (a.status, &a.body),
        (200, &serde_json::json!({"data": null}))
    );

    let id = phx_core::types::GuestId::new(121).unwrap();
    f.server.take_requests();
    f.lxc().template(&pve, id).await.unwrap();
    let calls: Vec<String> = f
        .server
        .take_requests()
        .into_iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        calls,
        [
            "POST /nodes/pve/lxc/121/template",
            "GET /nodes/pve/lxc/121/config"
        ],
        "no UPID to poll: the config is read until it says template: 1"
    );
    assert!(f.lxc().config(&pve, id).await.unwrap().is_template());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_not_visible_yet_is_polled_again() {
    let f = memory(FakeCluster::new()).await;
    f.server.fail_next_request("GET", "/nodes/pve/tasks/", 400);
    f.server.fail_next_request("GET", "/nodes/pve/tasks/", 400);
    let local = "local".parse().unwrap();
    let done = f
        .download_template(
            &"pve".parse().unwrap(),
            &local,
            "debian-12-standard_12.12-1_amd64.tar.zst",
        )
        .await
        .unwrap();
    assert!(done.upid.is_some());
    let polls = f
        .server
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/status"))
        .count();
    assert_eq!(polls, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_authentication_is_delayed() {
    let server = FakeServer::start(
        server_options()
            .cluster(FakeCluster::new())
            .auth_failure_delay(Duration::from_millis(250)),
    )
    .await
    .unwrap();
    let w = Wire::new(&server);
    let started = std::time::Instant::now();
    let a = w
        .http
        .get(format!("{}/version", w.api))
        .header("Authorization", "PVEAPIToken=root@pam!phx=nope")
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), 401);
    assert!(started.elapsed() >= Duration::from_millis(250));
    let reason = a
        .extensions()
        .get::<hyper::ext::ReasonPhrase>()
        .map(|p| String::from_utf8_lossy(p.as_bytes()).into_owned());
    assert_eq!(reason.as_deref(), Some("Authentication failed!"));
}
