//! The local debugging loop (README, "Debugging"), proven with real Debug Adapter
//! Protocol sessions against debugpy in the script's environment: listen mode
//! (`--debug_port`), connect mode (`AZUREML_DEBUG_PORT`) and attach by pid
//! (`python -m debugpy --pid`, which needs gdb). In each, a breakpoint in `run()` is hit
//! with the request's data in a local, and a stop of 3 s under a 1 s scoring timeout
//! still answers 200. Also: debugpy missing, `--debug_errors`, and start-up errors that
//! name their file and line.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::check;
use crate::dap::Dap;
use crate::util::{
    free_port, in_venv, output_text, plain_env, test_script, try_request, venv, Launch, Server,
};

/// Long enough for debugpy to start in a worker on a loaded machine.
const DEBUGGER_START: Duration = Duration::from_secs(90);
/// How long the tests keep `run()` stopped at the breakpoint: three scoring timeouts.
const STOP: Duration = Duration::from_secs(3);
const SCORING_TIMEOUT_MS: &str = "1000";
const SUSPENDED_LINE: &str = "Timeouts are suspended while debugging";

fn debugpy_env() -> PathBuf {
    venv("debugpy", &["debugpy"])
}

/// The debuggee's real path (the one the worker imports, so the one pydevd matches
/// breakpoints against) and the line of its `# breakpoint` marker.
fn debuggee() -> (PathBuf, usize) {
    let script = test_script("debuggee.py").canonicalize().unwrap();
    let text = std::fs::read_to_string(&script).unwrap();
    let line = text
        .lines()
        .position(|line| line.ends_with("# breakpoint"))
        .expect("debuggee.py marks a line `# breakpoint`")
        + 1;
    (script, line)
}

