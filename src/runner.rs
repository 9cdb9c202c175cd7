//! One runner process: spawning `runner.py` under the chosen Python, the handshake, and
//! typed calls over its pipes. A reader task routes responses by id and writes the
//! runner's log records; a waiter task is the only owner of the child.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use tokio::io::{AsyncRead, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::logging;
use crate::platform;
use crate::protocol::{
    Hello, LoadParams, LoadResult, LogRecord, Message, MessageKind, RpcError, ScoreParams,
    ScoreResult, StreamEvent, PROTOCOL_VERSION,
};
use crate::transport::{self, FrameReader, Incoming};

/// How long a fresh runner gets to say `hello` (Python start-up plus our imports).
const HELLO_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest stderr line passed through whole; longer ones are cut.
const MAX_STDERR_LINE: usize = 64 * 1024;
/// Chunks of a streamed body buffered between the runner and a slow client.
const STREAM_BUFFER_CHUNKS: usize = 16;

/// Everything needed to start a runner; the same for every runner of a server.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    pub python: PathBuf,
    pub runner_script: PathBuf,
    /// Shown on the worker's command line (`--entry-script`), so that a process list or
    /// a debugger's process picker tells the workers of different scripts apart.
    pub entry_script: PathBuf,
    pub working_dir: PathBuf,
    pub env: Vec<(String, String)>,
    pub max_payload: usize,
}

