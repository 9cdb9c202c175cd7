//! The worker pool: owns the runner processes, hands each request to an idle runner
//! through a bounded queue, enforces the hard timeout, restarts runners that die, and
//! knows when the service is ready. It never builds an HTTP response.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, Mutex};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::protocol::{InputMode, LoadParams, LoadResult, ScoreParams, ScoreResult};
use crate::runner::{CallError, LaunchSpec, PendingScore, ReplyBody, Runner};

/// Requests a busy runner holds at most: the one it runs plus those waiting in its pipe.
const PIPELINE_DEPTH: usize = 8;
/// Requests are pipelined into a runner only while its last request took less than this.
const PIPELINE_MAX_RUN: Duration = Duration::from_millis(5);
/// Time a runner gets past `SCORING_TIMEOUT_MS` to interrupt itself before it is killed.
const HARD_TIMEOUT_GRACE: Duration = Duration::from_millis(500);
const FIRST_RESTART_DELAY: Duration = Duration::from_millis(100);
const MAX_RESTART_DELAY: Duration = Duration::from_secs(30);
/// How long an idle runner gets to exit on its own at shutdown before it is killed.
const RUNNER_EXIT_GRACE: Duration = Duration::from_secs(5);
/// A runner that served this long without dying resets the back-off.
const HEALTHY_RUN: Duration = Duration::from_secs(10);

/// One HTTP request as the pool sees it.
#[derive(Debug, Clone)]
pub struct ScoreRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub request_id: String,
    pub remote_addr: Option<String>,
    pub body: Bytes,
}

/// What became of a request.
pub enum ScoreOutcome {
    Answered {
        result: ScoreResult,
        body: ReplyBody,
    },
    /// The runner reported a contract error (`kind` from the protocol) with its message.
    Failed { kind: String, message: String },
    /// Past `SCORING_TIMEOUT_MS` and the runner did not interrupt itself: it was killed.
    TimedOut,
    /// The runner died while running this request.
    RunnerExited { pid: u32, how: String },
    /// The queue is full.
    QueueFull,
    /// No runner is alive (all are waiting to restart).
    Unavailable,
    /// The runner broke the protocol or the server is shutting down.
    Internal(String),
}

/// A start-up failure of the first runner: the server must exit 3.
#[derive(Debug)]
pub struct BootFailure {
    /// The protocol's error kind (`init_failed`, `import_failed`, ...) or `runner` when
    /// the Python process itself could not start or died.
    pub kind: String,
    pub message: String,
    pub traceback: Option<String>,
}

struct Job {
    request: ScoreRequest,
    reply: oneshot::Sender<ScoreOutcome>,
}

/// A check run once, on the first successful `load`, before any `init()`: its error
/// is a boot failure (a broken user swagger file, say).
pub type FirstLoadHook = Box<dyn Fn(&LoadResult) -> Result<(), String> + Send + Sync>;

/// How to run the pool.
pub struct PoolConfig {
    pub launch: LaunchSpec,
    pub load_params: LoadParams,
    pub worker_count: usize,
    pub queue_limit: usize,
    pub scoring_timeout: Duration,
    pub on_first_load: FirstLoadHook,
}

struct Shared {
    launch: LaunchSpec,
    on_first_load: FirstLoadHook,
    load_params: LoadParams,
    scoring_timeout: Duration,
    worker_count: usize,
    jobs: Mutex<mpsc::Receiver<Job>>,
    /// Puts jobs that a dead runner never started back in the queue.
    requeue: mpsc::Sender<Job>,
    ready_runners: AtomicUsize,
    /// Slots with a runner that is ready or starting: requests wait for them. When
    /// there is none (every slot is backing off after failures), /score answers 503.
    live_slots: AtomicUsize,
    has_been_ready: AtomicBool,
    load_result: OnceLock<LoadResult>,
    stopping: CancellationToken,
}

/// A cheap handle to the pool.
#[derive(Clone)]
pub struct Pool {
    shared: Arc<Shared>,
    queue: mpsc::Sender<Job>,
    tasks: TaskTracker,
}

