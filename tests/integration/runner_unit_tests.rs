//! Runs the runner's own Python unit tests (`runner/tests`) as part of `cargo test`.

use std::path::Path;
use std::process::Command;

use crate::util::{output_text, system_python};

#[test]
fn runner_python_unit_tests_pass() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new(system_python())
        .args([
            "-m",
            "unittest",
            "discover",
            "-s",
            "runner/tests",
            "-t",
            "runner",
        ])
        .current_dir(root)
        .output()
        .expect("python3 must be on PATH");
    let report = output_text(&output);
    assert!(
        output.status.success(),
        "runner unit tests failed:\n{report}"
    );
    assert!(
        report.contains("Ran ") && !report.contains("Ran 0 tests"),
        "no runner test ran:\n{report}"
    );
}
