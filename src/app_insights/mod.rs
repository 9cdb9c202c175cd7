//! Application Insights telemetry, as the reference sends it (requests, traces,
//! exceptions, model data) with the reference's defects fixed: the real status,
//! success and duration in request items, the user's own exception type and message,
//! and model data collection that actually sends.
//!
//! - `envelope`: the JSON types `/v2.1/track` takes, and its time formats;
//! - `exporter`: the bounded queue and the background task that batches and posts;
//! - `hooks`: what the HTTP layer and the workers call; `model_data`: model ids.
//!
//! Why our own exporter rather than `opentelemetry-application-insights`: the items
//! must carry exactly the reference's properties (names with spaces, `Response Value`,
//! `success` as `True`/`False`) next to the real `responseCode`/`success`/`duration`,
//! and traces printed by `init()` belong to no span; the OTel exporter derives those
//! fields from span status and semantic-convention attributes, and would need the
//! logs SDK as well. Its current release needs Rust 1.95 (we build with 1.85) and
//! brings the OTel API + SDK, chrono, flate2, backon and an HTTP client trait to
//! implement; its batch processor drops silently (internal logs) and retries for up to
//! 35 s. Ours is ~900 lines on the hyper client we already have plus rustls for the
//! public https endpoint, and its bounds are ours to state: see `exporter`.

mod envelope;
mod exporter;
mod hooks;
mod model_data;

use std::time::Duration;

use crate::config::Settings;

pub use hooks::{
    track_boot_failure, track_request, track_runner_record, ModelInput, RequestFacts, RunFailure,
};

/// How long shutting down waits for the last telemetry to go out.
const SHUTDOWN_FLUSH_DEADLINE: Duration = Duration::from_secs(3);

/// Starts sending telemetry when App Insights is on (a valid key and the switch);
/// must run inside the runtime. Says where it sends, once.
pub fn start(settings: &Settings) {
    // The reference logs this at every start, on or off, and its users grep for it.
    tracing::info!(target: "azmlinfsrv", "Starting up app insights client");
    if hooks::install(settings).is_some() {
        tracing::info!(target: "azmlinfsrv", "Application Insights telemetry goes to {} (batches of up to 100 items, every 5 s)", settings.app_insights.ingestion_endpoint);
    }
}

/// Sends what is queued, waiting at most a few seconds (shutdown and exit 3).
pub async fn flush_on_shutdown() {
    if let Some(telemetry) = hooks::installed() {
        telemetry.exporter.shut_down(SHUTDOWN_FLUSH_DEADLINE).await;
    }
}
