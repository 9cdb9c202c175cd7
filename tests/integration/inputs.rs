//! How run() receives its input: undecorated (text, a GET query as JSON, request
//! headers), `@rawhttp` with and without Flask installed (the client address, binary
//! bodies byte for byte, forms, AMLResponse), `@input_schema` with numpy and pandas
//! types next to `request_headers`, `driver_module`, and the start-up errors for
//! run() signatures and decorators the server refuses.

use std::time::Duration;

use serde_json::json;

use crate::check;
use crate::util::{
    flask_env, in_venv, plain_env, schema_env, test_script, Launch, Scratch, Server,
};

/// A body with every byte value, invalid UTF-8 included, in a pattern that would show a
/// byte lost, added or re-encoded anywhere.
fn binary_body() -> Vec<u8> {
    let mut body: Vec<u8> = (0..=255u8).collect();
    body.extend((0..=255u8).rev());
    body.extend_from_slice(b"\r\n\r\n\x00\xff\xfe{\"not\": \"json\"}");
    body.extend((0..50_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    body
}

/// The same script and the same requests must give the same answers with Flask's
/// `Request` and with the runner's stand-in.
fn check_rawhttp_request_api(server: &Server, is_flask_expected: bool) {
    let port = server.port;
    let described = server.request(
        "POST",
        "/score?mode=describe&k=1&k=two",
        &[("X-Custom", "hello"), ("Content-Type", "application/json")],
        "{\"a\": [1, \"caf\u{e9}\"]}".as_bytes(),
    );
    check!(
        server,
        described.status == 200,
        "{} {}",
        described.status,
        described.text()
    );
    let answer = described.json();
    check!(
        server,
        answer["flask_loaded"] == is_flask_expected,
        "flask_loaded: {answer}"
    );
    let class_module = answer["request_class_module"].as_str().unwrap_or("");
    check!(
        server,
        class_module.starts_with("flask") == is_flask_expected,
        "request class from {class_module}"
    );
    let expected = json!({
        "method": "POST",
        "path": "/score",
        "full_path": "/score?mode=describe&k=1&k=two",
        "url": format!("http://127.0.0.1:{port}/score?mode=describe&k=1&k=two"),
        "args": ["1", "two"],
        "first_k": "1",
        "missing": "default",
        "header_any_case": "hello",
        "content_type": "application/json",
        "mimetype": "application/json",
        "is_json": true,
        "data": "{\"a\": [1, \"caf\u{e9}\"]}",
        "json": {"a": [1, "caf\u{e9}"]},
    });
    for (key, value) in expected.as_object().unwrap() {
        check!(
            server,
            &answer[key] == value,
            "request.{key}: got {}, expected {value}",
            answer[key]
        );
    }

    let json_body = server.request(
        "POST",
        "/score?mode=json",
        &[("Content-Type", "application/vnd.api+json")],
        b"[1, 2]",
    );
    check!(
        server,
        json_body.json() == json!({"json": [1, 2], "get_json": [1, 2]}),
        "{}",
        json_body.text()
    );

    let boundary = "compatboundary";
    let mut multipart = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"field\"\r\n\r\nvalue \u{e9}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"upload\"; filename=\"w.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    multipart.extend_from_slice(&[0, 1, 254, 255]);
    multipart.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let content_type = format!("multipart/form-data; boundary={boundary}");
    let form = server.request(
        "POST",
        "/score?mode=form",
        &[("Content-Type", &content_type)],
        &multipart,
    );
    check!(
        server,
        form.json()
            == json!({"form": "value \u{e9}", "file_name": "w.bin", "file_bytes": [0, 1, 254, 255]}),
        "{}",
        form.text()
    );

    let body = binary_body();
    let echoed = server.request(
        "POST",
        "/score?mode=echo_bytes",
        &[("Content-Type", "application/octet-stream")],
        &body,
    );
    check!(server, echoed.status == 200);
    check!(
        server,
        echoed.body == body,
        "binary body changed on the way: sent {} bytes, got {}",
        body.len(),
        echoed.body.len()
    );
    check!(
        server,
        echoed.header("content-type") == Some("application/octet-stream")
    );
    let produced = server.get("/score?mode=all_bytes");
    let expected_bytes: Vec<u8> = (0..4).flat_map(|_| 0..=255u8).collect();
    check!(server, produced.body == expected_bytes);

    let with_headers = server.get("/score?mode=headers");
    check!(server, with_headers.status == 201);
    check!(server, with_headers.text() == "with headers");
    check!(
        server,
        with_headers.header("content-type") == Some("text/csv")
    );
    let split = with_headers.header_all("x-split").join(", ");
    check!(server, split == "a, b", "X-Split: {split:?}");
    check!(
        server,
        with_headers.header("x-ms-run-function-failed") == Some("False")
    );
    let failed = server.get("/score?mode=fail");
    check!(server, failed.status == 503);
    check!(server, failed.json() == json!({"error": "from run"}));
    check!(
        server,
        failed.header("x-ms-run-function-failed") == Some("True")
    );
    // The status is the script's; the body is not the server's error message.
    let raised = server.get("/score?mode=unknown");
    check!(
        server,
        raised.status == 500 && raised.header("x-ms-run-function-failed") == Some("True")
    );
}

#[test]
fn rawhttp_without_flask_gets_the_flask_request_api_from_the_runner() {
    let server = in_venv(Launch::script(&test_script("rawhttp.py")), &plain_env()).start();
    check!(
        server,
        server.startup_log().contains(
            "run() is decorated with @rawhttp. Server will invoke it with the flask request object."
        )
    );
    check_rawhttp_request_api(&server, false);
}

#[test]
fn rawhttp_with_flask_gets_a_real_flask_request() {
    let server = in_venv(Launch::script(&test_script("rawhttp.py")), &flask_env()).start();
    check_rawhttp_request_api(&server, true);
}

#[test]
fn input_schema_converts_numpy_and_pandas_types_and_passes_request_headers() {
    let server = in_venv(Launch::script(&test_script("schema.py")), &schema_env()).start();
    check!(
        server,
        server.startup_log().contains(
            "run() is decorated with @input_schema. Server will invoke it with the following arguments: matrix, frame, factor."
        )
    );
    let body = r#"{"matrix": [[1.5, 2.5], [3.0, 4.0]], "frame": [{"name": "x", "score": 0.5}, {"name": "y", "score": 2.0}], "factor": 2, "ignored": true}"#;
    let response = server.request(
        "POST",
        "/score",
        &[("Content-Type", "application/json"), ("X-Custom", "hdr")],
        body.as_bytes(),
    );
    check!(
        server,
        response.status == 200,
        "{} {}",
        response.status,
        response.text()
    );
    check!(
        server,
        response.json()
            == json!({
                "matrix_type": "ndarray",
                "dtype": "float64",
                "shape": [2, 2],
                "total": 22.0,
                "frame_type": "DataFrame",
                "columns": ["name", "score"],
                "names": ["x", "y"],
                "score_sum": 2.5,
                "rows": 2,
                "factor": 2,
                "custom_header": "hdr",
            }),
        "{}",
        response.text()
    );

    // The default of a parameter the body leaves out.
    let defaulted = server.request(
        "POST",
        "/score",
        &[("Content-Type", "application/json")],
        br#"{"matrix": [[1.0, 1.0]], "frame": [{"name": "z", "score": 1.0}]}"#,
    );
    check!(
        server,
        defaulted.status == 200 && defaulted.json()["total"] == 6.0,
        "{}",
        defaulted.text()
    );
    let missing = server.request(
        "POST",
        "/score",
        &[("Content-Type", "application/json")],
        br#"{"frame": []}"#,
    );
    check!(server, missing.status == 400);
    check!(
        server,
        missing.json()["message"] == "A value is not provided for the 'matrix' parameter."
    );
    let not_json = server.request(
        "POST",
        "/score",
        &[("Content-Type", "text/plain")],
        body.as_bytes(),
    );
    check!(server, not_json.status == 415);
    check!(
        server,
        not_json.json()["message"] == "Expects Content-Type to be application/json"
    );
    for (body, message) in [
        (
            &b"{\"matrix\": "[..],
            "POST body could not be decoded as JSON: ",
        ),
        (&b""[..], "POST body is empty. Expecting a JSON dictionary."),
        (
            &b"[[1.0, 2.0]]"[..],
            "POST body should be a JSON dictionary.",
        ),
    ] {
        let refused = server.request(
            "POST",
            "/score",
            &[("Content-Type", "application/json; charset=utf-8")],
            body,
        );
        check!(
            server,
            refused.status == 400
                && refused.json()["message"]
                    .as_str()
                    .is_some_and(|text| text.starts_with(message)),
            "{} {}",
            refused.status,
            refused.text()
        );
    }
    // A value the numpy type cannot take fails inside the decorator: the script's 500.
    let wrong_type = server.request(
        "POST",
        "/score",
        &[("Content-Type", "application/json")],
        br#"{"matrix": [["a", "b", "c"]], "frame": [{"name": "z", "score": 1.0}]}"#,
    );
    check!(
        server,
        wrong_type.status == 500 && wrong_type.header("x-ms-run-function-failed") == Some("True"),
        "{} {}",
        wrong_type.status,
        wrong_type.text()
    );
}

fn exits_3_saying(script: &std::path::Path, venv_dir: &std::path::Path, needle: &str) {
    let mut server = in_venv(Launch::script(script), venv_dir).spawn();
    let status = server.wait_exit(Duration::from_secs(30));
    check!(
        server,
        status.and_then(|s| s.code()) == Some(3),
        "{}: expected exit 3, got {status:?}",
        script.display()
    );
    check!(
        server,
        server.output.text().contains(needle),
        "{}: the log must say {needle:?}",
        script.display()
    );
}

#[test]
fn run_signatures_the_server_cannot_call_are_start_up_errors() {
    let cases = [
        (
            "run_star_args.py",
            "run() cannot accept positional-only arguments, *args, or **kwargs.",
        ),
        (
            "run_star_kwargs.py",
            "run() cannot accept positional-only arguments, *args, or **kwargs.",
        ),
        (
            "run_positional_only.py",
            "run() cannot accept positional-only arguments, *args, or **kwargs.",
        ),
        (
            "run_no_parameter.py",
            "run() needs to accept an argument for input data.",
        ),
        (
            "run_only_headers.py",
            "run() needs to accept an argument other than \"request_headers\".",
        ),
    ];
    let plain = plain_env();
    for (name, message) in cases {
        exits_3_saying(&test_script(name), &plain, message);
    }
}

#[test]
fn rawhttp_together_with_input_schema_is_a_start_up_error() {
    let script = test_script("rawhttp_and_schema.py");
    exits_3_saying(
        &script,
        &schema_env(),
        "run() cannot be decorated with both @rawhttp and @input_schema",
    );
}

#[test]
fn driver_module_run_is_called_and_the_drivers_init_runs() {
    let server = Launch::script(&test_script("driver.py")).start();
    let response = server.post("/score", "payload");
    check!(
        server,
        response.json() == json!({"from": "target", "data": "payload"}),
        "{}",
        response.text()
    );
    let log = server.startup_log();
    check!(server, log.contains("TARGET-INIT-RAN"));
    check!(server, log.contains("DRIVER-INIT-RAN"));
    let driver = test_script("driver.py");
    let target = test_script("driver_target.py");
    check!(
        server,
        log.contains(&format!(
            "Found driver script at {} and the score script at {}",
            driver.display(),
            target.display()
        )),
        "the log names both scripts"
    );
}

#[test]
fn the_servers_aml_modules_win_over_installed_ones_and_both_names_work() {
    let scratch = Scratch::new("contrib-twins");
    let refuse = "raise ImportError('the installed package must not be used for this module')\n";
    for module in [
        "azureml/contrib/services/aml_request.py",
        "azureml/contrib/services/aml_response.py",
        "azureml_inference_server_http/api/aml_request.py",
        "azureml_inference_server_http/api/aml_response.py",
    ] {
        scratch.write(module, refuse);
    }
    for package in [
        "azureml/__init__.py",
        "azureml/contrib/__init__.py",
        "azureml/contrib/services/__init__.py",
        "azureml_inference_server_http/__init__.py",
        "azureml_inference_server_http/api/__init__.py",
    ] {
        scratch.write(package, "");
    }
    scratch.write(
        "azureml/contrib/services/sibling.py",
        "VALUE = 'a real module next to the provided ones'\n",
    );
    let script = scratch.write(
        "score.py",
        "from azureml_inference_server_http.api.aml_request import rawhttp\n\
         from azureml_inference_server_http.api.aml_response import AMLResponse as TwinResponse\n\
         from azureml.contrib.services.aml_request import rawhttp as contrib_rawhttp\n\
         from azureml.contrib.services.aml_response import AMLResponse\n\
         from azureml.contrib.services import sibling\n\n\
         def init():\n    pass\n\n\
         @rawhttp\ndef run(request):\n\
         \x20   same = rawhttp is contrib_rawhttp and AMLResponse is TwinResponse\n\
         \x20   return AMLResponse(sibling.VALUE + (' / same' if same else ' / different'), 200)\n",
    );
    let server = in_venv(Launch::script(&script), &plain_env()).start();
    let response = server.get("/score");
    check!(
        server,
        response.status == 200
            && response.text() == "a real module next to the provided ones / same",
        "{} {}",
        response.status,
        response.text()
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
fn rawhttp_requests_carry_the_client_address() {
    let server = Launch::script(&test_script("rawhttp_remote_addr.py")).start();
    let answer = server.post("/score", "").json();
    check!(
        server,
        answer == serde_json::json!({"remote_addr": "127.0.0.1"}),
        "{answer}"
    );
}

#[test]
fn rawhttp_gets_get_and_post_and_other_methods_get_405_as_with_the_reference() {
    let server = in_venv(Launch::script(&test_script("rawhttp.py")), &plain_env()).start();
    for method in ["GET", "POST"] {
        let answer = server.request(method, "/score", &[], b"");
        check!(
            server,
            answer.status == 200,
            "{method}: {} {}",
            answer.status,
            answer.text()
        );
    }
    // As the reference: its Flask route for /score takes GET and POST only, whatever
    // the decorator. (README "Routes" said every method goes to run().)
    for method in ["PUT", "DELETE", "PATCH"] {
        let answer = server.request(method, "/score", &[], b"x");
        check!(
            server,
            answer.status == 405
                && answer.json()["message"] == "The method is not allowed for the requested URL.",
            "{method}: {} {}",
            answer.status,
            answer.text()
        );
    }
}