impl Pool {
    /// Starts `worker_count` runner slots. A failure of a slot's first start is sent to
    /// `boot_failures` (the server exits 3, like the reference).
    pub fn start(config: PoolConfig, boot_failures: mpsc::UnboundedSender<BootFailure>) -> Pool {
        let PoolConfig {
            launch,
            load_params,
            worker_count,
            queue_limit,
            scoring_timeout,
            on_first_load,
        } = config;
        let (queue, jobs) = mpsc::channel(queue_limit.max(1));
        let shared = Arc::new(Shared {
            launch,
            load_params,
            scoring_timeout,
            worker_count,
            on_first_load,
            jobs: Mutex::new(jobs),
            requeue: queue.clone(),
            ready_runners: AtomicUsize::new(0),
            live_slots: AtomicUsize::new(0),
            has_been_ready: AtomicBool::new(false),
            load_result: OnceLock::new(),
            stopping: CancellationToken::new(),
        });
        let tasks = TaskTracker::new();
        for slot_id in 0..worker_count {
            tasks.spawn(supervise_slot(
                shared.clone(),
                slot_id,
                boot_failures.clone(),
            ));
        }
        tasks.close();
        Pool {
            shared,
            queue,
            tasks,
        }
    }

    /// Runs one request on the next idle runner.
    pub async fn score(&self, request: ScoreRequest) -> ScoreOutcome {
        let shared = &self.shared;
        if shared.stopping.is_cancelled() {
            return ScoreOutcome::Internal("the server is shutting down".into());
        }
        let is_no_runner_coming = shared.live_slots.load(Ordering::Acquire) == 0;
        if shared.has_been_ready.load(Ordering::Acquire) && is_no_runner_coming {
            return ScoreOutcome::Unavailable;
        }
        let (reply, outcome) = oneshot::channel();
        match self.queue.try_send(Job { request, reply }) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => return ScoreOutcome::QueueFull,
            Err(mpsc::error::TrySendError::Closed(_)) => {
                return ScoreOutcome::Internal("the server is shutting down".into())
            }
        }
        outcome.await.unwrap_or_else(|_| {
            ScoreOutcome::Internal("the request was dropped by the worker pool".into())
        })
    }

    /// At least one runner has finished `init()` and is alive.
    pub fn is_ready(&self) -> bool {
        self.shared.ready_runners.load(Ordering::Acquire) > 0
    }

    /// Ready runners and the configured count, for the readiness view.
    pub fn readiness(&self) -> (usize, usize) {
        (
            self.shared.ready_runners.load(Ordering::Acquire),
            self.shared.worker_count,
        )
    }

    /// How `run()` takes its input, once the first runner has loaded the script.
    pub fn input_mode(&self) -> Option<InputMode> {
        self.shared.load_result.get().map(|load| load.input_mode)
    }

    /// Stops every runner. Called once the server's own grace period is over, so a
    /// runner still busy is killed; idle ones are asked to exit (and killed after
    /// `RUNNER_EXIT_GRACE`).
    pub async fn shutdown(&self) {
        self.shared.stopping.cancel();
        let _ = tokio::time::timeout(
            RUNNER_EXIT_GRACE + Duration::from_secs(1),
            self.tasks.wait(),
        )
        .await;
    }
}

