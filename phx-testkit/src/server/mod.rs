//! The fake HTTPS Proxmox API (`phx-fake-pve serve`, and [`FakeServer`] in tests): the same
//! FakeCluster behind the same [`Router`] as the fake `pvesh`, served over TLS the way pveproxy
//! serves it (proxmox-api.md A.1–A.5, checklist E).
//!
//! - HTTPS with a certificate made at start: a CA and a leaf signed by it; clients pin the
//!   leaf's SHA-256 [fingerprint](FakeServer::fingerprint) or trust the [CA](FakeServer::ca_pem).
//! - Authentication: API tokens (`Authorization: PVEAPIToken=...`), and tickets from
//!   `POST /access/ticket` (cookie `PVEAuthCookie`, `CSRFPreventionToken` required on
//!   anything but GET, renewal with the ticket as password). Failures are `401
//!   Authentication failed!` after [`ServerOptions::auth_failure_delay`] (3 s in Proxmox).
//! - Requests: parameters in the query string for GET/DELETE (a body there is a 501), form or
//!   JSON bodies for POST/PUT with the query merged on top; unknown paths are 501; parameter
//!   checks (unknown names, `1`/`0` booleans) are the router's.
//! - Answers: `{"data": ...}` (plus `total`), or the error status with the message's first
//!   line as the reason phrase and `{"data":null,"message":...,"errors":...}`; the connection
//!   closes after an error, as pveproxy does.
//! - Tasks complete lazily once their injected latency has passed
//!   ([`FakeCluster::complete_due`] before every request); faults injected with
//!   [`FakeCluster::fail_next`] come back as their status (596, lock timeouts, ...), and a
//!   lost response ([`crate::Fault::LostResponse`]) as that status after the call went through.
//! - Transport faults: [`FakeServer::fail_next_request`] answers 595–599 from the "proxy",
//!   [`FakeServer::drop_next_request`] closes the connection without an answer (before or
//!   after handling the request), [`FakeServer::revoke_token_at`] stops accepting a token
//!   mid-run; [`ServerOptions::ticket_lifetime`] makes tickets expire early.
//! - State: in memory, or a state file shared with the fake executables under their lock (so
//!   `pct exec` over a fake ssh sees the guests the API created), saved atomically after every
//!   request; `phx --backend sim --sim-state FILE` can inspect it afterwards.

mod args;
mod cert;
mod http;
mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::watch;

pub use args::{SERVE_USAGE, ServeConfig};
pub use http::RecordedRequest;

use crate::fake::{self, FakeCluster};
use crate::router::Router;
use store::Store;

/// How many requests the server remembers for [`FakeServer::requests`].
const MAX_RECORDED: usize = 10_000;

/// Settings of a [`FakeServer`].
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Address to listen on (port 0: pick a free one).
    pub listen: SocketAddr,
    /// A state file (shared with the fake executables); `None`: in memory.
    pub state: Option<PathBuf>,
    /// Render `lxc/<id>.conf` here and read raw `lxc.*` edits back (`PHX_FAKE_ETC`).
    pub etc: Option<PathBuf>,
    /// The cluster to start with (written to `state` when given); `None`: the state file's,
    /// or a fresh single-node cluster.
    pub cluster: Option<FakeCluster>,
    /// Accepted API tokens, `user@realm!tokenid=secret`.
    pub tokens: Vec<String>,
    /// Accepted ticket logins, `(user@realm, password)`.
    pub users: Vec<(String, String)>,
    /// Delay before a 401 (Proxmox: 3 s).
    pub auth_failure_delay: Duration,
    /// Ticket lifetime (Proxmox: 2 h).
    pub ticket_lifetime: Duration,
    /// The node this server is (`local: 1` in `/cluster/status`); default the first node.
    pub local_node: Option<String>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            state: None,
            etc: None,
            cluster: None,
            tokens: Vec::new(),
            users: Vec::new(),
            auth_failure_delay: Duration::from_secs(3),
            ticket_lifetime: Duration::from_secs(2 * 3600),
            local_node: None,
        }
    }
}

