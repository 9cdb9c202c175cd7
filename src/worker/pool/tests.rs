//! The pool's policies against a fake worker, in virtual time: no Python, no processes.
//! A fake worker runs its requests one at a time in order, like the runner; what each
//! request does is written in its body (`ok`, `sleep:MS`, `crash`, `crash_after:MS`,
//! `hang`), and every run is recorded, so that "at most once" can be checked.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use tokio::sync::{mpsc, oneshot, watch};

use super::*;
use crate::worker::process::{CallError, ReplyBody, ScoreReply};
use crate::worker::wire::{InputMode, LoadResult, ScoreResult};

/// Every request a fake worker started: (worker serial number, body).
type RunLog = Arc<Mutex<Vec<(usize, String)>>>;

struct FakeWorker {
    serial: usize,
    requests: mpsc::UnboundedSender<(String, oneshot::Sender<Result<ScoreReply, CallError>>)>,
    exit: watch::Receiver<Option<String>>,
    exit_tx: Arc<watch::Sender<Option<String>>>,
    /// Says a debugger is attached.
    is_debugged: bool,
}

impl FakeWorker {
    fn start(serial: usize, runs: RunLog, is_debugged: bool) -> Arc<FakeWorker> {
        let (requests, mut incoming) =
            mpsc::unbounded_channel::<(String, oneshot::Sender<Result<ScoreReply, CallError>>)>();
        let (exit_tx, exit) = watch::channel(None);
        let exit_tx = Arc::new(exit_tx);
        let worker = Arc::new(FakeWorker {
            serial,
            requests,
            exit,
            exit_tx: exit_tx.clone(),
            is_debugged,
        });
        let mut exit_watch = worker.exit.clone();
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    next = incoming.recv() => next,
                    _ = exit_watch.wait_for(Option::is_some) => None,
                };
                let Some((body, reply)) = next else { return };
                runs.lock().unwrap().push((serial, body.clone()));
                let (action, millis) = body.split_once(':').unwrap_or((&body, "0"));
                let millis: u64 = millis.parse().unwrap_or(0);
                match action {
                    "crash" => {
                        let _ = exit_tx.send(Some("exit code 17".into()));
                        return;
                    }
                    "crash_after" => {
                        tokio::time::sleep(Duration::from_millis(millis)).await;
                        let _ = exit_tx.send(Some("exit code 17".into()));
                        return;
                    }
                    "hang" => {
                        let _ = exit_watch.wait_for(Option::is_some).await;
                        return;
                    }
                    _ => {
                        tokio::time::sleep(Duration::from_millis(millis)).await;
                        let _ = reply.send(Ok(ScoreReply {
                            result: ScoreResult {
                                status: 200,
                                headers: Vec::new(),
                                run_ms: Some(millis as f64),
                                run_failed: Some(false),
                                streaming: false,
                            },
                            body: ReplyBody::Full(Bytes::from(serial.to_string())),
                            stream_done: None,
                        }));
                    }
                }
            }
        });
        worker
    }
}

impl Worker for FakeWorker {
    fn pid(&self) -> u32 {
        1000 + self.serial as u32
    }

    fn send_score(&self, request: &ScoreRequest) -> Result<PendingAnswer, CallError> {
        let (reply, answer) = oneshot::channel();
        let body = String::from_utf8_lossy(&request.body).into_owned();
        self.requests
            .send((body, reply))
            .map_err(|_| CallError::Exited("a broken pipe".into()))?;
        let exit = self.exit.clone();
        Ok(async move {
            match answer.await {
                Ok(outcome) => outcome,
                Err(_) => {
                    let mut exit = exit;
                    let how = exit
                        .wait_for(Option::is_some)
                        .await
                        .ok()
                        .and_then(|how| how.clone());
                    Err(CallError::Exited(how.unwrap_or_default()))
                }
            }
        }
        .boxed())
    }

