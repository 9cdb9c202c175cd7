//! Soak test: concurrent load against 2 runners while a runner is SIGKILLed every ~2 s.
//! Every request must get an answer (200, or the crash 500 for the request a killed
//! runner was running), every killed runner must be replaced, and the server's memory
//! and open files must stay flat. A test crate of its own so that it never runs beside
//! the timing-sensitive integration tests. Loopback only; Linux only (it reads `/proc`).
//!
//! The killer strikes only while both runners are serving, so one runner is always up:
//! a kill is the "runner crashes" row of the failure model (`docs/design.md`), never
//! "all runners down" (where 503s are the right answer). A tick that finds a runner
//! still restarting (or backing off) is skipped and counted.
//!
//! CI runs it small (`SOAK_SECONDS`, default 8). Longer, by hand:
//!
//! ```text
//! SOAK_SECONDS=300 cargo test --release --test soak -- --nocapture
//! ```
//!
//! `SOAK_SEED=N` repeats a run's random choices (kill intervals, victims, body sizes).

#[path = "integration/util.rs"]
mod util;

use std::collections::{BTreeSet, HashSet};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use util::{test_script, try_request, Launch, Server};

const DEFAULT_SECONDS: u64 = 8;
/// Enough for two kill ticks.
const MIN_SECONDS: u64 = 6;
const WORKERS: usize = 2;
/// Half of them keep one connection alive, half open a fresh connection per request.
const CLIENTS: usize = 8;
/// A runner is killed every KILL_EVERY ± KILL_JITTER_MS.
const KILL_EVERY: Duration = Duration::from_millis(2000);
const KILL_JITTER_MS: u64 = 500;
/// Load before the starting memory is measured: the allocator's pools and the
/// connection tables are in place by then.
const WARM_UP: Duration = Duration::from_secs(2);
/// How much the server's RSS may grow from the end of warm-up to the end of the run.
const RSS_GROWTH_LIMIT_KIB: u64 = 20 * 1024;
/// How many more open files the server may hold at the end than after warm-up.
const FD_GROWTH_LIMIT: usize = 8;
/// A request without an answer this long is lost (one runner is always serving, so any
/// answer should take milliseconds).
const ANSWER_DEADLINE: Duration = Duration::from_secs(60);
/// How long the workers get to be all ready again after the load stops: the restart
/// back-off is capped at 30 s (src/pool.rs).
const RECOVERY_DEADLINE: Duration = Duration::from_secs(60);
/// How often `/readiness` and the server's memory are sampled during the run.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);

