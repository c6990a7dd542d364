//! Test suites (`tests` in a guest's config): each script is pushed into `/tmp/phoenix_tests`
//! in the guest, run there, judged by its exit code, and cleaned up afterwards.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::backend::{ExecRequest, PowerState, manager};
use crate::config::TestCase;
use crate::error::{ConflictReason, Error, Result};
use crate::report::{Event, Reporter};
use crate::types::{GuestId, GuestKind};

use super::Engine;
use super::execute::{agent_exec_followed, guest_output, reported, unique_log};

const DIR: &str = "/tmp/phoenix_tests";

/// One test's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct TestResult {
    /// Suite.
    pub suite: String,
    /// Test name.
    pub name: String,
    /// Script path relative to `<scripts-dir>/tests`.
    pub path: String,
    /// Exit code 0.
    pub passed: bool,
    /// Exit code (`-1`: did not run).
    pub exit_code: i32,
    /// Combined output.
    pub output: String,
    /// Wall time.
    #[serde(serialize_with = "ser_ms")]
    pub duration: Duration,
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

/// All results of one run.
#[derive(Debug, Clone, Serialize)]
pub struct TestReport {
    /// Guest.
    pub id: GuestId,
    /// Kind.
    pub kind: GuestKind,
    /// Name.
    pub name: String,
    /// Results in suite and config order.
    pub results: Vec<TestResult>,
}

impl TestReport {
    /// Number of passed tests.
    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| r.passed).count()
    }
    /// Number of failed tests.
    pub fn failed(&self) -> usize {
        self.results.len() - self.passed()
    }
}

impl Engine {
    /// The suites of a guest that `run_tests` would run (`suite` = one of them).
    pub fn test_plan(&self, id: GuestId, suite: Option<&str>) -> Result<Vec<(String, TestCase)>> {
        let g = self.inv.guest(id).ok_or_else(|| Error::NotFound {
            what: format!("guest {id}"),
            message: format!("{id} is not defined in the config"),
        })?;
        let suites = g.tests();
        if let Some(s) = suite
            && !suites.contains_key(s)
        {
            let available: Vec<&str> = suites.keys().map(String::as_str).collect();
            return Err(Error::NotFound {
                what: format!("suite {s}"),
                message: format!(
                    "{} {id} ({}) has no test suite {s:?}; available: {}",
                    g.kind().proxmox_word(),
                    g.name(),
                    if available.is_empty() {
                        "none".to_string()
                    } else {
                        available.join(", ")
                    }
                ),
            });
        }
        Ok(suites
            .iter()
            .filter(|(name, _)| suite.is_none_or(|s| s == name.as_str()))
            .flat_map(|(name, cases)| cases.iter().map(move |c| (name.clone(), c.clone())))
            .collect())
    }

    /// Run a guest's test suites inside it. A stopped guest is started for the tests and
    /// stopped again afterwards.
    pub async fn run_tests(
        &self,
        id: GuestId,
        suite: Option<&str>,
        reporter: &dyn Reporter,
    ) -> Result<TestReport> {
        let cases = self.test_plan(id, suite)?;
        let g = self.inv.guest(id).ok_or_else(|| Error::NotFound {
            what: format!("guest {id}"),
            message: format!("{id} is not defined"),
        })?;
        let kind = g.kind();
        let summary = self
            .hv
            .guests()
            .await?
            .into_iter()
            .find(|s| s.id == id)
            .ok_or_else(|| Error::NotFound {
                what: format!("{} {id}", kind.proxmox_word()),
                message: format!(
                    "{} {id} ({}) does not exist; create it with `phx {} create {id}`",
                    kind.proxmox_word(),
                    g.name(),
                    kind.noun()
                ),
            })?;
        let node = summary.node.clone();
        let m = manager(self.hv.as_ref(), kind);
        let started = summary.status != PowerState::Running;
        if started {
            let msg = format!(
                "{} {id} is stopped; starting it for the tests",
                kind.proxmox_word()
            );
            reporter.report(&Event::Warning {
                id: Some(id),
                message: &msg,
            });
            match m.start(&node, id).await {
                Ok(_)
                | Err(Error::Conflict {
                    reason: ConflictReason::AlreadyRunning,
                    ..
                }) => {}
                Err(e) => return Err(e),
            }
        }
        let mut results = Vec::new();
        let run = self
            .run_cases(kind, &node, id, &cases, reporter, &mut results)
            .await;
        let cleanup = self
            .guest_exec(
                kind,
                &node,
                id,
                &ExecRequest::new(["rm", "-rf", DIR]).timeout(Duration::from_secs(60)),
            )
            .await;
        if !cleanup
            .as_ref()
            .is_ok_and(crate::backend::ExecOutput::success)
        {
            let msg = format!("could not remove {DIR} after the tests");
            reporter.report(&Event::Warning {
                id: Some(id),
                message: &msg,
            });
        }
        if started {
            m.stop(&node, id).await?;
        }
        run?;
        Ok(TestReport {
            id,
            kind,
            name: g.name().to_string(),
            results,
        })
    }

