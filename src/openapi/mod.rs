//! OpenAPI documents for `/swagger.json`: generated from the service settings and the
//! scoring script's schemas, or taken from the user's files in the app root.
//!
//! Everything is decided once at start-up ([`SwaggerDocuments::build`]); a request only
//! picks one of the pre-serialised bodies ([`SwaggerDocuments::find`]).
//!
//! Behaviour kept from the reference (azureml-inference-server-http 1.5.1):
//!
//! - Versions `2` (alias `2.0`, the default), `3` (alias `3.0`) and `3.1`. Version 3.1 is
//!   the version 3 document with `"openapi": "3.1.0"`.
//! - A user file in the app root replaces the generated document of its version:
//!   `swagger.json`, else `swagger2.json`, for 2; `swagger3.json` for 3; `swagger3.1.json`
//!   for 3.1. A file whose JSON value is "empty" in Python's sense (`{}`, `[]`, `""`, `0`,
//!   `false`, `null`) counts as absent, although it is still reported as loaded.
//! - A user file that exists but cannot be read, is not UTF-8 or is not JSON stops the
//!   reference's workers from booting; here it is a start-up error ([`SwaggerError`]).
//! - Documents are sent as Python's `json.dumps` writes them (`", "` and `": "`
//!   separators, non-ASCII escaped as `\uXXXX`, floats in `repr` form), so the bodies are
//!   byte for byte the reference's.
//!
//! One conscious change: the reference pastes `SERVICE_NAME`, `SERVICE_VERSION` and the
//! path prefix as raw text into a JSON template, so a `"` in them breaks start-up and a
//! `\` is read as a JSON escape. Here the values go into the document verbatim, as JSON
//! strings.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Number, Value};

/// One of the OpenAPI versions the server can describe itself in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SwaggerVersion {
    V2,
    V3,
    V3_1,
}

impl SwaggerVersion {
    /// Every version, in the order the reference lists them in its messages.
    pub const ALL: [SwaggerVersion; 3] =
        [SwaggerVersion::V2, SwaggerVersion::V3, SwaggerVersion::V3_1];

    /// Reads the `version` query parameter of `/swagger.json` (already percent-decoded;
    /// the first value when it is repeated). No parameter means version 2.
    pub fn from_query(version: Option<&str>) -> Result<Self, UnknownVersion> {
        match version {
            None | Some("2") | Some("2.0") => Ok(SwaggerVersion::V2),
            Some("3") | Some("3.0") => Ok(SwaggerVersion::V3),
            Some("3.1") => Ok(SwaggerVersion::V3_1),
            Some(requested) => Err(UnknownVersion {
                requested: requested.to_owned(),
            }),
        }
    }

    /// The name used in file names and messages: `2`, `3` or `3.1`.
    pub fn label(self) -> &'static str {
        match self {
            SwaggerVersion::V2 => "2",
            SwaggerVersion::V3 => "3",
            SwaggerVersion::V3_1 => "3.1",
        }
    }

    /// The key the scoring-script runner uses for this version's schemas.
    fn schema_key(self) -> &'static str {
        self.label()
    }

    /// Position in per-version arrays, following [`SwaggerVersion::ALL`].
    fn index(self) -> usize {
        match self {
            SwaggerVersion::V2 => 0,
            SwaggerVersion::V3 => 1,
            SwaggerVersion::V3_1 => 2,
        }
    }

    /// User files that replace the generated document, in the order they are tried.
    fn user_file_names(self) -> &'static [&'static str] {
        match self {
            SwaggerVersion::V2 => &["swagger.json", "swagger2.json"],
            SwaggerVersion::V3 => &["swagger3.json"],
            SwaggerVersion::V3_1 => &["swagger3.1.json"],
        }
    }
}

/// A `?version=` value that names no OpenAPI version. Its text is the `404` message for
/// a server that has documents for every version; [`SwaggerDocuments::find`] gives the
/// message that also accounts for versions a scoring script cannot be described in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownVersion {
    /// The value as the client sent it (`""` for `?version=`).
    pub requested: String,
}

impl fmt::Display for UnknownVersion {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&not_valid_message(&self.requested, &SwaggerVersion::ALL))
    }
}

impl std::error::Error for UnknownVersion {}

/// Why `/swagger.json` answers `404`; the `Display` text is the response's `message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwaggerNotFound {
    message: String,
}

impl fmt::Display for SwaggerNotFound {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.message)
    }
}

impl std::error::Error for SwaggerNotFound {}

/// The service settings that appear in generated documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceDescription {
    /// `SERVICE_NAME` (reference default `ML service`).
    pub service_name: String,
    /// `SERVICE_VERSION` (reference default `1.0`).
    pub service_version: String,
    /// `SERVICE_PATH_PREFIX` as configured, not normalised (reference default empty).
    pub path_prefix: String,
}

impl ServiceDescription {
    /// The prefix put in front of `/`, `/score` and `/swagger.json`: empty when none is
    /// configured, otherwise one leading `/` and no trailing one (`api/v1/` -> `/api/v1`).
    /// A prefix of only slashes becomes `/`, which gives paths such as `//score`, as in
    /// the reference.
    pub fn normalised_path_prefix(&self) -> String {
        if self.path_prefix.is_empty() {
            String::new()
        } else {
            format!("/{}", self.path_prefix.trim_matches('/'))
        }
    }
}

/// The `ServiceInput` and `ServiceOutput` schemas the scoring script declares through
/// inference-schema, per OpenAPI version.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptSchemas {
    /// `None` where the script's decorators cannot be described in that version
    /// (inference-schema drops version 2 for examples such as mixed-type arrays).
    by_version: [Option<DeclaredSchemas>; 3],
}

/// One version's schemas; `None` where `run()` is not decorated.
#[derive(Debug, Clone, PartialEq, Default)]
struct DeclaredSchemas {
    input: Option<Value>,
    output: Option<Value>,
}

impl ScriptSchemas {
    /// A script whose `run()` has no inference-schema decorators: every version is
    /// generated, with `{"type": "object", "example": {}}` for input and output.
    pub fn undecorated() -> Self {
        ScriptSchemas {
            by_version: [
                Some(DeclaredSchemas::default()),
                Some(DeclaredSchemas::default()),
                Some(DeclaredSchemas::default()),
            ],
        }
    }

