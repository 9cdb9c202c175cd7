//! The routes: `/` (liveness), `/score`, `/swagger.json`, and the JSON 404/405 for
//! everything else. One warp filter extracts the request; `dispatch` picks the handler.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use futures_util::Stream;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use warp::filters::path::FullPath;
use warp::reply::Response;
use warp::Filter;

use super::body::{read_limited, BodyError};
use super::query::query_value;
use super::replies::{
    error_reply, json_message, known_length, log_access, set_run_failed, with_body,
    CONTENT_TYPE_HTML, CONTENT_TYPE_JSON, METHOD_NOT_ALLOWED_MESSAGE, NOT_FOUND_MESSAGE,
};
use super::request_ids::{insert_if_nonempty, RequestIds};
use super::script_headers::werkzeug_headers;
use super::{metrics_route, score, AppState, PeerAddress};
use crate::worker::pool::ScoreRequest;
use crate::worker::wire::InputMode;

/// The whole application as one warp filter.
pub fn app(
    state: Arc<AppState>,
) -> impl Filter<Extract = (Response,), Error = std::convert::Infallible> + Clone {
    let raw_query = warp::query::raw().or(warp::any().map(String::new)).unify();
    warp::method()
        .and(warp::path::full())
        .and(raw_query)
        .and(warp::header::headers_cloned())
        .and(warp::body::stream())
        .and(warp::ext::optional::<PeerAddress>())
        .then(
            move |method, path: FullPath, query, headers, body, peer: Option<PeerAddress>| {
                let state = state.clone();
                let request = RequestHead {
                    method,
                    path: path.as_str().to_string(),
                    query,
                    headers,
                    peer: peer.map(|PeerAddress(address)| address),
                };
                async move { dispatch(&state, request, body).await }
            },
        )
        .recover(|_| async {
            Ok::<Response, std::convert::Infallible>(json_message(
                StatusCode::BAD_REQUEST,
                "Bad request",
            ))
        })
        .unify()
}

/// Everything about a request but its body.
struct RequestHead {
    method: Method,
    path: String,
    query: String,
    headers: HeaderMap,
    peer: Option<SocketAddr>,
}

/// Routes one request and adds the headers every answer carries.
async fn dispatch<S, B>(state: &AppState, request: RequestHead, body: S) -> Response
where
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: bytes::Buf,
{
    let started = Instant::now();
    let RequestHead {
        method,
        path,
        query,
        headers,
        ..
    } = &request;
    let path = path.as_str();
    let ids = match RequestIds::from_headers(headers) {
        Ok(ids) => ids,
        Err(too_long) => {
            let mut response = error_reply(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                too_long.message,
                false,
            );
            if let Some(request_id) = &too_long.request_id {
                insert_if_nonempty(response.headers_mut(), "x-request-id", request_id);
            }
            state.add_server_version(response.headers_mut());
            return response;
        }
    };
    if ids.is_legacy_id_used {
        tracing::warn!(target: "azmlinfsrv", "The x-ms-request-id header is deprecated and will be removed in the future; use x-ms-client-request-id instead");
    }
    let is_known_route = matches!(path, "/" | "/score" | "/swagger.json");
    let mut response = match path {
        "/" => liveness(state, method),
        "/score" => score_route(state, &request, body, &ids).await,
        "/swagger.json" => swagger(state, method, query).await,
        READINESS_PATH => readiness(state, method),
        metrics_route::METRICS_PATH => metrics_route::respond(state, method),
        _ => error_reply(StatusCode::NOT_FOUND, NOT_FOUND_MESSAGE, false),
    };
    let response_headers = response.headers_mut();
    ids.apply(response_headers);
    state.add_server_version(response_headers);
    if is_known_route && response.status() != StatusCode::METHOD_NOT_ALLOWED {
        state.cors.apply(method, headers, response.headers_mut());
    }
    if path != "/" && is_known_route {
        log_access(
            method,
            path,
            response.status(),
            started,
            known_length(&response),
            &ids.request_id,
        );
    }
    crate::metrics::observe_request(path, method, response.status().as_u16(), started);
    let facts = crate::app_insights::RequestFacts {
        method,
        path,
        query,
        headers,
        started,
    };
    crate::app_insights::track_request(facts, &mut response).await;
    if *method == Method::HEAD {
        // HEAD answers carry the headers of the GET answer but never a body.
        *response.body_mut() = warp::hyper::body::Bytes::new().into();
    }
    response
}

/// Our addition for operators: ready only when every worker has finished `init()`.
const READINESS_PATH: &str = "/readiness";

fn readiness(state: &AppState, method: &Method) -> Response {
    if *method != Method::GET && *method != Method::HEAD {
        return error_reply(
            StatusCode::METHOD_NOT_ALLOWED,
            METHOD_NOT_ALLOWED_MESSAGE,
            false,
        );
    }
    let (ready, total) = state.pool.readiness();
    let (status, word) = match ready {
        0 => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        n if n < total => (StatusCode::SERVICE_UNAVAILABLE, "degraded"),
        _ => (StatusCode::OK, "ready"),
    };
    let body = serde_json::json!({"status": word, "workers_ready": ready, "workers": total});
    with_body(status, CONTENT_TYPE_JSON, body.to_string().into())
}

