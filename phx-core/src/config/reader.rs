//! A tolerant JSON object reader: typed getters that record findings with JSON paths instead
//! of failing at the first problem, so `phx config validate` reports everything at once.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::str::FromStr;

use serde_json::Value;

use super::finding::{JsonPath, Sink};
use super::json::Json;
use crate::types::{GuestId, ParseError};

/// The entries of a JSON object, in file order.
pub(crate) type Entries<'v> = [(Cow<'v, str>, Json<'v>)];

pub(crate) fn type_name(v: &Json<'_>) -> String {
    match v {
        Json::Null => "null".into(),
        Json::Bool(b) => format!("boolean {b}"),
        Json::Number(n) => format!("number {n}"),
        Json::String(s) => format!("string {s:?}"),
        Json::Array(_) => "an array".into(),
        Json::Object(_) => "an object".into(),
    }
}

/// Which entries of an object were read: a bit each for the first 64 (objects are small), a
/// flag each for any more.
#[derive(Debug)]
struct Used {
    bits: u64,
    more: Vec<bool>,
}

impl Used {
    fn new(len: usize) -> Self {
        Self {
            bits: 0,
            more: vec![false; len.saturating_sub(64)],
        }
    }
    fn set(&mut self, i: usize) {
        match i.checked_sub(64) {
            None => self.bits |= 1 << i,
            Some(j) => self.more[j] = true,
        }
    }
    fn get(&self, i: usize) -> bool {
        match i.checked_sub(64) {
            None => self.bits & (1 << i) != 0,
            Some(j) => self.more[j],
        }
    }
}

/// Reads the keys of one JSON object, remembering which were used.
#[derive(Debug)]
pub(crate) struct Obj<'v> {
    /// The object's entries. Scanning this short list is cheap, and a few dozen keys are asked
    /// for per container, most of them absent.
    entries: &'v Entries<'v>,
    /// Which entries were read.
    used: Used,
    pub path: JsonPath,
    /// File-root defaults (the LXC file's top-level keys act as defaults for every container).
    fallback: Option<&'v Entries<'v>>,
    /// Set when a required value was missing or invalid.
    pub failed: bool,
}

impl<'v> Obj<'v> {
    /// Read the entries of an object. Of a key given twice the last one counts, as in jq (the
    /// shell tool) and serde_json; [`Obj::extra`] reports the others.
    pub(crate) fn new(entries: &'v Entries<'v>, path: JsonPath) -> Self {
        let used = Used::new(entries.len());
        Self {
            entries,
            used,
            path: path.sealed(),
            fallback: None,
            failed: false,
        }
    }

    /// Read `v` as an object, or record a type error.
    pub(crate) fn of(v: &'v Json<'v>, path: JsonPath, s: &mut Sink) -> Option<Self> {
        match v {
            Json::Object(entries) => Some(Self::new(entries, path)),
            other => {
                s.error(
                    &path,
                    "type",
                    format!("expected an object, found {}", type_name(other)),
                );
                None
            }
        }
    }

    pub(crate) fn with_fallback(mut self, root: &'v Entries<'v>) -> Self {
        self.fallback = Some(root);
        self
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.entries.iter().rposition(|(k, _)| k == key)
    }

    fn fallback_value(&self, key: &str) -> Option<&'v Json<'v>> {
        let root = self.fallback?;
        root.iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .filter(|v| !v.is_null())
    }

    pub(crate) fn has(&self, key: &str) -> bool {
        self.position(key)
            .is_some_and(|i| !self.entries[i].1.is_null())
    }

    /// The raw value of `key` (falling back to the file root), marking it used. `null` counts
    /// as absent, like jq's `// empty` in the shell tool.
    pub(crate) fn raw(&mut self, key: &'static str) -> Option<(&'v Json<'v>, JsonPath)> {
        if let Some(i) = self.position(key) {
            self.used.set(i);
            let v = &self.entries[i].1;
            if !v.is_null() {
                return Some((v, self.path.field(key)));
            }
        }
        self.fallback_value(key)
            .map(|v| (v, JsonPath::root().field(key)))
    }

