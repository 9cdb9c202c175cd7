//! Start-up as users see it: the `Server Settings` block in the contract's order, the
//! flags that feed it, what the script finds in its environment, the separate health
//! port, the routes while `init()` is still running, the choice of interpreter
//! (`--python`, `AZMLINFSRV_PYTHON`, a virtualenv, `--conda_env`), and the start-up
//! failures: exit status and what the log says.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::check;
use crate::util::{example, test_script, try_request, venv, Launch, Scratch, Server};

const VALID_KEY: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";

#[test]
fn server_settings_block_lists_every_setting_in_the_contract_order() {
    let scratch = Scratch::new("banner");
    let health_port = crate::util::free_port();
    let server = Launch::script(&test_script("probe.py"))
        .arg("--model_dir")
        .arg(scratch.path.display().to_string())
        .arg("--worker_count")
        .arg("2")
        .arg("--appinsights_instrumentation_key")
        .arg(VALID_KEY)
        .arg("--access_control_allow_origins")
        .arg("http://a.example, http://b.example")
        .arg("--health_port")
        .arg(health_port.to_string())
        .env("SEPERATE_HEALTH_ENDPOINT", "true")
        .env("WORKER_TIMEOUT", "120")
        .env("SERVICE_NAME", "seen-by-the-script")
        .start();
    let log = server.startup_log();
    let script = test_script("probe.py");
    let expected = [
        format!("Entry Script Name: {}", script.display()),
        format!("Model Directory: {}", scratch.path.display()),
        "Config File: None".to_string(),
        "Worker Count: 2".to_string(),
        "Worker Timeout (seconds): 120".to_string(),
        format!("Server Port: {}", server.port),
        format!("Health Port: {health_port}"),
        "Application Insights Enabled: true".to_string(),
        "Application Insights Key: AppInsights key provided".to_string(),
        concat!(
            "Inferencing HTTP server version: azmlinfsrv/",
            env!("CARGO_PKG_VERSION")
        )
        .to_string(),
        "CORS for the specified origins: Enabling CORS for http://a.example, http://b.example"
            .to_string(),
        "Create dedicated endpoint for health: true".to_string(),
    ];
    let block = log
        .split("Server Settings\n---------------\n")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").next())
        .unwrap_or("");
    let lines: Vec<&str> = block.lines().collect();
    check!(
        server,
        lines == expected.iter().map(String::as_str).collect::<Vec<_>>(),
        "Server Settings block:\n{block}"
    );
    check!(
        server,
        log.contains("Valid Application Insights instrumentation key provided.")
    );
    check!(
        server,
        !log.contains(VALID_KEY),
        "the key itself is never logged"
    );
    check!(
        server,
        !log.contains("'AZUREML_MODEL_DIR' has not been set")
    );
    check!(
        server,
        log.contains(&format!("Liveness Probe: GET   127.0.0.1:{health_port}/"))
    );

    // The health port serves the whole app, as with the reference.
    let health = try_request(health_port, "GET", "/", &[], b"").expect("health port");
    check!(server, health.status == 200 && health.text() == "Healthy");
    let readiness = try_request(health_port, "GET", "/readiness", &[], b"").expect("health port");
    check!(
        server,
        readiness.json()["workers"] == 2,
        "/readiness on the health port: {} {}",
        readiness.status,
        readiness.text()
    );
    let scored = try_request(
        health_port,
        "POST",
        "/score",
        &[],
        br#"{"case": "environment"}"#,
    )
    .expect("score on the health port");
    check!(server, scored.status == 200);

    // What the script finds in os.environ.
    let seen: Value = scored.json();
    let env = &seen["env"];
    check!(
        server,
        env["AZUREML_MODEL_DIR"] == scratch.path.display().to_string(),
        "{env}"
    );
    check!(server, env["WORKER_COUNT"] == "2", "{env}");
    check!(
        server,
        env["SERVER_PORT"].as_str() == Some(server.port.to_string().as_str()),
        "{env}"
    );
    check!(
        server,
        env["HEALTH_PORT"].as_str() == Some(health_port.to_string().as_str()),
        "{env}"
    );
    check!(server, env["AML_APP_INSIGHTS_ENABLED"] == "true", "{env}");
    check!(
        server,
        env["AML_CORS_ORIGINS"] == "http://a.example, http://b.example",
        "{env}"
    );
    check!(server, env["SERVICE_NAME"] == "seen-by-the-script", "{env}");
    check!(server, env["WORKER_TIMEOUT"] == "120", "{env}");
    check!(
        server,
        env["AZUREML_ENTRY_SCRIPT"] == script.display().to_string(),
        "{env}"
    );
}

