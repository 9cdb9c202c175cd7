//! Reloading the scoring code (`--reload`): a new generation of workers is launched and
//! initialised beside the running one, and only when every new worker is ready does
//! each slot swap to its replacement, once its old worker has finished what it holds.
//! If any new worker fails to start, the whole generation is discarded and the old one
//! keeps serving. Reloads asked for while one runs are coalesced into one more.

use std::sync::{Arc, Mutex};

use futures_util::future::join_all;
use tokio::sync::{watch, Notify};

use super::{BootFailure, Shared, Worker};

/// Where a slot receives its replacement worker; the slot takes it when it is idle.
pub(super) struct Mailbox {
    next: Mutex<Option<Arc<dyn Worker>>>,
    posted: Notify,
}

impl Mailbox {
    pub(super) fn new() -> Mailbox {
        Mailbox {
            next: Mutex::new(None),
            posted: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Arc<dyn Worker>>> {
        // Nothing panics while holding it; a poisoned lock still holds a whole value.
        self.next
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Leaves `worker` for the slot; gives back a replacement it had not taken yet.
    fn post(&self, worker: Arc<dyn Worker>) -> Option<Arc<dyn Worker>> {
        let previous = self.lock().replace(worker);
        // A stored permit: the slot wakes even if it starts waiting only later.
        self.posted.notify_one();
        previous
    }

    pub(super) fn take(&self) -> Option<Arc<dyn Worker>> {
        self.lock().take()
    }

    pub(super) fn has_mail(&self) -> bool {
        self.lock().is_some()
    }

    /// Resolves when something was posted (perhaps already taken: check with `take`).
    pub(super) async fn posted(&self) {
        self.posted.notified().await;
    }
}

/// The outcome of reload round `n`.
type Finished = Option<(u64, Result<usize, BootFailure>)>;

/// Coalescing: one round runs at a time; requests that arrive meanwhile all share the
/// one round that starts after it (it sees every change made before they asked).
pub(super) struct Reloads {
    state: Mutex<RoundState>,
    finished: watch::Sender<Finished>,
}

#[derive(Default)]
struct RoundState {
    is_running: bool,
    is_pending: bool,
    /// Rounds started so far.
    started: u64,
}

impl Reloads {
    pub(super) fn new() -> Reloads {
        Reloads {
            state: Mutex::new(RoundState::default()),
            finished: watch::Sender::new(None),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RoundState> {
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// Asks for a reload and waits for the outcome of a round that started after the ask;
/// `Ok(n)`: `n` new workers are ready and handed to their slots.
pub(super) async fn request(shared: &Arc<Shared>) -> Result<usize, BootFailure> {
    let mut finished = shared.reloads.finished.subscribe();
    let target = {
        let mut state = shared.reloads.lock();
        if state.is_running {
            state.is_pending = true;
        } else {
            state.is_running = true;
            // Its own task: a caller that gives up waiting does not stop a round midway.
            tokio::spawn(drive(shared.clone()));
        }
        state.started + 1
    };
    let outcome = finished
        .wait_for(|done| done.as_ref().is_some_and(|(round, _)| *round >= target))
        .await;
    match outcome.as_deref() {
        Ok(Some((_, result))) => result.clone(),
        _ => Err(BootFailure::process(
            "the server is shutting down".to_string(),
        )),
    }
}

/// Runs rounds until no reload is pending.
async fn drive(shared: Arc<Shared>) {
    loop {
        let round = {
            let mut state = shared.reloads.lock();
            state.started += 1;
            state.is_pending = false;
            state.started
        };
        let result = new_generation(&shared).await;
        shared.reloads.finished.send_replace(Some((round, result)));
        let mut state = shared.reloads.lock();
        if !state.is_pending {
            state.is_running = false;
            return;
        }
    }
}

/// Launches and initialises one new worker per slot, all at once; hands them to the
/// slots only if every one is ready.
async fn new_generation(shared: &Arc<Shared>) -> Result<usize, BootFailure> {
    let starts = (0..shared.worker_count).map(|slot_id| start_replacement(shared, slot_id));
    let started = tokio::select! {
        started = join_all(starts) => started,
        // Workers half-started are dropped, which kills them.
        _ = shared.stopping.cancelled() => return Err(stopping()),
    };
    let mut ready = Vec::with_capacity(started.len());
    let mut first_failure = None;
    for result in started {
        match result {
            Ok(worker) => ready.push(worker),
            Err(failure) => {
                first_failure.get_or_insert(failure);
            }
        }
    }
    if let Some(failure) = first_failure {
        for worker in ready {
            retire(shared, worker);
        }
        return Err(failure);
    }
    if shared.stopping.is_cancelled() {
        for worker in ready {
            retire(shared, worker);
        }
        return Err(stopping());
    }
    let count = ready.len();
    for (mailbox, worker) in shared.mailboxes.iter().zip(ready) {
        if let Some(untaken) = mailbox.post(worker) {
            // A slot busy through two reloads gets the newest code only.
            retire(shared, untaken);
        }
    }
    Ok(count)
}

/// One new worker for `slot_id`: launched, its load compared with the first one, and
/// initialised.
async fn start_replacement(
    shared: &Shared,
    slot_id: usize,
) -> Result<Arc<dyn Worker>, BootFailure> {
    let loaded = shared.launcher.launch(slot_id).await?;
    if slot_id == 0
        && shared
            .load_result
            .get()
            .is_some_and(|first| *first != loaded.load)
    {
        tracing::warn!(target: "azmlinfsrv", "The reloaded script declares other inputs (@rawhttp or schema decorators) than at start-up: /swagger.json and the handling of OPTIONS and HEAD on /score stay as they were at start-up; restart azmlinfsrv to update them");
    }
    if let Err(failure) = loaded.init.await {
        loaded.worker.kill();
        return Err(failure);
    }
    Ok(loaded.worker)
}

/// Lets a worker that is no longer needed finish and exit, without waiting for it.
pub(super) fn retire(shared: &Shared, worker: Arc<dyn Worker>) {
    let grace = shared.timings.exit_grace;
    shared.retiring.spawn(async move {
        worker.shutdown(grace).await;
    });
}

fn stopping() -> BootFailure {
    BootFailure::process("the server is shutting down".to_string())
}
