//! The log: the format of the server's lines and the access log, `print()` and writes
//! to fd 1 from the script, `logging.json` (app root, else the script's folder) applied
//! with dictConfig as the reference does, and `AZUREML_LOG_LEVEL` for the script's
//! records (the server's own lines do not change with it).

use std::time::Duration;

use crate::check;
use crate::util::{test_script, Launch, Scratch};

/// A dictConfig that sends the probe's records to stderr in a format of its own, and
/// nowhere else.
const LOGGING_JSON: &str = r#"{
  "version": 1,
  "disable_existing_loggers": false,
  "formatters": {"custom": {"format": "CUSTOM|%(levelname)s|%(name)s|%(message)s"}},
  "handlers": {"err": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "custom", "level": "DEBUG"}},
  "loggers": {"compat.probe": {"level": "DEBUG", "handlers": ["err"], "propagate": false}}
}"#;

fn probe_in(scratch: &Scratch, relative: &str) -> std::path::PathBuf {
    let source = std::fs::read_to_string(test_script("probe.py")).unwrap();
    scratch.write(relative, &source)
}

#[test]
fn logging_json_in_the_app_root_or_the_scripts_folder_configures_python_logging() {
    let scratch = Scratch::new("logging-json");
    let script = probe_in(&scratch, "scripts/score.py");
    let app_config = scratch.write("app/logging.json", LOGGING_JSON);
    let app = scratch.path.join("app");
    let server = Launch::script(&script).cwd(&app).start();
    // Records written to stderr by the script's own handler trail the protocol's lines.
    server.output.wait_for(
        "CUSTOM|WARNING|compat.probe|PROBE-WARNING-FROM-INIT",
        Duration::from_secs(10),
    );
    let log = server.startup_log();
    check!(
        server,
        log.contains(&format!(
            "Loaded logging config from {}",
            app_config.display()
        ))
    );
    check!(
        server,
        log.contains("CUSTOM|DEBUG|compat.probe|PROBE-DEBUG-FROM-INIT")
            && log.contains("CUSTOM|WARNING|compat.probe|PROBE-WARNING-FROM-INIT"),
        "the script's records take the logging.json route"
    );
    check!(
        server,
        !log.contains("compat.probe - PROBE-INFO-FROM-INIT"),
        "propagate: false keeps them out of the server's format"
    );
    // The server's own lines keep their format.
    check!(
        server,
        log.contains("azmlinfsrv.user_script - Users's init has completed successfully")
    );
    drop(server);

    // Not in the app root: the one next to the script.
    std::fs::remove_file(&app_config).unwrap();
    let script_config = scratch.write("scripts/logging.json", LOGGING_JSON);
    let server = Launch::script(&script).cwd(&app).start();
    server.output.wait_for(
        "CUSTOM|INFO|compat.probe|PROBE-INFO-FROM-INIT",
        Duration::from_secs(10),
    );
    let log = server.startup_log();
    check!(
        server,
        log.contains(&format!(
            "Loaded logging config from {}",
            script_config.display()
        ))
    );
    check!(
        server,
        log.contains("CUSTOM|INFO|compat.probe|PROBE-INFO-FROM-INIT")
    );
    drop(server);

    // A logging.json that dictConfig refuses stops the start, naming the file's problem.
    std::fs::write(
        &script_config,
        r#"{"version": 1, "handlers": {"h": {"class": "no.such.Handler"}}}"#,
    )
    .unwrap();
    let mut server = Launch::script(&script).cwd(&app).spawn();
    let status = server.wait_exit(Duration::from_secs(30));
    check!(
        server,
        status.is_some_and(|s| !s.success()),
        "exit {status:?}"
    );
    check!(server, server.output.text().contains("logging.json"));
}

