//! A minimal std-only HTTP/1.1 server that answers every request with the
//! same small JSON body. It is the ceiling the benchmark compares against:
//! what loopback, the kernel and wrk can do on this machine with no Python
//! and no framework in the way.
//!
//! Usage: bench-static-server PORT
//!
//! One thread per connection (wrk opens at most 64), keep-alive honoured,
//! request bodies read by Content-Length and discarded.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;

const BODY: &[u8] = br#"{"message": "Hello, World!"}"#;

fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|arg| arg.parse().ok())
        .unwrap_or_else(|| {
            eprintln!("usage: bench-static-server PORT");
            std::process::exit(2);
        });
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap_or_else(|error| {
        eprintln!("cannot bind 127.0.0.1:{port}: {error}");
        std::process::exit(1);
    });
    println!("listening on 127.0.0.1:{port}");
    for stream in listener.incoming().flatten() {
        thread::spawn(move || {
            // A client that goes away mid-request is normal at the end of a run.
            let _ = serve_connection(stream);
        });
    }
}

/// Answers requests on one connection until the client closes it or asks to.
fn serve_connection(stream: TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let response = build_response();
    loop {
        let Some(request) = read_request_head(&mut reader)? else {
            return Ok(());
        };
        discard_body(&mut reader, request.content_length)?;
        writer.write_all(&response)?;
        if request.wants_close {
            return Ok(());
        }
    }
}

struct RequestHead {
    content_length: u64,
    wants_close: bool,
}

/// Reads the request line and headers; `None` when the client closed the connection.
fn read_request_head(reader: &mut impl BufRead) -> std::io::Result<Option<RequestHead>> {
    let mut head = RequestHead {
        content_length: 0,
        wants_close: false,
    };
    let mut line = String::new();
    let mut is_first_line = true;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let trimmed = line.trim_end();
        if is_first_line {
            is_first_line = false;
            head.wants_close = trimmed.ends_with("HTTP/1.0");
            continue;
        }
        if trimmed.is_empty() {
            return Ok(Some(head));
        }
        if let Some((name, value)) = trimmed.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                head.content_length = value.parse().unwrap_or(0);
            } else if name.eq_ignore_ascii_case("connection") {
                head.wants_close = value.eq_ignore_ascii_case("close");
            }
        }
    }
}

fn discard_body(reader: &mut impl Read, content_length: u64) -> std::io::Result<()> {
    std::io::copy(&mut reader.take(content_length), &mut std::io::sink())?;
    Ok(())
}

fn build_response() -> Vec<u8> {
    let mut response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        BODY.len()
    )
    .into_bytes();
    response.extend_from_slice(BODY);
    response
}