    fn exited(&self) -> BoxFuture<'static, String> {
        let mut exit = self.exit.clone();
        async move {
            let how = exit
                .wait_for(Option::is_some)
                .await
                .ok()
                .and_then(|how| how.clone());
            how.unwrap_or_default()
        }
        .boxed()
    }

    fn kill(&self) {
        let _ = self.exit_tx.send(Some("signal 9 (SIGKILL)".into()));
    }

    fn shutdown(&self, _grace: Duration) -> BoxFuture<'_, ()> {
        self.kill();
        async {}.boxed()
    }

    fn is_being_debugged(&self) -> bool {
        self.is_debugged
    }
}

/// Launches fake workers; `fail_launches` makes that many launches fail first.
struct FakeLauncher {
    runs: RunLog,
    launches: Mutex<Vec<tokio::time::Instant>>,
    serial: Mutex<usize>,
    /// Launches (by number, from 0) whose worker dies before it answers anything.
    die_at_once: Vec<usize>,
    /// How long `init()` takes in the workers launched from now on.
    init_delay: Mutex<Duration>,
    /// Whether `init()` raises in the workers launched from now on.
    init_raises: std::sync::atomic::AtomicBool,
    /// Workers shut down or killed, by serial number.
    stopped: Arc<Mutex<Vec<usize>>>,
    /// Its workers say a debugger is attached.
    is_debugged: bool,
}

impl FakeLauncher {
    fn new() -> Arc<FakeLauncher> {
        Arc::new(FakeLauncher {
            runs: RunLog::default(),
            launches: Mutex::new(Vec::new()),
            serial: Mutex::new(0),
            die_at_once: Vec::new(),
            init_delay: Mutex::new(Duration::ZERO),
            init_raises: Default::default(),
            stopped: Default::default(),
            is_debugged: false,
        })
    }
}

impl Launcher for FakeLauncher {
    fn launch(&self, _slot_id: usize) -> BoxFuture<'_, Result<Loaded, BootFailure>> {
        async move {
            self.launches
                .lock()
                .unwrap()
                .push(tokio::time::Instant::now());
            let serial = {
                let mut serial = self.serial.lock().unwrap();
                *serial += 1;
                *serial - 1
            };
            let worker = FakeWorker::start(serial, self.runs.clone(), self.is_debugged);
            if self.die_at_once.contains(&serial) {
                worker.kill();
            }
            let stopped = self.stopped.clone();
            let mut exited = worker.exited();
            tokio::spawn(async move {
                (&mut exited).await;
                stopped.lock().unwrap().push(serial);
            });
            let init_delay = *self.init_delay.lock().unwrap();
            let init_raises = self.init_raises.load(std::sync::atomic::Ordering::Relaxed);
            Ok(Loaded {
                worker,
                load: LoadResult {
                    input_mode: InputMode::Plain,
                    schemas: serde_json::Value::Null,
                },
                init: async move {
                    tokio::time::sleep(init_delay).await;
                    if init_raises {
                        return Err(init_failure());
                    }
                    Ok(())
                }
                .boxed(),
            })
        }
        .boxed()
    }
}

/// What the runner reports when `init()` raises `ValueError` at score.py line 12.
fn init_failure() -> BootFailure {
    BootFailure::from_call(
        "run init()",
        CallError::Rpc(crate::worker::wire::RpcError {
            code: -32000,
            message: "User's init function failed: ValueError: bad value".into(),
            data: Some(Box::new(crate::worker::wire::ErrorData {
                kind: crate::worker::wire::ErrorKind::InitFailed,
                traceback: Some("Traceback ...".into()),
                exception_type: Some("ValueError".into()),
                exception_message: Some("bad value".into()),
                location: Some(crate::worker::wire::CodeLocation {
                    file: "/app/score.py".into(),
                    line: Some(12),
                    function: Some("init".into()),
                }),
            })),
        }),
    )
}

fn pool_of(launcher: Arc<FakeLauncher>, workers: usize, queue_limit: usize) -> Pool {
    pool_with_timeout(launcher, workers, queue_limit, None)
}