    /// Reads the runner's `schemas` value (see `runner/PROTOCOL.md`):
    /// `{"2": {"input": .., "output": ..}, "3": {..}, "3.1": {..}}`.
    ///
    /// - `null` (or anything that is not an object): no decorators, as [`Self::undecorated`].
    /// - a version key that is missing or `null`: the decorators do not support that
    ///   version, so no document is generated for it (a user file may still supply one).
    /// - `input`/`output` missing or `null`: the default `{"type": "object", "example": {}}`.
    pub fn from_json(schemas: &Value) -> Self {
        let Value::Object(by_key) = schemas else {
            return ScriptSchemas::undecorated();
        };
        let declared = |version: SwaggerVersion| match by_key.get(version.schema_key()) {
            Some(Value::Object(entry)) => Some(DeclaredSchemas {
                input: entry
                    .get("input")
                    .filter(|schema| !schema.is_null())
                    .cloned(),
                output: entry
                    .get("output")
                    .filter(|schema| !schema.is_null())
                    .cloned(),
            }),
            _ => None,
        };
        ScriptSchemas {
            by_version: SwaggerVersion::ALL.map(declared),
        }
    }

    fn declared(&self, version: SwaggerVersion) -> Option<&DeclaredSchemas> {
        self.by_version[version.index()].as_ref()
    }
}

/// A user swagger file that exists but cannot be used; fatal at start-up, as in the
/// reference (whose workers then fail to boot).
#[derive(Debug)]
pub struct SwaggerError {
    path: PathBuf,
    version: SwaggerVersion,
    problem: String,
}

impl fmt::Display for SwaggerError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "Cannot load the user's swagger file {}: {}. The file replaces the generated \
             OpenAPI document for version [{}]; fix it, or remove it from the app root \
             to serve the generated document.",
            self.path.display(),
            self.problem,
            self.version.label()
        )
    }
}

impl std::error::Error for SwaggerError {}

/// The `/swagger.json` bodies for every version, ready to send.
#[derive(Debug, Clone)]
pub struct SwaggerDocuments {
    /// JSON text per version (see [`SwaggerVersion::index`]); `None` when neither a user
    /// file nor the script's schemas provide a document for that version.
    documents: [Option<Vec<u8>>; 3],
    startup_log: Vec<String>,
}

impl SwaggerDocuments {
    /// Prepares every version's document: the user's file from `app_root` when there is
    /// one, otherwise a document generated from `service` and `schemas`.
    pub fn build(
        service: &ServiceDescription,
        schemas: &ScriptSchemas,
        app_root: &Path,
    ) -> Result<Self, SwaggerError> {
        let mut startup_log = Vec::new();
        let mut documents: [Option<Vec<u8>>; 3] = [None, None, None];
        for version in SwaggerVersion::ALL {
            let document = match read_user_document(version, app_root, &mut startup_log)? {
                Some(user_document) => Some(user_document),
                None => schemas
                    .declared(version)
                    .map(|declared| generated_document(version, service, declared)),
            };
            documents[version.index()] =
                document.map(|document| python_json_text(&document).into_bytes());
        }
        let mut built = SwaggerDocuments {
            documents,
            startup_log,
        };
        let summary = built.summary_line();
        built.startup_log.push(summary);
        Ok(built)
    }

    /// The body for `version`, or `None` when the scoring script cannot be described in
    /// that version and no user file supplies it.
    pub fn document(&self, version: SwaggerVersion) -> Option<&[u8]> {
        self.documents[version.index()].as_deref()
    }

    /// Answers `GET /swagger.json` given its `version` query parameter (percent-decoded,
    /// `None` when absent): the body to send with `200`, or the `404` message.
    pub fn find(&self, version_query: Option<&str>) -> Result<&[u8], SwaggerNotFound> {
        let supported = self.supported_versions();
        let version =
            SwaggerVersion::from_query(version_query).map_err(|unknown| SwaggerNotFound {
                message: not_valid_message(&unknown.requested, &supported),
            })?;
        self.document(version).ok_or_else(|| {
            // The reference names the version as asked for, `2` when nothing was asked.
            let requested = version_query.unwrap_or(SwaggerVersion::V2.label());
            SwaggerNotFound {
                message: format!(
                    "Swagger version [{requested}] is not supported for the scoring script. \
                     Supported swagger versions: [{}].",
                    joined_labels(&supported)
                ),
            }
        })
    }

    /// The versions a document is available for.
    pub fn supported_versions(&self) -> Vec<SwaggerVersion> {
        SwaggerVersion::ALL
            .into_iter()
            .filter(|version| self.document(*version).is_some())
            .collect()
    }

    /// Lines for the start-up log (logger `azmlinfsrv.swagger`, level info), with the
    /// reference's texts: one per user file loaded, then a summary such as
    /// `Swaggers are prepared for the following versions: [2, 3, 3.1].`
    pub fn startup_log(&self) -> &[String] {
        &self.startup_log
    }

    fn summary_line(&self) -> String {
        let supported = self.supported_versions();
        let skipped: Vec<SwaggerVersion> = SwaggerVersion::ALL
            .into_iter()
            .filter(|version| self.document(*version).is_none())
            .collect();
        match (supported.is_empty(), skipped.is_empty()) {
            (false, false) => format!(
                "Swaggers are prepared for versions [{}] and skipped for versions [{}].",
                joined_labels(&supported),
                joined_labels(&skipped)
            ),
            (false, true) => format!(
                "Swaggers are prepared for the following versions: [{}].",
                joined_labels(&supported)
            ),
            (true, _) => "No swagger is prepared.".to_owned(),
        }
    }
}

fn not_valid_message(requested: &str, supported: &[SwaggerVersion]) -> String {
    format!(
        "Swagger version [{requested}] is not valid. Supported versions: [{}].",
        joined_labels(supported)
    )
}

