//! `GET /metrics`: every metric moves as requests, errors, timeouts (soft and hard),
//! crashes and restarts happen, as a real scraper reads them (`tests/parse_metrics.py`:
//! the official Python client's strict OpenMetrics parser); off with `--no_metrics` or
//! `AZMLINFSRV_METRICS=false` (then a 404 like any unknown route); served on the health
//! port too; never in the access log.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::check;
use crate::util::{free_port, test_script, try_request, venv, Launch, Scratch, Server};

/// One sample as the parser read it.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: serde_json::Map<String, serde_json::Value>,
    value: f64,
}

/// The samples of a scrape.
struct Scrape(Vec<Sample>);

impl Scrape {
    /// The value of the sample `name` whose labels include `labels`; `None` if absent.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.0
            .iter()
            .find(|sample| {
                sample.name == name
                    && labels.iter().all(|(key, value)| {
                        sample.labels.get(*key).and_then(|v| v.as_str()) == Some(*value)
                    })
            })
            .map(|sample| sample.value)
    }

    /// Like `get`, 0 when absent (a counter not incremented yet).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or(0.0)
    }
}

fn parser_python() -> std::path::PathBuf {
    venv("prometheus", &["prometheus-client"])
        .join("bin")
        .join("python")
}

/// `GET /metrics` on `port`, parsed; panics (with the server's log) when the answer is
/// not a 200 in the OpenMetrics format or does not parse.
fn scrape_port(server: &Server, port: u16) -> Scrape {
    let response = try_request(port, "GET", "/metrics", &[], b"")
        .unwrap_or_else(|err| panic!("GET /metrics failed: {err}\n{}", server.describe()));
    check!(server, response.status == 200, "{}", response.text());
    check!(
        server,
        response
            .header("content-type")
            .is_some_and(|value| value.starts_with("application/openmetrics-text")),
        "{:?}",
        response.header("content-type")
    );
    let mut parser = Command::new(parser_python())
        .arg(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests")
                .join("parse_metrics.py"),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run tests/parse_metrics.py");
    {
        use std::io::Write;
        let mut stdin = parser.stdin.take().unwrap();
        stdin.write_all(response.text().as_bytes()).unwrap();
    }
    let output = parser.wait_with_output().unwrap();
    check!(
        server,
        output.status.success(),
        "a real scraper refuses our metrics: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        response.text()
    );
    let samples: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    Scrape(
        samples
            .into_iter()
            .map(|sample| Sample {
                name: sample["name"].as_str().unwrap_or_default().to_string(),
                labels: sample["labels"].as_object().cloned().unwrap_or_default(),
                value: sample["value"].as_f64().unwrap_or(f64::NAN),
            })
            .collect(),
    )
}

fn scrape(server: &Server) -> Scrape {
    scrape_port(server, server.port)
}

/// Scrapes until `done` holds, at most `timeout`: the gauges follow the workers, which
/// move on their own time. Returns the last scrape.
fn scrape_until(server: &Server, timeout: Duration, done: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + timeout;
    loop {
        let scrape = scrape(server);
        if done(&scrape) || Instant::now() >= deadline {
            return scrape;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn lifecycle() -> Launch {
    Launch::script(&test_script("lifecycle.py"))
}

const REQUESTS: &str = "azmlinfsrv_http_requests_total";
const LATENCY_COUNT: &str = "azmlinfsrv_http_request_duration_seconds_count";
const RESTARTS: &str = "azmlinfsrv_worker_restarts_total";
const TIMEOUTS: &str = "azmlinfsrv_scoring_timeouts_total";

fn score_requests(scrape: &Scrape, status: &str) -> f64 {
    scrape.value(
        REQUESTS,
        &[("route", "/score"), ("method", "POST"), ("status", status)],
    )
}

#[test]
fn requests_errors_timeouts_and_crashes_move_their_metrics() {
    let server = lifecycle().env("SCORING_TIMEOUT_MS", "1000").start();
    let start = scrape(&server);
    check!(
        server,
        start.value("azmlinfsrv_startup_duration_seconds", &[]) > 0.0,
        "the start-up duration is set once a worker is ready"
    );
    check!(
        server,
        start.value("azmlinfsrv_worker_init_duration_seconds_count", &[]) == 1.0
    );
    check!(server, start.value("azmlinfsrv_workers", &[]) == 1.0);
    check!(server, start.value("azmlinfsrv_workers_ready", &[]) == 1.0);
    check!(server, start.value("azmlinfsrv_workers_busy", &[]) == 0.0);
    check!(
        server,
        start.value("azmlinfsrv_queued_requests", &[]) == 0.0
    );
    check!(server, score_requests(&start, "200") == 0.0);
    check!(
        server,
        start.get(RESTARTS, &[("cause", "crash")]) == Some(0.0),
        "every cause shows from the start, at 0"
    );

    let ok = server.post("/score", "{}");
    check!(server, ok.status == 200);
    // run() raising: a 500 the script is to blame for; the worker lives on.
    let raised = server.post("/score", r#"{"interrupt": true}"#);
    check!(server, raised.status == 500);
    // Soft timeout: the runner interrupts run(), the worker lives on.
    let soft = server.post("/score", r#"{"sleep": 5}"#);
    check!(server, soft.status == 500, "{}", soft.text());
    let after_soft = scrape(&server);
    check!(
        server,
        after_soft.value(TIMEOUTS, &[("kind", "soft")]) == 1.0
    );
    check!(
        server,
        after_soft.value(TIMEOUTS, &[("kind", "hard")]) == 0.0
    );
    check!(
        server,
        after_soft.value(RESTARTS, &[("cause", "hard_timeout")]) == 0.0
    );
    // Hard timeout: the worker does not stop, it is killed and replaced.
    let hard = server.post("/score", r#"{"native_hang": 30}"#);
    check!(server, hard.status == 500, "{}", hard.text());
    // A crash in run(): replaced too. (It waits for the replacement of the killed one.)
    let crash = server.post("/score", r#"{"exit": 3}"#);
    check!(server, crash.status == 500, "{}", crash.text());
    // The crashed worker answered nothing, so it is taken for a crash loop: its
    // replacement comes after a back-off (503 meanwhile). Wait for it to be ready.
    let replaced = scrape_until(&server, Duration::from_secs(20), |scrape| {
        scrape.value("azmlinfsrv_worker_init_duration_seconds_count", &[]) == 3.0
            && scrape.value("azmlinfsrv_workers_ready", &[]) == 1.0
    });
    check!(
        server,
        replaced.value("azmlinfsrv_workers_ready", &[]) == 1.0,
        "the replacement of the crashed worker is ready"
    );
    let again = server.post("/score", "{}");
    check!(server, again.status == 200);
    check!(server, server.get("/nowhere").status == 404);

    let end = scrape(&server);
    check!(server, score_requests(&end, "200") == 2.0);
    check!(
        server,
        score_requests(&end, "500") == 4.0,
        "raised, soft, hard, crash"
    );
    check!(
        server,
        end.value(
            REQUESTS,
            &[("route", "other"), ("method", "GET"), ("status", "404")]
        ) == 1.0,
        "unknown paths share the route label 'other'"
    );
    check!(
        server,
        end.value(LATENCY_COUNT, &[("route", "/score")]) == 6.0
    );
    check!(
        server,
        end.value("azmlinfsrv_run_duration_seconds_count", &[]) == 2.0,
        "run() time is measured for the answers run() returned"
    );
    check!(
        server,
        end.value("azmlinfsrv_run_duration_seconds_sum", &[]) < 5.0
    );
    check!(server, end.value(TIMEOUTS, &[("kind", "soft")]) == 1.0);
    check!(server, end.value(TIMEOUTS, &[("kind", "hard")]) == 1.0);
    check!(
        server,
        end.value(RESTARTS, &[("cause", "hard_timeout")]) == 1.0
    );
    check!(server, end.value(RESTARTS, &[("cause", "crash")]) == 1.0);
    check!(
        server,
        end.value("azmlinfsrv_worker_crashes_total", &[]) == 1.0,
        "a killed worker is not a crash"
    );
    check!(
        server,
        end.value("azmlinfsrv_worker_init_duration_seconds_count", &[]) == 3.0,
        "the first worker and its two replacements"
    );
    check!(
        server,
        end.value("azmlinfsrv_startup_duration_seconds", &[])
            == start.value("azmlinfsrv_startup_duration_seconds", &[]),
        "the start-up duration is set once"
    );
    // The scrapes themselves are counted, but never written to the access log.
    check!(
        server,
        end.value(
            REQUESTS,
            &[("route", "/metrics"), ("method", "GET"), ("status", "200")]
        ) >= 2.0
    );
    check!(
        server,
        server
            .output
            .wait_for("POST /score 200", Duration::from_secs(5))
    );
    check!(server, !server.output.text().contains("/metrics"));
}

#[test]
fn busy_workers_and_the_queue_show_while_requests_wait() {
    let scratch = Scratch::new("metrics-queue");
    let gate = scratch.path.join("gate");
    let server = lifecycle().start();
    let body = serde_json::json!({"gate": gate.display().to_string()}).to_string();
    let port = server.port;
    let clients: Vec<_> = (0..2)
        .map(|_| {
            let body = body.clone();
            std::thread::spawn(move || try_request(port, "POST", "/score", &[], body.as_bytes()))
        })
        .collect();
    let waiting = scrape_until(&server, Duration::from_secs(20), |scrape| {
        scrape.value("azmlinfsrv_workers_busy", &[]) == 1.0
            && scrape.value("azmlinfsrv_queued_requests", &[]) == 1.0
    });
    check!(
        server,
        waiting.value("azmlinfsrv_workers_busy", &[]) == 1.0
            && waiting.value("azmlinfsrv_queued_requests", &[]) == 1.0,
        "one request runs, the other waits: busy {:?}, queued {:?}",
        waiting.get("azmlinfsrv_workers_busy", &[]),
        waiting.get("azmlinfsrv_queued_requests", &[])
    );
    check!(
        server,
        waiting.value("azmlinfsrv_workers_ready", &[]) == 1.0
    );
    std::fs::write(&gate, "open").unwrap();
    for client in clients {
        let response = client.join().unwrap().unwrap();
        check!(server, response.status == 200, "{}", response.text());
    }
    let idle = scrape_until(&server, Duration::from_secs(10), |scrape| {
        scrape.value("azmlinfsrv_workers_busy", &[]) == 0.0
    });
    check!(server, idle.value("azmlinfsrv_workers_busy", &[]) == 0.0);
    check!(server, idle.value("azmlinfsrv_queued_requests", &[]) == 0.0);
}

#[test]
fn a_worker_that_cannot_come_back_shows_as_restarting_with_its_cause() {
    let scratch = Scratch::new("metrics-restarting");
    let marker = scratch.path.join("init-fails");
    let server = lifecycle()
        .env("LIFECYCLE_INIT_FAIL_MARKER", marker.display().to_string())
        .start();
    std::fs::write(&marker, "").unwrap();
    let crash = server.post("/score", r#"{"exit": 3}"#);
    check!(server, crash.status == 500);
    let failing = scrape_until(&server, Duration::from_secs(20), |scrape| {
        scrape.value(RESTARTS, &[("cause", "init_failed")]) >= 1.0
    });
    check!(
        server,
        failing.value(RESTARTS, &[("cause", "init_failed")]) >= 1.0,
        "the replacement's init() fails"
    );
    check!(
        server,
        failing.value(RESTARTS, &[("cause", "crash")]) == 1.0
    );
    check!(
        server,
        failing.value("azmlinfsrv_workers_restarting", &[]) == 1.0
    );
    check!(
        server,
        failing.value("azmlinfsrv_workers_ready", &[]) == 0.0
    );
    std::fs::remove_file(&marker).unwrap();
    let back = scrape_until(&server, Duration::from_secs(30), |scrape| {
        scrape.value("azmlinfsrv_workers_ready", &[]) == 1.0
    });
    check!(server, back.value("azmlinfsrv_workers_ready", &[]) == 1.0);
    check!(
        server,
        back.value("azmlinfsrv_workers_restarting", &[]) == 0.0
    );
}

#[test]
fn metrics_turned_off_are_a_404_like_any_unknown_route() {
    for launch in [
        lifecycle().arg("--no_metrics"),
        lifecycle().env("AZMLINFSRV_METRICS", "false"),
    ] {
        let server = launch.start();
        let response = server.get("/metrics");
        let unknown = server.get("/nowhere");
        check!(server, response.status == 404, "{}", response.text());
        check!(
            server,
            response.text() == unknown.text(),
            "the same answer as an unknown route"
        );
    }
}

#[test]
fn metrics_are_served_on_the_health_port_too() {
    let health_port = free_port();
    let server = lifecycle()
        .env("SEPERATE_HEALTH_ENDPOINT", "true")
        .arg("--health_port")
        .arg(health_port.to_string())
        .start();
    check!(server, server.post("/score", "{}").status == 200);
    let on_health = scrape_port(&server, health_port);
    check!(
        server,
        score_requests(&on_health, "200") == 1.0,
        "one registry for both ports"
    );
    check!(
        server,
        on_health.value("azmlinfsrv_workers_ready", &[]) == 1.0
    );
}
