//! One request, the way pveproxy answers it: the `/api2/json` prefix, authentication (token,
//! or ticket plus CSRF token on writes; failures answered after the configured delay), the
//! request encoding rules (query string for GET/DELETE, form or JSON body for POST/PUT, no
//! body on GET/DELETE), then the shared [`Router`] over the cluster, and the answer: the
//! `{"data": ...}` envelope, or the error status with the message's first line as the reason
//! phrase and `{"data":null,"message":...,"errors":...}` as the body.

use phx_core::util::percent_decode;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{ProxyFault, Shared};
use crate::fake::PveError;
use crate::router::{Method, Params};

/// A request as the server read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The API path below `/api2/json`, percent-decoded (`/nodes/pve/lxc`).
    pub path: String,
    /// The raw query string.
    pub query: String,
    /// The raw body.
    pub body: String,
    /// `Content-Type`, when sent.
    pub content_type: Option<String>,
}

/// What the server answers.
pub(crate) struct Answer {
    pub result: Result<(Value, Option<u64>), PveError>,
    /// Wait this long before answering (Proxmox delays failed authentication by 3 s).
    pub delay: Duration,
    /// Close the connection instead of answering (an injected fault).
    pub dropped: bool,
}

impl Answer {
    fn ok(data: Value) -> Self {
        Self {
            result: Ok((data, None)),
            delay: Duration::ZERO,
            dropped: false,
        }
    }
    fn err(e: PveError) -> Self {
        Self {
            result: Err(e),
            delay: Duration::ZERO,
            dropped: false,
        }
    }
}