/// The life of one slot: start a runner, serve with it until it dies, restart with
/// back-off. Only this task ever owns the slot's runner.
async fn supervise_slot(
    shared: Arc<Shared>,
    slot_id: usize,
    boot_failures: mpsc::UnboundedSender<BootFailure>,
) {
    let mut status = SlotStatus::new(&shared);
    let mut restart_delay = FIRST_RESTART_DELAY;
    let mut is_first_start = true;
    while !shared.stopping.is_cancelled() {
        status.enter(SlotState::Starting);
        let started = tokio::select! {
            started = start_runner(&shared, slot_id) => started,
            _ = shared.stopping.cancelled() => break,
        };
        let wait = match started {
            Ok(runner) => {
                is_first_start = false;
                let began = Instant::now();
                status.enter(SlotState::Ready);
                shared.has_been_ready.store(true, Ordering::Release);
                let mut answered = 0;
                let ended = serve_jobs(&shared, &runner, &mut answered).await;
                if matches!(ended, SlotEnd::Stopping) {
                    status.enter(SlotState::Stopped);
                    runner.shutdown(RUNNER_EXIT_GRACE).await;
                    break;
                }
                // Requests wait for a runner that is on its way back, not 503.
                status.enter(SlotState::Starting);
                // A runner that answered requests (or lived a while) is replaced at
                // once; one that dies before answering anything is crash-looping and
                // comes back with growing delays.
                let is_crash_looping = answered == 0 && began.elapsed() < HEALTHY_RUN;
                if !is_crash_looping {
                    restart_delay = FIRST_RESTART_DELAY;
                }
                let how = match &ended {
                    SlotEnd::RunnerGone(how) => how.as_str(),
                    SlotEnd::Stopping => "",
                };
                if is_crash_looping {
                    tracing::warn!(target: "azmlinfsrv", "Worker {slot_id}: the scoring process (pid {}) ended with {how} before answering any request; starting a new one in {:.1} s", runner.pid(), restart_delay.as_secs_f64());
                    Some(restart_delay)
                } else {
                    tracing::warn!(target: "azmlinfsrv", "Worker {slot_id}: the scoring process (pid {}) ended with {how}; starting a new one", runner.pid());
                    None
                }
            }
            Err(failure) if is_first_start => {
                status.enter(SlotState::Stopped);
                let _ = boot_failures.send(failure);
                return;
            }
            Err(failure) => {
                tracing::error!(target: "azmlinfsrv", "Worker {slot_id}: the scoring process failed to start again: {}{}; retrying in {:.1} s",
                    failure.message,
                    failure.traceback.map(|t| format!("\n{t}")).unwrap_or_default(),
                    restart_delay.as_secs_f64());
                Some(restart_delay)
            }
        };
        if let Some(delay) = wait {
            status.enter(SlotState::BackingOff);
            if shared.live_slots.load(Ordering::Acquire) == 0 {
                answer_queue_unavailable(&shared);
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shared.stopping.cancelled() => break,
            }
            restart_delay = (restart_delay * 2).min(MAX_RESTART_DELAY);
        }
    }
    status.enter(SlotState::Stopped);
}

/// With no runner ready or starting, the requests already queued would wait for the
/// whole back-off: they get the same 503 that new requests get.
/// (A locked queue means a runner came back meanwhile and is waiting for work.)
fn answer_queue_unavailable(shared: &Shared) {
    let Ok(mut jobs) = shared.jobs.try_lock() else {
        return;
    };
    while let Ok(job) = jobs.try_recv() {
        let _ = job.reply.send(ScoreOutcome::Unavailable);
    }
}

/// Where a slot is in its life; the pool counts slots per state to decide whether a
/// request should wait (a runner is ready or on its way) or get 503 at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotState {
    Starting,
    Ready,
    BackingOff,
    Stopped,
}

/// A slot's state, kept in step with the pool's counters.
struct SlotStatus<'a> {
    shared: &'a Shared,
    state: SlotState,
}

impl<'a> SlotStatus<'a> {
    fn new(shared: &'a Shared) -> Self {
        SlotStatus {
            shared,
            state: SlotState::Stopped,
        }
    }

    /// Counts the new state before uncounting the old one, so that a slot going from
    /// ready to starting is never seen as neither.
    fn enter(&mut self, state: SlotState) {
        if state == self.state {
            return;
        }
        for counter in self.counters(state) {
            counter.fetch_add(1, Ordering::AcqRel);
        }
        for counter in self.counters(self.state) {
            counter.fetch_sub(1, Ordering::AcqRel);
        }
        self.state = state;
    }

    fn counters(&self, state: SlotState) -> Vec<&'a AtomicUsize> {
        let shared = self.shared;
        match state {
            SlotState::Starting => vec![&shared.live_slots],
            SlotState::Ready => vec![&shared.live_slots, &shared.ready_runners],
            SlotState::BackingOff | SlotState::Stopped => Vec::new(),
        }
    }
}

