//! Request encoding with Proxmox's rules (proxmox-api.md A.3): parameters are
//! `application/x-www-form-urlencoded` (the query string of GET/DELETE, the body of POST/PUT),
//! booleans are `1`/`0`, an array is the key repeated (`command=ls&command=-la`), and config
//! removals are one `delete=a,b` list.

use std::fmt;

/// Parameter names whose values are secrets: never logged, `<redacted>` in `Debug`.
const SECRET_KEYS: &[&str] = &["password", "cipassword", "new-password"];

/// Request parameters in order; a repeated key is an array parameter.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, String)>);

impl<K: Into<String>, V: ToString> FromIterator<(K, V)> for Params {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut p = Params::new();
        for (k, v) in iter {
            p.push(k, v);
        }
        p
    }
}

impl Params {
    /// No parameters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add `key=value`.
    pub fn set(mut self, key: impl Into<String>, value: impl ToString) -> Self {
        self.push(key, value);
        self
    }

    /// Add `key=value` in place.
    pub fn push(&mut self, key: impl Into<String>, value: impl ToString) {
        self.0.push((key.into(), value.to_string()));
    }

    /// Add a boolean as `1`/`0`.
    pub fn flag(self, key: impl Into<String>, value: bool) -> Self {
        self.set(key, if value { "1" } else { "0" })
    }

    /// Add `key=value` when there is a value.
    pub fn opt(self, key: impl Into<String>, value: Option<impl ToString>) -> Self {
        match value {
            Some(v) => self.set(key, v),
            None => self,
        }
    }

    /// An array parameter: the key once per item.
    pub fn list(mut self, key: &str, items: impl IntoIterator<Item = impl ToString>) -> Self {
        for i in items {
            self.push(key, i);
        }
        self
    }

    /// `delete=k1,k2` when there is anything to delete.
    pub fn delete(self, keys: &[String]) -> Self {
        if keys.is_empty() {
            self
        } else {
            self.set("delete", keys.join(","))
        }
    }

    /// Every `key=value`, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    /// Whether there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The form encoding (`a=1&b=x%20y`).
    pub fn encode(&self) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.0 {
            s.append_pair(k, v);
        }
        s.finish()
    }

    /// The parameter names, for logs (values may be secrets).
    pub fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_str()).collect()
    }
}

impl fmt::Debug for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_list();
        for (k, v) in &self.0 {
            if SECRET_KEYS.contains(&k.as_str()) {
                m.entry(&(k, "<redacted>"));
            } else {
                m.entry(&(k, v));
            }
        }
        m.finish()
    }
}

/// Percent-encode one path segment (a UPID, a snapshot name): everything but RFC 3986
/// `pchar`s, so `:`, `@` and `!` of a UPID stay readable.
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'@'
            );
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding_follows_proxmox_rules() {
        let p = Params::new()
            .set("vmid", 101)
            .flag("full", true)
            .flag("onboot", false)
            .list("command", ["sh", "-c", "echo a&b=c"])
            .delete(&["mp0".into(), "description".into()])
            .set("net0", "name=eth0,bridge=vmbr0,ip=10.0.0.5/24");
        assert_eq!(
            p.encode(),
            "vmid=101&full=1&onboot=0&command=sh&command=-c&command=echo+a%26b%3Dc&delete=mp0%2Cdescription&net0=name%3Deth0%2Cbridge%3Dvmbr0%2Cip%3D10.0.0.5%2F24"
        );
        assert!(Params::new().delete(&[]).is_empty());
    }

    #[test]
    fn passwords_are_redacted_in_debug() {
        let p = Params::new()
            .set("password", "hunter2")
            .set("hostname", "a");
        let d = format!("{p:?}");
        assert!(!d.contains("hunter2") && d.contains("hostname"), "{d}");
    }

    #[test]
    fn upids_stay_readable_in_paths() {
        assert_eq!(
            segment("UPID:pve:00001234:00005678:66DC5987:vzstart:100:root@pam!phx:"),
            "UPID:pve:00001234:00005678:66DC5987:vzstart:100:root@pam!phx:"
        );
        assert_eq!(segment("a b/c%"), "a%20b%2Fc%25");
    }
}
