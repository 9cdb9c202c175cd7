//! The wire types of the server ⇄ runner channel (see `runner/PROTOCOL.md`): serde only,
//! no I/O. A frame is one JSON-RPC 2.0 object on a line plus an optional raw payload.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

/// Bumped on every incompatible change; `runner.py` carries the same number.
pub const PROTOCOL_VERSION: u32 = 2;

/// One message as it appears on a line, in either direction. Kept loose (every member
/// optional) so that a frame of an unexpected shape is reported, not a parse failure.
/// `params` and `result` stay raw JSON text until their receiver decodes them into its
/// own type: no intermediate `Value` tree on the request path.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Message {
    pub jsonrpc: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Box<RawValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Box<RawValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RpcError>,
    /// Bytes of raw payload that follow the line (our extension of JSON-RPC).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub payload: usize,
}

fn is_zero(value: &usize) -> bool {
    *value == 0
}

impl Message {
    pub fn request<P: Serialize>(
        id: u64,
        method: &str,
        params: &P,
        payload: usize,
    ) -> serde_json::Result<Self> {
        Ok(Message {
            jsonrpc: "2.0".into(),
            id: Some(id),
            method: Some(method.into()),
            params: Some(serde_json::value::to_raw_value(params)?),
            payload,
            ..Message::default()
        })
    }

    pub fn notification(method: &str) -> Self {
        Message {
            jsonrpc: "2.0".into(),
            method: Some(method.into()),
            ..Message::default()
        }
    }

    /// The params decoded as `T`; `None` when absent or of another shape.
    pub fn params_as<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_str(self.params.as_ref()?.get()).ok()
    }

    /// Which of the three JSON-RPC shapes this is.
    pub fn kind(&self) -> MessageKind<'_> {
        match (self.id, self.method.as_deref()) {
            (Some(id), None) => MessageKind::Response(id),
            (None, Some(method)) => MessageKind::Notification(method),
            (Some(_), Some(method)) => MessageKind::Request(method),
            (None, None) => MessageKind::Malformed,
        }
    }
}

#[derive(Debug, PartialEq)]
pub enum MessageKind<'a> {
    Request(&'a str),
    Response(u64),
    Notification(&'a str),
    Malformed,
}

/// A JSON-RPC error; `data.kind` says which contract error it is.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RpcError {
    #[serde(default)]
    pub code: i64,
    /// For `bad_input` and `unsupported_media_type`, the text the client sees; for the
    /// other kinds a one-line diagnostic for the log (the server words the answer).
    #[serde(default)]
    pub message: String,
    /// Boxed: errors travel inside `Result`s, which stay small this way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Box<ErrorData>>,
}

/// Where in the user's code an error was raised (the innermost user frame).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CodeLocation {
    #[serde(default)]
    pub file: String,
    #[serde(default)]
    pub line: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ErrorData {
    #[serde(default)]
    pub kind: ErrorKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceback: Option<String>,
    /// The Python exception's type as Python names it (`ValueError`, `mod.MyError`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exception_type: Option<String>,
    /// `str(exception)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exception_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<CodeLocation>,
}

/// Which contract error a runner's error is: the same set as `runner/PROTOCOL.md`.
/// A kind this server does not know (a newer runner) is kept as `Unknown` and treated
/// like `Internal`, never a parse failure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ErrorKind {
    /// 400: the request's input cannot be given to `run()`.
    BadInput,
    /// 415: `@input_schema` wants a JSON body.
    UnsupportedMediaType,
    /// `run()` raised.
    UserError,
    /// `run()` overran `SCORING_TIMEOUT_MS` and the runner interrupted it.
    Timeout,
    /// `run()`'s result could not be encoded.
    NotSerializable,
    /// Anything else that went wrong in the runner.
    #[default]
    Internal,
    /// `load`: the entry script does not exist.
    ScriptNotFound,
    /// `load`: importing the script raised.
    ImportFailed,
    /// `load`: no `init`/`run`, a bad `run` signature, incompatible decorators.
    BadScript,
    /// `init`: the script's `init()` raised.
    InitFailed,
    Unknown(String),
}

impl ErrorKind {
    const NAMES: [(&'static str, ErrorKind); 10] = [
        ("bad_input", ErrorKind::BadInput),
        ("unsupported_media_type", ErrorKind::UnsupportedMediaType),
        ("user_error", ErrorKind::UserError),
        ("timeout", ErrorKind::Timeout),
        ("not_serializable", ErrorKind::NotSerializable),
        ("internal", ErrorKind::Internal),
        ("script_not_found", ErrorKind::ScriptNotFound),
        ("import_failed", ErrorKind::ImportFailed),
        ("bad_script", ErrorKind::BadScript),
        ("init_failed", ErrorKind::InitFailed),
    ];

    pub fn name(&self) -> &str {
        match self {
            ErrorKind::Unknown(name) => name,
            known => Self::NAMES
                .iter()
                .find(|(_, kind)| kind == known)
                .map_or("internal", |(name, _)| name),
        }
    }

    fn from_name(name: &str) -> ErrorKind {
        Self::NAMES
            .iter()
            .find(|(known, _)| *known == name)
            .map_or_else(
                || ErrorKind::Unknown(name.to_string()),
                |(_, kind)| kind.clone(),
            )
    }
}

impl Serialize for ErrorKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for ErrorKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Ok(ErrorKind::from_name(&name))
    }
}

