//! The life of one worker slot: start a worker, serve requests with it until it dies,
//! restart it (with back-off when it is crash-looping). Only this task ever owns the
//! slot's worker.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::mpsc;

use super::{BootCause, BootFailure, Job, PendingAnswer, ScoreOutcome, Shared, Worker};
use crate::metrics::{self, RestartCause, TimeoutKind};
use crate::worker::answer_within;
use crate::worker::process::CallError;
use crate::worker::wire::ErrorKind;

/// Requests a busy worker holds at most: the one it runs plus those waiting in its pipe.
pub const PIPELINE_DEPTH: usize = 8;
/// Far enough to mean "never" for a request without a scoring timeout.
const NO_DEADLINE: Duration = Duration::from_secs(365 * 86_400);

/// How a worker's service ended.
enum SlotEnd {
    /// The server is stopping.
    Stopping,
    /// The worker died on its own (crash, exit, OOM kill).
    Died(String),
    /// The server killed it on purpose (hard timeout): not a sign of crash-looping.
    Killed(String),
    /// A reload handed the slot this new worker; the old one holds no request.
    Replaced(Arc<dyn Worker>),
}

/// Where a slot is in its life; the pool counts slots per state to decide whether a
/// request should wait (a worker is ready or on its way) or get 503 at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotState {
    Starting,
    /// Starting a worker to replace one that ended (counted apart for the metrics).
    Restarting,
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
            SlotState::Restarting => vec![&shared.live_slots, &shared.restarting_slots],
            SlotState::Ready => vec![&shared.live_slots, &shared.ready_workers],
            SlotState::BackingOff => vec![&shared.restarting_slots],
            SlotState::Stopped => Vec::new(),
        }
    }
}

/// Counts the slot's worker as busy while it holds requests, and no longer once its
/// service ends, however it ends.
struct BusyMark<'a> {
    busy_workers: &'a AtomicUsize,
    is_busy: bool,
}

impl<'a> BusyMark<'a> {
    fn new(busy_workers: &'a AtomicUsize) -> Self {
        BusyMark {
            busy_workers,
            is_busy: false,
        }
    }

    /// Touches the shared counter only on a change: not once per request under load.
    fn set(&mut self, is_busy: bool) {
        if is_busy != self.is_busy {
            if is_busy {
                self.busy_workers.fetch_add(1, Ordering::AcqRel);
            } else {
                self.busy_workers.fetch_sub(1, Ordering::AcqRel);
            }
            self.is_busy = is_busy;
        }
    }
}

impl Drop for BusyMark<'_> {
    fn drop(&mut self) {
        self.set(false);
    }
}

