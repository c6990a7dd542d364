//! `phoenix_stacks_config.json` (optional): Docker stacks referenced by VMs' `docker_stacks`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::common::Secret;
use super::finding::{JsonPath, Sink};
use super::json::Json;
use super::reader::{Obj, type_name};

/// One stack.
#[derive(Debug, Clone, Serialize)]
pub struct Stack {
    /// Description.
    pub description: Option<String>,
    /// Compose file.
    pub compose_file_path: Option<String>,
    /// Environments (`production`, `testing`, ...).
    pub environments: BTreeMap<String, StackEnvironment>,
}

/// One environment of a stack.
#[derive(Debug, Clone, Serialize)]
pub struct StackEnvironment {
    /// Variables; values may be secrets and are never printed.
    pub variables: Vec<(String, Secret)>,
    /// `(source, destination_in_container)` files.
    pub files: Vec<(String, String)>,
    /// Service name -> Traefik labels.
    pub services: BTreeMap<String, Vec<String>>,
}

pub(crate) fn parse_file(root: &Json<'_>, s: &mut Sink) -> BTreeMap<String, Stack> {
    let mut out = BTreeMap::new();
    let Some(mut o) = root.as_object().map(|m| Obj::new(m, JsonPath::root())) else {
        s.error(
            &JsonPath::root(),
            "shape",
            format!(
                "expected an object with \"docker_stacks\", found {}",
                type_name(root)
            ),
        );
        return out;
    };
    let Some((stacks, sp)) = o.raw("docker_stacks") else {
        s.error(
            &JsonPath::root(),
            "shape",
            "missing \"docker_stacks\": this does not look like a Phoenix stacks file",
        );
        return out;
    };
    let Some(stacks) = stacks.as_object() else {
        s.error(
            &sp,
            "type",
            format!("expected an object of stacks, found {}", type_name(stacks)),
        );
        return out;
    };
    for (name, v) in stacks {
        let Some(mut st) = Obj::of(v, sp.key(name), s) else {
            continue;
        };
        let description = st.opt_str(s, "description");
        let compose_file_path = st.opt_str(s, "compose_file_path");
        let mut environments = BTreeMap::new();
        if let Some((envs, ep)) = st.raw("environments") {
            for (env, ev) in envs.as_object().into_iter().flatten() {
                let Some(mut e) = Obj::of(ev, ep.key(env), s) else {
                    continue;
                };
                let mut variables = Vec::new();
                for (vv, vp) in e.arr(s, "variables") {
                    let Some(mut var) = Obj::of(vv, vp, s) else {
                        continue;
                    };
                    if let Some(n) = var.req_str(s, "name") {
                        variables
                            .push((n, Secret::new(var.opt_str(s, "value").unwrap_or_default())));
                    }
                    var.extra(s, &[]);
                }
                let mut files = Vec::new();
                for (fv, fp) in e.arr(s, "files") {
                    let Some(mut f) = Obj::of(fv, fp, s) else {
                        continue;
                    };
                    if let (Some(a), Some(b)) = (
                        f.req_str(s, "source"),
                        f.req_str(s, "destination_in_container"),
                    ) {
                        files.push((a, b));
                    }
                    f.extra(s, &[]);
                }
                let mut services = BTreeMap::new();
                if let Some((svcs, svp)) = e.raw("services") {
                    for (svc, sv) in svcs.as_object().into_iter().flatten() {
                        let Some(mut so) = Obj::of(sv, svp.key(svc), s) else {
                            continue;
                        };
                        services.insert(
                            svc.to_string(),
                            so.str_list(s, "traefik_labels")
                                .into_iter()
                                .map(|(l, _)| l)
                                .collect(),
                        );
                        so.extra(s, &[]);
                    }
                }
                e.extra(s, &["firewall_rules"]);
                environments.insert(
                    env.to_string(),
                    StackEnvironment {
                        variables,
                        files,
                        services,
                    },
                );
            }
        }
        st.extra(s, &[]);
        out.insert(
            name.to_string(),
            Stack {
                description,
                compose_file_path,
                environments,
            },
        );
    }
    o.extra(s, &["$schema"]);
    out
}