#[test]
fn azureml_log_level_sets_the_level_of_the_scripts_records() {
    let script = test_script("probe.py");
    let server = Launch::script(&script).start();
    let log = server.startup_log();
    check!(
        server,
        log.contains("I [") && log.contains("compat.probe - PROBE-INFO-FROM-INIT"),
        "INFO by default"
    );
    check!(server, !log.contains("PROBE-DEBUG-FROM-INIT"));
    drop(server);

    let server = Launch::script(&script)
        .env("AZUREML_LOG_LEVEL", "WARNING")
        .start();
    let log = server.startup_log();
    check!(
        server,
        log.contains("W [") && log.contains("compat.probe - PROBE-WARNING-FROM-INIT")
    );
    check!(server, !log.contains("PROBE-INFO-FROM-INIT"));
    let seen = server.post("/score", r#"{"case": "environment"}"#).json();
    check!(server, seen["root_level"] == 30, "{seen}");
    // The server's own INFO lines stay: users grep for them whatever the script's level.
    check!(
        server,
        server
            .output
            .wait_for("POST /score 200", Duration::from_secs(5)),
        "the access log is kept at WARNING"
    );
    check!(
        server,
        log.contains("azmlinfsrv - Scoring timeout is set to")
    );
    drop(server);

    let server = Launch::script(&script)
        .env("AZUREML_LOG_LEVEL", "debug")
        .start();
    check!(
        server,
        server.startup_log().contains("D [")
            && server
                .output
                .text()
                .contains("compat.probe - PROBE-DEBUG-FROM-INIT")
    );
}

#[test]
fn log_lines_have_the_contract_format() {
    let server = Launch::script(&test_script("echo_kinds.py")).start();
    server.post("/score", "x");
    check!(
        server,
        server
            .output
            .wait_for("POST /score 200", Duration::from_secs(5))
    );
    let log = server.output.text();
    for needle in [
        "Azure ML Inferencing HTTP server v",
        "Server Settings",
        "Entry Script Name: ",
        "Server Routes",
        "azmlinfsrv.user_script - Found user script at ",
        "azmlinfsrv.user_script - Invoking user's init function",
        "azmlinfsrv.user_script - Users's init has completed successfully",
        "azmlinfsrv - Scoring timeout is set to 3600000",
        "azmlinfsrv - Starting up app insights client",
        "run() is not decorated. Server will invoke it with the input in JSON string.",
    ] {
        check!(
            server,
            log.contains(needle),
            "missing from the log: {needle}"
        );
    }
    let access = log
        .lines()
        .find(|line| line.contains("POST /score 200"))
        .unwrap_or("");
    // 2022-12-24 07:37:53,318 I [32756] azmlinfsrv - POST /score 200 1.234ms 36
    let shape = access.len() > 24
        && access.as_bytes()[4] == b'-'
        && access.as_bytes()[10] == b' '
        && access.as_bytes()[19] == b','
        && access[23..].starts_with(" I [")
        && access.contains("] azmlinfsrv - POST /score 200 ")
        && access.ends_with(&format!(
            "ms {}",
            r#"{"type": "str", "data": "x", "custom_header": null}"#.len()
        ));
    check!(server, shape, "access line {access:?}");
    check!(server, !log.contains("GET / 200"), "GET / is not logged");
}

#[test]
fn print_and_writes_to_fd_1_reach_the_log_and_never_break_a_response() {
    let server = Launch::script(&test_script("echo_kinds.py")).start();
    for round in 0..3 {
        let tag = format!("tag{round}");
        let response = server.post("/score", &format!(r#"{{"mode": "print", "tag": "{tag}"}}"#));
        check!(
            server,
            response.status == 200 && response.json() == serde_json::json!({"printed": true}),
            "{}",
            response.text()
        );
        check!(
            server,
            server
                .output
                .wait_for(&format!("WRITTEN-TO-FD-1 {tag}"), Duration::from_secs(5))
        );
    }
    let log = server.output.text();
    let printed: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("PRINTED-FROM-RUN tag0"))
        .collect();
    check!(
        server,
        printed.len() == 1,
        "print() must be logged exactly once: {printed:?}"
    );
    check!(
        server,
        printed[0].contains(" I [")
            && printed[0].contains("] azmlinfsrv.print - PRINTED-FROM-RUN tag0")
    );
    check!(
        server,
        log.contains("azmlinfsrv.print - PARTIAL-LINE-COMPLETED"),
        "partial writes are joined into one line"
    );
}

#[test]
fn azureml_log_level_debug_leaves_the_servers_own_lines_as_they_are() {
    // As the reference, whose server lines never depend on the level. (README said
    // DEBUG "adds to" them.) Compared without the timestamps, pids and paths.
    let script = test_script("echo_kinds.py");
    let servers_lines = |level: &str| {
        let server = Launch::script(&script)
            .env("AZUREML_LOG_LEVEL", level)
            .start();
        server.post("/score", "x");
        check!(
            server,
            server
                .output
                .wait_for("POST /score 200", Duration::from_secs(5))
        );
        let lines: Vec<String> = server
            .startup_log()
            .lines()
            .filter_map(|line| line.split_once("] azmlinfsrv - ").map(|(_, rest)| rest))
            .map(|rest| {
                // The access line's duration and the port differ from run to run.
                let rest = rest.split(" ms").next().unwrap_or(rest);
                rest.chars().filter(|c| !c.is_ascii_digit()).collect()
            })
            .collect();
        lines
    };
    let info = servers_lines("INFO");
    let debug = servers_lines("DEBUG");
    assert!(!info.is_empty(), "no server lines at INFO");
    assert_eq!(info, debug, "the server's own lines at INFO and at DEBUG");
}

#[test]
fn the_app_insights_client_line_is_logged_with_app_insights_on_too() {
    let server = Launch::script(&test_script("echo_kinds.py"))
        .arg("--appinsights_instrumentation_key")
        .arg("0f8fad5b-d9cb-469f-a165-70867728950e")
        // Anything sent stays on this machine (nothing listens there).
        .env(
            "APPLICATIONINSIGHTS_CONNECTION_STRING",
            "InstrumentationKey=0f8fad5b-d9cb-469f-a165-70867728950e;IngestionEndpoint=http://127.0.0.1:9/",
        )
        .start();
    let log = server.startup_log();
    check!(server, log.contains("Application Insights Enabled: true"));
    check!(
        server,
        log.contains("azmlinfsrv - Starting up app insights client")
    );
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn is_iso_utc_millis(text: &str) -> bool {
    let bytes = text.as_bytes();
    let digits_at = |range: std::ops::Range<usize>| {
        bytes
            .get(range)
            .is_some_and(|part| part.iter().all(u8::is_ascii_digit))
    };
    bytes.len() == 24
        && digits_at(0..4)
        && bytes[4] == b'-'
        && digits_at(5..7)
        && bytes[7] == b'-'
        && digits_at(8..10)
        && bytes[10] == b'T'
        && digits_at(11..13)
        && bytes[13] == b':'
        && digits_at(14..16)
        && bytes[16] == b':'
        && digits_at(17..19)
        && bytes[19] == b'.'
        && digits_at(20..23)
        && bytes[23] == b'Z'
}

#[test]
fn json_logs_are_one_object_per_line_with_the_request_id_of_each_request() {
    let server = Launch::script(&test_script("request_logs.py"))
        .arg("--log_format")
        .arg("json")
        .start();
    let response = server.request(
        "POST",
        "/score",
        &[("x-request-id", "json-log-request-1")],
        b"{}",
    );
    check!(server, response.status == 200);
    let request_id = response
        .header("x-request-id")
        .unwrap_or_default()
        .to_string();
    check!(server, request_id == "json-log-request-1");
    let other = server.post("/score", "{}");
    let other_id = other.header("x-request-id").unwrap_or_default().to_string();
    check!(
        server,
        server.output.wait_for(
            &format!("\"request_id\":\"{other_id}\""),
            Duration::from_secs(10)
        )
    );
    server.signal("TERM");
    let mut server = server;
    check!(server, server.wait_exit(Duration::from_secs(20)).is_some());

    let text = server.output.text();
    let mut records = Vec::new();
    for line in text.lines() {
        let record: serde_json::Value = match serde_json::from_str(line) {
            Ok(record) => record,
            Err(error) => panic!("not a JSON line ({error}): {line:?}\n{}", server.describe()),
        };
        check!(
            server,
            record["time"].as_str().is_some_and(is_iso_utc_millis),
            "time: {line}"
        );
        check!(
            server,
            ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
                .contains(&record["level"].as_str().unwrap_or_default()),
            "level: {line}"
        );
        check!(server, record["pid"].as_u64().is_some(), "pid: {line}");
        check!(server, record["logger"].is_string(), "logger: {line}");
        check!(server, record["message"].is_string(), "message: {line}");
        records.push(record);
    }
    let find = |logger: &str, message: &str| -> Vec<&serde_json::Value> {
        records
            .iter()
            .filter(|record| {
                record["logger"] == logger
                    && record["message"]
                        .as_str()
                        .is_some_and(|text| text.starts_with(message))
            })
            .collect()
    };
    let ids = |found: &[&serde_json::Value]| -> Vec<String> {
        found
            .iter()
            .map(|record| {
                record["request_id"]
                    .as_str()
                    .unwrap_or("(none)")
                    .to_string()
            })
            .collect()
    };
    let both = vec![request_id.clone(), other_id.clone()];
    check!(
        server,
        ids(&find("azmlinfsrv", "POST /score 200")) == both,
        "the access lines carry their request's id: {:?}",
        find("azmlinfsrv", "POST /score 200")
    );
    check!(
        server,
        ids(&find("azmlinfsrv.print", "RUN-PRINT")) == both,
        "a print() in run() carries its request's id"
    );
    check!(
        server,
        ids(&find("script.logger", "RUN-WARNING")) == both,
        "so does a logging record"
    );
    let init_print = find("azmlinfsrv.print", "INIT-PRINT");
    check!(
        server,
        init_print.len() == 1 && init_print[0].get("request_id").is_none(),
        "init() runs for no request"
    );
    let stderr = find("azmlinfsrv.stderr", "RUN-STDERR");
    check!(
        server,
        stderr.len() == 2 && stderr[0]["pid"] == init_print[0]["pid"],
        "stderr lines are records of the worker's pid: {stderr:?}"
    );
    let banner = find("azmlinfsrv", "Azure ML Inferencing HTTP server v");
    check!(
        server,
        banner.len() == 1
            && banner[0]["settings"]["worker_count"] == "1"
            && banner[0]["settings"]["server_port"].as_str()
                == Some(server.port.to_string().as_str()),
        "the settings block is one record with the settings as fields: {banner:?}"
    );
    check!(
        server,
        !find("azmlinfsrv", "Server stopped").is_empty(),
        "the last line too"
    );
}
