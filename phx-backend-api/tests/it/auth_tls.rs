//! Authentication and TLS against the fake server: tokens, tickets with CSRF and renewal,
//! certificate pinning, a CA file, `--insecure`, and secrets kept out of `Debug`.

use std::time::{Duration, Instant};

use phx_backend_api::{ApiBackend, ApiOptions, ApiToken, Auth, Secret, TlsMode};
use phx_core::backend::Hypervisor;
use phx_core::error::Error;
use phx_testkit::FakeCluster;
use phx_testkit::server::FakeServer;

use crate::support::{TOKEN, TOKEN_SECRET, fast, memory, options, server_options};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_unauthenticated_after_the_delay_and_names_the_token() {
    let server = FakeServer::start(
        server_options()
            .cluster(FakeCluster::new())
            .auth_failure_delay(Duration::from_millis(300)),
    )
    .await
    .unwrap();
    let mut o = options(&server);
    o.auth = Auth::Token(ApiToken::parse("root@pam!phx=wrong-secret-value").unwrap());
    let hv = ApiBackend::new(o).unwrap();
    let started = Instant::now();
    let e = hv.version().await.unwrap_err();
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "Proxmox's delay"
    );
    match &e {
        Error::Unauthenticated { message } => {
            assert_eq!(
                message,
                &format!(
                    "Authentication failed! (API token root@pam!phx was refused by {})",
                    server.url()
                )
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(!e.to_string().contains("wrong-secret-value"));
    assert!(!e.is_retryable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_fingerprint_must_match() {
    let f = memory(FakeCluster::new()).await;
    let mut o = options(&f.server);
    let mut wrong = [0u8; 32];
    wrong[0] = 0xAB;
    o.tls = TlsMode::Fingerprint(wrong);
    let e = ApiBackend::new(o).unwrap().version().await.unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains(&format!(
            "the server certificate's fingerprint {} is not the pinned AB:00:00",
            f.server.fingerprint()
        )),
        "{msg}"
    );
    assert!(!e.is_retryable(), "{e:?}");
    assert!(f.server.requests().is_empty(), "nothing was sent");
    f.backend
        .version()
        .await
        .expect("the right fingerprint works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_file_is_trusted_and_the_system_roots_are_not_enough() {
    let f = memory(FakeCluster::new()).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("pve-root-ca.pem");
    std::fs::write(&ca, f.server.ca_pem()).unwrap();
    let mut o = options(&f.server);
    o.tls = TlsMode::CaFile(ca.clone());
    let hv = ApiBackend::new(o.clone()).unwrap();
    assert_eq!(hv.version().await.unwrap().release, "9.1");

    o.tls = TlsMode::System;
    let e = ApiBackend::new(o.clone())
        .unwrap()
        .version()
        .await
        .unwrap_err();
    assert!(e.to_string().contains("pass --ca-cert"), "{e}");

    std::fs::write(&ca, "not a certificate").unwrap();
    o.tls = TlsMode::CaFile(ca);
    let e = ApiBackend::new(o).unwrap_err();
    assert!(e.to_string().contains("holds no PEM certificate"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_accepts_any_certificate() {
    let f = memory(FakeCluster::new()).await;
    let mut o = options(&f.server);
    o.tls = TlsMode::Insecure;
    assert_eq!(
        ApiBackend::new(o).unwrap().nodes().await.unwrap()[0]
            .name
            .as_str(),
        "pve"
    );
}

fn ticket_options(server: &FakeServer, password: &str) -> ApiOptions {
    let mut o = options(server);
    o.auth = Auth::Ticket {
        user: "root@pam".into(),
        password: Secret::new(password),
    };
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticket_login_works_and_is_renewed() {
    let server = FakeServer::start(
        server_options()
            .cluster(FakeCluster::new())
            .user("root@pam", "hunter22"),
    )
    .await
    .unwrap();
    let mut o = ticket_options(&server, "hunter22");
    o.ticket_renew_after = Duration::from_millis(300);
    let hv = ApiBackend::new(o).unwrap();
    // a write needs the CSRF token, which the server checks
    let local = phx_core::types::StorageId::new("local").unwrap();
    let pve = phx_core::types::NodeName::new("pve").unwrap();
    hv.download_template(&pve, &local, "debian-12-standard_12.12-1_amd64.tar.zst")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    hv.version().await.unwrap();
    let logins: Vec<String> = server
        .requests()
        .into_iter()
        .filter(|r| r.path == "/access/ticket")
        .map(|r| r.body)
        .collect();
    assert_eq!(logins.len(), 2, "{logins:?}");
    assert_eq!(logins[0], "username=root%40pam&password=hunter22");
    assert!(
        logins[1].starts_with("username=root%40pam&password=PVE%3Aroot%40pam%3A"),
        "renewed with the ticket as password: {}",
        logins[1]
    );

    let e = ApiBackend::new(ticket_options(&server, "wrong"))
        .unwrap()
        .version()
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Unauthenticated { message } if message.starts_with("authentication failure (user root@pam")),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_without_the_csrf_token_is_refused() {
    let server = FakeServer::start(
        server_options()
            .cluster(FakeCluster::new())
            .user("root@pam", "hunter22"),
    )
    .await
    .unwrap();
    let tls = phx_backend_api::tls::client_config(&TlsMode::Fingerprint(
        phx_backend_api::tls::parse_fingerprint(server.fingerprint()).unwrap(),
    ))
    .unwrap();
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .unwrap();
    let api = format!("{}/api2/json", server.url());
    let login = http
        .post(format!("{api}/access/ticket"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("username=root%40pam&password=hunter22")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let login: serde_json::Value = serde_json::from_slice(&login).unwrap();
    let ticket = login["data"]["ticket"].as_str().unwrap().to_string();
    let csrf = login["data"]["CSRFPreventionToken"]
        .as_str()
        .unwrap()
        .to_string();
    let cookie = format!("PVEAuthCookie={ticket}");
    let get = http
        .get(format!("{api}/version"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 200, "a GET needs no CSRF token");
    let body = "storage=local&template=debian-12-standard_12.12-1_amd64.tar.zst";
    let post = |with_csrf: bool| {
        let mut rb = http
            .post(format!("{api}/nodes/pve/aplinfo"))
            .header("Cookie", &cookie)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body);
        if with_csrf {
            rb = rb.header("CSRFPreventionToken", &csrf);
        }
        rb.send()
    };
    let refused = post(false).await.unwrap();
    assert_eq!(refused.status(), 401);
    let reason = refused
        .extensions()
        .get::<hyper::ext::ReasonPhrase>()
        .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned());
    assert_eq!(
        reason.as_deref(),
        Some("Permission denied - invalid csrf token")
    );
    assert_eq!(post(true).await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_stay_out_of_debug_output() {
    let f = memory(FakeCluster::new()).await;
    let mut o = options(&f.server);
    o.ssh = None;
    let shown = format!(
        "{o:?} {:?} {:?}",
        f.backend,
        ApiToken::parse(TOKEN).unwrap()
    );
    assert!(!shown.contains(TOKEN_SECRET), "{shown}");
    assert!(shown.contains("root@pam!phx"), "{shown}");
    let t = ticket_options(&f.server, "hunter22");
    let shown = format!("{t:?} {:?}", ApiBackend::new(fast(t.clone())).unwrap());
    assert!(!shown.contains("hunter22"), "{shown}");
}
