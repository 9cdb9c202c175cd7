//! The HTTP layer: routes, request ids, CORS, error bodies, response headers, access log
//! and body limits. It turns pool outcomes into the contract's responses and knows
//! nothing about processes.

mod body;
mod cors;
mod debug_errors;
mod metrics_route;
mod query;
mod replies;
mod request_ids;
mod routes;
mod score;
mod script_headers;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use body::BodyBudget;
pub use cors::Cors;

use crate::openapi::SwaggerDocuments;
use crate::worker::pool::Pool;

/// The most a request's head (request line plus headers) may take up.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// The client's address, put on every request by the accept loop.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddress(pub std::net::SocketAddr);

/// What the handlers share.
pub struct AppState {
    pub pool: Pool,
    pub cors: Cors,
    pub server_version: Option<HeaderValue>,
    pub scoring_timeout_ms: u128,
    pub max_body_bytes: usize,
    /// What the bodies of all requests in flight may take together.
    pub body_budget: body::BodyBudget,
    pub queue_limit: usize,
    /// `--debug_errors`: a failed run() answers with its exception's details.
    pub is_debug_errors: bool,
    /// How long a client gets to send its headers, and then its body.
    pub read_timeout: Duration,
    /// Built once the script is loaded (its schemas feed the documents).
    pub swagger: Arc<OnceLock<SwaggerDocuments>>,
}

impl AppState {
    fn add_server_version(&self, headers: &mut HeaderMap) {
        if let Some(version) = &self.server_version {
            headers.insert("x-ms-server-version", version.clone());
        }
    }
}

/// Serves the app on `listener` until `shutdown` fires, then stops accepting and waits
/// for the connections in flight (bounded by the caller's grace period).
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: CancellationToken,
    connections: TaskTracker,
) {
    let read_timeout = state.read_timeout;
    let service = warp::service(routes::app(state));
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    // Out of file descriptors and the like: wait a little, keep serving.
                    tracing::warn!(target: "azmlinfsrv", "Could not accept a connection: {err}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        // Each request learns its client's address (for `request.remote_addr`).
        let service =
            hyper::service::service_fn(move |mut request: http::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(PeerAddress(peer));
                tower_service::Service::call(&mut service.clone(), request)
            });
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            // hyper's header timeout starts with the first byte: a client that connects
            // and never sends anything would hold a connection (and a descriptor) forever.
            // (`peek` waits for real data; `readable()` can report ready at once.)
            let mut first_byte = [0u8; 1];
            if tokio::time::timeout(read_timeout, stream.peek(&mut first_byte))
                .await
                .is_err()
            {
                return;
            }
            // HTTP/1.1 only: the reference speaks nothing else, and every limit above
            // (read timeouts, head size) is set on this builder. (An auto builder also
            // answered HTTP/2, where none of them applied.)
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(read_timeout)
                // Checked on the parsed head, however the bytes arrived (the buffer
                // limit alone misses a head that comes in one read).
                .max_header_size(MAX_HEAD_BYTES)
                .max_buf_size(MAX_HEAD_BYTES);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = shutdown.cancelled() => {
                    // Finish the request in flight, then close the keep-alive connection.
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
}
