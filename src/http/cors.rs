//! CORS for the configured origins (`AML_CORS_ORIGINS` / `--access_control_allow_origins`),
//! on `/`, `/score` and `/swagger.json`, for GET, POST and the OPTIONS preflight.

use http::{HeaderMap, HeaderValue, Method};

const ALLOWED_METHODS: &str = "GET, POST";

#[derive(Debug, Clone, Default)]
pub struct Cors {
    origins: Vec<String>,
}

impl Cors {
    pub fn new(origins: Vec<String>) -> Self {
        Cors { origins }
    }

    fn allows(&self, origin: &str) -> bool {
        self.origins
            .iter()
            .any(|allowed| allowed == "*" || allowed == origin)
    }

    /// Adds the CORS headers that the request earns to the response headers.
    pub fn apply(&self, method: &Method, request: &HeaderMap, response: &mut HeaderMap) {
        if self.origins.is_empty() {
            return;
        }
        let Some(origin) = request.get("origin").and_then(|v| v.to_str().ok()) else {
            return;
        };
        if !self.allows(origin) {
            return;
        }
        let Ok(origin_value) = HeaderValue::from_str(origin) else {
            return;
        };
        response.insert("access-control-allow-origin", origin_value);
        // The answer depends on the Origin header when more than one origin may get it.
        if self.origins.len() > 1 || self.origins.iter().any(|allowed| allowed == "*") {
            response.append("vary", HeaderValue::from_static("Origin"));
        }
        let requested_method = request
            .get("access-control-request-method")
            .and_then(|v| v.to_str().ok());
        if method == Method::OPTIONS {
            if let Some(requested) = requested_method {
                if ["GET", "POST"]
                    .iter()
                    .any(|m| m.eq_ignore_ascii_case(requested.trim()))
                {
                    response.insert(
                        "access-control-allow-methods",
                        HeaderValue::from_static(ALLOWED_METHODS),
                    );
                    if let Some(headers) = request.get("access-control-request-headers") {
                        response.insert("access-control-allow-headers", headers.clone());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (k.parse().unwrap(), HeaderValue::from_static(v)))
            .collect()
    }

    fn cors() -> Cors {
        Cors::new(vec!["http://a.example".into(), "http://b.example".into()])
    }

    #[test]
    fn allowed_origin_gets_echoed_with_vary() {
        let mut out = HeaderMap::new();
        cors().apply(
            &Method::POST,
            &request(&[("origin", "http://a.example")]),
            &mut out,
        );
        assert_eq!(out["access-control-allow-origin"], "http://a.example");
        assert_eq!(out["vary"], "Origin");
        assert!(out.get("access-control-allow-methods").is_none());
    }

    #[test]
    fn preflight_lists_methods_and_echoes_headers() {
        let mut out = HeaderMap::new();
        let req = request(&[
            ("origin", "http://b.example"),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "Content-Type, X-Custom"),
        ]);
        cors().apply(&Method::OPTIONS, &req, &mut out);
        assert_eq!(out["access-control-allow-methods"], "GET, POST");
        assert_eq!(
            out["access-control-allow-headers"],
            "Content-Type, X-Custom"
        );
    }

    #[test]
    fn other_origins_and_methods_get_nothing_extra() {
        let mut out = HeaderMap::new();
        cors().apply(
            &Method::POST,
            &request(&[("origin", "http://evil.example")]),
            &mut out,
        );
        assert!(out.is_empty());
        let req = request(&[
            ("origin", "http://b.example"),
            ("access-control-request-method", "PUT"),
        ]);
        cors().apply(&Method::OPTIONS, &req, &mut out);
        assert!(out.get("access-control-allow-methods").is_none());
        assert_eq!(out["access-control-allow-origin"], "http://b.example");
    }
}
