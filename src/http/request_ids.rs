//! Request, client and trace ids: read from the request, checked against the 100
//! character limit, and echoed on the response exactly as the reference does.

use http::{HeaderMap, HeaderValue};

const MAX_ID_CHARS: usize = 100;

/// The ids of one request, as they go back on the response.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestIds {
    /// `x-request-id`: the client's, or a new UUID4. Empty when the client sent an empty
    /// value (the reference then sends neither `x-request-id` nor `x-ms-request-id`).
    pub request_id: String,
    /// `x-ms-client-request-id`: the client's, else the legacy `x-ms-request-id`.
    pub client_request_id: Option<String>,
    /// `x-ms-request-id`: legacy header if sent, else the client id, else the request id.
    pub ms_request_id: String,
    /// `TraceId`: echoed when sent.
    pub trace_id: Option<String>,
    /// The client used the deprecated `x-ms-request-id` header alone.
    pub is_legacy_id_used: bool,
}

/// Why the ids were refused: the 431 message, and the `x-request-id` the reference still
/// sends back when only the `x-ms-*` ids were too long.
#[derive(Debug, Clone, PartialEq)]
pub struct IdTooLong {
    pub message: &'static str,
    pub request_id: Option<String>,
}

impl RequestIds {
    pub fn from_headers(headers: &HeaderMap) -> Result<RequestIds, IdTooLong> {
        let request_id = text_of(headers, "x-request-id");
        let legacy_id = text_of(headers, "x-ms-request-id");
        let client_id = text_of(headers, "x-ms-client-request-id");
        if request_id
            .as_ref()
            .is_some_and(|id| id.chars().count() > MAX_ID_CHARS)
        {
            return Err(IdTooLong {
                message: "x-request-id must not exceed 100 characters",
                request_id: None,
            });
        }
        let is_too_long = |id: &Option<String>| {
            id.as_ref()
                .is_some_and(|id| id.chars().count() > MAX_ID_CHARS)
        };
        let request_id = request_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        if is_too_long(&legacy_id) || is_too_long(&client_id) {
            return Err(IdTooLong {
                message:
                    "x-ms-request-id and x-ms-client-request-id must not exceed 100 characters",
                request_id: Some(request_id),
            });
        }
        let is_legacy_id_used = legacy_id.is_some() && client_id.is_none();
        let client_request_id = client_id.or_else(|| legacy_id.clone());
        let ms_request_id = legacy_id
            .or_else(|| client_request_id.clone())
            .unwrap_or_else(|| request_id.clone());
        Ok(RequestIds {
            request_id,
            client_request_id,
            ms_request_id,
            trace_id: text_of(headers, "traceid"),
            is_legacy_id_used,
        })
    }

    /// Puts the ids on a response.
    pub fn apply(&self, headers: &mut HeaderMap) {
        insert_if_nonempty(headers, "x-request-id", &self.request_id);
        insert_if_nonempty(headers, "x-ms-request-id", &self.ms_request_id);
        if let Some(client_id) = &self.client_request_id {
            insert_if_nonempty(headers, "x-ms-client-request-id", client_id);
        }
        if let Some(trace_id) = &self.trace_id {
            insert_if_nonempty(headers, "traceid", trace_id);
        }
    }
}

fn text_of(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
}

pub fn insert_if_nonempty(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if value.is_empty() {
        return;
    }
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn a_new_uuid_is_made_when_none_is_sent() {
        let ids = RequestIds::from_headers(&HeaderMap::new()).unwrap();
        assert_eq!(ids.request_id.len(), 36);
        assert_eq!(ids.ms_request_id, ids.request_id);
        assert_eq!(ids.client_request_id, None);
    }

    #[test]
    fn legacy_id_fills_the_client_id_and_wins_for_ms_request_id() {
        let ids = RequestIds::from_headers(&headers(&[("x-ms-request-id", "legacy-1")])).unwrap();
        assert_eq!(ids.client_request_id.as_deref(), Some("legacy-1"));
        assert_eq!(ids.ms_request_id, "legacy-1");
        assert!(ids.is_legacy_id_used);
        let ids = RequestIds::from_headers(&headers(&[
            ("x-request-id", "req-4"),
            ("x-ms-request-id", "legacy-4"),
            ("x-ms-client-request-id", "client-4"),
        ]))
        .unwrap();
        assert_eq!(
            (ids.request_id.as_str(), ids.ms_request_id.as_str()),
            ("req-4", "legacy-4")
        );
        assert_eq!(ids.client_request_id.as_deref(), Some("client-4"));
    }

    #[test]
    fn ids_over_100_characters_are_refused() {
        let long = "a".repeat(101);
        assert!(RequestIds::from_headers(&headers(&[("x-request-id", &"r".repeat(100))])).is_ok());
        let refused = RequestIds::from_headers(&headers(&[("x-request-id", &long)])).unwrap_err();
        assert_eq!(
            refused.message,
            "x-request-id must not exceed 100 characters"
        );
        assert_eq!(refused.request_id, None);
        let refused =
            RequestIds::from_headers(&headers(&[("x-ms-client-request-id", &long)])).unwrap_err();
        assert!(refused.message.contains("x-ms-client-request-id"));
        assert!(refused.request_id.is_some(), "x-request-id still goes back");
    }

    #[test]
    fn an_empty_request_id_sends_no_id_back() {
        let ids = RequestIds::from_headers(&headers(&[("x-request-id", "")])).unwrap();
        let mut out = HeaderMap::new();
        ids.apply(&mut out);
        assert!(out.get("x-request-id").is_none() && out.get("x-ms-request-id").is_none());
    }
}
