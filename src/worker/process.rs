//! One worker process: `runner.py` under the chosen Python, its handshake, and typed
//! calls over its pipes. Three tasks serve it: a writer (the only one writing its stdin,
//! so that no caller ever blocks on a full pipe), a reader (routes answers by id, log
//! records to the log, stream chunks to their bodies) and a waiter (the only owner of
//! the child, which publishes how it ended).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use serde_json::Value;
use tokio::io::{AsyncRead, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::answer_within;
use super::framing::{self, FrameReader, Incoming, OutgoingFrame};
use super::pool::{ScoreRequest, Worker};
use super::wire::{
    DebuggerState, Hello, LoadParams, LoadResult, LogRecord, Message, MessageKind, RpcError,
    ScoreParams, ScoreResult, StreamEvent, PROTOCOL_VERSION,
};
use crate::logging;
use crate::platform;

/// How long a fresh worker gets to say `hello` (Python start-up plus our imports).
const HELLO_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest stderr line passed through whole; longer ones are cut.
const MAX_STDERR_LINE: usize = 64 * 1024;
/// Chunks of a streamed body buffered between the worker and a slow client.
const STREAM_BUFFER_CHUNKS: usize = 16;
/// After a worker ended, how long its last answers may take to come out of its pipe
/// before the requests still waiting count as unanswered (a child the script forked
/// can keep the pipe open after the worker itself is gone).
const EXIT_DRAIN_GRACE: Duration = Duration::from_millis(500);
/// Frames waiting for the writer: more than the pool ever has in flight per worker.
const WRITE_QUEUE_FRAMES: usize = 64;

/// Everything needed to start a worker; the same for every worker of a server.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    pub python: PathBuf,
    pub runner_script: PathBuf,
    pub entry_script: Option<PathBuf>,
    pub working_dir: PathBuf,
    pub env: Vec<(String, String)>,
    /// The largest payload (an answer's body, a stream chunk) accepted from a worker.
    pub max_payload: usize,
    /// How long a streamed answer may wait for a client that does not read it.
    pub stream_stall_timeout: Duration,
}

/// Why a call to a worker did not produce a result.
#[derive(Debug, Clone, PartialEq)]
pub enum CallError {
    /// The runner answered with an error (user code failed, bad input, ...).
    Rpc(RpcError),
    /// The worker process ended; the text says how ("exit code 17").
    Exited(String),
    /// The runner broke the protocol for this call (an answer of the wrong shape, a
    /// body over the limit); the worker goes on.
    Broken(String),
}

/// A streamed body: chunks as the script's generator yields them; an `Err` item means
/// the generator failed and the body must be cut short.
pub type BodyStream = mpsc::Receiver<Result<Bytes, String>>;

/// The successful answer to `score`.
pub struct ScoreReply {
    pub result: ScoreResult,
    pub body: ReplyBody,
    /// For a streamed body: fires when the runner has finished the stream (and is free
    /// for the next request).
    pub stream_done: Option<oneshot::Receiver<()>>,
}