#[test]
fn two_runners_under_load_survive_a_kill_every_two_seconds() {
    let seconds = std::env::var("SOAK_SECONDS")
        .ok()
        .map(|text| {
            text.trim()
                .parse::<u64>()
                .unwrap_or_else(|_| panic!("SOAK_SECONDS={text:?} is not a whole number"))
        })
        .unwrap_or(DEFAULT_SECONDS)
        .max(MIN_SECONDS);
    let seed = std::env::var("SOAK_SEED")
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });

    let mut server = Launch::script(&test_script("lifecycle.py"))
        .arg("--worker_count")
        .arg(WORKERS.to_string())
        .start();
    wait_all_ready(&server, Duration::from_secs(60));
    let server_pid = server.pid();
    let initial_runners = live_children(server_pid);
    assert_eq!(
        initial_runners.len(),
        WORKERS,
        "the server should have exactly {WORKERS} children (its runners): {initial_runners:?}\n{}",
        excerpt(&server)
    );
    let rss_idle = rss_kib(server_pid);

    let shared = Arc::new(Shared::default());
    let stop_load = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|index| {
            let port = server.port;
            let shared = shared.clone();
            let stop = stop_load.clone();
            let is_keep_alive = index % 2 == 0;
            let seed = seed ^ (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            std::thread::spawn(move || {
                client_loop(port, is_keep_alive, seed, &shared, &stop, started)
            })
        })
        .collect();
    let stop_kills = Arc::new(AtomicBool::new(false));
    let killer = {
        let shared = shared.clone();
        let stop = stop_kills.clone();
        std::thread::spawn(move || killer_loop(server_pid, seed, &shared, &stop, started))
    };

    // Warm up, then watch memory and readiness until the end of the run.
    sleep_until(started + WARM_UP);
    let rss_start = rss_kib(server_pid);
    let fds_start = open_fds(server_pid);
    let mut rss_peak = rss_start;
    let mut readiness = Readiness::default();
    let end = started + Duration::from_secs(seconds);
    while Instant::now() < end {
        std::thread::sleep(SAMPLE_EVERY.min(end.saturating_duration_since(Instant::now())));
        rss_peak = rss_peak.max(rss_kib(server_pid));
        readiness.sample(server.port);
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!(
                "the server exited with {status} during the soak\n{}",
                excerpt(&server)
            );
        }
    }
    stop_kills.store(true, Ordering::SeqCst);
    killer.join().expect("the killer thread panicked");
    stop_load.store(true, Ordering::SeqCst);
    let mut tally = Tally::default();
    for client in clients {
        tally.merge(client.join().expect("a client thread panicked"));
    }
    let load_seconds = started.elapsed().as_secs_f64();

    // Every killed runner must have been replaced, and nothing else left behind.
    let recovered = wait_all_ready_for(&server, RECOVERY_DEADLINE);
    let recovery = started.elapsed().as_secs_f64() - load_seconds;
    let final_runners = live_children(server_pid);
    let final_answer = try_request(server.port, "POST", "/score", &[], b"{}");
    let rss_end = rss_kib(server_pid);
    rss_peak = rss_peak.max(rss_end);
    let fds_end = settled_fds(server_pid, fds_start + FD_GROWTH_LIMIT);

    let kills = shared.kills.lock().unwrap().clone();
    let pids_seen = shared.pids_seen.lock().unwrap().clone();
    // The server writes its log through a queue: give the last lines a moment.
    let log_deadline = Instant::now() + Duration::from_secs(10);
    let (log, restarts_logged, runners_started) = loop {
        let log = server.output.text();
        let restarts = log.matches("starting a new one").count();
        let started = log.matches("Started a scoring process: pid").count();
        let is_complete = restarts >= kills.len() && started >= WORKERS + kills.len();
        if is_complete || Instant::now() >= log_deadline {
            break (log, restarts, started);
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let access_200 = log.matches("POST /score 200 ").count();
    let access_500 = log.matches("POST /score 500 ").count();
    let killed: HashSet<u32> = kills.iter().map(|kill| kill.pid).collect();
    let crashes_from_unkilled: Vec<u32> = tally
        .crash_pids
        .iter()
        .copied()
        .filter(|pid| !killed.contains(pid))
        .collect();

    let mut report = String::new();
    let _ = writeln!(
        report,
        "soak report: {load_seconds:.1} s of load, {WORKERS} workers, {CLIENTS} clients \
         ({} keep-alive, {} fresh connections), a runner SIGKILLed every {:.1} s ± {:.1} s, \
         seed {seed} (SOAK_SEED)",
        CLIENTS.div_ceil(2),
        CLIENTS / 2,
        KILL_EVERY.as_secs_f64(),
        KILL_JITTER_MS as f64 / 1000.0,
    );
    let mut row = |name: &str, value: String| {
        let _ = writeln!(report, "  {name:<40} {value}");
    };
    row("requests sent", tally.sent.to_string());
    row("answered 200", tally.ok.to_string());
    row("crash 500 (runner killed)", tally.crashed.to_string());
    row("other answers (must be 0)", tally.other.to_string());
    row("lost: no answer (must be 0)", tally.lost.to_string());
    row(
        "keep-alive closed by server (must be 0)",
        tally.server_closed.to_string(),
    );
    row(
        "throughput",
        format!("{:.0} requests/s", tally.sent as f64 / load_seconds),
    );
    row(
        "latency p50 / p99 / max",
        format!(
            "{} / {} / {}",
            millis(tally.percentile(0.50)),
            millis(tally.percentile(0.99)),
            millis(tally.latencies.iter().copied().max().unwrap_or_default())
        ),
    );
    row("runners killed", kills.len().to_string());
    row(
        "kill ticks skipped (a worker was down)",
        shared.skipped_ticks.load(Ordering::SeqCst).to_string(),
    );
    row(
        "restarts (log: \"starting a new one\")",
        restarts_logged.to_string(),
    );
    row(
        "runners started (log, incl. first)",
        runners_started.to_string(),
    );
    row("runner pids that answered", pids_seen.len().to_string());
    row(
        "/readiness samples: all / some / none",
        format!(
            "{} / {} / {} ready (longest with a worker down: {:.1} s)",
            readiness.all, readiness.some, readiness.none, readiness.longest_degraded
        ),
    );
    row(
        "all workers ready again after",
        if recovered {
            format!("{recovery:.1} s")
        } else {
            format!("NOT within {} s", RECOVERY_DEADLINE.as_secs())
        },
    );
    row(
        "server access log 200 / 500",
        format!("{access_200} / {access_500}"),
    );
    row(
        "server RSS idle / start / end / peak",
        format!(
            "{} / {} / {} / {} (limit: end <= start + {})",
            mib(rss_idle),
            mib(rss_start),
            mib(rss_end),
            mib(rss_peak),
            mib(RSS_GROWTH_LIMIT_KIB)
        ),
    );
    row(
        "server open files start / end",
        format!("{fds_start} / {fds_end}"),
    );
    row(
        "server children at end",
        format!("{} {:?}", final_runners.len(), final_runners),
    );
    let timeline: Vec<String> = kills
        .iter()
        .take(40)
        .map(|kill| format!("{:.1}s:{}", kill.at.as_secs_f64(), kill.pid))
        .collect();
    let _ = writeln!(
        report,
        "  kills (time:pid){} {}",
        if kills.len() > 40 { ", first 40" } else { "" },
        timeline.join(" ")
    );
    let kill_errors = shared.kill_errors.lock().unwrap().clone();
    for error in &kill_errors {
        let _ = writeln!(report, "  kill failed: {error}");
    }
    for example in tally.examples.iter().take(10) {
        let _ = writeln!(report, "  example: {example}");
    }
    println!("{report}");

    let mut failures = Vec::new();
    let mut expect = |is_ok: bool, what: String| {
        if !is_ok {
            failures.push(what);
        }
    };
    expect(tally.lost == 0, format!("{} requests lost", tally.lost));
    expect(
        tally.other == 0,
        format!("{} unexpected answers", tally.other),
    );
    expect(
        tally.server_closed == 0,
        format!(
            "{} keep-alive connections closed by the server (answered, but it should \
             keep them open)",
            tally.server_closed
        ),
    );
    expect(
        tally.ok + tally.crashed + tally.other + tally.lost == tally.sent,
        "every request sent is counted once".into(),
    );
    expect(
        tally.ok > 0 && tally.ok > 10 * tally.crashed,
        "most requests are answered 200".into(),
    );
    expect(
        kill_errors.is_empty(),
        format!("{} kills failed: a runner died unasked", kill_errors.len()),
    );
    expect(
        kills.len() >= 2,
        format!("at least 2 runners killed in {seconds} s ({})", kills.len()),
    );
    expect(
        readiness.none == 0 && readiness.failed == 0,
        format!(
            "/readiness never says that no worker is ready while one is always serving \
             ({} samples with none ready, {} without an answer)",
            readiness.none, readiness.failed
        ),
    );
    expect(
        tally.crashed <= kills.len() as u64,
        "at most one crash 500 per killed runner (the request it was running)".into(),
    );
    expect(
        crashes_from_unkilled.is_empty(),
        format!("crash 500s name runners the test did not kill: {crashes_from_unkilled:?}"),
    );
    expect(
        recovered,
        format!(
            "all {WORKERS} workers ready again within {} s",
            RECOVERY_DEADLINE.as_secs()
        ),
    );
    expect(
        restarts_logged == kills.len(),
        format!(
            "each killed runner logged as replaced ({restarts_logged} restarts for {} kills)",
            kills.len()
        ),
    );
    expect(
        runners_started == WORKERS + kills.len(),
        format!(
            "one new runner per kill ({runners_started} started for {WORKERS} + {} kills)",
            kills.len()
        ),
    );
    expect(
        final_runners.len() == WORKERS && final_runners.iter().all(|pid| !killed.contains(pid)),
        format!("exactly {WORKERS} live runners at the end, none of them killed ones"),
    );
    expect(
        final_answer.as_ref().is_ok_and(|r| r.status == 200),
        format!(
            "a request after the soak is answered 200: {:?}",
            final_answer.as_ref().map(|r| (r.status, r.text()))
        ),
    );
    expect(
        rss_end <= rss_start + RSS_GROWTH_LIMIT_KIB,
        format!(
            "server RSS grew from {} to {}",
            mib(rss_start),
            mib(rss_end)
        ),
    );
    expect(
        fds_end <= fds_start + FD_GROWTH_LIMIT,
        format!("server open files grew from {fds_start} to {fds_end}"),
    );

    // Shut down cleanly as a last check that a soaked server still drains and exits 0.
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(40));
    expect(
        status.is_some_and(|s| s.success()),
        format!("SIGTERM after the soak: exit status {status:?}"),
    );

    assert!(
        failures.is_empty(),
        "soak failed:\n  - {}\n\n{report}\n{}",
        failures.join("\n  - "),
        excerpt(&server)
    );
}

