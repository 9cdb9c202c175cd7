//! The batching exporter: takes envelopes from the request path without ever waiting
//! (a bounded queue, `try_send`; a full queue drops and counts), and posts them from
//! one background task in batches (100 items or every 5 s) to `<endpoint>/v2.1/track`,
//! each post bounded by a timeout. Drops and failed posts are logged once in a while,
//! never per request. On shutdown the queue is drained and sent within a deadline.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::envelope::Envelope;

/// Items waiting to be sent, at most; and at most this many bytes of them (each
/// item's texts are capped too, see `hooks`): the memory telemetry can take.
pub const QUEUE_CAPACITY: usize = 2048;
pub const QUEUE_MAX_BYTES: usize = 16 * 1024 * 1024;
/// At most this many items per post (the reference's batch size).
const BATCH_SIZE: usize = 100;
/// A batch that has not filled up is sent after this long (the reference's interval).
const BATCH_INTERVAL: Duration = Duration::from_secs(5);
/// How long one post may take; a hanging endpoint costs this per batch, off the
/// request path, and the queue drops what arrives meanwhile.
const POST_TIMEOUT: Duration = Duration::from_secs(10);
/// Drops and failures are summed up in the log at most this often.
const REPORT_EVERY: Duration = Duration::from_secs(60);

/// An item in the queue, with the size it was counted at.
struct Queued {
    envelope: Envelope,
    bytes: usize,
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The request path's end of the exporter.
pub struct Exporter {
    queue: mpsc::Sender<Queued>,
    /// The approximate size of the items in the queue (see `QUEUE_MAX_BYTES`).
    queued_bytes: Arc<AtomicUsize>,
    /// Dropped since the last report.
    dropped: Arc<AtomicU64>,
    /// When drops were last reported: seconds since `born`, plus one (0: never).
    last_drop_report: AtomicU64,
    born: Instant,
    stop: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Exporter {
    /// Starts the background task on the current runtime.
    pub fn start(ingestion_endpoint: &str) -> Exporter {
        let (queue, items) = mpsc::channel(QUEUE_CAPACITY);
        let dropped = Arc::new(AtomicU64::new(0));
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        let stop = CancellationToken::new();
        let sender = Sender {
            client: https_client(),
            url: format!("{ingestion_endpoint}/v2.1/track"),
            reports: Reports::new(dropped.clone()),
        };
        let task = tokio::spawn(run(items, sender, queued_bytes.clone(), stop.clone()));
        Exporter {
            queue,
            queued_bytes,
            dropped,
            last_drop_report: AtomicU64::new(0),
            born: Instant::now(),
            stop,
            task: Mutex::new(Some(task)),
        }
    }

    /// Queues an item; never waits. A full queue (the endpoint is slow or down) drops
    /// the item and counts it.
    pub fn submit(&self, envelope: Envelope) {
        let bytes = envelope.approximate_bytes();
        let before = self.queued_bytes.fetch_add(bytes, Ordering::Relaxed);
        let is_over_budget = before + bytes > QUEUE_MAX_BYTES;
        if is_over_budget || self.queue.try_send(Queued { envelope, bytes }).is_err() {
            self.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            self.report_drops_if_due();
        }
    }

    /// Says how many items were dropped, at most once per `REPORT_EVERY`. Done here
    /// rather than in the sending task, which may be stuck on a hanging endpoint; the
    /// log line is queued to the log writer, it does not wait.
    fn report_drops_if_due(&self) {
        let now = self.born.elapsed().as_secs() + 1;
        let last = self.last_drop_report.load(Ordering::Relaxed);
        let is_due = last == 0 || now.saturating_sub(last) >= REPORT_EVERY.as_secs();
        let is_mine = is_due
            && self
                .last_drop_report
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
        if is_mine {
            let dropped = self.dropped.swap(0, Ordering::Relaxed);
            tracing::warn!(target: "azmlinfsrv", "Application Insights: {dropped} telemetry item(s) dropped: the send queue was full ({QUEUE_CAPACITY} items or {} MiB waiting), so the ingestion endpoint is slow or unreachable, or telemetry comes faster than it can be sent. Answers are not affected. (Said at most once a minute.)", QUEUE_MAX_BYTES / (1024 * 1024));
        }
    }

    /// Sends what is queued and stops, waiting at most `deadline`.
    pub async fn shut_down(&self, deadline: Duration) {
        self.stop.cancel();
        let task = self.task.lock().ok().and_then(|mut task| task.take());
        let Some(mut task) = task else { return };
        if tokio::time::timeout(deadline, &mut task).await.is_err() {
            task.abort();
            tracing::warn!(target: "azmlinfsrv", "Application Insights: the last telemetry could not be sent within {} s of shutting down; it is dropped", deadline.as_secs());
        }
    }
}

fn https_client() -> HttpsClient {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .build();
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector)
}

/// The background task: fills batches, sends them, and on `stop` sends what is left.
async fn run(
    mut items: mpsc::Receiver<Queued>,
    mut sender: Sender,
    queued_bytes: Arc<AtomicUsize>,
    stop: CancellationToken,
) {
    // Out of the queue, an item no longer counts against its byte budget: the batch
    // being sent is bounded by `BATCH_SIZE` instead.
    let take = |item: Queued| {
        queued_bytes.fetch_sub(item.bytes, Ordering::Relaxed);
        item.envelope
    };
    let mut batch = Vec::with_capacity(BATCH_SIZE);
    let mut tick = tokio::time::interval(BATCH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            item = items.recv() => match item {
                Some(item) => {
                    batch.push(take(item));
                    if batch.len() >= BATCH_SIZE {
                        sender.send(std::mem::take(&mut batch)).await;
                    }
                }
                None => break,
            },
            _ = tick.tick() => {
                if !batch.is_empty() {
                    sender.send(std::mem::take(&mut batch)).await;
                }
                sender.reports.log_if_due(false);
            }
            _ = stop.cancelled() => break,
        }
    }
    // Shutting down: whatever is queued goes out now (the caller bounds how long).
    while let Ok(item) = items.try_recv() {
        batch.push(take(item));
        if batch.len() >= BATCH_SIZE {
            sender.send(std::mem::take(&mut batch)).await;
        }
    }
    if !batch.is_empty() {
        sender.send(batch).await;
    }
    sender.reports.log_if_due(true);
}