/// Why a call to a runner did not produce a result.
#[derive(Debug, Clone, PartialEq)]
pub enum CallError {
    /// The runner answered with an error (user code failed, bad input, ...).
    Rpc(RpcError),
    /// The runner process ended; the text says how ("exit code 17").
    Exited(String),
    /// The channel broke or the runner broke the protocol.
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

/// A streamed body being received: where its chunks go, and who to tell at its end.
type OpenStream = (mpsc::Sender<Result<Bytes, String>>, oneshot::Sender<()>);

/// A response frame as routed to its caller, with the stream it opened, if any.
struct Routed {
    message: Message,
    payload: Bytes,
    stream: Option<(BodyStream, oneshot::Receiver<()>)>,
}

/// A live runner process. Dropping it kills the process.
pub struct Runner {
    pub hello: Hello,
    stdin: tokio::sync::Mutex<ChildStdin>,
    pending: Pending,
    next_id: AtomicU64,
    exit: watch::Receiver<Option<String>>,
    kill: CancellationToken,
}

impl Runner {
    /// Starts the process and waits for its `hello`. `worker_id` (the pool's slot number)
    /// only labels the process: `runner.py --worker N --entry-script PATH`.
    pub async fn spawn(spec: &LaunchSpec, worker_id: usize) -> Result<Runner, CallError> {
        let mut command = Command::new(&spec.python);
        command
            .arg(&spec.runner_script)
            .arg("--worker")
            .arg(worker_id.to_string())
            .arg("--entry-script")
            .arg(&spec.entry_script)
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
                        "the runner's pipes could not be opened".into(),
                    ))
                }
            };
        platform::enlarge_pipe(&stdin);
        platform::enlarge_pipe(&stdout);

        let kill = CancellationToken::new();
        let (exit_tx, exit) = watch::channel(None);
        tokio::spawn(own_child(child, kill.clone(), exit_tx));
        tokio::spawn(pass_through_stderr(stderr));

        let pending: Pending = Arc::default();
        let (hello_tx, hello_rx) = oneshot::channel();
        let reader = FrameReader::new(stdout, spec.max_payload);
        tokio::spawn(route_frames(
            reader,
            pid,
            pending.clone(),
            hello_tx,
            exit.clone(),
        ));

        let runner_exit = exit.clone();
        let hello = match tokio::time::timeout(HELLO_TIMEOUT, hello_rx).await {
            Ok(Ok(hello)) => hello,
            Ok(Err(_)) => {
                kill.cancel();
                let how = wait_for_exit(runner_exit).await;
                return Err(CallError::Exited(format!(
                    "{how} before it could start; check that {} is a working Python 3.8 or newer \
                     (its own error is in the lines above)",
                    spec.python.display()
                )));
            }
            Err(_) => {
                kill.cancel();
                return Err(CallError::Broken(format!(
                    "the runner (pid {pid}) did not start within {} s",
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
        Ok(Runner {
            hello,
            stdin: tokio::sync::Mutex::new(stdin),
            pending,
            next_id: AtomicU64::new(1),
            exit,
            kill,
        })
    }

    pub fn pid(&self) -> u32 {
        self.hello.pid
    }

    /// Imports the entry script and analyses `run()`.
    pub async fn load(&self, params: &LoadParams) -> Result<LoadResult, CallError> {
        let routed = self.call("load", params, &[]).await?;
        decode_result(routed.message)
    }

    /// Runs the script's `init()`.
    pub async fn init(&self) -> Result<(), CallError> {
        let routed = self.call("init", &serde_json::json!({}), &[]).await?;
        decode_result::<Value>(routed.message).map(|_| ())
    }

    /// Sends one `score` request without waiting for its answer, so that the pool can
    /// keep a few requests queued inside the runner (it answers them in order).
    pub async fn send_score(
        &self,
        params: &ScoreParams<'_>,
        body: &[u8],
    ) -> Result<PendingScore, CallError> {
        let reply = self.send("score", params, body).await?;
        Ok(PendingScore {
            reply,
            exit: self.exit.clone(),
        })
    }

    /// Asks the runner to exit, and kills it if it has not within `grace`.
    pub async fn shutdown(&self, grace: Duration) {
        let message = Message::notification("shutdown");
        {
            let mut stdin = self.stdin.lock().await;
            let _ = tokio::time::timeout(grace, transport::write_frame(&mut *stdin, &message, &[]))
                .await;
        }
        if tokio::time::timeout(grace, wait_for_exit(self.exit.clone()))
            .await
            .is_err()
        {
            self.kill();
        }
        wait_for_exit(self.exit.clone()).await;
    }

    /// Kills the process now (hard timeout, shutdown past grace).
    pub fn kill(&self) {
        self.kill.cancel();
    }

    /// Resolves when the process has ended, with how it ended.
    pub async fn exited(&self) -> String {
        wait_for_exit(self.exit.clone()).await
    }

    async fn call<P: serde::Serialize>(
        &self,
        method: &str,
        params: &P,
        payload: &[u8],
    ) -> Result<Routed, CallError> {
        let reply = self.send(method, params, payload).await?;
        match reply.await {
            Ok(outcome) => outcome,
            Err(_) => Err(CallError::Exited(self.exited().await)),
        }
    }

    /// Writes one request; the receiver yields its routed answer.
    async fn send<P: serde::Serialize>(
        &self,
        method: &str,
        params: &P,
        payload: &[u8],
    ) -> Result<ReplySlot, CallError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let message = Message::request(id, method, params, payload.len())
            .map_err(|err| CallError::Broken(err.to_string()))?;
        let (reply_tx, reply_rx) = oneshot::channel();
        lock(&self.pending).insert(id, reply_tx);
        let written = {
            let mut stdin = self.stdin.lock().await;
            transport::write_frame(&mut *stdin, &message, payload).await
        };
        if written.is_err() {
            lock(&self.pending).remove(&id);
            // A write fails because the process is gone: report how it ended.
            let how = tokio::time::timeout(Duration::from_secs(5), self.exited()).await;
            return Err(CallError::Exited(
                how.unwrap_or_else(|_| "a broken pipe".into()),
            ));
        }
        Ok(reply_rx)
    }
}

/// Where the reader task delivers one request's answer.
type ReplySlot = oneshot::Receiver<Result<Routed, CallError>>;

/// A `score` request written to the runner whose answer has not been read yet.
pub struct PendingScore {
    reply: ReplySlot,
    exit: watch::Receiver<Option<String>>,
}

impl PendingScore {
    /// Waits for the answer (the runner answers requests in the order they were sent).
    pub async fn reply(self) -> Result<ScoreReply, CallError> {
        let routed = match self.reply.await {
            Ok(outcome) => outcome?,
            Err(_) => return Err(CallError::Exited(wait_for_exit(self.exit).await)),
        };
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
}

impl Drop for Runner {
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
/// publishes how it ended.
async fn own_child(
    mut child: Child,
    kill: CancellationToken,
    exit_tx: watch::Sender<Option<String>>,
) {
    let status = tokio::select! {
        status = child.wait() => status.ok(),
        _ = kill.cancelled() => {
            let _ = child.start_kill();
            child.wait().await.ok()
        }
    };
    let _ = exit_tx.send(Some(platform::describe_exit(status)));
}

/// Passes the runner's stderr (user prints to stderr, C libraries, tracebacks) through
/// to our log line by line, never letting a huge line or a flood block the runner.
async fn pass_through_stderr(stderr: impl AsyncRead + Unpin) {
    let mut reader = BufReader::with_capacity(64 * 1024, stderr);
    let mut line = Vec::new();
    while let Ok(Some(_)) =
        transport::read_capped_line(&mut reader, &mut line, MAX_STDERR_LINE).await
    {
        logging::write_runner_stderr(&String::from_utf8_lossy(&line));
    }
}

/// Reads every frame the runner sends and routes it: responses to their callers, log
/// records to the log, stream chunks to their bodies. When the runner's stdout closes,
/// every pending call fails at once with how the runner ended.
async fn route_frames<R: AsyncRead + Unpin>(
    mut reader: FrameReader<R>,
    pid: u32,
    pending: Pending,
    hello_tx: oneshot::Sender<Hello>,
    exit: watch::Receiver<Option<String>>,
) {
    let mut hello_tx = Some(hello_tx);
    let mut streams: HashMap<u64, OpenStream> = HashMap::new();
    loop {
        let frame = match reader.next().await {
            Ok(Incoming::Frame(frame)) => frame,
            Ok(Incoming::Garbage(what)) => {
                tracing::warn!(target: "azmlinfsrv", "Ignored garbage from the runner (pid {pid}) on its protocol channel: {what}");
                continue;
            }
            Ok(Incoming::Closed) | Err(_) => break,
        };
        match frame.message.kind() {
            MessageKind::Response(id) => {
                let Some(reply) = lock(&pending).remove(&id) else {
                    tracing::warn!(target: "azmlinfsrv", "The runner (pid {pid}) answered request {id}, which nobody is waiting for");
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
                    streams.insert(id, (chunk_tx, done_tx));
                    (chunk_rx, done_rx)
                });
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
                    );
                }
            }
            MessageKind::Notification("hello") => {
                let hello = frame.message.params_as::<Hello>();
                if let (Some(hello), Some(tx)) = (hello, hello_tx.take()) {
                    let _ = tx.send(hello);
                }
            }
            MessageKind::Notification("chunk") => {
                let Some(event) = stream_event(&frame.message) else {
                    continue;
                };
                if let Some((chunks, _)) = streams.get(&event.id) {
                    // A client that went away drops the receiver: the rest is discarded.
                    let _ = chunks.send(Ok(frame.payload)).await;
                }
            }
            MessageKind::Notification("end") => {
                let Some(event) = stream_event(&frame.message) else {
                    continue;
                };
                if let Some((chunks, done)) = streams.remove(&event.id) {
                    if let Some(error) = event.error {
                        let _ = chunks.send(Err(error)).await;
                    }
                    let _ = done.send(());
                }
            }
            other => {
                tracing::warn!(target: "azmlinfsrv", "Ignored an unexpected message from the runner (pid {pid}): {other:?}");
            }
        }
    }
    let how = wait_for_exit(exit).await;
    for (_, reply) in lock(&pending).drain() {
        let _ = reply.send(Err(CallError::Exited(how.clone())));
    }
    for (_, (chunks, _done)) in streams.drain() {
        let _ = chunks
            .send(Err(format!(
                "the scoring process ended with {how} while streaming"
            )))
            .await;
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
