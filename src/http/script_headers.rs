//! How a request's headers are shown to the script (`request_headers`, the `@rawhttp`
//! request): decided here once, in werkzeug's spelling; the runner takes them as they
//! come (see `runner/PROTOCOL.md`).

use http::HeaderMap;

/// The request's headers as werkzeug shows them to scripts under gunicorn, decided here
/// once (the runner uses them as they come, see `runner/PROTOCOL.md`): names spelled
/// as werkzeug spells them, names containing `_` dropped (gunicorn drops them: they
/// could pose as other headers), repeated headers joined with `,` in arrival order
/// (`Content-Type` and `Content-Length`: the last one wins, as in the WSGI environ),
/// and an empty `Content-Type` left out, as werkzeug leaves it out.
pub fn werkzeug_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    // `keys()` yields each name once, in order of its first arrival.
    headers
        .keys()
        .filter(|name| !name.as_str().contains('_'))
        .filter_map(|name| {
            let mut values = headers
                .get_all(name)
                .iter()
                .map(|value| String::from_utf8_lossy(value.as_bytes()));
            let is_environ_key =
                *name == http::header::CONTENT_TYPE || *name == http::header::CONTENT_LENGTH;
            let value = if is_environ_key {
                values.next_back()?.into_owned()
            } else {
                values.collect::<Vec<_>>().join(",")
            };
            if is_environ_key && value.is_empty() {
                return None;
            }
            Some((title_case(name.as_str()), value))
        })
        .collect()
}

/// `X-H2O-Id` from `x-h2o-id`: Python's `str.title()`, as werkzeug applies it: a letter
/// is upper-cased when the character before it is not a letter, lower-cased otherwise.
fn title_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut follows_letter = false;
    for c in name.chars() {
        out.push(if follows_letter {
            c.to_ascii_lowercase()
        } else {
            c.to_ascii_uppercase()
        });
        follows_letter = c.is_ascii_alphabetic();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn header_names_are_title_cased_like_werkzeug() {
        assert_eq!(title_case("content-type"), "Content-Type");
        assert_eq!(
            title_case("x-ms-client-request-id"),
            "X-Ms-Client-Request-Id"
        );
        // A letter after a digit starts a word, as with Python's str.title().
        assert_eq!(title_case("x-h2o-id"), "X-H2O-Id");
        assert_eq!(title_case("x-1st.try"), "X-1St.Try");
    }

    #[test]
    fn headers_are_folded_as_werkzeug_shows_them() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("host", "localhost"),
            ("x-dup", "a"),
            ("content-type", "text/plain"),
            ("x_under", "dropped"),
            ("x-dup", "b"),
            ("content-type", "application/json"),
            ("x-empty", ""),
        ] {
            headers.append(
                http::HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        let folded = werkzeug_headers(&headers);
        let expected = [
            ("Host", "localhost"),
            ("X-Dup", "a,b"),
            ("Content-Type", "application/json"),
            ("X-Empty", ""),
        ];
        assert_eq!(
            folded,
            expected
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        );
        let mut empty_type = HeaderMap::new();
        empty_type.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(""));
        assert!(werkzeug_headers(&empty_type).is_empty());
    }
}