fn status_error(status: u16, message: impl Into<String>) -> PveError {
    PveError {
        status,
        message: message.into(),
        errors: BTreeMap::new(),
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Form parameters (`a=1&a=2&b=x+y`).
fn form(s: &str) -> Params {
    form_urlencoded::parse(s.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// A JSON body's parameters: strings as they are, numbers printed, `true`/`false` as `1`/`0`,
/// arrays as repeated keys.
fn json_params(body: &[u8]) -> Result<Params, PveError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| status_error(400, format!("unable to parse JSON body - {e}")))?;
    let Value::Object(m) = v else {
        return Err(status_error(400, "JSON body is not an object"));
    };
    let scalar = |k: &str, v: &Value| -> Result<Option<String>, PveError> {
        Ok(match v {
            Value::Null => None,
            Value::Bool(b) => Some(if *b { "1" } else { "0" }.into()),
            Value::Number(n) => Some(n.to_string()),
            Value::String(s) => Some(s.clone()),
            _ => {
                return Err(PveError::param(
                    k,
                    "type check ('string') failed - got a nested value",
                ));
            }
        })
    };
    let mut out = Vec::new();
    for (k, v) in &m {
        match v {
            Value::Array(items) => {
                for it in items {
                    if let Some(s) = scalar(k, it)? {
                        out.push((k.clone(), s));
                    }
                }
            }
            other => {
                if let Some(s) = scalar(k, other)? {
                    out.push((k.clone(), s));
                }
            }
        }
    }
    Ok(out)
}

fn sign(secret: &[u8], what: &str) -> String {
    let mut h = Sha256::new();
    h.update(secret);
    h.update(what.as_bytes());
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(h.finalize())
}

/// `PVE:<user>:<HEX ts>::<signature>`, the shape of a real ticket.
fn make_ticket(secret: &[u8], user: &str, ts: u64) -> String {
    let data = format!("PVE:{user}:{ts:08X}");
    format!("{data}::{}", sign(secret, &data))
}

fn make_csrf(secret: &[u8], user: &str, ts: u64) -> String {
    format!(
        "{ts:08X}:{}",
        sign(secret, &format!("CSRF:{ts:08X}:{user}"))
    )
}

/// The user of a valid, unexpired ticket.
fn check_ticket(secret: &[u8], ticket: &str, lifetime: Duration) -> Option<String> {
    let (data, sig) = ticket.rsplit_once("::")?;
    if sign(secret, data) != sig {
        return None;
    }
    let mut parts = data.splitn(3, ':');
    let (Some("PVE"), Some(user), Some(ts)) = (parts.next(), parts.next(), parts.next()) else {
        return None;
    };
    let ts = u64::from_str_radix(ts, 16).ok()?;
    (now().saturating_sub(ts) <= lifetime.as_secs()).then(|| user.to_string())
}

fn check_csrf(secret: &[u8], token: &str, user: &str, lifetime: Duration) -> bool {
    let Some((ts, _)) = token.split_once(':') else {
        return false;
    };
    let Ok(t) = u64::from_str_radix(ts, 16) else {
        return false;
    };
    make_csrf(secret, user, t) == token && now().saturating_sub(t) <= lifetime.as_secs()
}

enum Caller {
    Token,
    Ticket { user: String },
}

/// Who is calling, from `Authorization: PVEAPIToken=...` or the `PVEAuthCookie` (cookie or
/// `Authorization`), as pve-http-server extracts them.
fn caller(shared: &Shared, method: &str, path: &str, headers: &hyper::HeaderMap) -> Option<Caller> {
    let auth = headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let token = auth
        .split_whitespace()
        .flat_map(|w| w.split(';'))
        .find_map(|w| w.strip_prefix("PVEAPIToken="))
        .or_else(|| {
            auth.split_once("PVEAPIToken ")
                .map(|(_, t)| t.split(';').next().unwrap_or_default())
        });
    if let Some(t) = token {
        let t = percent_decode(t.trim());
        return shared
            .token_accepted(method, path, &t)
            .then_some(Caller::Token);
    }
    let cookie = headers
        .get_all(hyper::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix("PVEAuthCookie="))
        .or_else(|| auth.trim().strip_prefix("PVEAuthCookie="))?;
    let user = check_ticket(
        &shared.secret,
        &percent_decode(cookie),
        shared.opts.ticket_lifetime,
    )?;
    Some(Caller::Ticket { user })
}

fn unauthorized(shared: &Shared, message: &str) -> Answer {
    Answer {
        result: Err(status_error(401, message)),
        delay: shared.opts.auth_failure_delay,
        dropped: false,
    }
}

/// `POST /access/ticket`: a password, or a valid ticket of the same user (renewal).
fn login(shared: &Shared, params: &Params) -> Answer {
    let get = |k: &str| {
        params
            .iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    };
    let mut errors = BTreeMap::new();
    for k in ["username", "password"] {
        if get(k).is_none() {
            errors.insert(
                k.to_string(),
                "property is missing and it is not optional".to_string(),
            );
        }
    }
    if !errors.is_empty() {
        return Answer::err(PveError {
            status: 400,
            message: "Parameter verification failed.".into(),
            errors,
        });
    }
    let mut user = get("username").unwrap_or_default().to_string();
    if !user.contains('@')
        && let Some(realm) = get("realm")
    {
        user = format!("{user}@{realm}");
    }
    let password = get("password").unwrap_or_default();
    let ok = shared
        .opts
        .users
        .iter()
        .any(|(u, p)| *u == user && p == password)
        || check_ticket(&shared.secret, password, shared.opts.ticket_lifetime).as_deref()
            == Some(user.as_str());
    if !ok {
        return unauthorized(shared, "authentication failure");
    }
    let ts = now();
    Answer::ok(json!({
        "ticket": make_ticket(&shared.secret, &user, ts),
        "CSRFPreventionToken": make_csrf(&shared.secret, &user, ts),
        "username": user,
        "clustername": "phx-fake",
        "cap": {},
    }))
}

/// Answer one request.
pub(crate) async fn answer(
    shared: Arc<Shared>,
    method: &str,
    raw_path: &str,
    query: &str,
    headers: &hyper::HeaderMap,
    body: Vec<u8>,
) -> Answer {
    let content_type = headers
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let path = raw_path
        .strip_prefix("/api2/json")
        .filter(|p| p.is_empty() || p.starts_with('/'))
        .map(|p| {
            p.split('/')
                .map(percent_decode)
                .collect::<Vec<_>>()
                .join("/")
        });
    shared.record(RecordedRequest {
        method: method.to_string(),
        path: path.clone().unwrap_or_else(|| raw_path.to_string()),
        query: query.to_string(),
        body: String::from_utf8_lossy(&body).into_owned(),
        content_type: content_type.clone(),
    });
    let Some(path) = path else {
        return Answer::err(status_error(501, "no such uri"));
    };
    let m = match method {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        other => {
            return Answer::err(status_error(
                501,
                format!("Method '{other} {path}' not implemented"),
            ));
        }
    };
    let query_params = form(query);
    let mut params: Params = match m {
        Method::Get | Method::Delete => {
            if !body.is_empty() {
                return Answer::err(status_error(
                    501,
                    format!("Unexpected content for method '{method}'"),
                ));
            }
            Vec::new()
        }
        Method::Post | Method::Put => {
            let is_json = content_type
                .as_deref()
                .is_some_and(|c| c.starts_with("application/json"));
            if is_json {
                match json_params(&body) {
                    Ok(p) => p,
                    Err(e) => return Answer::err(e),
                }
            } else {
                form(&String::from_utf8_lossy(&body))
            }
        }
    };
    // query-string parameters are merged on top of body parameters
    params.retain(|(k, _)| !query_params.iter().any(|(q, _)| q == k));
    params.extend(query_params);

    if m == Method::Post && path == "/access/ticket" {
        return login(&shared, &params);
    }
    match caller(&shared, method, &path, headers) {
        None => return unauthorized(&shared, "Authentication failed!"),
        Some(Caller::Ticket { user }) if m != Method::Get => {
            let csrf = headers
                .get("CSRFPreventionToken")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if !check_csrf(&shared.secret, csrf, &user, shared.opts.ticket_lifetime) {
                return unauthorized(&shared, "Permission denied - invalid csrf token");
            }
        }
        Some(_) => {}
    }

    let mut drop_after = false;
    match shared.proxy_fault(method, &path) {
        Some(ProxyFault::Answer(e)) => return Answer::err(e),
        Some(ProxyFault::Drop { handled: false }) => {
            return Answer {
                dropped: true,
                ..Answer::err(status_error(500, "dropped"))
            };
        }
        Some(ProxyFault::Drop { handled: true }) => drop_after = true,
        None => {}
    }
    let mut a = handle(shared, m, path, params).await;
    a.dropped = drop_after;
    a
}

/// Run the router on the cluster (off the runtime: the state file is read and written).
async fn handle(shared: Arc<Shared>, m: Method, path: String, params: Params) -> Answer {
    let s = shared.clone();
    let joined = tokio::task::spawn_blocking(move || {
        s.store.with(|c| {
            c.lost_response = None;
            c.complete_due();
            let r = s.router.handle(c, m, &path, &params);
            (r, c.lost_response.take())
        })
    })
    .await;
    match joined {
        Ok(Ok((Ok(reply), None))) => Answer {
            result: Ok((reply.data, reply.total)),
            delay: Duration::ZERO,
            dropped: false,
        },
        // the call went through, its answer is lost on the way back
        Ok(Ok((Ok(_), Some(status)))) => Answer::err(status_error(status, "Broken pipe")),
        Ok(Ok((Err(e), _))) => Answer::err(e),
        Ok(Err(e)) => Answer::err(status_error(500, format!("phx fake: state: {e}"))),
        Err(e) => Answer::err(status_error(500, format!("phx fake: handler failed: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_and_csrf_tokens_verify() {
        let key = b"k".to_vec();
        let t = make_ticket(&key, "root@pam", now());
        assert!(t.starts_with("PVE:root@pam:"));
        assert_eq!(
            check_ticket(&key, &t, Duration::from_secs(60)).as_deref(),
            Some("root@pam")
        );
        assert_eq!(check_ticket(b"other", &t, Duration::from_secs(60)), None);
        let old = make_ticket(&key, "root@pam", now() - 100);
        assert_eq!(check_ticket(&key, &old, Duration::from_secs(60)), None);
        let c = make_csrf(&key, "root@pam", now());
        assert!(check_csrf(&key, &c, "root@pam", Duration::from_secs(60)));
        assert!(!check_csrf(&key, &c, "other@pam", Duration::from_secs(60)));
    }

    #[test]
    fn json_bodies_become_parameters() {
        let p =
            json_params(br#"{"vmid":100,"full":true,"command":["ls","-la"],"x":null}"#).unwrap();
        assert_eq!(
            p,
            vec![
                ("command".to_string(), "ls".to_string()),
                ("command".to_string(), "-la".to_string()),
                ("full".to_string(), "1".to_string()),
                ("vmid".to_string(), "100".to_string()),
            ]
        );
        assert_eq!(percent_decode("a%20b%3A%zz"), "a b:%zz");
    }
}
