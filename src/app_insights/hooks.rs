//! Where the server hands telemetry over: one request item per answered request (but
//! `/`), one trace per `print()` line and `azmlinfsrv.trace` record, one exception per
//! failed `run()` / `init()`, and the model data trace. Each hook builds its envelope
//! and queues it without waiting; with telemetry off each is a single check.

use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, Method};
use http_body_util::BodyExt;
use serde_json::{Map, Value};
use warp::reply::Response;

use super::envelope::{
    envelope_duration, iso8601, property_duration, put, severity_of, Data, Envelope, ExceptionData,
    ExceptionDetails, MessageData, Properties, RequestData, SEVERITY_ERROR, SEVERITY_INFORMATION,
};
use super::exporter::Exporter;
use super::model_data;
use crate::config::Settings;
use crate::worker::wire::{ErrorKind, RpcError};

/// App Insights' own limits: longer values are cut by the service anyway, and capping
/// them here bounds the memory each queued item takes.
const MAX_PROPERTY_CHARS: usize = 8192;
const MAX_MESSAGE_CHARS: usize = 32_768;

/// The loggers whose records become traces, as with the reference.
const TRACED_LOGGERS: [&str; 2] = ["azmlinfsrv.print", "azmlinfsrv.trace"];

static TELEMETRY: OnceLock<Telemetry> = OnceLock::new();

/// The running exporter and what every item carries.
pub struct Telemetry {
    pub(super) exporter: Exporter,
    instrumentation_key: String,
    /// `ai.cloud.role` (the resource's `service.name`), the host name, the SDK version.
    tags: Map<String, Value>,
    container_id: String,
    workspace_name: String,
    service_name: String,
    is_response_logged: bool,
    is_model_data_collected: bool,
    /// `["name:version", ...]` as JSON text, for model data collection.
    model_ids: String,
}

/// Starts the exporter and makes the hooks live; `None` when App Insights is off.
pub(super) fn install(settings: &Settings) -> Option<&'static Telemetry> {
    let config = &settings.app_insights;
    if !config.is_enabled {
        return None;
    }
    let key = config.key.clone()?;
    let host = host_name();
    let mut tags = Map::new();
    put(&mut tags, "ai.cloud.role", &settings.service.service_name);
    put(&mut tags, "ai.cloud.roleInstance", &host);
    put(&mut tags, "ai.internal.nodeName", &host);
    put(
        &mut tags,
        "ai.internal.sdkVersion",
        format!("azmlinfsrv:{}", env!("CARGO_PKG_VERSION")),
    );
    let model_ids = if config.is_model_data_collected {
        Value::from(model_data::model_ids(settings.model_dir.as_deref())).to_string()
    } else {
        String::new()
    };
    let telemetry = Telemetry {
        exporter: Exporter::start(&config.ingestion_endpoint),
        instrumentation_key: key,
        tags,
        container_id: config.container_id.clone(),
        workspace_name: config.workspace_name.clone(),
        service_name: settings.service.service_name.clone(),
        is_response_logged: config.is_response_logged,
        is_model_data_collected: config.is_model_data_collected,
        model_ids,
    };
    let _ = TELEMETRY.set(telemetry);
    TELEMETRY.get()
}

pub(super) fn installed() -> Option<&'static Telemetry> {
    TELEMETRY.get()
}

/// Why a request's `run()` failed, put on its response by `http::score` for the
/// request hook (which knows the request ids).
#[derive(Debug, Clone)]
pub struct RunFailure {
    type_name: String,
    message: String,
    stack: String,
}

impl RunFailure {
    /// The user's own exception when `run()` raised or overran the scoring timeout;
    /// `None` for the other errors (bad input, internal) or with telemetry off.
    pub fn from_error(error: &RpcError) -> Option<RunFailure> {
        installed()?;
        let kind = error.kind();
        if !matches!(kind, ErrorKind::UserError | ErrorKind::Timeout) {
            return None;
        }
        Some(failure_of(error, kind == ErrorKind::Timeout))
    }

    /// `run()` overran the scoring timeout and its worker had to be killed.
    pub fn hard_timeout(timeout_ms: u128) -> Option<RunFailure> {
        installed()?;
        Some(RunFailure {
            type_name: "TimeoutError".into(),
            message: format!("Scoring timeout after {timeout_ms} ms: run() did not return and its worker was killed"),
            stack: String::new(),
        })
    }
}

