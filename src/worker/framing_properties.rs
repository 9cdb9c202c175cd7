//! Property tests of the frame decoder (`framing`): whatever bytes a worker's pipe
//! carries give a sequence of `Incoming` values or an io error, never a panic; and any
//! frame `write_frame` writes reads back identical, payload included.

use bytes::Bytes;
use proptest::prelude::*;
use serde_json::Value;

use super::framing::{write_frame, FrameReader, Incoming, OutgoingFrame};
use super::wire::{Message, RpcError};

/// The payload limit the decoder is given: small, so that generated frames fall on
/// both sides of it.
const MAX_PAYLOAD: usize = 512;

/// Bounded so that `cargo test` stays fast.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

/// A current-thread runtime: the decoder is async, the properties are not.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime")
        .block_on(future)
}

/// JSON values of every kind, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |x| x.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(any::<String>(), inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn raw(value: &Value) -> Box<serde_json::value::RawValue> {
    serde_json::value::to_raw_value(value).expect("a JSON value serialises")
}

/// A message of any shape the protocol uses (request, notification, answer, error),
/// with its payload.
fn message_with_payload() -> impl Strategy<Value = (Message, Vec<u8>)> {
    (
        prop::option::of(any::<u64>()),
        prop::option::of(any::<String>()),
        prop::option::of(json_value()),
        prop::option::of(json_value()),
        prop::option::of((any::<i64>(), any::<String>())),
        prop::collection::vec(any::<u8>(), 0..MAX_PAYLOAD),
    )
        .prop_map(|(id, method, params, result, error, payload)| {
            // A null `params` or `result` reads back as absent, which the protocol
            // treats alike (`process` reads an absent result as null).
            let present = |value: Option<Value>| value.filter(|value| !value.is_null());
            let message = Message {
                jsonrpc: "2.0".into(),
                id,
                method,
                params: present(params).as_ref().map(raw),
                result: present(result).as_ref().map(raw),
                error: error.map(|(code, message)| RpcError {
                    code,
                    message,
                    data: None,
                }),
                payload: payload.len(),
            };
            (message, payload)
        })
}

/// Bytes as a pipe might carry them: valid frames, headers announcing any payload
/// size (negative, huge, not a number), stray newlines and noise, in any order.
fn channel_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        Just(b"\n".to_vec()),
        message_with_payload().prop_map(|(message, payload)| {
            let mut bytes = serde_json::to_vec(&message).expect("a message serialises");
            bytes.push(b'\n');
            bytes.extend_from_slice(&payload);
            bytes
        }),
        (
            prop_oneof![
                any::<u64>().prop_map(|n| n.to_string()),
                any::<i64>().prop_map(|n| n.to_string()),
                any::<f64>().prop_map(|x| x.to_string()),
                any::<String>().prop_map(|text| Value::from(text).to_string()),
                (0..2 * MAX_PAYLOAD).prop_map(|n| n.to_string()),
            ],
            prop::option::of(any::<u64>()),
        )
            .prop_map(|(payload, id)| {
                let id = id.map_or(String::new(), |id| format!("\"id\":{id},"));
                format!("{{\"jsonrpc\":\"2.0\",{id}\"result\":null,\"payload\":{payload}}}\n")
                    .into_bytes()
            }),
    ];
    prop::collection::vec(piece, 0..8).prop_map(|pieces| pieces.concat())
}

/// Reads everything the decoder makes of `bytes`: each value, until the channel
/// closes or reading fails.
async fn decode_all(bytes: &[u8]) -> (Vec<Incoming>, Option<std::io::Error>) {
    let mut reader = FrameReader::new(bytes, MAX_PAYLOAD);
    let mut seen = Vec::new();
    // Each value consumes at least one byte, so this bound is never the one that ends it.
    for _ in 0..=bytes.len() {
        match reader.next().await {
            Ok(Incoming::Closed) => return (seen, None),
            Ok(incoming) => seen.push(incoming),
            Err(error) => return (seen, Some(error)),
        }
    }
    panic!("the decoder gave more values than there are bytes");
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_bytes_decode_to_values_or_an_io_error(bytes in channel_bytes()) {
        let (seen, _) = block_on(decode_all(&bytes));
        for incoming in &seen {
            if let Incoming::Frame(frame) = incoming {
                prop_assert_eq!(frame.payload.len(), frame.message.payload);
                prop_assert!(frame.payload.len() <= MAX_PAYLOAD);
            }
        }
    }

    #[test]
    fn written_frames_read_back_identical(frames in prop::collection::vec(message_with_payload(), 1..6)) {
        let mut wire = Vec::new();
        block_on(async {
            for (message, payload) in &frames {
                let mut frame = OutgoingFrame::new(message, Bytes::from(payload.clone()))
                    .expect("a message serialises");
                write_frame(&mut wire, &mut frame).await.expect("writing to memory");
            }
        });
        let (seen, error) = block_on(decode_all(&wire));
        prop_assert!(error.is_none(), "{:?}", error);
        prop_assert_eq!(seen.len(), frames.len());
        for (incoming, (message, payload)) in seen.iter().zip(&frames) {
            let Incoming::Frame(frame) = incoming else {
                return Err(TestCaseError::fail(format!("expected a frame, got {incoming:?}")));
            };
            prop_assert_eq!(
                serde_json::to_string(&frame.message).expect("serialises"),
                serde_json::to_string(message).expect("serialises")
            );
            prop_assert_eq!(&frame.payload[..], &payload[..]);
        }
    }
}