    async fn run_cases(
        &self,
        kind: GuestKind,
        node: &crate::types::NodeName,
        id: GuestId,
        cases: &[(String, TestCase)],
        reporter: &dyn Reporter,
        results: &mut Vec<TestResult>,
    ) -> Result<()> {
        let mk = self
            .guest_exec(
                kind,
                node,
                id,
                &ExecRequest::new(["mkdir", "-p", DIR]).timeout(Duration::from_secs(60)),
            )
            .await?;
        if !mk.success() {
            return Err(Error::Refused {
                message: format!(
                    "cannot create {DIR} in {} {id} (exit {})",
                    kind.proxmox_word(),
                    mk.exit_code
                ),
            });
        }
        for (suite, case) in cases {
            let t0 = Instant::now();
            reporter.report(&Event::StepStarted {
                id,
                op: "test",
                detail: &case.name,
            });
            let script = self.inv.test_script(&case.path);
            let file = script
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_else(|| "test.sh".into());
            let dest = format!("{DIR}/{file}");
            let source = format!("test {}", case.name);
            let outcome = match std::fs::read(&script) {
                Err(e) => Err(format!("test script {}: {e}", script.display())),
                Ok(content) => {
                    let pushed = match kind {
                        GuestKind::Lxc => {
                            self.hv.lxc().push(node, id, &content, &dest, 0o755).await
                        }
                        GuestKind::Vm => {
                            self.hv
                                .vm()
                                .agent_file_write(node, id, &dest, &content)
                                .await
                        }
                    };
                    match pushed {
                        Err(e) => Err(format!(
                            "could not copy {} into the guest: {e}",
                            script.display()
                        )),
                        Ok(()) => {
                            let env = self
                                .script_env_for(
                                    id,
                                    kind,
                                    node,
                                    ExecRequest::new(Vec::<String>::new()),
                                )
                                .env;
                            let timeout = Duration::from_secs(600);
                            match kind {
                                GuestKind::Lxc => {
                                    let req = ExecRequest {
                                        env,
                                        ..ExecRequest::new([dest.clone()])
                                    }
                                    .timeout(timeout);
                                    reported(guest_output(reporter, id, &source), |live| {
                                        let req = req.live(live);
                                        async move { self.guest_exec(kind, node, id, &req).await }
                                    })
                                    .await
                                    .map_err(|e| e.to_string())
                                }
                                // the guest agent takes no environment (env(1) passes it) and
                                // gives output only at the end (phx follows a log instead)
                                GuestKind::Vm => {
                                    let mut argv = vec!["/usr/bin/env".to_string()];
                                    argv.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
                                    argv.extend(["/bin/bash".to_string(), dest.clone()]);
                                    let req = ExecRequest::new(argv).timeout(timeout);
                                    let log = unique_log(&dest);
                                    match agent_exec_followed(
                                        self.hv.as_ref(),
                                        reporter,
                                        node,
                                        id,
                                        &source,
                                        req,
                                        &log,
                                    )
                                    .await
                                    {
                                        Ok(f) => {
                                            if let Some(p) = &f.problem {
                                                reporter.report(&Event::Warning {
                                                    id: Some(id),
                                                    message: p,
                                                });
                                            }
                                            Ok(f.out)
                                        }
                                        Err(e) => Err(e.to_string()),
                                    }
                                }
                            }
                        }
                    }
                }
            };
            let (exit_code, output) = match outcome {
                // its output was reported as it came
                Ok(o) => {
                    let mut text = o.stdout.clone();
                    text.push_str(&o.stderr);
                    (o.exit_code, text)
                }
                Err(e) => {
                    for line in e.lines() {
                        reporter.report(&Event::Output {
                            id,
                            source: &source,
                            line,
                        });
                    }
                    (-1, e)
                }
            };
            let passed = exit_code == 0;
            let err = (!passed).then(|| format!("exit code {exit_code}"));
            reporter.report(&Event::StepFinished {
                id,
                op: "test",
                duration: t0.elapsed(),
                error: err.as_deref(),
            });
            results.push(TestResult {
                suite: suite.clone(),
                name: case.name.clone(),
                path: case.path.clone(),
                passed,
                exit_code,
                output,
                duration: t0.elapsed(),
            });
        }
        Ok(())
    }
}
