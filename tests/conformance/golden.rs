//! The golden format: one `goldens/<scenario>.json` per scenario (how to start the
//! server, the cases, the expected answers), read with serde.
//!
//! Every struct denies unknown fields: a matcher the replay does not implement must fail
//! the load, not pass silently. Fields kept only for people (`description`, `recorded`,
//! `reference`, `note`, `quirk`) are listed so that they are allowed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use crate::pyjson::{self, Json};

/// The conformance folder (`{CONF}`): scripts, models, apps and configs are resolved
/// against it, so the suite does not depend on the working directory.
pub fn conformance_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance")
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    /// Scenarios run in `(order, name)` order, as recorded.
    #[serde(default = "default_order")]
    pub order: i64,
    /// Script under `scripts/`, passed as `--entry_script` unless `no_auto_args`.
    pub script: Option<String>,
    /// Folder under the conformance folder, passed as `--model_dir`.
    pub model_dir: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Only `args` are passed (no `--entry_script`, `--model_dir`, `--port`).
    #[serde(default)]
    pub no_auto_args: bool,
    /// Working directory under the conformance folder; default: a fresh empty folder.
    pub cwd: Option<String>,
    pub startup: Option<Startup>,
    pub startup_failure: Option<StartupFailure>,
    /// Substrings the server's output must contain once it stopped (the `log` case).
    #[serde(default)]
    pub log_contains: Vec<String>,
    /// Replay at once instead of waiting for `GET /` to answer 200.
    #[serde(default)]
    pub no_wait_ready: bool,
    pub ready_timeout_s: Option<f64>,
    #[serde(default)]
    pub cases: Vec<Case>,
    #[allow(dead_code)] // for people
    #[serde(default)]
    description: Option<String>,
    #[allow(dead_code)] // for people: the reference's version and environment
    #[serde(default)]
    recorded_with: Option<serde_json::Value>,
    #[allow(dead_code)] // for people: what the reference printed
    #[serde(default)]
    recorded: Option<serde_json::Value>,
}

fn default_order() -> i64 {
    1000
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum Startup {
    /// The server must exit non-zero (see [`StartupFailure`]).
    Fail,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartupFailure {
    #[serde(default = "default_within_s")]
    pub within_s: f64,
    #[serde(default)]
    pub log_contains: Vec<String>,
}

fn default_within_s() -> f64 {
    60.0
}

#[derive(Debug, Default, Deserialize, PartialEq, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum CaseKind {
    /// One request, one `expect`.
    #[default]
    Http,
    /// `requests` sent in parallel, each checked against `expect_each`, the whole batch
    /// against `max_total_s` / `min_total_s`.
    Concurrent,
    /// Poll `GET /` again until it answers 200 (after a crash, during a slow init).
    WaitReady,
    /// Wait `seconds`.
    Sleep,
}

#[derive(Debug, Deserialize, PartialEq, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum PortName {
    /// The `--health_port` of the scenario instead of `--port`.
    Health,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    #[serde(default, rename = "type")]
    pub kind: CaseKind,
    pub request: Option<Request>,
    pub expect: Option<Expect>,
    #[serde(default)]
    pub requests: Vec<Request>,
    pub expect_each: Option<Expect>,
    pub max_total_s: Option<f64>,
    pub min_total_s: Option<f64>,
    /// For `wait_ready`.
    pub timeout_s: Option<f64>,
    /// For `sleep`.
    pub seconds: Option<f64>,
    pub port: Option<PortName>,
    /// A 1.5.1 artefact a re-implementation may change; we replay it like any case.
    #[allow(dead_code)] // for people
    quirk: Option<String>,
    #[allow(dead_code)] // for people
    note: Option<String>,
    #[allow(dead_code)] // for people: what the reference answered
    recorded: Option<serde_json::Value>,
}

