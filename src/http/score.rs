//! `/score`: hands the request to the worker pool and turns the pool's outcome into the
//! contract's response (status, body, `x-ms-run-*` headers).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};
use warp::reply::{Reply, Response};

use super::debug_errors;
use super::replies::{error_reply, set_run_failed};
use crate::app_insights;
use crate::worker::pool::{ScoreOutcome, ScoreRequest};
use crate::worker::process::{BodyStream, ReplyBody};
use crate::worker::wire::ErrorKind;

/// The contract's answer when the server or the runner failed (not the script).
const INTERNAL_ERROR_MESSAGE: &str =
    "An unexpected internal error occurred. Check the logs for more info.";
/// The contract's answer when `run()` raised (the traceback is in the log).
const RUN_ERROR_MESSAGE: &str =
    "An unexpected error occurred in scoring script. Check the logs for more info.";

/// Runs the request through the pool and builds the response.
pub async fn respond(
    pool: &crate::worker::pool::Pool,
    request: ScoreRequest,
    scoring_timeout_ms: u128,
    queue_limit: usize,
    is_debug_errors: bool,
) -> Response {
    let request_id = request.request_id.clone();
    let model_input = app_insights::ModelInput::of(&request.body);
    let mut response = match pool.score(request).await {
        ScoreOutcome::Answered { result, body } => {
            let mut response = match body {
                ReplyBody::Full(bytes) => Response::new(bytes.into()),
                ReplyBody::Stream(chunks) => warp::reply::stream(ChunkStream::new(chunks)).into_response(),
            };
            *response.status_mut() = StatusCode::from_u16(result.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let headers = response.headers_mut();
            for (name, value) in &result.headers {
                if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
                    headers.append(name, value);
                }
            }
            if let Some(run_ms) = result.run_ms {
                if let Ok(value) = HeaderValue::from_str(&format!("{run_ms:.3}")) {
                    headers.insert("x-ms-run-fn-exec-ms", value);
                }
            }
            if let Some(is_failed) = result.run_failed {
                set_run_failed(headers, is_failed);
            }
            response
        }
        ScoreOutcome::Failed(error) => {
            // The server words every answer but those about the input, which only the
            // runner can describe; its message for the others is a diagnostic.
            let timeout_message = || format!("Scoring timeout after {scoring_timeout_ms} ms");
            let failure = app_insights::RunFailure::from_error(&error);
            let is_detailed = is_debug_errors && debug_errors::applies_to(&error.kind());
            let (status, message, is_run_failed) = match error.kind() {
                ErrorKind::BadInput => (StatusCode::BAD_REQUEST, error.message, false),
                ErrorKind::UnsupportedMediaType => {
                    (StatusCode::UNSUPPORTED_MEDIA_TYPE, error.message, false)
                }
                ErrorKind::UserError => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    RUN_ERROR_MESSAGE.to_string(),
                    true,
                ),
                ErrorKind::Timeout => (StatusCode::INTERNAL_SERVER_ERROR, timeout_message(), true),
                ErrorKind::NotSerializable
                | ErrorKind::Internal
                | ErrorKind::ScriptNotFound
                | ErrorKind::ImportFailed
                | ErrorKind::BadScript
                | ErrorKind::InitFailed
                | ErrorKind::Unknown(_) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    INTERNAL_ERROR_MESSAGE.to_string(),
                    false,
                ),
            };
            let mut response = if is_detailed {
                debug_errors::reply(status, &message, is_run_failed, error.data.as_deref())
            } else {
                error_reply(status, &message, is_run_failed)
            };
            if let Some(failure) = failure {
                response.extensions_mut().insert(failure);
            }
            response
        }
        ScoreOutcome::TimedOut => {
            let mut response = error_reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("Scoring timeout after {scoring_timeout_ms} ms"),
                true,
            );
            if let Some(failure) = app_insights::RunFailure::hard_timeout(scoring_timeout_ms) {
                response.extensions_mut().insert(failure);
            }
            response
        }
        ScoreOutcome::WorkerExited { pid, how } => {
            tracing::error!(target: "azmlinfsrv", "Request {request_id}: the scoring process (pid {pid}) ended with {how} while running run()");
            let message = format!(
                "The scoring process (pid {pid}) exited with {how} while running this request. \
                 A new one is being started; check the server log for the cause (a crash in native code, \
                 os._exit or sys.exit in run(), or running out of memory)."
            );
            error_reply(StatusCode::INTERNAL_SERVER_ERROR, &message, true)
        }
        ScoreOutcome::QueueFull => {
            tracing::warn!(target: "azmlinfsrv", "Request {request_id} refused with 503: {queue_limit} requests are already waiting for a worker");
            let message = format!(
                "The server is at capacity: {queue_limit} requests are already waiting for a worker. \
                 Retry shortly, or start the server with more workers (--worker_count) or a longer queue (--queue_limit)."
            );
            unavailable(&message, "1")
        }
        ScoreOutcome::Unavailable => unavailable(
            "No scoring process is running: every worker is restarting after a failure. Retry shortly; \
             the server log says why the workers failed.",
            "5",
        ),
        ScoreOutcome::ShuttingDown => unavailable_without_retry(
            "The server is shutting down: this request was still waiting or running when its \
             grace period (--shutdown_grace) ended. Send it again; another instance (or this one \
             once restarted) will answer it.",
        ),
        ScoreOutcome::Internal(reason) => {
            tracing::error!(target: "azmlinfsrv", "Request {request_id} failed inside the server: {reason}");
            error_reply(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL_ERROR_MESSAGE, false)
        }
    };
    // For App Insights' model data collection (the request hook reads it).
    if let Some(input) = model_input {
        response.extensions_mut().insert(input);
    }
    response
}

fn unavailable_without_retry(message: &str) -> Response {
    error_reply(StatusCode::SERVICE_UNAVAILABLE, message, false)
}

fn unavailable(message: &str, retry_after_secs: &'static str) -> Response {
    let mut response = error_reply(StatusCode::SERVICE_UNAVAILABLE, message, false);
    response
        .headers_mut()
        .insert("retry-after", HeaderValue::from_static(retry_after_secs));
    response
}

/// A streamed `run()` body as an HTTP body stream; a generator failure cuts the body.
///
/// hyper drops the connection at once when a body fails, losing the head and the chunks
/// still in its write buffer: the client would see no answer at all. So the failure is
/// held back for one poll, in which hyper flushes what the generator produced; the
/// client then sees the status and those chunks, and a chunked body that never ends.
struct ChunkStream {
    chunks: BodyStream,
    failure: Option<std::io::Error>,
}

impl ChunkStream {
    fn new(chunks: BodyStream) -> Self {
        ChunkStream {
            chunks,
            failure: None,
        }
    }
}

impl futures_util::Stream for ChunkStream {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(failure) = self.failure.take() {
            return Poll::Ready(Some(Err(failure)));
        }
        match self.chunks.poll_recv(cx) {
            Poll::Ready(Some(Err(reason))) => {
                self.failure = Some(std::io::Error::other(reason));
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            other => other.map(|item| item.map(|chunk| chunk.map_err(std::io::Error::other))),
        }
    }
}