#[test]
fn an_unset_model_dir_is_pointed_out() {
    let server = Launch::script(&test_script("probe.py")).start();
    let log = server.startup_log();
    check!(
        server,
        log.contains(
            "The environment variable 'AZUREML_MODEL_DIR' has not been set.\nUse the --model_dir command line argument to set it."
        )
    );
    check!(server, log.contains("Model Directory: None"));
    check!(
        server,
        log.contains("Health Port: ") && log.contains("Create dedicated endpoint for health: None")
    );
}

#[test]
fn while_init_runs_liveness_says_503_and_score_requests_wait() {
    let script = test_script("slow_init.py");
    let mut server = Launch::script(&script).spawn();
    check!(
        server,
        server
            .output
            .wait_for("Invoking user's init function", Duration::from_secs(30))
    );
    let port = server.port;
    let early = try_request(port, "GET", "/", &[], b"").expect("GET / during init");
    check!(
        server,
        early.status == 503 && early.header("content-type") == Some("application/json"),
        "{} {}",
        early.status,
        early.text()
    );
    check!(
        server,
        early.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("init()")),
        "{}",
        early.text()
    );
    let started = Instant::now();
    let waiting = std::thread::spawn(move || try_request(port, "POST", "/score", &[], b"x"));
    let scored = waiting.join().unwrap().expect("POST /score during init");
    check!(
        server,
        scored.status == 200 && scored.text() == r#"{"ok": true}"#,
        "{} {}",
        scored.status,
        scored.text()
    );
    check!(
        server,
        started.elapsed() > Duration::from_millis(500),
        "the request waited for init()"
    );
    server.wait_ready();
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

fn exits_with(server: &mut Server, code: i32) {
    let status = server.wait_exit(Duration::from_secs(30));
    check!(
        server,
        status.and_then(|s| s.code()) == Some(code),
        "expected exit {code}, got {status:?}"
    );
}

#[test]
fn init_raising_exits_3_with_traceback_and_model_dir_tree() {
    let scratch = Scratch::new("init-raises");
    scratch.write("model/weights.bin", "x");
    let mut server = Launch::script(&test_script("init_raises.py"))
        .arg("--model_dir")
        .arg(scratch.path.display().to_string())
        .spawn();
    exits_with(&mut server, 3);
    let log = server.output.text();
    check!(server, log.contains("User's init function failed"));
    check!(
        server,
        log.contains("RuntimeError: INIT-FAILED-FOR-TEST-41ab")
    );
    check!(server, log.contains("Traceback (most recent call last)"));
    check!(
        server,
        log.contains("    weights.bin"),
        "model dir tree listed"
    );
}

#[test]
fn python_syntax_errors_show_pythons_own_message() {
    let mut server = Launch::script(&test_script("indentation_error.py")).spawn();
    exits_with(&mut server, 3);
    check!(
        server,
        server
            .output
            .text()
            .contains("IndentationError: unindent does not match any outer indentation level")
    );
}

#[test]
fn a_missing_script_is_named() {
    let scratch = Scratch::new("missing");
    let mut server = Launch::script(&scratch.path.join("does_not_exist.py")).spawn();
    exits_with(&mut server, 3);
    check!(server, server.output.text().contains("does_not_exist.py"));
}

