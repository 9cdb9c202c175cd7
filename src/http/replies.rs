//! Building responses: JSON error bodies, the headers every response carries, and the
//! per-request access log line.

use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use warp::reply::Response;

pub const CONTENT_TYPE_JSON: &str = "application/json";
pub const CONTENT_TYPE_HTML: &str = "text/html; charset=utf-8";

pub const NOT_FOUND_MESSAGE: &str =
    "The requested URL was not found on the server. If you entered the URL \
     manually please check your spelling and try again.";
pub const METHOD_NOT_ALLOWED_MESSAGE: &str = "The method is not allowed for the requested URL.";

/// `{"message": "..."}` with the contract's content type.
pub fn json_message(status: StatusCode, message: &str) -> Response {
    let body = format!(
        "{{\"message\": {}}}",
        serde_json::Value::String(message.to_string())
    );
    with_body(status, CONTENT_TYPE_JSON, Bytes::from(body))
}

pub fn with_body(status: StatusCode, content_type: &'static str, body: Bytes) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static(content_type));
    response
}

/// A JSON error answer with `x-ms-run-function-failed`, as every error the server
/// builds carries it (`True` only when the script's run() is to blame).
pub fn error_reply(status: StatusCode, message: &str, is_run_failed: bool) -> Response {
    let mut response = json_message(status, message);
    set_run_failed(response.headers_mut(), is_run_failed);
    response
}

/// `x-ms-run-function-failed` as Python prints a bool.
pub fn set_run_failed(headers: &mut HeaderMap, is_failed: bool) {
    let text = if is_failed { "True" } else { "False" };
    headers.insert("x-ms-run-function-failed", HeaderValue::from_static(text));
}

/// The access log line for `/score` and `/swagger.json`: `POST /score 200 1.234ms 10`.
pub fn log_access(
    method: &http::Method,
    path: &str,
    status: StatusCode,
    started: Instant,
    length: Option<u64>,
    request_id: &str,
) {
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    let length = length.map_or_else(|| "N/A".to_string(), |len| len.to_string());
    // `request_id` shows in JSON records only (the text line is the contract's).
    tracing::info!(target: "azmlinfsrv", request_id, "{} {} {} {:.3}ms {}", method, path, status.as_u16(), elapsed_ms, length);
}

/// The body length for the access log, when it is known up front.
pub fn known_length(response: &Response) -> Option<u64> {
    use http_body::Body as _;
    response.body().size_hint().exact()
}
