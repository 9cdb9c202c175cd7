//! What run() returns, as the client gets it: JSON text byte for byte as `json.dumps`
//! writes it (numpy scalars included), generator bodies streamed chunk by chunk, and
//! the contract's errors when run() raises or its result cannot be encoded.

use std::time::{Duration, Instant};

use crate::check;
use crate::util::{
    flask_env, in_venv, parse_response, plain_env, schema_env, test_script, Connection, Launch,
    Server,
};

fn body_of(server: &Server, case: &str) -> (u16, String) {
    let response = server.request(
        "POST",
        "/score",
        &[("Content-Type", "application/json")],
        format!(r#"{{"case": "{case}"}}"#).as_bytes(),
    );
    (response.status, response.text())
}

#[test]
fn results_are_encoded_exactly_like_json_dumps() {
    // numpy is there so that the script can convert its scalars itself.
    let server = in_venv(Launch::script(&test_script("outputs.py")), &schema_env()).start();
    let cases = [
        (
            "special_floats",
            r#"{"nan": NaN, "inf": Infinity, "ninf": -Infinity, "tenth": 0.1, "small": 1e-07, "big": 1180591620717411303424}"#,
        ),
        (
            "non_ascii",
            r#"{"text": "caf\u00e9 \u2615 \u65e5\u672c \ud83d\ude00", "ctrl": "tab\tquote\"back\\slash\n"}"#,
        ),
        (
            "nested",
            r#"{"list": [1, 2.5, null, true, false, {"deep": [[], {}]}], "tuple": [1, "two"], "3": "int key"}"#,
        ),
        (
            "numpy_converted",
            r#"{"float32": 0.10000000149011612, "int64": 7, "array": [0, 1, 2], "matrix": [[1.5, NaN], [Infinity, -0.0]], "bool": true}"#,
        ),
        ("none", "{}"),
    ];
    for (case, expected) in cases {
        let (status, body) = body_of(&server, case);
        check!(server, status == 200, "{case}: status {status}: {body}");
        check!(
            server,
            body == expected,
            "{case}:\n got      {body}\n expected {expected}"
        );
    }
    // A numpy scalar the script forgot to convert cannot be encoded: the internal 500.
    let unconverted = server.request(
        "POST",
        "/score",
        &[("Content-Type", "application/json")],
        br#"{"case": "numpy_unconverted"}"#,
    );
    check!(server, unconverted.status == 500);
    check!(
        server,
        unconverted.json()["message"]
            == "An unexpected internal error occurred. Check the logs for more info."
    );
    check!(
        server,
        unconverted.header("x-ms-run-function-failed") == Some("False")
    );
    check!(
        server,
        server
            .output
            .wait_for("is not JSON serializable", Duration::from_secs(5)),
        "the encoding error is logged"
    );
}

/// One streamed request: the raw bytes, when the first part arrived, when the last did.
fn stream(server: &Server, query: &str) -> (Vec<u8>, Duration, Duration) {
    let mut connection = Connection::connect(server.port);
    let started = Instant::now();
    connection
        .send(
            format!("GET /score?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .expect("send request");
    let mut raw = Vec::new();
    let got_first = connection.read_until(&mut raw, b"part 0\n", 1);
    check!(
        server,
        got_first,
        "no first part: {}",
        String::from_utf8_lossy(&raw)
    );
    let first_after = started.elapsed();
    connection.read_until(&mut raw, b"\0never\0", 1);
    (raw, first_after, started.elapsed())
}

fn check_streaming(server: &Server) {
    let (raw, first_after, total) = stream(server, "parts=3&pause=0.6");
    let head = String::from_utf8_lossy(&raw[..raw.len().min(1024)]).to_ascii_lowercase();
    check!(
        server,
        head.contains("transfer-encoding: chunked") && !head.contains("content-length"),
        "a streamed body is chunked: {head}"
    );
    check!(
        server,
        total.saturating_sub(first_after) >= Duration::from_millis(1000),
        "the first part must leave while the generator still sleeps (1.2 s to go): first after {first_after:?}, all after {total:?}"
    );
    let response = parse_response(&raw, false).expect("a response");
    check!(server, response.status == 200);
    check!(
        server,
        response.body == b"part 0\npart 1\npart 2\nbinary-tail:\x00\xff",
        "body {:?}",
        String::from_utf8_lossy(&response.body)
    );
    check!(
        server,
        response
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain"))
    );
    check!(
        server,
        server
            .output
            .wait_for("GET /score 200 ", Duration::from_secs(5))
    );
    let log = server.output.text();
    let access = log
        .lines()
        .find(|line| line.contains("GET /score 200 "))
        .unwrap_or("");
    check!(
        server,
        access.ends_with("ms N/A"),
        "the access log shows N/A for a streamed length: {access:?}"
    );

    // A generator that fails half-way cuts the body: the client must not take the
    // truncated body for a complete one.
    let (raw, _, _) = stream(server, "parts=4&pause=0&fail=1");
    check!(
        server,
        raw.starts_with(b"HTTP/1.1 200") && raw.windows(7).any(|w| w == b"part 1\n"),
        "what the generator produced before it failed reaches the client: {:?}",
        String::from_utf8_lossy(&raw)
    );
    check!(
        server,
        !raw.ends_with(b"0\r\n\r\n"),
        "a failed stream must not end like a complete chunked body: {:?}",
        String::from_utf8_lossy(&raw)
    );
    check!(
        server,
        server.output.wait_for(
            "the body generator failed on purpose",
            Duration::from_secs(5)
        )
    );
    let after = server.get("/score?parts=1");
    check!(
        server,
        after.status == 200 && after.body == b"part 0\nbinary-tail:\x00\xff",
        "the runner keeps serving after a failed stream"
    );
}

#[test]
fn generator_bodies_are_streamed_chunk_by_chunk_without_flask() {
    let server = in_venv(Launch::script(&test_script("streaming.py")), &plain_env()).start();
    check_streaming(&server);
}

#[test]
fn generator_bodies_are_streamed_chunk_by_chunk_with_flask() {
    let server = in_venv(Launch::script(&test_script("streaming.py")), &flask_env()).start();
    check_streaming(&server);
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
fn a_numpy_float64_needs_no_conversion_but_other_numpy_scalars_do() {
    // README "Input modes": convert numpy values first, or the answer is 500. True of
    // np.int64 (above); np.float64 subclasses float, so json.dumps (and the reference)
    // writes it unconverted.
    let server = in_venv(Launch::script(&test_script("outputs.py")), &schema_env()).start();
    let (status, body) = body_of(&server, "numpy_float64_unconverted");
    check!(server, status == 200, "status {status}: {body}");
    check!(server, body == r#"{"float64": 0.5}"#, "{body}");
    let (status, _) = body_of(&server, "numpy_unconverted");
    check!(server, status == 500);
}
