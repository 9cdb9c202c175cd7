//! The conformance suite recorded from the reference server (`tests/conformance`),
//! replayed against our binary. A test crate of its own so that it runs after the
//! integration tests, not beside them: some cases time concurrent requests.

use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "integration/util.rs"]
mod util;

/// A venv with what the recorded scenarios import (inference-schema, numpy, flask).
fn conformance_venv() -> PathBuf {
    util::venv("conformance", &["inference-schema", "numpy", "flask"])
}

#[test]
fn every_recorded_case_of_the_reference_passes() {
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/run_conformance.py");
    assert!(
        suite.is_file(),
        "the conformance suite is missing at {}",
        suite.display()
    );
    let venv = conformance_venv();
    let output = Command::new("python3")
        .arg(&suite)
        .args(["--server", env!("CARGO_BIN_EXE_azmlinfsrv")])
        .env("VIRTUAL_ENV", &venv)
        .output()
        .expect("python3 on PATH");
    let report = String::from_utf8_lossy(&output.stdout);
    let failures: Vec<&str> = report
        .lines()
        .filter(|line| !line.starts_with("PASS"))
        .collect();
    let summary = report.lines().last().unwrap_or("");
    println!("conformance: {summary}");
    assert!(
        output.status.success() && summary.ends_with(" 0 failed"),
        "conformance failures:\n{}\n{}",
        failures.join("\n"),
        String::from_utf8_lossy(&output.stderr)
    );
    let passed: usize = summary
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(passed >= 180, "only {passed} cases ran: {summary}");
}