    /// Whether `key` has a value here or in the file-root defaults.
    fn present(&self, key: &str) -> bool {
        self.has(key) || self.fallback_value(key).is_some()
    }

    /// `value`, or a `required` finding when `key` is absent (a present but invalid value was
    /// reported by the getter).
    fn required<T>(&mut self, s: &mut Sink, key: &'static str, value: Option<T>) -> Option<T> {
        if value.is_none() && !self.present(key) {
            self.missing(s, key);
        }
        value
    }

    fn missing(&mut self, s: &mut Sink, key: &str) {
        self.failed = true;
        s.error(
            &self.path.key(key),
            "required",
            format!("missing required key {key:?}"),
        );
    }

    fn type_err(&mut self, s: &mut Sink, path: &JsonPath, expected: &str, v: &Json<'_>) {
        self.failed = true;
        s.error(
            path,
            "type",
            format!("expected {expected}, found {}", type_name(v)),
        );
    }

    /// An optional string.
    pub(crate) fn opt_str(&mut self, s: &mut Sink, key: &'static str) -> Option<String> {
        let (v, p) = self.raw(key)?;
        match v {
            Json::String(x) => Some(x.to_string()),
            other => {
                self.type_err(s, &p, "a string", other);
                None
            }
        }
    }

    /// A required string.
    pub(crate) fn req_str(&mut self, s: &mut Sink, key: &'static str) -> Option<String> {
        let v = self.opt_str(s, key);
        self.required(s, key, v)
    }

    /// An optional boolean; tolerates `0`/`1` and `"true"`/`"false"`.
    pub(crate) fn opt_bool(&mut self, s: &mut Sink, key: &'static str) -> Option<bool> {
        let (v, p) = self.raw(key)?;
        match v {
            Json::Bool(b) => Some(*b),
            Json::Number(n) if n.as_u64() == Some(0) => Some(false),
            Json::Number(n) if n.as_u64() == Some(1) => Some(true),
            Json::String(x) if matches!(x.as_ref(), "true" | "1" | "yes") => Some(true),
            Json::String(x) if matches!(x.as_ref(), "false" | "0" | "no") => Some(false),
            other => {
                self.type_err(s, &p, "a boolean", other);
                None
            }
        }
    }

