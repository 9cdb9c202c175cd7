//! The Prometheus metrics: the registry and every metric the server exports, named here
//! and nowhere else, and the few functions the request path and the pool call to move
//! them. `GET /metrics` (`http::metrics_route`) renders them.
//!
//! The registry is global and installed once at start-up, only when metrics are on: so
//! the pool and the HTTP layer record without a handle threaded through them, and with
//! metrics off every recording function is a single load of an empty `OnceLock`.
//!
//! Counters and histograms move when things happen; the gauges about the pool (queue,
//! workers) are read from the pool's own counters when scraped, so they cost nothing on
//! the request path.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// The content type of what `render` returns: the OpenMetrics text format, which
/// Prometheus (2.5 and later) and every current scraper read natively.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The routes the server knows, as the `route` label spells them; anything else is
/// `other`, so that a scanner probing random paths cannot grow the label set.
const ROUTES: [&str; 5] = ["/", "/score", "/swagger.json", "/readiness", "/metrics"];
const OTHER: &str = "other";

/// Latency buckets in seconds: from a hello-world answer (well under a millisecond) to
/// the longest scoring calls people run behind this server.
const LATENCY_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];
/// `init()` loads models: seconds to many minutes.
const INIT_BUCKETS: [f64; 12] = [
    0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CauseLabels {
    cause: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

/// Why a slot started a new worker (the `cause` label of the restarts counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartCause {
    /// The worker ended on its own: a crash, `os._exit`, an OOM kill.
    Crash,
    /// The server killed it: `run()` overran the scoring timeout and did not stop.
    HardTimeout,
    /// A restarted worker's `init()` raised, so the slot tries again.
    InitFailed,
    /// A restarted worker could not start or load the script, so the slot tries again.
    StartFailed,
}

impl RestartCause {
    fn label(self) -> &'static str {
        match self {
            RestartCause::Crash => "crash",
            RestartCause::HardTimeout => "hard_timeout",
            RestartCause::InitFailed => "init_failed",
            RestartCause::StartFailed => "start_failed",
        }
    }
}

/// How a request overran the scoring timeout (the `kind` label of the timeouts counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutKind {
    /// The runner interrupted `run()` itself; the worker lives on.
    Soft,
    /// `run()` did not stop (native code): the worker was killed.
    Hard,
}

/// The pool's state when scraped.
#[derive(Debug, Clone, Copy, Default)]
pub struct PoolSnapshot {
    pub configured: usize,
    pub ready: usize,
    pub busy: usize,
    pub restarting: usize,
    pub queued: usize,
}

struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    /// One histogram per known route plus `other`, taken out of their family once so
    /// that a request locks nothing but its own histogram.
    request_durations: Vec<Histogram>,
    run_duration: Histogram,
    init_duration: Histogram,
    startup_duration: Gauge<f64, std::sync::atomic::AtomicU64>,
    restarts: Family<CauseLabels, Counter>,
    timeouts: Family<KindLabels, Counter>,
    crashes: Counter,
    workers: Gauge,
    workers_ready: Gauge,
    workers_busy: Gauge,
    workers_restarting: Gauge,
    queued: Gauge,
}

static METRICS: OnceLock<Metrics> = OnceLock::new();
static PROCESS_START: OnceLock<Instant> = OnceLock::new();
/// Set once, when the first worker is ready.
static IS_STARTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Notes when the process started (call first thing in `main`): the start-up duration
/// counts from here.
pub fn mark_process_start() {
    PROCESS_START.get_or_init(Instant::now);
}

/// Turns metrics on: builds the registry. Without this call nothing is recorded and
/// `render` returns `None`.
pub fn install() {
    mark_process_start();
    METRICS.get_or_init(Metrics::new);
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("azmlinfsrv");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route (unknown paths are 'other'), method and status code",
            requests.clone(),
        );
        let durations = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(LATENCY_BUCKETS)
        });
        registry.register_with_unit(
            "http_request_duration",
            "Time from a request's arrival to its answer's head, by route",
            Unit::Seconds,
            durations.clone(),
        );
        let request_durations = ROUTES
            .iter()
            .chain([&OTHER])
            .map(|route| durations.get_or_create_owned(&RouteLabels { route }))
            .collect();
        let run_duration = Histogram::new(LATENCY_BUCKETS);
        registry.register_with_unit(
            "run_duration",
            "Time the scoring script's run() took, as measured by the runner",
            Unit::Seconds,
            run_duration.clone(),
        );
        let init_duration = Histogram::new(INIT_BUCKETS);
        registry.register_with_unit(
            "worker_init_duration",
            "Time the scoring script's init() took, per worker start that succeeded",
            Unit::Seconds,
            init_duration.clone(),
        );
        let startup_duration = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register_with_unit(
            "startup_duration",
            "Time from the server process's start to its first worker being ready (0 until then)",
            Unit::Seconds,
            startup_duration.clone(),
        );
        let restarts = Family::<CauseLabels, Counter>::default();
        registry.register(
            "worker_restarts",
            "New workers started to replace one, by cause: crash, hard_timeout, init_failed, start_failed",
            restarts.clone(),
        );
        let timeouts = Family::<KindLabels, Counter>::default();
        registry.register(
            "scoring_timeouts",
            "Requests past the scoring timeout: soft (the runner interrupted run()) or hard (the worker was killed)",
            timeouts.clone(),
        );
        let crashes = Counter::default();
        registry.register(
            "worker_crashes",
            "Workers that ended without being asked to (crash, exit in run(), out of memory)",
            crashes.clone(),
        );
        // Every label value that can occur shows from the start, at 0: a rate() over a
        // series that appears only at its first increment misses that increment.
        for cause in [
            RestartCause::Crash,
            RestartCause::HardTimeout,
            RestartCause::InitFailed,
            RestartCause::StartFailed,
        ] {
            restarts.get_or_create_owned(&CauseLabels {
                cause: cause.label(),
            });
        }
        for kind in ["soft", "hard"] {
            timeouts.get_or_create_owned(&KindLabels { kind });
        }
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let gauge = Gauge::default();
            registry.register(name, help, gauge.clone());
            gauge
        };
        let workers = gauge(
            &mut registry,
            "workers",
            "Worker processes configured (--worker_count)",
        );
        let workers_ready = gauge(
            &mut registry,
            "workers_ready",
            "Workers that finished init() and are alive, busy or not",
        );
        let workers_busy = gauge(&mut registry, "workers_busy", "Workers running a request");
        let workers_restarting = gauge(
            &mut registry,
            "workers_restarting",
            "Worker slots starting a replacement worker or waiting to (back-off after failures)",
        );
        let queued = gauge(
            &mut registry,
            "queued_requests",
            "Requests waiting for a free worker",
        );
        Metrics {
            registry,
            requests,
            request_durations,
            run_duration,
            init_duration,
            startup_duration,
            restarts,
            timeouts,
            crashes,
            workers,
            workers_ready,
            workers_busy,
            workers_restarting,
            queued,
        }
    }
}