fn joined_labels(versions: &[SwaggerVersion]) -> String {
    versions
        .iter()
        .map(|version| version.label())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The first usable user file for `version`, noting each file found in `startup_log`.
fn read_user_document(
    version: SwaggerVersion,
    app_root: &Path,
    startup_log: &mut Vec<String>,
) -> Result<Option<Value>, SwaggerError> {
    for file_name in version.user_file_names() {
        let path = app_root.join(file_name);
        let Some(document) = read_json_file(&path, version)? else {
            continue;
        };
        startup_log.push(format!(
            "Loaded user's swagger file for version [{}] from {}",
            version.label(),
            path.display()
        ));
        // The reference tests the loaded value for truth, so `{}` or `[]` lets the next
        // file, or the generated document, take over.
        if is_python_truthy(&document) {
            return Ok(Some(document));
        }
    }
    Ok(None)
}

/// The JSON in `path`, `None` when there is no such file.
fn read_json_file(path: &Path, version: SwaggerVersion) -> Result<Option<Value>, SwaggerError> {
    let failure = |problem: String| SwaggerError {
        path: path.to_owned(),
        version,
        problem,
    };
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(failure(format!("it could not be read ({error})"))),
    };
    let text = String::from_utf8(bytes)
        .map_err(|error| failure(format!("it is not UTF-8 text ({})", error.utf8_error())))?;
    let document = serde_json::from_str(&text)
        .map_err(|error| failure(format!("it is not valid JSON ({error})")))?;
    Ok(Some(document))
}

fn is_python_truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(flag) => *flag,
        Value::Number(number) => number.as_f64().is_some_and(|number| number != 0.0),
        Value::String(text) => !text.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(members) => !members.is_empty(),
    }
}

/// The schema used for `ServiceInput`/`ServiceOutput` when `run()` is not decorated.
fn undecorated_schema() -> Value {
    json!({"type": "object", "example": {}})
}

fn generated_document(
    version: SwaggerVersion,
    service: &ServiceDescription,
    declared: &DeclaredSchemas,
) -> Value {
    let path_prefix = service.normalised_path_prefix();
    let input = declared.input.clone().unwrap_or_else(undecorated_schema);
    let output = declared.output.clone().unwrap_or_else(undecorated_schema);
    match version {
        SwaggerVersion::V2 => swagger2_document(service, &path_prefix, input, output),
        SwaggerVersion::V3 => openapi3_document("3.0.3", service, &path_prefix, input, output),
        SwaggerVersion::V3_1 => openapi3_document("3.1.0", service, &path_prefix, input, output),
    }
}

fn info(service: &ServiceDescription) -> Value {
    json!({
        "title": service.service_name,
        "description": format!(
            "API specification for the Azure Machine Learning service {}",
            service.service_name
        ),
        "version": service.service_version,
    })
}

/// The three documented routes under the prefix, in the reference's order.
fn paths(path_prefix: &str, health: Value, score: Value, swagger: Value) -> Value {
    let mut paths = Map::new();
    paths.insert(format!("{path_prefix}/"), json!({"get": health}));
    paths.insert(format!("{path_prefix}/score"), json!({"post": score}));
    paths.insert(
        format!("{path_prefix}/swagger.json"),
        json!({"get": swagger}),
    );
    Value::Object(paths)
}

fn bearer_security_scheme() -> Value {
    json!({
        "type": "apiKey",
        "name": "Authorization",
        "in": "header",
        "description": "For example: Bearer abc123",
    })
}

fn error_response_schema() -> Value {
    json!({"type": "object", "properties": {"message": {"type": "string"}}})
}

const HEALTH_OPERATION_ID: &str = "ServiceHealthCheck";
const HEALTH_DESCRIPTION: &str =
    "Simple health check endpoint to ensure the service is up at any given point.";
const HEALTH_OK_DESCRIPTION: &str =
    "If service is up and running, this response will be returned with the content 'Healthy'";
const SCORE_OPERATION_ID: &str = "RunMLService";
const SCORE_DESCRIPTION: &str = "Run web service's model and get the prediction output";
const SCORE_INPUT_DESCRIPTION: &str =
    "The input payload for executing the real-time machine learning service.";
const SCORE_OK_DESCRIPTION: &str =
    "The service processed the input correctly and provided a result prediction, if applicable.";
const SWAGGER_OPERATION_ID: &str = "GetSwaggerSpec";
const SWAGGER_DESCRIPTION: &str = "Get the Swagger specification.";
const SWAGGER_OK_DESCRIPTION: &str = "The Swagger specification.";
const ERROR_DESCRIPTION: &str = "The service failed to execute due to an error.";

fn swagger2_document(
    service: &ServiceDescription,
    path_prefix: &str,
    input: Value,
    output: Value,
) -> Value {
    let error_response = || {
        json!({
            "description": ERROR_DESCRIPTION,
            "schema": {"$ref": "#/definitions/ErrorResponse"},
        })
    };
    let health = json!({
        "operationId": HEALTH_OPERATION_ID,
        "description": HEALTH_DESCRIPTION,
        "responses": {
            "200": {
                "description": HEALTH_OK_DESCRIPTION,
                "schema": {"type": "string"},
                "examples": {"application/json": "Healthy"},
            },
            "default": error_response(),
        },
    });
    let score = json!({
        "operationId": SCORE_OPERATION_ID,
        "description": SCORE_DESCRIPTION,
        "security": [{"Bearer": []}],
        "parameters": [{
            "name": "serviceInputPayload",
            "in": "body",
            "description": SCORE_INPUT_DESCRIPTION,
            "schema": {"$ref": "#/definitions/ServiceInput"},
        }],
        "responses": {
            "200": {
                "description": SCORE_OK_DESCRIPTION,
                "schema": {"$ref": "#/definitions/ServiceOutput"},
            },
            "default": error_response(),
        },
    });
    // The reference advertises only 2 and 3 here, although it serves 3.1 too.
    let swagger = json!({
        "operationId": SWAGGER_OPERATION_ID,
        "description": SWAGGER_DESCRIPTION,
        "parameters": [{
            "name": "version",
            "in": "query",
            "required": false,
            "type": "integer",
            "enum": [2, 3],
        }],
        "responses": {
            "200": {"description": SWAGGER_OK_DESCRIPTION, "schema": {"type": "string"}},
            "default": error_response(),
        },
    });
    json!({
        "swagger": "2.0",
        "info": info(service),
        "schemes": ["https"],
        "consumes": ["application/json"],
        "produces": ["application/json"],
        "securityDefinitions": {"Bearer": bearer_security_scheme()},
        "paths": paths(path_prefix, health, score, swagger),
        "definitions": {
            "ServiceInput": input,
            "ServiceOutput": output,
            "ErrorResponse": error_response_schema(),
        },
    })
}

