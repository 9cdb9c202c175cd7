//! Replaying one scenario: starting the server the way the golden says, sending each
//! request on a fresh connection the way Python's `http.client` sent it when the goldens
//! were recorded, running the special cases (`concurrent`, `wait_ready`, `sleep`,
//! start-up failures, the `log` case) and stopping the server with its process group.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::expect::{check_response, Placeholders, Response};
use crate::golden::{conformance_dir, Case, CaseKind, PortName, Request, Scenario, Startup};
use crate::util;

/// How long a server gets to answer `GET /` with 200 (and a start-up failure to exit).
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a server gets to exit after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// Readiness polling interval: short, because every scenario waits for it once.
const POLL: Duration = Duration::from_millis(50);

/// Variables the reference server (or ours) reacts to. They are removed from the
/// inherited environment so that a developer's shell cannot change results; scenarios
/// set what they need explicitly. `AZMLINFSRV_*` and `CONDA_PREFIX` are ours (they
/// would pick another Python or change limits); `VIRTUAL_ENV` is set to the test venv.
const SCRUBBED_ENV: &[&str] = &[
    "AZUREML_MODEL_DIR",
    "AZUREML_ENTRY_SCRIPT",
    "AZUREML_SOURCE_DIRECTORY",
    "AZUREML_CONFIG_FILE",
    "AZUREML_LOG_LEVEL",
    "AZUREML_DEBUG_PORT",
    "AML_APP_ROOT",
    "AML_CORS_ORIGINS",
    "AML_APP_INSIGHTS_ENABLED",
    "AML_APP_INSIGHTS_KEY",
    "AML_MODEL_DC_STORAGE_ENABLED",
    "AML_DBG_MODEL_INFO",
    "AML_DBG_RESOURCE_INFO",
    "APP_INSIGHTS_LOG_RESPONSE_ENABLED",
    "SCORING_TIMEOUT_MS",
    "SERVICE_NAME",
    "SERVICE_VERSION",
    "SERVICE_PATH_PREFIX",
    "WORKSPACE_NAME",
    "WORKER_COUNT",
    "WORKER_TIMEOUT",
    "WORKER_PRELOAD",
    "SERVER_PORT",
    "HEALTH_PORT",
    "SEPERATE_HEALTH_ENDPOINT",
    "HTTP_X_MS_SERVER_VERSION",
    "SERVER_VERSION_LOG_RESPONSE_ENABLED",
    "TRANSPORT_PROTOCOL",
    "GUNICORN_CMD_ARGS",
    "CONDA_PREFIX",
    "VIRTUAL_ENV",
];
const SCRUBBED_PREFIX: &str = "AZMLINFSRV_";

/// The outcome of one case: `scenario/case` and its differences (none: passed).
#[derive(Debug)]
pub struct CaseResult {
    pub name: String,
    pub problems: Vec<String>,
}

/// What a scenario needs from outside: the server command and the Python env.
pub struct Setup {
    /// The command that starts a server (`CONFORMANCE_SERVER` or our binary).
    pub command: Vec<String>,
    pub venv: PathBuf,
    /// Where each server's output goes, as `<scenario>.log`.
    pub log_dir: PathBuf,
}

/// An empty folder under the system temp dir, removed when dropped.
struct TempCwd(PathBuf);

