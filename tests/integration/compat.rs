//! Issue #3, "Full compatibility": the contract row by row, in the Python environments
//! users have: plain (standard library only), with Flask, with inference-schema + numpy
//! + pandas. Each topic is a submodule; this file holds what they share.

mod config;
mod examples;
mod headers;
mod inputs;
mod logs;
mod openapi;
mod outputs;
mod startup;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use crate::util::{venv, Launch, Server};

/// A venv with nothing installed: Flask, werkzeug, inference-schema absent.
pub fn plain_env() -> PathBuf {
    venv("plain", &[])
}

/// A venv with Flask (and so werkzeug): `@rawhttp` gets a real `flask.Request`.
pub fn flask_env() -> PathBuf {
    venv("flask", &["flask"])
}

/// A venv with inference-schema, numpy and pandas (and no Flask).
pub fn schema_env() -> PathBuf {
    venv("schema", &["inference-schema", "numpy", "pandas"])
}

/// A venv with the OpenAPI validator the `/swagger.json` tests run.
pub fn openapi_env() -> PathBuf {
    venv("openapi", &["openapi-spec-validator"])
}

/// Runs the script's Python from `venv_dir`, as an activated virtualenv would.
pub fn in_venv(launch: Launch, venv_dir: &std::path::Path) -> Launch {
    launch.env("VIRTUAL_ENV", venv_dir.display().to_string())
}

/// The server's output once the start-up lines are all in: log lines travel through
/// the server's writer thread and our reader thread, so they trail `GET /` turning 200.
pub fn startup_log(server: &Server) -> String {
    server.output.wait_for(
        "Users's init has completed successfully",
        Duration::from_secs(10),
    );
    server.output.text()
}

/// A request sent by hand on a connection the caller keeps, for what the harness's
/// one-shot `try_request` cannot see: bytes as they arrive, keep-alive.
pub fn raw_connection(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the server");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
}

pub fn send_raw(stream: &mut TcpStream, request: &str) {
    stream.write_all(request.as_bytes()).expect("send request");
}

/// Reads until `needle` has arrived (true) or the connection ends (false); `seen` keeps
/// every byte read so far.
pub fn read_until(stream: &mut TcpStream, seen: &mut Vec<u8>, needle: &[u8]) -> bool {
    read_until_count(stream, seen, needle, 1)
}

/// Reads until `needle` has arrived `count` times in all (true) or the connection ends.
pub fn read_until_count(
    stream: &mut TcpStream,
    seen: &mut Vec<u8>,
    needle: &[u8],
    count: usize,
) -> bool {
    let mut buffer = [0u8; 8192];
    loop {
        if seen
            .windows(needle.len())
            .filter(|window| *window == needle)
            .count()
            >= count
        {
            return true;
        }
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return false,
            Ok(n) => seen.extend_from_slice(&buffer[..n]),
        }
    }
}