struct Sender {
    client: HttpsClient,
    url: String,
    reports: Reports,
}

impl Sender {
    async fn send(&mut self, batch: Vec<Envelope>) {
        let count = batch.len() as u64;
        match tokio::time::timeout(POST_TIMEOUT, self.post(&batch)).await {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => self.reports.failed(count, reason),
            Err(_) => self.reports.failed(
                count,
                format!("no answer within {} s", POST_TIMEOUT.as_secs()),
            ),
        }
    }

    async fn post(&self, batch: &[Envelope]) -> Result<(), String> {
        // A plain JSON array, `application/json`, not compressed: what the reference's
        // exporter sends.
        let body = serde_json::to_vec(batch).map_err(|err| format!("cannot encode: {err}"))?;
        let request = http::Request::post(&self.url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|err| format!("bad ingestion URL {}: {err}", self.url))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|err| format!("cannot reach {}: {}", self.url, error_chain(&err)))?;
        let status = response.status();
        // Read the answer so that the connection can be reused.
        let _ = response.into_body().collect().await;
        match status.as_u16() {
            200 => Ok(()),
            // Some items were refused (they are malformed or over quota): not retried.
            206 => Ok(()),
            code => Err(format!("{} answered HTTP {code}", self.url)),
        }
    }
}

/// `error: cause: cause`, for hyper's errors whose top level says little.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Failed posts since the last report, said in the log at most once a minute (drops
/// are said by `Exporter::submit`; those not said yet are said on shutdown).
struct Reports {
    dropped: Arc<AtomicU64>,
    failed_items: u64,
    last_failure: Option<String>,
    last_report: Option<Instant>,
}

impl Reports {
    fn new(dropped: Arc<AtomicU64>) -> Reports {
        Reports {
            dropped,
            failed_items: 0,
            last_failure: None,
            last_report: None,
        }
    }

    fn failed(&mut self, items: u64, reason: String) {
        self.failed_items += items;
        self.last_failure = Some(reason);
        self.log_if_due(false);
    }

    /// Logs the failures since the last report: the first at once, then at most once
    /// per `REPORT_EVERY`, and on shutdown (`is_final`) whatever is left.
    fn log_if_due(&mut self, is_final: bool) {
        let is_due = is_final
            || self
                .last_report
                .is_none_or(|last| last.elapsed() >= REPORT_EVERY);
        if is_due && self.failed_items > 0 {
            self.last_report = Some(Instant::now());
            tracing::warn!(target: "azmlinfsrv", "Application Insights: {} telemetry item(s) could not be sent ({}). They are lost; answers are not affected. Check APPLICATIONINSIGHTS_CONNECTION_STRING and that this host can reach the ingestion endpoint. (Said at most once a minute.)",
                self.failed_items, self.last_failure.take().unwrap_or_default());
            self.failed_items = 0;
        }
        let dropped = if is_final {
            self.dropped.swap(0, Ordering::Relaxed)
        } else {
            0
        };
        if dropped > 0 {
            tracing::warn!(target: "azmlinfsrv", "Application Insights: {dropped} more telemetry item(s) were dropped because the send queue was full");
        }
    }
}