impl TempCwd {
    fn new(scenario: &str) -> TempCwd {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("conf-cwd-{}-{n}-{scenario}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempCwd(path)
    }
}

impl Drop for TempCwd {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One server process started for one scenario, in a process group of its own.
pub struct Server {
    child: Child,
    port: u16,
    health_port: u16,
    pub ctx: Placeholders,
    pub log_path: PathBuf,
    stopped: bool,
    _cwd: Option<TempCwd>,
}

impl Server {
    pub fn start(setup: &Setup, scenario: &Scenario) -> Server {
        let conf = conformance_dir();
        let port = util::free_port();
        let mut health_port = util::free_port();
        while health_port == port {
            health_port = util::free_port();
        }
        let (cwd, temp) = match &scenario.cwd {
            Some(dir) => (conf.join(dir), None),
            None => {
                let temp = TempCwd::new(&scenario.name);
                (temp.0.clone(), Some(temp))
            }
        };
        let ctx = Placeholders(vec![
            ("CONF", conf.display().to_string()),
            ("SCRIPTS", conf.join("scripts").display().to_string()),
            ("PORT", port.to_string()),
            ("HEALTH_PORT", health_port.to_string()),
            ("CWD", cwd.display().to_string()),
        ]);
        let mut args: Vec<String> = Vec::new();
        if !scenario.no_auto_args {
            if let Some(script) = &scenario.script {
                args.push("--entry_script".into());
                args.push(conf.join("scripts").join(script).display().to_string());
            }
            if let Some(dir) = &scenario.model_dir {
                args.push("--model_dir".into());
                args.push(conf.join(dir).display().to_string());
            }
            args.push("--port".into());
            args.push(port.to_string());
        }
        args.extend(scenario.args.iter().map(|a| ctx.apply(a)));

        let log_path = setup.log_dir.join(format!("{}.log", scenario.name));
        let log = File::create(&log_path).unwrap();
        let mut command = Command::new(&setup.command[0]);
        command
            .args(&setup.command[1..])
            .args(&args)
            .current_dir(&cwd)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            // Its own group, so that orphaned Python workers can be found and ended.
            .process_group(0);
        for (key, _) in std::env::vars_os() {
            let name = key.to_string_lossy();
            if SCRUBBED_ENV.contains(&name.as_ref()) || name.starts_with(SCRUBBED_PREFIX) {
                command.env_remove(&key);
            }
        }
        command.env("VIRTUAL_ENV", &setup.venv);
        command.env("PYTHONUNBUFFERED", "1");
        for (key, value) in &scenario.env {
            command.env(key, ctx.apply(value));
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", setup.command));
        Server {
            child,
            port,
            health_port,
            ctx,
            log_path,
            stopped: false,
            _cwd: temp,
        }
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Polls `GET /` until it answers 200; an error text when the server exits first
    /// or `timeout` passes.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let mut last = "no attempt".to_string();
        let probe = Request::get("/");
        while Instant::now() < deadline {
            if let Some(status) = self.exited() {
                return Err(format!("server exited with {status} before becoming ready"));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match send(
                self.port,
                &probe,
                &self.ctx,
                left.clamp(POLL * 10, Duration::from_secs(5)),
            ) {
                Ok(r) if r.status == 200 => return Ok(()),
                Ok(r) => last = format!("GET / returned {}", r.status),
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(POLL);
        }
        Err(format!("not ready after {timeout:?} ({last})"))
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, SIGKILL after [`STOP_TIMEOUT`], then SIGKILL to whatever is left in the
    /// process group it was started in (orphaned workers).
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let pid = self.child.id() as libc::pid_t;
        if self.exited().is_none() {
            // SAFETY: kill(2) on the pid of our own child, not yet reaped.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            if self.wait_exit(STOP_TIMEOUT).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
        // The group id is the child's pid (process_group(0)); the kernel does not hand
        // that id out again while any member is alive, so this reaches only our group.
        for _ in 0..50 {
            // SAFETY: killpg(2) on the group created for this server.
            if unsafe { libc::killpg(pid, libc::SIGKILL) } != 0 {
                break; // ESRCH: the group is empty.
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// The end of the server's output, for a failure report.
    pub fn log_tail(&self) -> String {
        let log = self.log_text();
        let mut start = log.len().saturating_sub(4000);
        while !log.is_char_boundary(start) {
            start += 1;
        }
        format!(
            "---- log of {} ----\n{}\n----",
            self.log_path.display(),
            &log[start..]
        )
    }
}

impl Drop for Server {
    /// A panic mid-scenario must not leave a server behind.
    fn drop(&mut self) {
        if !self.stopped {
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.stopped = true;
            // SAFETY: as in `stop`.
            unsafe { libc::killpg(self.child.id() as libc::pid_t, libc::SIGKILL) };
        }
    }
}

impl Request {
    fn get(path: &str) -> Request {
        serde_json::from_value(serde_json::json!({"method": "GET", "path": path})).unwrap()
    }

    /// The body bytes: `body_b64`, else `body_repeat`, else `body` (none: no body).
    fn body_bytes(&self) -> Result<Option<Vec<u8>>, String> {
        if let Some(b64) = &self.body_b64 {
            return base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map(Some)
                .map_err(|e| format!("bad body_b64: {e}"));
        }
        if let Some(rep) = &self.body_repeat {
            let body = format!(
                "{}{}{}",
                rep.prefix,
                rep.chunk.repeat(rep.count),
                rep.suffix
            );
            return Ok(Some(body.into_bytes()));
        }
        Ok(self.body.as_ref().map(|b| b.clone().into_bytes()))
    }
}

/// Header text as `http.client` puts it on the wire: Latin-1.
fn latin1(text: &str) -> std::io::Result<Vec<u8>> {
    text.chars()
        .map(|c| u8::try_from(u32::from(c)))
        .collect::<Result<_, _>>()
        .map_err(|_| std::io::Error::other(format!("header {text:?} is not Latin-1")))
}

/// Sends one request on a fresh connection and reads the answer, with the head
/// `http.client` wrote when the goldens were recorded: request line, `Host`, the case's
/// headers in order, then `Content-Length` (unless given) or `Transfer-Encoding`.
/// No `Connection` or `Accept-Encoding` header: `@rawhttp` cases echo what they got.
pub fn send(
    port: u16,
    request: &Request,
    ctx: &Placeholders,
    timeout: Duration,
) -> std::io::Result<Response> {
    let body = request.body_bytes().map_err(std::io::Error::other)?;
    let started = Instant::now();
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&address, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let path = ctx.apply(&request.path);
    let mut head = format!(
        "{} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n",
        request.method
    )
    .into_bytes();
    for (name, value) in &request.headers {
        head.extend(latin1(name)?);
        head.extend(b": ");
        head.extend(latin1(&ctx.apply(value))?);
        head.extend(b"\r\n");
    }
    let mut payload = Vec::new();
    if request.chunked {
        head.extend(b"Transfer-Encoding: chunked\r\n");
        for piece in body
            .as_deref()
            .unwrap_or_default()
            .chunks(request.chunk_size.max(1))
        {
            payload.extend(format!("{:x}\r\n", piece.len()).into_bytes());
            payload.extend(piece);
            payload.extend(b"\r\n");
        }
        payload.extend(b"0\r\n\r\n");
    } else if let Some(body) = body {
        let given = request
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-length"));
        if !given {
            head.extend(format!("Content-Length: {}\r\n", body.len()).into_bytes());
        }
        payload = body;
    }
    head.extend(b"\r\n");
    stream.write_all(&head)?;
    stream.write_all(&payload)?;
    let mut response = read_response(&mut BufReader::new(stream), request.method == "HEAD")?;
    response.elapsed = started.elapsed();
    Ok(response)
}

/// Reads one response the way `http.client` frames it: interim 1xx answers skipped,
/// body by `Transfer-Encoding: chunked`, else `Content-Length`, else up to the close.
fn read_response(reader: &mut impl BufRead, is_head: bool) -> std::io::Result<Response> {
    let invalid = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
    loop {
        let status_line = read_line(reader)?;
        if status_line.is_empty() {
            return Err(invalid("connection closed without an answer".into()));
        }
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
        let mut headers = Vec::new();
        loop {
            let line = read_line(reader)?;
            if line.is_empty() {
                break;
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| invalid(format!("bad header line {line:?}")))?;
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
        if (100..200).contains(&status) {
            continue;
        }
        let mut response = Response {
            status,
            headers,
            ..Response::default()
        };
        if is_head || status == 204 || status == 304 {
            return Ok(response);
        }
        let chunked = response
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        if chunked {
            loop {
                let size_line = read_line(reader)?;
                let size_text = size_line.split(';').next().unwrap_or("").trim();
                let size = usize::from_str_radix(size_text, 16)
                    .map_err(|_| invalid(format!("bad chunk size {size_line:?}")))?;
                if size == 0 {
                    // Trailers up to the empty line.
                    while !read_line(reader)?.is_empty() {}
                    break;
                }
                let mut chunk = vec![0; size];
                reader.read_exact(&mut chunk)?;
                response.body.extend(chunk);
                read_line(reader)?;
            }
        } else if let Some(length) = response.header("content-length") {
            let length: usize = length
                .parse()
                .map_err(|_| invalid(format!("bad Content-Length {length:?}")))?;
            response.body = vec![0; length];
            reader.read_exact(&mut response.body)?;
        } else {
            reader.read_to_end(&mut response.body)?;
        }
        return Ok(response);
    }
}

/// One line without its CRLF, Latin-1 decoded; empty at end of stream.
fn read_line(reader: &mut impl BufRead) -> std::io::Result<String> {
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line)?;
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    Ok(line.into_iter().map(char::from).collect())
}

fn seconds(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

/// Runs one case against a ready server; its differences (none: passed).
fn run_case(server: &mut Server, case: &Case) -> Vec<String> {
    let port = match case.port {
        Some(PortName::Health) => server.health_port,
        None => server.port,
    };
    match case.kind {
        CaseKind::WaitReady => {
            let timeout = case.timeout_s.map_or(READY_TIMEOUT, seconds);
            server.wait_ready(timeout).err().into_iter().collect()
        }
        CaseKind::Sleep => {
            std::thread::sleep(seconds(case.seconds.unwrap_or(0.0)));
            Vec::new()
        }
        CaseKind::Concurrent => {
            let Some(expect) = &case.expect_each else {
                return vec!["golden: concurrent case without expect_each".into()];
            };
            let ctx = &server.ctx;
            let started = Instant::now();
            let results: Vec<_> = std::thread::scope(|scope| {
                let threads: Vec<_> = case
                    .requests
                    .iter()
                    .map(|r| scope.spawn(move || send(port, r, ctx, seconds(r.timeout_s))))
                    .collect();
                threads.into_iter().map(|t| t.join().unwrap()).collect()
            });
            let total = started.elapsed().as_secs_f64();
            let mut problems = Vec::new();
            for (i, result) in results.iter().enumerate() {
                match result {
                    Ok(response) => problems.extend(
                        check_response(expect, response, ctx)
                            .into_iter()
                            .map(|p| format!("request {i}: {p}")),
                    ),
                    Err(e) => problems.push(format!("request {i}: no response ({e})")),
                }
            }
            if let Some(max) = case.max_total_s {
                if total > max {
                    problems.push(format!(
                        "all requests took {total:.2}s, more than {max:.2}s"
                    ));
                }
            }
            if let Some(min) = case.min_total_s {
                if total < min {
                    problems.push(format!(
                        "all requests took {total:.2}s, less than {min:.2}s"
                    ));
                }
            }
            problems
        }
        CaseKind::Http => {
            let (Some(request), Some(expect)) = (&case.request, &case.expect) else {
                return vec!["golden: http case without request or expect".into()];
            };
            match send(port, request, &server.ctx, seconds(request.timeout_s)) {
                Ok(response) => check_response(expect, &response, &server.ctx),
                Err(_) if expect.no_response_ok => Vec::new(),
                Err(e) => vec![format!("no response: {e}")],
            }
        }
    }
}

/// Replays the selected cases of one scenario (`selected(case name)`; the names
/// `startup_fails` and `log` stand for the special cases). The log tail of a scenario
/// with a failure is returned beside the results.
pub fn run_scenario(
    setup: &Setup,
    scenario: &Scenario,
    selected: &dyn Fn(&str) -> bool,
) -> (Vec<CaseResult>, Option<String>) {
    let name = &scenario.name;
    let result = |case: &str, problems: Vec<String>| CaseResult {
        name: format!("{name}/{case}"),
        problems,
    };

    if scenario.startup == Some(Startup::Fail) {
        let Some(spec) = &scenario.startup_failure else {
            return (
                vec![result(
                    "startup_fails",
                    vec!["golden: no startup_failure".into()],
                )],
                None,
            );
        };
        let mut server = Server::start(setup, scenario);
        let status = server.wait_exit(seconds(spec.within_s));
        server.stop();
        let mut problems = Vec::new();
        match status {
            None => problems.push(format!("server still running after {}s", spec.within_s)),
            Some(status) if status.success() => {
                problems.push("server exited with code 0, expected non-zero".into())
            }
            Some(_) => {}
        }
        let log = server.log_text();
        for needle in &spec.log_contains {
            if !log.contains(needle.as_str()) {
                problems.push(format!("output does not contain {needle:?}"));
            }
        }
        let tail = (!problems.is_empty()).then(|| server.log_tail());
        return (vec![result("startup_fails", problems)], tail);
    }

    let cases: Vec<&Case> = scenario
        .cases
        .iter()
        .filter(|c| selected(&c.name))
        .collect();
    let check_log = !scenario.log_contains.is_empty() && selected("log");
    if cases.is_empty() && !check_log {
        return (Vec::new(), None);
    }
    let mut results = Vec::new();
    let mut server = Server::start(setup, scenario);
    let ready = if scenario.no_wait_ready {
        Ok(())
    } else {
        server.wait_ready(scenario.ready_timeout_s.map_or(READY_TIMEOUT, seconds))
    };
    match ready {
        Err(why) => {
            for case in &cases {
                results.push(result(&case.name, vec![format!("server not ready: {why}")]));
            }
        }
        Ok(()) => {
            for case in &cases {
                results.push(result(&case.name, run_case(&mut server, case)));
            }
        }
    }
    server.stop();
    if check_log {
        let log = server.log_text();
        let missing = scenario
            .log_contains
            .iter()
            .filter(|needle| !log.contains(needle.as_str()))
            .map(|needle| format!("output does not contain {needle:?}"))
            .collect();
        results.push(result("log", missing));
    }
    let failed = results.iter().any(|r| !r.problems.is_empty());
    (results, failed.then(|| server.log_tail()))
}

/// Resolves relative paths in a server command against the current directory (servers
/// run in their own cwd); bare names are left to `PATH`.
pub fn absolutize(command: Vec<String>) -> Vec<String> {
    command
        .into_iter()
        .enumerate()
        .map(|(i, token)| {
            let path = Path::new(&token);
            let is_path = token.contains('/') || (i > 0 && path.exists());
            if !token.starts_with('-') && !path.is_absolute() && is_path && path.exists() {
                std::path::absolute(path)
                    .map(|p| p.display().to_string())
                    .unwrap_or(token)
            } else {
                token
            }
        })
        .collect()
}
