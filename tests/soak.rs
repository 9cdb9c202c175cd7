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
//!
//! The test reads as its phases: `start`, `load_with_kills`, `settle`, `report`, then
//! the checks (`check_answers`, `check_kills_and_restarts`,
//! `check_memory_and_open_files`, `check_clean_shutdown`). Requests go through the
//! harness's HTTP client (`util::Connection`), as in the integration tests.

#[path = "integration/util.rs"]
mod util;

use std::collections::{BTreeSet, HashSet};
use std::fmt::Write as _;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use util::{is_process_alive, test_script, try_request, Connection, Launch, Response, Server};

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
    let plan = Plan::from_env();
    let mut server = start();
    let load = load_with_kills(&server, &plan);
    let after = settle(&server, &load);
    let report = report(&plan, &load, &after);
    println!("{report}");
    let mut failures = Vec::new();
    check_answers(&load, &mut failures);
    check_kills_and_restarts(&plan, &load, &after, &mut failures);
    check_memory_and_open_files(&load, &after, &mut failures);
    check_clean_shutdown(&mut server, &mut failures);
    assert!(
        failures.is_empty(),
        "soak failed:\n  - {}\n\n{report}\n{}",
        failures.join("\n  - "),
        excerpt(&server)
    );
}

/// How long to run and the seed of every random choice.
struct Plan {
    seconds: u64,
    seed: u64,
}

impl Plan {
    /// `SOAK_SECONDS` (default 8, at least 6) and `SOAK_SEED` (default: the clock).
    fn from_env() -> Plan {
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
        Plan { seconds, seed }
    }
}

/// Phase 1: a server with `WORKERS` ready runners, and nothing else as its children.
fn start() -> Server {
    let server = Launch::script(&test_script("lifecycle.py"))
        .arg("--worker_count")
        .arg(WORKERS.to_string())
        .start();
    wait_all_ready(&server, Duration::from_secs(60));
    let initial_runners = live_children(server.pid());
    assert_eq!(
        initial_runners.len(),
        WORKERS,
        "the server should have exactly {WORKERS} children (its runners): {initial_runners:?}\n{}",
        excerpt(&server)
    );
    server
}

/// What happened while the load ran.
struct Load {
    seconds: f64,
    tally: Tally,
    kills: Vec<Kill>,
    kill_errors: Vec<String>,
    skipped_ticks: u64,
    pids_seen: BTreeSet<u32>,
    readiness: Readiness,
    rss_idle: u64,
    rss_start: u64,
    rss_peak: u64,
    fds_start: usize,
}

/// Phase 2: `CLIENTS` clients send requests while the killer SIGKILLs a serving
/// runner every `KILL_EVERY` ± jitter; memory and `/readiness` are sampled meanwhile.
fn load_with_kills(server: &Server, plan: &Plan) -> Load {
    let server_pid = server.pid();
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
            let seed = plan.seed ^ (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            std::thread::spawn(move || {
                client_loop(port, is_keep_alive, seed, &shared, &stop, started)
            })
        })
        .collect();
    let stop_kills = Arc::new(AtomicBool::new(false));
    let killer = {
        let shared = shared.clone();
        let stop = stop_kills.clone();
        let seed = plan.seed;
        std::thread::spawn(move || killer_loop(server_pid, seed, &shared, &stop, started))
    };

    // Warm up, then watch memory and readiness until the end of the run.
    sleep_until(started + WARM_UP);
    let rss_start = rss_kib(server_pid);
    let fds_start = open_fds(server_pid);
    let mut rss_peak = rss_start;
    let mut readiness = Readiness::default();
    let end = started + Duration::from_secs(plan.seconds);
    while Instant::now() < end {
        std::thread::sleep(SAMPLE_EVERY.min(end.saturating_duration_since(Instant::now())));
        rss_peak = rss_peak.max(rss_kib(server_pid));
        readiness.sample(server.port);
        assert!(
            is_process_alive(u64::from(server_pid)),
            "the server exited during the soak\n{}",
            excerpt(server)
        );
    }
    stop_kills.store(true, Ordering::SeqCst);
    killer.join().expect("the killer thread panicked");
    stop_load.store(true, Ordering::SeqCst);
    let mut tally = Tally::default();
    for client in clients {
        tally.merge(client.join().expect("a client thread panicked"));
    }
    let kills = shared.kills.lock().unwrap().clone();
    let kill_errors = shared.kill_errors.lock().unwrap().clone();
    let pids_seen = shared.pids_seen.lock().unwrap().clone();
    Load {
        seconds: started.elapsed().as_secs_f64(),
        tally,
        kills,
        kill_errors,
        skipped_ticks: shared.skipped_ticks.load(Ordering::SeqCst),
        pids_seen,
        readiness,
        rss_idle,
        rss_start,
        rss_peak,
        fds_start,
    }
}