/// Counts one answered request and its latency (from `started`).
pub fn observe_request(path: &str, method: &http::Method, status: u16, started: Instant) {
    let Some(metrics) = METRICS.get() else {
        return;
    };
    let route_index = ROUTES
        .iter()
        .position(|route| *route == path)
        .unwrap_or(ROUTES.len());
    let route = ROUTES.get(route_index).copied().unwrap_or(OTHER);
    metrics
        .requests
        .get_or_create(&RequestLabels {
            route,
            method: method_label(method),
            status,
        })
        .inc();
    if let Some(histogram) = metrics.request_durations.get(route_index) {
        histogram.observe(started.elapsed().as_secs_f64());
    }
}

/// The method as a label: the standard ones by name, anything else `other`.
fn method_label(method: &http::Method) -> &'static str {
    use http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        _ => OTHER,
    }
}

/// How long `run()` took, as the runner measured it (`run_ms` of its answer).
pub fn observe_run(run_ms: f64) {
    if let Some(metrics) = METRICS.get() {
        metrics.run_duration.observe(run_ms / 1000.0);
    }
}

/// A worker's `init()` succeeded after `took`.
pub fn observe_init(took: Duration) {
    if let Some(metrics) = METRICS.get() {
        metrics.init_duration.observe(took.as_secs_f64());
    }
}

/// A worker is ready: the first time, the start-up duration is set.
pub fn worker_ready() {
    let Some(metrics) = METRICS.get() else {
        return;
    };
    if !IS_STARTED.swap(true, std::sync::atomic::Ordering::AcqRel) {
        let started = PROCESS_START.get_or_init(Instant::now);
        metrics
            .startup_duration
            .set(started.elapsed().as_secs_f64());
    }
}

pub fn restarted(cause: RestartCause) {
    if let Some(metrics) = METRICS.get() {
        metrics
            .restarts
            .get_or_create(&CauseLabels {
                cause: cause.label(),
            })
            .inc();
    }
}

pub fn timed_out(kind: TimeoutKind) {
    if let Some(metrics) = METRICS.get() {
        let kind = match kind {
            TimeoutKind::Soft => "soft",
            TimeoutKind::Hard => "hard",
        };
        metrics.timeouts.get_or_create(&KindLabels { kind }).inc();
    }
}

/// A worker ended without being asked to.
pub fn crashed() {
    if let Some(metrics) = METRICS.get() {
        metrics.crashes.inc();
    }
}

/// Everything, in the OpenMetrics text format, with the pool's gauges as of now;
/// `None` when metrics are off.
pub fn render(pool: PoolSnapshot) -> Option<String> {
    let metrics = METRICS.get()?;
    let as_gauge = |count: usize| i64::try_from(count).unwrap_or(i64::MAX);
    metrics.workers.set(as_gauge(pool.configured));
    metrics.workers_ready.set(as_gauge(pool.ready));
    metrics.workers_busy.set(as_gauge(pool.busy));
    metrics.workers_restarting.set(as_gauge(pool.restarting));
    metrics.queued.set(as_gauge(pool.queued));
    let mut text = String::with_capacity(8 * 1024);
    // Writing to a String cannot fail.
    prometheus_client::encoding::text::encode(&mut text, &metrics.registry).ok()?;
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(method_label(&http::Method::GET), "GET");
        let odd = http::Method::from_bytes(b"PROPFIND").unwrap();
        assert_eq!(method_label(&odd), "other");
    }

    #[test]
    fn every_metric_is_named_with_the_prefix_and_base_units() {
        install();
        observe_request("/nowhere", &http::Method::GET, 404, Instant::now());
        let text = render(PoolSnapshot::default()).unwrap();
        assert!(text.contains(
            r#"azmlinfsrv_http_requests_total{route="other",method="GET",status="404"} 1"#
        ));
        assert!(text.contains("# TYPE azmlinfsrv_http_request_duration_seconds histogram"));
        assert!(text.contains(r#"azmlinfsrv_worker_restarts_total{cause="hard_timeout"} 0"#));
        assert!(text.contains("azmlinfsrv_queued_requests 0"));
        assert!(text.ends_with("# EOF\n"));
    }
}