pub enum ReplyBody {
    Full(Bytes),
    Stream(BodyStream),
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Routed, CallError>>>>>;

/// A response frame as routed to its caller, with the stream it opened, if any.
struct Routed {
    message: Message,
    payload: Bytes,
    stream: Option<(BodyStream, oneshot::Receiver<()>)>,
}

/// A live worker process. Dropping it kills the process (and its process group).
pub struct WorkerProcess {
    pub hello: Hello,
    writes: mpsc::Sender<OutgoingFrame>,
    pending: Pending,
    next_id: AtomicU64,
    exit: watch::Receiver<Option<String>>,
    kill: CancellationToken,
    /// The runner's last `debugger` notification: a debugger is attached.
    is_debugged: Arc<AtomicBool>,
}

impl WorkerProcess {
    /// Starts the process and waits for its `hello`.
    pub async fn spawn(spec: &LaunchSpec, worker_id: usize) -> Result<WorkerProcess, CallError> {
        let mut command = Command::new(&spec.python);
        command.arg(&spec.runner_script);
        // Informational: a process list or a debugger's process picker shows which
        // worker runs which script.
        command.args(["--worker", &worker_id.to_string()]);
        if let Some(script) = &spec.entry_script {
            command.arg("--entry-script").arg(script);
        }
        command
            .current_dir(&spec.working_dir)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            // So that print(..., file=sys.stderr) reaches the log line by line.
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        platform::tie_child_to_server(&mut command);
        let mut child = command.spawn().map_err(|err| {
            CallError::Broken(format!(
                "cannot start {} {}: {err}",
                spec.python.display(),
                spec.runner_script.display()
            ))
        })?;
        let pid = child.id().unwrap_or(0);
        let (stdin, stdout, stderr) =
            match (child.stdin.take(), child.stdout.take(), child.stderr.take()) {
                (Some(stdin), Some(stdout), Some(stderr)) => (stdin, stdout, stderr),
                _ => {
                    return Err(CallError::Broken(
                        "the worker's pipes could not be opened".into(),
                    ))
                }
            };
        platform::enlarge_pipe(&stdin);
        platform::enlarge_pipe(&stdout);

        let kill = CancellationToken::new();
        let (exit_tx, exit) = watch::channel(None);
        tokio::spawn(own_child(child, kill.clone(), exit_tx));
        tokio::spawn(pass_through_stderr(stderr, pid));
        let (writes, write_queue) = mpsc::channel(WRITE_QUEUE_FRAMES);
        tokio::spawn(write_frames(stdin, write_queue));

        let pending: Pending = Arc::default();
        let is_debugged = Arc::new(AtomicBool::new(false));
        let (hello_tx, hello_rx) = oneshot::channel();
        let reader = FrameReader::new(stdout, spec.max_payload);
        tokio::spawn(route_frames(
            reader,
            Routes {
                pid,
                pending: pending.clone(),
                hello: Some(hello_tx),
                exit: exit.clone(),
                kill: kill.clone(),
                writes: writes.clone(),
                stream_stall_timeout: spec.stream_stall_timeout,
                worker_id,
                is_debugged: is_debugged.clone(),
            },
        ));

        let hello = match tokio::time::timeout(HELLO_TIMEOUT, hello_rx).await {
            Ok(Ok(hello)) => hello,
            Ok(Err(_)) => {
                kill.cancel();
                let how = wait_for_exit(exit).await;
                return Err(CallError::Exited(format!(
                    "{how} before it could start; check that {} is a working Python 3.8 or newer \
                     (its own error is in the lines above)",
                    spec.python.display()
                )));
            }
            Err(_) => {
                kill.cancel();
                return Err(CallError::Broken(format!(
                    "the worker (pid {pid}) did not start within {} s",
                    HELLO_TIMEOUT.as_secs()
                )));
            }
        };
        if hello.protocol != PROTOCOL_VERSION {
            kill.cancel();
            return Err(CallError::Broken(format!(
                "the runner speaks protocol version {} but this server speaks {PROTOCOL_VERSION}; \
                 the runner files are out of date (delete the azmlinfsrv cache folder)",
                hello.protocol
            )));
        }
        Ok(WorkerProcess {
            hello,
            writes,
            pending,
            next_id: AtomicU64::new(1),
            exit,
            kill,
            is_debugged,
        })
    }

    /// Imports the entry script and analyses `run()`, within `deadline`.
    pub async fn load(
        &self,
        params: &LoadParams,
        deadline: Duration,
    ) -> Result<LoadResult, CallError> {
        let routed = self.call("load", params, deadline).await?;
        decode_result(routed.message)
    }

    /// Runs the script's `init()`, within `deadline`.
    pub async fn run_init(&self, deadline: Duration) -> Result<(), CallError> {
        let routed = self.call("init", &serde_json::json!({}), deadline).await?;
        decode_result::<Value>(routed.message).map(|_| ())
    }

