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
use super::replies::{
    error_reply, json_message, known_length, log_access, set_run_failed, with_body,
    CONTENT_TYPE_HTML, CONTENT_TYPE_JSON, METHOD_NOT_ALLOWED_MESSAGE, NOT_FOUND_MESSAGE,
};
use super::request_ids::{insert_if_nonempty, RequestIds};
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
    let body = match read_limited(
        body,
        declared_length,
        state.max_body_bytes,
        state.read_timeout,
    )
    .await
    {
        Ok(body) => body,
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
    )
    .await
}

/// The request's headers as werkzeug shows them to scripts under gunicorn, decided here
/// once (the runner uses them as they come, see `runner/PROTOCOL.md`): names spelled
/// as werkzeug spells them, names containing `_` dropped (gunicorn drops them: they
/// could pose as other headers), repeated headers joined with `,` in arrival order
/// (`Content-Type` and `Content-Length`: the last one wins, as in the WSGI environ),
/// and an empty `Content-Type` left out, as werkzeug leaves it out.
fn werkzeug_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    // `keys()` yields each name once, in order of its first arrival.
    headers
        .keys()
        .filter(|name| !name.as_str().contains('_'))
        .filter_map(|name| {
            let mut values = headers
                .get_all(name)
                .iter()
                .map(|value| String::from_utf8_lossy(value.as_bytes()));
            let is_environ_key =
                *name == http::header::CONTENT_TYPE || *name == http::header::CONTENT_LENGTH;
            let value = if is_environ_key {
                values.next_back()?.into_owned()
            } else {
                values.collect::<Vec<_>>().join(",")
            };
            if is_environ_key && value.is_empty() {
                return None;
            }
            Some((title_case(name.as_str()), value))
        })
        .collect()
}

/// `X-H2O-Id` from `x-h2o-id`: Python's `str.title()`, as werkzeug applies it: a letter
/// is upper-cased when the character before it is not a letter, lower-cased otherwise.
fn title_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut follows_letter = false;
    for c in name.chars() {
        out.push(if follows_letter {
            c.to_ascii_lowercase()
        } else {
            c.to_ascii_uppercase()
        });
        follows_letter = c.is_ascii_alphabetic();
    }
    out
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

/// The first value of `key` in a query string, percent-decoded.
fn query_value(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(name) == key).then(|| percent_decode(value))
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => out.push(b' '),
            b'%' if index + 2 < bytes.len() => {
                match u8::from_str_radix(&text[index + 1..index + 3], 16) {
                    Ok(byte) => {
                        out.push(byte);
                        index += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            other => out.push(other),
        }
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_are_title_cased_like_werkzeug() {
        assert_eq!(title_case("content-type"), "Content-Type");
        assert_eq!(
            title_case("x-ms-client-request-id"),
            "X-Ms-Client-Request-Id"
        );
        // A letter after a digit starts a word, as with Python's str.title().
        assert_eq!(title_case("x-h2o-id"), "X-H2O-Id");
        assert_eq!(title_case("x-1st.try"), "X-1St.Try");
    }

    #[test]
    fn headers_are_folded_as_werkzeug_shows_them() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("host", "localhost"),
            ("x-dup", "a"),
            ("content-type", "text/plain"),
            ("x_under", "dropped"),
            ("x-dup", "b"),
            ("content-type", "application/json"),
            ("x-empty", ""),
        ] {
            headers.append(
                http::HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        let folded = werkzeug_headers(&headers);
        let expected = [
            ("Host", "localhost"),
            ("X-Dup", "a,b"),
            ("Content-Type", "application/json"),
            ("X-Empty", ""),
        ];
        assert_eq!(
            folded,
            expected
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        );
        let mut empty_type = HeaderMap::new();
        empty_type.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(""));
        assert!(werkzeug_headers(&empty_type).is_empty());
    }

    #[test]
    fn query_values_are_found_and_decoded() {
        assert_eq!(
            query_value("version=3.1", "version").as_deref(),
            Some("3.1")
        );
        assert_eq!(query_value("a=1&version=", "version").as_deref(), Some(""));
        assert_eq!(query_value("a=1", "version"), None);
        assert_eq!(query_value("version=%33", "version").as_deref(), Some("3"));
        assert_eq!(percent_decode("100%"), "100%");
    }
}
