//! The Application Insights envelope: the JSON shape `/v2.1/track` takes (an array of
//! these), and the `RequestData`, `MessageData` and `ExceptionData` payloads we send,
//! with the time and duration formats the service expects.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{Map, Value};

/// String properties ("custom dimensions"), in insertion order (serde_json keeps it).
pub type Properties = Map<String, Value>;

/// Severity levels as the reference sends them (strings, not numbers).
pub const SEVERITY_INFORMATION: &str = "1";
pub const SEVERITY_WARNING: &str = "2";
pub const SEVERITY_ERROR: &str = "3";
pub const SEVERITY_CRITICAL: &str = "4";
pub const SEVERITY_VERBOSE: &str = "0";

/// One telemetry item.
#[derive(Debug, Clone, Serialize)]
pub struct Envelope {
    pub ver: u8,
    pub name: &'static str,
    pub time: String,
    #[serde(rename = "sampleRate")]
    pub sample_rate: f64,
    #[serde(rename = "iKey")]
    pub instrumentation_key: String,
    pub tags: Map<String, Value>,
    pub data: Data,
}

/// `{"baseType": "RequestData", "baseData": {...}}` and its siblings.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "baseType", content = "baseData")]
pub enum Data {
    #[serde(rename = "RequestData")]
    Request(RequestData),
    #[serde(rename = "MessageData")]
    Message(MessageData),
    #[serde(rename = "ExceptionData")]
    Exception(ExceptionData),
}

impl Data {
    /// The envelope name that goes with this payload.
    pub fn envelope_name(&self) -> &'static str {
        match self {
            Data::Request(_) => "Microsoft.ApplicationInsights.Request",
            Data::Message(_) => "Microsoft.ApplicationInsights.Message",
            Data::Exception(_) => "Microsoft.ApplicationInsights.Exception",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestData {
    pub ver: u8,
    /// This request's id in App Insights (16 hex digits, like a span id).
    pub id: String,
    pub name: String,
    /// `d.hh:mm:ss.fff`.
    pub duration: String,
    pub success: bool,
    pub response_code: String,
    pub url: String,
    pub properties: Properties,
    pub measurements: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageData {
    pub ver: u8,
    pub message: String,
    pub severity_level: &'static str,
    pub properties: Properties,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExceptionData {
    pub ver: u8,
    pub exceptions: Vec<ExceptionDetails>,
    pub severity_level: &'static str,
    pub properties: Properties,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExceptionDetails {
    pub type_name: String,
    pub message: String,
    pub has_full_stack: bool,
    pub stack: String,
}

impl Envelope {
    /// About how many bytes the item holds: its texts plus a fixed overhead for the
    /// tags and small fields. For the exporter's memory bound, not exact.
    pub fn approximate_bytes(&self) -> usize {
        let texts = |properties: &Properties| {
            properties
                .iter()
                .map(|(name, value)| name.len() + value.as_str().map_or(16, str::len))
                .sum::<usize>()
        };
        let payload = match &self.data {
            Data::Request(data) => data.name.len() + data.url.len() + texts(&data.properties),
            Data::Message(data) => data.message.len() + texts(&data.properties),
            Data::Exception(data) => {
                texts(&data.properties)
                    + data
                        .exceptions
                        .iter()
                        .map(|e| e.type_name.len() + e.message.len() + e.stack.len())
                        .sum::<usize>()
            }
        };
        payload + 512
    }
}

/// The severity for a Python logging level name (`INFO`, `WARNING`, ...).
pub fn severity_of(level: &str) -> &'static str {
    match level.to_ascii_uppercase().as_str() {
        "DEBUG" | "NOTSET" => SEVERITY_VERBOSE,
        "WARNING" | "WARN" => SEVERITY_WARNING,
        "ERROR" => SEVERITY_ERROR,
        "CRITICAL" | "FATAL" => SEVERITY_CRITICAL,
        _ => SEVERITY_INFORMATION,
    }
}

/// Adds a string property.
pub fn put(properties: &mut Properties, name: &str, value: impl Into<String>) {
    properties.insert(name.to_string(), Value::String(value.into()));
}

/// `2026-11-30T00:03:14.474953Z`: UTC, microseconds, as the reference writes times.
pub fn iso8601(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since_epoch.as_secs();
    let (year, month, day) = crate::logging::civil_from_days((secs / 86_400) as i64);
    let of_day = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60,
        since_epoch.subsec_micros()
    )
}

/// The envelope's `duration` field: `d.hh:mm:ss.fff` (`0.00:00:00.020`).
pub fn envelope_duration(duration: Duration) -> String {
    let (days, clock) = split_duration(duration);
    format!("{days}.{clock}")
}

/// The reference's `duration` property: `hh:mm:ss.fff`, with `d.` in front past a day.
pub fn property_duration(duration: Duration) -> String {
    match split_duration(duration) {
        (0, clock) => clock,
        (days, clock) => format!("{days}.{clock}"),
    }
}

fn split_duration(duration: Duration) -> (u64, String) {
    let millis = duration.as_millis() as u64;
    let secs = millis / 1000;
    let clock = format!(
        "{:02}:{:02}:{:02}.{:03}",
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
        millis % 1000
    );
    (secs / 86_400, clock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_with_microseconds() {
        let time = UNIX_EPOCH + Duration::from_micros(1_795_910_594_474_953);
        assert_eq!(iso8601(time), "2026-11-29T00:03:14.474953Z");
        assert_eq!(iso8601(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        // A leap day.
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(iso8601(leap), "2000-02-29T00:00:00.000000Z");
    }

    #[test]
    fn durations_are_written_as_app_insights_and_the_reference_write_them() {
        let short = Duration::from_millis(20);
        assert_eq!(envelope_duration(short), "0.00:00:00.020");
        assert_eq!(property_duration(short), "00:00:00.020");
        let long = Duration::from_secs(86_400 + 3 * 3600 + 61) + Duration::from_millis(5);
        assert_eq!(envelope_duration(long), "1.03:01:01.005");
        assert_eq!(property_duration(long), "1.03:01:01.005");
    }

    #[test]
    fn payloads_carry_their_base_type() {
        let data = Data::Message(MessageData {
            ver: 2,
            message: "hello".into(),
            severity_level: SEVERITY_INFORMATION,
            properties: Properties::new(),
        });
        let json = serde_json::to_value(&data).unwrap();
        assert_eq!(json["baseType"], "MessageData");
        assert_eq!(json["baseData"]["severityLevel"], "1");
        assert_eq!(
            data.envelope_name(),
            "Microsoft.ApplicationInsights.Message"
        );
    }
}