    /// A request/answer call with a deadline: a worker that does not answer in time is
    /// killed, so that no caller waits for ever.
    async fn call<P: serde::Serialize>(
        &self,
        method: &str,
        params: &P,
        limit: Duration,
    ) -> Result<Routed, CallError> {
        let reply = self.send(method, params, Bytes::new())?;
        let deadline = tokio::time::Instant::now() + limit;
        // A worker stopped at a breakpoint in the script's import or init() is waited for.
        let answer = answer_within(
            deadline,
            || self.is_being_debugged(),
            self.answer_or_exit(reply),
        );
        if let Ok(outcome) = answer.await {
            return outcome;
        }
        self.kill();
        Err(CallError::Exited(format!(
            "no answer to `{method}` within {} s (the worker was killed)",
            limit.as_secs()
        )))
    }

    /// Queues one request for the writer; the receiver yields its routed answer.
    fn send<P: serde::Serialize>(
        &self,
        method: &str,
        params: &P,
        payload: Bytes,
    ) -> Result<ReplySlot, CallError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let message = Message::request(id, method, params, payload.len())
            .map_err(|err| CallError::Broken(err.to_string()))?;
        let frame = OutgoingFrame::new(&message, payload)
            .map_err(|err| CallError::Broken(err.to_string()))?;
        let (reply_tx, reply_rx) = oneshot::channel();
        lock(&self.pending).insert(id, reply_tx);
        if self.writes.try_send(frame).is_err() {
            lock(&self.pending).remove(&id);
            // The writer is gone because the pipe broke: the process is ending.
            return Err(CallError::Exited("a broken pipe".into()));
        }
        Ok(reply_rx)
    }

    /// The routed answer, or how the process ended when it ends first. Watching the
    /// process, not only the pipe: a child the script forked may keep the pipe open.
    /// Once the process has ended, the answers it wrote before still get
    /// `EXIT_DRAIN_GRACE` to come out of the pipe, so that a request it did answer is
    /// never taken for the one it died on (and run again elsewhere).
    fn answer_or_exit(&self, reply: ReplySlot) -> BoxFuture<'static, Result<Routed, CallError>> {
        let exit = self.exit.clone();
        async move {
            let mut reply = reply;
            let how = tokio::select! {
                biased;
                routed = &mut reply => match routed {
                    Ok(outcome) => return outcome,
                    Err(_) => return Err(CallError::Exited(wait_for_exit(exit).await)),
                },
                how = wait_for_exit(exit.clone()) => how,
            };
            match tokio::time::timeout(EXIT_DRAIN_GRACE, reply).await {
                Ok(Ok(outcome)) => outcome,
                Ok(Err(_)) | Err(_) => Err(CallError::Exited(how)),
            }
        }
        .boxed()
    }
}

impl Worker for WorkerProcess {
    fn pid(&self) -> u32 {
        self.hello.pid
    }

    fn send_score(
        &self,
        request: &ScoreRequest,
    ) -> Result<BoxFuture<'static, Result<ScoreReply, CallError>>, CallError> {
        let params = ScoreParams {
            method: &request.method,
            path: &request.path,
            query: &request.query,
            headers: request
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
            request_id: &request.request_id,
            remote_addr: request.remote_addr.as_deref(),
        };
        let reply = self.send("score", &params, request.body.clone())?;
        let answer = self.answer_or_exit(reply);
        Ok(async move {
            let routed = answer.await?;
            let result: ScoreResult = decode_result(routed.message)?;
            Ok(match routed.stream {
                Some((chunks, done)) => ScoreReply {
                    result,
                    body: ReplyBody::Stream(chunks),
                    stream_done: Some(done),
                },
                None => ScoreReply {
                    result,
                    body: ReplyBody::Full(routed.payload),
                    stream_done: None,
                },
            })
        }
        .boxed())
    }

    fn exited(&self) -> BoxFuture<'static, String> {
        wait_for_exit(self.exit.clone()).boxed()
    }

    fn kill(&self) {
        self.kill.cancel();
    }

    fn is_being_debugged(&self) -> bool {
        self.is_debugged.load(Ordering::Acquire)
    }

    fn shutdown(&self, grace: Duration) -> BoxFuture<'_, ()> {
        async move {
            if let Ok(frame) = OutgoingFrame::new(&Message::notification("shutdown"), Bytes::new())
            {
                let _ = self.writes.try_send(frame);
            }
            if tokio::time::timeout(grace, wait_for_exit(self.exit.clone()))
                .await
                .is_err()
            {
                self.kill();
            }
            wait_for_exit(self.exit.clone()).await;
        }
        .boxed()
    }
}