fn openapi3_document(
    openapi_version: &str,
    service: &ServiceDescription,
    path_prefix: &str,
    input: Value,
    output: Value,
) -> Value {
    let json_content =
        |reference: &str| json!({"application/json": {"schema": {"$ref": reference}}});
    let error_response = || {
        json!({
            "description": ERROR_DESCRIPTION,
            "content": json_content("#/components/schemas/ErrorResponse"),
        })
    };
    let health = json!({
        "operationId": HEALTH_OPERATION_ID,
        "description": HEALTH_DESCRIPTION,
        "responses": {
            "200": {
                "description": HEALTH_OK_DESCRIPTION,
                "content": {"text/plain": {"schema": {"type": "string", "example": "Healthy"}}},
            },
            "default": error_response(),
        },
    });
    let score = json!({
        "operationId": SCORE_OPERATION_ID,
        "description": SCORE_DESCRIPTION,
        "security": [{"Bearer": []}],
        "requestBody": {
            "description": SCORE_INPUT_DESCRIPTION,
            "content": json_content("#/components/schemas/ServiceInput"),
        },
        "responses": {
            "200": {
                "description": SCORE_OK_DESCRIPTION,
                "content": json_content("#/components/schemas/ServiceOutput"),
            },
            "default": error_response(),
        },
    });
    let swagger = json!({
        "operationId": SWAGGER_OPERATION_ID,
        "description": SWAGGER_DESCRIPTION,
        "parameters": [{
            "name": "version",
            "in": "query",
            "required": false,
            "schema": {"type": "integer", "enum": [2, 3]},
        }],
        "responses": {
            "200": {
                "description": SWAGGER_OK_DESCRIPTION,
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            "default": error_response(),
        },
    });
    json!({
        "openapi": openapi_version,
        "info": info(service),
        "security": [{"Bearer": []}],
        "paths": paths(path_prefix, health, score, swagger),
        "components": {
            "schemas": {
                "ServiceInput": input,
                "ServiceOutput": output,
                "ErrorResponse": error_response_schema(),
            },
            "securitySchemes": {"Bearer": bearer_security_scheme()},
        },
    })
}

/// `value` as Python's `json.dumps(value)` writes it, which is what the reference sends.
fn python_json_text(value: &Value) -> String {
    let mut text = String::new();
    write_python_json(value, &mut text);
    text
}

fn write_python_json(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => write_python_number(number, out),
        Value::String(text) => write_python_string(text, out),
        Value::Array(items) => {
            out.push('[');
            for (position, item) in items.iter().enumerate() {
                if position > 0 {
                    out.push_str(", ");
                }
                write_python_json(item, out);
            }
            out.push(']');
        }
        Value::Object(members) => {
            out.push('{');
            for (position, (key, member)) in members.iter().enumerate() {
                if position > 0 {
                    out.push_str(", ");
                }
                write_python_string(key, out);
                out.push_str(": ");
                write_python_json(member, out);
            }
            out.push('}');
        }
    }
}

fn write_python_number(number: &Number, out: &mut String) {
    if let Some(integer) = number.as_i64() {
        out.push_str(&integer.to_string());
    } else if let Some(integer) = number.as_u64() {
        out.push_str(&integer.to_string());
    } else if let Some(float) = number.as_f64() {
        out.push_str(&python_float_repr(float));
    }
}

/// Python's `repr(float)`: the shortest digits that read back to the same value, in
/// fixed notation when the decimal exponent is in -4..16, else as `1.5e+16`/`1e-05`.
fn python_float_repr(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    // Rust's `{:e}` also prints the shortest round-trip digits, e.g. `-1.5e-5`, `1e16`.
    let scientific = format!("{value:e}");
    let Some((mantissa, exponent)) = scientific.split_once('e') else {
        return scientific;
    };
    let Ok(exponent) = exponent.parse::<i32>() else {
        return scientific;
    };
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(unsigned) => ("-", unsigned),
        None => ("", mantissa),
    };
    let digits: String = mantissa
        .chars()
        .filter(|character| *character != '.')
        .collect();
    // The value is 0.DIGITS x 10^point_position.
    let point_position = exponent + 1;
    if (-3..=16).contains(&point_position) {
        if point_position <= 0 {
            let zeros = "0".repeat(point_position.unsigned_abs() as usize);
            format!("{sign}0.{zeros}{digits}")
        } else {
            let whole_digits = point_position.unsigned_abs() as usize;
            if whole_digits >= digits.len() {
                let zeros = "0".repeat(whole_digits - digits.len());
                format!("{sign}{digits}{zeros}.0")
            } else {
                let (whole, fraction) = digits.split_at(whole_digits);
                format!("{sign}{whole}.{fraction}")
            }
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let exponent_sign = if exponent < 0 { '-' } else { '+' };
        let exponent = exponent.unsigned_abs();
        if rest.is_empty() {
            format!("{sign}{first}e{exponent_sign}{exponent:02}")
        } else {
            format!("{sign}{first}.{rest}e{exponent_sign}{exponent:02}")
        }
    }
}

