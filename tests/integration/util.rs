//! The test harness: starts the real `azmlinfsrv` binary against real Python scripts
//! in a clean environment, talks plain HTTP/1.1 to it over loopback with one client
//! (`try_request` for one-shot requests, `Connection` for keep-alive, raw bytes and
//! slow clients), builds the venvs the tests need, and shows the server's output
//! whenever an assertion fails. Shared with the `soak` and `conformance` test crates
//! (`#[path]`), hence its name.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const BINARY: &str = env!("CARGO_BIN_EXE_azmlinfsrv");

/// How long a server gets to become ready in a test.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A scratch folder under `target/`, removed when dropped.
pub struct Scratch {
    pub path: PathBuf,
}

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "{name}-{}-{}",
            std::process::id(),
            unique()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Scratch { path }
    }

    /// Writes a file (creating folders) and returns its path.
    pub fn write(&self, relative: &str, contents: &str) -> PathBuf {
        let path = self.path.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The server's combined stdout and stderr, collected as it runs.
#[derive(Clone, Default)]
pub struct Output(Arc<Mutex<String>>);

impl Output {
    pub fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }

    /// Copies `stream` into the output line by line until it ends; the thread is
    /// joined once the server has exited so that its last lines are in.
    fn collect(&self, stream: impl Read + Send + 'static) -> JoinHandle<()> {
        let sink = self.0.clone();
        std::thread::spawn(move || {
            let reader = BufReader::new(stream);
            for line in reader.split(b'\n') {
                let Ok(line) = line else { break };
                let mut text = sink.lock().unwrap();
                text.push_str(&String::from_utf8_lossy(&line));
                text.push('\n');
            }
        })
    }

    /// Waits until the output contains `needle` (true) or `timeout` passes (false).
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.text().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

/// How to start a server.
pub struct Launch {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
    pub port: u16,
}

impl Launch {
    /// `--entry_script SCRIPT --port <free>` with the test environment.
    pub fn script(script: &Path) -> Launch {
        let port = free_port();
        Launch {
            args: vec![
                "--entry_script".into(),
                script.display().to_string(),
                "--port".into(),
                port.to_string(),
            ],
            env: Vec::new(),
            cwd: script.parent().map(Path::to_path_buf),
            port,
        }
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Launch {
        self.args.push(arg.into());
        self
    }

    pub fn env(mut self, key: &str, value: impl Into<String>) -> Launch {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Leaves `key` out of the server's environment even if the test set it earlier.
    pub fn without_env(mut self, key: &str) -> Launch {
        self.env.retain(|(name, _)| name != key);
        self
    }

    pub fn cwd(mut self, dir: &Path) -> Launch {
        self.cwd = Some(dir.to_path_buf());
        self
    }

    /// The server's command line, environment and folder, with stdin from the null
    /// device; the caller decides where its output goes (`spawn` pipes it into
    /// `Output`; a test may send it to a file instead).
    pub fn command(&self) -> Command {
        let mut command = Command::new(BINARY);
        command.args(&self.args).stdin(Stdio::null());
        // Tests must not depend on the developer's shell: the server sees only what the
        // test passes, plus what any process needs to find programs, a home, a locale
        // and a temporary folder. (`AZMLINFSRV_*`, `AZUREML_*`, `VIRTUAL_ENV`... from
        // the caller's shell would otherwise change what is tested.)
        command.env_clear();
        for key in INHERITED_ENV {
            if let Some(value) = std::env::var_os(key) {
                command.env(key, value);
            }
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        if let Some(cwd) = &self.cwd {
            command.current_dir(cwd);
        }
        command
    }

    pub fn spawn(self) -> Server {
        let mut command = self.command();
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("cannot start the azmlinfsrv binary");
        let output = Output::default();
        let readers = vec![
            output.collect(child.stdout.take().unwrap()),
            output.collect(child.stderr.take().unwrap()),
        ];
        Server {
            child,
            output,
            port: self.port,
            readers,
        }
    }

    /// Starts the server and waits until `GET /` answers 200.
    pub fn start(self) -> Server {
        let mut server = self.spawn();
        server.wait_ready();
        server
    }
}

/// The only variables of the caller's environment a server under test inherits.
pub const INHERITED_ENV: [&str; 5] = ["PATH", "HOME", "LANG", "LC_ALL", "TMPDIR"];

/// A running server; killed when dropped.
pub struct Server {
    pub child: Child,
    pub output: Output,
    pub port: u16,
    /// The threads copying its stdout and stderr into `output`.
    readers: Vec<JoinHandle<()>>,
}

impl Server {
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the server exited with {status} before it was ready\n{}",
                    self.describe()
                );
            }
            if let Ok(response) = try_request(self.port, "GET", "/", &[], b"") {
                if response.status == 200 {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!(
            "the server was not ready within {READY_TIMEOUT:?}\n{}",
            self.describe()
        );
    }

    /// Waits for the process to exit, at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.join_readers(deadline.saturating_duration_since(Instant::now()));
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Joins the output threads, so that `output` holds every line the server wrote.
    /// They end when the last holder of the server's stdout and stderr exits (its
    /// workers die with it), so this waits at most `timeout` for that.
    fn join_readers(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout.max(Duration::from_secs(5));
        while self.readers.iter().any(|reader| !reader.is_finished()) {
            if Instant::now() >= deadline {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        try_request(self.port, method, path, headers, body)
            .unwrap_or_else(|err| panic!("{method} {path} failed: {err}\n{}", self.describe()))
    }

    pub fn post(&self, path: &str, body: &str) -> Response {
        self.request("POST", path, &[], body.as_bytes())
    }

    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], b"")
    }

    /// The server's output so far, framed for a failure message.
    pub fn describe(&self) -> String {
        format!(
            "----- server output -----\n{}----- end of server output -----",
            self.output.text()
        )
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (Unix) to the server process.
    pub fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([format!("-{signal}"), self.pid().to_string()])
            .status();
    }

    /// The server's output once the start-up lines are all in: log lines travel
    /// through the server's writer thread and our reader thread, so they trail `GET /`
    /// turning 200.
    pub fn startup_log(&self) -> String {
        self.output.wait_for(
            "Users's init has completed successfully",
            Duration::from_secs(10),
        );
        self.output.text()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asserts with the server's output attached to the failure message.
#[macro_export]
macro_rules! check {
    ($server:expr, $cond:expr) => {
        assert!($cond, "check failed: {}\n{}", stringify!($cond), $server.describe())
    };
    ($server:expr, $cond:expr, $($fmt:tt)+) => {
        assert!($cond, "{}\n{}", format!($($fmt)+), $server.describe())
    };
}

/// An HTTP response as the client saw it.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|err| panic!("body is not JSON ({err}): {}", self.text()))
    }
}

/// One request on a fresh connection (`Connection: close`), read to the end.
pub fn try_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut connection = Connection::open(port)?;
    connection.timeout(Duration::from_secs(120))?;
    connection.send_request(method, path, headers, body, false)?;
    let raw = connection.read_to_end()?;
    parse_response(&raw, method == "HEAD")
}

/// A connection the caller keeps: several requests on it in turn (keep-alive), or raw
/// bytes both ways for what a one-shot request cannot show (bytes as they arrive, a
/// client that stalls, when the server closes).
pub struct Connection {
    stream: TcpStream,
    port: u16,
    /// Bytes read and not yet handed out as a response.
    buffer: Vec<u8>,
}

impl Connection {
    pub fn open(port: u16) -> std::io::Result<Connection> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.set_write_timeout(Some(Duration::from_secs(30)))?;
        Ok(Connection {
            stream,
            port,
            buffer: Vec::new(),
        })
    }

    /// Opens a connection or fails the test.
    pub fn connect(port: u16) -> Connection {
        Connection::open(port).expect("connect to the server")
    }

    /// How long a read or a write may block before it fails.
    pub fn timeout(&mut self, timeout: Duration) -> std::io::Result<()> {
        self.stream.set_read_timeout(Some(timeout))?;
        self.stream.set_write_timeout(Some(timeout))
    }

    /// Sends bytes as they are.
    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Sends one request; `Content-Length` is added unless the headers say chunked.
    pub fn send_request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        is_keep_alive: bool,
    ) -> std::io::Result<()> {
        let port = self.port;
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n");
        if !is_keep_alive {
            head.push_str("Connection: close\r\n");
        }
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        let is_chunked = headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
        if !is_chunked && (!body.is_empty() || method == "POST" || method == "PUT") {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        self.stream.write_all(&bytes)
    }

    /// Reads one whole response (delimited by `Content-Length` or chunked encoding),
    /// keeping any bytes after it for the next one.
    pub fn read_response(&mut self, is_head: bool) -> std::io::Result<Response> {
        let broken = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
        let head_end = loop {
            if let Some(at) = find(&self.buffer, b"\r\n\r\n") {
                break at + 4;
            }
            if !self.fill()? {
                return Err(broken(format!(
                    "connection closed before a whole response head ({} bytes)",
                    self.buffer.len()
                )));
            }
        };
        let head = parse_response(&self.buffer[..head_end], true)?;
        let length = head
            .header("content-length")
            .and_then(|value| value.parse::<usize>().ok());
        let is_chunked = head
            .header("transfer-encoding")
            .is_some_and(|value| value.contains("chunked"));
        let end = if is_head || head.status == 204 || head.status == 304 {
            head_end
        } else if is_chunked {
            loop {
                if let Some(at) = find(&self.buffer[head_end..], b"\r\n0\r\n\r\n") {
                    break head_end + at + 7;
                }
                if self.buffer[head_end..].starts_with(b"0\r\n\r\n") {
                    break head_end + 5;
                }
                if !self.fill()? {
                    return Err(broken("connection closed inside a chunked body".into()));
                }
            }
        } else if let Some(length) = length {
            while self.buffer.len() < head_end + length {
                if !self.fill()? {
                    return Err(broken("connection closed inside the body".into()));
                }
            }
            head_end + length
        } else {
            // Neither: the body runs to the end of the connection.
            while self.fill()? {}
            self.buffer.len()
        };
        let response = parse_response(&self.buffer[..end], is_head)?;
        self.buffer.drain(..end);
        Ok(response)
    }

    /// Sends a keep-alive request and reads its response.
    pub fn exchange(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<Response> {
        self.send_request(method, path, headers, body, true)?;
        self.read_response(method == "HEAD")
    }

    /// Reads until `needle` has arrived `count` times in all (true) or the connection
    /// ends (false); `seen` keeps every byte read so far.
    pub fn read_until(&mut self, seen: &mut Vec<u8>, needle: &[u8], count: usize) -> bool {
        seen.append(&mut self.buffer);
        let mut chunk = [0u8; 8192];
        loop {
            if seen.windows(needle.len()).filter(|w| *w == needle).count() >= count {
                return true;
            }
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return false,
                Ok(n) => seen.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Reads until the server closes the connection, and returns what came.
    pub fn read_to_end(&mut self) -> std::io::Result<Vec<u8>> {
        let mut all = std::mem::take(&mut self.buffer);
        self.stream.read_to_end(&mut all)?;
        Ok(all)
    }

    /// Waits for the server to close the connection, returning what it sent before
    /// (a read error, such as a reset, counts as closed).
    pub fn wait_closed(&mut self) -> Vec<u8> {
        let mut all = std::mem::take(&mut self.buffer);
        let _ = self.stream.read_to_end(&mut all);
        all
    }

    /// A whole response if one has arrived, without waiting; `None` while there is
    /// none yet (the bytes of a partial one are kept).
    pub fn poll_response(&mut self) -> Option<std::io::Result<Response>> {
        self.stream.set_nonblocking(true).ok()?;
        let answer = self.read_response(false);
        let _ = self.stream.set_nonblocking(false);
        match answer {
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => None,
            answer => Some(answer),
        }
    }

    /// Reads more bytes into the buffer; false when the connection has ended.
    fn fill(&mut self) -> std::io::Result<bool> {
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk)?;
        self.buffer.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

pub fn parse_response(raw: &[u8], is_head: bool) -> std::io::Result<Response> {
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| invalid("no response head (connection closed without an answer)"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or_else(|| invalid("empty response"))?;
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid("bad status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| {
            line.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    let rest = &raw[split + 4..];
    let is_chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if is_head {
        Vec::new()
    } else if is_chunked {
        decode_chunked(rest)
    } else {
        rest.to_vec()
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn decode_chunked(mut data: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    while let Some(end) = data.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..end]);
        let Ok(size) = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
        else {
            break;
        };
        data = &data[end + 2..];
        if size == 0 || data.len() < size {
            break;
        }
        body.extend_from_slice(&data[..size]);
        data = &data[(size + 2).min(data.len())..];
    }
    body
}

/// Whether process `pid` is alive: it exists (`kill(pid, 0)` does not say ESRCH) and,
/// on Linux, is not a zombie (a dead child its parent has not reaped yet).
pub fn is_process_alive(pid: u64) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    let exists = unsafe { libc::kill(pid, 0) } == 0
        || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH);
    if !exists {
        return false;
    }
    if cfg!(target_os = "linux") {
        // "pid (comm) state ...": comm may hold spaces and parentheses.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next());
        return !matches!(state, Some("Z") | Some("X")) && !stat.is_empty();
    }
    true
}

/// Waits until process `pid` is gone (true) or `timeout` passes (false).
pub fn wait_process_gone(pid: u64, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while is_process_alive(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// A finished command's stdout then stderr, as text for a failure message.
pub fn output_text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The system Python the tests use to build venvs (python3 on PATH).
pub fn system_python() -> PathBuf {
    which_python().expect("python3 must be on PATH to run the tests")
}

fn which_python() -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("python3"))
            .find(|candidate| candidate.is_file())
    })
}

/// A virtualenv under `target/test-venvs/<name>` with `packages` installed, made once
/// and reused (creation is serialised across test threads by a lock file per venv).
pub fn venv(name: &str, packages: &[&str]) -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("test-venvs")
        .join(name);
    let marker = root.join(".azmlinfsrv-ready");
    let wanted = packages.join("\n");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(wanted.as_str()) {
        return root;
    }
    let _ = std::fs::remove_dir_all(&root);
    let status = Command::new(system_python())
        .args(["-m", "venv"])
        .arg(&root)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "python3 -m venv {} failed",
        root.display()
    );
    if !packages.is_empty() {
        let pip = root.join("bin").join("pip");
        let status = Command::new(pip)
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .args(packages)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "pip install {packages:?} into {} failed",
            root.display()
        );
    }
    std::fs::write(&marker, wanted).unwrap();
    root
}

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
pub fn in_venv(launch: Launch, venv_dir: &Path) -> Launch {
    launch.env("VIRTUAL_ENV", venv_dir.display().to_string())
}

