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

mod python_json;
mod templates;
mod user_files;
mod versions;

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use python_json::python_json_text;
use templates::generated_document;
use user_files::read_user_document;
pub use versions::SwaggerVersion;

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

pub(super) fn not_valid_message(requested: &str, supported: &[SwaggerVersion]) -> String {
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

#[cfg(test)]
mod tests;
