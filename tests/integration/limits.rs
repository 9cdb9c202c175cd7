//! The bounds a client meets before it reaches a worker (README "Limits"): the body
//! size (`--max_body_mb`, also for chunked bodies), the head size (64 KiB), slow and
//! idle clients (`--read_timeout`) and the queue (`--queue_limit`, `Retry-After: 1`);
//! and the bound a script meets: a log flood slows it down, the server does not grow.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::check;
use crate::util::{test_script, try_request, Connection, Launch, Runs, Server};

/// The script that misbehaves on request (`tests/scripts/lifecycle.py`).
fn lifecycle() -> Launch {
    Launch::script(&test_script("lifecycle.py"))
}

/// How far a timeout measured by the client may fall short of the server's: the
/// server's clock starts before ours (it reads our bytes after we sent them), and the
/// timer itself is coarse.
const EARLY_SLACK: Duration = Duration::from_millis(250);
/// How late a timeout may fire on a loaded 2-core machine before we call it broken.
const LATE_SLACK: Duration = Duration::from_secs(3);

/// Holds the only worker with a gated request, sends two more (one can wait, the
/// queue's limit being 1) and returns the refusal. Checks that the queued one and the
/// held one are answered 200 once the gate opens.
fn refusal_of_a_full_queue(server: &Server, runs: &Runs) -> crate::util::Response {
    let port = server.port;
    let busy_body = runs.gated_body("busy");
    let busy =
        std::thread::spawn(move || try_request(port, "POST", "/score", &[], busy_body.as_bytes()));
    check!(
        server,
        runs.wait_started("busy", Duration::from_secs(30)),
        "the first request reached the worker"
    );
    // Which of the two waits and which is refused depends on arrival, so the refusal
    // is the first answer: the queued one cannot be answered before the gate opens.
    let (sender, answers) = mpsc::channel();
    for _ in 0..2 {
        let sender = sender.clone();
        std::thread::spawn(move || {
            let _ = sender.send(try_request(port, "POST", "/score", &[], b"{}"));
        });
    }
    let refused = answers
        .recv_timeout(Duration::from_secs(30))
        .expect("one of the two is answered while the worker is busy")
        .expect("an answer");
    check!(
        server,
        runs.tags() == ["busy"],
        "nothing else ran: {:?}",
        runs.tags()
    );
    runs.open_gate();
    check!(server, busy.join().unwrap().is_ok_and(|r| r.status == 200));
    let queued = answers.recv_timeout(Duration::from_secs(60));
    check!(
        server,
        queued.is_ok_and(|answer| answer.is_ok_and(|r| r.status == 200)),
        "the queued request is answered"
    );
    refused
}

#[test]
fn a_full_queue_answers_503_with_retry_after() {
    let runs = Runs::new("full-queue");
    let server = lifecycle().arg("--queue_limit").arg("1").start();
    let refused = refusal_of_a_full_queue(&server, &runs);
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
        refused.header("retry-after") == Some("1"),
        "Retry-After: {:?}",
        refused.header("retry-after")
    );
    let message = refused.json()["message"].as_str().unwrap_or("").to_string();
    check!(server, message.contains("--queue_limit"), "{message}");
    check!(server, message.contains("--worker_count"), "{message}");
}

#[test]
fn the_queue_limit_comes_from_azmlinfsrv_queue_limit_too() {
    let runs = Runs::new("queue-limit-env");
    let server = lifecycle().env("AZMLINFSRV_QUEUE_LIMIT", "1").start();
    let refused = refusal_of_a_full_queue(&server, &runs);
    check!(
        server,
        refused.status == 503 && refused.header("retry-after") == Some("1"),
        "{} {}",
        refused.status,
        refused.text()
    );
}

