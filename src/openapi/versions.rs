//! The OpenAPI versions `/swagger.json` serves and how `?version=` names them.

use std::fmt;

use super::not_valid_message;

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
    pub(super) fn schema_key(self) -> &'static str {
        self.label()
    }

    /// Position in per-version arrays, following [`SwaggerVersion::ALL`].
    pub(super) fn index(self) -> usize {
        match self {
            SwaggerVersion::V2 => 0,
            SwaggerVersion::V3 => 1,
            SwaggerVersion::V3_1 => 2,
        }
    }

    /// User files that replace the generated document, in the order they are tried.
    pub(super) fn user_file_names(self) -> &'static [&'static str] {
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