impl ServerOptions {
    /// Accept this API token.
    pub fn token(mut self, t: impl Into<String>) -> Self {
        self.tokens.push(t.into());
        self
    }
    /// Accept this ticket login.
    pub fn user(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.users.push((user.into(), password.into()));
        self
    }
    /// Serve this cluster.
    pub fn cluster(mut self, c: FakeCluster) -> Self {
        self.cluster = Some(c);
        self
    }
    /// Keep the cluster in this state file (and render config files to `etc`).
    pub fn state(mut self, state: impl Into<PathBuf>, etc: Option<PathBuf>) -> Self {
        self.state = Some(state.into());
        self.etc = etc;
        self
    }
    /// Answer failed authentication after `d`.
    pub fn auth_failure_delay(mut self, d: Duration) -> Self {
        self.auth_failure_delay = d;
        self
    }
}

/// What every connection shares.
pub(crate) struct Shared {
    store: Store,
    router: Router,
    opts: ServerOptions,
    secret: Vec<u8>,
    requests: Mutex<Vec<RecordedRequest>>,
    /// Failures to answer instead of the handler: `(method, path prefix, failure)`.
    proxy_faults: Mutex<Vec<(String, String, ProxyFault)>>,
    /// Tokens to stop accepting at a request: `(method, path prefix, token)`.
    revocations: Mutex<Vec<(String, String, String)>>,
    /// Tokens no longer accepted.
    revoked: Mutex<Vec<String>>,
    /// TCP connections accepted, full TLS handshakes, resumed ones.
    connections: [AtomicU64; 3],
}

/// Connections a [`FakeServer`] accepted (to check a client reuses its connections).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    /// TCP connections accepted.
    pub accepted: u64,
    /// Completed TLS handshakes that were full ones (certificate sent and verified).
    pub full_handshakes: u64,
    /// Completed TLS handshakes that resumed an earlier session.
    pub resumed_handshakes: u64,
}

/// What happens to a request instead of (or after) its normal answer.
#[derive(Debug, Clone)]
pub(crate) enum ProxyFault {
    /// Answer with this error without handling the request.
    Answer(fake::PveError),
    /// Close the connection without an answer: before handling the request, or after it
    /// went through (the answer is lost on the way back).
    Drop {
        /// The request was handled first.
        handled: bool,
    },
}

impl Shared {
    /// The failure injected for this request, consumed.
    fn proxy_fault(&self, method: &str, path: &str) -> Option<ProxyFault> {
        let mut v = self
            .proxy_faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let i = v
            .iter()
            .position(|(m, p, _)| m == method && path.starts_with(p.as_str()))?;
        Some(v.remove(i).2)
    }

    /// Revoke the tokens due at this request; whether `token` is still accepted.
    fn token_accepted(&self, method: &str, path: &str, token: &str) -> bool {
        let mut due = self
            .revocations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut revoked = self.revoked.lock().unwrap_or_else(PoisonError::into_inner);
        due.retain(|(m, p, t)| {
            let now = m == method && path.starts_with(p.as_str());
            if now {
                revoked.push(t.clone());
            }
            !now
        });
        self.opts.tokens.iter().any(|t| t == token) && !revoked.iter().any(|t| t == token)
    }

    fn record(&self, r: RecordedRequest) {
        let mut v = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        if v.len() >= MAX_RECORDED {
            v.drain(..MAX_RECORDED / 2);
        }
        v.push(r);
    }
}