/// Where the reader task delivers one request's answer.
type ReplySlot = oneshot::Receiver<Result<Routed, CallError>>;

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill.cancel();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding this lock cannot leave the map inconsistent: keep going.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn decode_result<T: serde::de::DeserializeOwned>(message: Message) -> Result<T, CallError> {
    if let Some(error) = message.error {
        return Err(CallError::Rpc(error));
    }
    let result = message.result.as_ref().map_or("null", |raw| raw.get());
    serde_json::from_str(result)
        .map_err(|err| CallError::Broken(format!("unexpected result shape: {err}")))
}

async fn wait_for_exit(mut exit: watch::Receiver<Option<String>>) -> String {
    match exit.wait_for(Option::is_some).await {
        Ok(how) => how.clone().unwrap_or_default(),
        Err(_) => "an unknown status".into(),
    }
}

/// The one owner of the child: waits for it to end (or kills it on request) and
/// publishes how it ended. Either way the worker's process group goes with it, so that
/// nothing the script started (a shell, a forked child) outlives it holding its pipes.
async fn own_child(
    mut child: Child,
    kill: CancellationToken,
    exit_tx: watch::Sender<Option<String>>,
) {
    let pid = child.id();
    let status = tokio::select! {
        status = child.wait() => status.ok(),
        _ = kill.cancelled() => {
            if let Some(pid) = pid {
                platform::kill_process_group(pid);
            }
            let _ = child.start_kill();
            child.wait().await.ok()
        }
    };
    if let Some(pid) = pid {
        platform::kill_process_group(pid);
    }
    let _ = exit_tx.send(Some(platform::describe_exit(status)));
}

/// The only writer of the worker's stdin. A full pipe blocks this task alone: the
/// pool's deadlines keep running meanwhile.
async fn write_frames(mut stdin: ChildStdin, mut queue: mpsc::Receiver<OutgoingFrame>) {
    while let Some(mut frame) = queue.recv().await {
        if framing::write_frame(&mut stdin, &mut frame).await.is_err() {
            return;
        }
    }
}

/// Passes the worker's stderr (user prints to stderr, C libraries, tracebacks) through
/// to our log line by line, never letting a huge line or a flood block the worker.
async fn pass_through_stderr(stderr: impl AsyncRead + Unpin, pid: u32) {
    let mut reader = BufReader::with_capacity(64 * 1024, stderr);
    let mut line = Vec::new();
    while let Ok(Some(_)) = framing::read_capped_line(&mut reader, &mut line, MAX_STDERR_LINE).await
    {
        logging::write_runner_stderr(&String::from_utf8_lossy(&line), pid).await;
    }
}

/// What the reader task needs besides the frames.
struct Routes {
    pid: u32,
    pending: Pending,
    hello: Option<oneshot::Sender<Hello>>,
    exit: watch::Receiver<Option<String>>,
    kill: CancellationToken,
    writes: mpsc::Sender<OutgoingFrame>,
    stream_stall_timeout: Duration,
    worker_id: usize,
    is_debugged: Arc<AtomicBool>,
}

/// A streamed body being received: where its chunks go (`None` once its client stopped
/// reading and the stream was cancelled), and who to tell at its end.
struct OpenStream {
    chunks: Option<mpsc::Sender<Result<Bytes, String>>>,
    done: oneshot::Sender<()>,
}

