//! The worker pool: owns the worker slots, hands each request to an idle worker through
//! a bounded queue, enforces the hard timeout, restarts workers that die, and knows when
//! the service is ready. It never builds an HTTP response.
//!
//! It talks to its workers through two small traits, [`Launcher`] and [`Worker`]: the
//! real ones are Python processes (`worker::process`); the unit tests (`tests.rs`) use
//! a fake worker, so that every policy here is tested in milliseconds without Python.
//!
//! - `queue`: the bounded queue and the stack of idle slots;
//! - `slot`: the life of one slot (start, serve, restart with back-off);
//! - `reload`: a new generation of workers replacing the running one (`--reload`).

mod queue;
mod reload;
mod slot;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::process::{CallError, ReplyBody, ScoreReply};
use super::wire::{CodeLocation, ErrorKind, InputMode, LoadResult, RpcError, ScoreResult};
use queue::{Abandonable, JobQueue, Refused};
use reload::{Mailbox, Reloads};

/// One HTTP request as the pool sees it.
#[derive(Debug, Clone)]
pub struct ScoreRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    /// Names as the runner shows them to Python (see `http::routes`).
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
    /// The runner reported a contract error.
    Failed(RpcError),
    /// Past `SCORING_TIMEOUT_MS` and the worker did not interrupt itself: it was killed.
    TimedOut,
    /// The worker died while running this request.
    WorkerExited { pid: u32, how: String },
    /// The queue is full.
    QueueFull,
    /// No worker is alive (all are waiting to restart).
    Unavailable,
    /// The server is stopping: the request was queued or running past the grace period.
    ShuttingDown,
    /// The runner broke the protocol (or the pool lost the request: a bug).
    Internal(String),
}

/// What went wrong when a slot's worker could not start.
#[derive(Debug, Clone, PartialEq)]
pub enum BootCause {
    /// The runner reported it: the script is missing, failed to import, is malformed,
    /// or its `init()` raised.
    Script(ErrorKind),
    /// The Python process could not start, died, or broke the protocol.
    Process,
    /// The first load's check (the OpenAPI documents) refused it.
    FirstLoadCheck,
}

/// A start-up failure of a slot's worker (for the first start: the server exits 3).
#[derive(Debug, Clone)]
pub struct BootFailure {
    pub cause: BootCause,
    pub message: String,
    pub traceback: Option<String>,
    /// `ValueError: bad value`, when Python raised.
    pub exception: Option<String>,
    /// Where in the user's code it was raised (for a `SyntaxError`: the bad line).
    pub location: Option<CodeLocation>,
}

impl BootFailure {
    /// A failed call of the start-up step `step` ("load the scoring script").
    pub fn from_call(step: &str, error: CallError) -> BootFailure {
        match error {
            CallError::Rpc(rpc) => {
                let cause = BootCause::Script(rpc.kind());
                let data = rpc.data.map(|data| *data).unwrap_or_default();
                let exception = data.exception_type.map(|kind| {
                    let message = data.exception_message.unwrap_or_default();
                    format!("{kind}: {message}")
                });
                BootFailure {
                    cause,
                    message: rpc.message,
                    traceback: data.traceback,
                    exception,
                    location: data.location,
                }
            }
            CallError::Exited(how) => BootFailure::process(format!(
                "the Python process ended with {how} while trying to {step}"
            )),
            CallError::Broken(what) => BootFailure::process(format!("could not {step}: {what}")),
        }
    }

    fn process(message: String) -> BootFailure {
        BootFailure {
            cause: BootCause::Process,
            message,
            traceback: None,
            exception: None,
            location: None,
        }
    }

    /// One line that points at the error: `score.py:12: ValueError: bad value`, with
    /// the file shown relative to `base` when it is under it; the message otherwise.
    pub fn pointer(&self, base: &std::path::Path) -> String {
        let Some(location) = self.location.as_ref().filter(|l| !l.file.is_empty()) else {
            return self.message.clone();
        };
        let file = std::path::Path::new(&location.file);
        let shown = file.strip_prefix(base).unwrap_or(file).display();
        let line = location
            .line
            .map(|line| format!(":{line}"))
            .unwrap_or_default();
        let what = self.exception.as_deref().unwrap_or(&self.message);
        format!("{shown}{line}: {what}")
    }
}

/// The answer to a request handed to a worker, once the worker sends it; when the
/// worker ends first, `CallError::Exited` once the answers it wrote before ending have
/// had their chance to arrive (the pool's at-most-once rule relies on it).
pub type PendingAnswer = BoxFuture<'static, Result<ScoreReply, CallError>>;

