//! A tolerant JSON object reader: typed getters that record findings with JSON paths instead
//! of failing at the first problem, so `phx config validate` reports everything at once.

use std::collections::BTreeMap;
use std::str::FromStr;

use serde_json::{Map, Value};

use super::finding::{JsonPath, Sink};
use crate::types::{GuestId, ParseError};

pub(crate) fn type_name(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// Reads the keys of one JSON object, remembering which were used.
#[derive(Debug)]
pub(crate) struct Obj<'v> {
    /// The object's entries, in key order, each with a "was read" flag. A scan of this short,
    /// contiguous list is much cheaper than a lookup in the map (a few dozen keys are asked
    /// for per container, most of them absent).
    entries: Vec<(&'v str, &'v Value, bool)>,
    pub path: JsonPath,
    /// File-root defaults (the LXC file's top-level keys act as defaults for every container).
    fallback: Option<&'v Map<String, Value>>,
    /// Set when a required value was missing or invalid.
    pub failed: bool,
}

impl<'v> Obj<'v> {
    pub(crate) fn new(map: &'v Map<String, Value>, path: JsonPath) -> Self {
        Self {
            entries: map.iter().map(|(k, v)| (k.as_str(), v, false)).collect(),
            path: path.sealed(),
            fallback: None,
            failed: false,
        }
    }

    /// Read `v` as an object, or record a type error.
    pub(crate) fn of(v: &'v Value, path: JsonPath, s: &mut Sink) -> Option<Self> {
        match v {
            Value::Object(m) => Some(Self::new(m, path)),
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

    pub(crate) fn with_fallback(mut self, root: &'v Map<String, Value>) -> Self {
        self.fallback = Some(root);
        self
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.entries.iter().position(|(k, _, _)| *k == key)
    }

    pub(crate) fn has(&self, key: &str) -> bool {
        self.position(key)
            .is_some_and(|i| !self.entries[i].1.is_null())
    }

    /// The raw value of `key` (falling back to the file root), marking it used. `null` counts
    /// as absent, like jq's `// empty` in the shell tool.
    pub(crate) fn raw(&mut self, key: &'static str) -> Option<(&'v Value, JsonPath)> {
        if let Some(i) = self.position(key) {
            let entry = &mut self.entries[i];
            entry.2 = true;
            if !entry.1.is_null() {
                return Some((entry.1, self.path.field(key)));
            }
        }
        self.fallback
            .and_then(|m| m.get(key))
            .filter(|v| !v.is_null())
            .map(|v| (v, JsonPath::root().field(key)))
    }

    /// Whether `key` has a value here or in the file-root defaults.
    fn present(&self, key: &str) -> bool {
        self.has(key)
            || self
                .fallback
                .and_then(|m| m.get(key))
                .is_some_and(|v| !v.is_null())
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

    fn type_err(&mut self, s: &mut Sink, path: &JsonPath, expected: &str, v: &Value) {
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
            Value::String(x) => Some(x.clone()),
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
            Value::Bool(b) => Some(*b),
            Value::Number(n) if n.as_u64() == Some(0) => Some(false),
            Value::Number(n) if n.as_u64() == Some(1) => Some(true),
            Value::String(x) if matches!(x.as_str(), "true" | "1" | "yes") => Some(true),
            Value::String(x) if matches!(x.as_str(), "false" | "0" | "no") => Some(false),
            other => {
                self.type_err(s, &p, "a boolean", other);
                None
            }
        }
    }

    /// An optional non-negative integer; tolerates numeric strings (`"16"`).
    pub(crate) fn opt_uint(&mut self, s: &mut Sink, key: &'static str) -> Option<u64> {
        let (v, p) = self.raw(key)?;
        let parsed = match v {
            Value::Number(n) => n.as_u64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                    .map(|f| f as u64)
            }),
            Value::String(x) => x.trim().parse::<u64>().ok(),
            _ => None,
        };
        match parsed {
            Some(n) => Some(n),
            None => {
                let negative =
                    v.as_i64().is_some_and(|n| n < 0) || v.as_f64().is_some_and(|f| f < 0.0);
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
                None
            }
        }
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
            Value::String(x) => parse_text(x, &p, s),
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
            Value::String(x) => x
                .split([',', ' ', ';'])
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| (t.to_string(), p.clone()))
                .collect(),
            Value::Array(items) => {
                let mut out = Vec::new();
                for (i, it) in items.iter().enumerate() {
                    match it {
                        Value::String(x) => out.push((x.trim().to_string(), p.index(i))),
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
            Value::Array(items) => {
                let mut out = Vec::new();
                for (i, it) in items.iter().enumerate() {
                    match it {
                        Value::String(x) => out.push((x.clone(), p.index(i))),
                        Value::Number(n) => out.push((n.to_string(), p.index(i))),
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

    /// A nested array of values.
    pub(crate) fn arr(&mut self, s: &mut Sink, key: &'static str) -> Vec<(&'v Value, JsonPath)> {
        let Some((v, p)) = self.raw(key) else {
            return Vec::new();
        };
        let p = p.sealed();
        match v {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, it)| (it, p.index(i)))
                .collect(),
            other => {
                self.type_err(s, &p, "an array", other);
                Vec::new()
            }
        }
    }

    /// Any JSON value, kept as is.
    pub(crate) fn value(&mut self, key: &'static str) -> Option<Value> {
        self.raw(key).map(|(v, _)| v.clone())
    }

    /// The keys nobody read: kept in an `extra` map and reported as warnings.
    pub(crate) fn extra(&self, s: &mut Sink, ignore: &[&str]) -> BTreeMap<String, Value> {
        let mut out = BTreeMap::new();
        for (k, v, used) in &self.entries {
            if *used || ignore.contains(k) {
                continue;
            }
            s.warn(
                &self.path.key(k),
                "unknown-key",
                format!("key {k:?} is not used by phx; it is kept but has no effect"),
            );
            out.insert(k.to_string(), (*v).clone());
        }
        out
    }
}

/// Parse a JSON string (or number) into a checked type, recording a `value` finding on failure.
pub(crate) fn parse_value<T: FromStr<Err = ParseError>>(
    v: &Value,
    p: &JsonPath,
    s: &mut Sink,
) -> Option<T> {
    match v {
        Value::String(x) => parse_text(x, p, s),
        Value::Number(n) => parse_text(&n.to_string(), p, s),
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