fn failure_of(error: &RpcError, is_timeout: bool) -> RunFailure {
    let data = error.data.as_deref();
    let fallback_type = if is_timeout {
        "TimeoutError"
    } else {
        "Exception"
    };
    RunFailure {
        type_name: data
            .and_then(|data| data.exception_type.clone())
            .unwrap_or_else(|| fallback_type.into()),
        message: data
            .and_then(|data| data.exception_message.clone())
            .unwrap_or_else(|| error.message.clone()),
        stack: data
            .and_then(|data| data.traceback.clone())
            .unwrap_or_default(),
    }
}

/// The request body, kept for model data collection (when it is on).
#[derive(Debug, Clone)]
pub struct ModelInput(Bytes);

impl ModelInput {
    pub fn of(body: &Bytes) -> Option<ModelInput> {
        installed()
            .filter(|telemetry| telemetry.is_model_data_collected)
            .map(|_| ModelInput(body.clone()))
    }
}

/// What the request hook needs to know about the request.
pub struct RequestFacts<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    pub started: Instant,
}

/// Request telemetry for an answered request (the reference leaves out `/`), plus the
/// exception and model data items the response carries. Reads a fully known answer
/// body for `Response Value` (no copy: `Bytes` is shared) and puts it back.
pub async fn track_request(request: RequestFacts<'_>, response: &mut Response) {
    let Some(telemetry) = installed() else { return };
    if request.path == "/" {
        return;
    }
    let duration = request.started.elapsed();
    let start_time = SystemTime::now()
        .checked_sub(duration)
        .unwrap_or_else(SystemTime::now);
    let body = take_full_body(response).await;
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let request_id = header("x-ms-request-id");
    let client_request_id = header("x-ms-client-request-id");
    let host = request
        .headers
        .get(http::header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("localhost");
    let query = if request.query.is_empty() {
        String::new()
    } else {
        format!("?{}", request.query)
    };
    let url = format!("http://{host}{}{query}", request.path);
    let success = status < 400;
    let operation_id = uuid::Uuid::new_v4().simple().to_string();

    let mut properties = telemetry.ids(&request_id, &client_request_id);
    if telemetry.is_response_logged {
        put(
            &mut properties,
            "Response Value",
            response_value(body.as_ref()),
        );
    }
    put(&mut properties, "name", request.path);
    put(&mut properties, "url", &url);
    put(&mut properties, "start_time", iso8601(start_time));
    put(&mut properties, "duration", property_duration(duration));
    put(&mut properties, "resultCode", status.to_string());
    put(
        &mut properties,
        "success",
        if success { "True" } else { "False" },
    );
    put(&mut properties, "http_method", request.method.as_str());
    put(&mut properties, "Workspace Name", &telemetry.workspace_name);
    put(&mut properties, "Service Name", &telemetry.service_name);
    let data = Data::Request(RequestData {
        ver: 2,
        id: operation_id[..16].to_string(),
        name: request.path.to_string(),
        duration: envelope_duration(duration),
        success,
        response_code: status.to_string(),
        url,
        properties,
        measurements: Map::new(),
    });
    let operation = Some((operation_id.as_str(), request.path));
    telemetry.submit(data, start_time, operation);

    if let Some(failure) = response.extensions_mut().remove::<RunFailure>() {
        let properties = telemetry.ids(&request_id, &client_request_id);
        telemetry.submit(exception(failure, properties), SystemTime::now(), operation);
    }
    let model_input = response.extensions_mut().remove::<ModelInput>();
    if let (Some(ModelInput(input)), Some(prediction), true) = (model_input, &body, success) {
        let mut properties = telemetry.ids(&request_id, &client_request_id);
        put(&mut properties, "Workspace Name", &telemetry.workspace_name);
        put(&mut properties, "Service Name", &telemetry.service_name);
        put(&mut properties, "Models", &telemetry.model_ids);
        put(
            &mut properties,
            "Input",
            capped(model_data::as_json_text(&input), MAX_PROPERTY_CHARS),
        );
        put(
            &mut properties,
            "Prediction",
            capped(model_data::as_json_text(prediction), MAX_PROPERTY_CHARS),
        );
        let data = message("model_data_collection", SEVERITY_INFORMATION, properties);
        telemetry.submit(data, SystemTime::now(), operation);
    }
}

/// A trace for a record a worker logged under `azmlinfsrv.print` (a line the script
/// printed, `init()` included) or `azmlinfsrv.trace`.
pub fn track_runner_record(logger: &str, level: &str, text: &str, time_secs: f64) {
    let Some(telemetry) = installed() else { return };
    if !TRACED_LOGGERS.contains(&logger) {
        return;
    }
    let mut properties = Properties::new();
    put(&mut properties, "logger", logger);
    let data = message(text, severity_of(level), properties);
    let time = Duration::try_from_secs_f64(time_secs)
        .map(|since| UNIX_EPOCH + since)
        .unwrap_or_else(|_| SystemTime::now());
    telemetry.submit(data, time, None);
}

/// An exception for a worker that could not start: `init()` (or importing the script)
/// raised. The start-up path flushes before the server exits.
pub fn track_boot_failure(error: &RpcError) {
    let Some(telemetry) = installed() else { return };
    let mut properties = Properties::new();
    put(&mut properties, "Container Id", &telemetry.container_id);
    put(&mut properties, "Request Id", "Unknown");
    put(&mut properties, "Client Request Id", "");
    telemetry.submit(
        exception(failure_of(error, false), properties),
        SystemTime::now(),
        None,
    );
}

impl Telemetry {
    /// `Container Id`, `Request Id`, `Client Request Id`: every request item has them.
    fn ids(&self, request_id: &str, client_request_id: &str) -> Properties {
        let mut properties = Properties::new();
        put(&mut properties, "Container Id", &self.container_id);
        put(&mut properties, "Request Id", request_id);
        put(&mut properties, "Client Request Id", client_request_id);
        properties
    }

    fn submit(&self, data: Data, time: SystemTime, operation: Option<(&str, &str)>) {
        let mut tags = self.tags.clone();
        if let Some((id, name)) = operation {
            put(&mut tags, "ai.operation.id", id);
            put(&mut tags, "ai.operation.name", name);
        }
        self.exporter.submit(Envelope {
            ver: 1,
            name: data.envelope_name(),
            time: iso8601(time),
            sample_rate: 100.0,
            instrumentation_key: self.instrumentation_key.clone(),
            tags,
            data,
        });
    }
}

fn message(text: &str, severity_level: &'static str, properties: Properties) -> Data {
    Data::Message(MessageData {
        ver: 2,
        message: capped(text.to_string(), MAX_MESSAGE_CHARS),
        severity_level,
        properties,
    })
}

fn exception(failure: RunFailure, properties: Properties) -> Data {
    Data::Exception(ExceptionData {
        ver: 2,
        exceptions: vec![ExceptionDetails {
            type_name: capped(failure.type_name, 1024),
            message: capped(failure.message, MAX_MESSAGE_CHARS),
            has_full_stack: !failure.stack.is_empty(),
            stack: capped(failure.stack, MAX_MESSAGE_CHARS),
        }],
        severity_level: SEVERITY_ERROR,
        properties,
    })
}

/// The answer body when it is fully known (not streamed), put back in place.
async fn take_full_body(response: &mut Response) -> Option<Bytes> {
    use http_body::Body as _;
    response.body().size_hint().exact()?;
    let body = std::mem::take(response.body_mut());
    let bytes = body.collect().await.ok()?.to_bytes();
    *response.body_mut() = bytes.clone().into();
    Some(bytes)
}

/// `Response Value`: the answer as text, capped; a note for binary or streamed answers.
fn response_value(body: Option<&Bytes>) -> String {
    match body {
        None => "(streamed answer, not recorded)".into(),
        Some(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => capped(text.to_string(), MAX_PROPERTY_CHARS),
            Err(_) => format!("(binary answer of {} bytes, not recorded)", bytes.len()),
        },
    }
}

/// `text` cut to `max` characters.
fn capped(mut text: String, max: usize) -> String {
    if let Some((index, _)) = text.char_indices().nth(max) {
        text.truncate(index);
    }
    text
}

/// This machine's name (the cloud role instance), as `hostname` prints it.
#[cfg(not(unix))]
fn host_name() -> String {
    "Unknown".into()
}

/// This machine's name (the cloud role instance), as `hostname` prints it.
#[cfg(unix)]
fn host_name() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that.
    let result = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if result != 0 {
        return "Unknown".into();
    }
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    String::from_utf8_lossy(&buffer[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_capped_on_a_character_boundary() {
        assert_eq!(capped("héllo".into(), 2), "hé");
        assert_eq!(capped("short".into(), 10), "short");
    }

    #[test]
    fn response_values_are_text_or_a_note() {
        assert_eq!(
            response_value(Some(&Bytes::from_static(b"{\"a\": 1}"))),
            "{\"a\": 1}"
        );
        assert!(response_value(Some(&Bytes::from_static(&[0xff]))).starts_with("(binary"));
        assert!(response_value(None).starts_with("(streamed"));
    }
}
