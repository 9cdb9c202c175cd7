//! The failure model of `docs/design.md`, row by row, with real processes: what the
//! client sees and that the server keeps serving.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::check;
use crate::util::{test_script, try_request, Launch, Scratch, Server};

fn lifecycle() -> Launch {
    Launch::script(&test_script("lifecycle.py"))
}

fn runner_pid(server: &Server) -> u64 {
    server.post("/score", r#"{"pid": true}"#).json()["pid"]
        .as_u64()
        .expect("pid")
}

fn is_process_alive(pid: u64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| stat.contains(") Z "))
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
    check!(server, wait_healthy(&server, Duration::from_secs(20)));
    let pid_after = runner_pid(&server);
    check!(
        server,
        pid_after != pid_before,
        "a killed runner is never reused"
    );
    std::thread::sleep(Duration::from_millis(200));
    check!(
        server,
        !is_process_alive(pid_before),
        "the stuck runner {pid_before} was killed"
    );
}

#[test]
fn a_crash_fails_only_its_request_and_the_runner_is_restarted() {
    let server = lifecycle().arg("--worker_count").arg("2").start();
    for (body, how) in [
        (r#"{"exit": 17}"#, "exit code 17"),
        (r#"{"segv": true}"#, "signal 11"),
    ] {
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
            response.header("x-ms-run-function-failed") == Some("True")
        );
        // The other runner keeps serving.
        let next = server.post("/score", "{}");
        check!(
            server,
            next.status == 200,
            "next request: {} {}",
            next.status,
            next.text()
        );
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
                (answer.map(|r| r.status).ok(), started.elapsed())
            })
        })
        .collect();
    for waiter in waiting {
        let (status, took) = waiter.join().unwrap();
        check!(
            server,
            status == Some(503) && took < Duration::from_secs(5),
            "a request queued during the failing restart got {status:?} after {took:?}"
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
    std::fs::remove_file(&marker).unwrap();
    check!(
        server,
        wait_healthy(&server, Duration::from_secs(30)),
        "the runner came back after init succeeded"
    );
    check!(server, server.post("/score", "{}").status == 200);
}

#[test]
fn a_full_queue_answers_503_with_retry_after() {
    let server = lifecycle().arg("--queue_limit").arg("1").start();
    let port = server.port;
    let busy =
        std::thread::spawn(move || try_request(port, "POST", "/score", &[], br#"{"sleep": 1.5}"#));
    std::thread::sleep(Duration::from_millis(300));
    let queued = std::thread::spawn(move || try_request(port, "POST", "/score", &[], b"{}"));
    std::thread::sleep(Duration::from_millis(300));
    let refused = server.post("/score", "{}");
    check!(
        server,
        refused.status == 503,
        "third request: {} {}",
        refused.status,
        refused.text()
    );
    check!(server, refused.header("retry-after").is_some());
    check!(
        server,
        refused.json()["message"]
            .as_str()
            .unwrap_or("")
            .contains("--queue_limit")
    );
    check!(server, busy.join().unwrap().is_ok_and(|r| r.status == 200));
    check!(
        server,
        queued.join().unwrap().is_ok_and(|r| r.status == 200),
        "the queued request is answered"
    );
}

#[test]
fn sigterm_lets_requests_in_flight_finish_then_exits_0() {
    let mut server = lifecycle().start();
    let runner = runner_pid(&server);
    let port = server.port;
    let in_flight =
        std::thread::spawn(move || try_request(port, "POST", "/score", &[], br#"{"sleep": 1.5}"#));
    std::thread::sleep(Duration::from_millis(400));
    server.signal("TERM");
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
        !is_process_alive(runner),
        "runner {runner} stopped with the server"
    );
}

#[test]
fn sigkill_of_the_server_leaves_no_python_behind() {
    let mut server = lifecycle().arg("--worker_count").arg("2").start();
    let runner = runner_pid(&server);
    server.signal("KILL");
    server.wait_exit(Duration::from_secs(5));
    let deadline = Instant::now() + Duration::from_secs(5);
    while is_process_alive(runner) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    check!(
        server,
        !is_process_alive(runner),
        "runner {runner} outlived a SIGKILLed server"
    );
}

#[test]
fn a_body_over_the_limit_gets_413_and_nothing_else_is_affected() {
    let server = lifecycle().arg("--max_body_mb").arg("1").start();
    let big = vec![b'x'; 2 * 1024 * 1024];
    let response = server.request("POST", "/score", &[], &big);
    check!(server, response.status == 413, "status {}", response.status);
    check!(
        server,
        response.json()["message"]
            .as_str()
            .unwrap_or("")
            .contains("--max_body_mb")
    );
    check!(server, server.post("/score", "{}").status == 200);
}

#[test]
fn a_slow_client_is_cut_off_and_others_are_served() {
    let server = lifecycle().arg("--read_timeout").arg("1").start();
    let mut slow = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    slow.write_all(b"POST /score HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    check!(
        server,
        server.post("/score", "{}").status == 200,
        "served while a client dawdles"
    );
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    check!(
        server,
        started.elapsed() < Duration::from_secs(5),
        "the slow connection was closed"
    );

    // A client that connects and never sends a byte is closed too.
    let mut silent = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = Instant::now();
    let mut nothing = Vec::new();
    let _ = silent.read_to_end(&mut nothing);
    check!(
        server,
        started.elapsed() < Duration::from_secs(5),
        "a silent connection was kept {:?}",
        started.elapsed()
    );

    // A body that stalls half-way gets 408.
    let mut stalled = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stalled
        .write_all(b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"a\"")
        .unwrap();
    stalled
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = Vec::new();
    let _ = stalled.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    check!(
        server,
        text.starts_with("HTTP/1.1 408"),
        "stalled body answer: {text}"
    );
}

#[test]
fn a_client_that_disconnects_leaves_nothing_behind() {
    let server = lifecycle().start();
    for _ in 0..3 {
        let mut client = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        let body = br#"{"sleep": 0.5}"#;
        let head = format!(
            "POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        client.write_all(head.as_bytes()).unwrap();
        client.write_all(body).unwrap();
        drop(client);
    }
    let started = Instant::now();
    let response = server.post("/score", "{}");
    check!(server, response.status == 200);
    check!(
        server,
        started.elapsed() < Duration::from_secs(3),
        "abandoned requests did not pile up: {:?}",
        started.elapsed()
    );
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
}

#[test]
fn requests_running_past_the_shutdown_grace_are_cut_off_on_time() {
    let mut server = lifecycle().arg("--shutdown_grace").arg("1").start();
    let runner = runner_pid(&server);
    let port = server.port;
    let long =
        std::thread::spawn(move || try_request(port, "POST", "/score", &[], br#"{"sleep": 20}"#));
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    server.signal("TERM");
    exits_0_and_stops(&mut server, runner);
    let took = started.elapsed();
    check!(
        server,
        took < Duration::from_secs(5),
        "shutdown took {took:?} with a 1 s grace"
    );
    let _ = long.join();
}

#[test]
fn a_runner_that_served_is_replaced_at_once_every_time_it_dies() {
    let server = lifecycle().start();
    for round in 0..3 {
        let pid = runner_pid(&server);
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        let started = Instant::now();
        // Send only once the runner is really gone (kill returns before it dies).
        while is_process_alive(pid) && started.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(5));
        }
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
    }
}

#[test]
fn quick_requests_do_not_queue_behind_a_slow_one_while_another_worker_is_free() {
    let server = lifecycle().arg("--worker_count").arg("2").start();
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.get("/readiness").status != 200 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    // Warm both workers with quick requests, as under real traffic.
    for _ in 0..50 {
        server.post("/score", "{}");
    }
    let port = server.port;
    let slow =
        std::thread::spawn(move || try_request(port, "POST", "/score", &[], br#"{"sleep": 1.5}"#));
    std::thread::sleep(Duration::from_millis(100));
    let quick: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                let mut slowest = Duration::ZERO;
                for _ in 0..20 {
                    let started = Instant::now();
                    let answer = try_request(port, "POST", "/score", &[], b"{}");
                    assert!(answer.is_ok_and(|r| r.status == 200));
                    slowest = slowest.max(started.elapsed());
                }
                slowest
            })
        })
        .collect();
    let slowest = quick.into_iter().map(|t| t.join().unwrap()).max().unwrap();
    check!(
        server,
        slowest < Duration::from_millis(700),
        "a quick request waited {slowest:?}"
    );
    check!(server, slow.join().unwrap().is_ok_and(|r| r.status == 200));
}