/// The server once the load has stopped.
struct After {
    recovered: bool,
    recovery_seconds: f64,
    final_runners: Vec<u32>,
    final_answer: std::io::Result<util::Response>,
    rss_end: u64,
    fds_end: usize,
    restarts_logged: usize,
    runners_started: usize,
    access_200: usize,
    access_500: usize,
}

/// Phase 3: every killed runner must be replaced; then the server's memory, files,
/// children and log are read.
fn settle(server: &Server, load: &Load) -> After {
    let server_pid = server.pid();
    let stopped = Instant::now();
    let recovered = wait_all_ready_for(server, RECOVERY_DEADLINE);
    let recovery_seconds = stopped.elapsed().as_secs_f64();
    let final_runners = live_children(server_pid);
    let final_answer = try_request(server.port, "POST", "/score", &[], b"{}");
    let rss_end = rss_kib(server_pid);
    let fds_end = settled_fds(server_pid, load.fds_start + FD_GROWTH_LIMIT);
    // The server writes its log through a queue: wait for the lines of every restart.
    let kills = load.kills.len();
    let log_deadline = Instant::now() + Duration::from_secs(10);
    let (log, restarts_logged, runners_started) = loop {
        let log = server.output.text();
        let restarts = log.matches("starting a new one").count();
        let started = log.matches("Started a scoring process: pid").count();
        let is_complete = restarts >= kills && started >= WORKERS + kills;
        if is_complete || Instant::now() >= log_deadline {
            break (log, restarts, started);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    After {
        recovered,
        recovery_seconds,
        final_runners,
        final_answer,
        rss_end,
        fds_end,
        restarts_logged,
        runners_started,
        access_200: log.matches("POST /score 200 ").count(),
        access_500: log.matches("POST /score 500 ").count(),
    }
}

/// Phase 4: what an operator reads after a run, passed or failed.
fn report(plan: &Plan, load: &Load, after: &After) -> String {
    let tally = &load.tally;
    let readiness = &load.readiness;
    let mut report = String::new();
    let _ = writeln!(
        report,
        "soak report: {:.1} s of load, {WORKERS} workers, {CLIENTS} clients \
         ({} keep-alive, {} fresh connections), a runner SIGKILLed every {:.1} s ± {:.1} s, \
         seed {} (SOAK_SEED)",
        load.seconds,
        CLIENTS.div_ceil(2),
        CLIENTS / 2,
        KILL_EVERY.as_secs_f64(),
        KILL_JITTER_MS as f64 / 1000.0,
        plan.seed,
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
        format!("{:.0} requests/s", tally.sent as f64 / load.seconds),
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
    row("runners killed", load.kills.len().to_string());
    row(
        "kill ticks skipped (a worker was down)",
        load.skipped_ticks.to_string(),
    );
    row(
        "restarts (log: \"starting a new one\")",
        after.restarts_logged.to_string(),
    );
    row(
        "runners started (log, incl. first)",
        after.runners_started.to_string(),
    );
    row(
        "runner pids that answered",
        load.pids_seen.len().to_string(),
    );
    row(
        "/readiness samples: all / some / none",
        format!(
            "{} / {} / {} ready (longest with a worker down: {:.1} s)",
            readiness.all, readiness.some, readiness.none, readiness.longest_degraded
        ),
    );
    row(
        "all workers ready again after",
        if after.recovered {
            format!("{:.1} s", after.recovery_seconds)
        } else {
            format!("NOT within {} s", RECOVERY_DEADLINE.as_secs())
        },
    );
    row(
        "server access log 200 / 500",
        format!("{} / {}", after.access_200, after.access_500),
    );
    row(
        "server RSS idle / start / end / peak",
        format!(
            "{} / {} / {} / {} (limit: end <= start + {})",
            mib(load.rss_idle),
            mib(load.rss_start),
            mib(after.rss_end),
            mib(load.rss_peak.max(after.rss_end)),
            mib(RSS_GROWTH_LIMIT_KIB)
        ),
    );
    row(
        "server open files start / end",
        format!("{} / {}", load.fds_start, after.fds_end),
    );
    row(
        "server children at end",
        format!("{} {:?}", after.final_runners.len(), after.final_runners),
    );
    let timeline: Vec<String> = load
        .kills
        .iter()
        .take(40)
        .map(|kill| format!("{:.1}s:{}", kill.at.as_secs_f64(), kill.pid))
        .collect();
    let _ = writeln!(
        report,
        "  kills (time:pid){} {}",
        if load.kills.len() > 40 {
            ", first 40"
        } else {
            ""
        },
        timeline.join(" ")
    );
    for error in &load.kill_errors {
        let _ = writeln!(report, "  kill failed: {error}");
    }
    for example in tally.examples.iter().take(10) {
        let _ = writeln!(report, "  example: {example}");
    }
    report
}

/// Phase 5a: every request got an answer, and the only failures are the crash 500s
/// of the runners the test killed.
fn check_answers(load: &Load, failures: &mut Vec<String>) {
    let tally = &load.tally;
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
        tally.crashed <= load.kills.len() as u64,
        "at most one crash 500 per killed runner (the request it was running)".into(),
    );
    let killed: HashSet<u32> = load.kills.iter().map(|kill| kill.pid).collect();
    let crashes_from_unkilled: Vec<u32> = tally
        .crash_pids
        .iter()
        .copied()
        .filter(|pid| !killed.contains(pid))
        .collect();
    expect(
        crashes_from_unkilled.is_empty(),
        format!("crash 500s name runners the test did not kill: {crashes_from_unkilled:?}"),
    );
    expect(
        load.readiness.none == 0 && load.readiness.failed == 0,
        format!(
            "/readiness never says that no worker is ready while one is always serving \
             ({} samples with none ready, {} without an answer)",
            load.readiness.none, load.readiness.failed
        ),
    );
}

/// Phase 5b: the kills happened, each killed runner was replaced once, and the
/// server serves with `WORKERS` fresh runners at the end.
fn check_kills_and_restarts(plan: &Plan, load: &Load, after: &After, failures: &mut Vec<String>) {
    let kills = load.kills.len();
    let killed: HashSet<u32> = load.kills.iter().map(|kill| kill.pid).collect();
    let mut expect = |is_ok: bool, what: String| {
        if !is_ok {
            failures.push(what);
        }
    };
    expect(
        load.kill_errors.is_empty(),
        format!(
            "{} kills failed: a runner died unasked",
            load.kill_errors.len()
        ),
    );
    expect(
        kills >= 2,
        format!("at least 2 runners killed in {} s ({kills})", plan.seconds),
    );
    expect(
        after.recovered,
        format!(
            "all {WORKERS} workers ready again within {} s",
            RECOVERY_DEADLINE.as_secs()
        ),
    );
    expect(
        after.restarts_logged == kills,
        format!(
            "each killed runner logged as replaced ({} restarts for {kills} kills)",
            after.restarts_logged
        ),
    );
    expect(
        after.runners_started == WORKERS + kills,
        format!(
            "one new runner per kill ({} started for {WORKERS} + {kills} kills)",
            after.runners_started
        ),
    );
    expect(
        after.final_runners.len() == WORKERS
            && after.final_runners.iter().all(|pid| !killed.contains(pid)),
        format!("exactly {WORKERS} live runners at the end, none of them killed ones"),
    );
    expect(
        after.final_answer.as_ref().is_ok_and(|r| r.status == 200),
        format!(
            "a request after the soak is answered 200: {:?}",
            after.final_answer.as_ref().map(|r| (r.status, r.text()))
        ),
    );
}

/// Phase 5c: the server's memory and open files are flat.
fn check_memory_and_open_files(load: &Load, after: &After, failures: &mut Vec<String>) {
    if after.rss_end > load.rss_start + RSS_GROWTH_LIMIT_KIB {
        failures.push(format!(
            "server RSS grew from {} to {}",
            mib(load.rss_start),
            mib(after.rss_end)
        ));
    }
    if after.fds_end > load.fds_start + FD_GROWTH_LIMIT {
        failures.push(format!(
            "server open files grew from {} to {}",
            load.fds_start, after.fds_end
        ));
    }
}

/// Phase 6: a soaked server still drains and exits 0 on SIGTERM.
fn check_clean_shutdown(server: &mut Server, failures: &mut Vec<String>) {
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(40));
    if !status.is_some_and(|s| s.success()) {
        failures.push(format!("SIGTERM after the soak: exit status {status:?}"));
    }
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

/// A connection for one client, with the soak's deadline for an answer.
fn open_connection(port: u16) -> std::io::Result<Connection> {
    let mut connection = Connection::open(port)?;
    connection.timeout(ANSWER_DEADLINE)?;
    Ok(connection)
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
            None => open_connection(port),
        }
        .and_then(|mut open| {
            open.send_request(
                "POST",
                "/score",
                &[("Content-Type", "application/json")],
                body.as_bytes(),
                is_keep_alive,
            )?;
            let answer = open.read_response(false)?;
            Ok((open, answer))
        });
        let at = started.elapsed();
        match answer {
            Ok((open, answer)) => {
                tally.latencies.push(sent_at.elapsed());
                let is_close = answer
                    .header("connection")
                    .is_some_and(|value| value.eq_ignore_ascii_case("close"));
                if is_keep_alive {
                    if is_close {
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

fn classify(answer: &Response, at: Duration, shared: &Shared, tally: &mut Tally) {
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
