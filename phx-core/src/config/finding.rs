//! Findings: what the loader and the semantic checks report, each naming file, JSON path and check.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The config is unusable; phx changes nothing.
    Error,
    /// Worth a look; phx proceeds.
    Warning,
}

/// One problem (or notice) found in the config files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Error or warning.
    #[serde(skip)]
    pub severity: Severity,
    /// File name (`phoenix_lxc_configs.json`).
    pub file: String,
    /// JSON path (`lxc_configs."102".network_config.ip`), empty for the whole file.
    pub path: String,
    /// The named check (`duplicate-ip`, `dependency-cycle`, `type`, ...).
    pub check: &'static str,
    /// What is wrong and, where useful, what to do.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}: {}: {}", self.file, self.path, self.message)
        }
    }
}

/// A JSON path, printed like `lxc_configs."102".firewall.rules[2].port`.
///
/// The loader gives every value it reads a path, almost always unused (paths are for
/// findings), so making one must not allocate: the last segment is held inline and borrows
/// `'static` keys, and the segments before it are shared with the parent path. Only
/// extending a path that already has an inline segment allocates; [`JsonPath::sealed`] does
/// that once for a path that is extended many times (an object's path, an array's path).
#[derive(Debug, Clone, Default)]
pub struct JsonPath {
    base: Option<Arc<Link>>,
    last: Option<Seg>,
}

#[derive(Debug)]
struct Link {
    parent: Option<Arc<Link>>,
    seg: Seg,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(Cow<'static, str>),
    Index(usize),
}

impl JsonPath {
    /// The root.
    pub fn root() -> Self {
        Self::default()
    }
    /// `self.key`.
    pub fn key(&self, k: &str) -> Self {
        self.push(Seg::Key(Cow::Owned(k.to_string())))
    }
    /// `self.key` for a key known at compile time (no copy of the key).
    pub(crate) fn field(&self, k: &'static str) -> Self {
        self.push(Seg::Key(Cow::Borrowed(k)))
    }
    /// `self[i]`.
    pub fn index(&self, i: usize) -> Self {
        self.push(Seg::Index(i))
    }
    fn push(&self, seg: Seg) -> Self {
        Self {
            base: self.clone().sealed().base,
            last: Some(seg),
        }
    }
    /// The same path with every segment shared, so extending it does not allocate.
    pub(crate) fn sealed(self) -> Self {
        match self.last {
            None => self,
            Some(seg) => Self {
                base: Some(Arc::new(Link {
                    parent: self.base,
                    seg,
                })),
                last: None,
            },
        }
    }
    /// The segments from the root.
    fn segments(&self) -> Vec<&Seg> {
        let mut out: Vec<&Seg> = self.last.iter().collect();
        let mut cur = &self.base;
        while let Some(link) = cur {
            out.push(&link.seg);
            cur = &link.parent;
        }
        out.reverse();
        out
    }
}

impl PartialEq for JsonPath {
    fn eq(&self, other: &Self) -> bool {
        self.segments() == other.segments()
    }
}

impl Eq for JsonPath {}

fn is_plain(k: &str) -> bool {
    let b = k.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_' || b[0] == b'$')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'$')
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.segments().into_iter().enumerate() {
            match s {
                Seg::Key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    if is_plain(k) {
                        f.write_str(k)?
                    } else {
                        write!(f, "{k:?}")?
                    }
                }
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// Collects findings for one file.
#[derive(Debug)]
pub(crate) struct Sink {
    pub file: String,
    pub findings: Vec<Finding>,
}

impl Sink {
    pub(crate) fn new(file: &str) -> Self {
        Self {
            file: file.to_string(),
            findings: Vec::new(),
        }
    }
    pub(crate) fn error(
        &mut self,
        path: &JsonPath,
        check: &'static str,
        message: impl Into<String>,
    ) {
        self.push(Severity::Error, path, check, message);
    }
    pub(crate) fn warn(
        &mut self,
        path: &JsonPath,
        check: &'static str,
        message: impl Into<String>,
    ) {
        self.push(Severity::Warning, path, check, message);
    }
    fn push(
        &mut self,
        severity: Severity,
        path: &JsonPath,
        check: &'static str,
        message: impl Into<String>,
    ) {
        self.findings.push(Finding {
            severity,
            file: self.file.clone(),
            path: path.to_string(),
            check,
            message: message.into(),
        });
    }
}