/// What the pool needs of one live worker.
pub trait Worker: Send + Sync + 'static {
    fn pid(&self) -> u32;
    /// Hands one request to the worker without waiting for its answer: the pool may
    /// keep a few in a busy worker, which answers them in order, one at a time. Never
    /// blocks (a full pipe holds the worker's own writer, not the caller).
    fn send_score(&self, request: &ScoreRequest) -> Result<PendingAnswer, CallError>;
    /// Resolves when the process has ended, with how it ended.
    fn exited(&self) -> BoxFuture<'static, String>;
    /// Kills the process now (hard timeout, shutdown past grace).
    fn kill(&self);
    /// Asks the process to exit, and kills it if it has not within `grace`.
    fn shutdown(&self, grace: Duration) -> BoxFuture<'_, ()>;
    /// A debugger is attached: its request may be stopped at a breakpoint, so the
    /// hard deadline does not kill it.
    fn is_being_debugged(&self) -> bool {
        false
    }
}

/// A worker that has loaded the script: `init()` is still to run.
pub struct Loaded {
    pub worker: Arc<dyn Worker>,
    pub load: LoadResult,
    /// Runs the script's `init()` in that worker.
    pub init: BoxFuture<'static, Result<(), BootFailure>>,
}

/// How the pool gets new workers.
pub trait Launcher: Send + Sync + 'static {
    /// Starts the worker of slot `slot_id` and loads the script in it.
    fn launch(&self, slot_id: usize) -> BoxFuture<'_, Result<Loaded, BootFailure>>;
}

/// A check run once, on the first successful `load`, before any `init()`: its error
/// is a boot failure (a broken user swagger file, say).
pub type FirstLoadHook = Box<dyn Fn(&LoadResult) -> Result<(), String> + Send + Sync>;

/// The pool's timing policies; `Default` is what the server uses.
#[derive(Debug, Clone)]
pub struct Timings {
    /// Time a worker gets past `SCORING_TIMEOUT_MS` to interrupt itself before it is
    /// killed.
    pub hard_timeout_grace: Duration,
    pub first_restart_delay: Duration,
    pub max_restart_delay: Duration,
    /// A worker that served this long without dying resets the back-off.
    pub healthy_run: Duration,
    /// How long an idle worker gets to exit on its own at shutdown before it is killed.
    pub exit_grace: Duration,
    /// Requests are pipelined into a worker only while its last request took less.
    pub pipeline_max_run: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            hard_timeout_grace: Duration::from_millis(500),
            first_restart_delay: Duration::from_millis(100),
            max_restart_delay: Duration::from_secs(30),
            healthy_run: Duration::from_secs(10),
            exit_grace: Duration::from_secs(5),
            pipeline_max_run: Duration::from_millis(5),
        }
    }
}

/// How to run the pool.
pub struct PoolConfig {
    pub launcher: Arc<dyn Launcher>,
    pub worker_count: usize,
    pub queue_limit: usize,
    /// `None`: no scoring timeout (`SCORING_TIMEOUT_MS=0`), so no hard deadline either.
    pub scoring_timeout: Option<Duration>,
    pub on_first_load: FirstLoadHook,
    pub timings: Timings,
}

/// One request waiting for, or held by, a worker.
struct Job {
    request: ScoreRequest,
    reply: oneshot::Sender<ScoreOutcome>,
}

impl Abandonable for Job {
    fn is_abandoned(&self) -> bool {
        self.reply.is_closed()
    }
}

/// What the slots and the handle share.
struct Shared {
    launcher: Arc<dyn Launcher>,
    on_first_load: FirstLoadHook,
    scoring_timeout: Option<Duration>,
    timings: Timings,
    worker_count: usize,
    queue: JobQueue<Job>,
    ready_workers: AtomicUsize,
    /// Workers running a request (for the metrics).
    busy_workers: AtomicUsize,
    /// Slots replacing a worker that ended, or waiting to (for the metrics).
    restarting_slots: AtomicUsize,
    /// Slots with a worker that is ready or starting: requests wait for them. When
    /// there is none (every slot is backing off after failures), /score answers 503.
    live_slots: AtomicUsize,
    has_been_ready: AtomicBool,
    load_result: OnceLock<LoadResult>,
    stopping: CancellationToken,
    /// One per slot: its replacement worker after a reload.
    mailboxes: Vec<Mailbox>,
    reloads: Reloads,
    /// Old workers finishing their last requests after a reload.
    retiring: TaskTracker,
}

/// A cheap handle to the pool.
#[derive(Clone)]
pub struct Pool {
    shared: Arc<Shared>,
    tasks: TaskTracker,
}

