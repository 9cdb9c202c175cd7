//! The failure model of `docs/design.md` and README "Operating it", row by row, with
//! real processes: scoring timeouts, crashes and restarts (at once, or with a growing
//! delay for a crash loop), `/` and `/readiness` meanwhile, shutdown, clients that go
//! away; what the client sees and that the server keeps serving.

use std::time::{Duration, Instant};

use crate::check;
use crate::util::{
    test_script, try_request, wait_process_gone, Connection, Launch, Runs, Scratch, Server,
};

fn lifecycle() -> Launch {
    Launch::script(&test_script("lifecycle.py"))
}

fn runner_pid(server: &Server) -> u64 {
    server.post("/score", r#"{"pid": true}"#).json()["pid"]
        .as_u64()
        .expect("pid")
}

/// Waits until `GET /` says 200 again (a runner is back).
fn wait_healthy(server: &Server, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if try_request(server.port, "GET", "/", &[], b"").is_ok_and(|r| r.status == 200) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    false
}

/// Sends `body` to a server with a 1000 ms scoring timeout, checks the contract's
/// timeout answer arrived within `within`, and returns the runner's pid before it.
fn answers_the_timeout(server: &Server, body: &str, within: Duration) -> u64 {
    let pid_before = runner_pid(server);
    let started = Instant::now();
    let response = server.post("/score", body);
    let elapsed = started.elapsed();
    check!(
        server,
        response.status == 500 && response.json()["message"] == "Scoring timeout after 1000 ms",
        "{}",
        response.text()
    );
    check!(
        server,
        response.header("x-ms-run-function-failed") == Some("True")
    );
    check!(
        server,
        elapsed < within,
        "timeout answered after {elapsed:?}"
    );
    pid_before
}

#[test]
fn python_level_timeout_answers_on_time_and_keeps_the_runner() {
    let server = lifecycle().env("SCORING_TIMEOUT_MS", "1000").start();
    let pid_before = answers_the_timeout(&server, r#"{"sleep": 5}"#, Duration::from_millis(1800));
    check!(
        server,
        runner_pid(&server) == pid_before,
        "the runner interrupted itself and kept serving"
    );
}

#[test]
fn native_level_timeout_answers_on_time_and_replaces_the_runner() {
    let server = lifecycle().env("SCORING_TIMEOUT_MS", "1000").start();
    let pid_before = answers_the_timeout(
        &server,
        r#"{"native_hang": 30}"#,
        Duration::from_millis(2500),
    );
    check!(
        server,
        server.output.wait_for(
            "did not return within the scoring timeout of 1000 ms (stuck in native code?); killing it and starting a new one",
            Duration::from_secs(5)
        ),
        "the log says why the runner was killed"
    );
    check!(server, wait_healthy(&server, Duration::from_secs(20)));
    let pid_after = runner_pid(&server);
    check!(
        server,
        pid_after != pid_before,
        "a killed runner is never reused"
    );
    check!(
        server,
        wait_process_gone(pid_before, Duration::from_secs(5)),
        "the stuck runner {pid_before} was killed"
    );
}

#[test]
fn a_crash_fails_only_its_request_and_the_runner_is_restarted() {
    // One worker: the request after a crash can only be answered by a new runner.
    let server = lifecycle().start();
    for (round, (body, how)) in [
        (r#"{"exit": 17}"#, "exit code 17"),
        (r#"{"segv": true}"#, "signal 11"),
    ]
    .into_iter()
    .enumerate()
    {
        let crashed = runner_pid(&server);
        let response = server.post("/score", body);
        check!(server, response.status == 500, "{}", response.text());
        let message = response.json()["message"]
            .as_str()
            .unwrap_or("")
            .to_string();
        check!(
            server,
            message.contains(how) && message.contains("scoring process"),
            "message: {message}"
        );
        check!(
            server,
            message.contains(&format!("pid {crashed}")),
            "message names the runner: {message}"
        );
        check!(
            server,
            response.header("x-ms-run-function-failed") == Some("True")
        );
        // The next request waits for the new runner and is served by it.
        let next = server.post("/score", "{}");
        check!(
            server,
            next.status == 200,
            "next request: {} {}",
            next.status,
            next.text()
        );
        let replacement = next.json()["pid"].as_u64();
        check!(
            server,
            replacement.is_some_and(|pid| pid != crashed),
            "round {round}: served by {replacement:?} after {crashed} crashed"
        );
        check!(server, wait_process_gone(crashed, Duration::from_secs(5)));
    }
    check!(server, wait_healthy(&server, Duration::from_secs(20)));
    check!(
        server,
        server
            .output
            .wait_for("starting a new one", Duration::from_secs(5))
    );
}

#[test]
fn init_failing_on_restart_is_retried_and_the_server_comes_back() {
    let scratch = Scratch::new("init-marker");
    let marker = scratch.path.join("fail-init");
    let server = lifecycle()
        .env("LIFECYCLE_INIT_FAIL_MARKER", marker.display().to_string())
        .start();
    std::fs::write(&marker, "x").unwrap();
    let crash = server.post("/score", r#"{"exit": 3}"#);
    check!(server, crash.status == 500);
    // Requests that arrive while the replacement is starting wait for it; when it
    // fails they are answered 503 instead of waiting out the back-off.
    let port = server.port;
    let waiting: Vec<_> = (0..3)
        .map(|_| {
            std::thread::spawn(move || {
                let started = Instant::now();
                let answer = try_request(port, "POST", "/score", &[], b"{}");
                let retry_after = answer
                    .as_ref()
                    .ok()
                    .and_then(|r| r.header("retry-after").map(str::to_string));
                (
                    answer.map(|r| r.status).ok(),
                    started.elapsed(),
                    retry_after,
                )
            })
        })
        .collect();
    for waiter in waiting {
        let (status, took, retry_after) = waiter.join().unwrap();
        // 5 s: far less than the back-off's cap (30 s) a waiting request would see,
        // with room for the failing init() on a loaded machine.
        check!(
            server,
            status == Some(503) && took < Duration::from_secs(5),
            "a request queued during the failing restart got {status:?} after {took:?}"
        );
        check!(
            server,
            retry_after.as_deref() == Some("5"),
            "Retry-After of a queued request: {retry_after:?}"
        );
    }
    // Every runner is down and cannot start: unhealthy, /score says so at once.
    check!(
        server,
        server
            .output
            .wait_for("init() refuses to start", Duration::from_secs(10))
    );
    let health = server.get("/");
    check!(
        server,
        health.status == 503,
        "GET / while no runner is alive: {}",
        health.status
    );
    let refused = server.post("/score", "{}");
    check!(
        server,
        refused.status == 503 && refused.header("retry-after").is_some(),
        "{}",
        refused.text()
    );
    check!(
        server,
        refused.header("retry-after") == Some("5"),
        "Retry-After: {:?}",
        refused.header("retry-after")
    );
    check!(
        server,
        server.output.text().contains("failed to start again")
            && server.output.text().contains("; retrying in "),
        "the log says the restart failed and when it is retried"
    );
    std::fs::remove_file(&marker).unwrap();
    check!(
        server,
        wait_healthy(&server, Duration::from_secs(30)),
        "the runner came back after init succeeded"
    );
    check!(server, server.post("/score", "{}").status == 200);
}

#[test]
fn sigterm_lets_requests_in_flight_finish_then_exits_0() {
    let runs = Runs::new("sigterm");
    let mut server = lifecycle().start();
    let runner = runner_pid(&server);
    let port = server.port;
    let body = runs.gated_body("in-flight");
    let in_flight =
        std::thread::spawn(move || try_request(port, "POST", "/score", &[], body.as_bytes()));
    check!(
        server,
        runs.wait_started("in-flight", Duration::from_secs(30))
    );
    server.signal("TERM");
    // The server stops listening, but the request it has runs to its end.
    check!(
        server,
        server
            .output
            .wait_for("Shutting down", Duration::from_secs(10)),
        "the server began to stop"
    );
    check!(
        server,
        try_request(server.port, "GET", "/", &[], b"").is_err(),
        "a new connection is refused once the server is stopping"
    );
    runs.open_gate();
    let answer = in_flight.join().unwrap();
    check!(
        server,
        answer.as_ref().is_ok_and(|r| r.status == 200),
        "in-flight request: {answer:?}"
    );
    exits_0_and_stops(&mut server, runner);
}

/// Waits (15 s at most) for a stopping server: it must exit 0 and take `runner` with it.
fn exits_0_and_stops(server: &mut Server, runner: u64) {
    let status = server.wait_exit(Duration::from_secs(15));
    check!(
        server,
        status.is_some_and(|s| s.success()),
        "exit status {status:?}"
    );
    check!(
        server,
        wait_process_gone(runner, Duration::from_secs(1)),
        "runner {runner} stopped with the server"
    );
}

#[test]
fn sigkill_of_the_server_leaves_no_python_behind() {
    let mut server = lifecycle().arg("--worker_count").arg("2").start();
    let runner = runner_pid(&server);
    server.signal("KILL");
    check!(server, server.wait_exit(Duration::from_secs(5)).is_some());
    check!(
        server,
        wait_process_gone(runner, Duration::from_secs(5)),
        "runner {runner} outlived a SIGKILLed server"
    );
}

#[test]
fn a_client_that_disconnects_leaves_nothing_behind() {
    let runs = Runs::new("disconnects");
    let server = lifecycle().start();
    let port = server.port;
    // Hold the only worker, so that the abandoned requests wait in the queue.
    let holder_body = runs.gated_body("holder");
    let holder = std::thread::spawn(move || {
        try_request(port, "POST", "/score", &[], holder_body.as_bytes())
    });
    check!(server, runs.wait_started("holder", Duration::from_secs(30)));
    let fds_before = open_files(server.pid());
    for round in 0..3 {
        let mut client = Connection::connect(port);
        client
            .send_request(
                "POST",
                "/score",
                &[],
                runs.body(&format!("abandoned-{round}")).as_bytes(),
                true,
            )
            .unwrap();
        drop(client);
    }
    // The server has noticed every client going away once it has closed their
    // sockets (Linux: its open files are back to what they were).
    if let Some(before) = fds_before {
        let deadline = Instant::now() + Duration::from_secs(10);
        while open_files(server.pid()).is_some_and(|now| now > before) && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        check!(
            server,
            open_files(server.pid()).is_some_and(|now| now <= before),
            "the server closed the abandoned connections ({before} files before)"
        );
    }
    // Queued behind the abandoned ones: when it has run, they would have run too.
    let after_body = runs.body("after");
    let after =
        std::thread::spawn(move || try_request(port, "POST", "/score", &[], after_body.as_bytes()));
    runs.open_gate();
    check!(
        server,
        holder.join().unwrap().is_ok_and(|r| r.status == 200)
    );
    let started = Instant::now();
    let response = after.join().unwrap().expect("an answer");
    check!(server, response.status == 200);
    check!(
        server,
        runs.tags() == ["holder", "after"],
        "the abandoned requests were dropped from the queue without running: {:?}",
        runs.tags()
    );
    // The abandoned requests would take no time to run; this bound only says that
    // nothing else (a timeout, a wait per abandoned client) came in between.
    check!(
        server,
        started.elapsed() < Duration::from_secs(3),
        "abandoned requests did not pile up: {:?}",
        started.elapsed()
    );
}

/// How many files process `pid` has open (Linux; `None` elsewhere).
fn open_files(pid: u32) -> Option<usize> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()
        .map(|entries| entries.count())
}

#[test]
fn heavy_stderr_output_never_blocks_the_runner() {
    let server = lifecycle().start();
    let started = Instant::now();
    for _ in 0..3 {
        let response = server.post("/score", r#"{"stderr_mb": 4}"#);
        check!(server, response.status == 200);
    }
    check!(
        server,
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    check!(server, server.post("/score", "{}").status == 200);
}

#[test]
fn readiness_view_reports_every_worker() {
    let server = lifecycle().arg("--worker_count").arg("2").start();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut view = server.get("/readiness");
    while view.status != 200 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        view = server.get("/readiness");
    }
    check!(server, view.status == 200, "{}", view.text());
    check!(
        server,
        view.json() == serde_json::json!({"status": "ready", "workers_ready": 2, "workers": 2})
    );
    // Probes are not written to the access log; a request is, so once its line is
    // in, the probes' lines would be too.
    server.post("/score", "{}");
    check!(
        server,
        server
            .output
            .wait_for("POST /score 200", Duration::from_secs(5))
    );
    let log = server.output.text();
    check!(
        server,
        !log.contains("GET /readiness") && !log.contains("GET / "),
        "probes in the access log"
    );
}

#[test]
fn readiness_is_degraded_while_one_of_two_workers_cannot_start() {
    let scratch = Scratch::new("degraded");
    let marker = scratch.path.join("fail-init");
    let server = lifecycle()
        .arg("--worker_count")
        .arg("2")
        .env("LIFECYCLE_INIT_FAIL_MARKER", marker.display().to_string())
        .start();
    // Both ready, then one crashes and cannot come back while the marker exists.
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.get("/readiness").status != 200 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::write(&marker, "x").unwrap();
    check!(
        server,
        server.post("/score", r#"{"exit": 3}"#).status == 500
    );
    check!(
        server,
        server
            .output
            .wait_for("failed to start again", Duration::from_secs(20))
    );
    let view = server.get("/readiness");
    check!(
        server,
        view.status == 503
            && view.json()
                == serde_json::json!({"status": "degraded", "workers_ready": 1, "workers": 2}),
        "/readiness: {} {}",
        view.status,
        view.text()
    );
    // Liveness only needs one live worker, and the other one serves.
    check!(server, server.get("/").status == 200);
    check!(server, server.post("/score", "{}").status == 200);
    std::fs::remove_file(&marker).unwrap();
    let deadline = Instant::now() + Duration::from_secs(40);
    while server.get("/readiness").status != 200 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    check!(server, server.get("/readiness").status == 200);
}

#[test]
fn requests_running_past_the_shutdown_grace_are_cut_off_on_time() {
    shutdown_grace_cuts_off(lifecycle().arg("--shutdown_grace").arg("1"));
}

#[test]
fn the_shutdown_grace_comes_from_azmlinfsrv_shutdown_grace_too() {
    shutdown_grace_cuts_off(lifecycle().env("AZMLINFSRV_SHUTDOWN_GRACE", "1"));
}

/// Starts `launch` (a 1 s grace), sends a 20 s request, stops the server, and checks
/// that it is gone on time and what the cut request's client got.
fn shutdown_grace_cuts_off(launch: Launch) {
    let runs = Runs::new("grace");
    let mut server = launch.start();
    let runner = runner_pid(&server);
    let port = server.port;
    let body = runs.body_with("long", serde_json::json!({"sleep": 20}));
    let long =
        std::thread::spawn(move || try_request(port, "POST", "/score", &[], body.as_bytes()));
    check!(server, runs.wait_started("long", Duration::from_secs(30)));
    let started = Instant::now();
    server.signal("TERM");
    exits_0_and_stops(&mut server, runner);
    let took = started.elapsed();
    // 1 s of grace, then the runner is killed at once: 5 s leaves room for a loaded
    // machine and is far from the 20 s the request would have taken.
    check!(
        server,
        took < Duration::from_secs(5),
        "shutdown took {took:?} with a 1 s grace"
    );
    let answer = long.join().unwrap();
    // The client of the cut request is told the server is shutting down.
    check!(
        server,
        answer.as_ref().is_ok_and(|r| r.status == 503
            && r.json()["message"]
                .as_str()
                .is_some_and(|m| m.contains("--shutdown_grace"))),
        "the request cut at the end of the grace: {:?}",
        answer.as_ref().map(|r| (r.status, r.text()))
    );
}

#[test]
fn a_runner_that_served_is_replaced_at_once_every_time_it_dies() {
    let began = Instant::now();
    let server = lifecycle().start();
    // What a start costs on this machine now (the server, Python, the script's
    // init()): the replacement needs as much, and "at once" means no more than that
    // plus 1.5 s for a loaded 2-core machine.
    let start_up = began.elapsed();
    for round in 0..3 {
        let pid = runner_pid(&server);
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        let started = Instant::now();
        // Send only once the runner is really gone (kill returns before it dies).
        check!(server, wait_process_gone(pid, Duration::from_secs(5)));
        let response = server.post("/score", r#"{"pid": true}"#);
        check!(
            server,
            response.status == 200,
            "round {round}: {}",
            response.text()
        );
        check!(
            server,
            started.elapsed() < Duration::from_secs(5),
            "round {round}: the replacement took {:?} (no back-off for a runner that served)",
            started.elapsed()
        );
        check!(
            server,
            started.elapsed() < start_up + Duration::from_millis(1500),
            "round {round}: the replacement took {:?}, a start takes {start_up:?}",
            started.elapsed()
        );
    }
    // The back-off's own line: it must never have been taken.
    check!(
        server,
        server
            .output
            .wait_for("Started a scoring process: pid", Duration::from_secs(5))
            && !server.output.text().contains("starting a new one in"),
        "a runner that served was replaced without a delay"
    );
}

#[test]
fn a_crash_loop_is_restarted_with_growing_delays_and_answered_503_meanwhile() {
    let scratch = Scratch::new("crash-loop");
    let marker = scratch.path.join("crash");
    let server = lifecycle()
        .env("LIFECYCLE_CRASH_MARKER", marker.display().to_string())
        .start();
    std::fs::write(&marker, "x").unwrap();
    // The runner dies in run() before answering anything, and so do its replacements
    // right after their init(): each comes back after twice the delay of the last.
    let crash = server.post("/score", "{}");
    check!(server, crash.status == 500, "{}", crash.text());
    check!(
        server,
        server
            .output
            .wait_for("starting a new one in 3.2 s", Duration::from_secs(30)),
        "the delays grew to 3.2 s"
    );
    // Within the 3.2 s the only worker waits: every route says so at once.
    let asked = Instant::now();
    let refused = server.post("/score", "{}");
    let health = server.get("/");
    let readiness = server.get("/readiness");
    let took = asked.elapsed();
    check!(
        server,
        refused.status == 503 && refused.header("retry-after") == Some("5"),
        "/score while backing off: {} {:?} {}",
        refused.status,
        refused.header("retry-after"),
        refused.text()
    );
    check!(server, health.status == 503, "GET /: {}", health.status);
    check!(
        server,
        readiness.status == 503
            && readiness.json()
                == serde_json::json!({"status": "unavailable", "workers_ready": 0, "workers": 1}),
        "/readiness: {} {}",
        readiness.status,
        readiness.text()
    );
    // At once: well inside the 3.2 s delay (a request that waited for it would take
    // longer), with room for a loaded machine.
    check!(
        server,
        took < Duration::from_millis(2500),
        "the three answers took {took:?}"
    );
    let log = server.output.text();
    let delays: Vec<&str> = log
        .lines()
        .filter_map(|line| {
            line.split("before answering any request; starting a new one in ")
                .nth(1)
        })
        .collect();
    check!(
        server,
        delays.starts_with(&["0.1 s", "0.2 s", "0.4 s", "0.8 s", "1.6 s", "3.2 s"]),
        "the delays: {delays:?}"
    );
    std::fs::remove_file(&marker).unwrap();
    check!(
        server,
        wait_healthy(&server, Duration::from_secs(30)),
        "the worker came back once the script stopped crashing"
    );
    check!(server, server.post("/score", "{}").status == 200);
}

#[test]
fn a_running_request_whose_client_left_finishes_and_the_worker_keeps_serving() {
    let runs = Runs::new("left-while-running");
    let server = lifecycle().start();
    let runner = runner_pid(&server);
    let mut client = Connection::connect(server.port);
    client
        .send_request(
            "POST",
            "/score",
            &[],
            runs.gated_body("left").as_bytes(),
            true,
        )
        .unwrap();
    check!(server, runs.wait_started("left", Duration::from_secs(30)));
    drop(client);
    // run() cannot be interrupted safely: it finishes, and the same runner goes on.
    runs.open_gate();
    let next = server.post("/score", &runs.body("next"));
    check!(server, next.status == 200, "{}", next.text());
    check!(
        server,
        next.json()["pid"].as_u64() == Some(runner),
        "the runner was kept: {}",
        next.text()
    );
    check!(server, runs.tags() == ["left", "next"], "{:?}", runs.tags());
}

#[test]
fn keyboard_interrupt_in_run_is_a_json_500_and_the_runner_keeps_serving() {
    let server = lifecycle().start();
    let runner = runner_pid(&server);
    let answer = server.post("/score", r#"{"interrupt": true}"#);
    check!(
        server,
        answer.status == 500
            && answer.header("x-ms-run-function-failed") == Some("True")
            && answer.json()["message"].is_string(),
        "{} {:?} {}",
        answer.status,
        answer.headers,
        answer.text()
    );
    check!(server, runner_pid(&server) == runner, "the runner was kept");
}