#[test]
fn missing_init_or_run_names_the_function() {
    let no_init = test_script("no_init.py");
    let mut server = Launch::script(&no_init).spawn();
    exits_with(&mut server, 3);
    check!(
        server,
        server.output.text().contains("init()") && server.output.text().contains("no_init.py")
    );
    let no_run = test_script("no_run.py");
    let mut server = Launch::script(&no_run).spawn();
    exits_with(&mut server, 3);
    check!(server, server.output.text().contains("run()"));
}

#[test]
fn bad_command_lines_exit_1_with_a_clear_message() {
    let hello = example("hello/score.py");
    let mut launch = Launch::script(&hello);
    launch.args[3] = "70000".into();
    let mut server = launch.spawn();
    exits_with(&mut server, 1);
    check!(
        server,
        server.output.text().contains("70000") && server.output.text().contains("[1, 65535]")
    );

    let mut launch = Launch::script(&hello);
    launch.args = vec!["--port".into(), "5999".into()];
    let mut server = launch.spawn();
    exits_with(&mut server, 1);
    check!(server, server.output.text().contains("--entry_script"));

    let mut server = Launch::script(&hello)
        .arg("--worker_count")
        .arg("0")
        .spawn();
    exits_with(&mut server, 1);
    check!(server, server.output.text().contains("--worker_count"));
}

#[test]
fn a_missing_interpreter_says_what_was_tried() {
    let mut server = Launch::script(&example("hello/score.py"))
        .arg("--python")
        .arg("/no/such/python3")
        .spawn();
    exits_with(&mut server, 3);
    check!(server, server.output.text().contains("/no/such/python3"));
}

#[test]
fn a_broken_interpreter_is_a_clear_start_up_error() {
    let mut server = Launch::script(&example("hello/score.py"))
        .arg("--python")
        .arg("/bin/false")
        .spawn();
    exits_with(&mut server, 3);
    let log = server.output.text();
    check!(
        server,
        log.contains("/bin/false") && log.contains("working Python 3.8 or newer"),
        "the error names the interpreter and what it should be"
    );
}

#[test]
fn azmlinfsrv_python_chooses_the_interpreter_as_dash_dash_python_does() {
    let venv_dir = venv("plain", &[]);
    let python = venv_dir.join("bin").join("python");
    let server = Launch::script(&test_script("echo_kinds.py"))
        .env("AZMLINFSRV_PYTHON", python.display().to_string())
        .start();
    let answer = server.post("/score", r#"{"mode": "python"}"#).json();
    check!(
        server,
        answer["prefix"].as_str().map(std::path::PathBuf::from) == Some(venv_dir.clone()),
        "answer {answer}"
    );
    // It wins over an active virtualenv, as the flag does.
    let other = Scratch::new("not-a-venv");
    let server = Launch::script(&test_script("echo_kinds.py"))
        .env("AZMLINFSRV_PYTHON", python.display().to_string())
        .env("VIRTUAL_ENV", other.path.display().to_string())
        .start();
    let answer = server.post("/score", r#"{"mode": "python"}"#).json();
    check!(
        server,
        answer["prefix"].as_str().map(std::path::PathBuf::from) == Some(venv_dir.clone()),
        "answer {answer}"
    );
}

#[test]
fn a_conda_env_that_does_not_exist_is_a_clear_start_up_error() {
    // Only that the name is read, from the flag or the variable: conda itself is not
    // something the tests can count on.
    let flag = Launch::script(&example("hello/score.py"))
        .arg("--conda_env")
        .arg("no-such-env-for-azmlinfsrv-tests");
    let variable = Launch::script(&example("hello/score.py"))
        .env("AZMLINFSRV_CONDA_ENV", "no-such-env-for-azmlinfsrv-tests");
    for launch in [flag, variable] {
        let mut server = launch.spawn();
        let status = server.wait_exit(Duration::from_secs(30));
        check!(
            server,
            status.is_some_and(|s| !s.success()),
            "exit status {status:?}"
        );
        let log = server.output.text();
        check!(
            server,
            log.contains("The conda env 'no-such-env-for-azmlinfsrv-tests'")
                && log.contains("was not found"),
            "the error names the env"
        );
    }
}
