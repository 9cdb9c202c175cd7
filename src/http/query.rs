//! Reading values from a raw query string (`/swagger.json?version=3`), decoding
//! percent escapes on bytes: whatever bytes a client sends give a value, never a panic.

/// The first value of `key` in a query string, percent-decoded (`+` is a space, as in
/// a form); `None` when the key is absent. A value that is not UTF-8 once decoded is
/// read with replacement characters, so it names no known version and gets the 404.
pub fn query_value(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(name.as_bytes()) == key).then(|| percent_decode(value.as_bytes()))
    })
}

/// Decodes `%XX` escapes and `+`; an escape that is not two hex digits is kept as it
/// is, like werkzeug does.
pub fn percent_decode(text: &[u8]) -> String {
    let mut out = Vec::with_capacity(text.len());
    let mut index = 0;
    while index < text.len() {
        match text[index] {
            b'+' => out.push(b' '),
            b'%' => match (
                hex_digit(text.get(index + 1)),
                hex_digit(text.get(index + 2)),
            ) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    index += 2;
                }
                _ => out.push(b'%'),
            },
            other => out.push(other),
        }
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_digit(byte: Option<&u8>) -> Option<u8> {
    let byte = *byte?;
    (byte as char).to_digit(16).map(|digit| digit as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn query_values_are_found_and_decoded() {
        assert_eq!(
            query_value("version=3.1", "version").as_deref(),
            Some("3.1")
        );
        assert_eq!(query_value("a=1&version=", "version").as_deref(), Some(""));
        assert_eq!(query_value("a=1", "version"), None);
        assert_eq!(query_value("version=%33", "version").as_deref(), Some("3"));
        assert_eq!(query_value("ver%73ion=3", "version").as_deref(), Some("3"));
        assert_eq!(percent_decode(b"100%"), "100%");
        assert_eq!(percent_decode(b"a+b%2"), "a b%2");
    }

    #[test]
    fn an_escape_before_a_multibyte_character_is_kept_not_a_panic() {
        // Used to slice a &str inside the two bytes of 'é' and panic the request task.
        assert_eq!(percent_decode("%Aé".as_bytes()), "%Aé");
        assert_eq!(query_value("%A\u{e9}", "version"), None);
        assert_eq!(percent_decode(b"%\xc3\xa9"), "%é");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn any_bytes_decode_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let _ = percent_decode(&bytes);
            let _ = query_value(&text, "version");
        }

        #[test]
        fn encoded_text_decodes_back(text in "\\PC{0,32}") {
            let encoded: String = text
                .bytes()
                .map(|byte| format!("%{byte:02X}"))
                .collect();
            prop_assert_eq!(percent_decode(encoded.as_bytes()), text);
        }
    }
}
