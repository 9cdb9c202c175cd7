//! The request path end to end: the quickstart, the end-to-end example with a model
//! directory, interpreter choice, print() capture, input and output of an undecorated
//! run(), the contract's headers, errors and log line format.

use std::time::Duration;

use crate::check;
use crate::util::{example, test_script, venv, Launch};

#[test]
fn quickstart_hello_world_answers_get_and_post() {
    let server = Launch::script(&example("hello/score.py")).start();
    // `curl -p 127.0.0.1:5001/score` sends a GET.
    let get = server.get("/score");
    check!(
        server,
        get.status == 200,
        "GET /score answered {}",
        get.status
    );
    check!(
        server,
        get.text() == r#"{"message": "Hello, World!"}"#,
        "body was {}",
        get.text()
    );
    let post = server.request(
        "POST",
        "/score",
        &[("Content-Type", "application/json")],
        b"{\"a\": 1}",
    );
    check!(server, post.text() == r#"{"message": "Hello, World!"}"#);
    check!(
        server,
        post.header("content-type") == Some("application/json")
    );
    check!(
        server,
        post.header("x-ms-run-function-failed") == Some("False")
    );
    let exec_ms = post.header("x-ms-run-fn-exec-ms").unwrap_or("");
    check!(
        server,
        exec_ms
            .split_once('.')
            .is_some_and(|(_, decimals)| decimals.len() == 3),
        "exec ms {exec_ms:?}"
    );
    check!(
        server,
        post.header("x-ms-server-version")
            .is_some_and(|v| v.starts_with("azmlinfsrv/"))
    );
    check!(
        server,
        post.header("x-request-id").is_some_and(|id| id.len() == 36)
    );
}

#[test]
fn end_to_end_example_loads_the_model_from_the_model_dir() {
    let folder = example("e2e");
    let server = Launch::script(&folder.join("onlinescoring/score.py"))
        .cwd(&folder)
        .arg("--model_dir")
        .arg("./")
        .start();
    let response = server.request(
        "POST",
        "/score",
        &[("Content-Type", "application/json")],
        br#"{"data": [[1, 2, 3], [0, 0, 0]]}"#,
    );
    check!(
        server,
        response.status == 200,
        "status {}: {}",
        response.status,
        response.text()
    );
    check!(
        server,
        response.json() == serde_json::json!({"predictions": [4.75, 0.25], "model": "linear-demo"})
    );
    check!(
        server,
        server.output.text().contains("Loaded model linear-demo")
    );
}

#[test]
fn runs_under_the_active_virtualenv() {
    let venv_dir = venv("plain", &[]);
    let server = Launch::script(&test_script("echo_kinds.py"))
        .env("VIRTUAL_ENV", venv_dir.display().to_string())
        .start();
    let answer = server.post("/score", r#"{"mode": "python"}"#).json();
    let prefix = answer["prefix"].as_str().unwrap_or("");
    check!(
        server,
        std::path::Path::new(prefix) == venv_dir,
        "runner prefix {prefix}, venv {}",
        venv_dir.display()
    );
    check!(
        server,
        server.output.text().contains("the active virtualenv")
    );
}

#[test]
fn runs_the_python_given_with_dash_dash_python() {
    let venv_dir = venv("plain", &[]);
    let python = venv_dir.join("bin").join("python");
    let server = Launch::script(&test_script("echo_kinds.py"))
        .arg("--python")
        .arg(python.display().to_string())
        .start();
    let answer = server.post("/score", r#"{"mode": "python"}"#).json();
    check!(
        server,
        answer["prefix"].as_str().map(std::path::PathBuf::from) == Some(venv_dir.clone()),
        "answer {answer}"
    );
    check!(server, server.output.text().contains("--python"));
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
fn undecorated_run_gets_text_and_request_headers() {
    let server = Launch::script(&test_script("echo_kinds.py")).start();
    let post = server
        .request(
            "POST",
            "/score",
            &[("X-Custom", "hello")],
            "caf\u{e9}".as_bytes(),
        )
        .json();
    check!(
        server,
        post == serde_json::json!({"type": "str", "data": "caf\u{e9}", "custom_header": "hello"}),
        "{post}"
    );
    let get = server
        .get("/score?a=1&b=text&a=2&c=%7B%22k%22%3A%20true%7D")
        .json();
    check!(
        server,
        get["data"] == r#"{"a": [1, 2], "b": "text", "c": {"k": true}}"#,
        "{get}"
    );
    let bad = server.request("POST", "/score", &[], &[0xff, 0xfe]);
    check!(
        server,
        bad.status == 400
            && bad.json()["message"]
                .as_str()
                .unwrap_or("")
                .starts_with("Input cannot be decoded as UTF-8")
    );
}

#[test]
fn failures_in_run_give_the_contract_errors_and_the_runner_keeps_serving() {
    let server = Launch::script(&test_script("echo_kinds.py")).start();
    let raised = server.post("/score", r#"{"mode": "raise"}"#);
    check!(server, raised.status == 500);
    check!(
        server,
        raised.json()["message"]
            == "An unexpected error occurred in scoring script. Check the logs for more info."
    );
    check!(
        server,
        raised.header("x-ms-run-function-failed") == Some("True")
    );
    check!(
        server,
        server.output.wait_for(
            "run() failed on purpose in echo_kinds.py",
            Duration::from_secs(5)
        ),
        "traceback logged"
    );
    let unserialisable = server.post("/score", r#"{"mode": "unserialisable"}"#);
    check!(server, unserialisable.status == 500);
    check!(
        server,
        unserialisable.json()["message"]
            == "An unexpected internal error occurred. Check the logs for more info."
    );
    check!(
        server,
        unserialisable.header("x-ms-run-function-failed") == Some("False")
    );
    let fine = server.post("/score", "plain");
    check!(server, fine.status == 200 && fine.json()["data"] == "plain");
}

#[test]
fn routing_errors_are_json() {
    let server = Launch::script(&test_script("echo_kinds.py")).start();
    let missing = server.get("/nope");
    check!(
        server,
        missing.status == 404 && missing.header("content-type") == Some("application/json")
    );
    check!(
        server,
        missing.json()["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("The requested URL was not found")
    );
    let put = server.request("PUT", "/score", &[], b"x");
    check!(
        server,
        put.status == 405
            && put.json()["message"] == "The method is not allowed for the requested URL."
    );
    let options = server.request("OPTIONS", "/score", &[], b"");
    check!(server, options.status == 200 && options.body.is_empty());
    let health = server.get("/");
    check!(server, health.status == 200 && health.text() == "Healthy");
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
fn a_port_in_use_is_refused_and_the_first_server_keeps_serving() {
    let first = Launch::script(&test_script("echo_kinds.py")).start();
    let mut launch = Launch::script(&test_script("echo_kinds.py"));
    launch.args[3] = first.port.to_string();
    let mut second = launch.spawn();
    let status = second.wait_exit(Duration::from_secs(20));
    check!(
        second,
        status.is_some_and(|s| !s.success()),
        "the second server must exit non-zero"
    );
    check!(
        second,
        second.output.text().contains(&first.port.to_string()),
        "the message names the port"
    );
    check!(first, first.post("/score", "still here").status == 200);
}

#[test]
fn rawhttp_requests_carry_the_client_address() {
    let server = Launch::script(&test_script("rawhttp_remote_addr.py")).start();
    let answer = server.post("/score", "").json();
    check!(
        server,
        answer == serde_json::json!({"remote_addr": "127.0.0.1"}),
        "{answer}"
    );
}