/// What the clients and the killer share.
#[derive(Default)]
struct Shared {
    /// Runners that have answered a request: only those are killed (a runner being
    /// started is another scenario, with its own back-off).
    pids_seen: Mutex<BTreeSet<u32>>,
    kills: Mutex<Vec<Kill>>,
    /// Kills that failed (the runner was already gone).
    kill_errors: Mutex<Vec<String>>,
    skipped_ticks: AtomicU64,
}

#[derive(Clone, Debug)]
struct Kill {
    pid: u32,
    at: Duration,
}

/// One client's counts.
#[derive(Default)]
struct Tally {
    sent: u64,
    ok: u64,
    crashed: u64,
    other: u64,
    lost: u64,
    server_closed: u64,
    crash_pids: Vec<u32>,
    latencies: Vec<Duration>,
    examples: Vec<String>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.sent += other.sent;
        self.ok += other.ok;
        self.crashed += other.crashed;
        self.other += other.other;
        self.lost += other.lost;
        self.server_closed += other.server_closed;
        self.crash_pids.extend(other.crash_pids);
        self.latencies.extend(other.latencies);
        self.examples.extend(other.examples);
        self.latencies.sort_unstable();
    }

    fn percentile(&self, fraction: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let index = ((self.latencies.len() - 1) as f64 * fraction).round() as usize;
        self.latencies[index]
    }

    fn note(&mut self, text: String) {
        if self.examples.len() < 5 {
            self.examples.push(text);
        }
    }
}

