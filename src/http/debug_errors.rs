//! `--debug_errors`: the body of a failed `run()` (kinds `user_error` and `timeout`)
//! with what a developer needs to find the bug without opening the log: the exception's
//! type and message, the file and line in their code, and the traceback. Off by
//! default: it shows the script's code paths to whoever calls the server.

use bytes::Bytes;
use http::StatusCode;
use serde_json::{json, Value};
use warp::reply::Response;

use super::replies::{set_run_failed, with_body, CONTENT_TYPE_JSON};
use crate::worker::wire::{ErrorData, ErrorKind};

/// Whether `--debug_errors` adds the exception to this kind of error.
pub fn applies_to(kind: &ErrorKind) -> bool {
    matches!(kind, ErrorKind::UserError | ErrorKind::Timeout)
}

/// `{"message": <the contract's text>, "error": {"type", "message", "file", "line",
/// "function", "traceback"}}`; members the runner did not know are `null`.
pub fn reply(
    status: StatusCode,
    message: &str,
    is_run_failed: bool,
    data: Option<&ErrorData>,
) -> Response {
    let location = data.and_then(|data| data.location.as_ref());
    let details = json!({
        "type": data.and_then(|data| data.exception_type.as_deref()),
        "message": data.and_then(|data| data.exception_message.as_deref()),
        "file": location.map(|location| location.file.as_str()),
        "line": location.and_then(|location| location.line),
        "function": location.and_then(|location| location.function.as_deref()),
        "traceback": data.and_then(|data| data.traceback.as_deref()),
    });
    let body: Value = json!({ "message": message, "error": details });
    let mut response = with_body(status, CONTENT_TYPE_JSON, Bytes::from(body.to_string()));
    set_run_failed(response.headers_mut(), is_run_failed);
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::wire::CodeLocation;

    #[test]
    fn the_body_names_the_exception_and_the_line() {
        let data = ErrorData {
            kind: ErrorKind::UserError,
            traceback: Some("Traceback ...\nValueError: bad\n".into()),
            exception_type: Some("ValueError".into()),
            exception_message: Some("bad".into()),
            location: Some(CodeLocation {
                file: "/x/score.py".into(),
                line: Some(12),
                function: Some("run".into()),
            }),
        };
        let response = reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "An error",
            true,
            Some(&data),
        );
        assert_eq!(response.headers()["x-ms-run-function-failed"], "True");
        assert!(applies_to(&ErrorKind::Timeout) && !applies_to(&ErrorKind::BadInput));
    }
}
