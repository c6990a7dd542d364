//! Raw `lxc.*` lines in `/etc/pve/lxc/<id>.conf`: Proxmox has no API for them, so they are
//! edited in the file, keeping every other line (keys, description comments, `[snapshot]`
//! and `[pending]` sections) exactly as it was.

/// Split a config file into its main section and the rest (from the first `[section]` line).
fn split_main(text: &str) -> (&str, &str) {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.starts_with('[') {
            return (&text[..offset], &text[offset..]);
        }
        offset += line.len();
    }
    (text, "")
}

/// The raw `lxc.*` lines of the main section, in file order.
pub fn raw_lxc(text: &str) -> Vec<(String, String)> {
    split_main(text)
        .0
        .lines()
        .filter(|l| l.starts_with("lxc."))
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

/// The `lock:` value of the main section.
pub fn lock(text: &str) -> Option<String> {
    split_main(text)
        .0
        .lines()
        .find_map(|l| l.strip_prefix("lock:"))
        .map(|v| v.trim().to_string())
}

/// `text` with the main section's `lxc.*` lines replaced by `lines` (placed where the first
/// old one was, or after the last key), every other line kept.
pub fn replace_raw_lxc(text: &str, lines: &[(String, String)]) -> String {
    let (main, rest) = split_main(text);
    let body = main.trim_end_matches('\n');
    let trailing = &main[body.len()..];
    let mut kept: Vec<String> = Vec::new();
    let mut at: Option<usize> = None;
    // Split at '\n' only (not `lines()`), so a line's '\r' is kept as it was.
    for l in body.split('\n').filter(|_| !body.is_empty()) {
        if l.starts_with("lxc.") {
            at.get_or_insert(kept.len());
        } else {
            kept.push(l.to_string());
        }
    }
    let pos = at.unwrap_or_else(|| {
        kept.iter()
            .rposition(|l| !l.trim().is_empty())
            .map_or(kept.len(), |p| p + 1)
    });
    let new: Vec<String> = lines.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    kept.splice(pos..pos, new);
    let mut out = kept.join("\n");
    if !out.is_empty() {
        out.push_str(if trailing.is_empty() { "\n" } else { trailing });
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONF: &str = "#web%20server\narch: amd64\nhostname: web\nlxc.apparmor.profile: unconfined\nmemory: 512\nlxc.mount.auto: proc:rw\nunprivileged: 1\n\n[before]\narch: amd64\nlxc.apparmor.profile: unconfined\nsnaptime: 1700000000\n";

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| ((*a).to_string(), (*b).to_string()))
            .collect()
    }

    #[test]
    fn replacing_keeps_every_other_line_and_the_snapshot_sections() {
        let out = replace_raw_lxc(
            CONF,
            &pairs(&[("lxc.cgroup2.devices.allow", "c 195:* rwm")]),
        );
        assert_eq!(
            out,
            "#web%20server\narch: amd64\nhostname: web\nlxc.cgroup2.devices.allow: c 195:* rwm\nmemory: 512\nunprivileged: 1\n\n[before]\narch: amd64\nlxc.apparmor.profile: unconfined\nsnaptime: 1700000000\n"
        );
        assert_eq!(
            raw_lxc(&out),
            pairs(&[("lxc.cgroup2.devices.allow", "c 195:* rwm")])
        );
    }

    #[test]
    fn new_lines_go_after_the_last_key_and_an_unchanged_file_is_identical() {
        let plain = "arch: amd64\nhostname: web\n";
        let out = replace_raw_lxc(plain, &pairs(&[("lxc.idmap", "u 0 100000 65536")]));
        assert_eq!(
            out,
            "arch: amd64\nhostname: web\nlxc.idmap: u 0 100000 65536\n"
        );
        assert_eq!(replace_raw_lxc(&out, &raw_lxc(&out)), out);
        assert_eq!(replace_raw_lxc(&out, &[]), plain);
    }

    #[test]
    fn carriage_returns_of_other_lines_are_kept() {
        // Found by the pct_output fuzz target: a line ending "\r\r\n" lost a '\r'.
        let conf = "arch: amd64\r\r\nlxc.idmap: u 0 1 2\r\nmemory: 512\r\n";
        let out = replace_raw_lxc(conf, &[]);
        assert_eq!(out, "arch: amd64\r\r\nmemory: 512\r\n");
        let out = replace_raw_lxc(conf, &pairs(&[("lxc.idmap", "u 0 1 3")]));
        assert_eq!(out, "arch: amd64\r\r\nlxc.idmap: u 0 1 3\nmemory: 512\r\n");
    }

    #[test]
    fn lock_is_read_from_the_main_section_only() {
        assert_eq!(lock("arch: amd64\nlock: create\n"), Some("create".into()));
        assert_eq!(lock("arch: amd64\n\n[s]\nlock: snapshot\n"), None);
    }
}
