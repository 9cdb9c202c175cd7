//! What a user who installed the wheel checks first: `--version` names our version and
//! the runner protocol, and `--help` still lists the flags. Both exit 0.

use std::process::Command;

use crate::util::{output_text, BINARY};

#[test]
fn version_prints_ours_and_the_runner_protocol() {
    let output = Command::new(BINARY).arg("--version").output().unwrap();
    let text = output_text(&output);
    assert!(output.status.success(), "--version failed: {text}");
    // The protocol version the server was built with, read from its wire types.
    let wire = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/worker/wire.rs"))
        .unwrap();
    let protocol = wire
        .split("pub const PROTOCOL_VERSION: u32 = ")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .expect("PROTOCOL_VERSION in src/worker/wire.rs");
    assert_eq!(
        text.trim(),
        format!(
            "azmlinfsrv {} (runner protocol {protocol})",
            env!("CARGO_PKG_VERSION")
        ),
        "the version line changed; the README and bug reports rely on it"
    );
}

#[test]
fn help_still_lists_the_flags() {
    let output = Command::new(BINARY).arg("--help").output().unwrap();
    let text = output_text(&output);
    assert!(output.status.success(), "--help failed: {text}");
    for flag in ["--entry_script", "--conda_env", "--python", "--version"] {
        assert!(text.contains(flag), "--help does not list {flag}:\n{text}");
    }
}
