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