impl Case {
    /// Whether the case measures time: such scenarios must not share the machine with
    /// servers starting up (see the scheduling in `conformance.rs`).
    pub fn is_timed(&self) -> bool {
        let bounded = |e: &Option<Expect>| {
            e.as_ref()
                .is_some_and(|e| e.max_elapsed_s.is_some() || e.min_elapsed_s.is_some())
        };
        self.kind == CaseKind::Sleep
            || self.max_total_s.is_some()
            || self.min_total_s.is_some()
            || bounded(&self.expect)
            || bounded(&self.expect_each)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    #[serde(default = "default_method")]
    pub method: String,
    /// Path with query, sent verbatim (after placeholders).
    #[serde(default = "default_path")]
    pub path: String,
    /// Sent in this order, duplicates kept.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// UTF-8 text. (The Python runner also took a JSON value and sent its `json.dumps`;
    /// no golden uses that, and a non-string now fails the load instead of being guessed.)
    pub body: Option<String>,
    pub body_b64: Option<String>,
    pub body_repeat: Option<BodyRepeat>,
    /// Send the body as `Transfer-Encoding: chunked` in pieces of `chunk_size` bytes.
    #[serde(default)]
    pub chunked: bool,
    #[serde(default = "default_chunk_size")]
    pub chunk_size: usize,
    /// Socket timeout (connect, each read and write).
    #[serde(default = "default_timeout_s")]
    pub timeout_s: f64,
}

fn default_method() -> String {
    "GET".into()
}

fn default_path() -> String {
    "/".into()
}

fn default_chunk_size() -> usize {
    7
}

fn default_timeout_s() -> f64 {
    30.0
}

/// A generated body: `prefix + chunk * count + suffix`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BodyRepeat {
    #[serde(default)]
    pub prefix: String,
    pub chunk: String,
    pub count: usize,
    #[serde(default)]
    pub suffix: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub status: Option<u16>,
    pub status_in: Option<Vec<u16>>,
    pub body: Option<BodyMatcher>,
    #[serde(default)]
    pub headers: BTreeMap<String, HeaderMatcher>,
    /// A failed connection or a connection closed without an answer passes the case.
    #[serde(default)]
    pub no_response_ok: bool,
    pub max_elapsed_s: Option<f64>,
    pub min_elapsed_s: Option<f64>,
}

/// How the body must look. The first rule present decides, in this order: `any`,
/// `empty`, `b64`, `sha256`, then (on the UTF-8 text) `text`, `regex`, and the JSON
/// rules `json`, `json_subset`, `json_fields_regex` (all that are present).
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct BodyMatcher {
    #[serde(default)]
    pub any: bool,
    /// Presence is the rule (`"empty": true`).
    pub empty: Option<bool>,
    pub b64: Option<String>,
    pub sha256: Option<String>,
    pub text: Option<String>,
    /// Python `re.fullmatch` with `re.S`.
    pub regex: Option<String>,
    #[serde(default, deserialize_with = "python_json")]
    pub json: Option<Json>,
    #[serde(default, deserialize_with = "python_json_map")]
    pub json_subset: Option<Vec<(String, Json)>>,
    /// An object with exactly these keys, each a string matching its regex.
    pub json_fields_regex: Option<BTreeMap<String, String>>,
    /// Substitute the placeholders in every string of the matcher first.
    #[serde(default)]
    pub subst: bool,
}

/// How one response header must look (repeated headers joined with `", "`). Checked in
/// this order, the first violation reported: `any`, `absent`, present, `equals`,
/// `regex`, `tokens`, `same_as`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderMatcher {
    /// Informational: nothing is checked.
    #[serde(default)]
    pub any: bool,
    #[serde(default)]
    pub absent: bool,
    pub equals: Option<String>,
    /// Python `re.fullmatch` (no `re.S`).
    pub regex: Option<String>,
    /// Comma-separated list, compared as a case-insensitive multiset.
    pub tokens: Option<Vec<String>>,
    /// Equal to another response header (both may be absent).
    pub same_as: Option<String>,
    #[allow(dead_code)] // for people: what 1.5.1 sent
    reference: Option<serde_json::Value>,
}

/// The `json` matcher, read from its raw text so that numbers keep Python's int/float
/// distinction and exact size.
fn python_json<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Json>, D::Error> {
    let raw = Box::<RawValue>::deserialize(d)?;
    pyjson::parse(raw.get())
        .map(Some)
        .map_err(serde::de::Error::custom)
}

fn python_json_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<(String, Json)>>, D::Error> {
    match python_json(d)? {
        Some(Json::Object(entries)) => Ok(Some(entries)),
        _ => Err(serde::de::Error::custom("json_subset must be an object")),
    }
}

/// Every scenario under `goldens/`, in replay order.
pub fn load_scenarios() -> Vec<Scenario> {
    let dir = conformance_dir().join("goldens");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    paths.sort();
    let mut scenarios: Vec<Scenario> = paths
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("golden {} does not load: {e}", path.display()))
        })
        .collect();
    scenarios.sort_by(|a, b| (a.order, &a.name).cmp(&(b.order, &b.name)));
    scenarios
}