/// Reads every frame the worker sends and routes it: responses to their callers, log
/// records to the log, stream chunks to their bodies. When the worker's stdout closes,
/// every pending call fails at once with how the worker ended. A channel that lost
/// sync gets the worker killed: nothing read after it could be trusted.
async fn route_frames<R: AsyncRead + Unpin>(mut reader: FrameReader<R>, mut routes: Routes) {
    let pid = routes.pid;
    let mut streams: HashMap<u64, OpenStream> = HashMap::new();
    // Log records written since the last answer: an answer waits until they are out,
    // so that what run() printed is in the log before its client has the answer.
    let mut has_unflushed_log = false;
    loop {
        let frame = match reader.next().await {
            Ok(Incoming::Frame(frame)) => frame,
            Ok(Incoming::PayloadTooLarge { message, size }) => {
                refuse_large_payload(&routes, &mut streams, &message, size);
                continue;
            }
            Ok(Incoming::LostSync(what)) => {
                tracing::error!(target: "azmlinfsrv", "The worker (pid {pid}) wrote something that is not a protocol frame on its channel ({what}); the channel cannot be trusted any more, so the worker is being killed and replaced");
                routes.kill.cancel();
                break;
            }
            Ok(Incoming::Closed) | Err(_) => break,
        };
        match frame.message.kind() {
            MessageKind::Response(id) => {
                let Some(reply) = lock(&routes.pending).remove(&id) else {
                    tracing::warn!(target: "azmlinfsrv", "The worker (pid {pid}) answered request {id}, which nobody is waiting for");
                    continue;
                };
                let is_streaming = frame
                    .message
                    .result
                    .as_ref()
                    .and_then(|result| serde_json::from_str::<StreamingFlag>(result.get()).ok())
                    .is_some_and(|flag| flag.streaming);
                let stream = is_streaming.then(|| {
                    let (chunk_tx, chunk_rx) = mpsc::channel(STREAM_BUFFER_CHUNKS);
                    let (done_tx, done_rx) = oneshot::channel();
                    streams.insert(
                        id,
                        OpenStream {
                            chunks: Some(chunk_tx),
                            done: done_tx,
                        },
                    );
                    (chunk_rx, done_rx)
                });
                if has_unflushed_log {
                    logging::flushed().await;
                    has_unflushed_log = false;
                }
                let _ = reply.send(Ok(Routed {
                    message: frame.message,
                    payload: frame.payload,
                    stream,
                }));
            }
            MessageKind::Notification("log") => {
                if let Some(record) = frame.message.params_as::<LogRecord>() {
                    logging::write_runner_record(
                        record.time,
                        &record.level,
                        pid,
                        &record.logger,
                        &record.message,
                        record.request_id.as_deref(),
                    )
                    .await;
                    crate::app_insights::track_runner_record(
                        &record.logger,
                        &record.level,
                        &record.message,
                        record.time,
                    );
                    has_unflushed_log = true;
                }
            }
            MessageKind::Notification("hello") => {
                let hello = frame.message.params_as::<Hello>();
                if let (Some(hello), Some(tx)) = (hello, routes.hello.take()) {
                    let _ = tx.send(hello);
                }
            }
            MessageKind::Notification("debugger") => {
                if let Some(state) = frame.message.params_as::<DebuggerState>() {
                    note_debugger(&routes, state.attached);
                }
            }
            MessageKind::Notification("chunk") => {
                let Some(event) = stream_event(&frame.message) else {
                    continue;
                };
                if let Some(stream) = streams.get_mut(&event.id) {
                    forward_chunk(&routes, event.id, stream, frame.payload).await;
                }
            }
            MessageKind::Notification("end") => {
                let Some(event) = stream_event(&frame.message) else {
                    continue;
                };
                if let Some(stream) = streams.remove(&event.id) {
                    if let (Some(error), Some(chunks)) = (event.error, &stream.chunks) {
                        let _ = chunks.send(Err(error)).await;
                    }
                    let _ = stream.done.send(());
                }
            }
            other => {
                tracing::warn!(target: "azmlinfsrv", "Ignored an unexpected message from the worker (pid {pid}): {other:?}");
            }
        }
    }
    let how = wait_for_exit(routes.exit.clone()).await;
    for (_, reply) in lock(&routes.pending).drain() {
        let _ = reply.send(Err(CallError::Exited(how.clone())));
    }
    for (_, stream) in streams.drain() {
        if let Some(chunks) = stream.chunks {
            let _ = chunks
                .send(Err(format!(
                    "the scoring process ended with {how} while streaming"
                )))
                .await;
        }
    }
}

