//! The examples the README points to start and answer as their headers say (`hello`
//! and `e2e` are started by the foundation tests).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{in_venv, plain_env, raw_connection, read_until, schema_env, send_raw};
use crate::check;
use crate::util::{example, parse_response, Launch};

#[test]
fn rawhttp_example_echoes_binary_bodies_without_flask() {
    let server = in_venv(Launch::script(&example("rawhttp/score.py")), &plain_env()).start();
    let usage = server.get("/score");
    check!(
        server,
        usage.status == 200 && usage.text().starts_with("POST any body"),
        "{}",
        usage.text()
    );
    let body: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    let reversed = server.request(
        "POST",
        "/score?reverse=1",
        &[("Content-Type", "image/png")],
        &body,
    );
    let expected: Vec<u8> = body.iter().rev().copied().collect();
    check!(server, reversed.status == 200 && reversed.body == expected);
    check!(server, reversed.header("content-type") == Some("image/png"));
    check!(server, reversed.header("x-body-length") == Some("1000"));
    let refused = server.request("DELETE", "/score", &[], b"");
    check!(server, refused.status == 405, "{}", refused.status);
}

#[test]
fn schema_example_scores_a_numpy_input_and_describes_it() {
    let server = in_venv(Launch::script(&example("schema/score.py")), &schema_env()).start();
    let response = server.request(
        "POST",
        "/score",
        &[("Content-Type", "application/json")],
        br#"{"data": [[1.0, 2.0, 3.0], [0.0, 1.0, 0.0]], "scale": 2.0}"#,
    );
    check!(
        server,
        response.json() == json!({"predictions": [9.0, -2.0]}),
        "{}",
        response.text()
    );
    let defaulted = server.request(
        "POST",
        "/score",
        &[("Content-Type", "application/json")],
        br#"{"data": [[1.0, 2.0, 3.0]]}"#,
    );
    check!(
        server,
        defaulted.json() == json!({"predictions": [4.5]}),
        "{}",
        defaulted.text()
    );
    let swagger = server.get("/swagger.json?version=3").json();
    check!(
        server,
        swagger["components"]["schemas"]["ServiceInput"]["properties"]["data"]["type"] == "array",
        "{}",
        swagger["components"]
    );
}

#[test]
fn streaming_example_sends_each_token_as_it_is_made() {
    let server = in_venv(Launch::script(&example("streaming/score.py")), &plain_env()).start();
    let mut connection = raw_connection(server.port);
    let started = Instant::now();
    send_raw(
        &mut connection,
        "GET /score?count=4 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    let mut raw = Vec::new();
    check!(
        server,
        read_until(&mut connection, &mut raw, b"{\"token\": 0}")
    );
    let first_after = started.elapsed();
    read_until(&mut connection, &mut raw, b"\0never\0");
    let total = started.elapsed();
    check!(
        server,
        total.saturating_sub(first_after) >= Duration::from_millis(450),
        "the first token must leave while the others are made (0.6 s to go): first after {first_after:?}, all after {total:?}"
    );
    let response = parse_response(&raw, false).expect("a response");
    let tokens: Vec<Value> = response
        .text()
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect();
    check!(
        server,
        tokens == (0..4).map(|i| json!({"token": i})).collect::<Vec<_>>(),
        "{}",
        response.text()
    );
    check!(
        server,
        response.header("content-type") == Some("application/x-ndjson")
    );
}

#[test]
fn vscode_example_has_the_two_debugging_configurations_the_readme_names() {
    let text = std::fs::read_to_string(example("vscode/launch.json")).unwrap();
    let launch: Value = serde_json::from_str(&text).expect("launch.json is plain JSON");
    let configurations = launch["configurations"].as_array().unwrap();
    check_configuration(configurations, |c| c["listen"]["port"] == 5678);
    check_configuration(configurations, |c| {
        c["processId"] == "${command:pickProcess}"
    });
}

fn check_configuration(configurations: &[Value], is_wanted: impl Fn(&Value) -> bool) {
    assert!(
        configurations
            .iter()
            .any(|c| c["type"] == "debugpy" && c["request"] == "attach" && is_wanted(c)),
        "{configurations:?}"
    );
}