impl RpcError {
    pub fn kind(&self) -> ErrorKind {
        self.data
            .as_ref()
            .map_or(ErrorKind::Internal, |data| data.kind.clone())
    }
}

/// `hello`: the runner's first frame.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Hello {
    pub protocol: u32,
    pub pid: u32,
    #[serde(default)]
    pub python_version: String,
    #[serde(default)]
    pub python_executable: String,
}

/// `load` parameters.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LoadParams {
    /// `None`: no script was configured; the runner imports `main` (as the reference).
    pub entry_script: Option<String>,
    pub app_root: String,
    pub source_dir: Option<String>,
    pub model_dir: Option<String>,
    pub log_level: String,
    pub scoring_timeout_ms: u64,
    /// Listen mode (`--debug_port`): the runner listens for a debugger before the
    /// script is imported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debug: Option<DebugListen>,
}

/// `load`'s `debug` member: `{"mode": "listen", "port": N, "wait": bool}`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DebugListen {
    /// Always `"listen"`: connect mode (`AZUREML_DEBUG_PORT`) travels in the environment.
    pub mode: &'static str,
    /// This worker's own port (the base port plus its worker number).
    pub port: u16,
    /// Wait for a debugger to attach before the script is imported.
    pub wait: bool,
}

/// `debugger` notification parameters: whether a debugger is attached now.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct DebuggerState {
    pub attached: bool,
}

/// How `run()` wants its input.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum InputMode {
    Plain,
    Rawhttp,
    Schema,
}

/// `load` result.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct LoadResult {
    pub input_mode: InputMode,
    #[serde(default)]
    pub schemas: Value,
}

/// `score` parameters; the body travels as the payload.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ScoreParams<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: Vec<(&'a str, &'a str)>,
    pub request_id: &'a str,
    /// The client's IP address, for `request.remote_addr` in `@rawhttp` scripts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_addr: Option<&'a str>,
}

/// `score` result; the body is the payload, or `chunk` frames when `streaming`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ScoreResult {
    pub status: u16,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    #[serde(default)]
    pub run_ms: Option<f64>,
    #[serde(default)]
    pub run_failed: Option<bool>,
    #[serde(default)]
    pub streaming: bool,
}

/// `log` notification parameters.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct LogRecord {
    #[serde(default)]
    pub level: String,
    #[serde(default)]
    pub logger: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub time: f64,
    /// The request the worker was running when the record was made, if any.
    #[serde(default)]
    pub request_id: Option<String>,
}

/// `chunk` / `end` notification parameters of a streamed body.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct StreamEvent {
    pub id: u64,
    #[serde(default)]
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_serialises_to_the_documented_shape() {
        let message = Message::request(9, "score", &json!({"method": "POST"}), 13).unwrap();
        let text = serde_json::to_string(&message).unwrap();
        assert_eq!(
            text,
            r#"{"jsonrpc":"2.0","id":9,"method":"score","params":{"method":"POST"},"payload":13}"#
        );
        let no_payload = serde_json::to_string(&Message::notification("shutdown")).unwrap();
        assert_eq!(no_payload, r#"{"jsonrpc":"2.0","method":"shutdown"}"#);
    }

    #[test]
    fn messages_are_classified() {
        let response: Message =
            serde_json::from_str(r#"{"jsonrpc":"2.0","id":3,"result":{}}"#).unwrap();
        assert_eq!(response.kind(), MessageKind::Response(3));
        let log: Message =
            serde_json::from_str(r#"{"jsonrpc":"2.0","method":"log","params":{}}"#).unwrap();
        assert_eq!(log.kind(), MessageKind::Notification("log"));
    }

    #[test]
    fn error_kind_defaults_to_internal() {
        let error: RpcError = serde_json::from_str(r#"{"code":-32000,"message":"x"}"#).unwrap();
        assert_eq!(error.kind(), ErrorKind::Internal);
        let error: RpcError =
            serde_json::from_str(r#"{"code":-32000,"message":"x","data":{"kind":"timeout"}}"#)
                .unwrap();
        assert_eq!(error.kind(), ErrorKind::Timeout);
        let error: RpcError =
            serde_json::from_str(r#"{"code":-32000,"message":"x","data":{"kind":"brand_new"}}"#)
                .unwrap();
        assert_eq!(error.kind(), ErrorKind::Unknown("brand_new".into()));
        assert_eq!(error.kind().name(), "brand_new");
    }

    #[test]
    fn score_result_reads_optional_members() {
        let result: ScoreResult = serde_json::from_str(
            r#"{"status":200,"headers":[["Content-Type","application/json"]],"run_ms":0.4,"run_failed":false,"streaming":false}"#,
        )
        .unwrap();
        assert_eq!(result.headers[0].0, "Content-Type");
        assert_eq!(result.run_failed, Some(false));
    }
}