fn client_loop(
    port: u16,
    is_keep_alive: bool,
    seed: u64,
    shared: &Shared,
    stop: &AtomicBool,
    started: Instant,
) -> Tally {
    let mut rng = Rng(seed | 1);
    let mut tally = Tally::default();
    let mut connection: Option<Connection> = None;
    while !stop.load(Ordering::Relaxed) {
        let pad = "x".repeat(rng.below(256) as usize);
        let body = format!(r#"{{"pid": true, "pad": "{pad}"}}"#);
        let was_reused = connection.is_some();
        let sent_at = Instant::now();
        tally.sent += 1;
        let answer = match connection.take() {
            Some(open) => Ok(open),
            None => Connection::open(port),
        }
        .and_then(|mut open| {
            let answer = open.exchange(port, is_keep_alive, body.as_bytes())?;
            Ok((open, answer))
        });
        let at = started.elapsed();
        match answer {
            Ok((open, answer)) => {
                tally.latencies.push(sent_at.elapsed());
                if is_keep_alive {
                    if answer.is_close {
                        tally.server_closed += 1;
                        tally.note(format!(
                            "{at:.3?}: the server closed a keep-alive connection after answering {}",
                            answer.status
                        ));
                    } else {
                        connection = Some(open);
                    }
                }
                classify(&answer, at, shared, &mut tally);
            }
            Err(error) => {
                tally.lost += 1;
                tally.note(format!(
                    "{at:.3?}: LOST after {:.3?} on a {} connection: {error}",
                    sent_at.elapsed(),
                    if was_reused {
                        "reused keep-alive"
                    } else {
                        "fresh"
                    }
                ));
            }
        }
    }
    tally
}

fn classify(answer: &Answer, at: Duration, shared: &Shared, tally: &mut Tally) {
    let json: Option<serde_json::Value> = serde_json::from_slice(&answer.body).ok();
    let text = String::from_utf8_lossy(&answer.body);
    match answer.status {
        200 => match json.as_ref().and_then(|j| j["pid"].as_u64()) {
            Some(pid) => {
                tally.ok += 1;
                shared.pids_seen.lock().unwrap().insert(pid as u32);
            }
            None => {
                tally.other += 1;
                tally.note(format!("{at:.3?}: 200 without a pid: {text}"));
            }
        },
        500 => {
            let message = json
                .as_ref()
                .and_then(|j| j["message"].as_str())
                .unwrap_or("");
            let crashed_pid = message
                .strip_prefix("The scoring process (pid ")
                .and_then(|rest| rest.split(')').next())
                .and_then(|pid| pid.parse::<u32>().ok());
            match crashed_pid {
                Some(pid) if message.contains("exited with signal 9") => {
                    tally.crashed += 1;
                    tally.crash_pids.push(pid);
                }
                _ => {
                    tally.other += 1;
                    tally.note(format!("{at:.3?}: unexpected 500: {text}"));
                }
            }
        }
        status => {
            tally.other += 1;
            tally.note(format!("{at:.3?}: unexpected {status}: {text}"));
        }
    }
}

/// A tiny HTTP/1.1 client for `POST /score`: answers are delimited by Content-Length.
struct Connection {
    reader: BufReader<TcpStream>,
}

struct Answer {
    status: u16,
    body: Vec<u8>,
    /// The server said `Connection: close`.
    is_close: bool,
}

impl Connection {
    fn open(port: u16) -> std::io::Result<Connection> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(ANSWER_DEADLINE))?;
        stream.set_write_timeout(Some(ANSWER_DEADLINE))?;
        Ok(Connection {
            reader: BufReader::new(stream),
        })
    }

    fn exchange(&mut self, port: u16, is_keep_alive: bool, body: &[u8]) -> std::io::Result<Answer> {
        let mut request = format!(
            "POST /score HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n",
            body.len()
        )
        .into_bytes();
        if !is_keep_alive {
            request.extend_from_slice(b"Connection: close\r\n");
        }
        request.extend_from_slice(b"\r\n");
        request.extend_from_slice(body);
        self.reader.get_mut().write_all(&request)?;

        let broken = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(broken("connection closed before any answer".into()));
        }
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse::<u16>().ok())
            .ok_or_else(|| broken(format!("bad status line {line:?}")))?;
        let mut length = None;
        let mut is_close = false;
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(broken(format!(
                    "connection closed inside the head of a {status}"
                )));
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.parse::<usize>().ok();
                } else if name.eq_ignore_ascii_case("connection") {
                    is_close = value.eq_ignore_ascii_case("close");
                }
            }
        }
        let length = length.ok_or_else(|| broken(format!("a {status} without Content-Length")))?;
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body)?;
        Ok(Answer {
            status,
            body,
            is_close,
        })
    }
}

