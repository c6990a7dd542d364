//! Where the tests find the shared fixtures: the real Phoenix configs and the captured Proxmox
//! outputs, which live next to the repository (`../shared/fixtures/`), never in it.
//!
//! A test skips only when nothing is configured and there is no `shared/` next to the
//! workspace at all; a variable naming a directory that does not exist, or a `shared/` without
//! the fixtures, fails the test instead of skipping it silently.

use std::path::{Path, PathBuf};

/// The Phoenix configs: `$PHX_PHOENIX_FIXTURES`, else `../shared/fixtures/phoenix`.
/// `None`: skip (said on stderr). Panics when the fixtures are expected but missing.
pub fn phoenix_fixtures() -> Option<PathBuf> {
    from_env("PHX_PHOENIX_FIXTURES", "phoenix")
}

/// The captured Proxmox outputs: `$PHX_PVE_SAMPLES`, else `../shared/fixtures/pve-samples`.
/// `None`: skip (said on stderr). Panics when the samples are expected but missing.
pub fn pve_samples() -> Option<PathBuf> {
    from_env("PHX_PVE_SAMPLES", "pve-samples")
}

#[allow(clippy::print_stderr, clippy::panic)]
fn from_env(var: &str, name: &str) -> Option<PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    match fixtures_dir(
        var,
        std::env::var_os(var).map(PathBuf::from),
        &workspace,
        name,
    ) {
        Ok(Some(dir)) => Some(dir),
        Ok(None) => {
            eprintln!("skipping: no shared/ next to the workspace; set {var}");
            None
        }
        Err(e) => panic!("{e}"),
    }
}

/// The fixtures dir `name` for variable `var` with value `value` (a relative path is taken
/// from `workspace`): `Ok(None)` to skip, `Err` when they are expected but missing.
pub fn fixtures_dir(
    var: &str,
    value: Option<PathBuf>,
    workspace: &Path,
    name: &str,
) -> Result<Option<PathBuf>, String> {
    if let Some(v) = value {
        let dir = workspace.join(&v);
        return if dir.is_dir() {
            Ok(Some(dir))
        } else {
            Err(format!("{var}={} is not a directory", v.display()))
        };
    }
    let shared = workspace.join("../shared");
    let dir = shared.join("fixtures").join(name);
    if dir.is_dir() {
        Ok(Some(dir))
    } else if !shared.exists() {
        Ok(None)
    } else {
        Err(format!(
            "{} exists but has no fixtures/{name}; set {var} to the fixtures",
            shared.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_are_skipped_only_without_the_variable_and_without_shared() {
        let tmp = tempfile::tempdir().unwrap();
        let workspace = tmp.path().join("main");
        std::fs::create_dir_all(&workspace).unwrap();
        let find = |value: Option<&str>| {
            fixtures_dir("PHX_X", value.map(PathBuf::from), &workspace, "phoenix")
        };
        // nothing configured, nothing next to the workspace: skip
        assert_eq!(find(None), Ok(None));
        // a variable naming a directory that does not exist: fail, even without shared/
        assert_eq!(
            find(Some("../nope")),
            Err("PHX_X=../nope is not a directory".to_string())
        );
        // shared/ exists but not the fixture set: fail
        let shared = tmp.path().join("shared");
        std::fs::create_dir_all(&shared).unwrap();
        assert_eq!(
            find(None),
            Err(format!(
                "{}/../shared exists but has no fixtures/phoenix; set PHX_X to the fixtures",
                workspace.display()
            ))
        );
        // found next to the workspace, or where the variable says (relative to the workspace)
        std::fs::create_dir_all(shared.join("fixtures/phoenix")).unwrap();
        assert_eq!(
            find(None),
            Ok(Some(workspace.join("../shared/fixtures/phoenix")))
        );
        assert_eq!(
            find(Some("../shared/fixtures")),
            Ok(Some(workspace.join("../shared/fixtures")))
        );
    }
}
