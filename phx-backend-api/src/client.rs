//! The HTTP client: one reqwest client per backend (connection reuse), the `/api2/json` base,
//! authentication (token header, or ticket cookie plus CSRF header on writes, renewed before it
//! expires), Proxmox's request encoding and answer parsing, and task polling.
//!
//! Retries: a GET is sent again after a transport failure or a 595–599, a few times with
//! backoff. A write is sent once; a retryable failure goes back to the engine, whose retry rule
//! decides (phx-core `engine::retry`). A write that returned a UPID is never sent again: only
//! the polling of its status repeats.

use std::time::{Duration, Instant};

use phx_core::Error;
use phx_core::backend::TaskDone;
use reqwest::Method;
use reqwest::header::{self, HeaderValue};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::encode::{Params, segment};
use crate::error::{ApiError, BACKEND};
use crate::options::{ApiOptions, Auth, PollPolicy};
use crate::response::{Reply, parse_error, parse_success};
use crate::secret::Secret;
use crate::tls;
use crate::upid::Upid;

/// A ticket's lifetime on the server (pve-access-control `$ticket_lifetime`).
const TICKET_LIFETIME: Duration = Duration::from_secs(2 * 3600);

/// How long a started task's status may stay unreadable (node or proxy unreachable) before
/// phx stops waiting for it.
const TASK_UNREADABLE_LIMIT: Duration = Duration::from_secs(60);

/// The largest answer phx reads: Proxmox's are kilobytes, a few megabytes for the resources
/// of a large cluster.
pub(crate) const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;

/// How many log lines a failed task's error carries.
const LOG_TAIL: usize = 10;

struct Ticket {
    /// The ticket itself (renewals send it as the password).
    ticket: Secret,
    cookie: HeaderValue,
    csrf: HeaderValue,
    at: Instant,
}

enum AuthState {
    Token {
        header: HeaderValue,
        id: String,
    },
    Ticket {
        user: String,
        password: Secret,
        renew_after: Duration,
        current: Mutex<Option<Ticket>>,
    },
}

/// The Proxmox HTTP client of one backend.
pub(crate) struct Client {
    http: reqwest::Client,
    /// `https://host:8006`.
    origin: String,
    /// `https://host:8006/api2/json`.
    base: String,
    host: String,
    auth: AuthState,
    get_retries: u32,
    request_timeout: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let auth = match &self.auth {
            AuthState::Token { id, .. } => format!("token {id}"),
            AuthState::Ticket { user, .. } => format!("ticket for {user}"),
        };
        f.debug_struct("Client")
            .field("url", &self.origin)
            .field("auth", &auth)
            .finish_non_exhaustive()
    }
}

fn sensitive(v: &str) -> Result<HeaderValue, ApiError> {
    let mut h = HeaderValue::from_str(v).map_err(|_| {
        ApiError::Config("a credential contains characters HTTP headers cannot carry".into())
    })?;
    h.set_sensitive(true);
    Ok(h)
}