/// Records whether a debugger is attached, and says so in the log once per change.
fn note_debugger(routes: &Routes, is_attached: bool) {
    let (worker, pid) = (routes.worker_id, routes.pid);
    if routes.is_debugged.swap(is_attached, Ordering::AcqRel) == is_attached {
        return;
    }
    if is_attached {
        tracing::warn!(target: "azmlinfsrv", "Worker {worker} (pid {pid}): a debugger is attached. Timeouts are suspended while debugging: a request stopped at a breakpoint is not cut by SCORING_TIMEOUT_MS or the hard deadline until the debugger detaches");
    } else {
        tracing::info!(target: "azmlinfsrv", "Worker {worker} (pid {pid}): the debugger detached; timeouts apply again");
    }
}

/// Gives a chunk to its client, waiting at most the stall timeout for a client that
/// does not read. A stalled client loses its answer, and the runner is asked to close
/// the generator, so that the worker is free for others.
async fn forward_chunk(routes: &Routes, id: u64, stream: &mut OpenStream, chunk: Bytes) {
    let Some(chunks) = &stream.chunks else {
        return; // cancelled: the rest of the body is dropped until `end`
    };
    match tokio::time::timeout(routes.stream_stall_timeout, chunks.send(Ok(chunk))).await {
        Ok(Ok(())) => {}
        Ok(Err(_)) => {
            // The client went away: stop the generator too.
            stream.chunks = None;
            cancel_stream(routes, id);
        }
        Err(_) => {
            tracing::warn!(target: "azmlinfsrv", "Request {id} to the worker (pid {}): the client read nothing of the streamed answer for {} s; the answer is cut and the generator closed", routes.pid, routes.stream_stall_timeout.as_secs());
            stream.chunks = None;
            cancel_stream(routes, id);
        }
    }
}

fn cancel_stream(routes: &Routes, id: u64) {
    let message = Message {
        jsonrpc: "2.0".into(),
        method: Some("cancel".into()),
        params: serde_json::value::to_raw_value(&serde_json::json!({ "id": id })).ok(),
        ..Message::default()
    };
    if let Ok(frame) = OutgoingFrame::new(&message, Bytes::new()) {
        let _ = routes.writes.try_send(frame);
    }
}

/// A body over `max_payload` was skipped: its request (or stream) fails with a clear
/// reason instead of being dropped.
fn refuse_large_payload(
    routes: &Routes,
    streams: &mut HashMap<u64, OpenStream>,
    message: &Message,
    size: usize,
) {
    let reason = format!(
        "the answer's body of {size} bytes is larger than the server accepts from a worker"
    );
    tracing::error!(target: "azmlinfsrv", "The worker (pid {}) sent {reason}; the request fails", routes.pid);
    match message.kind() {
        MessageKind::Response(id) => {
            if let Some(reply) = lock(&routes.pending).remove(&id) {
                let _ = reply.send(Err(CallError::Broken(reason)));
            }
        }
        MessageKind::Notification("chunk") => {
            if let Some(event) = stream_event(message) {
                if let Some(stream) = streams.get_mut(&event.id) {
                    if let Some(chunks) = stream.chunks.take() {
                        let _ = chunks.try_send(Err(reason));
                    }
                    cancel_stream(routes, event.id);
                }
            }
        }
        _ => {}
    }
}

fn stream_event(message: &Message) -> Option<StreamEvent> {
    message.params_as()
}

/// Just the `streaming` member of a score result, to route the chunks that follow.
#[derive(serde::Deserialize)]
struct StreamingFlag {
    #[serde(default)]
    streaming: bool,
}
