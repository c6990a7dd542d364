//! What phx applied inside a guest, recorded in one marked line of its Proxmox `description`
//! so a re-run skips it (the rest of the description is kept as the operator wrote it):
//!
//! ```text
//! [phx] features=base_setup,dns_server app=homelab_dns.sh@9f0c2a1b44d0e6f1
//! ```

const MARK: &str = "[phx]";

/// Applied features and application script.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// Features that ran successfully, in order.
    pub features: Vec<String>,
    /// `(script name, content hash)` of the last successful application script run.
    pub app: Option<(String, String)>,
}

impl Applied {
    /// Read the marked line from a description.
    pub fn parse(description: Option<&str>) -> Self {
        let mut a = Applied::default();
        let Some(line) =
            description.and_then(|d| d.lines().find(|l| l.trim_start().starts_with(MARK)))
        else {
            return a;
        };
        for part in line.trim_start()[MARK.len()..].split_whitespace() {
            if let Some(f) = part.strip_prefix("features=") {
                a.features = f
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
            } else if let Some(app) = part.strip_prefix("app=") {
                a.app = app
                    .rsplit_once('@')
                    .map(|(n, h)| (n.to_string(), h.to_string()));
            }
        }
        a
    }

    /// The description with the marked line replaced (or appended).
    pub fn write(&self, description: Option<&str>) -> String {
        let mut line = MARK.to_string();
        if !self.features.is_empty() {
            line.push_str(&format!(" features={}", self.features.join(",")));
        }
        if let Some((n, h)) = &self.app {
            line.push_str(&format!(" app={n}@{h}"));
        }
        let mut out: Vec<String> = description
            .unwrap_or("")
            .lines()
            .filter(|l| !l.trim_start().starts_with(MARK))
            .map(str::to_string)
            .collect();
        while out.last().is_some_and(|l| l.trim().is_empty()) {
            out.pop();
        }
        out.push(line);
        out.join("\n")
    }
}

/// FNV-1a, 64 bit: a stable fingerprint of a script's content (not a security measure).
pub fn fingerprint(data: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_and_keeps_the_operators_text() {
        let a = Applied {
            features: vec!["base_setup".into(), "docker".into()],
            app: Some(("app.sh".into(), "00ff".into())),
        };
        let d = a.write(Some("Managed by the lab team\n[phx] features=old"));
        assert_eq!(
            d,
            "Managed by the lab team\n[phx] features=base_setup,docker app=app.sh@00ff"
        );
        assert_eq!(Applied::parse(Some(&d)), a);
        assert_eq!(Applied::parse(None), Applied::default());
    }
}