/// With a breakpoint set in `run()`: a request stops there, its data is in the local
/// `request_data`, and after a stop of 3 s (past the 1 s scoring timeout and the hard
/// deadline) `continue` lets the answer through as a 200.
fn breakpoint_holds_the_request_past_the_timeout(server: &Server, dap: &mut Dap) {
    let port = server.port;
    let body = r#"{"marker": "DAP-REQUEST-7"}"#;
    let client = std::thread::spawn(move || {
        try_request(
            port,
            "POST",
            "/score",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
    });
    let (thread, locals) = dap.stopped_locals();
    let seen = locals
        .iter()
        .find(|(name, _)| name == "request_data")
        .map(|(_, value)| value.clone());
    check!(
        server,
        seen.as_deref()
            .is_some_and(|value| value.contains("DAP-REQUEST-7")),
        "the local `request_data` holds the request's data: locals {locals:?}\n{}",
        dap.describe()
    );
    // What is under test: a developer looking at the stopped request for longer than
    // the scoring timeout.
    std::thread::sleep(STOP);
    check!(
        server,
        !client.is_finished(),
        "the request was answered while stopped at the breakpoint\n{}",
        dap.describe()
    );
    dap.request("continue", json!({"threadId": thread}));
    let response = client
        .join()
        .unwrap()
        .unwrap_or_else(|error| panic!("POST /score failed: {error}\n{}", server.describe()));
    check!(
        server,
        response.status == 200,
        "a request stopped for {STOP:?} under SCORING_TIMEOUT_MS={SCORING_TIMEOUT_MS} answered {}: {}",
        response.status,
        response.text()
    );
    check!(
        server,
        response.json() == json!({"echo": body}),
        "{}",
        response.text()
    );
    check!(
        server,
        server.output.text().matches(SUSPENDED_LINE).count() == 1,
        "the log says once that timeouts are suspended"
    );
}

#[test]
fn listen_mode_hits_a_breakpoint_in_run_and_does_not_time_out() {
    let (script, line) = debuggee();
    let debug_port = free_port();
    let mut server = in_venv(Launch::script(&script), &debugpy_env())
        .env("SCORING_TIMEOUT_MS", SCORING_TIMEOUT_MS)
        .arg("--debug_port")
        .arg(debug_port.to_string())
        .arg("--debug_wait")
        .spawn();
    let waiting = format!("waiting for a debugger to attach to 127.0.0.1:{debug_port}");
    check!(server, server.output.wait_for(&waiting, DEBUGGER_START));
    let mut dap = Dap::connect(debug_port);
    dap.attach_with_breakpoint(json!({"justMyCode": true}), |_| {}, &script, line);
    // --debug_wait held the import until now.
    server.wait_ready();
    breakpoint_holds_the_request_past_the_timeout(&server, &mut dap);
}

#[test]
fn connect_mode_hits_a_breakpoint_in_run_and_does_not_time_out() {
    let (script, line) = debuggee();
    let venv = debugpy_env();
    let adapter_port = free_port();
    // VS Code's "listen" configuration: the adapter waits for the debuggee to connect.
    let mut dap = Dap::start_adapter(&venv.join("bin").join("python"));
    let mut server = None;
    dap.attach_with_breakpoint(
        json!({"justMyCode": true, "listen": {"host": "127.0.0.1", "port": adapter_port}}),
        |dap| {
            dap.event("debugpyWaitingForServer");
            server = Some(
                in_venv(Launch::script(&script), &venv)
                    .env("SCORING_TIMEOUT_MS", SCORING_TIMEOUT_MS)
                    .env("AZUREML_DEBUG_PORT", adapter_port.to_string())
                    .spawn(),
            );
        },
        &script,
        line,
    );
    let mut server = server.unwrap();
    server.wait_ready();
    breakpoint_holds_the_request_past_the_timeout(&server, &mut dap);
}

#[test]
fn a_worker_attached_by_pid_hits_a_breakpoint_in_run_and_does_not_time_out() {
    require_gdb();
    let (script, line) = debuggee();
    let venv = debugpy_env();
    let python = venv.join("bin").join("python");
    let server = in_venv(Launch::script(&script), &venv)
        .env("SCORING_TIMEOUT_MS", SCORING_TIMEOUT_MS)
        .start();
    let ready = "Worker 0 is ready: pid ";
    check!(
        server,
        server.output.wait_for(ready, Duration::from_secs(30))
    );
    let log = server.output.text();
    let pid: u32 = log
        .split(ready)
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|pid| pid.parse().ok())
        .expect("the ready line names the pid");
    check!(
        server,
        log.contains(&format!(
            "-m debugpy --listen 127.0.0.1:5678 --pid {pid}, then attach to 127.0.0.1:5678"
        )),
        "the ready line says how to attach"
    );
    // A process picker shows the command line: it names the worker and its script.
    let command_line = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let command_line = String::from_utf8_lossy(&command_line).replace('\0', " ");
    check!(
        server,
        command_line.contains("runner.py --worker 0 --entry-script")
            && command_line.contains("debuggee.py"),
        "{command_line}"
    );

    let debug_port = free_port();
    let injected = Command::new(&python)
        .args(["-m", "debugpy", "--listen"])
        .arg(format!("127.0.0.1:{debug_port}"))
        .args(["--pid", &pid.to_string()])
        .output()
        .expect("run python -m debugpy --pid");
    check!(
        server,
        injected.status.success(),
        "python -m debugpy --pid {pid} failed: {}",
        output_text(&injected)
    );
    let mut dap = Dap::connect(debug_port);
    dap.attach_with_breakpoint(json!({"justMyCode": true}), |_| {}, &script, line);
    breakpoint_holds_the_request_past_the_timeout(&server, &mut dap);
}

/// Attaching by pid injects debugpy with gdb: without it the test cannot say anything.
fn require_gdb() {
    let found = Command::new("gdb")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    assert!(
        found,
        "gdb is not installed: attaching a debugger by pid (python -m debugpy --pid) needs it. \
         Install it (apt-get install -y gdb) and run the test again."
    );
}

#[test]
fn listen_mode_without_debugpy_is_a_startup_error_saying_how_to_install_it() {
    let plain = plain_env();
    let mut server = in_venv(Launch::script(&debuggee().0), &plain)
        .arg("--debug_port")
        .arg(free_port().to_string())
        .spawn();
    let status = server.wait_exit(Duration::from_secs(60));
    check!(
        server,
        status.and_then(|s| s.code()) == Some(3),
        "{status:?}"
    );
    let python = plain.join("bin").join("python3");
    let expected = format!("{} -m pip install debugpy", python.display());
    check!(
        server,
        server.output.text().contains(&expected),
        "{expected}"
    );
}

