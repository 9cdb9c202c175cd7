//! Configuration: the config file (given, or found in the app root or the script's
//! folder), each of its keys, precedence, `AML_APP_ROOT` / `AZUREML_SOURCE_DIRECTORY`
//! on `sys.path`, `AZUREML_DEBUG_PORT`, and the timeouts (`SCORING_TIMEOUT_MS` enforced,
//! `WORKER_TIMEOUT` not used to kill runs); which variables can stand in for a flag.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::check;
use crate::util::{in_venv, plain_env, test_script, Launch, Scratch, Server};

/// The probe script copied into an app folder.
fn write_probe(scratch: &Scratch, relative: &str) -> std::path::PathBuf {
    let source = std::fs::read_to_string(test_script("probe.py")).unwrap();
    scratch.write(relative, &source)
}

fn environment(server: &Server) -> Value {
    let response = server.post("/score", r#"{"case": "environment"}"#);
    check!(server, response.status == 200, "{}", response.text());
    response.json()
}

fn swagger_info(server: &Server) -> Value {
    let response = server.get("/swagger.json");
    check!(server, response.status == 200, "{}", response.text());
    response.json()
}

/// `--config_file PATH --port N` and nothing else: the config file names the script.
fn config_only(config: &Path, cwd: &Path) -> Launch {
    let mut launch = Launch::script(config).cwd(cwd);
    launch.args = vec![
        "--config_file".into(),
        config.display().to_string(),
        "--port".into(),
        launch.port.to_string(),
    ];
    launch
}

#[test]
fn every_config_file_key_takes_effect() {
    let scratch = Scratch::new("config-keys");
    let app = scratch.path.join("app");
    write_probe(&scratch, "app/code/score.py");
    scratch.write(
        "app/lib/compat_helper.py",
        "VALUE = 'from the source directory'\n",
    );
    let config = scratch.write(
        "settings/service.json",
        &json!({
            "AZUREML_ENTRY_SCRIPT": "code/score.py",
            "AZUREML_SOURCE_DIRECTORY": "lib",
            "SERVICE_NAME": "cfg-service",
            "SERVICE_VERSION": "4.2",
            "SERVICE_PATH_PREFIX": "cfgprefix",
            "SCORING_TIMEOUT_MS": 700,
            "AZUREML_LOG_LEVEL": "DEBUG",
            "AML_CORS_ORIGINS": "http://cfg.example",
            "AML_APP_INSIGHTS_ENABLED": true,
            "AML_APP_INSIGHTS_KEY": "not-a-uuid",
            "AZUREML_MODEL_DIR": "/models/from-config",
            "WORKSPACE_NAME": "ws",
            "HOSTNAME": "host",
            "AML_MODEL_DC_STORAGE_ENABLED": false,
            "APP_INSIGHTS_LOG_RESPONSE_ENABLED": false,
            "AML_APP_ROOT": "/not/used",
            "NOT_A_SETTING": 1,
        })
        .to_string(),
    );
    let server = config_only(&config, &app)
        .env("AML_APP_ROOT", app.display().to_string())
        .start();
    let log = server.startup_log();

    // AZUREML_ENTRY_SCRIPT, relative to the app root.
    let script = app.join("code/score.py");
    check!(
        server,
        log.contains(&format!("Entry Script Name: {}", script.display()))
    );
    check!(
        server,
        log.contains(&format!("Config File: {}", config.display()))
    );
    // AZUREML_SOURCE_DIRECTORY, joined to the app root.
    let imported = server.post("/score", r#"{"case": "import", "module": "compat_helper"}"#);
    check!(
        server,
        imported.json()["value"] == "from the source directory",
        "{}",
        imported.text()
    );
    // SERVICE_NAME, SERVICE_VERSION, SERVICE_PATH_PREFIX.
    let swagger = swagger_info(&server);
    check!(server, swagger["info"]["title"] == "cfg-service");
    check!(server, swagger["info"]["version"] == "4.2");
    check!(
        server,
        swagger["paths"].get("/cfgprefix/score").is_some(),
        "{}",
        swagger["paths"]
    );
    // SCORING_TIMEOUT_MS.
    check!(server, log.contains("Scoring timeout is set to 700"));
    let timed_out = server.post("/score", r#"{"case": "sleep", "seconds": 5}"#);
    check!(
        server,
        timed_out.status == 500 && timed_out.json()["message"] == "Scoring timeout after 700 ms",
        "{}",
        timed_out.text()
    );
    // AZUREML_LOG_LEVEL.
    check!(
        server,
        log.contains("compat.probe - PROBE-DEBUG-FROM-INIT"),
        "DEBUG records of the script are logged"
    );
    // AML_CORS_ORIGINS.
    let cors = server.request(
        "POST",
        "/score",
        &[("Origin", "http://cfg.example")],
        br#"{"case": "environment"}"#,
    );
    check!(
        server,
        cors.header("access-control-allow-origin") == Some("http://cfg.example")
    );
    // AML_APP_INSIGHTS_ENABLED + AML_APP_INSIGHTS_KEY: validated, in the reference's words.
    check!(
        server,
        log.contains("Invalid Application Insights instrumentation key provided.\nApplication Insights has been disabled.")
    );
    check!(server, log.contains("Application Insights Enabled: false"));
    // AZUREML_MODEL_DIR.
    check!(server, log.contains("Model Directory: /models/from-config"));
    // Keys without an effect here are accepted; unknown ones and AML_APP_ROOT are named.
    let extra_keys = log
        .lines()
        .find(|line| line.contains("Found extra keys in the config file"))
        .unwrap_or("");
    check!(
        server,
        extra_keys.contains("NOT_A_SETTING")
            && !extra_keys.contains("WORKSPACE_NAME")
            && !extra_keys.contains("HOSTNAME")
            && !extra_keys.contains("DC_STORAGE")
            && !extra_keys.contains("LOG_RESPONSE"),
        "extra keys line: {extra_keys:?}"
    );
    check!(
        server,
        log.contains("AML_APP_ROOT in the config file") && log.contains("is ignored")
    );
    // The script sees the config values through the server only, as with the reference:
    // they are not exported into its environment.
    let seen = environment(&server);
    check!(
        server,
        seen["env"]["AML_APP_ROOT"] == app.display().to_string(),
        "{seen}"
    );
    check!(server, seen["env"]["SERVICE_NAME"].is_null(), "{seen}");
    check!(server, seen["env"]["AML_CORS_ORIGINS"].is_null(), "{seen}");
    check!(
        server,
        seen["env"]["AZUREML_CONFIG_FILE"] == config.display().to_string()
    );
}

#[test]
fn config_json_is_found_in_the_app_root_then_in_the_scripts_folder() {
    let scratch = Scratch::new("config-search");
    let root = scratch.path.join("root");
    let script = write_probe(&scratch, "scripts/score.py");
    let root_config = scratch.write("root/config.json", r#"{"SERVICE_NAME": "from-app-root"}"#);
    let script_config = scratch.write(
        "scripts/config.json",
        r#"{"SERVICE_NAME": "from-script-folder"}"#,
    );

    let server = Launch::script(&script).cwd(&root).start();
    check!(
        server,
        swagger_info(&server)["info"]["title"] == "from-app-root"
    );
    check!(
        server,
        server
            .output
            .text()
            .contains(&format!("Loaded the config file {}", root_config.display()))
    );
    drop(server);

    // An empty config.json does not count: the next place is searched.
    std::fs::write(&root_config, "").unwrap();
    let server = Launch::script(&script).cwd(&root).start();
    check!(
        server,
        swagger_info(&server)["info"]["title"] == "from-script-folder"
    );
    check!(
        server,
        server.startup_log().contains(&format!(
            "Loaded the config file {}",
            script_config.display()
        ))
    );
}

#[test]
fn environment_wins_over_the_config_file_and_the_command_line_over_both() {
    let scratch = Scratch::new("config-precedence");
    let script = write_probe(&scratch, "app/score.py");
    let config = scratch.write(
        "precedence.json",
        r#"{"SCORING_TIMEOUT_MS": 1000, "AML_CORS_ORIGINS": "http://cfg.example", "SERVICE_NAME": "from-config"}"#,
    );
    let server = Launch::script(&script)
        .arg("--config_file")
        .arg(config.display().to_string())
        .arg("--access_control_allow_origins")
        .arg("http://flag.example")
        .env("SCORING_TIMEOUT_MS", "2000")
        .env("AML_CORS_ORIGINS", "http://env.example")
        .start();
    let log = server.startup_log();
    check!(server, log.contains("Scoring timeout is set to 2000"));
    check!(
        server,
        swagger_info(&server)["info"]["title"] == "from-config"
    );
    for (origin, is_allowed) in [
        ("http://flag.example", true),
        ("http://env.example", false),
        ("http://cfg.example", false),
    ] {
        let response = server.request("GET", "/score", &[("Origin", origin)], b"");
        check!(
            server,
            response.header("access-control-allow-origin").is_some() == is_allowed,
            "origin {origin}: {:?}",
            response.headers
        );
    }
    check!(
        server,
        log.contains("CORS for the specified origins: Enabling CORS for http://flag.example")
    );
}

#[test]
fn a_broken_config_file_is_a_start_up_error_naming_it() {
    let scratch = Scratch::new("config-broken");
    let script = write_probe(&scratch, "score.py");
    let config = scratch.write("broken.json", "{\"SERVICE_NAME\": ");
    let mut server = Launch::script(&script)
        .arg("--config_file")
        .arg(config.display().to_string())
        .spawn();
    let status = server.wait_exit(Duration::from_secs(20));
    check!(
        server,
        status.is_some_and(|s| !s.success()),
        "exit {status:?}"
    );
    check!(
        server,
        server.output.text().contains(&config.display().to_string())
    );
}

#[test]
fn app_root_and_source_directory_are_on_sys_path() {
    let scratch = Scratch::new("sys-path");
    let script = write_probe(&scratch, "scripts/score.py");
    scratch.write(
        "app/src/compat_helper.py",
        "VALUE = 'src of the app root'\n",
    );
    let app = scratch.path.join("app");
    let server = Launch::script(&script)
        .env("AML_APP_ROOT", app.display().to_string())
        .env("AZUREML_SOURCE_DIRECTORY", "src")
        .start();
    let imported = server.post("/score", r#"{"case": "import", "module": "compat_helper"}"#);
    check!(
        server,
        imported.json()["value"] == "src of the app root",
        "{}",
        imported.text()
    );
    let seen = environment(&server);
    let sys_path: Vec<&str> = seen["sys_path"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let app_text = app.display().to_string();
    check!(
        server,
        sys_path.contains(&app_text.as_str()),
        "{sys_path:?}"
    );
    check!(
        server,
        seen["cwd"] == app_text,
        "cwd is the app root: {seen}"
    );
    drop(server);

    // Without AML_APP_ROOT the app root is the working directory, exactly.
    let cwd = scratch.path.join("scripts");
    let server = Launch::script(&script).cwd(&cwd).start();
    let seen = environment(&server);
    let cwd_text = cwd.display().to_string();
    check!(
        server,
        seen["env"]["AML_APP_ROOT"] == cwd_text,
        "AML_APP_ROOT {}",
        seen["env"]["AML_APP_ROOT"]
    );
    check!(
        server,
        seen["sys_path"]
            .as_array()
            .unwrap()
            .iter()
            .all(|entry| !entry.as_str().unwrap_or("").ends_with("/.")),
        "{}",
        seen["sys_path"]
    );
}

#[test]
fn debug_port_connects_to_the_debugger_before_the_script_loads() {
    let scratch = Scratch::new("debug-port");
    let script = write_probe(&scratch, "app/score.py");
    // A stand-in for debugpy that records the calls the server's runner makes.
    scratch.write(
        "app/debugpy.py",
        "VALUE = []\n\ndef connect(port):\n    VALUE.append(['connect', port])\n\n\
         def wait_for_client():\n    VALUE.append(['wait_for_client'])\n",
    );
    let config = scratch.write("debug.json", r#"{"AZUREML_DEBUG_PORT": 5679}"#);
    let server = in_venv(Launch::script(&script), &plain_env())
        .arg("--config_file")
        .arg(config.display().to_string())
        .start();
    let calls = server.post("/score", r#"{"case": "import", "module": "debugpy"}"#);
    check!(
        server,
        calls.json()["value"] == json!([["connect", 5679], ["wait_for_client"]]),
        "{}",
        calls.text()
    );
    check!(server, server.startup_log().contains("DEBUGGING mode"));
    drop(server);

    // Without debugpy in the environment, the server says what is missing.
    std::fs::remove_file(scratch.path.join("app/debugpy.py")).unwrap();
    let mut server = in_venv(Launch::script(&script), &plain_env())
        .env("AZUREML_DEBUG_PORT", "5679")
        .spawn();
    let status = server.wait_exit(Duration::from_secs(30));
    check!(
        server,
        status.and_then(|s| s.code()) == Some(3),
        "exit {status:?}"
    );
    check!(
        server,
        server.output.text().contains("debugpy is not installed")
    );
}

#[test]
fn scoring_timeout_cannot_be_swallowed_and_worker_timeout_kills_nothing() {
    let server = Launch::script(&test_script("probe.py"))
        .env("SCORING_TIMEOUT_MS", "600")
        .env("WORKER_TIMEOUT", "1")
        .start();
    check!(
        server,
        server.startup_log().contains("Worker Timeout (seconds): 1")
    );
    // `except Exception` in run() does not catch the scoring timeout.
    let started = Instant::now();
    let swallowed = server.post("/score", r#"{"case": "swallow_timeout", "seconds": 5}"#);
    check!(
        server,
        swallowed.status == 500 && swallowed.json()["message"] == "Scoring timeout after 600 ms",
        "{}",
        swallowed.text()
    );
    check!(server, started.elapsed() < Duration::from_secs(3));
    // sys.exit() in run() is the script's failure, answered in JSON; the runner stays.
    let exited = server.post("/score", r#"{"case": "sys_exit"}"#);
    check!(
        server,
        exited.status == 500
            && exited.json()["message"]
                == "An unexpected error occurred in scoring script. Check the logs for more info."
            && exited.header("x-ms-run-function-failed") == Some("True"),
        "{}",
        exited.text()
    );
    let after = server.post("/score", r#"{"case": "sleep", "seconds": 0}"#);
    check!(
        server,
        after.status == 200,
        "the runner keeps serving after sys.exit()"
    );
    drop(server);

    // A run longer than WORKER_TIMEOUT (but within the scoring timeout) completes.
    let server = Launch::script(&test_script("probe.py"))
        .env("WORKER_TIMEOUT", "1")
        .start();
    let slow = server.post("/score", r#"{"case": "sleep", "seconds": 1.5}"#);
    check!(
        server,
        slow.status == 200 && slow.json()["slept"] == 1.5,
        "{}",
        slow.text()
    );
}

#[test]
fn the_entry_script_and_config_file_variables_alone_do_not_start_the_server() {
    // As the reference (recorded: `no_entry_script_or_config`): only the flags can
    // name what to run; the variables are read with them, not instead of them.
    let scratch = Scratch::new("variables-alone");
    let script = scratch.write(
        "score.py",
        "def init():\n    pass\n\n\ndef run(data):\n    return data\n",
    );
    let config = scratch.write(
        "settings.json",
        &json!({"AZUREML_ENTRY_SCRIPT": script.display().to_string()}).to_string(),
    );
    for (name, value) in [
        ("AZUREML_ENTRY_SCRIPT", script.display().to_string()),
        ("AZUREML_CONFIG_FILE", config.display().to_string()),
    ] {
        let mut launch = Launch::script(&script).env(name, value);
        launch.args = vec!["--port".into(), launch.port.to_string()];
        let mut server = launch.spawn();
        let status = server.wait_exit(Duration::from_secs(30));
        check!(
            server,
            status.and_then(|s| s.code()) == Some(1),
            "{name} alone: exit status {status:?}"
        );
        check!(
            server,
            server.output.text().contains(
                "Either provide an entry_script using --entry_script or provide a path to the configuration file using --config_file"
            ),
            "{name} alone"
        );
    }
}

#[test]
fn azureml_config_file_is_read_beside_the_entry_script_flag() {
    let scratch = Scratch::new("config-variable");
    let config = scratch.write("settings.json", r#"{"SERVICE_NAME": "from-the-variable"}"#);
    let server = Launch::script(&test_script("probe.py"))
        .env("AZUREML_CONFIG_FILE", config.display().to_string())
        .start();
    let info = swagger_info(&server);
    check!(
        server,
        info["info"]["title"] == "from-the-variable",
        "{}",
        info["info"]
    );
}

#[test]
fn a_relative_app_root_is_exported_as_an_absolute_path() {
    let scratch = Scratch::new("relative-root");
    let script = write_probe(&scratch, "app/score.py");
    let server = Launch::script(&script)
        .cwd(&scratch.path)
        .env("AML_APP_ROOT", "app")
        .start();
    let seen = environment(&server);
    let app = scratch.path.join("app");
    check!(
        server,
        seen["env"]["AML_APP_ROOT"].as_str().map(Path::new) == Some(app.as_path()),
        "{seen}"
    );
}

#[test]
fn a_config_file_naming_no_script_serves_main_py_from_the_app_root() {
    let scratch = Scratch::new("config-main-py");
    scratch.write(
        "app/main.py",
        "def init():\n    pass\n\n\ndef run(data):\n    return {'from': 'main.py', 'data': data}\n",
    );
    let config = scratch.write("settings.json", r#"{"SERVICE_NAME": "no-script"}"#);
    // The working directory is not the app root: `main` is found through AML_APP_ROOT.
    let server = config_only(&config, &scratch.path)
        .env(
            "AML_APP_ROOT",
            scratch.path.join("app").display().to_string(),
        )
        .start();
    let response = server.post("/score", "hello");
    check!(
        server,
        response.status == 200 && response.json() == json!({"from": "main.py", "data": "hello"}),
        "{} {}",
        response.status,
        response.text()
    );
}

#[test]
fn a_config_file_naming_no_script_without_main_py_is_a_start_up_error() {
    let scratch = Scratch::new("config-no-main-py");
    std::fs::create_dir_all(scratch.path.join("app")).unwrap();
    let config = scratch.write("settings.json", r#"{"SERVICE_NAME": "no-script"}"#);
    let mut server = config_only(&config, &scratch.path)
        .env(
            "AML_APP_ROOT",
            scratch.path.join("app").display().to_string(),
        )
        .spawn();
    let status = server.wait_exit(Duration::from_secs(60));
    check!(
        server,
        status.is_some_and(|s| !s.success()),
        "exit {status:?}"
    );
    check!(
        server,
        server
            .output
            .text()
            .contains("No score script found. Expected score script main.py"),
        "the reason, in the reference's words"
    );
}
