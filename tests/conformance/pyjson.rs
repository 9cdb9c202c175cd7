//! JSON as Python's `json` module reads it, for the `json` body matchers.
//!
//! The reference's answers are `json.dumps` output, and the goldens were checked by
//! comparing `json.dumps(x, sort_keys=True)` of both sides. That comparison tells `1`
//! from `1.0` and `true` from `1`, keeps big integers exact and accepts the `NaN` /
//! `Infinity` literals `json.dumps` emits. `serde_json::Value` (without the
//! `arbitrary_precision` feature, which would change the server binary's build too)
//! turns integers past `u64` into floats and rejects `NaN`, so this module keeps its own
//! small value type and parser.

use std::fmt::Write as _;

/// A parsed JSON value. Integers keep their canonical decimal text so that any size
/// compares exactly, as Python's `int` does.
#[derive(Debug, Clone)]
pub enum Json {
    Null,
    Bool(bool),
    Int(String),
    Float(f64),
    Str(String),
    Array(Vec<Json>),
    /// Keys are unique (a repeated key keeps its first place and its last value, as a
    /// Python `dict` does); order is irrelevant to equality.
    Object(Vec<(String, Json)>),
}

impl PartialEq for Json {
    /// The equality of `json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)`:
    /// floats by value with `-0.0 != 0.0` (their `repr` differs) and `NaN == NaN`.
    fn eq(&self, other: &Json) -> bool {
        match (self, other) {
            (Json::Null, Json::Null) => true,
            (Json::Bool(a), Json::Bool(b)) => a == b,
            (Json::Int(a), Json::Int(b)) => a == b,
            (Json::Float(a), Json::Float(b)) => {
                a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
            }
            (Json::Str(a), Json::Str(b)) => a == b,
            (Json::Array(a), Json::Array(b)) => a == b,
            (Json::Object(a), Json::Object(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .all(|(key, value)| get(b, key).is_some_and(|other| other == value))
            }
            _ => false,
        }
    }
}

fn get<'a>(object: &'a [(String, Json)], key: &str) -> Option<&'a Json> {
    object.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