/// `https://host:8006` from what an operator types: `https://host:8006`, `https://host:8006/`,
/// `https://host:8006/api2/json`, `host`, `host:8006`. Without a port, Proxmox's 8006.
pub(crate) fn normalize_url(raw: &str) -> Result<reqwest::Url, ApiError> {
    let raw = raw.trim();
    let with_scheme = if raw.contains("://") {
        raw.to_string()
    } else {
        format!("https://{raw}")
    };
    let mut url = reqwest::Url::parse(&with_scheme)
        .map_err(|e| ApiError::Config(format!("--api-url {raw:?} is not a URL: {e}")))?;
    if url.scheme() != "https" {
        return Err(ApiError::Config(format!(
            "--api-url {raw:?}: Proxmox serves its API over https (https://host:8006)"
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ApiError::Config(format!("--api-url {raw:?} has no host")));
    }
    let explicit_port = with_scheme
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .is_some_and(|authority| {
            authority
                .rsplit_once(':')
                .is_some_and(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()) && !p.is_empty())
        });
    if !explicit_port {
        let _ = url.set_port(Some(8006));
    }
    url.set_path("");
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

impl Client {
    pub(crate) fn new(opts: &ApiOptions) -> Result<Self, ApiError> {
        let url = normalize_url(&opts.url)?;
        let origin = url.as_str().trim_end_matches('/').to_string();
        let host = url.host_str().unwrap_or_default().to_string();
        let tls = tls::client_config(&opts.tls)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(opts.timeouts.connect)
            .timeout(opts.timeouts.request)
            .pool_idle_timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("phx/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ApiError::Config(format!("HTTP client setup: {e}")))?;
        let auth = match &opts.auth {
            Auth::Token(t) => AuthState::Token {
                header: sensitive(t.header_value().expose())?,
                id: t.full_id(),
            },
            Auth::Ticket { user, password } => AuthState::Ticket {
                user: user.clone(),
                password: password.clone(),
                renew_after: opts.ticket_renew_after.min(TICKET_LIFETIME),
                current: Mutex::new(None),
            },
        };
        Ok(Self {
            http,
            base: format!("{origin}/api2/json"),
            origin,
            host,
            auth,
            get_retries: opts.get_retries,
            request_timeout: opts.timeouts.request,
        })
    }

    /// The host of the URL (to find the node it points at).
    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    /// `https://host:8006`.
    pub(crate) fn origin(&self) -> &str {
        &self.origin
    }

    /// Who phx is, for messages (never the secret).
    pub(crate) fn identity(&self) -> String {
        match &self.auth {
            AuthState::Token { id, .. } => format!("API token {id}"),
            AuthState::Ticket { user, .. } => format!("user {user}"),
        }
    }

    /// One API call: `path` below `/api2/json`, already segment-encoded.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        params: &Params,
    ) -> Result<Reply, ApiError> {
        let mut attempt = 0u32;
        let mut relogged = false;
        loop {
            attempt += 1;
            let started = Instant::now();
            let r = self.send(&method, path, params).await;
            let ms = started.elapsed().as_millis();
            match r {
                Ok(reply) => {
                    tracing::debug!(%method, path, ms, "api call");
                    return Ok(reply);
                }
                Err(e) => {
                    tracing::debug!(%method, path, ms, error = %e, "api call failed");
                    let get_retry = method == Method::GET
                        && attempt <= self.get_retries
                        && match &e {
                            ApiError::Transport { .. } | ApiError::Timeout { .. } => true,
                            ApiError::Http(h) => (595..=599).contains(&h.status),
                            _ => false,
                        };
                    if get_retry {
                        let wait = Duration::from_millis(200 * (1 << (attempt - 1).min(4)));
                        tracing::debug!(%method, path, attempt, "retrying after {wait:?}");
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    // an expired ticket is refused before the handler runs: safe to resend
                    if let (ApiError::Http(h), AuthState::Ticket { current, .. }) = (&e, &self.auth)
                        && h.status == 401
                        && !relogged
                    {
                        relogged = true;
                        *current.lock().await = None;
                        continue;
                    }
                    return Err(self.explain(e));
                }
            }
        }
    }

    /// Add who-to-ask context to authentication failures.
    fn explain(&self, e: ApiError) -> ApiError {
        match e {
            ApiError::Http(mut h) if h.status == 401 => {
                h.message = format!(
                    "{} ({} was refused by {})",
                    h.message,
                    self.identity(),
                    self.origin
                );
                ApiError::Http(h)
            }
            other => other,
        }
    }

    async fn send(&self, method: &Method, path: &str, params: &Params) -> Result<Reply, ApiError> {
        let what = format!("{method} {path}");
        let mut url = format!("{}{path}", self.base);
        let query = matches!(*method, Method::GET | Method::DELETE);
        if query && !params.is_empty() {
            url.push('?');
            url.push_str(&params.encode());
        }
        let mut rb = self
            .http
            .request(method.clone(), url)
            .header(header::ACCEPT, "application/json");
        if !query {
            rb = rb
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(params.encode());
        }
        rb = self.authorize(rb, method).await?;
        let resp = rb.send().await.map_err(|e| self.transport(e, &what))?;
        let status = resp.status().as_u16();
        let reason = resp
            .extensions()
            .get::<hyper::ext::ReasonPhrase>()
            .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned());
        let body = self.body(resp, &what).await?;
        if (200..300).contains(&status) {
            parse_success(&what, &body)
        } else {
            Err(ApiError::Http(parse_error(
                status,
                reason.as_deref(),
                &body,
            )))
        }
    }

    /// The body of an answer, at most [`MAX_ANSWER_BYTES`]: a larger one (declared or sent)
    /// is refused as soon as it is seen, never held in memory whole.
    async fn body(&self, mut resp: reqwest::Response, what: &str) -> Result<Vec<u8>, ApiError> {
        let too_large = |n: String| {
            ApiError::decode(
                what,
                format!(
                    "the answer is {n} bytes, more than the {} MiB phx reads (Proxmox answers are far smaller): check that --api-url is a Proxmox VE API",
                    MAX_ANSWER_BYTES / (1024 * 1024)
                ),
            )
        };
        if let Some(n) = resp.content_length()
            && n > MAX_ANSWER_BYTES as u64
        {
            return Err(too_large(n.to_string()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.transport(e, what))? {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(too_large(format!("over {}", MAX_ANSWER_BYTES)));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn transport(&self, e: reqwest::Error, what: &str) -> ApiError {
        if let Some(message) = tls::tls_failure(&e) {
            return ApiError::Tls {
                url: self.origin.clone(),
                message,
            };
        }
        if e.is_timeout() {
            return ApiError::Timeout {
                what: what.to_string(),
                after: self.request_timeout,
            };
        }
        let mut message = e.to_string();
        let mut cur = std::error::Error::source(&e);
        while let Some(s) = cur {
            let t = s.to_string();
            if !message.contains(&t) {
                message.push_str(": ");
                message.push_str(&t);
            }
            cur = s.source();
        }
        ApiError::Transport {
            url: self.origin.clone(),
            message,
        }
    }

    async fn authorize(
        &self,
        rb: reqwest::RequestBuilder,
        method: &Method,
    ) -> Result<reqwest::RequestBuilder, ApiError> {
        match &self.auth {
            AuthState::Token { header, .. } => Ok(rb.header(header::AUTHORIZATION, header.clone())),
            AuthState::Ticket {
                user,
                password,
                renew_after,
                current,
            } => {
                let mut cur = current.lock().await;
                let fresh = cur.as_ref().is_some_and(|t| t.at.elapsed() < *renew_after);
                if !fresh {
                    let renewed = match cur.as_ref() {
                        // renewal: the ticket itself is the password
                        Some(old) if old.at.elapsed() < TICKET_LIFETIME => {
                            match self.login(user, &old.ticket).await {
                                Ok(t) => Some(t),
                                Err(e) => {
                                    tracing::debug!(error = %e, "ticket renewal failed; logging in again");
                                    None
                                }
                            }
                        }
                        _ => None,
                    };
                    let t = match renewed {
                        Some(t) => t,
                        None => self.login(user, password).await?,
                    };
                    *cur = Some(t);
                }
                let Some(t) = cur.as_ref() else {
                    return Err(ApiError::Config("no ticket after login".into()));
                };
                let rb = rb.header(header::COOKIE, t.cookie.clone());
                Ok(if *method == Method::GET {
                    rb
                } else {
                    rb.header("CSRFPreventionToken", t.csrf.clone())
                })
            }
        }
    }

    /// `POST /access/ticket`.
    async fn login(&self, user: &str, password: &Secret) -> Result<Ticket, ApiError> {
        let what = "POST /access/ticket";
        let body = Params::new()
            .set("username", user)
            .set("password", password.expose());
        let resp = self
            .http
            .post(format!("{}/access/ticket", self.base))
            .header(header::ACCEPT, "application/json")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body.encode())
            .send()
            .await
            .map_err(|e| self.transport(e, what))?;
        let status = resp.status().as_u16();
        let reason = resp
            .extensions()
            .get::<hyper::ext::ReasonPhrase>()
            .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned());
        let bytes = self.body(resp, what).await?;
        if !(200..300).contains(&status) {
            return Err(self.explain(ApiError::Http(parse_error(
                status,
                reason.as_deref(),
                &bytes,
            ))));
        }
        let data = parse_success(what, &bytes)?.data;
        let (ticket, csrf) = parse_ticket(&data).map_err(|r| ApiError::decode(what, r))?;
        tracing::debug!(user, "logged in (ticket)");
        Ok(Ticket {
            cookie: sensitive(&format!("PVEAuthCookie={}", ticket.expose()))?,
            csrf: sensitive(csrf.expose())?,
            ticket,
            at: Instant::now(),
        })
    }

    /// Wait for a task: poll its status with backoff until it stops or `timeout` passes. A
    /// 400 right after the task started means Proxmox does not list it yet; transport
    /// failures retry the poll (never the call that started the task).
    pub(crate) async fn wait_task(
        &self,
        upid: &Upid,
        timeout: Duration,
        poll: PollPolicy,
        grace: Duration,
    ) -> Result<TaskDone, Error> {
        let path = format!(
            "/nodes/{}/tasks/{}/status",
            segment(&upid.node),
            segment(upid.as_str())
        );
        let started = Instant::now();
        // since when, and why, the task's status cannot be read
        let mut unreadable: Option<(Instant, String)> = None;
        loop {
            let asked = Instant::now();
            let polled = self.call(Method::GET, &path, &Params::new()).await;
            if polled.is_ok() {
                unreadable = None;
            }
            match polled {
                Ok(r) => match phx_backend_pct::parse::task_status(&r.data) {
                    phx_backend_pct::parse::TaskStatus::Running => {}
                    phx_backend_pct::parse::TaskStatus::Ok { warnings } => {
                        if warnings > 0 {
                            tracing::warn!("task {upid} finished with {warnings} warning(s)");
                        }
                        return Ok(TaskDone {
                            upid: Some(upid.to_string()),
                            warnings,
                        });
                    }
                    phx_backend_pct::parse::TaskStatus::Failed(exit_status) => {
                        return Err(Error::TaskFailed {
                            upid: upid.to_string(),
                            exit_status,
                            log_tail: self.log_tail(upid).await,
                        });
                    }
                },
                Err(ApiError::Http(h)) if h.status == 400 && started.elapsed() < grace => {
                    tracing::debug!("task {upid} not visible yet");
                }
                Err(e @ (ApiError::Transport { .. } | ApiError::Timeout { .. })) => {
                    tracing::warn!("polling task {upid}: {e}; polling again");
                    unreadable.get_or_insert_with(|| (asked, String::new())).1 = e.to_string();
                }
                Err(ApiError::Http(h))
                    if h.status >= 500 && Error::from(ApiError::Http(h.clone())).is_retryable() =>
                {
                    tracing::warn!("polling task {upid}: {h}; polling again");
                    unreadable.get_or_insert_with(|| (asked, String::new())).1 = h.to_string();
                }
                Err(e) => {
                    let core = Error::from(e);
                    return Err(if core.is_retryable() {
                        Error::backend(
                            BACKEND,
                            format!(
                                "task {upid} was started, but its status cannot be read: {core}"
                            ),
                        )
                    } else {
                        core
                    });
                }
            }
            let spent = started.elapsed();
            // the node is gone: stop waiting (never send the call again), say what may run on
            if let Some((since, why)) = &unreadable
                && (since.elapsed() >= TASK_UNREADABLE_LIMIT || spent >= timeout)
            {
                return Err(Error::backend(
                    BACKEND,
                    format!(
                        "task {upid} was started, but its status could not be read for {:.0}s ({why}); \
                         it may still be running on node {}: check it there (Datacenter > Tasks) \
                         before running phx again",
                        since.elapsed().as_secs_f64(),
                        upid.node
                    ),
                ));
            }
            if spent >= timeout {
                return Err(Error::Timeout {
                    operation: format!("task {upid}"),
                    after: timeout,
                });
            }
            tokio::time::sleep(poll.wait(spent).min(timeout - spent)).await;
        }
    }

    /// The last lines of a task's log (empty when it cannot be read).
    pub(crate) async fn log_tail(&self, upid: &Upid) -> Vec<String> {
        let path = format!(
            "/nodes/{}/tasks/{}/log",
            segment(&upid.node),
            segment(upid.as_str())
        );
        let page = 500u64;
        let first = self
            .call(
                Method::GET,
                &path,
                &Params::new().set("start", 0).set("limit", page),
            )
            .await;
        let reply = match first {
            Ok(r) if r.total.is_some_and(|t| t > page) => {
                let start = r.total.unwrap_or(page).saturating_sub(LOG_TAIL as u64);
                self.call(
                    Method::GET,
                    &path,
                    &Params::new().set("start", start).set("limit", LOG_TAIL),
                )
                .await
                .unwrap_or(r)
            }
            Ok(r) => r,
            Err(e) => {
                tracing::debug!("reading the log of {upid}: {e}");
                return Vec::new();
            }
        };
        let lines = task_log_lines(&reply.data);
        let skip = lines.len().saturating_sub(LOG_TAIL);
        lines.into_iter().skip(skip).collect()
    }
}

/// `GET .../tasks/{upid}/log` → the lines in order.
pub fn task_log_lines(v: &Value) -> Vec<String> {
    let mut items: Vec<(u64, String)> = v
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|l| {
            Some((
                phx_backend_pct::parse::number(&l["n"]).unwrap_or(0),
                phx_backend_pct::parse::text(&l["t"])?,
            ))
        })
        .collect();
    items.sort_by_key(|(n, _)| *n);
    items.into_iter().map(|(_, t)| t).collect()
}

/// `POST /access/ticket` → the ticket and the CSRF token.
pub fn parse_ticket(v: &Value) -> Result<(Secret, Secret), String> {
    let ticket = v["ticket"]
        .as_str()
        .filter(|t| t.starts_with("PVE"))
        .ok_or("no ticket in the answer")?;
    let csrf = v["CSRFPreventionToken"]
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or("no CSRFPreventionToken in the answer")?;
    Ok((Secret::new(ticket), Secret::new(csrf)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_normalised_to_the_api_origin() {
        let u = |s: &str| normalize_url(s).map(|u| u.to_string());
        assert_eq!(u("https://pve1:8006").unwrap(), "https://pve1:8006/");
        assert_eq!(
            u("https://pve1:8006/api2/json/").unwrap(),
            "https://pve1:8006/"
        );
        assert_eq!(u("pve1").unwrap(), "https://pve1:8006/");
        assert_eq!(u("10.0.0.2:443").unwrap(), "https://10.0.0.2/");
        assert_eq!(
            u("https://pve.example.com").unwrap(),
            "https://pve.example.com:8006/"
        );
        assert!(u("http://pve1:8006").is_err());
        assert!(u("https://").is_err());
    }

    #[test]
    fn task_log_lines_are_ordered() {
        let v = serde_json::json!([{"n": 2, "t": "TASK OK"}, {"n": "1", "t": "starting"}]);
        assert_eq!(task_log_lines(&v), vec!["starting", "TASK OK"]);
    }
}
