//! The Python side of the server, seen from Rust: a **worker** is one Python process
//! running our bundled **runner** program (`runner/`) with the user's script loaded.
//!
//! - `wire`: the frames' types (JSON-RPC messages, params, results, error kinds).
//! - `framing`: reading and writing frames on a worker's pipes (`framing_properties`:
//!   its property tests).
//! - `process`: one worker process: spawning it, the handshake, typed calls.
//! - `launcher`: how the pool starts real workers (spawn, load, init).
//! - `pool`: the worker slots, the request queue, timeouts, restarts, readiness.

pub mod framing;
#[cfg(test)]
mod framing_properties;
pub mod launcher;
pub mod pool;
pub mod process;
#[cfg(test)]
mod recorded_frames;
pub mod wire;

/// How often a wait past its deadline looks again whether the worker is still being
/// debugged (a request stopped at a breakpoint is not a hung worker).
const DEBUGGED_RECHECK: std::time::Duration = std::time::Duration::from_millis(250);

/// The answer, or `Err` when `deadline` passed while no debugger was attached: past
/// the deadline, a worker being debugged keeps waiting (it may be stopped at a
/// breakpoint) until the debugger detaches. Every wait on a worker goes through this.
pub async fn answer_within<T>(
    deadline: tokio::time::Instant,
    is_being_debugged: impl Fn() -> bool,
    answer: impl std::future::Future<Output = T>,
) -> Result<T, ()> {
    tokio::pin!(answer);
    let mut deadline = deadline;
    loop {
        match tokio::time::timeout_at(deadline, &mut answer).await {
            Ok(outcome) => return Ok(outcome),
            Err(_) if is_being_debugged() => {
                deadline = tokio::time::Instant::now() + DEBUGGED_RECHECK
            }
            Err(_) => return Err(()),
        }
    }
}