/// Spawns a runner, loads the script and runs `init()`.
async fn start_runner(shared: &Shared, slot_id: usize) -> Result<Runner, BootFailure> {
    let runner = Runner::spawn(&shared.launch, slot_id)
        .await
        .map_err(|err| boot_failure("start the Python runner", err))?;
    tracing::info!(target: "azmlinfsrv", "Started a scoring process: pid {}, Python {} ({})", runner.pid(), runner.hello.python_version, runner.hello.python_executable);
    let load = runner
        .load(&shared.load_params)
        .await
        .map_err(|err| boot_failure("load the scoring script", err))?;
    if shared.load_result.get().is_none() {
        // Serialised by the OnceLock: exactly one slot runs the hook.
        let mut hook_result = Ok(());
        shared.load_result.get_or_init(|| {
            hook_result = (shared.on_first_load)(&load);
            load
        });
        hook_result.map_err(|message| BootFailure {
            kind: "load_hook".into(),
            message,
            traceback: None,
        })?;
    }
    runner
        .init()
        .await
        .map_err(|err| boot_failure("run init()", err))?;
    Ok(runner)
}

fn boot_failure(step: &str, error: CallError) -> BootFailure {
    match error {
        CallError::Rpc(rpc) => BootFailure {
            kind: rpc.kind().to_string(),
            message: rpc.message.clone(),
            traceback: rpc.data.and_then(|data| data.traceback),
        },
        CallError::Exited(how) => BootFailure {
            kind: "runner".into(),
            message: format!("the Python process ended with {how} while trying to {step}"),
            traceback: None,
        },
        CallError::Broken(what) => BootFailure {
            kind: "runner".into(),
            message: format!("could not {step}: {what}"),
            traceback: None,
        },
    }
}

enum SlotEnd {
    Stopping,
    RunnerGone(String),
}

/// A request written to the runner and not answered yet.
struct InFlight {
    job: Job,
    pending: PendingScore,
}

