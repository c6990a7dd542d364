//! Reading Proxmox's answers: the `{"data": ...}` envelope (with `total` on task lists and
//! logs) and error answers, whose message is the HTTP reason phrase, else the body's
//! `message` (libpve-http-server-perl ≥ 5.2), plus `errors` per parameter (proxmox-api.md A.1).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::{ApiError, HttpError};

/// A successful answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The `data` value (`null` for a synchronous call without result).
    pub data: Value,
    /// `total` beside `data`, where Proxmox sends it.
    pub total: Option<u64>,
}

/// Parse a 2xx body. An empty body is `null` data.
pub fn parse_success(what: &str, body: &[u8]) -> Result<Reply, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Reply {
            data: Value::Null,
            total: None,
        });
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| ApiError::decode(what, e))?;
    let Value::Object(mut m) = v else {
        return Err(ApiError::decode(what, "the answer is not a JSON object"));
    };
    if !m.contains_key("data") {
        return Err(ApiError::decode(what, "the answer has no \"data\""));
    }
    let data = m.remove("data").unwrap_or(Value::Null);
    let total = m.get("total").and_then(phx_backend_pct::parse::number);
    Ok(Reply { data, total })
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// Parse an error answer: `status`, the reason phrase when the server sent its own (`None`
/// for a standard one such as `Internal Server Error`), and the body (possibly empty, `{"data":
/// null}`, or with `message` and `errors`). The reason phrase is the message; when the body's
/// `message` starts with it, the whole (multi-line) body message is kept instead.
pub fn parse_error(status: u16, reason: Option<&str>, body: &[u8]) -> HttpError {
    let v: Option<Value> = serde_json::from_slice(body).ok();
    let body_msg = v
        .as_ref()
        .and_then(|v| v.get("message"))
        .and_then(text)
        .map(|m| m.trim().to_string())
        .filter(|m| !m.is_empty());
    let errors: BTreeMap<String, String> = v
        .as_ref()
        .and_then(|v| v.get("errors"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, x)| Some((k.clone(), text(x)?.trim().to_string())))
                .collect()
        })
        .unwrap_or_default();
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    let message = match (reason, body_msg) {
        (Some(r), Some(b)) if b.lines().next().map(str::trim) == Some(r) => b,
        (Some(r), _) => r.to_string(),
        (None, Some(b)) => b,
        // Not Proxmox's answer (a proxy's error page): show its start, so the operator sees
        // what is in the way.
        (None, None) if v.is_none() && !body.iter().all(u8::is_ascii_whitespace) => format!(
            "{} (the answer is not Proxmox's: {:?})",
            canonical(status),
            crate::upid::excerpt(String::from_utf8_lossy(body).trim())
        ),
        (None, None) => canonical(status).to_string(),
    };
    HttpError {
        status,
        message,
        errors,
    }
}

/// The standard reason phrase of a status, and AnyEvent::HTTP's for 595–599.
pub fn canonical(status: u16) -> &'static str {
    match status {
        595 => "Errors during connection establishment",
        596 => "Errors during TLS negotiation, request sending or header processing",
        597 => "Errors during body receiving or processing",
        598 => "User aborted request via on_header or on_body",
        599 => "Other, usually nonretryable, errors",
        s => reqwest::StatusCode::from_u16(s)
            .ok()
            .and_then(|c| c.canonical_reason())
            .unwrap_or("Unknown status"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_with_total() {
        let r = parse_success("log", br#"{"data":[{"n":1,"t":"TASK OK"}],"total":"1"}"#).unwrap();
        assert_eq!(r.total, Some(1));
        assert_eq!(r.data[0]["t"], "TASK OK");
        assert_eq!(parse_success("x", b"").unwrap().data, Value::Null);
        assert!(parse_success("x", b"[1]").is_err());
        assert!(parse_success("x", b"{\"total\":1}").is_err());
    }

    #[test]
    fn reason_phrase_first_then_body() {
        let e = parse_error(
            500,
            Some("CT is locked (disk)"),
            br#"{"data":null,"message":"CT is locked (disk)\n"}"#,
        );
        assert_eq!(e.message, "CT is locked (disk)");
        let e = parse_error(
            500,
            None,
            br#"{"data":null,"message":"line one\nline two\n"}"#,
        );
        assert_eq!(e.message, "line one\nline two");
        let e = parse_error(
            400,
            Some("Parameter verification failed."),
            br#"{"errors":{"vmid":"VM 218 already exists"},"data":null}"#,
        );
        assert_eq!(e.errors["vmid"], "VM 218 already exists");
        assert_eq!(parse_error(596, None, b"").message, canonical(596));
        assert_eq!(
            parse_error(502, None, b"<html>\n<h1>502 Bad Gateway</h1></html>\n").message,
            "Bad Gateway (the answer is not Proxmox's: \"<html>\\n<h1>502 Bad Gateway</h1></html>\")"
        );
        assert_eq!(
            parse_error(401, Some("authentication failure"), b"").message,
            "authentication failure"
        );
    }
}