impl Json {
    /// Applies `f` to every string and object key (the golden `subst` rule).
    pub fn map_strings(&self, f: &dyn Fn(&str) -> String) -> Json {
        match self {
            Json::Str(s) => Json::Str(f(s)),
            Json::Array(items) => Json::Array(items.iter().map(|v| v.map_strings(f)).collect()),
            Json::Object(entries) => Json::Object(
                entries
                    .iter()
                    .map(|(k, v)| (f(k), v.map_strings(f)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    pub fn as_object(&self) -> Option<&[(String, Json)]> {
        match self {
            Json::Object(entries) => Some(entries),
            _ => None,
        }
    }

    /// Compact text for failure messages, keys sorted like the Python runner printed.
    pub fn dumps(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Int(digits) => out.push_str(digits),
            Json::Float(f) if f.is_nan() => out.push_str("NaN"),
            Json::Float(f) if f.is_infinite() => {
                out.push_str(if *f > 0.0 { "Infinity" } else { "-Infinity" })
            }
            Json::Float(f) => {
                let _ = write!(out, "{f:?}");
            }
            Json::Str(s) => write_str(s, out),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Json::Object(entries) => {
                let mut sorted: Vec<_> = entries.iter().collect();
                sorted.sort_by(|a, b| a.0.cmp(&b.0));
                out.push('{');
                for (i, (key, value)) in sorted.into_iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write_str(key, out);
                    out.push_str(": ");
                    value.write(out);
                }
                out.push('}');
            }
        }
    }
}

fn write_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Parses a whole document the way `json.loads` does (strict mode: no control
/// characters inside strings; `NaN`, `Infinity`, `-Infinity` accepted).
pub fn parse(text: &str) -> Result<Json, String> {
    let mut parser = Parser {
        bytes: text.as_bytes(),
        text,
        at: 0,
    };
    parser.skip_ws();
    let value = parser.value()?;
    parser.skip_ws();
    if parser.at != parser.bytes.len() {
        return Err(format!("extra data at byte {}", parser.at));
    }
    Ok(value)
}

struct Parser<'a> {
    bytes: &'a [u8],
    text: &'a str,
    at: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while matches!(self.bytes.get(self.at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn error<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("{what} at byte {}", self.at))
    }

    fn eat(&mut self, literal: &str) -> bool {
        if self.text[self.at..].starts_with(literal) {
            self.at += literal.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        match self.bytes.get(self.at).copied() {
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => self.string().map(Json::Str),
            _ if self.eat("null") => Ok(Json::Null),
            _ if self.eat("true") => Ok(Json::Bool(true)),
            _ if self.eat("false") => Ok(Json::Bool(false)),
            _ if self.eat("NaN") => Ok(Json::Float(f64::NAN)),
            _ if self.eat("Infinity") => Ok(Json::Float(f64::INFINITY)),
            _ if self.eat("-Infinity") => Ok(Json::Float(f64::NEG_INFINITY)),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => self.error("expecting value"),
        }
    }

    fn object(&mut self) -> Result<Json, String> {
        self.at += 1;
        let mut entries: Vec<(String, Json)> = Vec::new();
        self.skip_ws();
        if self.eat("}") {
            return Ok(Json::Object(entries));
        }
        loop {
            self.skip_ws();
            if self.bytes.get(self.at) != Some(&b'"') {
                return self.error("expecting property name");
            }
            let key = self.string()?;
            self.skip_ws();
            if !self.eat(":") {
                return self.error("expecting ':'");
            }
            self.skip_ws();
            let value = self.value()?;
            match entries.iter_mut().find(|(k, _)| *k == key) {
                Some(entry) => entry.1 = value,
                None => entries.push((key, value)),
            }
            self.skip_ws();
            if self.eat("}") {
                return Ok(Json::Object(entries));
            }
            if !self.eat(",") {
                return self.error("expecting ',' or '}'");
            }
        }
    }

    fn array(&mut self) -> Result<Json, String> {
        self.at += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.eat("]") {
            return Ok(Json::Array(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value()?);
            self.skip_ws();
            if self.eat("]") {
                return Ok(Json::Array(items));
            }
            if !self.eat(",") {
                return self.error("expecting ',' or ']'");
            }
        }
    }

    /// Python's number grammar: `-?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?`; a fraction or
    /// exponent makes a float (`1E2` is `100.0`), otherwise an exact int (`-0` is `0`).
    fn number(&mut self) -> Result<Json, String> {
        let start = self.at;
        let digits = |p: &mut Self| {
            let from = p.at;
            while p.bytes.get(p.at).is_some_and(u8::is_ascii_digit) {
                p.at += 1;
            }
            p.at - from
        };
        self.eat("-");
        if !self.eat("0") && digits(self) == 0 {
            return self.error("expecting value");
        }
        let mut is_float = false;
        let before_fraction = self.at;
        if self.eat(".") {
            if digits(self) == 0 {
                self.at = before_fraction;
            } else {
                is_float = true;
            }
        }
        let before_exponent = self.at;
        if self.eat("e") || self.eat("E") {
            if !self.eat("-") {
                self.eat("+");
            }
            if digits(self) == 0 {
                self.at = before_exponent;
            } else {
                is_float = true;
            }
        }
        let text = &self.text[start..self.at];
        if is_float {
            // Rust's parse rounds like Python's float() and gives ±inf past the range.
            return text.parse().map(Json::Float).map_err(|e| e.to_string());
        }
        let canonical = if text.trim_start_matches('-') == "0" {
            "0"
        } else {
            text
        };
        Ok(Json::Int(canonical.to_string()))
    }

    fn string(&mut self) -> Result<String, String> {
        self.at += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.text[self.at..].chars().next() else {
                return self.error("unterminated string");
            };
            self.at += c.len_utf8();
            match c {
                '"' => return Ok(out),
                '\\' => out.push(self.escape()?),
                c if (c as u32) < 0x20 => return self.error("invalid control character"),
                c => out.push(c),
            }
        }
    }

    fn escape(&mut self) -> Result<char, String> {
        let Some(&b) = self.bytes.get(self.at) else {
            return self.error("unterminated escape");
        };
        self.at += 1;
        Ok(match b {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let high = self.hex4()?;
                if (0xD800..0xDC00).contains(&high) && self.text[self.at..].starts_with("\\u") {
                    let save = self.at;
                    self.at += 2;
                    let low = self.hex4()?;
                    if (0xDC00..0xE000).contains(&low) {
                        let code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
                        return Ok(char::from_u32(code).unwrap_or('\u{FFFD}'));
                    }
                    self.at = save;
                }
                // A lone surrogate is a valid Python str but not a Rust one.
                char::from_u32(high).unwrap_or('\u{FFFD}')
            }
            _ => return self.error("invalid escape"),
        })
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self.text.get(self.at..self.at + 4).unwrap_or("");
        match u32::from_str_radix(digits, 16) {
            Ok(code) if digits.bytes().all(|b| b.is_ascii_hexdigit()) => {
                self.at += 4;
                Ok(code)
            }
            _ => self.error("invalid \\uXXXX escape"),
        }
    }
}

#[test]
fn parses_like_python_json_loads() {
    let value =
        parse(r#" {"a": [1, 1.0, -0, 1E2, NaN, -Infinity, "\u00e9\ud83d\ude00"], "a": 2} "#);
    assert_eq!(value, parse(r#"{"a": 2}"#));
    let value = parse(
        r#"[1, 1.0, -0, 1E2, NaN, -Infinity, "\u00e9\ud83d\ude00", 12345678901234567890123]"#,
    )
    .unwrap();
    assert_eq!(
        value.dumps(),
        "[1, 1.0, 0, 100.0, NaN, -Infinity, \"é😀\", 12345678901234567890123]"
    );
    assert_ne!(parse("1"), parse("1.0"), "int and float differ");
    assert_ne!(parse("1"), parse("true"), "bool is not int");
    assert_ne!(parse("0.0"), parse("-0.0"), "repr(-0.0) differs");
    assert_eq!(parse("NaN"), parse("NaN"), "dumps(NaN) == dumps(NaN)");
    assert_ne!(
        parse("12345678901234567890123"),
        parse("12345678901234567890124"),
        "big ints stay exact"
    );
    assert_eq!(parse(r#"{"a": 1, "b": 2}"#), parse(r#"{"b": 2, "a": 1}"#));
    for bad in [
        "",
        "01",
        "[1,]",
        "{\"a\" 1}",
        "\"a\nb\"",
        "1 2",
        "nan",
        "'a'",
    ] {
        assert!(parse(bad).is_err(), "{bad:?} is not JSON for json.loads");
    }
}