/// The line of `marker` in a test script (1-based).
fn line_of(script: &Path, marker: &str) -> u64 {
    let text = std::fs::read_to_string(script).unwrap();
    text.lines()
        .position(|line| line.contains(marker))
        .map(|index| index as u64 + 1)
        .unwrap_or_else(|| panic!("{} has no line with {marker}", script.display()))
}

#[test]
fn debug_errors_answer_the_exception_file_and_line_and_the_default_does_not() {
    let script = test_script("run_raises.py").canonicalize().unwrap();
    let raise_line = line_of(&script, "# raises");
    let body = r#"{"fail": "ValueError"}"#;

    let plain = Launch::script(&script).start();
    let default = plain.post("/score", body);
    check!(plain, default.status == 500);
    check!(
        plain,
        default.json()
            == json!({"message": "An unexpected error occurred in scoring script. Check the logs for more info."}),
        "{}",
        default.text()
    );

    let server = Launch::script(&script)
        .env("SCORING_TIMEOUT_MS", SCORING_TIMEOUT_MS)
        .arg("--debug_errors")
        .start();
    check!(
        server,
        server.startup_log().contains(
            "--debug_errors is on: a run() that fails answers its client with the exception"
        )
    );
    let failed = server.post("/score", body);
    check!(server, failed.status == 500);
    check!(
        server,
        failed.header("x-ms-run-function-failed") == Some("True")
    );
    let answer = failed.json();
    let error = &answer["error"];
    check!(
        server,
        answer["message"]
            == "An unexpected error occurred in scoring script. Check the logs for more info."
            && error["type"] == "ValueError"
            && error["message"] == "the input asked for ValueError"
            && error["file"] == script.display().to_string()
            && error["line"] == raise_line
            && error["function"] == "check"
            && error["traceback"]
                .as_str()
                .is_some_and(|text| text.contains("ValueError: the input asked for ValueError")),
        "{answer:#}"
    );

    let timed_out = server.post("/score", r#"{"sleep": 30}"#);
    let error: Value = timed_out.json()["error"].clone();
    check!(
        server,
        timed_out.status == 500
            && timed_out.json()["message"] == "Scoring timeout after 1000 ms"
            && error["type"] == "azmlinfsrv.ScoringTimeout"
            && error["file"] == script.display().to_string()
            && error["line"] == line_of(&script, "# sleeps"),
        "{}",
        timed_out.text()
    );
}

#[test]
fn startup_errors_name_the_file_and_line() {
    let cases = [
        ("init_raises.py", "raise RuntimeError"),
        ("indentation_error.py", "    return data"),
        ("import_raises.py", "raise ImportError"),
    ];
    for (name, marker) in cases {
        let script = test_script(name).canonicalize().unwrap();
        let mut server = Launch::script(&script).spawn();
        let status = server.wait_exit(Duration::from_secs(60));
        check!(
            server,
            status.and_then(|s| s.code()) == Some(3),
            "{name}: {status:?}"
        );
        let at = format!("{}:{}", script.display(), line_of(&script, marker));
        let log = server.output.text();
        check!(
            server,
            log.contains(&format!("The error is at {at}")),
            "{name}: the log names {at}"
        );
        check!(
            server,
            log.lines()
                .any(|line| line.contains("is exiting (status 3)") && line.contains(&at)),
            "{name}: the last words name {at}"
        );
        // The F5 task's problem matcher (examples/vscode/tasks.json) finds file and line.
        let located = log.lines().find_map(|line| {
            problem_pattern()
                .captures(line)
                .map(|c| (c[2].to_string(), c[3].to_string()))
        });
        check!(
            server,
            located.is_some_and(|(file, line)| format!("{file}:{line}") == at),
            "{name}: the problem matcher reads {at}"
        );
    }
}

fn problem_pattern() -> regex::Regex {
    let path = crate::util::example("vscode/tasks.json");
    let tasks: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let pattern = tasks["tasks"][0]["problemMatcher"]["pattern"]["regexp"]
        .as_str()
        .expect("the first task has a problem pattern");
    regex::Regex::new(pattern).unwrap()
}

/// `examples/vscode`: what VS Code does on F5 with "debug the open score.py": run the
/// pre-launch task's command line (with `${file}` the open script and the selected
/// interpreter), wait for its problem matcher's end pattern, attach to the
/// configuration's address. A breakpoint in `run()` is then hit.
#[test]
fn launch_mode_of_the_vscode_example_hits_a_breakpoint_in_run() {
    let folder = crate::util::example("vscode");
    let read = |name: &str| -> Value {
        let text = std::fs::read_to_string(folder.join(name)).unwrap();
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is plain JSON: {e}"))
    };
    let (launch, tasks) = (read("launch.json"), read("tasks.json"));
    let configuration = launch["configurations"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["preLaunchTask"].is_string()))
        .expect("a configuration with a pre-launch task")
        .clone();
    let task = tasks["tasks"]
        .as_array()
        .and_then(|all| {
            all.iter()
                .find(|t| t["label"] == configuration["preLaunchTask"])
        })
        .expect("the pre-launch task exists")
        .clone();
    let post_task = &configuration["postDebugTask"];
    check_json(
        tasks["tasks"]
            .as_array()
            .is_some_and(|all| all.iter().any(|t| &t["label"] == post_task)),
        "the post-debug task exists",
        &tasks,
    );
    check_json(
        task["command"] == "azmlinfsrv" && task["isBackground"] == true,
        "the task starts azmlinfsrv in the background",
        &task,
    );

    let (script, line) = debuggee();
    let python = debugpy_env().join("bin").join("python");
    let substitute = |text: &str| {
        text.replace("${file}", &script.display().to_string())
            .replace(
                "${fileDirname}",
                &script.parent().unwrap().display().to_string(),
            )
            .replace(
                "${command:python.interpreterPath}",
                &python.display().to_string(),
            )
    };
    let mut args: Vec<String> = task["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|arg| substitute(arg.as_str().unwrap()))
        .collect();
    let port = free_port();
    args.extend(["--port".to_string(), port.to_string()]);
    let env = task["options"]["env"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(key, value)| (key.clone(), substitute(value.as_str().unwrap())))
        .collect();
    let mut server = Launch {
        args,
        env,
        cwd: Some(PathBuf::from(substitute(
            task["options"]["cwd"].as_str().unwrap(),
        ))),
        port,
    }
    .spawn();
    let ends = regex::Regex::new(
        task["problemMatcher"]["background"]["endsPattern"]
            .as_str()
            .expect("an endsPattern"),
    )
    .unwrap();
    let deadline = std::time::Instant::now() + DEBUGGER_START;
    while !ends.is_match(&server.output.text()) {
        check!(
            server,
            std::time::Instant::now() < deadline,
            "the task's end pattern /{ends}/ never matched"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let address = &configuration["connect"];
    check!(server, address["host"] == "127.0.0.1", "{address}");
    let mut dap = Dap::connect(address["port"].as_u64().unwrap() as u16);
    dap.attach_with_breakpoint(json!({"justMyCode": true}), |_| {}, &script, line);
    server.wait_ready();
    let client = std::thread::spawn(move || try_request(port, "POST", "/score", &[], b"F5-DATA"));
    let (thread, locals) = dap.stopped_locals();
    check!(
        server,
        locals
            .iter()
            .any(|(name, value)| name == "request_data" && value.contains("F5-DATA")),
        "{locals:?}"
    );
    dap.request("continue", json!({"threadId": thread}));
    let response = client.join().unwrap().expect("the answer");
    check!(server, response.status == 200, "{}", response.text());
}

fn check_json(condition: bool, what: &str, json: &Value) {
    assert!(condition, "{what}: {json:#}");
}

/// Listening is not debugging: until a debugger attaches, the scoring timeout applies.
#[test]
fn listen_mode_without_a_debugger_attached_keeps_the_scoring_timeout() {
    let debug_port = free_port();
    let server = in_venv(
        Launch::script(&test_script("run_raises.py")),
        &debugpy_env(),
    )
    .env("SCORING_TIMEOUT_MS", SCORING_TIMEOUT_MS)
    .arg("--debug_port")
    .arg(debug_port.to_string())
    .start();
    check!(
        server,
        server
            .output
            .text()
            .contains(&format!("Debugger: listening on 127.0.0.1:{debug_port}"))
    );
    let response = server.post("/score", r#"{"sleep": 30}"#);
    check!(
        server,
        response.status == 500 && response.json()["message"] == "Scoring timeout after 1000 ms",
        "{}",
        response.text()
    );
    check!(server, !server.output.text().contains(SUSPENDED_LINE));
}