/// Every KILL_EVERY ± KILL_JITTER_MS: when every worker's runner is serving, SIGKILLs
/// one of them at random; otherwise skips the tick.
fn killer_loop(server_pid: u32, seed: u64, shared: &Shared, stop: &AtomicBool, started: Instant) {
    let mut rng = Rng(seed | 1);
    loop {
        let wait = KILL_EVERY - Duration::from_millis(KILL_JITTER_MS)
            + Duration::from_millis(rng.below(2 * KILL_JITTER_MS + 1));
        let due = Instant::now() + wait;
        while Instant::now() < due {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Serving: a live child of the server that has answered a request.
        let serving: Vec<u32> = {
            let seen = shared.pids_seen.lock().unwrap();
            live_children(server_pid)
                .into_iter()
                .filter(|pid| seen.contains(pid))
                .collect()
        };
        if serving.len() < WORKERS {
            shared.skipped_ticks.fetch_add(1, Ordering::SeqCst);
            continue;
        }
        let victim = serving[rng.below(serving.len() as u64) as usize];
        let status = Command::new("kill")
            .args(["-KILL", &victim.to_string()])
            .status();
        if !status.as_ref().is_ok_and(|s| s.success()) {
            // The runner was gone already: it died of something else than this test.
            shared.kill_errors.lock().unwrap().push(format!(
                "{:.3?}: kill -KILL {victim}: {status:?}",
                started.elapsed()
            ));
            continue;
        }
        shared.kills.lock().unwrap().push(Kill {
            pid: victim,
            at: started.elapsed(),
        });
    }
}

/// `GET /readiness`, sampled during the run.
#[derive(Default)]
struct Readiness {
    all: u64,
    some: u64,
    none: u64,
    failed: u64,
    degraded_since: Option<Instant>,
    longest_degraded: f64,
}

impl Readiness {
    fn sample(&mut self, port: u16) {
        let ready = try_request(port, "GET", "/readiness", &[], b"")
            .ok()
            .and_then(|response| serde_json::from_slice::<serde_json::Value>(&response.body).ok())
            .and_then(|view| view["workers_ready"].as_u64());
        match ready {
            None => self.failed += 1,
            Some(0) => self.none += 1,
            Some(n) if (n as usize) < WORKERS => self.some += 1,
            Some(_) => self.all += 1,
        }
        if ready.is_some_and(|n| n as usize >= WORKERS) {
            self.degraded_since = None;
        } else {
            let since = *self.degraded_since.get_or_insert_with(Instant::now);
            self.longest_degraded = self
                .longest_degraded
                .max(since.elapsed().as_secs_f64() + SAMPLE_EVERY.as_secs_f64());
        }
    }
}

/// The live (not zombie) children of `parent`, from `/proc/*/stat`.
fn live_children(parent: u32) -> Vec<u32> {
    let mut children = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return children;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().unwrap_or("");
        let ppid = fields.next().and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(parent) && state != "Z" && state != "X" {
            children.push(pid);
        }
    }
    children.sort_unstable();
    children
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|err| panic!("cannot read /proc/{pid}/status: {err}"));
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"))
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|entries| entries.count())
        .unwrap_or_else(|err| panic!("cannot list /proc/{pid}/fd: {err}"))
}

