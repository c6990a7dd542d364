//! `phx lxc test <ID> [--suite NAME] [--junit FILE]`.

use std::path::PathBuf;

use clap::Args;
use phx_core::engine::suite::TestResult;
use phx_core::types::{GuestId, GuestKind};

use crate::cmd::check_ids;
use crate::context::Ctx;
use crate::error::{EXIT_FAILED, EXIT_OK, usage};

#[derive(Debug, Args)]
pub struct TestArgs {
    /// Guest id
    pub id: GuestId,
    /// Run only this suite (default: all of the guest's suites)
    #[arg(long, value_name = "NAME")]
    pub suite: Option<String>,
    /// Also write a JUnit XML report
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

pub async fn run(ctx: &mut Ctx, kind: GuestKind, a: TestArgs) -> anyhow::Result<u8> {
    let inv = ctx.inventory()?;
    check_ids(&inv, Some(kind), &[a.id], "test")?;
    let engine = ctx.engine(inv).await?;
    // an unknown suite is a usage error that lists the ones there are
    let planned = engine
        .test_plan(a.id, a.suite.as_deref())
        .map_err(|e| usage(e.to_string()))?;
    if ctx.g.dry_run {
        // what would run, in order; nothing runs in the guest
        if ctx.out.json() {
            let tests: Vec<_> = planned
                .iter()
                .map(|(suite, t)| serde_json::json!({ "suite": suite, "name": t.name, "path": t.path }))
                .collect();
            ctx.out
                .json_doc(&serde_json::json!({ "id": a.id, "dry_run": true, "tests": tests }));
        } else if planned.is_empty() {
            ctx.out
                .text(&format!("{} {} has no tests.", kind.proxmox_word(), a.id));
        } else {
            let mut t = ctx.out.table();
            t.set_header(vec!["SUITE", "TEST", "SCRIPT"]);
            for (suite, case) in &planned {
                t.add_row(vec![suite.clone(), case.name.clone(), case.path.clone()]);
            }
            ctx.out.text(&format!(
                "{t}\n{} test{} would run (dry run: nothing was run)",
                planned.len(),
                if planned.len() == 1 { "" } else { "s" }
            ));
        }
        return Ok(EXIT_OK);
    }
    let progress = ctx.progress();
    let report = engine
        .run_tests(a.id, a.suite.as_deref(), &progress)
        .await?;
    if let Some(path) = &a.junit {
        let title = format!(
            "phx {} test {} ({})",
            report.kind.noun(),
            report.id,
            report.name
        );
        let prefix = format!("{}.{}", report.id, report.name);
        write_junit(path, &title, &prefix, &report.results)?;
    }
    if ctx.out.json() {
        ctx.out.json_doc(&serde_json::json!({ "id": report.id, "kind": report.kind, "name": report.name, "passed": report.passed(), "failed": report.failed(), "tests": report.results }));
    } else if report.results.is_empty() {
        ctx.out.text(&format!(
            "{} {} ({}) has no tests.",
            report.kind.proxmox_word(),
            report.id,
            report.name
        ));
    } else {
        ctx.out.text(&human(ctx, &report.results));
    }
    Ok(exit_code(&report.results))
}

/// 0 when every test passed, 1 when one failed.
pub fn exit_code(results: &[TestResult]) -> u8 {
    if results.iter().all(|t| t.passed) {
        EXIT_OK
    } else {
        EXIT_FAILED
    }
}

/// Write the JUnit report of `results` to `path`.
pub fn write_junit(
    path: &std::path::Path,
    title: &str,
    prefix: &str,
    results: &[TestResult],
) -> anyhow::Result<()> {
    std::fs::write(path, junit(title, prefix, results)).map_err(|e| {
        anyhow::anyhow!(
            "writing the JUnit report {}: {e} (the tests ran; check that the directory exists and is writable, or drop --junit)",
            path.display()
        )
    })
}

/// PASS/FAIL lines with indented output, then a count.
pub fn human(ctx: &Ctx, results: &[TestResult]) -> String {
    let mut s = String::new();
    for t in results {
        let verdict = if t.passed {
            ctx.out.paint("PASS", "32;1")
        } else {
            ctx.out.paint("FAIL", "31;1")
        };
        s.push_str(&format!(
            "{verdict}  {} / {}  ({:.2}s)\n",
            t.suite,
            t.name,
            t.duration.as_secs_f64()
        ));
        for line in t.output.lines() {
            s.push_str(&format!("    {line}\n"));
        }
    }
    let failed = results.iter().filter(|t| !t.passed).count();
    s.push_str(&format!(
        "{} passed, {failed} failed\n",
        results.len() - failed
    ));
    s
}

fn xml(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => {}
            c => o.push(c),
        }
    }
    o
}

/// A JUnit XML report: one `<testsuite>` per suite.
fn junit(title: &str, prefix: &str, results: &[TestResult]) -> String {
    let total: f64 = results.iter().map(|t| t.duration.as_secs_f64()).sum();
    let failed = results.iter().filter(|t| !t.passed).count();
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"{}\" tests=\"{}\" failures=\"{failed}\" time=\"{total:.3}\">\n",
        xml(title),
        results.len()
    );
    let mut suites: Vec<&str> = results.iter().map(|t| t.suite.as_str()).collect();
    suites.dedup();
    for suite in suites {
        let cases: Vec<_> = results.iter().filter(|t| t.suite == suite).collect();
        let time: f64 = cases.iter().map(|t| t.duration.as_secs_f64()).sum();
        s.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" time=\"{time:.3}\">\n",
            xml(suite),
            cases.len(),
            cases.iter().filter(|t| !t.passed).count()
        ));
        for t in cases {
            s.push_str(&format!(
                "    <testcase classname=\"{}\" name=\"{}\" file=\"{}\" time=\"{:.3}\">\n",
                xml(&format!("{prefix}.{suite}")),
                xml(&t.name),
                xml(&t.path),
                t.duration.as_secs_f64()
            ));
            if !t.passed {
                s.push_str(&format!(
                    "      <failure message=\"exit code {}\">{}</failure>\n",
                    t.exit_code,
                    xml(&t.output)
                ));
            }
            s.push_str(&format!(
                "      <system-out>{}</system-out>\n    </testcase>\n",
                xml(&t.output)
            ));
        }
        s.push_str("  </testsuite>\n");
    }
    s.push_str("</testsuites>\n");
    s
}
