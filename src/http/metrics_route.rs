//! `GET /metrics`: the Prometheus metrics (`crate::metrics`) with the pool's gauges as
//! of now. Needs no worker, is not in the access log, and is a 404 like any unknown
//! route when metrics are off.

use http::{Method, StatusCode};
use warp::reply::Response;

use super::replies::{error_reply, with_body, METHOD_NOT_ALLOWED_MESSAGE, NOT_FOUND_MESSAGE};
use super::AppState;

pub const METRICS_PATH: &str = "/metrics";

pub fn respond(state: &AppState, method: &Method) -> Response {
    let Some(text) = crate::metrics::render(state.pool.snapshot()) else {
        return error_reply(StatusCode::NOT_FOUND, NOT_FOUND_MESSAGE, false);
    };
    if *method != Method::GET && *method != Method::HEAD {
        return error_reply(
            StatusCode::METHOD_NOT_ALLOWED,
            METHOD_NOT_ALLOWED_MESSAGE,
            false,
        );
    }
    with_body(StatusCode::OK, crate::metrics::CONTENT_TYPE, text.into())
}
