//! Headers on every response: `x-ms-server-version` and its switch, request ids, CORS.

use crate::check;
use crate::util::{test_script, Connection, Launch, Response, Server};

const SERVER_VERSION: &str = concat!("azmlinfsrv/", env!("CARGO_PKG_VERSION"));

fn probe() -> Launch {
    Launch::script(&test_script("probe.py"))
}

/// One answer from each kind of route.
fn answers(server: &Server) -> Vec<(&'static str, Response)> {
    vec![
        (
            "/score",
            server.post("/score", r#"{"case": "environment"}"#),
        ),
        ("/", server.get("/")),
        ("/swagger.json", server.get("/swagger.json")),
        ("404", server.get("/nowhere")),
        ("400", server.request("POST", "/score", &[], &[0xff, 0xfe])),
    ]
}

#[test]
fn server_version_header_is_sent_unless_switched_off() {
    let server = probe().start();
    for (route, response) in answers(&server) {
        check!(
            server,
            response.header("x-ms-server-version") == Some(SERVER_VERSION),
            "{route}: {:?}",
            response.headers
        );
    }
    let seen = server.post("/score", r#"{"case": "environment"}"#).json();
    check!(
        server,
        seen["env"]["HTTP_X_MS_SERVER_VERSION"] == SERVER_VERSION,
        "{seen}"
    );
    let log = server.startup_log();
    check!(
        server,
        log.contains(concat!(
            "Azure ML Inferencing HTTP server v",
            env!("CARGO_PKG_VERSION")
        ))
    );
    check!(
        server,
        log.contains(&format!(
            "Inferencing HTTP server version: {SERVER_VERSION}"
        ))
    );
    drop(server);

    // Any spelling of false (the reference compares lower-cased) turns it off.
    let server = probe()
        .env("SERVER_VERSION_LOG_RESPONSE_ENABLED", "False")
        .start();
    for (route, response) in answers(&server) {
        check!(
            server,
            response.header("x-ms-server-version").is_none(),
            "{route}: {:?}",
            response.headers
        );
    }
    let seen = server.post("/score", r#"{"case": "environment"}"#).json();
    check!(
        server,
        seen["env"]["HTTP_X_MS_SERVER_VERSION"].is_null(),
        "{seen}"
    );
    check!(
        server,
        server
            .output
            .text()
            .contains("Inferencing HTTP server version: None")
    );
}

fn is_uuid4(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && text.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
        && groups[2].starts_with('4')
}

#[test]
fn request_ids_are_made_echoed_and_limited() {
    let server = probe().start();
    let fresh = server.post("/score", "{\"case\": \"environment\"}");
    let made = fresh.header("x-request-id").unwrap_or("");
    check!(server, is_uuid4(made), "x-request-id {made:?}");
    check!(server, fresh.header("x-ms-request-id") == Some(made));
    check!(server, fresh.header("x-ms-client-request-id").is_none());
    let other = server
        .get("/")
        .header("x-request-id")
        .unwrap_or("")
        .to_string();
    check!(
        server,
        is_uuid4(&other) && other != made,
        "a new id per request"
    );

    let echoed = server.request(
        "GET",
        "/score?case=environment",
        &[
            ("x-request-id", "req-1"),
            ("x-ms-client-request-id", "client-1"),
            ("TraceId", "trace-1"),
        ],
        b"",
    );
    check!(server, echoed.header("x-request-id") == Some("req-1"));
    check!(
        server,
        echoed.header("x-ms-client-request-id") == Some("client-1")
    );
    check!(server, echoed.header("x-ms-request-id") == Some("client-1"));
    check!(server, echoed.header("traceid") == Some("trace-1"));

    let legacy = server.request(
        "GET",
        "/score?case=environment",
        &[("x-ms-request-id", "legacy-1")],
        b"",
    );
    check!(server, legacy.header("x-ms-request-id") == Some("legacy-1"));
    check!(
        server,
        legacy.header("x-ms-client-request-id") == Some("legacy-1")
    );
    check!(
        server,
        server.output.wait_for(
            "x-ms-request-id header is deprecated",
            std::time::Duration::from_secs(5)
        ),
        "the legacy header is warned about"
    );

    let longest = "r".repeat(100);
    let accepted = server.request(
        "GET",
        "/score?case=environment",
        &[("x-request-id", &longest)],
        b"",
    );
    check!(server, accepted.status == 200);
    let too_long = "r".repeat(101);
    for path in ["/score?case=environment", "/"] {
        let refused = server.request("GET", path, &[("x-request-id", &too_long)], b"");
        check!(server, refused.status == 431, "{path}: {}", refused.status);
        check!(
            server,
            refused.json()["message"] == "x-request-id must not exceed 100 characters"
        );
    }
    let refused = server.request(
        "GET",
        "/score?case=environment",
        &[("x-ms-client-request-id", &too_long)],
        b"",
    );
    check!(server, refused.status == 431);
}

#[test]
fn cors_answers_allowed_origins_only() {
    let server = probe()
        .env("AML_CORS_ORIGINS", "http://a.example, http://b.example")
        .start();
    check!(
        server,
        server.startup_log().contains(
            "CORS for the specified origins: Enabling CORS for http://a.example, http://b.example"
        )
    );
    let preflight = server.request(
        "OPTIONS",
        "/score",
        &[
            ("Origin", "http://b.example"),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "Content-Type"),
        ],
        b"",
    );
    check!(server, preflight.status == 200 && preflight.body.is_empty());
    check!(
        server,
        preflight.header("access-control-allow-origin") == Some("http://b.example")
    );
    let methods = preflight
        .header("access-control-allow-methods")
        .unwrap_or("");
    check!(
        server,
        methods.contains("POST") && methods.contains("GET"),
        "{methods}"
    );
    check!(
        server,
        preflight.header("access-control-allow-headers") == Some("Content-Type")
    );
    for (method, origin, expected) in [
        ("POST", "http://a.example", Some("http://a.example")),
        ("GET", "http://b.example", Some("http://b.example")),
        ("POST", "http://evil.example", None),
    ] {
        let response = server.request(method, "/score", &[("Origin", origin)], b"x");
        check!(
            server,
            response.header("access-control-allow-origin") == expected,
            "{method} from {origin}: {:?}",
            response.headers
        );
    }
    // No Origin, no CORS headers (the reference sends its first origin: see the README).
    let without = server.post("/score", "x");
    check!(
        server,
        without.header("access-control-allow-origin").is_none()
    );
    drop(server);

    let server = probe().env("AML_CORS_ORIGINS", "*").start();
    let any = server.request("GET", "/score", &[("Origin", "http://any.example")], b"");
    check!(
        server,
        any.header("access-control-allow-origin") == Some("http://any.example")
    );
}

#[test]
fn header_names_are_lower_case_on_the_wire() {
    // README "Differences": header names are sent in lower case (HTTP/1.1 allows any).
    let server = probe().start();
    let mut connection = Connection::connect(server.port);
    connection
        .send(b"POST /score HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx")
        .unwrap();
    let raw = connection.wait_closed();
    let text = String::from_utf8_lossy(&raw);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    let names: Vec<&str> = head
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(':').map(|(name, _)| name))
        .collect();
    check!(
        server,
        names.contains(&"x-request-id") && names.contains(&"content-type"),
        "{head}"
    );
    check!(
        server,
        names.iter().all(|name| *name == name.to_ascii_lowercase()),
        "{head}"
    );
}