    /// An optional non-negative integer; tolerates numeric strings (`"16"`).
    pub(crate) fn opt_uint(&mut self, s: &mut Sink, key: &'static str) -> Option<u64> {
        let (v, p) = self.raw(key)?;
        // Whole numbers written as floats (`4096.0`, `1e3`) are fine; beyond u64 they are
        // too large, never silently cut to u64::MAX.
        const U64_END: f64 = 18_446_744_073_709_551_616.0;
        let too_large = |f: f64| f >= U64_END;
        let parsed = match v {
            Json::Number(n) => n.as_u64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0 && !too_large(*f))
                    .map(|f| f as u64)
            }),
            Json::String(x) => x.trim().parse::<u64>().ok(),
            _ => None,
        };
        let huge = match v {
            Json::Number(n) => n.as_u64().is_none() && n.as_f64().is_some_and(too_large),
            Json::String(x) => {
                let t = x.trim();
                !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) && parsed.is_none()
            }
            _ => false,
        };
        if huge {
            self.failed = true;
            s.error(
                &p,
                "too-large",
                format!("{} is too large (at most {})", type_name(v), u64::MAX),
            );
            return None;
        }
        if parsed.is_none() {
            let negative = v.as_i64().is_some_and(|n| n < 0) || v.as_f64().is_some_and(|f| f < 0.0);
            self.failed = true;
            if negative {
                s.error(
                    &p,
                    "non-positive",
                    format!("must not be negative, found {}", type_name(v)),
                );
            } else {
                s.error(
                    &p,
                    "type",
                    format!("expected a non-negative integer, found {}", type_name(v)),
                );
            }
        }
        parsed
    }

    /// An optional non-negative integer of at most `max` (what Proxmox or phx can hold).
    pub(crate) fn opt_uint_max(
        &mut self,
        s: &mut Sink,
        key: &'static str,
        max: u64,
    ) -> Option<u64> {
        let v = self.opt_uint(s, key)?;
        if v > max {
            self.failed = true;
            s.error(
                &self.path.key(key),
                "too-large",
                format!("{key} {v} is too large (at most {max})"),
            );
            return None;
        }
        Some(v)
    }

    /// A required non-negative integer.
    pub(crate) fn req_uint(&mut self, s: &mut Sink, key: &'static str) -> Option<u64> {
        let v = self.opt_uint(s, key);
        self.required(s, key, v)
    }

    /// An optional string parsed into a checked type; any other JSON type is a type error
    /// (`"name": 42` is a mistake even though `42` would be a valid hostname).
    pub(crate) fn opt_parse<T: FromStr<Err = ParseError>>(
        &mut self,
        s: &mut Sink,
        key: &'static str,
    ) -> Option<T> {
        let (v, p) = self.raw(key)?;
        let parsed = match v {
            Json::String(x) => parse_text(x, &p, s),
            other => {
                s.error(
                    &p,
                    "type",
                    format!("expected a string, found {}", type_name(other)),
                );
                None
            }
        };
        if parsed.is_none() {
            self.failed = true;
        }
        parsed
    }

    /// An optional guest id, given as a string (`"900"`) or a number (`9000`).
    pub(crate) fn opt_id(&mut self, s: &mut Sink, key: &'static str) -> Option<GuestId> {
        let (v, p) = self.raw(key)?;
        let parsed = parse_value(v, &p, s);
        if parsed.is_none() {
            self.failed = true;
        }
        parsed
    }

    /// A required string parsed into a checked type.
    pub(crate) fn req_parse<T: FromStr<Err = ParseError>>(
        &mut self,
        s: &mut Sink,
        key: &'static str,
    ) -> Option<T> {
        let v = self.opt_parse(s, key);
        self.required(s, key, v)
    }

    /// A string or a list of strings (`"8.8.8.8"`, `["10.0.0.1", "8.8.8.8"]`, `"a, b"`).
    pub(crate) fn str_or_list(
        &mut self,
        s: &mut Sink,
        key: &'static str,
    ) -> Vec<(String, JsonPath)> {
        let Some((v, p)) = self.raw(key) else {
            return Vec::new();
        };
        let p = p.sealed();
        match v {
            Json::String(x) => x
                .split([',', ' ', ';'])
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| (t.to_string(), p.clone()))
                .collect(),
            Json::Array(items) => {
                let mut out = Vec::new();
                for (i, it) in items.iter().enumerate() {
                    match it {
                        Json::String(x) => out.push((x.trim().to_string(), p.index(i))),
                        other => self.type_err(s, &p.index(i), "a string", other),
                    }
                }
                out
            }
            other => {
                self.type_err(s, &p, "a string or an array of strings", other);
                Vec::new()
            }
        }
    }

    /// An array of strings.
    pub(crate) fn str_list(&mut self, s: &mut Sink, key: &'static str) -> Vec<(String, JsonPath)> {
        let Some((v, p)) = self.raw(key) else {
            return Vec::new();
        };
        let p = p.sealed();
        match v {
            Json::Array(items) => {
                let mut out = Vec::new();
                for (i, it) in items.iter().enumerate() {
                    match it {
                        Json::String(x) => out.push((x.to_string(), p.index(i))),
                        Json::Number(n) => out.push((n.to_string(), p.index(i))),
                        other => self.type_err(s, &p.index(i), "a string", other),
                    }
                }
                out
            }
            other => {
                self.type_err(s, &p, "an array of strings", other);
                Vec::new()
            }
        }
    }

    /// A nested object.
    pub(crate) fn obj(&mut self, s: &mut Sink, key: &'static str) -> Option<Obj<'v>> {
        let (v, p) = self.raw(key)?;
        let o = Obj::of(v, p, s);
        if o.is_none() {
            self.failed = true;
        }
        o
    }

    /// The items of a nested array, each with its path.
    pub(crate) fn arr(
        &mut self,
        s: &mut Sink,
        key: &'static str,
    ) -> impl Iterator<Item = (&'v Json<'v>, JsonPath)> + use<'v> {
        let (items, p): (&'v [Json<'v>], JsonPath) = match self.raw(key) {
            Some((Json::Array(items), p)) => (items, p.sealed()),
            Some((other, p)) => {
                self.type_err(s, &p, "an array", other);
                (&[], p)
            }
            None => (&[], JsonPath::root()),
        };
        items
            .iter()
            .enumerate()
            .map(move |(i, it)| (it, p.index(i)))
    }

    /// Any JSON value, kept as is.
    pub(crate) fn value(&mut self, key: &'static str) -> Option<Value> {
        self.raw(key).map(|(v, _)| v.to_value())
    }

    /// The keys nobody read: kept in an `extra` map and reported as warnings. A key given more
    /// than once is reported here too (only its last value is ever read).
    pub(crate) fn extra(&self, s: &mut Sink, ignore: &[&str]) -> BTreeMap<String, Value> {
        let mut out = BTreeMap::new();
        for (i, (k, v)) in self.entries.iter().enumerate() {
            if self.used.get(i) || ignore.contains(&k.as_ref()) {
                continue;
            }
            if self.entries[i + 1..].iter().any(|(later, _)| later == k) {
                s.warn(
                    &self.path.key(k),
                    "duplicate-key",
                    format!("key {k:?} is given more than once; the last one is used"),
                );
                continue;
            }
            s.warn(
                &self.path.key(k),
                "unknown-key",
                format!("key {k:?} is not used by phx; it is kept but has no effect"),
            );
            out.insert(k.to_string(), v.to_value());
        }
        out
    }
}