fn pool_with_timeout(
    launcher: Arc<FakeLauncher>,
    workers: usize,
    queue_limit: usize,
    scoring_timeout: Option<Duration>,
) -> Pool {
    let (boot_failures, _) = mpsc::unbounded_channel();
    Pool::start(
        PoolConfig {
            launcher,
            worker_count: workers,
            queue_limit,
            scoring_timeout,
            on_first_load: Box::new(|_| Ok(())),
            timings: Timings::default(),
        },
        boot_failures,
    )
}

fn request(body: &str) -> ScoreRequest {
    ScoreRequest {
        method: "POST".into(),
        path: "/score".into(),
        query: String::new(),
        headers: Vec::new(),
        request_id: body.into(),
        remote_addr: None,
        body: Bytes::from(body.to_string()),
    }
}

/// Which worker answered, or what else became of the request.
fn describe(outcome: ScoreOutcome) -> String {
    match outcome {
        ScoreOutcome::Answered { body, .. } => match body {
            ReplyBody::Full(bytes) => format!("worker {}", String::from_utf8_lossy(&bytes)),
            ReplyBody::Stream(_) => "stream".into(),
        },
        ScoreOutcome::Failed(error) => format!("failed {}", error.message),
        ScoreOutcome::TimedOut => "timed out".into(),
        ScoreOutcome::WorkerExited { how, .. } => format!("exited {how}"),
        ScoreOutcome::QueueFull => "queue full".into(),
        ScoreOutcome::Unavailable => "unavailable".into(),
        ScoreOutcome::ShuttingDown => "shutting down".into(),
        ScoreOutcome::Internal(what) => format!("internal {what}"),
    }
}