/// The slot's task: start, serve, restart, until the pool stops.
pub(super) async fn supervise(
    shared: Arc<Shared>,
    slot_id: usize,
    boot_failures: mpsc::UnboundedSender<BootFailure>,
) {
    let timings = shared.timings.clone();
    let mut status = SlotStatus::new(&shared);
    let mut restart_delay = timings.first_restart_delay;
    let mut is_first_start = true;
    let mailbox = &shared.mailboxes[slot_id];
    let mut replacement: Option<Arc<dyn Worker>> = None;
    while !shared.stopping.is_cancelled() {
        // A reload's worker is ready already: the slot stays ready through the swap.
        let started = match replacement.take().or_else(|| mailbox.take()) {
            Some(worker) => Ok(worker),
            None => {
                status.enter(if is_first_start {
                    SlotState::Starting
                } else {
                    SlotState::Restarting
                });
                tokio::select! {
                    started = start_worker(&shared, slot_id) => started,
                    _ = shared.stopping.cancelled() => break,
                }
            }
        };
        let wait = match started {
            Ok(worker) => {
                is_first_start = false;
                let began = Instant::now();
                status.enter(SlotState::Ready);
                shared.has_been_ready.store(true, Ordering::Release);
                metrics::worker_ready();
                let mut answered = 0;
                let ended = serve(&shared, slot_id, worker.as_ref(), &mut answered).await;
                let (how, is_killed_on_purpose) = match ended {
                    SlotEnd::Stopping => {
                        status.enter(SlotState::Stopped);
                        worker.shutdown(timings.exit_grace).await;
                        break;
                    }
                    SlotEnd::Replaced(new_worker) => {
                        tracing::info!(target: "azmlinfsrv", "Worker {slot_id}: the new code runs in pid {}; the old process (pid {}) exits", new_worker.pid(), worker.pid());
                        super::reload::retire(&shared, worker);
                        replacement = Some(new_worker);
                        restart_delay = timings.first_restart_delay;
                        continue;
                    }
                    SlotEnd::Died(how) => {
                        metrics::crashed();
                        metrics::restarted(RestartCause::Crash);
                        (how, false)
                    }
                    SlotEnd::Killed(how) => {
                        metrics::restarted(RestartCause::HardTimeout);
                        (how, true)
                    }
                };
                // Requests wait for a worker that is on its way back, not 503.
                status.enter(SlotState::Restarting);
                // A worker that answered requests (or lived a while, or was killed by
                // us) is replaced at once; one that dies before answering anything is
                // crash-looping and comes back with growing delays.
                let is_crash_looping =
                    !is_killed_on_purpose && answered == 0 && began.elapsed() < timings.healthy_run;
                if is_crash_looping {
                    tracing::warn!(target: "azmlinfsrv", "Worker {slot_id}: the scoring process (pid {}) ended with {how} before answering any request; starting a new one in {:.1} s", worker.pid(), restart_delay.as_secs_f64());
                    Some(restart_delay)
                } else {
                    restart_delay = timings.first_restart_delay;
                    tracing::warn!(target: "azmlinfsrv", "Worker {slot_id}: the scoring process (pid {}) ended with {how}; starting a new one", worker.pid());
                    None
                }
            }
            Err(failure) if is_first_start => {
                status.enter(SlotState::Stopped);
                let _ = boot_failures.send(failure);
                return;
            }
            Err(failure) => {
                metrics::restarted(match failure.cause {
                    BootCause::Script(ErrorKind::InitFailed) => RestartCause::InitFailed,
                    _ => RestartCause::StartFailed,
                });
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
                // No worker ready or starting: the requests already queued would wait
                // for the whole back-off; they get the 503 new requests get.
                for job in shared.queue.drain() {
                    let _ = job.reply.send(ScoreOutcome::Unavailable);
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                // A reload's new worker ends the back-off at once.
                _ = mailbox.posted() => {}
                _ = shared.stopping.cancelled() => break,
            }
            restart_delay = (restart_delay * 2).min(timings.max_restart_delay);
        }
    }
    status.enter(SlotState::Stopped);
    // A reload's worker the slot never served with (the server stopped first).
    if let Some(unused) = replacement.take().or_else(|| mailbox.take()) {
        unused.shutdown(timings.exit_grace).await;
    }
}

/// Launches a worker, loads the script (running the first-load check once per pool)
/// and runs `init()`.
async fn start_worker(shared: &Shared, slot_id: usize) -> Result<Arc<dyn Worker>, BootFailure> {
    let loaded = shared.launcher.launch(slot_id).await?;
    if shared.load_result.get().is_none() {
        // Serialised by the OnceLock: exactly one slot runs the hook.
        let mut hook_result = Ok(());
        shared.load_result.get_or_init(|| {
            hook_result = (shared.on_first_load)(&loaded.load);
            loaded.load.clone()
        });
        hook_result.map_err(|message| BootFailure {
            cause: BootCause::FirstLoadCheck,
            message,
            traceback: None,
            exception: None,
            location: None,
        })?;
    }
    let init_started = Instant::now();
    loaded.init.await?;
    metrics::observe_init(init_started.elapsed());
    Ok(loaded.worker)
}

/// A request handed to the worker and not answered yet.
struct InFlight {
    job: Job,
    answer: PendingAnswer,
}

/// Takes jobs from the queue while the worker lives. An idle worker waits for the next
/// job; a busy one also takes further jobs into its pipe (up to `PIPELINE_DEPTH`) when
/// every worker is busy with quick requests, so that under load it goes from one
/// request to the next without waiting for a round trip through the server.
///
/// A request runs at most once: a worker runs its requests one at a time, in order,
/// and answers each before it starts the next. So when it dies, the front request is
/// the one it was running, and those behind it never started: only they go back to
/// the queue. `answered` counts the requests it answered (the restart policy reads it).
async fn serve(
    shared: &Shared,
    slot_id: usize,
    worker: &dyn Worker,
    answered: &mut usize,
) -> SlotEnd {
    let mailbox = &shared.mailboxes[slot_id];
    let mut in_flight: VecDeque<InFlight> = VecDeque::new();
    // When the worker started on the request at the front: the previous one's end.
    let mut front_started = Instant::now();
    // How long the last request took in the worker.
    let mut last_run = Duration::MAX;
    let mut busy = BusyMark::new(&shared.busy_workers);
    loop {
        busy.set(!in_flight.is_empty());
        if in_flight.is_empty() {
            // Idle: the moment to swap to a reloaded worker, with nothing to lose.
            if let Some(new_worker) = mailbox.take() {
                return SlotEnd::Replaced(new_worker);
            }
            let job = tokio::select! {
                job = shared.queue.next() => job,
                _ = mailbox.posted() => continue,
                how = worker.exited() => return SlotEnd::Died(how),
                _ = shared.stopping.cancelled() => return SlotEnd::Stopping,
            };
            let Some(job) = job else {
                return SlotEnd::Stopping;
            };
            front_started = Instant::now();
            if let Err(error) = hand_over(worker, job, &mut in_flight) {
                return SlotEnd::Died(exit_text(shared, worker, error).await);
            }
            continue;
        }
        // Pipelining pays off for quick requests only, and only when every worker is up
        // and busy: otherwise a queued request could wait behind a slow one while
        // another worker is (or is about to be) free.
        // A slot with a replacement waiting takes no more: its old worker drains.
        let is_pipelining_useful = last_run < shared.timings.pipeline_max_run
            && shared.ready_workers.load(Ordering::Acquire) >= shared.worker_count
            && !mailbox.has_mail();
        while is_pipelining_useful && in_flight.len() < PIPELINE_DEPTH {
            let Some(job) = shared.queue.try_take() else {
                break;
            };
            if let Err(error) = hand_over(worker, job, &mut in_flight) {
                let how = exit_text(shared, worker, error).await;
                fail_front_requeue_rest(shared, worker, in_flight, &how);
                return SlotEnd::Died(how);
            }
        }
        let Some(front) = in_flight.pop_front() else {
            continue;
        };
        let hard_deadline = front_started
            + shared.scoring_timeout.map_or(NO_DEADLINE, |timeout| {
                timeout + shared.timings.hard_timeout_grace
            });
        let answer = tokio::select! {
            answer = answer_within(hard_deadline, || worker.is_being_debugged(), front.answer) => answer,
            _ = shared.stopping.cancelled() => {
                // Past the server's grace period: what is running is cut off, and
                // its client (and those behind it) are told so.
                worker.kill();
                let _ = front.job.reply.send(ScoreOutcome::ShuttingDown);
                for flight in in_flight {
                    let _ = flight.job.reply.send(ScoreOutcome::ShuttingDown);
                }
                return SlotEnd::Stopping;
            }
        };
        if matches!(answer, Ok(Ok(_)) | Ok(Err(CallError::Rpc(_)))) {
            *answered += 1;
        }
        let outcome = match answer {
            Ok(Ok(reply)) => {
                if let Some(run_ms) = reply.result.run_ms {
                    metrics::observe_run(run_ms);
                }
                let _ = front.job.reply.send(ScoreOutcome::Answered {
                    result: reply.result,
                    body: reply.body,
                });
                if let Some(done) = reply.stream_done {
                    // The worker is busy until its generator is exhausted.
                    let _ = done.await;
                }
                last_run = front_started.elapsed();
                front_started = Instant::now();
                continue;
            }
            Ok(Err(CallError::Rpc(error))) => {
                if error.kind() == ErrorKind::Timeout {
                    metrics::timed_out(TimeoutKind::Soft);
                }
                ScoreOutcome::Failed(error)
            }
            Ok(Err(CallError::Broken(what))) => ScoreOutcome::Internal(what),
            Ok(Err(CallError::Exited(how))) => {
                let _ = front.job.reply.send(ScoreOutcome::WorkerExited {
                    pid: worker.pid(),
                    how: how.clone(),
                });
                requeue_unstarted(shared, in_flight);
                return SlotEnd::Died(how);
            }
            Err(_) => {
                tracing::error!(target: "azmlinfsrv", "The scoring process (pid {}) did not return within the scoring timeout of {} ms (stuck in native code?); killing it and starting a new one", worker.pid(), shared.scoring_timeout.unwrap_or_default().as_millis());
                worker.kill();
                metrics::timed_out(TimeoutKind::Hard);
                let _ = front.job.reply.send(ScoreOutcome::TimedOut);
                requeue_unstarted(shared, in_flight);
                return SlotEnd::Killed(worker.exited().await);
            }
        };
        let _ = front.job.reply.send(outcome);
        last_run = front_started.elapsed();
        front_started = Instant::now();
    }
}

/// Hands a job to the worker, unless its client has gone away meanwhile.
fn hand_over(
    worker: &dyn Worker,
    job: Job,
    in_flight: &mut VecDeque<InFlight>,
) -> Result<(), Box<Job>> {
    if job.reply.is_closed() {
        return Ok(());
    }
    match worker.send_score(&job.request) {
        Ok(answer) => {
            in_flight.push_back(InFlight { job, answer });
            Ok(())
        }
        // The only way a hand-over fails: the worker's pipe is gone with the worker.
        Err(_) => Err(Box::new(job)),
    }
}

/// The job could not be handed over because the worker is gone: it never started, so
/// it goes back to the queue; the text says how the worker ended.
async fn exit_text(shared: &Shared, worker: &dyn Worker, job: Box<Job>) -> String {
    for job in shared.queue.requeue([*job]) {
        let _ = job.reply.send(ScoreOutcome::ShuttingDown);
    }
    worker.exited().await
}

/// A worker died while requests were in its pipe: the front one was running (it fails
/// with how the worker ended), the others never started (they go back to the queue).
fn fail_front_requeue_rest(
    shared: &Shared,
    worker: &dyn Worker,
    mut in_flight: VecDeque<InFlight>,
    how: &str,
) {
    if let Some(front) = in_flight.pop_front() {
        let _ = front.job.reply.send(ScoreOutcome::WorkerExited {
            pid: worker.pid(),
            how: how.to_string(),
        });
    }
    requeue_unstarted(shared, in_flight);
}

/// Puts requests that a dead worker never started back in the queue for another
/// worker (or this slot's next one); they were not run, so nothing is lost.
fn requeue_unstarted(shared: &Shared, in_flight: VecDeque<InFlight>) {
    let jobs = in_flight.into_iter().map(|flight| flight.job);
    for job in shared.queue.requeue(jobs) {
        let _ = job.reply.send(ScoreOutcome::ShuttingDown);
    }
}