/// Path of a file under `tests/scripts/`.
pub fn test_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("scripts")
        .join(name)
}

/// Path of a folder under `examples/`.
pub fn example(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(relative)
}

/// The runs of `tests/scripts/lifecycle.py` as the script itself records them: a
/// request body made with `body` appends its tag to a file when `run()` starts (so a
/// test can see which requests ran, in which order, and wait for one to be running)
/// and, if gated, holds `run()` until the test opens the gate.
pub struct Runs {
    scratch: Scratch,
}

impl Runs {
    pub fn new(name: &str) -> Runs {
        Runs {
            scratch: Scratch::new(name),
        }
    }

    fn record_path(&self) -> PathBuf {
        self.scratch.path.join("runs.txt")
    }

    fn gate_path(&self) -> PathBuf {
        self.scratch.path.join("gate")
    }

    /// A body that records `tag` and then returns at once.
    pub fn body(&self, tag: &str) -> String {
        serde_json::json!({"record": self.record_path(), "tag": tag}).to_string()
    }

    /// A body that records `tag`, then does what `extra` asks (`{"sleep": 20}`...).
    pub fn body_with(&self, tag: &str, extra: serde_json::Value) -> String {
        let mut body = serde_json::json!({"record": self.record_path(), "tag": tag});
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        body.to_string()
    }

    /// A body that records `tag` and then waits for `open_gate`.
    pub fn gated_body(&self, tag: &str) -> String {
        serde_json::json!({"record": self.record_path(), "tag": tag, "gate": self.gate_path()})
            .to_string()
    }

    /// Lets every gated `run()` finish.
    pub fn open_gate(&self) {
        std::fs::write(self.gate_path(), "open").unwrap();
    }

    /// The tags of the runs so far, in the order they started.
    pub fn tags(&self) -> Vec<String> {
        std::fs::read_to_string(self.record_path())
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Waits until `tag`'s run has started (true) or `timeout` passes (false).
    pub fn wait_started(&self, tag: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.tags().iter().any(|seen| seen == tag) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
