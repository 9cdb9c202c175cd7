//! Settings at their edges: a bad value stops the start (exit non-zero) with a message
//! naming the setting, whether it came from the command line, the environment or the
//! config file; `SCORING_TIMEOUT_MS=0` means no scoring timeout; the runner files go to
//! a private folder even when the cache folder is shared or cannot be written.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::check;
use crate::util::{test_script, Launch, Scratch};

/// Starts `launch`, which must fail before serving: exits non-zero and says `needles`.
fn refused(launch: Launch, what: &str, needles: &[&str]) {
    let mut server = launch.spawn();
    let status = server.wait_exit(Duration::from_secs(30));
    check!(
        server,
        status.is_some_and(|status| !status.success()),
        "{what}: expected a non-zero exit, got {status:?}"
    );
    let log = server.output.text();
    for needle in needles {
        check!(server, log.contains(needle), "{what}: {needle:?} missing");
    }
    // Refused before any Python ran.
    check!(server, !log.contains("Found user script"), "{what}");
}

#[test]
fn bad_values_from_the_environment_stop_the_start_naming_the_variable() {
    for (name, value) in [
        ("WORKER_COUNT", "0"),
        ("AZMLINFSRV_READ_TIMEOUT", "0"),
        ("AZMLINFSRV_MAX_BODY_MB", "0"),
        ("AZMLINFSRV_QUEUE_LIMIT", "-3"),
        ("AZMLINFSRV_SHUTDOWN_GRACE", "soon"),
        ("AZMLINFSRV_READ_TIMEOUT", "18446744073709551615"),
        ("AZMLINFSRV_SHUTDOWN_GRACE", "31536001"),
        ("SCORING_TIMEOUT_MS", "99999999999999"),
        ("SCORING_TIMEOUT_MS", "-1"),
        ("SCORING_TIMEOUT_MS", "abc"),
        ("AZUREML_DEBUG_PORT", "70000"),
    ] {
        let quoted = format!("'{value}'");
        refused(
            Launch::script(&test_script("probe.py")).env(name, value),
            &format!("{name}={value}"),
            &[name, &quoted],
        );
    }
}

#[test]
fn bad_values_from_the_config_file_stop_the_start_naming_the_key() {
    let scratch = Scratch::new("settings-config-file");
    for (index, (name, value, shown)) in [
        (
            "SCORING_TIMEOUT_MS",
            json!(99_999_999_999_999u64),
            "'99999999999999'",
        ),
        ("SCORING_TIMEOUT_MS", json!(-5), "'-5'"),
        ("SCORING_TIMEOUT_MS", json!(1e30), "'1e+30'"),
        ("SCORING_TIMEOUT_MS", json!(1.5), "'1.5'"),
        ("SCORING_TIMEOUT_MS", json!("abc"), "'abc'"),
        ("AZUREML_DEBUG_PORT", json!(70000), "'70000'"),
        ("AZUREML_DEBUG_PORT", json!("0"), "'0'"),
    ]
    .into_iter()
    .enumerate()
    {
        let config = scratch.write(
            &format!("config-{index}.json"),
            &json!({ name: value }).to_string(),
        );
        refused(
            Launch::script(&test_script("probe.py"))
                .arg("--config_file")
                .arg(config.display().to_string()),
            &format!("{name}: {value} in the config file"),
            &[name, shown],
        );
    }
}

#[test]
fn bad_values_on_the_command_line_stop_the_start_naming_the_flag() {
    for (flag, value) in [
        ("--worker_count", "0"),
        ("--read_timeout", "0"),
        ("--max_body_mb", "0"),
        ("--queue_limit", "0"),
        ("--shutdown_grace", "soon"),
        ("--read_timeout", "18446744073709551615"),
        ("--shutdown_grace", "99999999999"),
        ("--port", "70000"),
    ] {
        let script = test_script("probe.py");
        let mut launch = Launch::script(&script);
        // Only the flag under test: the harness's own `--port` would be a second one.
        launch.args = vec!["--entry_script".into(), script.display().to_string()];
        let launch = launch.arg(flag).arg(value);
        refused(launch, &format!("{flag} {value}"), &[flag, value]);
    }
}

