//! A small Debug Adapter Protocol client for the debugging tests: what VS Code says to
//! debugpy, and nothing more. Messages are JSON bodies framed by a `Content-Length`
//! header, over TCP (an adapter that listens) or a child's stdio (an adapter we start).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How long one DAP step may take on a loaded machine (debugpy starts its adapter,
/// pydevd loads) before the test fails.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Dap {
    writer: Box<dyn Write + Send>,
    incoming: mpsc::Receiver<Value>,
    /// Messages read while waiting for another one, in arrival order.
    backlog: Vec<Value>,
    seq: u64,
    /// Every message seen, for failure messages.
    pub transcript: Vec<String>,
    /// The adapter process we started, if any (killed on drop).
    adapter: Option<Child>,
}

impl Dap {
    /// Connects to a debug adapter listening on 127.0.0.1:`port` (debugpy's listen
    /// mode), retrying until it accepts or `STEP_TIMEOUT` passes.
    pub fn connect(port: u16) -> Dap {
        let deadline = Instant::now() + STEP_TIMEOUT;
        let stream = loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(stream) => break stream,
                Err(error) if Instant::now() > deadline => {
                    panic!("no debug adapter accepted a connection on 127.0.0.1:{port}: {error}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        let reader = stream.try_clone().expect("clone the DAP socket");
        Dap::over(Box::new(reader), Box::new(stream), None)
    }

    /// Starts `python -m debugpy.adapter` talking DAP on its stdio: VS Code's set-up for
    /// a configuration whose debuggee connects to it (`"listen"` in launch.json).
    pub fn start_adapter(python: &std::path::Path) -> Dap {
        let mut child = Command::new(python)
            .args(["-m", "debugpy.adapter"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start python -m debugpy.adapter");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        Dap::over(Box::new(stdout), Box::new(stdin), Some(child))
    }

    fn over(
        reader: Box<dyn Read + Send>,
        writer: Box<dyn Write + Send>,
        adapter: Option<Child>,
    ) -> Dap {
        let (sender, incoming) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(reader);
            while let Some(message) = read_message(&mut reader) {
                if sender.send(message).is_err() {
                    return;
                }
            }
        });
        Dap {
            writer,
            incoming,
            backlog: Vec::new(),
            seq: 0,
            transcript: Vec::new(),
            adapter,
        }
    }

    /// Sends a request; returns its `seq`, for `response`.
    pub fn send(&mut self, command: &str, arguments: Value) -> u64 {
        self.seq += 1;
        let message =
            json!({"seq": self.seq, "type": "request", "command": command, "arguments": arguments});
        let body = message.to_string();
        self.transcript.push(format!("-> {body}"));
        let framed = format!("Content-Length: {}\r\n\r\n{body}", body.len());
        self.writer
            .write_all(framed.as_bytes())
            .and_then(|()| self.writer.flush())
            .unwrap_or_else(|error| panic!("cannot send `{command}` to the adapter: {error}"));
        self.seq
    }

    /// The successful response to request `seq`; panics on a failure response.
    pub fn response(&mut self, seq: u64) -> Value {
        let response = self.wait_for(&format!("the response to request {seq}"), |m| {
            m["type"] == "response" && m["request_seq"] == seq
        });
        assert!(
            response["success"] == true,
            "request {seq} failed: {response}\n{}",
            self.describe()
        );
        response
    }

    /// Sends a request and returns its response's body.
    pub fn request(&mut self, command: &str, arguments: Value) -> Value {
        let seq = self.send(command, arguments);
        self.response(seq)["body"].clone()
    }

    /// The next event named `name` (earlier ones included).
    pub fn event(&mut self, name: &str) -> Value {
        self.wait_for(&format!("the `{name}` event"), |m| {
            m["type"] == "event" && m["event"] == name
        })
    }

    fn wait_for(&mut self, what: &str, is_wanted: impl Fn(&Value) -> bool) -> Value {
        if let Some(index) = self.backlog.iter().position(&is_wanted) {
            return self.backlog.remove(index);
        }
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.incoming.recv_timeout(left) {
                Ok(message) => {
                    self.transcript.push(format!("<- {message}"));
                    if is_wanted(&message) {
                        return message;
                    }
                    self.backlog.push(message);
                }
                Err(_) => panic!(
                    "the debug adapter did not send {what} within {STEP_TIMEOUT:?}\n{}",
                    self.describe()
                ),
            }
        }
    }

    /// The DAP messages so far, framed for a failure message.
    pub fn describe(&self) -> String {
        let lines: Vec<&str> = self.transcript.iter().map(String::as_str).collect();
        format!(
            "----- DAP transcript -----\n{}\n----- end of DAP transcript -----",
            lines.join("\n")
        )
    }

    /// `initialize`, then `attach` with `arguments`; `attached` runs once the request
    /// is out (a debuggee that connects to the adapter is started there). Then a breakpoint
    /// at `line` of `script`, and `configurationDone`, as VS Code does.
    pub fn attach_with_breakpoint(
        &mut self,
        arguments: Value,
        attached: impl FnOnce(&mut Dap),
        script: &std::path::Path,
        line: usize,
    ) {
        self.request(
            "initialize",
            json!({"clientID": "azmlinfsrv-tests", "adapterID": "debugpy", "linesStartAt1": true,
                   "columnsStartAt1": true, "pathFormat": "path"}),
        );
        let attach = self.send("attach", arguments);
        attached(self);
        self.event("initialized");
        let breakpoints = self.request(
            "setBreakpoints",
            json!({"source": {"path": script}, "breakpoints": [{"line": line}]}),
        );
        assert!(
            breakpoints["breakpoints"][0]["verified"] == true,
            "the breakpoint was not accepted: {breakpoints}\n{}",
            self.describe()
        );
        self.request("configurationDone", json!({}));
        self.response(attach);
    }

    /// Waits for a stop at a breakpoint; returns its thread and the innermost frame's
    /// local variables as (name, value) pairs.
    pub fn stopped_locals(&mut self) -> (u64, Vec<(String, String)>) {
        let stopped = self.event("stopped");
        let thread = stopped["body"]["threadId"].as_u64().expect("threadId");
        let frames = self.request("stackTrace", json!({"threadId": thread}));
        let frame = frames["stackFrames"][0]["id"].clone();
        let scopes = self.request("scopes", json!({"frameId": frame}));
        let locals = scopes["scopes"]
            .as_array()
            .and_then(|scopes| scopes.iter().find(|scope| scope["name"] == "Locals"))
            .map(|scope| scope["variablesReference"].clone())
            .expect("a Locals scope");
        let variables = self.request("variables", json!({"variablesReference": locals}));
        let pairs = variables["variables"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|variable| {
                (
                    variable["name"].as_str().unwrap_or_default().to_string(),
                    variable["value"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        (thread, pairs)
    }
}

impl Drop for Dap {
    fn drop(&mut self) {
        if let Some(adapter) = &mut self.adapter {
            let _ = adapter.kill();
            let _ = adapter.wait();
        }
    }
}

/// One message: headers up to an empty line, then `Content-Length` bytes of JSON.
fn read_message(reader: &mut impl BufRead) -> Option<Value> {
    let mut length = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                length = value.trim().parse::<usize>().ok();
            }
        }
    }
    let mut body = vec![0; length?];
    reader.read_exact(&mut body).ok()?;
    serde_json::from_slice(&body).ok()
}