/// `GET /`: healthy once a runner has finished `init()`; 503 before that (and while no
/// runner is alive) instead of holding the probe like the reference does.
fn liveness(state: &AppState, method: &Method) -> Response {
    match *method {
        Method::GET | Method::HEAD => {
            if state.pool.is_ready() {
                with_body(StatusCode::OK, CONTENT_TYPE_HTML, "Healthy".into())
            } else {
                let (ready, total) = state.pool.readiness();
                let message = format!(
                    "Not ready: the scoring script's init() has not completed in any worker yet \
                     ({ready} of {total} ready). The server is starting or restarting its workers; retry shortly."
                );
                json_message(StatusCode::SERVICE_UNAVAILABLE, &message)
            }
        }
        Method::OPTIONS => {
            let mut response = with_body(StatusCode::OK, CONTENT_TYPE_HTML, Default::default());
            response
                .headers_mut()
                .insert("allow", HeaderValue::from_static("GET, HEAD, OPTIONS"));
            response
        }
        _ => error_reply(
            StatusCode::METHOD_NOT_ALLOWED,
            METHOD_NOT_ALLOWED_MESSAGE,
            false,
        ),
    }
}

async fn score_route<S, B>(
    state: &AppState,
    request: &RequestHead,
    body: S,
    ids: &RequestIds,
) -> Response
where
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: bytes::Buf,
{
    let RequestHead {
        method,
        path,
        query,
        headers,
        peer,
    } = request;
    // With @rawhttp every method that reaches /score goes to run(), as in the reference.
    let is_rawhttp = state.pool.input_mode() == Some(InputMode::Rawhttp);
    match *method {
        Method::GET | Method::POST => {}
        Method::OPTIONS | Method::HEAD if is_rawhttp => {}
        Method::OPTIONS => {
            let mut response = with_body(StatusCode::OK, CONTENT_TYPE_HTML, Default::default());
            set_run_failed(response.headers_mut(), false);
            return response;
        }
        Method::HEAD => {
            let mut response = with_body(
                StatusCode::METHOD_NOT_ALLOWED,
                CONTENT_TYPE_JSON,
                Default::default(),
            );
            set_run_failed(response.headers_mut(), false);
            return response;
        }
        _ => {
            return error_reply(
                StatusCode::METHOD_NOT_ALLOWED,
                METHOD_NOT_ALLOWED_MESSAGE,
                false,
            )
        }
    }
    let declared_length = headers
        .get("content-length")
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse::<u64>().ok());
    // The lease holds the body's share of the server's budget until the answer is built.
    let (body, _body_lease) = match read_limited(
        body,
        declared_length,
        state.max_body_bytes,
        state.read_timeout,
        &state.body_budget,
    )
    .await
    {
        Ok(read) => read,
        Err(BodyError::OverBudget { budget }) => {
            let message = format!(
                "The server is at capacity: the bodies of the requests it holds already take its \
                 budget of {} MiB. Retry shortly, or send smaller bodies (the budget is twice \
                 --max_body_mb, at least 1024 MiB).",
                budget / (1024 * 1024)
            );
            let mut response = error_reply(StatusCode::SERVICE_UNAVAILABLE, &message, false);
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from_static("1"));
            return response;
        }
        Err(BodyError::TooLarge { limit }) => {
            let message = format!(
                "The request body is larger than the server's limit of {} MiB. Send a smaller body, \
                 or start the server with a higher --max_body_mb.",
                limit / (1024 * 1024)
            );
            return error_reply(StatusCode::PAYLOAD_TOO_LARGE, &message, false);
        }
        Err(BodyError::TooSlow) => {
            return error_reply(
                StatusCode::REQUEST_TIMEOUT,
                "The request body was not received in time: the client sent it too slowly or stopped sending.", false);
        }
        Err(BodyError::Broken(reason)) => {
            return error_reply(
                StatusCode::BAD_REQUEST,
                &format!("The request body could not be read: {reason}"),
                false,
            );
        }
    };
    let request = ScoreRequest {
        method: method.as_str().to_string(),
        path: path.to_string(),
        query: query.clone(),
        headers: werkzeug_headers(headers),
        request_id: ids.request_id.clone(),
        remote_addr: peer.map(|address| address.ip().to_string()),
        body,
    };
    score::respond(
        &state.pool,
        request,
        state.scoring_timeout_ms,
        state.queue_limit,
        state.is_debug_errors,
    )
    .await
}

async fn swagger(state: &AppState, method: &Method, query: &str) -> Response {
    if *method != Method::GET && *method != Method::HEAD {
        return error_reply(
            StatusCode::METHOD_NOT_ALLOWED,
            METHOD_NOT_ALLOWED_MESSAGE,
            false,
        );
    }
    let Some(documents) = state.swagger.get() else {
        return error_reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "The OpenAPI document is not ready: the scoring script has not been loaded yet. Retry shortly.", false);
    };
    let version = query_value(query, "version");
    let mut response = match documents.find(version.as_deref()) {
        Ok(document) => with_body(
            StatusCode::OK,
            CONTENT_TYPE_JSON,
            bytes::Bytes::copy_from_slice(document),
        ),
        Err(not_found) => json_message(StatusCode::NOT_FOUND, &not_found.to_string()),
    };
    set_run_failed(response.headers_mut(), false);
    response
}