#[test]
fn scoring_timeout_0_means_no_timeout_and_the_log_says_so() {
    let server = Launch::script(&test_script("probe.py"))
        .env("SCORING_TIMEOUT_MS", "0")
        .start();
    let log = server.startup_log();
    // The contract's line, as users grep for it, and one that says what 0 means.
    check!(
        server,
        log.contains("azmlinfsrv - Scoring timeout is set to 0\n")
    );
    check!(
        server,
        log.contains("SCORING_TIMEOUT_MS is 0: there is no scoring timeout")
    );
    let started = Instant::now();
    let slow = server.post("/score", r#"{"case": "sleep", "seconds": 2}"#);
    check!(
        server,
        slow.status == 200 && slow.json()["slept"] == 2,
        "{} {}",
        slow.status,
        slow.text()
    );
    check!(server, started.elapsed() >= Duration::from_secs(2));
}

#[test]
fn the_default_scoring_timeout_does_not_claim_to_be_off() {
    let server = Launch::script(&test_script("probe.py")).start();
    let log = server.startup_log();
    check!(server, log.contains("Scoring timeout is set to 3600000"));
    check!(server, !log.contains("there is no scoring timeout"));
}

/// The uid the server runs as (ours): it names its private temporary folder.
fn our_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_shared_cache_folder_gives_way_to_a_private_one_named_in_the_log() {
    let scratch = Scratch::new("shared-cache-home");
    let shared = scratch.path.join("shared-cache");
    std::fs::create_dir(&shared).unwrap();
    set_mode(&shared, 0o777);
    let temp = scratch.path.join("tmp");
    std::fs::create_dir(&temp).unwrap();
    set_mode(&temp, 0o700);
    let server = Launch::script(&test_script("probe.py"))
        .env("XDG_CACHE_HOME", shared.display().to_string())
        .env("TMPDIR", temp.display().to_string())
        .start();
    let response = server.post("/score", r#"{"case": "sleep", "seconds": 0}"#);
    check!(server, response.status == 200, "{}", response.text());
    let private = temp.join(format!("azmlinfsrv-{}", our_uid()));
    let log = server.startup_log();
    let notice = log
        .lines()
        .find(|line| line.contains("for the Python runner files"))
        .unwrap_or("");
    check!(
        server,
        notice.contains(" W [")
            && notice.contains(&shared.join("azmlinfsrv").display().to_string())
            && notice.contains("can be written by other users (mode 777)")
            && notice.contains(&format!("using the private folder {}", private.display())),
        "the fallback line: {notice:?}"
    );
    check!(
        server,
        !shared.join("azmlinfsrv").exists(),
        "nothing written to the shared folder"
    );
    check!(server, private.is_dir());
}

#[test]
fn an_unwritable_home_gives_way_to_a_private_temporary_folder() {
    let scratch = Scratch::new("unwritable-home");
    // A home below a file: nothing can be created in it, even by root (for whom a
    // read-only mode would be no obstacle), as on a read-only file system.
    let file = scratch.write("not-a-folder", "");
    let home = file.join("home");
    let temp = scratch.path.join("tmp");
    std::fs::create_dir(&temp).unwrap();
    let server = Launch::script(&test_script("probe.py"))
        .env("HOME", home.display().to_string())
        .env("TMPDIR", temp.display().to_string())
        .start();
    let response = server.post("/score", r#"{"case": "sleep", "seconds": 0}"#);
    check!(server, response.status == 200, "{}", response.text());
    let log = server.startup_log();
    let private = temp.join(format!("azmlinfsrv-{}", our_uid()));
    check!(
        server,
        log.contains(&format!(
            "Cannot use {} for the Python runner files",
            home.join(".cache").join("azmlinfsrv").display()
        )) && log.contains(&format!("using the private folder {}", private.display()))
    );
}