/// Parse a JSON string (or number) into a checked type, recording a `value` finding on failure.
pub(crate) fn parse_value<T: FromStr<Err = ParseError>>(
    v: &Json<'_>,
    p: &JsonPath,
    s: &mut Sink,
) -> Option<T> {
    match v {
        Json::String(x) => parse_text(x, p, s),
        Json::Number(n) => parse_text(&n.to_string(), p, s),
        other => {
            s.error(
                p,
                "type",
                format!("expected a string, found {}", type_name(other)),
            );
            None
        }
    }
}

fn parse_text<T: FromStr<Err = ParseError>>(text: &str, p: &JsonPath, s: &mut Sink) -> Option<T> {
    match text.parse::<T>() {
        Ok(t) => Some(t),
        Err(e) => {
            s.error(p, "value", e.to_string());
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_past_the_64th_are_not_reported_as_unknown() {
        let text = format!(
            "{{{}}}",
            (0..70)
                .map(|i| format!("\"k{i}\": {i}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let json = Json::parse(&text).unwrap();
        let mut s = Sink::new("test.json");
        let mut o = Obj::of(&json, JsonPath::root(), &mut s).unwrap();
        assert_eq!(o.opt_uint(&mut s, "k3"), Some(3));
        assert_eq!(o.opt_uint(&mut s, "k66"), Some(66));
        let extra = o.extra(&mut s, &[]);
        assert_eq!(extra.len(), 68);
        assert!(!extra.contains_key("k3") && !extra.contains_key("k66"));
        assert!(
            extra.contains_key("k63") && extra.contains_key("k64") && extra.contains_key("k69")
        );
    }
}