/// A JSON string as `json.dumps` writes it with `ensure_ascii`: everything outside
/// printable ASCII escaped, as UTF-16 `\uXXXX` units in lower-case hex.
fn write_python_string(text: &str, out: &mut String) {
    out.push('"');
    for character in text.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(character),
            _ => {
                let mut units = [0u16; 2];
                for unit in character.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// The conformance cases recorded from the reference, kept in the repository.
    const CONFORMANCE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/conformance");

    fn user_swagger_app_root() -> PathBuf {
        Path::new(CONFORMANCE_DIR).join("apps/user_swagger")
    }

    fn golden_scenario(scenario_name: &str) -> Value {
        let path = Path::new(CONFORMANCE_DIR).join(format!("goldens/{scenario_name}.json"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        serde_json::from_str(&text).unwrap()
    }

    fn golden_case<'a>(scenario: &'a Value, case_name: &str) -> &'a Value {
        scenario["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|case| case["name"] == case_name)
            .unwrap_or_else(|| panic!("no case {case_name}"))
    }

    /// A fresh folder under the system temp dir, removed when dropped.
    struct ScratchDir(PathBuf);

    impl ScratchDir {
        fn new() -> Self {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let path = std::env::temp_dir().join(format!(
                "azmlinfsrv-swagger-test-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).unwrap();
            ScratchDir(path)
        }

        fn write(&self, file_name: &str, contents: &[u8]) -> &Self {
            std::fs::write(self.0.join(file_name), contents).unwrap();
            self
        }
    }

    impl Drop for ScratchDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn default_service() -> ServiceDescription {
        ServiceDescription {
            service_name: "ML service".to_owned(),
            service_version: "1.0".to_owned(),
            path_prefix: String::new(),
        }
    }

    /// The service settings a scenario starts the server with (reference defaults).
    fn scenario_service(scenario: &Value) -> ServiceDescription {
        let env = &scenario["env"];
        let setting = |name: &str, default: &str| env[name].as_str().unwrap_or(default).to_owned();
        ServiceDescription {
            service_name: setting("SERVICE_NAME", "ML service"),
            service_version: setting("SERVICE_VERSION", "1.0"),
            path_prefix: setting("SERVICE_PATH_PREFIX", ""),
        }
    }

    /// The `version` query parameter of a recorded request path, as werkzeug reads it.
    fn version_query(request_path: &str) -> Option<String> {
        let (_, query) = request_path.split_once('?')?;
        assert!(
            !query.contains('%') && !query.contains('+'),
            "decode {query} first"
        );
        query
            .split('&')
            .find_map(|pair| match pair.split_once('=') {
                Some(("version", value)) => Some(value.to_owned()),
                None if pair == "version" => Some(String::new()),
                _ => None,
            })
    }

    fn documents_for_scenario(scenario: &Value, schemas: &ScriptSchemas) -> SwaggerDocuments {
        let empty_app_root = ScratchDir::new();
        let app_root = match scenario["env"]["AML_APP_ROOT"].as_str() {
            Some(configured) => PathBuf::from(configured.replace("{CONF}", CONFORMANCE_DIR)),
            None => empty_app_root.0.clone(),
        };
        SwaggerDocuments::build(&scenario_service(scenario), schemas, &app_root).unwrap()
    }

    /// Replays every recorded `GET /swagger.json` of a scenario against the documents
    /// built for it: status, parsed body, and for `200` the exact bytes the reference
    /// sent. Returns the names of the cases checked.
    fn replay_swagger_cases(scenario_name: &str, schemas: &ScriptSchemas) -> Vec<String> {
        let scenario = golden_scenario(scenario_name);
        let documents = documents_for_scenario(&scenario, schemas);
        let mut checked = Vec::new();
        for case in scenario["cases"].as_array().unwrap() {
            let request = &case["request"];
            let path = request["path"].as_str().unwrap_or_default();
            if request["method"] != "GET"
                || !(path == "/swagger.json" || path.starts_with("/swagger.json?"))
            {
                continue;
            }
            let case_name = case["name"].as_str().unwrap();
            let expected_body = &case["expect"]["body"]["json"];
            let query = version_query(path);
            match (
                case["expect"]["status"].as_u64(),
                documents.find(query.as_deref()),
            ) {
                (Some(200), Ok(body)) => {
                    let served: Value = serde_json::from_slice(body).unwrap();
                    assert_eq!(&served, expected_body, "{scenario_name}/{case_name}");
                    let recorded_text = case["recorded"]["body_text"].as_str().unwrap();
                    assert_eq!(
                        std::str::from_utf8(body).unwrap(),
                        recorded_text,
                        "{scenario_name}/{case_name}: bytes differ from the reference's"
                    );
                }
                (Some(404), Err(not_found)) => {
                    assert_eq!(
                        &json!({"message": not_found.to_string()}),
                        expected_body,
                        "{scenario_name}/{case_name}"
                    );
                }
                (status, outcome) => {
                    panic!("{scenario_name}/{case_name}: expected {status:?}, got {outcome:?}")
                }
            }
            checked.push(case_name.to_owned());
        }
        checked
    }

    /// What the runner reports for a decorated script: the schemas the golden v2
    /// document carries, for every version.
    fn schemas_recorded_in(scenario_name: &str) -> ScriptSchemas {
        let scenario = golden_scenario(scenario_name);
        let definitions =
            &golden_case(&scenario, "swagger_v2")["expect"]["body"]["json"]["definitions"];
        let declared =
            json!({"input": definitions["ServiceInput"], "output": definitions["ServiceOutput"]});
        ScriptSchemas::from_json(&json!({"2": declared, "3": declared, "3.1": declared}))
    }

    #[test]
    fn hello_swagger_cases_match_the_reference() {
        let checked = replay_swagger_cases("hello", &ScriptSchemas::undecorated());
        assert_eq!(
            checked,
            [
                "swagger_default",
                "swagger_v2",
                "swagger_v3",
                "swagger_v3_1",
                "swagger_v2_0_alias",
                "swagger_v3_0_alias",
                "swagger_v7_404",
                "swagger_empty_version_404",
            ]
        );
    }

    #[test]
    fn hello_swagger_cases_match_with_the_runner_protocol_example() {
        // The `hello` runner handshake from runner/PROTOCOL.md.
        let schemas = ScriptSchemas::from_json(&json!({
            "2": {"input": null, "output": null},
            "3": {"input": null, "output": null},
            "3.1": {"input": null, "output": null},
        }));
        assert_eq!(schemas, ScriptSchemas::undecorated());
        assert_eq!(replay_swagger_cases("hello", &schemas).len(), 8);
        assert_eq!(
            ScriptSchemas::from_json(&Value::Null),
            ScriptSchemas::undecorated()
        );
    }

    #[test]
    fn service_settings_and_path_prefix_match_the_reference() {
        let checked = replay_swagger_cases("swagger_service_env", &ScriptSchemas::undecorated());
        assert_eq!(
            checked,
            [
                "swagger_default",
                "swagger_v2",
                "swagger_v3",
                "swagger_v3_1"
            ]
        );
    }

    #[test]
    fn standard_python_schemas_match_the_reference() {
        let checked = replay_swagger_cases("schema_std", &schemas_recorded_in("schema_std"));
        assert_eq!(
            checked,
            [
                "swagger_default",
                "swagger_v2",
                "swagger_v3",
                "swagger_v3_1"
            ]
        );
    }

    #[test]
    fn numpy_schemas_match_the_reference() {
        let checked = replay_swagger_cases("schema_numpy", &schemas_recorded_in("schema_numpy"));
        assert_eq!(checked, ["swagger_v2", "swagger_v3", "swagger_v3_1"]);
    }

    #[test]
    fn user_files_match_the_reference() {
        let checked =
            replay_swagger_cases("user_swagger_app_root_env", &ScriptSchemas::undecorated());
        assert_eq!(
            checked,
            [
                "swagger_default",
                "swagger_v2",
                "swagger_v2_0",
                "swagger_v3",
                "swagger_v3_0",
                "swagger_v3_1_generated",
                "swagger_v4_404",
            ]
        );
    }

    #[test]
    fn user_files_are_logged_like_the_reference() {
        let app_root = user_swagger_app_root();
        let documents =
            SwaggerDocuments::build(&default_service(), &ScriptSchemas::undecorated(), &app_root)
                .unwrap();
        assert_eq!(
            documents.startup_log(),
            [
                format!(
                    "Loaded user's swagger file for version [2] from {}",
                    app_root.join("swagger.json").display()
                ),
                format!(
                    "Loaded user's swagger file for version [3] from {}",
                    app_root.join("swagger3.json").display()
                ),
                "Swaggers are prepared for the following versions: [2, 3, 3.1].".to_owned(),
            ]
        );
    }

    #[test]
    fn generated_documents_are_logged_like_the_reference() {
        let app_root = ScratchDir::new();
        let documents = SwaggerDocuments::build(
            &default_service(),
            &ScriptSchemas::undecorated(),
            &app_root.0,
        )
        .unwrap();
        assert_eq!(
            documents.startup_log(),
            ["Swaggers are prepared for the following versions: [2, 3, 3.1]."]
        );
    }

    #[test]
    fn version_query_values_and_aliases() {
        use SwaggerVersion::*;
        let accepted = [
            (None, V2),
            (Some("2"), V2),
            (Some("2.0"), V2),
            (Some("3"), V3),
            (Some("3.0"), V3),
            (Some("3.1"), V3_1),
        ];
        for (query, version) in accepted {
            assert_eq!(SwaggerVersion::from_query(query), Ok(version), "{query:?}");
        }
        for rejected in ["", "7", "4", "3.10", "2.00", " 2", "v2", "3.1.0", "V3"] {
            assert_eq!(
                SwaggerVersion::from_query(Some(rejected)),
                Err(UnknownVersion {
                    requested: rejected.to_owned()
                })
            );
        }
    }

    #[test]
    fn unknown_version_messages() {
        let message = |query: &str| {
            SwaggerVersion::from_query(Some(query))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            message("7"),
            "Swagger version [7] is not valid. Supported versions: [2, 3, 3.1]."
        );
        assert_eq!(
            message(""),
            "Swagger version [] is not valid. Supported versions: [2, 3, 3.1]."
        );
    }

    #[test]
    fn path_prefix_is_normalised_like_the_reference() {
        let cases = [
            ("", ""),
            ("/api/v1/", "/api/v1"),
            ("api", "/api"),
            ("api/", "/api"),
            ("//api//v1//", "/api//v1"),
            ("/", "/"),
            (" api ", "/ api "),
        ];
        for (configured, normalised) in cases {
            let service = ServiceDescription {
                path_prefix: configured.to_owned(),
                ..default_service()
            };
            assert_eq!(
                service.normalised_path_prefix(),
                normalised,
                "{configured:?}"
            );
            let documents = SwaggerDocuments::build(
                &service,
                &ScriptSchemas::undecorated(),
                &ScratchDir::new().0,
            )
            .unwrap();
            for version in SwaggerVersion::ALL {
                let document: Value =
                    serde_json::from_slice(documents.document(version).unwrap()).unwrap();
                let paths: Vec<&String> = document["paths"].as_object().unwrap().keys().collect();
                assert_eq!(
                    paths,
                    [
                        &format!("{normalised}/"),
                        &format!("{normalised}/score"),
                        &format!("{normalised}/swagger.json")
                    ]
                );
            }
        }
    }

    #[test]
    fn service_name_and_version_are_placed_verbatim() {
        let awkward = "my \"quoted\" \\ svc\n$SERVICE_VERSION$ caf\u{e9} \\u0041";
        let service = ServiceDescription {
            service_name: awkward.to_owned(),
            service_version: "2.5 \"beta\"".to_owned(),
            path_prefix: String::new(),
        };
        let documents = SwaggerDocuments::build(
            &service,
            &ScriptSchemas::undecorated(),
            &ScratchDir::new().0,
        )
        .unwrap();
        for version in SwaggerVersion::ALL {
            let body = documents.document(version).unwrap();
            assert!(body.is_ascii(), "json.dumps escapes non-ASCII");
            let document: Value = serde_json::from_slice(body).unwrap();
            assert_eq!(
                document["info"],
                json!({
                    "title": awkward,
                    "description": format!("API specification for the Azure Machine Learning service {awkward}"),
                    "version": "2.5 \"beta\"",
                })
            );
        }
    }

    #[test]
    fn version_3_1_is_version_3_with_another_openapi_field() {
        let schemas = schemas_recorded_in("schema_numpy");
        let documents =
            SwaggerDocuments::build(&default_service(), &schemas, &ScratchDir::new().0).unwrap();
        let parse = |version| {
            serde_json::from_slice::<Value>(documents.document(version).unwrap()).unwrap()
        };
        let (version_3, mut version_3_1) = (parse(SwaggerVersion::V3), parse(SwaggerVersion::V3_1));
        assert_eq!(version_3["openapi"], "3.0.3");
        assert_eq!(version_3_1["openapi"], "3.1.0");
        version_3_1["openapi"] = json!("3.0.3");
        assert_eq!(version_3, version_3_1);
        assert_eq!(parse(SwaggerVersion::V2)["swagger"], "2.0");
    }

    #[test]
    fn each_version_gets_its_own_schemas() {
        let schemas = ScriptSchemas::from_json(&json!({
            "2": {"input": {"type": "string"}, "output": null},
            "3": {"input": null, "output": {"type": "integer"}},
            "3.1": {"input": {"type": "number"}, "output": {"type": "boolean"}},
        }));
        let documents =
            SwaggerDocuments::build(&default_service(), &schemas, &ScratchDir::new().0).unwrap();
        let parse = |version| {
            serde_json::from_slice::<Value>(documents.document(version).unwrap()).unwrap()
        };
        let version_2 = parse(SwaggerVersion::V2);
        assert_eq!(
            version_2["definitions"]["ServiceInput"],
            json!({"type": "string"})
        );
        assert_eq!(
            version_2["definitions"]["ServiceOutput"],
            json!({"type": "object", "example": {}})
        );
        let version_3 = parse(SwaggerVersion::V3);
        assert_eq!(
            version_3["components"]["schemas"]["ServiceInput"],
            json!({"type": "object", "example": {}})
        );
        assert_eq!(
            version_3["components"]["schemas"]["ServiceOutput"],
            json!({"type": "integer"})
        );
        let version_3_1 = parse(SwaggerVersion::V3_1);
        assert_eq!(
            version_3_1["components"]["schemas"]["ServiceInput"],
            json!({"type": "number"})
        );
        assert_eq!(
            version_3_1["components"]["schemas"]["ServiceOutput"],
            json!({"type": "boolean"})
        );
    }

    #[test]
    fn versions_the_decorators_cannot_describe_are_not_found() {
        // inference-schema reports versions 3.0 and 3.1 only, e.g. for a mixed-type array.
        let declared = json!({"input": {"type": "array"}, "output": null});
        let schemas = ScriptSchemas::from_json(&json!({"3": declared, "3.1": declared}));
        let documents =
            SwaggerDocuments::build(&default_service(), &schemas, &ScratchDir::new().0).unwrap();
        assert_eq!(
            documents.supported_versions(),
            [SwaggerVersion::V3, SwaggerVersion::V3_1]
        );
        assert_eq!(documents.document(SwaggerVersion::V2), None);
        let not_found = |query: Option<&str>| documents.find(query).unwrap_err().to_string();
        assert_eq!(
            not_found(None),
            "Swagger version [2] is not supported for the scoring script. Supported swagger versions: [3, 3.1]."
        );
        assert_eq!(
            not_found(Some("2.0")),
            "Swagger version [2.0] is not supported for the scoring script. Supported swagger versions: [3, 3.1]."
        );
        assert_eq!(
            not_found(Some("7")),
            "Swagger version [7] is not valid. Supported versions: [3, 3.1]."
        );
        assert!(documents.find(Some("3.0")).is_ok());
        assert_eq!(
            documents.startup_log(),
            ["Swaggers are prepared for versions [3, 3.1] and skipped for versions [2]."]
        );
    }

    #[test]
    fn a_user_file_serves_a_version_the_decorators_cannot_describe() {
        let app_root = ScratchDir::new();
        app_root.write("swagger2.json", br#"{"swagger": "2.0", "from": "user"}"#);
        let documents = SwaggerDocuments::build(
            &default_service(),
            &ScriptSchemas::from_json(&json!({})),
            &app_root.0,
        )
        .unwrap();
        assert_eq!(
            documents.find(None).unwrap(),
            br#"{"swagger": "2.0", "from": "user"}"#
        );
        assert_eq!(
            documents.find(Some("3")).unwrap_err().to_string(),
            "Swagger version [3] is not supported for the scoring script. Supported swagger versions: [2]."
        );
        assert_eq!(
            documents.startup_log().last().unwrap(),
            "Swaggers are prepared for versions [2] and skipped for versions [3, 3.1]."
        );
    }

    #[test]
    fn no_document_at_all() {
        let documents = SwaggerDocuments::build(
            &default_service(),
            &ScriptSchemas::from_json(&json!({})),
            &ScratchDir::new().0,
        )
        .unwrap();
        assert_eq!(documents.startup_log(), ["No swagger is prepared."]);
        assert_eq!(
            documents.find(Some("")).unwrap_err().to_string(),
            "Swagger version [] is not valid. Supported versions: []."
        );
        assert_eq!(
            documents.find(Some("3.1")).unwrap_err().to_string(),
            "Swagger version [3.1] is not supported for the scoring script. Supported swagger versions: []."
        );
    }

    #[test]
    fn swagger2_json_is_used_when_there_is_no_swagger_json() {
        let app_root = ScratchDir::new();
        app_root.write(
            "swagger2.json",
            br#"{"swagger": "2.0", "info": {"title": "two"}}"#,
        );
        app_root.write("swagger3.1.json", br#"{"openapi": "3.1.0"}"#);
        let documents = SwaggerDocuments::build(
            &default_service(),
            &ScriptSchemas::undecorated(),
            &app_root.0,
        )
        .unwrap();
        assert_eq!(
            documents.document(SwaggerVersion::V2).unwrap(),
            br#"{"swagger": "2.0", "info": {"title": "two"}}"#
        );
        assert_eq!(
            documents.document(SwaggerVersion::V3_1).unwrap(),
            br#"{"openapi": "3.1.0"}"#
        );
        let generated_3: Value =
            serde_json::from_slice(documents.document(SwaggerVersion::V3).unwrap()).unwrap();
        assert_eq!(generated_3["openapi"], "3.0.3");
        assert_eq!(
            documents.startup_log(),
            [
                format!(
                    "Loaded user's swagger file for version [2] from {}",
                    app_root.0.join("swagger2.json").display()
                ),
                format!(
                    "Loaded user's swagger file for version [3.1] from {}",
                    app_root.0.join("swagger3.1.json").display()
                ),
                "Swaggers are prepared for the following versions: [2, 3, 3.1].".to_owned(),
            ]
        );
    }

    #[test]
    fn empty_user_files_count_as_absent_but_are_logged() {
        // Observed on the reference: `{}` in swagger.json falls through to swagger2.json,
        // `[]` and `0` fall through to the generated documents; all four are "loaded".
        let app_root = ScratchDir::new();
        app_root
            .write("swagger.json", b"{}")
            .write(
                "swagger2.json",
                br#"{"swagger": "2.0", "from": "swagger2"}"#,
            )
            .write("swagger3.json", b"[]\n")
            .write("swagger3.1.json", b"0");
        let documents = SwaggerDocuments::build(
            &default_service(),
            &ScriptSchemas::undecorated(),
            &app_root.0,
        )
        .unwrap();
        assert_eq!(
            documents.find(Some("2")).unwrap(),
            br#"{"swagger": "2.0", "from": "swagger2"}"#
        );
        let generated = SwaggerDocuments::build(
            &default_service(),
            &ScriptSchemas::undecorated(),
            &ScratchDir::new().0,
        )
        .unwrap();
        for version in [SwaggerVersion::V3, SwaggerVersion::V3_1] {
            assert_eq!(documents.document(version), generated.document(version));
        }
        let loaded: Vec<&str> = documents.startup_log().iter().map(String::as_str).collect();
        assert_eq!(loaded.len(), 5);
        assert!(loaded[0].ends_with("swagger.json") && loaded[0].contains("version [2]"));
        assert!(loaded[1].ends_with("swagger2.json") && loaded[1].contains("version [2]"));
        assert!(loaded[2].ends_with("swagger3.json") && loaded[2].contains("version [3]"));
        assert!(loaded[3].ends_with("swagger3.1.json") && loaded[3].contains("version [3.1]"));
    }

    #[test]
    fn python_falsy_values() {
        for falsy in [
            json!(null),
            json!(false),
            json!(0),
            json!(0.0),
            json!(-0.0),
            json!(""),
            json!([]),
            json!({}),
        ] {
            assert!(!is_python_truthy(&falsy), "{falsy}");
        }
        for truthy in [
            json!(true),
            json!(1),
            json!(-0.5),
            json!(" "),
            json!([0]),
            json!({"a": null}),
        ] {
            assert!(is_python_truthy(&truthy), "{truthy}");
        }
    }

    #[test]
    fn invalid_user_file_is_a_start_up_error_naming_the_file() {
        let app_root = ScratchDir::new();
        app_root.write("swagger3.json", b"{not json");
        let error = SwaggerDocuments::build(
            &default_service(),
            &ScriptSchemas::undecorated(),
            &app_root.0,
        )
        .unwrap_err();
        let path = app_root.0.join("swagger3.json");
        assert_eq!(error.path, path);
        let message = error.to_string();
        assert!(
            message.starts_with(&format!(
                "Cannot load the user's swagger file {}: it is not valid JSON (",
                path.display()
            )),
            "{message}"
        );
        assert!(
            message.contains("version [3]") && message.contains("fix it, or remove it"),
            "{message}"
        );
    }

    #[test]
    fn user_file_that_is_not_utf8_is_a_start_up_error() {
        let app_root = ScratchDir::new();
        app_root.write("swagger3.1.json", b"{\"a\": \"\xff\"}");
        let error = SwaggerDocuments::build(
            &default_service(),
            &ScriptSchemas::undecorated(),
            &app_root.0,
        )
        .unwrap_err();
        assert_eq!(error.path, app_root.0.join("swagger3.1.json"));
        assert!(
            error.to_string().contains("it is not UTF-8 text"),
            "{error}"
        );
    }

    #[test]
    fn unreadable_user_file_is_a_start_up_error() {
        let app_root = ScratchDir::new();
        std::fs::create_dir(app_root.0.join("swagger.json")).unwrap();
        app_root.write("swagger2.json", br#"{"swagger": "2.0"}"#);
        let error = SwaggerDocuments::build(
            &default_service(),
            &ScriptSchemas::undecorated(),
            &app_root.0,
        )
        .unwrap_err();
        assert_eq!(error.path, app_root.0.join("swagger.json"));
        assert!(
            error.to_string().contains("it could not be read ("),
            "{error}"
        );
    }

    #[test]
    fn missing_app_root_means_no_user_files() {
        let app_root = ScratchDir::new().0.join("does-not-exist");
        let documents =
            SwaggerDocuments::build(&default_service(), &ScriptSchemas::undecorated(), &app_root)
                .unwrap();
        assert_eq!(documents.supported_versions(), SwaggerVersion::ALL);
    }

    #[test]
    fn json_text_is_written_as_python_json_dumps() {
        let value = json!({
            "ascii": "a \"b\" \\ / ~",
            "escapes": "\n\r\t\u{8}\u{c}\u{1}\u{1f}\u{7f}",
            "unicode": "caf\u{e9} \u{20ac} \u{1f600}",
            "caf\u{e9}": [1, -2, 18446744073709551615u64, 1.0, 21.5, null, true, false, [], {}],
        });
        assert_eq!(
            python_json_text(&value),
            r#"{"ascii": "a \"b\" \\ / ~", "escapes": "\n\r\t\b\f\u0001\u001f\u007f", "unicode": "caf\u00e9 \u20ac \ud83d\ude00", "caf\u00e9": [1, -2, 18446744073709551615, 1.0, 21.5, null, true, false, [], {}]}"#
        );
    }

    #[test]
    fn floats_are_written_as_python_repr() {
        // Expected texts are Python 3.11's repr() of the same values.
        let cases = [
            (1e16, "1e+16"),
            (1234567890123456.0, "1234567890123456.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.5e300, "1.5e+300"),
            (1e22, "1e+22"),
            (21.0, "21.0"),
            (0.1, "0.1"),
            (-2.5e-7, "-2.5e-07"),
            (123456789.125, "123456789.125"),
            (1e-320, "1e-320"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (100.0, "100.0"),
            (12345678901234567.0, "1.2345678901234568e+16"),
            (0.30000000000000004, "0.30000000000000004"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Infinity"),
        ];
        for (value, python_repr) in cases {
            assert_eq!(python_float_repr(value), python_repr, "{value:e}");
        }
    }
}
