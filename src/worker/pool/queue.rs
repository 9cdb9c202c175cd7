//! The request queue between the HTTP handlers and the worker slots: jobs wait in
//! arrival order, up to a bound; idle slots wait in a stack, so that a job goes to the
//! slot that became idle most recently (its process is the warmest: with one client
//! and many workers, latency does not grow with the worker count).

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::oneshot;

/// Why the queue refused a job; the job comes back.
#[derive(Debug)]
pub enum Refused<J> {
    Full(J),
    Closed(J),
}

/// Something that can tell whether anyone still waits for it (a job whose client went
/// away is dropped instead of being run).
pub trait Abandonable {
    fn is_abandoned(&self) -> bool;
}

pub struct JobQueue<J> {
    state: Mutex<State<J>>,
    limit: usize,
}

struct State<J> {
    jobs: VecDeque<J>,
    /// Slots waiting for work, the most recently idle last.
    idle: Vec<oneshot::Sender<J>>,
    is_closed: bool,
}

impl<J: Abandonable> JobQueue<J> {
    pub fn new(limit: usize) -> Self {
        JobQueue {
            state: Mutex::new(State {
                jobs: VecDeque::new(),
                idle: Vec::new(),
                is_closed: false,
            }),
            limit: limit.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<J>> {
        // No code panics while holding this lock; if one did, the state is still whole.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Gives the job to the most recently idle slot, else queues it (or refuses it).
    pub fn submit(&self, job: J) -> Result<(), Refused<J>> {
        let mut state = self.lock();
        if state.is_closed {
            return Err(Refused::Closed(job));
        }
        let Some(job) = hand_to_idle(&mut state, job) else {
            return Ok(());
        };
        if state.jobs.len() >= self.limit {
            return Err(Refused::Full(job));
        }
        state.jobs.push_back(job);
        Ok(())
    }

    /// Puts jobs that a dead worker never started back at the front, in their order;
    /// they were admitted already, so the bound does not apply.
    pub fn requeue(&self, jobs: impl IntoIterator<Item = J>) -> Vec<J> {
        let mut state = self.lock();
        if state.is_closed {
            return jobs.into_iter().collect();
        }
        let mut waiting: Vec<J> = Vec::new();
        for job in jobs {
            if job.is_abandoned() {
                continue;
            }
            // Jobs queued already arrived later: these go first.
            if state.jobs.is_empty() {
                if let Some(job) = hand_to_idle(&mut state, job) {
                    waiting.push(job);
                }
            } else {
                waiting.push(job);
            }
        }
        for job in waiting.into_iter().rev() {
            state.jobs.push_front(job);
        }
        Vec::new()
    }

    /// The next job, waiting as an idle slot until one comes; `None` once closed.
    /// Cancel-safe: a slot that stops waiting leaves a dead entry that `submit` skips,
    /// and a job handed to it in the instant it stopped goes back to the front (a slot
    /// that swaps its worker for a reloaded one must not lose the request it was given).
    pub async fn next(&self) -> Option<J> {
        let receiver = {
            let mut state = self.lock();
            if let Some(job) = pop_live(&mut state.jobs) {
                return Some(job);
            }
            if state.is_closed {
                return None;
            }
            let (tx, rx) = oneshot::channel();
            state.idle.push(tx);
            rx
        };
        let mut waiting = Waiting {
            queue: self,
            receiver,
            is_done: false,
        };
        let job = (&mut waiting.receiver).await.ok();
        waiting.is_done = true;
        job
    }

    /// The next job if one is waiting (a busy slot taking work ahead of time).
    pub fn try_take(&self) -> Option<J> {
        pop_live(&mut self.lock().jobs)
    }

    /// Every waiting job, taken out (to answer them when no worker is coming).
    pub fn drain(&self) -> Vec<J> {
        self.lock().jobs.drain(..).collect()
    }

    /// Stops taking jobs; returns those still waiting. Idle slots see `None`.
    pub fn close(&self) -> Vec<J> {
        let mut state = self.lock();
        state.is_closed = true;
        state.idle.clear();
        state.jobs.drain(..).collect()
    }

    /// Jobs waiting for a worker (abandoned ones included until a slot skips them).
    pub fn len(&self) -> usize {
        self.lock().jobs.len()
    }
}

/// An idle slot's wait for a job; dropped before it got one, it gives back a job that
/// arrived meanwhile.
struct Waiting<'a, J: Abandonable> {
    queue: &'a JobQueue<J>,
    receiver: oneshot::Receiver<J>,
    is_done: bool,
}

impl<J: Abandonable> Drop for Waiting<'_, J> {
    fn drop(&mut self) {
        if self.is_done {
            return;
        }
        // Closing first: `submit` then sees this slot as gone and picks another.
        self.receiver.close();
        if let Ok(job) = self.receiver.try_recv() {
            // Closed queue: the job is dropped and its client told the pool dropped it.
            let _ = self.queue.requeue([job]);
        }
    }
}

/// Hands `job` to the most recently idle slot still waiting; gives it back if none is.
fn hand_to_idle<J>(state: &mut State<J>, mut job: J) -> Option<J> {
    while let Some(slot) = state.idle.pop() {
        match slot.send(job) {
            Ok(()) => return None,
            Err(returned) => job = returned,
        }
    }
    Some(job)
}

fn pop_live<J: Abandonable>(jobs: &mut VecDeque<J>) -> Option<J> {
    while let Some(job) = jobs.pop_front() {
        if !job.is_abandoned() {
            return Some(job);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct TestJob(u32, bool);

    impl Abandonable for TestJob {
        fn is_abandoned(&self) -> bool {
            self.1
        }
    }

    fn job(n: u32) -> TestJob {
        TestJob(n, false)
    }

    #[tokio::test]
    async fn jobs_wait_in_arrival_order_up_to_the_bound() {
        let queue = JobQueue::new(2);
        queue.submit(job(1)).unwrap();
        queue.submit(job(2)).unwrap();
        assert!(matches!(
            queue.submit(job(3)),
            Err(Refused::Full(TestJob(3, _)))
        ));
        assert_eq!(queue.len(), 2);
        assert_eq!(queue.next().await, Some(job(1)));
        assert_eq!(queue.try_take(), Some(job(2)));
        assert_eq!(queue.try_take(), None);
    }

    #[tokio::test]
    async fn a_job_goes_to_the_most_recently_idle_slot() {
        let queue = std::sync::Arc::new(JobQueue::new(4));
        let first = tokio::spawn({
            let queue = queue.clone();
            async move { queue.next().await }
        });
        tokio::task::yield_now().await;
        let second = tokio::spawn({
            let queue = queue.clone();
            async move { queue.next().await }
        });
        tokio::task::yield_now().await;
        queue.submit(job(1)).unwrap();
        assert_eq!(second.await.unwrap(), Some(job(1)), "the later idle slot");
        queue.submit(job(2)).unwrap();
        assert_eq!(first.await.unwrap(), Some(job(2)));
    }

    #[tokio::test]
    async fn a_slot_that_stopped_waiting_is_skipped() {
        let queue = JobQueue::new(4);
        let waiting = queue.next();
        drop(waiting); // never polled: registered nothing
        {
            let mut waiting = Box::pin(queue.next());
            // Polled once: registered as idle, then abandoned.
            assert!(futures_util::poll!(&mut waiting).is_pending());
        }
        queue.submit(job(1)).unwrap();
        assert_eq!(
            queue.len(),
            1,
            "the job waits instead of going to the gone slot"
        );
    }

    #[tokio::test]
    async fn a_job_handed_to_a_slot_that_stopped_waiting_goes_back_to_the_front() {
        let queue = JobQueue::new(4);
        {
            let mut waiting = Box::pin(queue.next());
            assert!(futures_util::poll!(&mut waiting).is_pending());
            // Handed to the waiting slot, which is dropped before it looks again.
            queue.submit(job(1)).unwrap();
        }
        queue.submit(job(2)).unwrap();
        assert_eq!(queue.try_take(), Some(job(1)), "not lost, and still first");
        assert_eq!(queue.try_take(), Some(job(2)));
    }

    #[tokio::test]
    async fn requeued_jobs_go_first_in_their_order_and_abandoned_ones_are_dropped() {
        let queue = JobQueue::new(1);
        queue.submit(job(9)).unwrap();
        queue.requeue([job(1), TestJob(2, true), job(3)]);
        assert_eq!(queue.len(), 3, "past the bound: they were admitted already");
        assert_eq!(queue.try_take(), Some(job(1)));
        assert_eq!(queue.try_take(), Some(job(3)));
        assert_eq!(queue.try_take(), Some(job(9)));
    }

    #[tokio::test]
    async fn abandoned_jobs_are_never_handed_out() {
        let queue = JobQueue::new(4);
        queue.submit(TestJob(1, true)).unwrap();
        queue.submit(job(2)).unwrap();
        assert_eq!(queue.next().await, Some(job(2)));
    }

    #[tokio::test]
    async fn closing_wakes_idle_slots_and_refuses_new_jobs() {
        let queue = std::sync::Arc::new(JobQueue::<TestJob>::new(4));
        let idle = tokio::spawn({
            let queue = queue.clone();
            async move { queue.next().await }
        });
        tokio::task::yield_now().await;
        assert!(queue.close().is_empty());
        assert_eq!(idle.await.unwrap(), None);
        assert!(matches!(queue.submit(job(1)), Err(Refused::Closed(_))));
    }
}
