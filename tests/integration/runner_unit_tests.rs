//! Runs the runner's own Python unit tests (`runner/tests`) as part of `cargo test`, in a
//! venv that has every package they exercise, so that none of them is skipped: a skip
//! fails this test (naming the skipped tests), as does a run of fewer tests than the
//! suite has had.

use std::path::Path;
use std::process::Command;

use crate::util::{output_text, venv};

/// Fewer tests than this means part of the suite was not discovered.
const MIN_RUNNER_TESTS: usize = 135;

#[test]
fn runner_python_unit_tests_pass_without_skips() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = venv("runner-tests", &["flask", "inference-schema", "numpy"])
        .join("bin")
        .join("python");
    let output = Command::new(&python)
        .args([
            "-m",
            "unittest",
            "discover",
            "-v",
            "-s",
            "runner/tests",
            "-t",
            "runner",
        ])
        .current_dir(root)
        // The tests hide Flask themselves where they need its absence; nothing from the
        // caller's shell may add or hide packages.
        .env_remove("PYTHONPATH")
        .env_remove("AZUREML_DEBUG_PORT")
        .output()
        .unwrap_or_else(|err| panic!("cannot run {}: {err}", python.display()));
    let report = output_text(&output);
    assert!(
        output.status.success(),
        "runner unit tests failed:\n{report}"
    );
    let summary = UnittestSummary::parse(&report)
        .unwrap_or_else(|| panic!("no unittest summary in:\n{report}"));
    assert!(
        summary.skipped.is_empty() && !summary.status_line.contains("skipped"),
        "runner unit tests were skipped ({}):\n{}",
        summary.status_line,
        summary.skipped.join("\n")
    );
    assert!(
        summary.ran >= MIN_RUNNER_TESTS,
        "only {} runner tests ran (at least {MIN_RUNNER_TESTS} expected):\n{report}",
        summary.ran
    );
}

/// What `python -m unittest -v` says at its end.
#[derive(Debug, PartialEq)]
struct UnittestSummary {
    ran: usize,
    /// `OK`, `OK (skipped=2)`, `FAILED (failures=1)`.
    status_line: String,
    /// The `-v` lines of skipped tests.
    skipped: Vec<String>,
}

impl UnittestSummary {
    fn parse(report: &str) -> Option<UnittestSummary> {
        let lines: Vec<&str> = report.lines().collect();
        let ran_at = lines.iter().rposition(|line| line.starts_with("Ran "))?;
        let ran = lines[ran_at]
            .trim_start_matches("Ran ")
            .split_whitespace()
            .next()?
            .parse()
            .ok()?;
        let status_line = lines[ran_at + 1..]
            .iter()
            .find(|line| line.starts_with("OK") || line.starts_with("FAILED"))?
            .to_string();
        let skipped = lines
            .iter()
            .filter(|line| line.contains(" ... skipped"))
            .map(|line| line.to_string())
            .collect();
        Some(UnittestSummary {
            ran,
            status_line,
            skipped,
        })
    }
}

#[test]
fn a_skipped_runner_test_is_seen() {
    let report = "test_a (tests.test_x.T.test_a) ... ok\n\
                  test_b (tests.test_x.T.test_b) ... skipped 'needs Flask'\n\
                  \n----------------------------------------------------------------------\n\
                  Ran 2 tests in 0.01s\n\nOK (skipped=1)\n";
    let summary = UnittestSummary::parse(report).unwrap();
    assert_eq!(summary.ran, 2);
    assert_eq!(summary.status_line, "OK (skipped=1)");
    assert_eq!(
        summary.skipped,
        ["test_b (tests.test_x.T.test_b) ... skipped 'needs Flask'"]
    );
    let clean = UnittestSummary::parse("Ran 3 tests in 0.1s\n\nOK\n").unwrap();
    assert_eq!((clean.ran, clean.status_line.as_str()), (3, "OK"));
    assert!(clean.skipped.is_empty());
}