impl Pool {
    /// Starts `worker_count` worker slots. A failure of a slot's first start is sent to
    /// `boot_failures` (the server exits 3, like the reference).
    pub fn start(config: PoolConfig, boot_failures: mpsc::UnboundedSender<BootFailure>) -> Pool {
        let shared = Arc::new(Shared {
            launcher: config.launcher,
            on_first_load: config.on_first_load,
            scoring_timeout: config.scoring_timeout,
            timings: config.timings,
            worker_count: config.worker_count,
            queue: JobQueue::new(config.queue_limit),
            ready_workers: AtomicUsize::new(0),
            busy_workers: AtomicUsize::new(0),
            restarting_slots: AtomicUsize::new(0),
            live_slots: AtomicUsize::new(0),
            has_been_ready: AtomicBool::new(false),
            load_result: OnceLock::new(),
            stopping: CancellationToken::new(),
            mailboxes: (0..config.worker_count).map(|_| Mailbox::new()).collect(),
            reloads: Reloads::new(),
            retiring: TaskTracker::new(),
        });
        let tasks = TaskTracker::new();
        for slot_id in 0..config.worker_count {
            tasks.spawn(slot::supervise(
                shared.clone(),
                slot_id,
                boot_failures.clone(),
            ));
        }
        tasks.close();
        Pool { shared, tasks }
    }

    /// Runs one request on the next idle worker.
    pub async fn score(&self, request: ScoreRequest) -> ScoreOutcome {
        let shared = &self.shared;
        if shared.stopping.is_cancelled() {
            return ScoreOutcome::ShuttingDown;
        }
        let is_no_worker_coming = shared.live_slots.load(Ordering::Acquire) == 0;
        if shared.has_been_ready.load(Ordering::Acquire) && is_no_worker_coming {
            return ScoreOutcome::Unavailable;
        }
        let (reply, outcome) = oneshot::channel();
        match shared.queue.submit(Job { request, reply }) {
            Ok(()) => {}
            Err(Refused::Full(_)) => return ScoreOutcome::QueueFull,
            Err(Refused::Closed(_)) => return ScoreOutcome::ShuttingDown,
        }
        outcome.await.unwrap_or_else(|_| {
            ScoreOutcome::Internal("the request was dropped by the worker pool".into())
        })
    }

    /// Replaces every worker with a new one running the script as it is now on disk:
    /// each new worker is launched and runs `init()`, and only when all are ready does
    /// each slot swap to its new worker (when its old one is idle: the old one finishes
    /// what it holds, then exits), so requests are served throughout. If any new worker
    /// fails to start, the new ones are discarded and the old ones keep serving. Asked
    /// while a reload runs, it waits for one more reload that starts after it.
    /// `Ok(n)`: `n` new workers are ready.
    pub async fn reload(&self) -> Result<usize, BootFailure> {
        reload::request(&self.shared).await
    }

    /// At least one worker has finished `init()` and is alive.
    pub fn is_ready(&self) -> bool {
        self.shared.ready_workers.load(Ordering::Acquire) > 0
    }

    /// Ready workers and the configured count, for the readiness view.
    pub fn readiness(&self) -> (usize, usize) {
        (
            self.shared.ready_workers.load(Ordering::Acquire),
            self.shared.worker_count,
        )
    }

    /// The pool's state as the metrics show it (read when scraped, not kept up to date
    /// anywhere else).
    pub fn snapshot(&self) -> crate::metrics::PoolSnapshot {
        let shared = &self.shared;
        crate::metrics::PoolSnapshot {
            configured: shared.worker_count,
            ready: shared.ready_workers.load(Ordering::Acquire),
            busy: shared.busy_workers.load(Ordering::Acquire),
            restarting: shared.restarting_slots.load(Ordering::Acquire),
            queued: shared.queue.len(),
        }
    }

    /// How `run()` takes its input, once the first worker has loaded the script.
    pub fn input_mode(&self) -> Option<InputMode> {
        self.shared.load_result.get().map(|load| load.input_mode)
    }

    /// Stops every worker. Called once the server's own grace period is over, so a
    /// worker still busy is killed; idle ones are asked to exit (and killed after the
    /// exit grace). Requests still queued are answered as shut out.
    pub async fn shutdown(&self) {
        self.shared.stopping.cancel();
        for job in self.shared.queue.close() {
            let _ = job.reply.send(ScoreOutcome::ShuttingDown);
        }
        self.shared.retiring.close();
        let _ = tokio::time::timeout(
            self.shared.timings.exit_grace + Duration::from_secs(1),
            async {
                self.tasks.wait().await;
                self.shared.retiring.wait().await;
            },
        )
        .await;
    }
}
