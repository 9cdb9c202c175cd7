//! Both sides of the protocol are tested against the same recorded frames
//! (`runner/frames/*.jsonl`, made by the runner's own test tool): here every frame the
//! runner sent must decode into our types, and every request we would send must
//! serialise to exactly what the runner was recorded answering.

use std::path::Path;

use serde_json::Value;

use super::framing::{FrameReader, Incoming};
use super::wire::{
    ErrorData, ErrorKind, Hello, LoadParams, LogRecord, Message, MessageKind, ScoreParams,
    ScoreResult, StreamEvent, PROTOCOL_VERSION,
};

struct Recorded {
    file: String,
    is_from_runner: bool,
    frame: Value,
    payload: Vec<u8>,
}

fn recorded_frames() -> Vec<Recorded> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("runner")
        .join("frames");
    let mut files: Vec<_> = std::fs::read_dir(&folder)
        .expect("runner/frames exists")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "jsonl"))
        .collect();
    files.sort();
    let mut frames = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines().filter(|line| !line.trim().is_empty()) {
            let record: Value = serde_json::from_str(line).unwrap();
            let Some(frame) = record.get("frame").cloned() else {
                continue; // a raw garbage line sent to the runner
            };
            let payload = record
                .get("payload_b64")
                .and_then(Value::as_str)
                .map(decode_base64)
                .unwrap_or_default();
            frames.push(Recorded {
                file: path.file_name().unwrap().to_string_lossy().into_owned(),
                is_from_runner: record["direction"] == "from_runner",
                frame,
                payload,
            });
        }
    }
    frames
}

fn decode_base64(text: &str) -> Vec<u8> {
    let value_of = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let digits: Vec<u8> = text.bytes().filter(|&c| c != b'=').map(value_of).collect();
    let mut out = Vec::new();
    for group in digits.chunks(4) {
        let bits = group
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, d)| acc | (u32::from(*d) << (18 - 6 * i)));
        let bytes = [(bits >> 16) as u8, (bits >> 8) as u8, bits as u8];
        out.extend_from_slice(&bytes[..group.len() - 1]);
    }
    out
}

#[tokio::test]
async fn every_frame_the_runner_sent_decodes_into_our_types() {
    let frames = recorded_frames();
    let from_runner: Vec<&Recorded> = frames.iter().filter(|f| f.is_from_runner).collect();
    assert!(
        from_runner.len() >= 20,
        "too few recorded frames: {}",
        from_runner.len()
    );
    for recorded in from_runner {
        let mut wire = serde_json::to_vec(&recorded.frame).unwrap();
        wire.push(b'\n');
        wire.extend_from_slice(&recorded.payload);
        let mut reader = FrameReader::new(wire.as_slice(), 1 << 20);
        let Ok(Incoming::Frame(frame)) = reader.next().await else {
            panic!("{}: not a frame: {}", recorded.file, recorded.frame);
        };
        assert_eq!(
            frame.payload.as_ref(),
            recorded.payload.as_slice(),
            "{}",
            recorded.file
        );
        let message: Message = frame.message;
        let context = format!("{}: {}", recorded.file, recorded.frame);
        match message.kind() {
            MessageKind::Notification("hello") => {
                let hello: Hello = message.params_as().expect(&context);
                assert_eq!(hello.protocol, PROTOCOL_VERSION, "{context}");
            }
            MessageKind::Notification("log") => {
                let record: LogRecord = message.params_as().expect(&context);
                assert!(
                    !record.logger.is_empty() && !record.level.is_empty(),
                    "{context}"
                );
            }
            MessageKind::Notification("chunk" | "end") => {
                let _: StreamEvent = message.params_as().expect(&context);
            }
            MessageKind::Response(_) => {
                if let Some(error) = &message.error {
                    if let Some(data) = &error.data {
                        let ErrorData { kind, .. } = &**data;
                        assert!(
                            !matches!(kind, ErrorKind::Unknown(_)),
                            "unknown kind in {context}"
                        );
                        // An error caused by a Python exception carries all of its details.
                        if data.traceback.is_some() {
                            assert!(
                                data.exception_type.is_some() && data.exception_message.is_some(),
                                "exception details missing in {context}"
                            );
                        }
                        if let Some(location) = &data.location {
                            assert!(!location.file.is_empty(), "{context}");
                        }
                    }
                } else if let Some(result) = &message.result {
                    let result: Value = serde_json::from_str(result.get()).expect(&context);
                    if result.get("status").is_some() {
                        let _: ScoreResult = serde_json::from_value(result).expect(&context);
                    }
                }
            }
            other => panic!("unexpected message kind {other:?} in {context}"),
        }
    }
}

#[test]
fn our_requests_serialise_as_the_runner_was_recorded_receiving_them() {
    let frames = recorded_frames();
    let mut checked = 0;
    for recorded in frames.iter().filter(|f| !f.is_from_runner) {
        let params = &recorded.frame["params"];
        match recorded.frame["method"].as_str() {
            Some("score") => {
                let headers: Vec<(String, String)> =
                    serde_json::from_value(params["headers"].clone()).unwrap();
                let ours = ScoreParams {
                    method: params["method"].as_str().unwrap(),
                    path: params["path"].as_str().unwrap(),
                    query: params["query"].as_str().unwrap(),
                    headers: headers
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect(),
                    request_id: params["request_id"].as_str().unwrap(),
                    remote_addr: params.get("remote_addr").and_then(Value::as_str),
                };
                assert_eq!(
                    &serde_json::to_value(&ours).unwrap(),
                    params,
                    "{}",
                    recorded.file
                );
                checked += 1;
            }
            Some("load") => {
                let text = |key: &str| params.get(key).and_then(Value::as_str).map(String::from);
                let ours = LoadParams {
                    entry_script: text("entry_script"),
                    app_root: text("app_root").unwrap_or_default(),
                    source_dir: text("source_dir"),
                    model_dir: text("model_dir"),
                    log_level: text("log_level").unwrap_or_default(),
                    scoring_timeout_ms: params["scoring_timeout_ms"].as_u64().unwrap_or_default(),
                    debug: None,
                };
                let ours = serde_json::to_value(&ours).unwrap();
                for (key, value) in ours.as_object().unwrap() {
                    if let Some(recorded_value) = params.get(key) {
                        assert_eq!(recorded_value, value, "{}: {key}", recorded.file);
                    }
                }
                checked += 1;
            }
            _ => {}
        }
    }
    assert!(
        checked >= 10,
        "only {checked} recorded requests were compared"
    );
}

#[test]
fn protocol_md_lists_every_error_kind_the_server_knows() {
    let protocol =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("runner/PROTOCOL.md"))
            .unwrap();
    for kind in [
        ErrorKind::BadInput,
        ErrorKind::UnsupportedMediaType,
        ErrorKind::UserError,
        ErrorKind::Timeout,
        ErrorKind::NotSerializable,
        ErrorKind::Internal,
        ErrorKind::ScriptNotFound,
        ErrorKind::ImportFailed,
        ErrorKind::BadScript,
        ErrorKind::InitFailed,
    ] {
        let name = format!("`{}`", kind.name());
        assert!(
            protocol.contains(&name),
            "runner/PROTOCOL.md does not list {name}"
        );
    }
}
