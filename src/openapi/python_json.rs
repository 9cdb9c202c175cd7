//! JSON text written exactly as Python's `json.dumps` writes it, so that documents are
//! byte for byte the reference's.

use serde_json::{Number, Value};

/// `value` as Python's `json.dumps(value)` writes it, which is what the reference sends.
pub(super) fn python_json_text(value: &Value) -> String {
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
pub(super) fn python_float_repr(value: f64) -> String {
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
pub(super) fn write_python_string(text: &str, out: &mut String) {
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