/// A running fake Proxmox API. Dropping it stops accepting connections.
#[derive(Debug)]
pub struct FakeServer {
    url: String,
    addr: SocketAddr,
    fingerprint: String,
    ca_pem: String,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    _scratch: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

fn reason_phrase(message: &str) -> hyper::ext::ReasonPhrase {
    let first: String = message
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    hyper::ext::ReasonPhrase::try_from(first.trim().as_bytes().to_vec())
        .unwrap_or_else(|_| hyper::ext::ReasonPhrase::from_static(b"Error"))
}

fn respond(a: http::Answer) -> hyper::Response<Full<Bytes>> {
    let (status, body, reason) = match a.result {
        Ok((data, total)) => {
            let mut b = json!({ "data": data });
            if let Some(t) = total {
                b["total"] = json!(t);
            }
            (200, b, None)
        }
        Err(e) => {
            let mut b = json!({ "data": Value::Null, "message": format!("{}\n", e.message) });
            if !e.errors.is_empty() {
                b["errors"] = json!(e.errors);
            }
            (e.status, b, Some(reason_phrase(&e.message)))
        }
    };
    let mut res = hyper::Response::new(Full::new(Bytes::from(body.to_string())));
    *res.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let h = res.headers_mut();
    h.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    h.insert(
        hyper::header::SERVER,
        hyper::header::HeaderValue::from_static("pve-api-daemon/3.0"),
    );
    h.insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("max-age=0"),
    );
    h.insert(
        hyper::header::PRAGMA,
        hyper::header::HeaderValue::from_static("no-cache"),
    );
    if let Some(r) = reason {
        // pveproxy closes the connection after any error answer
        h.insert(
            hyper::header::CONNECTION,
            hyper::header::HeaderValue::from_static("close"),
        );
        res.extensions_mut().insert(r);
    }
    res
}

/// The error that makes hyper close a connection without answering.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped on purpose (an injected fault)")
    }
}

impl std::error::Error for Dropped {}

async fn serve_one(
    shared: Arc<Shared>,
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Dropped> {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let headers = req.headers().clone();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes().to_vec(),
        Err(e) => {
            return Ok(respond(http::Answer {
                result: Err(fake::PveError {
                    status: 400,
                    message: format!("reading the request body: {e}"),
                    errors: Default::default(),
                }),
                delay: Duration::ZERO,
                dropped: false,
            }));
        }
    };
    let a = http::answer(shared, &method, &path, &query, &headers, body).await;
    if a.dropped {
        return Err(Dropped);
    }
    if !a.delay.is_zero() {
        tokio::time::sleep(a.delay).await;
    }
    Ok(respond(a))
}