/// Takes jobs from the shared queue while the runner lives. An idle runner waits for
/// the next job; a busy one also writes further jobs into its pipe (up to
/// `PIPELINE_DEPTH`) when no other runner is idle, so that under load the runner goes
/// from one request to the next without waiting for a round trip through the server.
/// `answered` counts the requests the runner answered (the restart policy reads it).
/// At shutdown (which comes after the server's grace period) work still running is
/// cut off.
async fn serve_jobs(shared: &Shared, runner: &Runner, answered: &mut usize) -> SlotEnd {
    let mut in_flight: VecDeque<InFlight> = VecDeque::new();
    // When the runner started on the request at the front: the previous one's end.
    let mut front_started = Instant::now();
    // How long the last request took in the runner.
    let mut last_run = Duration::MAX;
    loop {
        if in_flight.is_empty() {
            let job = tokio::select! {
                // Idle runners take turns at the queue; the lock is released with the job.
                job = async { shared.jobs.lock().await.recv().await } => job,
                how = runner.exited() => return SlotEnd::RunnerGone(how),
                _ = shared.stopping.cancelled() => return SlotEnd::Stopping,
            };
            let Some(job) = job else {
                return SlotEnd::Stopping;
            };
            front_started = Instant::now();
            if let Err(how) = send_job(shared, runner, job, &mut in_flight).await {
                return SlotEnd::RunnerGone(how);
            }
            continue;
        }
        // Pipelining pays off for quick requests only, and only when every runner is up
        // and busy: otherwise a queued request could wait behind a slow one while
        // another runner is (or is about to be) free. The queue's lock is held only by
        // an idle runner waiting for work: when it is taken, leave the job to it.
        let is_pipelining_useful = last_run < PIPELINE_MAX_RUN
            && shared.ready_runners.load(Ordering::Acquire) >= shared.worker_count;
        while is_pipelining_useful && in_flight.len() < PIPELINE_DEPTH {
            let Ok(mut jobs) = shared.jobs.try_lock() else {
                break;
            };
            let Ok(job) = jobs.try_recv() else {
                break;
            };
            drop(jobs);
            if let Err(how) = send_job(shared, runner, job, &mut in_flight).await {
                requeue(shared, in_flight);
                return SlotEnd::RunnerGone(how);
            }
        }
        let Some(front) = in_flight.pop_front() else {
            continue;
        };
        let hard_deadline = front_started + shared.scoring_timeout + HARD_TIMEOUT_GRACE;
        let reply = tokio::select! {
            reply = tokio::time::timeout_at(hard_deadline.into(), front.pending.reply()) => reply,
            _ = shared.stopping.cancelled() => {
                runner.kill();
                return SlotEnd::Stopping;
            }
        };
        if matches!(reply, Ok(Ok(_)) | Ok(Err(CallError::Rpc(_)))) {
            *answered += 1;
        }
        let outcome = match reply {
            Ok(Ok(reply)) => {
                let _ = front.job.reply.send(ScoreOutcome::Answered {
                    result: reply.result,
                    body: reply.body,
                });
                if let Some(done) = reply.stream_done {
                    // The runner is busy until its generator is exhausted.
                    let _ = done.await;
                }
                last_run = front_started.elapsed();
                front_started = Instant::now();
                continue;
            }
            Ok(Err(CallError::Rpc(error))) => ScoreOutcome::Failed {
                kind: error.kind().to_string(),
                message: error.message,
            },
            Ok(Err(CallError::Broken(what))) => ScoreOutcome::Internal(what),
            Ok(Err(CallError::Exited(how))) => {
                let _ = front.job.reply.send(ScoreOutcome::RunnerExited {
                    pid: runner.pid(),
                    how,
                });
                requeue(shared, in_flight);
                return SlotEnd::RunnerGone(runner.exited().await);
            }
            Err(_) => {
                tracing::error!(target: "azmlinfsrv", "The scoring process (pid {}) did not return within the scoring timeout of {} ms (stuck in native code?); killing it and starting a new one", runner.pid(), shared.scoring_timeout.as_millis());
                runner.kill();
                let _ = front.job.reply.send(ScoreOutcome::TimedOut);
                requeue(shared, in_flight);
                return SlotEnd::RunnerGone(runner.exited().await);
            }
        };
        let _ = front.job.reply.send(outcome);
        last_run = front_started.elapsed();
        front_started = Instant::now();
    }
}

/// Writes a job to the runner, unless its client has gone away meanwhile. An error
/// means the runner is gone; the job never started and goes back to the queue.
async fn send_job(
    shared: &Shared,
    runner: &Runner,
    job: Job,
    in_flight: &mut VecDeque<InFlight>,
) -> Result<(), String> {
    if job.reply.is_closed() {
        return Ok(());
    }
    let request = &job.request;
    let params = ScoreParams {
        method: &request.method,
        path: &request.path,
        query: &request.query,
        headers: request
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect(),
        request_id: &request.request_id,
        remote_addr: request.remote_addr.as_deref(),
    };
    match runner.send_score(&params, &request.body).await {
        Ok(pending) => {
            in_flight.push_back(InFlight { job, pending });
            Ok(())
        }
        Err(_) => {
            requeue_job(shared, job);
            Err(runner.exited().await)
        }
    }
}

/// Puts requests that a dead runner never started back in the queue for another
/// runner (or this slot's next one); they were not run, so nothing is lost.
fn requeue(shared: &Shared, in_flight: VecDeque<InFlight>) {
    for InFlight { job, .. } in in_flight {
        requeue_job(shared, job);
    }
}

fn requeue_job(shared: &Shared, job: Job) {
    if job.reply.is_closed() {
        return;
    }
    if let Err(mpsc::error::TrySendError::Full(job) | mpsc::error::TrySendError::Closed(job)) =
        shared.requeue.try_send(job)
    {
        let _ = job.reply.send(ScoreOutcome::QueueFull);
    }
}