/// Open files once closed connections have been cleaned up (at most 5 s).
fn settled_fds(pid: u32, bound: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let count = open_fds(pid);
        if count <= bound || Instant::now() >= deadline {
            return count;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_all_ready(server: &Server, timeout: Duration) {
    assert!(
        wait_all_ready_for(server, timeout),
        "not all {WORKERS} workers became ready within {timeout:?}\n{}",
        excerpt(server)
    );
}

/// Waits until `GET /readiness` answers 200 (every worker ready).
fn wait_all_ready_for(server: &Server, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if try_request(server.port, "GET", "/readiness", &[], b"").is_ok_and(|r| r.status == 200) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// The server log without the access log lines (which would bury everything else),
/// last lines only.
fn excerpt(server: &Server) -> String {
    const LINES: usize = 200;
    let text = server.output.text();
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| !line.contains(" POST /score "))
        .collect();
    let skipped = lines.len().saturating_sub(LINES);
    format!(
        "----- server output, without access log lines{} -----\n{}\n----- end of server output -----",
        if skipped > 0 {
            format!(", last {LINES} of {} lines", lines.len())
        } else {
            String::new()
        },
        lines[skipped..].join("\n")
    )
}

fn sleep_until(when: Instant) {
    let now = Instant::now();
    if when > now {
        std::thread::sleep(when - now);
    }
}

fn millis(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// xorshift64: reproducible from `SOAK_SEED`, no dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound.max(1)
    }
}