async fn wait_ready(pool: &Pool, workers: usize) {
    while pool.readiness().0 < workers {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn runs_of(launcher: &FakeLauncher, body: &str) -> usize {
    launcher
        .runs
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, run)| run == body)
        .count()
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_refuses_at_once_and_queued_requests_are_answered_in_order() {
    let launcher = FakeLauncher::new();
    let pool = pool_of(launcher.clone(), 1, 2);
    wait_ready(&pool, 1).await;
    let busy = tokio::spawn({
        let pool = pool.clone();
        async move { describe(pool.score(request("sleep:100")).await) }
    });
    tokio::time::sleep(Duration::from_millis(1)).await;
    let queued: Vec<_> = ["ok:1", "ok:2"]
        .iter()
        .map(|body| {
            let pool = pool.clone();
            let body = body.to_string();
            tokio::spawn(async move { describe(pool.score(request(&body)).await) })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(describe(pool.score(request("ok")).await), "queue full");
    assert_eq!(busy.await.unwrap(), "worker 0");
    for answer in queued {
        assert_eq!(answer.await.unwrap(), "worker 0");
    }
    let order: Vec<String> = launcher
        .runs
        .lock()
        .unwrap()
        .iter()
        .map(|(_, b)| b.clone())
        .collect();
    assert_eq!(order, ["sleep:100", "ok:1", "ok:2"]);
}

#[tokio::test(start_paused = true)]
async fn after_a_crash_only_requests_never_started_run_again_and_each_runs_once() {
    let launcher = FakeLauncher::new();
    let pool = pool_of(launcher.clone(), 1, 64);
    wait_ready(&pool, 1).await;
    // A quick request first: the worker then takes queued requests ahead of time.
    assert_eq!(describe(pool.score(request("ok")).await), "worker 0");
    let crashing = tokio::spawn({
        let pool = pool.clone();
        async move { describe(pool.score(request("crash_after:50")).await) }
    });
    tokio::time::sleep(Duration::from_millis(1)).await;
    let behind: Vec<_> = (0..5)
        .map(|n| {
            let pool = pool.clone();
            tokio::spawn(async move { describe(pool.score(request(&format!("ok:{n}"))).await) })
        })
        .collect();
    assert_eq!(crashing.await.unwrap(), "exited exit code 17");
    for answer in behind {
        assert_eq!(
            answer.await.unwrap(),
            "worker 1",
            "answered by the new worker"
        );
    }
    assert_eq!(
        runs_of(&launcher, "crash_after:50"),
        1,
        "the crashing request is not run again"
    );
    for n in 0..5 {
        assert_eq!(
            runs_of(&launcher, &format!("ok:{n}")),
            1,
            "request {n} ran once"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_worker_killed_for_the_hard_timeout_is_replaced_at_once_not_backed_off() {
    let launcher = FakeLauncher::new();
    let pool = pool_with_timeout(launcher.clone(), 1, 64, Some(Duration::from_millis(100)));
    wait_ready(&pool, 1).await;
    let started = tokio::time::Instant::now();
    assert_eq!(describe(pool.score(request("hang")).await), "timed out");
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(600),
        "timeout + 0.5 s grace"
    );
    // Sent right after the timeout answer: waits for the new worker, no 503.
    let next = tokio::time::Instant::now();
    assert_eq!(describe(pool.score(request("ok")).await), "worker 1");
    assert!(
        next.elapsed() < Duration::from_millis(50),
        "no back-off: {:?}",
        next.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_crash_looping_worker_backs_off_with_growing_delays_and_requests_get_503() {
    let launcher = Arc::new(FakeLauncher {
        die_at_once: (1..10).collect(),
        ..Arc::try_unwrap(FakeLauncher::new()).ok().unwrap()
    });
    let pool = pool_of(launcher.clone(), 1, 64);
    wait_ready(&pool, 1).await;
    // The first worker serves, then crashes; its successors die before answering.
    assert_eq!(describe(pool.score(request("ok")).await), "worker 0");
    assert_eq!(
        describe(pool.score(request("crash")).await),
        "exited exit code 17"
    );
    tokio::time::sleep(Duration::from_millis(1)).await;
    // Every slot is backing off: 503 at once.
    assert_eq!(describe(pool.score(request("ok")).await), "unavailable");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let launches = launcher.launches.lock().unwrap().clone();
    let gaps: Vec<u128> = launches
        .windows(2)
        .map(|w| (w[1] - w[0]).as_millis())
        .collect();
    // Replaced at once after serving (the gap is the time it served); then crash-looping
    // replacements come back after 100, 200, 400, 800 ms.
    assert!(gaps[0] < 10, "{gaps:?}");
    assert_eq!(gaps.get(1..5), Some(&[100, 200, 400, 800][..]), "{gaps:?}");
}

#[tokio::test(start_paused = true)]
async fn one_client_is_served_by_the_most_recently_idle_worker() {
    let launcher = FakeLauncher::new();
    let pool = pool_of(launcher.clone(), 4, 64);
    wait_ready(&pool, 4).await;
    let mut answered_by = Vec::new();
    for _ in 0..10 {
        answered_by.push(describe(pool.score(request("ok")).await));
    }
    assert!(
        answered_by.iter().all(|w| *w == answered_by[0]),
        "{answered_by:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn readiness_counts_workers_and_shutdown_answers_what_is_queued() {
    let launcher = FakeLauncher::new();
    let pool = pool_of(launcher.clone(), 2, 64);
    assert!(!pool.is_ready());
    wait_ready(&pool, 2).await;
    assert_eq!(pool.readiness(), (2, 2));
    let busy: Vec<_> = (0..2)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { describe(pool.score(request("hang")).await) })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1)).await;
    let queued = tokio::spawn({
        let pool = pool.clone();
        async move { describe(pool.score(request("ok")).await) }
    });
    tokio::time::sleep(Duration::from_millis(1)).await;
    pool.shutdown().await;
    assert_eq!(queued.await.unwrap(), "shutting down");
    for answer in busy {
        assert_eq!(answer.await.unwrap(), "shutting down");
    }
    assert_eq!(runs_of(&launcher, "ok"), 0, "a queued request never ran");
}

#[tokio::test(start_paused = true)]
async fn a_request_whose_client_left_is_not_run() {
    let launcher = FakeLauncher::new();
    let pool = pool_of(launcher.clone(), 1, 64);
    wait_ready(&pool, 1).await;
    let busy = tokio::spawn({
        let pool = pool.clone();
        async move { describe(pool.score(request("sleep:100")).await) }
    });
    tokio::time::sleep(Duration::from_millis(1)).await;
    let abandoned = tokio::spawn({
        let pool = pool.clone();
        async move { pool.score(request("ok:abandoned")).await }
    });
    tokio::time::sleep(Duration::from_millis(1)).await;
    abandoned.abort();
    assert_eq!(busy.await.unwrap(), "worker 0");
    assert_eq!(describe(pool.score(request("ok")).await), "worker 0");
    assert_eq!(runs_of(&launcher, "ok:abandoned"), 0);
}

/// Sends `body` over and over, one at a time, until `stop`; returns every outcome and
/// whether readiness ever dropped below `workers`.
fn keep_sending(
    pool: &Pool,
    body: &'static str,
    workers: usize,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<(Vec<String>, bool)> {
    let pool = pool.clone();
    tokio::spawn(async move {
        let mut answers = Vec::new();
        let mut was_ever_unready = false;
        while !*stop.borrow() {
            was_ever_unready |= pool.readiness().0 < workers;
            answers.push(describe(pool.score(request(body)).await));
            tokio::time::sleep(Duration::from_millis(7)).await;
        }
        (answers, was_ever_unready)
    })
}

#[tokio::test(start_paused = true)]
async fn during_a_reload_the_old_workers_answer_until_the_new_ones_are_ready() {
    let launcher = FakeLauncher::new();
    let pool = pool_of(launcher.clone(), 2, 64);
    wait_ready(&pool, 2).await;
    *launcher.init_delay.lock().unwrap() = Duration::from_millis(1000);
    // Running when the reload begins, and longer than the new workers' init().
    let long = tokio::spawn({
        let pool = pool.clone();
        async move { describe(pool.score(request("sleep:1500")).await) }
    });
    tokio::time::sleep(Duration::from_millis(1)).await;
    let (stop, stopped) = watch::channel(false);
    let client = keep_sending(&pool, "ok:3", 2, stopped);
    let began = tokio::time::Instant::now();
    assert_eq!(pool.reload().await.ok(), Some(2));
    assert_eq!(
        began.elapsed(),
        Duration::from_millis(1000),
        "init() of both, in parallel"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = stop.send(true);
    let (answers, was_ever_unready) = client.await.unwrap();
    let long = long.await.unwrap();
    assert!(
        long == "worker 0" || long == "worker 1",
        "the old worker finished it: {long}"
    );
    assert!(
        !was_ever_unready,
        "readiness never dropped during the reload"
    );
    let first_new = answers
        .iter()
        .position(|a| a == "worker 2" || a == "worker 3");
    let first_new = first_new.expect("the new workers answered after the reload");
    assert!(
        answers.len() > 100,
        "the client was served throughout: {}",
        answers.len()
    );
    assert!(
        answers[..first_new]
            .iter()
            .all(|a| a == "worker 0" || a == "worker 1"),
        "old workers until the new ones were ready: {answers:?}"
    );
    assert!(
        answers[first_new..]
            .iter()
            .all(|a| a == "worker 2" || a == "worker 3"),
        "new workers only, once swapped: {answers:?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut stopped = launcher.stopped.lock().unwrap().clone();
    stopped.sort();
    assert_eq!(stopped, [0, 1], "both old workers exited once idle");
}

#[tokio::test(start_paused = true)]
async fn a_new_generation_that_fails_init_is_discarded_and_the_old_keeps_serving() {
    let launcher = FakeLauncher::new();
    let pool = pool_of(launcher.clone(), 2, 64);
    wait_ready(&pool, 2).await;
    launcher
        .init_raises
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let failure = pool.reload().await.expect_err("init() raised");
    assert_eq!(
        failure.pointer(std::path::Path::new("/app")),
        "score.py:12: ValueError: bad value"
    );
    tokio::time::sleep(Duration::from_millis(1)).await;
    let mut stopped = launcher.stopped.lock().unwrap().clone();
    stopped.sort();
    assert_eq!(stopped, [2, 3], "the failed new workers are gone");
    assert_eq!(pool.readiness(), (2, 2));
    let answer = describe(pool.score(request("ok")).await);
    assert!(answer == "worker 0" || answer == "worker 1", "{answer}");
    // The fix is saved: the next reload is picked up.
    launcher
        .init_raises
        .store(false, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(pool.reload().await.ok(), Some(2));
    tokio::time::sleep(Duration::from_millis(1)).await;
    let answer = describe(pool.score(request("ok")).await);
    assert!(answer == "worker 4" || answer == "worker 5", "{answer}");
}

#[tokio::test(start_paused = true)]
async fn reloads_asked_while_one_runs_are_coalesced_into_one_more() {
    let launcher = FakeLauncher::new();
    let pool = pool_of(launcher.clone(), 1, 64);
    wait_ready(&pool, 1).await;
    *launcher.init_delay.lock().unwrap() = Duration::from_millis(1000);
    let began = tokio::time::Instant::now();
    let first = tokio::spawn({
        let pool = pool.clone();
        async move { pool.reload().await.ok() }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A burst of saves while the first reload runs.
    let later: Vec<_> = (0..3)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.reload().await.ok() })
        })
        .collect();
    assert_eq!(first.await.unwrap(), Some(1));
    for answer in later {
        assert_eq!(answer.await.unwrap(), Some(1));
    }
    assert_eq!(
        began.elapsed(),
        Duration::from_millis(2000),
        "one more round after the first, not three"
    );
    assert_eq!(
        launcher.launches.lock().unwrap().len(),
        3,
        "start + 2 rounds"
    );
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(describe(pool.score(request("ok")).await), "worker 2");
}

#[tokio::test(start_paused = true)]
async fn a_debugged_worker_is_not_killed_past_the_hard_deadline() {
    let launcher = Arc::new(FakeLauncher {
        is_debugged: true,
        ..Arc::try_unwrap(FakeLauncher::new()).ok().unwrap()
    });
    let pool = pool_with_timeout(launcher.clone(), 1, 64, Some(Duration::from_millis(100)));
    wait_ready(&pool, 1).await;
    // Stopped at a breakpoint for 5 s, far past the 0.6 s hard deadline.
    let started = tokio::time::Instant::now();
    assert_eq!(
        describe(pool.score(request("sleep:5000")).await),
        "worker 0"
    );
    assert!(started.elapsed() >= Duration::from_millis(5000));
    assert_eq!(
        launcher.launches.lock().unwrap().len(),
        1,
        "the worker was not replaced"
    );
}

#[tokio::test(start_paused = true)]
async fn the_snapshot_counts_busy_queued_and_restarting_workers() {
    let launcher = Arc::new(FakeLauncher {
        die_at_once: (1..10).collect(),
        ..Arc::try_unwrap(FakeLauncher::new()).ok().unwrap()
    });
    let pool = pool_of(launcher.clone(), 1, 64);
    wait_ready(&pool, 1).await;
    let counts = |pool: &Pool| {
        let snapshot = pool.snapshot();
        (
            snapshot.ready,
            snapshot.busy,
            snapshot.queued,
            snapshot.restarting,
        )
    };
    assert_eq!(counts(&pool), (1, 0, 0, 0));
    let running = tokio::spawn({
        let pool = pool.clone();
        async move { describe(pool.score(request("sleep:100")).await) }
    });
    tokio::time::sleep(Duration::from_millis(1)).await;
    let waiting = tokio::spawn({
        let pool = pool.clone();
        async move { describe(pool.score(request("ok")).await) }
    });
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(counts(&pool), (1, 1, 1, 0), "one runs, one waits");
    assert_eq!(running.await.unwrap(), "worker 0");
    assert_eq!(waiting.await.unwrap(), "worker 0");
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(counts(&pool), (1, 0, 0, 0), "idle again");
    // The worker crashes; its replacements die before answering: a crash loop.
    assert_eq!(
        describe(pool.score(request("crash")).await),
        "exited exit code 17"
    );
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(counts(&pool), (0, 0, 0, 1), "restarting, not ready");
    assert_eq!(pool.snapshot().configured, 1);
}
