//! The matching rules: whether one response satisfies a case's `expect`, and a short
//! description of every difference when it does not. The only copy of these rules; the
//! README's "Matching rules" section describes them.

use std::time::Duration;

use base64::Engine as _;
use sha2::Digest as _;

use crate::golden::{BodyMatcher, Expect, HeaderMatcher};
use crate::pyjson::{self, Json};

/// A response as the client saw it.
#[derive(Debug, Clone, Default)]
pub struct Response {
    pub status: u16,
    /// In arrival order, duplicates kept.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// From just before connecting to the end of the body.
    pub elapsed: Duration,
}

impl Response {
    /// The header's values joined with `", "` (names are case-insensitive), as one
    /// header would carry them.
    pub fn header(&self, name: &str) -> Option<String> {
        let values: Vec<&str> = self
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect();
        (!values.is_empty()).then(|| values.join(", "))
    }
}

/// The placeholders of a scenario (`{CONF}`, `{SCRIPTS}`, `{PORT}`, `{HEALTH_PORT}`,
/// `{CWD}`), replaced in this order.
#[derive(Debug, Clone, Default)]
pub struct Placeholders(pub Vec<(&'static str, String)>);

impl Placeholders {
    pub fn apply(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (key, value) in &self.0 {
            out = out.replace(&format!("{{{key}}}"), value);
        }
        out
    }
}

/// Every way `response` differs from `expect` (empty: it matches).
pub fn check_response(expect: &Expect, response: &Response, ctx: &Placeholders) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(status) = expect.status {
        if response.status != status {
            problems.push(format!(
                "status: expected {status}, got {}",
                response.status
            ));
        }
    }
    if let Some(allowed) = &expect.status_in {
        if !allowed.contains(&response.status) {
            problems.push(format!(
                "status: expected one of {allowed:?}, got {}",
                response.status
            ));
        }
    }
    if let Some(matcher) = &expect.body {
        problems.extend(match_body(matcher, response, ctx));
    }
    for (name, matcher) in &expect.headers {
        problems.extend(match_header(name, matcher, response));
    }
    let elapsed = response.elapsed.as_secs_f64();
    if let Some(max) = expect.max_elapsed_s {
        if elapsed > max {
            problems.push(format!("took {elapsed:.2}s, more than {max:.2}s"));
        }
    }
    if let Some(min) = expect.min_elapsed_s {
        if elapsed < min {
            problems.push(format!("took {elapsed:.2}s, less than {min:.2}s"));
        }
    }
    problems
}

/// Python's `re.fullmatch(pattern, text[, re.S])`.
pub fn full_match(pattern: &str, text: &str, dot_all: bool) -> Result<bool, String> {
    let flags = if dot_all { "(?s)" } else { "" };
    regex::Regex::new(&format!(r"{flags}\A(?:{pattern})\z"))
        .map(|re| re.is_match(text))
        .map_err(|e| format!("bad regex /{pattern}/: {e}"))
}

pub fn match_header(name: &str, matcher: &HeaderMatcher, response: &Response) -> Option<String> {
    if matcher.any {
        return None;
    }
    let actual = response.header(name);
    if matcher.absent {
        return actual.map(|got| format!("header {name}: expected absent, got {got:?}"));
    }
    let Some(actual) = actual else {
        return Some(format!("header {name}: missing"));
    };
    if let Some(want) = &matcher.equals {
        if actual != *want {
            return Some(format!("header {name}: expected {want:?}, got {actual:?}"));
        }
    }
    if let Some(pattern) = &matcher.regex {
        match full_match(pattern, &actual, false) {
            Ok(true) => {}
            Ok(false) => {
                return Some(format!(
                    "header {name}: {actual:?} does not match /{pattern}/"
                ))
            }
            Err(e) => return Some(format!("header {name}: {e}")),
        }
    }
    if let Some(tokens) = &matcher.tokens {
        let mut got: Vec<String> = actual
            .split(',')
            .map(|t| t.trim().to_lowercase())
            .filter(|t| !t.is_empty())
            .collect();
        let mut want: Vec<String> = tokens.iter().map(|t| t.to_lowercase()).collect();
        got.sort();
        want.sort();
        if got != want {
            return Some(format!(
                "header {name}: expected tokens {want:?}, got {got:?}"
            ));
        }
    }
    if let Some(other_name) = &matcher.same_as {
        let other = response.header(other_name);
        if other.as_deref() != Some(actual.as_str()) {
            return Some(format!(
                "header {name}: expected same value as {other_name} ({other:?}), got {actual:?}"
            ));
        }
    }
    None
}

/// At most `limit` characters, marked when cut.
fn short(text: &str) -> String {
    const LIMIT: usize = 100;
    let count = text.chars().count();
    if count <= LIMIT {
        text.to_string()
    } else {
        let head: String = text.chars().take(LIMIT).collect();
        format!("{head}...({count} chars)")
    }
}

/// The matcher with the placeholders substituted in every string (`subst: true`).
fn substituted(matcher: &BodyMatcher, ctx: &Placeholders) -> BodyMatcher {
    let s = |v: &Option<String>| v.as_deref().map(|t| ctx.apply(t));
    let f = |t: &str| ctx.apply(t);
    BodyMatcher {
        b64: s(&matcher.b64),
        sha256: s(&matcher.sha256),
        text: s(&matcher.text),
        regex: s(&matcher.regex),
        json: matcher.json.as_ref().map(|j| j.map_strings(&f)),
        json_subset: matcher.json_subset.as_ref().map(|entries| {
            entries
                .iter()
                .map(|(k, v)| (ctx.apply(k), v.map_strings(&f)))
                .collect()
        }),
        json_fields_regex: matcher.json_fields_regex.as_ref().map(|fields| {
            fields
                .iter()
                .map(|(k, v)| (ctx.apply(k), ctx.apply(v)))
                .collect()
        }),
        ..matcher.clone()
    }
}

pub fn match_body(
    matcher: &BodyMatcher,
    response: &Response,
    ctx: &Placeholders,
) -> Option<String> {
    let substituted_matcher;
    let matcher = if matcher.subst {
        substituted_matcher = substituted(matcher, ctx);
        &substituted_matcher
    } else {
        matcher
    };
    let body = &response.body;
    if matcher.any {
        return None;
    }
    if matcher.empty.is_some() {
        return (!body.is_empty()).then(|| {
            format!(
                "body: expected empty, got {}",
                short(&String::from_utf8_lossy(body))
            )
        });
    }
    if let Some(b64) = &matcher.b64 {
        let want = match base64::engine::general_purpose::STANDARD.decode(b64) {
            Ok(want) => want,
            Err(e) => return Some(format!("body: bad b64 in the golden: {e}")),
        };
        return (*body != want).then(|| {
            format!(
                "body: bytes differ (expected {} bytes, got {})",
                want.len(),
                body.len()
            )
        });
    }
    if let Some(want) = &matcher.sha256 {
        let got: String = sha2::Sha256::digest(body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        return (got != *want).then(|| format!("body: sha256 {got} != expected {want}"));
    }
    let Ok(text) = std::str::from_utf8(body) else {
        return Some(format!("body: not UTF-8 ({} bytes)", body.len()));
    };
    if let Some(want) = &matcher.text {
        return (text != want)
            .then(|| format!("body: expected {:?}, got {:?}", short(want), short(text)));
    }
    if let Some(pattern) = &matcher.regex {
        return match full_match(pattern, text, true) {
            Ok(true) => None,
            Ok(false) => Some(format!(
                "body: {:?} does not match /{pattern}/",
                short(text)
            )),
            Err(e) => Some(format!("body: {e}")),
        };
    }
    if matcher.json.is_none()
        && matcher.json_subset.is_none()
        && matcher.json_fields_regex.is_none()
    {
        return None;
    }
    let parsed = match pyjson::parse(text) {
        Ok(parsed) => parsed,
        Err(_) => return Some(format!("body: not JSON: {:?}", short(text))),
    };
    if let Some(want) = &matcher.json {
        if parsed != *want {
            return Some(format!(
                "body: expected JSON {}, got {}",
                short(&want.dumps()),
                short(&parsed.dumps())
            ));
        }
    }
    if let Some(subset) = &matcher.json_subset {
        for (key, want) in subset {
            let got = parsed
                .as_object()
                .and_then(|o| o.iter().find(|(k, _)| k == key));
            if got.is_none_or(|(_, got)| got != want) {
                return Some(format!(
                    "body: expected key {key:?} = {} in {}",
                    short(&want.dumps()),
                    short(&parsed.dumps())
                ));
            }
        }
    }
    if let Some(spec) = &matcher.json_fields_regex {
        let same_keys = parsed
            .as_object()
            .is_some_and(|o| o.len() == spec.len() && o.iter().all(|(k, _)| spec.contains_key(k)));
        if !same_keys {
            let keys: Vec<&String> = spec.keys().collect();
            return Some(format!(
                "body: expected object with keys {keys:?}, got {}",
                short(&parsed.dumps())
            ));
        }
        let object = parsed.as_object().unwrap_or_default();
        for (key, pattern) in spec {
            let value = object.iter().find(|(k, _)| k == key).map(|(_, v)| v);
            let ok = match value {
                Some(Json::Str(s)) => full_match(pattern, s, true),
                _ => Ok(false),
            };
            match ok {
                Ok(true) => {}
                Ok(false) => {
                    let shown = value.map(Json::dumps).unwrap_or_default();
                    return Some(format!(
                        "body: field {key:?} = {} does not match /{pattern}/",
                        short(&shown)
                    ));
                }
                Err(e) => return Some(format!("body: {e}")),
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    //! The rules must be able to fail: each test feeds a response that breaks one rule.

    use super::*;
    use crate::golden::Case;

    fn expect(json: &str) -> Expect {
        let case: Case = serde_json::from_str(&format!(r#"{{"name": "t", "expect": {json}}}"#))
            .expect("test golden loads");
        case.expect.unwrap()
    }

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
            elapsed: Duration::from_millis(10),
        }
    }

    fn check(expect_json: &str, r: &Response) -> Vec<String> {
        check_response(&expect(expect_json), r, &Placeholders::default())
    }

    #[test]
    fn a_matching_response_has_no_problems() {
        let r = response(
            200,
            &[
                ("Content-Type", "application/json"),
                ("X-Request-Id", "abc"),
                ("x-ms-request-id", "abc"),
                ("Vary", "Origin"),
                ("vary", "Accept"),
            ],
            r#"{"a": 1, "b": [1.5, "x"]}"#,
        );
        let problems = check(
            r#"{"status": 200, "body": {"json": {"b": [1.5, "x"], "a": 1}},
                "headers": {"content-type": {"equals": "application/json"},
                            "x-ms-request-id": {"same_as": "X-REQUEST-ID", "regex": "a.c"},
                            "vary": {"tokens": ["accept", "ORIGIN"]},
                            "traceid": {"absent": true},
                            "server": {"any": true, "reference": "gunicorn"}}}"#,
            &r,
        );
        assert_eq!(problems, Vec::<String>::new());
    }

    #[test]
    fn a_status_mismatch_is_reported() {
        let problems = check(r#"{"status": 200}"#, &response(500, &[], ""));
        assert_eq!(problems, ["status: expected 200, got 500"]);
        let problems = check(r#"{"status_in": [500, 502]}"#, &response(200, &[], ""));
        assert_eq!(problems, ["status: expected one of [500, 502], got 200"]);
    }

    #[test]
    fn a_header_that_must_be_absent_is_reported() {
        let r = response(200, &[("X-Ms-Run-Function-Failed", "False")], "");
        let problems = check(
            r#"{"headers": {"x-ms-run-function-failed": {"absent": true}}}"#,
            &r,
        );
        assert_eq!(
            problems,
            ["header x-ms-run-function-failed: expected absent, got \"False\""]
        );
    }

    #[test]
    fn header_rules_report_missing_values_partial_matches_and_other_tokens() {
        let r = response(
            200,
            &[("x-ms-run-fn-exec-ms", "1.2345"), ("allow", "GET, POST")],
            "",
        );
        let problems = check(
            r#"{"headers": {"x-ms-run-fn-exec-ms": {"regex": "\\d+\\.\\d{3}"},
                            "allow": {"tokens": ["GET"]},
                            "x-request-id": {"regex": ".*"},
                            "x-ms-request-id": {"any": true}}}"#,
            &r,
        );
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(
            problems[0].contains("allow: expected tokens"),
            "{problems:?}"
        );
        assert!(
            problems[1].contains("does not match"),
            "regex is a full match"
        );
        assert_eq!(problems[2], "header x-request-id: missing");
    }

    #[test]
    fn json_tells_int_from_float() {
        let problems = check(
            r#"{"body": {"json": {"v": 1}}}"#,
            &response(200, &[], r#"{"v": 1.0}"#),
        );
        assert_eq!(
            problems,
            [r#"body: expected JSON {"v": 1}, got {"v": 1.0}"#]
        );
        let problems = check(r#"{"body": {"json": [true]}}"#, &response(200, &[], "[1]"));
        assert_eq!(problems.len(), 1, "bool is not int");
    }

    #[test]
    fn body_rules_report_differences() {
        let cases = [
            (r#"{"text": "a"}"#, "b"),
            (r#"{"empty": true}"#, "x"),
            (r#"{"regex": "a.c"}"#, "a\nc!"),
            (r#"{"b64": "AAE="}"#, "\u{0}"),
            (
                r#"{"sha256": "0000000000000000000000000000000000000000000000000000000000000000"}"#,
                "",
            ),
            (r#"{"json": {}}"#, "not json"),
            (
                r#"{"json_fields_regex": {"message": "x.+"}}"#,
                r#"{"message": "y"}"#,
            ),
            (
                r#"{"json_fields_regex": {"message": ".+"}}"#,
                r#"{"message": "y", "extra": 1}"#,
            ),
            (r#"{"json_subset": {"a": 1}}"#, r#"{"a": 1.0}"#),
        ];
        for (matcher, body) in cases {
            let problems = check(
                &format!(r#"{{"body": {matcher}}}"#),
                &response(200, &[], body),
            );
            assert_eq!(problems.len(), 1, "{matcher} vs {body:?}: {problems:?}");
        }
        let passes = [
            (r#"{"regex": "a.c!"}"#, "a\nc!"),
            (
                r#"{"sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}"#,
                "",
            ),
            (r#"{"b64": "AAE="}"#, "\u{0}\u{1}"),
            (r#"{"any": true}"#, "\u{ff}"),
        ];
        for (matcher, body) in passes {
            let problems = check(
                &format!(r#"{{"body": {matcher}}}"#),
                &response(200, &[], body),
            );
            assert!(problems.is_empty(), "{matcher} vs {body:?}: {problems:?}");
        }
    }

    #[test]
    fn subst_replaces_placeholders_in_the_matcher() {
        let ctx = Placeholders(vec![("PORT", "8123".into())]);
        let e = expect(r#"{"body": {"subst": true, "json": {"url": "http://x:{PORT}/"}}}"#);
        let ok = response(200, &[], r#"{"url": "http://x:8123/"}"#);
        assert!(check_response(&e, &ok, &ctx).is_empty());
        let bad = response(200, &[], r#"{"url": "http://x:{PORT}/"}"#);
        assert_eq!(check_response(&e, &bad, &ctx).len(), 1);
    }

    #[test]
    fn time_bounds_are_checked() {
        let mut r = response(200, &[], "");
        r.elapsed = Duration::from_secs(3);
        let problems = check(r#"{"max_elapsed_s": 2.5}"#, &r);
        assert_eq!(problems, ["took 3.00s, more than 2.50s"]);
    }

    #[test]
    fn an_unknown_matcher_does_not_load() {
        let case = serde_json::from_str::<Case>(
            r#"{"name": "t", "expect": {"headers": {"a": {"equal": "x"}}}}"#,
        );
        assert!(case.is_err(), "a misspelt rule must not pass silently");
    }
}