impl FakeServer {
    /// Start serving on the current tokio runtime.
    pub async fn start(opts: ServerOptions) -> std::io::Result<Self> {
        let (store, scratch_dir, scratch, cluster_nodes) = match &opts.state {
            Some(state) => {
                if let Some(c) = &opts.cluster {
                    fake::save_state(state, c).map_err(std::io::Error::other)?;
                }
                let store = Store::File {
                    state: state.clone(),
                    etc: opts.etc.clone(),
                };
                let nodes = store.with(|c| c.nodes.keys().cloned().collect::<Vec<_>>())?;
                (store, None, fake::scratch_of(state), nodes)
            }
            None => {
                let c = opts.cluster.clone().unwrap_or_default();
                let nodes = c.nodes.keys().cloned().collect::<Vec<_>>();
                let dir = tempfile::Builder::new().prefix("phx-fake-api-").tempdir()?;
                let scratch = dir.path().to_path_buf();
                (
                    Store::Memory(Box::new(Mutex::new(c))),
                    Some(dir),
                    scratch,
                    nodes,
                )
            }
        };
        let local = opts
            .local_node
            .clone()
            .or_else(|| cluster_nodes.first().cloned());
        let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
        if !opts.listen.ip().is_unspecified() && !opts.listen.ip().is_loopback() {
            names.push(opts.listen.ip().to_string());
        }
        names.extend(cluster_nodes.iter().cloned());
        let certs = cert::generate(&names)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(std::io::Error::other)?
            .with_no_client_auth()
            .with_single_cert(certs.chain.clone(), certs.key.clone_key())
            .map_err(std::io::Error::other)?;
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));

        let listener = tokio::net::TcpListener::bind(opts.listen).await?;
        let addr = listener.local_addr()?;
        let host = if addr.ip().is_unspecified() || addr.ip().is_loopback() {
            "127.0.0.1".to_string()
        } else {
            addr.ip().to_string()
        };
        let url = format!("https://{host}:{}", addr.port());
        let mut router = Router::new(scratch);
        if let Some(n) = local {
            router = router.local_node(n);
        }
        let shared = Arc::new(Shared {
            store,
            router,
            opts,
            secret: certs.secret.clone(),
            requests: Mutex::new(Vec::new()),
            proxy_faults: Mutex::new(Vec::new()),
            revocations: Mutex::new(Vec::new()),
            revoked: Mutex::new(Vec::new()),
            connections: Default::default(),
        });
        let (stop, mut stopped) = watch::channel(false);
        let s = shared.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                while conns.try_join_next().is_some() {}
                let (tcp, _) = tokio::select! {
                    _ = stopped.changed() => break,
                    acc = listener.accept() => match acc {
                        Ok(x) => x,
                        Err(e) => {
                            tracing::warn!("fake server: accept: {e}");
                            continue;
                        }
                    },
                };
                let acceptor = acceptor.clone();
                let shared = s.clone();
                shared.connections[0].fetch_add(1, Ordering::Relaxed);
                conns.spawn(async move {
                    let tls = match acceptor.accept(tcp).await {
                        Ok(t) => t,
                        Err(e) => {
                            tracing::debug!("fake server: TLS handshake failed: {e}");
                            return;
                        }
                    };
                    let resumed =
                        tls.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
                    shared.connections[if resumed { 2 } else { 1 }].fetch_add(1, Ordering::Relaxed);
                    let svc = service_fn(move |req| {
                        let shared = shared.clone();
                        async move { serve_one(shared, req).await }
                    });
                    if let Err(e) = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), svc)
                        .await
                    {
                        tracing::debug!("fake server: connection: {e}");
                    }
                });
            }
            conns.abort_all();
        });
        Ok(Self {
            url,
            addr,
            fingerprint: certs.fingerprint,
            ca_pem: certs.ca_pem,
            shared,
            stop,
            task: Some(task),
            _scratch: scratch_dir,
        })
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// SHA-256 fingerprint of the server certificate, `AA:BB:...`.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The CA that signed the server certificate, PEM (for `--ca-cert`).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Read or change the cluster (setup, fault injection, inspection).
    pub fn with<T>(&self, f: impl FnOnce(&mut FakeCluster) -> T) -> std::io::Result<T> {
        self.shared.store.with(f)
    }

    /// Answer the next `method` request whose API path starts with `path_prefix` with
    /// `status` without handling it: 595–599 as pveproxy does when its hop to pvedaemon or
    /// another node fails, 400 as a task status read before the task is visible (`upid: no
    /// such task`). Several calls queue several failures.
    pub fn fail_next_request(&self, method: &str, path_prefix: &str, status: u16) {
        let e = match status {
            400 => fake::PveError::param("upid", "no such task"),
            s => fake::PveError {
                status: s,
                message: match s {
                    595 => "Errors during connection establishment, proxy handshake: Connection refused".into(),
                    596 => "Broken pipe".into(),
                    _ => "Connection reset by peer".into(),
                },
                errors: Default::default(),
            },
        };
        self.shared
            .proxy_faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((
                method.to_string(),
                path_prefix.to_string(),
                ProxyFault::Answer(e),
            ));
    }

    /// Close the connection of the next `method` request under `path_prefix` without an
    /// answer (a reset connection, a crashed proxy): before the request is handled, or with
    /// `handled` after it went through, so the client cannot tell whether it did.
    pub fn drop_next_request(&self, method: &str, path_prefix: &str, handled: bool) {
        self.shared
            .proxy_faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((
                method.to_string(),
                path_prefix.to_string(),
                ProxyFault::Drop { handled },
            ));
    }

    /// Stop accepting the API token `token` (`user@realm!id=secret`) from the first `method`
    /// request under `path_prefix` on, that request included: a token revoked, or past its
    /// expiry date, in the middle of a run.
    pub fn revoke_token_at(&self, method: &str, path_prefix: &str, token: &str) {
        self.shared
            .revocations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((
                method.to_string(),
                path_prefix.to_string(),
                token.to_string(),
            ));
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Every request so far, forgetting them.
    pub fn take_requests(&self) -> Vec<RecordedRequest> {
        std::mem::take(
            &mut *self
                .shared
                .requests
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// Connections and TLS handshakes so far.
    pub fn connections(&self) -> ConnectionStats {
        let [a, f, r] = &self.shared.connections;
        ConnectionStats {
            accepted: a.load(Ordering::Relaxed),
            full_handshakes: f.load(Ordering::Relaxed),
            resumed_handshakes: r.load(Ordering::Relaxed),
        }
    }

    /// Stop accepting connections and close the open ones.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