#[test]
fn the_queue_holds_1024_requests_by_default() {
    let runs = Runs::new("queue-default");
    let server = lifecycle().start();
    let port = server.port;
    let busy_body = runs.gated_body("busy");
    let busy =
        std::thread::spawn(move || try_request(port, "POST", "/score", &[], busy_body.as_bytes()));
    check!(server, runs.wait_started("busy", Duration::from_secs(30)));
    // 1026 requests for 1024 places: exactly two are refused, at once; they are the
    // only answers before the gate opens, and when both are in, every request has
    // been seen by the server (1024 waiting + 2 refused).
    let mut connections: Vec<Connection> = (0..1026)
        .map(|_| {
            let mut connection = Connection::connect(port);
            connection
                .send_request("POST", "/score", &[], b"{}", false)
                .unwrap();
            connection
        })
        .collect();
    let mut refused = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while refused.len() < 2 && Instant::now() < deadline {
        for (index, connection) in connections.iter_mut().enumerate() {
            if refused.iter().any(|(seen, _)| *seen == index) {
                continue;
            }
            if let Some(answer) = connection.poll_response() {
                refused.push((index, answer.map(|r| r.status).ok()));
            }
        }
    }
    check!(
        server,
        refused.len() == 2 && refused.iter().all(|(_, status)| *status == Some(503)),
        "answers before the gate opened: {refused:?}"
    );
    runs.open_gate();
    check!(server, busy.join().unwrap().is_ok_and(|r| r.status == 200));
    let mut statuses = std::collections::BTreeMap::new();
    for (index, connection) in connections.iter_mut().enumerate() {
        if refused.iter().any(|(seen, _)| *seen == index) {
            continue;
        }
        connection.timeout(Duration::from_secs(60)).unwrap();
        let status = connection.read_response(false).ok().map(|r| r.status);
        *statuses.entry(status).or_insert(0) += 1;
    }
    check!(
        server,
        statuses == std::collections::BTreeMap::from([(Some(200), 1024)]),
        "the 1024 waiting requests: {statuses:?}"
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
fn a_chunked_body_over_the_limit_gets_413_too() {
    let server = lifecycle().arg("--max_body_mb").arg("1").start();
    // Without a Content-Length the server learns the size only as the chunks arrive.
    let chunk = vec![b'x'; 64 * 1024];
    let mut body = Vec::new();
    for _ in 0..(2 * 1024 * 1024 / chunk.len()) {
        body.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        body.extend_from_slice(&chunk);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let response = server.request("POST", "/score", &[("Transfer-Encoding", "chunked")], &body);
    check!(server, response.status == 413, "status {}", response.status);
    check!(
        server,
        response.json()["message"]
            .as_str()
            .unwrap_or("")
            .contains("--max_body_mb")
    );
    // A chunked body under the limit is scored as usual.
    let small = b"2\r\n{}\r\n0\r\n\r\n";
    let fine = server.request("POST", "/score", &[("Transfer-Encoding", "chunked")], small);
    check!(
        server,
        fine.status == 200,
        "{} {}",
        fine.status,
        fine.text()
    );
}

#[test]
fn the_body_limit_comes_from_azmlinfsrv_max_body_mb_and_defaults_to_100_mib() {
    let server = lifecycle().env("AZMLINFSRV_MAX_BODY_MB", "1").start();
    // `{}` and spaces: JSON the script accepts, of an exact size.
    let body_of = |size: usize| {
        let mut body = b"{}".to_vec();
        body.resize(size, b' ');
        body
    };
    let over = server.request("POST", "/score", &[], &body_of(1024 * 1024 + 1));
    check!(server, over.status == 413, "status {}", over.status);
    let under = server.request("POST", "/score", &[], &body_of(1024 * 1024));
    check!(server, under.status == 200, "status {}", under.status);

    // The default: 100 MiB. Sent as a Content-Length alone, so that the refusal
    // comes before any body byte is read (nothing of that size is sent).
    let server = lifecycle().start();
    for (length, expected) in [(100 * 1024 * 1024 + 1, 413), (100 * 1024 * 1024, 0)] {
        let mut connection = Connection::connect(server.port);
        connection
            .send(
                format!("POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n")
                    .as_bytes(),
            )
            .unwrap();
        if expected == 413 {
            let answer = connection.read_response(false).expect("an answer");
            check!(server, answer.status == 413, "status {}", answer.status);
        } else {
            // Under the limit the server waits for the body: no answer yet.
            connection.timeout(Duration::from_millis(500)).unwrap();
            let answer = connection.read_response(false);
            check!(
                server,
                answer.is_err(),
                "a body of exactly 100 MiB is accepted: {answer:?}"
            );
        }
    }
}

#[test]
fn a_head_over_64_kib_gets_431_and_the_connection_is_closed() {
    let server = lifecycle().start();
    // Just under the limit: served.
    let big = "x".repeat(60 * 1024);
    let fine = server.request("POST", "/score", &[("X-Big", &big)], b"{}");
    check!(server, fine.status == 200, "a 60 KiB head: {}", fine.status);

    let huge = "x".repeat(65 * 1024);
    let mut connection = Connection::connect(server.port);
    connection
        .send_request("POST", "/score", &[("X-Big", &huge)], b"{}", true)
        .unwrap();
    let answer = connection.read_response(false).expect("an answer");
    check!(server, answer.status == 431, "status {}", answer.status);
    // Known defect: README "Routes" says every answer carries `x-request-id`; the 431
    // is written by the HTTP layer before any of our code runs, and has none.
    check!(server, answer.header("x-request-id").is_none());
    // Closed: asked on the same connection (keep-alive was requested), nothing more.
    let rest = connection.wait_closed();
    check!(
        server,
        rest.is_empty(),
        "after the 431: {}",
        String::from_utf8_lossy(&rest)
    );
    check!(server, server.post("/score", "{}").status == 200);
}

/// Waits for the server to close `connection` and checks when: `timeout` after
/// `since`, not before (minus `EARLY_SLACK`) and not much after (`LATE_SLACK`).
/// Returns what the server sent before it closed.
fn closed_after(
    server: &Server,
    connection: &mut Connection,
    since: Instant,
    timeout: Duration,
    what: &str,
) -> Vec<u8> {
    connection.timeout(timeout + LATE_SLACK * 3).unwrap();
    let sent = connection.wait_closed();
    let took = since.elapsed();
    check!(
        server,
        took + EARLY_SLACK >= timeout && took <= timeout + LATE_SLACK,
        "{what}: closed after {took:?}, --read_timeout is {timeout:?}"
    );
    sent
}

#[test]
fn a_slow_client_is_cut_off_and_others_are_served() {
    let timeout = Duration::from_secs(1);
    let server = lifecycle().arg("--read_timeout").arg("1").start();
    let since = Instant::now();
    let mut slow = Connection::connect(server.port);
    slow.send(b"POST /score HTTP/1.1\r\nHost: x\r\n").unwrap();
    check!(
        server,
        server.post("/score", "{}").status == 200,
        "served while a client dawdles"
    );
    let started = Instant::now();
    let sent = closed_after(&server, &mut slow, since, timeout, "a head sent half-way");
    check!(
        server,
        started.elapsed() < Duration::from_secs(5),
        "the slow connection was closed"
    );
    // README "Limits": the headers' timeout closes the connection without an answer.
    check!(
        server,
        sent.is_empty(),
        "answer to a half-sent head: {}",
        String::from_utf8_lossy(&sent)
    );

    // A client that connects and never sends a byte is closed too.
    let started = Instant::now();
    let mut silent = Connection::connect(server.port);
    closed_after(
        &server,
        &mut silent,
        started,
        timeout,
        "a silent connection",
    );
    check!(
        server,
        started.elapsed() < Duration::from_secs(5),
        "a silent connection was kept {:?}",
        started.elapsed()
    );

    // A body that stalls half-way gets 408, --read_timeout after the headers.
    let mut stalled = Connection::connect(server.port);
    let since = Instant::now();
    stalled
        .send(b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"a\"")
        .unwrap();
    let answer = closed_after(&server, &mut stalled, since, timeout, "a stalled body");
    let text = String::from_utf8_lossy(&answer);
    check!(
        server,
        text.starts_with("HTTP/1.1 408"),
        "stalled body answer: {text}"
    );
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_read_timeout() {
    let timeout = Duration::from_secs(1);
    let server = lifecycle().arg("--read_timeout").arg("1").start();
    let mut connection = Connection::connect(server.port);
    let answer = connection
        .exchange("POST", "/score", &[], b"{}")
        .expect("an answer");
    check!(server, answer.status == 200);
    check!(
        server,
        answer.header("connection") != Some("close"),
        "kept alive after the answer"
    );
    let idle_since = Instant::now();
    let sent = closed_after(
        &server,
        &mut connection,
        idle_since,
        timeout,
        "an idle keep-alive connection",
    );
    check!(
        server,
        sent.is_empty(),
        "sent on an idle connection: {}",
        String::from_utf8_lossy(&sent)
    );
}

#[test]
fn the_read_timeout_comes_from_azmlinfsrv_read_timeout_and_defaults_to_more() {
    let server = lifecycle().env("AZMLINFSRV_READ_TIMEOUT", "1").start();
    let started = Instant::now();
    let mut silent = Connection::connect(server.port);
    closed_after(
        &server,
        &mut silent,
        started,
        Duration::from_secs(1),
        "a silent connection, AZMLINFSRV_READ_TIMEOUT=1",
    );

    // By default (30 s) a silent connection is still open well after 1 s. (Waiting
    // out the full 30 s would make this the slowest test of the crate.)
    let server = lifecycle().start();
    let mut silent = Connection::connect(server.port);
    silent.timeout(Duration::from_secs(3)).unwrap();
    let read = silent.read_response(false);
    check!(
        server,
        read.as_ref().is_err_and(|err| matches!(
            err.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        )),
        "a silent connection after 3 s under the default: {read:?}"
    );
}

#[test]
fn http2_is_not_spoken_and_a_preface_then_silence_is_cut_off() {
    let server = lifecycle().arg("--read_timeout").arg("1").start();
    // The HTTP/2 connection preface, as `curl --http2-prior-knowledge` sends it: an
    // HTTP/1.1 server answers it as a bad request line (or closes), never with HTTP/2.
    let mut connection = Connection::connect(server.port);
    connection
        .send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .unwrap();
    let started = Instant::now();
    let answer = closed_after(
        &server,
        &mut connection,
        started,
        Duration::ZERO,
        "after an HTTP/2 preface",
    );
    check!(
        server,
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 4"),
        "an HTTP/2 preface got: {}",
        String::from_utf8_lossy(&answer)
    );
    // One byte, then nothing: the connection is closed after --read_timeout, as any
    // slow request head is (HTTP/2's first byte used to hold it for ever).
    let mut silent = Connection::connect(server.port);
    silent.send(b"P").unwrap();
    let started = Instant::now();
    closed_after(
        &server,
        &mut silent,
        started,
        Duration::from_secs(1),
        "after one byte",
    );
    check!(server, server.post("/score", "{}").status == 200);
}

#[test]
fn any_bytes_in_a_query_get_an_answer_not_a_panic() {
    let server = lifecycle().start();
    // `%A` followed by a two-byte character used to panic the request task: the
    // connection was dropped without an answer. A query whose `version` is not one
    // gets the 404; other keys are ignored, as werkzeug does.
    for (target, status) in [
        ("/swagger.json?%A\u{e9}", "200"),
        ("/swagger.json?%\u{e9}%", "200"),
        ("/swagger.json?version=%A\u{e9}", "404"),
        ("/swagger.json?version=%ZZ%", "404"),
    ] {
        let mut connection = Connection::connect(server.port);
        let request = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        connection.send(request.as_bytes()).unwrap();
        let answer = connection.read_to_end().unwrap_or_default();
        let text = String::from_utf8_lossy(&answer);
        check!(
            server,
            text.starts_with(&format!("HTTP/1.1 {status}")),
            "GET {target}: {text}"
        );
    }
    check!(server, !server.output.text().contains("panicked"));
    check!(server, server.get("/swagger.json").status == 200);
}

/// The server's resident memory (`VmRSS`), in KiB.
fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_script_flooding_a_stdout_nobody_reads_slows_down_and_the_server_does_not_grow() {
    use std::process::{Command, Stdio};

    const LINES: usize = 3200; // of 64 KiB each (tests/scripts/flood.py): 200 MiB
    const LINE_BYTES: usize = 64 * 1024;
    const GROWTH_BOUND_KIB: u64 = 64 * 1024;
    // Spawned by hand: the harness reads the server's stdout at once, and the point here
    // is a stdout that nobody reads (a stalled terminal, log collector or pipe).
    let port = crate::util::free_port();
    let script = test_script("flood.py");
    let mut command = Command::new(crate::util::BINARY);
    command
        .args(["--entry_script", &script.display().to_string()])
        .args(["--port", &port.to_string()])
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for key in crate::util::INHERITED_ENV {
        if let Some(value) = std::env::var_os(key) {
            command.env(key, value);
        }
    }
    let mut child = command.spawn().expect("cannot start the azmlinfsrv binary");
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = child.stdout.take().expect("piped stdout");
    let child = Killed(child);
    let pid = child.0.id();
    let started = Instant::now();
    while !try_request(port, "GET", "/", &[], b"").is_ok_and(|r| r.status == 200) {
        assert!(
            started.elapsed() < crate::util::READY_TIMEOUT,
            "the server did not become ready"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    let baseline = resident_kib(pid);

    let flood = std::thread::spawn(move || {
        try_request(port, "POST", "/score", &[], LINES.to_string().as_bytes())
    });
    // While nobody reads: the script prints as fast as it may; the server must hold
    // back, not buffer. Sampled for a few seconds (the wall clock is the point here).
    let mut peak = baseline;
    let watched = Instant::now();
    while watched.elapsed() < Duration::from_secs(3) {
        peak = peak.max(resident_kib(pid));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !flood.is_finished(),
        "the flood was answered while nobody read the log: lines were dropped"
    );
    eprintln!("server resident memory: {baseline} KiB at start, {peak} KiB at most while stdout was not read");
    assert!(
        peak <= baseline + GROWTH_BOUND_KIB,
        "the server grew from {baseline} KiB to {peak} KiB while its stdout was not read"
    );

    // Reading again: every line comes out, the flood is answered, the server serves.
    let flood_lines = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = flood_lines.clone();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let flood_line = "F".repeat(LINE_BYTES);
        let mut reader = std::io::BufReader::new(stdout);
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
            let text = String::from_utf8_lossy(&line);
            if text.trim_end().ends_with(&format!(" - {flood_line}")) {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            line.clear();
        }
    });
    let answer = flood
        .join()
        .unwrap()
        .expect("the flood request is answered");
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["printed"], LINES);
    let after = try_request(port, "POST", "/score", &[], b"1").expect("a request after");
    assert_eq!(after.status, 200, "{}", after.text());
    // Every line printed (the flood's and the one after) reaches stdout, none dropped.
    let deadline = Instant::now() + Duration::from_secs(60);
    let count = || flood_lines.load(std::sync::atomic::Ordering::Relaxed);
    while count() < LINES + 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        count(),
        LINES + 1,
        "lines of 64 KiB printed by run() found on stdout"
    );
    drop(child);
}
