//! Bad answers from something that is not quite Proxmox (a proxy's error page, a truncated
//! answer, a newer or broken API): a raw HTTPS server sends exactly the bytes given, and
//! every case must be a clear error naming the request (no panic, no hang, no huge message).

use std::io::{BufRead as _, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use phx_backend_api::{ApiBackend, ApiOptions, Auth, TlsMode};
use phx_core::Error;
use phx_core::backend::Hypervisor;
use phx_core::types::{GuestId, NodeName};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::support::{fast, token};

/// An HTTPS server that answers requests whose path starts with a prefix with raw bytes
/// (status line, headers and body as given), and everything else with a 501.
struct RawServer {
    url: String,
    fingerprint: String,
    paths: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn tls_config() -> (Arc<rustls::ServerConfig>, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let fingerprint =
        phx_backend_api::tls::format_fingerprint(&phx_backend_api::tls::fingerprint_of(cert.der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    (Arc::new(cfg), fingerprint)
}

impl RawServer {
    fn start(answers: Vec<(&'static str, Vec<u8>)>) -> Self {
        let (cfg, fingerprint) = tls_config();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!(
            "https://127.0.0.1:{}",
            listener.local_addr().unwrap().port()
        );
        let paths = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let answers = Arc::new(answers);
        let (p, s) = (paths.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((tcp, _)) => {
                        let (cfg, answers, p) = (cfg.clone(), answers.clone(), p.clone());
                        std::thread::spawn(move || serve(tcp, cfg, &answers, &p));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self {
            url,
            fingerprint,
            paths,
            stop,
        }
    }

    fn backend(&self) -> ApiBackend {
        let mut o = fast(ApiOptions::new(&self.url, Auth::Token(token())));
        o.tls = TlsMode::Fingerprint(
            phx_backend_api::tls::parse_fingerprint(&self.fingerprint).unwrap(),
        );
        o.node = Some("pve".into());
        o.timeouts.request = Duration::from_secs(20);
        ApiBackend::new(o).unwrap()
    }

    fn paths(&self) -> Vec<String> {
        self.paths.lock().unwrap().clone()
    }
}

/// One connection: read one request head, answer it, close.
fn serve(
    tcp: TcpStream,
    cfg: Arc<rustls::ServerConfig>,
    answers: &[(&str, Vec<u8>)],
    paths: &Mutex<Vec<String>>,
) {
    tcp.set_nonblocking(false).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let conn = rustls::ServerConnection::new(cfg).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut reader = BufReader::new(&mut tls);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let mut content_length = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            content_length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; content_length];
    let _ = reader.read_exact(&mut body);
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .trim_start_matches("/api2/json")
        .split('?')
        .next()
        .unwrap_or_default()
        .to_string();
    paths.lock().unwrap().push(path.clone());
    let answer = answers
        .iter()
        .find(|(prefix, _)| path.starts_with(prefix))
        .map(|(_, a)| a.clone())
        .unwrap_or_else(|| raw(501, "Not Implemented", "{\"data\":null}"));
    let _ = tls.write_all(&answer);
    let _ = tls.flush();
    tls.conn.send_close_notify();
    let _ = tls.flush();
}

/// A complete answer with a correct Content-Length.
fn raw(status: u16, reason: &str, body: &str) -> Vec<u8> {
    raw_bytes(status, reason, body.as_bytes())
}

fn raw_bytes(status: u16, reason: &str, body: &[u8]) -> Vec<u8> {
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json;charset=UTF-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    [head.as_bytes(), body].concat()
}

fn pve() -> NodeName {
    NodeName::new("pve").unwrap()
}

fn id() -> GuestId {
    GuestId::new(101).unwrap()
}

const STATUS: &str = "/nodes/pve/lxc/101/status/current";

/// The error of a call, as a snapshot line, after checking its kind: a bad answer is a
/// permanent backend error; a connection that breaks is transient.
fn line<T: std::fmt::Debug>(case: &str, r: phx_core::Result<T>) -> String {
    let e = match r {
        Ok(v) => panic!("{case}: accepted as {v:?}"),
        Err(e) => e,
    };
    let shown = e.to_string();
    assert!(shown.len() < 600, "{case}: a {}-byte error", shown.len());
    format!("{case}\n  -> [{}] {shown}", kind(&e))
}

fn kind(e: &Error) -> &'static str {
    match e {
        Error::Backend { backend: "api", .. } => "backend",
        Error::Transient { .. } => "transient",
        Error::InvalidRequest { .. } => "invalid-request",
        Error::Rejected { .. } => "rejected",
        other => panic!("unexpected kind: {other:?}"),
    }
}

/// Ask for a container's status from a server that answers `answer`: the paths asked for,
/// and the result with the server's random port replaced by `[PORT]`.
async fn status_with(answer: Vec<u8>) -> (Vec<String>, Result<(), String>) {
    let server = RawServer::start(vec![(STATUS, answer)]);
    let r = server
        .backend()
        .lxc()
        .status(&pve(), id())
        .await
        .map(|_| ());
    let port = server
        .url
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_string();
    let r = r.map_err(|e| {
        let text = line("", Err::<(), _>(e));
        text.replace(&format!(":{port}"), ":[PORT]")
    });
    (server.paths(), r)
}

#[tokio::test]
async fn malformed_status_answers_are_errors_naming_the_request() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "a proxy's HTML page with 200",
            raw(200, "OK", "<html><body>Welcome to nginx!</body></html>"),
        ),
        (
            "JSON cut short",
            raw(200, "OK", r#"{"data": {"vmid": 101, "status": "runn"#),
        ),
        ("an answer without data", raw(200, "OK", r#"{"vmid": 101}"#)),
        ("a list, not an object", raw(200, "OK", "[1, 2]")),
        ("data null", raw(200, "OK", r#"{"data": null}"#)),
        (
            "data a list",
            raw(200, "OK", r#"{"data": [{"vmid": 101}]}"#),
        ),
        (
            "vmid of the wrong type",
            raw(
                200,
                "OK",
                r#"{"data": {"vmid": {"id": 101}, "status": "running"}}"#,
            ),
        ),
        ("an empty body", raw(200, "OK", "")),
        (
            "not UTF-8",
            raw_bytes(200, "OK", b"{\"data\": \"\xff\xfe\"}"),
        ),
        (
            "a 502 page of a proxy",
            raw(502, "Bad Gateway", "<html><h1>502 Bad Gateway</h1></html>"),
        ),
        (
            "a 500 with an HTML page",
            raw(500, "Internal Server Error", "<html>upstream error</html>"),
        ),
        ("a 400 without errors", raw(400, "Bad Request", "garbage")),
    ];
    let mut out = Vec::new();
    for (case, answer) in cases {
        let (paths, r) = status_with(answer).await;
        assert_eq!(paths, [STATUS], "{case}: asked once, never retried");
        out.push(format!("{case}{}", r.expect_err(case)));
    }
    insta::assert_snapshot!(out.join("\n"));
}

#[tokio::test]
async fn a_body_cut_off_by_the_connection_is_transient_and_retried() {
    // Content-Length says 400 bytes, 21 come, then the connection closes.
    let cut = b"HTTP/1.1 200 OK\r\nContent-Length: 400\r\nConnection: close\r\n\r\n{\"data\": {\"vmid\": 10"
        .to_vec();
    let (paths, r) = status_with(cut).await;
    let text = format!("a body cut off{}", r.expect_err("cut"));
    // the first try and the backend's two retries of a GET
    assert_eq!(paths.len(), 3, "{paths:?}");
    insta::assert_snapshot!(text);
}

#[tokio::test]
async fn huge_answers_are_refused_without_holding_them() {
    // Declared: 10 GB. Nothing else is read.
    let declared =
        b"HTTP/1.1 200 OK\r\nContent-Length: 10000000000\r\nConnection: close\r\n\r\n{\"data\":"
            .to_vec();
    let (_, r) = status_with(declared).await;
    let mut out = vec![format!("10 GB declared{}", r.expect_err("declared"))];
    // Sent: 65 MiB in chunks without a length.
    let mut chunked =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    let piece = vec![b' '; 1024 * 1024];
    for _ in 0..65 {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(&piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let (_, r) = status_with(chunked).await;
    out.push(format!("65 MiB sent in chunks{}", r.expect_err("chunked")));
    insta::assert_snapshot!(out.join("\n"));
}

#[tokio::test]
async fn a_task_call_answering_garbage_is_an_error_and_not_sent_again() {
    const START: &str = "/nodes/pve/lxc/101/status/start";
    let huge_upid = format!("UPID:{}", "x".repeat(100_000));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("a number for a task id", raw(200, "OK", r#"{"data": 42}"#)),
        (
            "a UPID with too few fields",
            raw(
                200,
                "OK",
                r#"{"data": "UPID:pve:0001:vzstart:101:root@pam:"}"#,
            ),
        ),
        (
            "a 100 kB UPID",
            raw(200, "OK", &format!(r#"{{"data": "{huge_upid}"}}"#)),
        ),
        (
            "an object for a task id",
            raw(
                200,
                "OK",
                &format!(r#"{{"data": {{"upid": "{}"}}}}"#, "y".repeat(10_000)),
            ),
        ),
    ];
    let mut out = Vec::new();
    for (case, answer) in cases {
        let server = RawServer::start(vec![(START, answer)]);
        let r = server.backend().lxc().start(&pve(), id()).await;
        assert_eq!(server.paths(), [START], "{case}: a write is sent once");
        out.push(line(case, r));
    }
    insta::assert_snapshot!(out.join("\n"));
}

#[tokio::test]
async fn an_unreadable_task_status_is_an_error() {
    const START: &str = "/nodes/pve/lxc/101/status/start";
    let upid = "UPID:pve:00001234:00005678:66DC5987:vzstart:101:root@pam!phx:";
    let server = RawServer::start(vec![
        (START, raw(200, "OK", &format!(r#"{{"data": "{upid}"}}"#))),
        (
            "/nodes/pve/tasks/",
            raw(
                200,
                "OK",
                r#"{"data": {"status": "stopped", "exitstatus": "#,
            ),
        ),
    ]);
    let r = server.backend().lxc().start(&pve(), id()).await;
    let paths = server.paths();
    assert_eq!(paths.iter().filter(|p| *p == START).count(), 1, "{paths:?}");
    insta::assert_snapshot!(line("a task status cut short", r));
}
