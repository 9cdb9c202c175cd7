//! The examples `examples/README.md` lists start and answer as it and their headers
//! say: the quick start (`hello`), `e2e` (a scikit-learn model in a model directory),
//! `rawhttp`, `image`, `schema`, `streaming`, and the VS Code debugging configurations
//! (run for real in `debugging`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::check;
use crate::util::{
    example, free_port, in_venv, parse_response, plain_env, schema_env, venv, Connection, Launch,
};

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
    let mut connection = Connection::connect(server.port);
    let started = Instant::now();
    connection
        .send(
            "GET /score?count=4 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                .as_bytes(),
        )
        .expect("send request");
    let mut raw = Vec::new();
    check!(
        server,
        connection.read_until(&mut raw, b"{\"token\": 0}", 1)
    );
    let first_after = started.elapsed();
    connection.read_until(&mut raw, b"\0never\0", 1);
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

/// The three ways of `examples/vscode/launch.json`; the F5 one is run for real in
/// `debugging::launch_mode_of_the_vscode_example_hits_a_breakpoint_in_run`, the other
/// two are the connect and pid-attach modes `debugging` drives.
#[test]
fn vscode_example_has_the_three_debugging_configurations_the_readme_names() {
    let text = std::fs::read_to_string(example("vscode/launch.json")).unwrap();
    let launch: Value = serde_json::from_str(&text).expect("launch.json is plain JSON");
    let configurations = launch["configurations"].as_array().unwrap();
    check_configuration(configurations, |c| {
        c["connect"]["port"] == 5678 && c["preLaunchTask"].is_string()
    });
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

/// The documentation's end-to-end example, run as `examples/README.md` says: from
/// `examples/e2e`, `--entry_script ./onlinescoring/score.py --model_dir ./`, then
/// `sample-request.json` POSTed; the scikit-learn model answers its predictions.
#[test]
fn end_to_end_example_scores_the_sample_request_with_the_sklearn_model() {
    let folder = example("e2e");
    let port = free_port();
    let server = in_venv(
        Launch {
            args: [
                "--entry_script",
                "./onlinescoring/score.py",
                "--model_dir",
                "./",
                "--port",
            ]
            .map(String::from)
            .into_iter()
            .chain([port.to_string()])
            .collect(),
            env: Vec::new(),
            cwd: Some(folder.clone()),
            port,
        },
        &sklearn_env(),
    )
    .start();
    let sample = std::fs::read(folder.join("sample-request.json")).unwrap();
    let response = server.request(
        "POST",
        "/score",
        &[("Content-Type", "application/json")],
        &sample,
    );
    check!(
        server,
        response.status == 200,
        "status {}: {}",
        response.status,
        response.text()
    );
    let predictions: Vec<f64> = serde_json::from_value(response.json()).unwrap_or_default();
    // What train.py's ridge regression predicts for the two sample rows.
    let expected = [5430.917515226919, 4005.6834037998824];
    check!(
        server,
        predictions.len() == 2
            && predictions
                .iter()
                .zip(expected)
                .all(|(got, want)| (got - want).abs() < 1e-6),
        "{}",
        response.text()
    );
    check!(server, server.output.text().contains("Init complete"));
}

/// scikit-learn at the version that pickled the e2e model (examples/e2e/requirements.txt).
fn sklearn_env() -> PathBuf {
    let requirements = std::fs::read_to_string(example("e2e/requirements.txt")).unwrap();
    let pinned = requirements
        .lines()
        .find(|line| line.starts_with("scikit-learn=="))
        .expect("requirements.txt pins scikit-learn")
        .to_string();
    venv("sklearn", &[&pinned])
}

#[test]
fn image_example_answers_a_png_of_the_asked_size() {
    let server = in_venv(Launch::script(&example("image/score.py")), &plain_env()).start();
    let response = server.get("/score?size=64");
    check!(server, response.status == 200, "{}", response.status);
    check!(server, response.header("content-type") == Some("image/png"));
    let png = &response.body;
    check!(
        server,
        png.starts_with(b"\x89PNG\r\n\x1a\n") && &png[12..16] == b"IHDR",
        "not a PNG: {:?}",
        &png[..png.len().min(16)]
    );
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    check!(server, (width, height) == (64, 64), "{width}x{height}");
    let refused = server.get("/score?size=0");
    check!(server, refused.status == 400, "{}", refused.status);
}

/// Every folder under `examples/` has a row in `examples/README.md` whose command
/// names a script that exists (each row's example is run by a test in this module, or
/// `debugging` for VS Code).
#[test]
fn examples_readme_lists_every_example_with_its_command() {
    let root = example("");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let mut folders: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|entry| entry.path().is_dir())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    folders.sort();
    assert!(folders.len() >= 7, "{folders:?}");
    for folder in folders {
        let row = readme
            .lines()
            .find(|line| line.starts_with(&format!("| [`{folder}`]")))
            .unwrap_or_else(|| panic!("examples/README.md has no row for examples/{folder}"));
        if folder == "vscode" {
            continue; // run through VS Code's files, not a command line
        }
        let command = row
            .split('`')
            .find(|part| part.contains("azmlinfsrv --entry_script"))
            .unwrap_or_else(|| panic!("the row of {folder} has no azmlinfsrv command: {row}"));
        let (dir, command) = match command.split_once(" && ") {
            Some((cd, rest)) => (cd.trim_start_matches("cd ").to_string(), rest),
            None => (".".to_string(), command),
        };
        let script = command
            .split_whitespace()
            .skip_while(|word| *word != "--entry_script")
            .nth(1)
            .unwrap();
        let path = root.parent().unwrap().join(dir).join(script);
        assert!(
            path.is_file(),
            "examples/README.md runs {folder} with {script}, which is not at {}",
            path.display()
        );
    }
}
