//! Reading and writing frames (a JSON line plus an optional raw payload) on a worker's
//! pipes. A frame is never dropped silently: a line that is not a frame means the
//! channel lost sync (the caller replaces the worker), and a payload over the limit is
//! skipped byte for byte so that the frames after it are still read in step.

use bytes::{Bytes, BytesMut};
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader,
};

use super::wire::Message;

/// The longest JSON line accepted from a runner (payloads are not counted). Big enough
/// for any JSON a runner sends (an `init()` error with a huge message, OpenAPI schemas
/// of a large `@input_schema` sample), small enough to bound a worker's memory.
pub const MAX_LINE_BYTES: usize = 64 * 1024 * 1024;

/// One decoded frame.
#[derive(Debug)]
pub struct Frame {
    pub message: Message,
    pub payload: Bytes,
}

/// What the reader found next on the channel.
#[derive(Debug)]
pub enum Incoming {
    Frame(Box<Frame>),
    /// A frame whose payload is over the limit: the payload was read and dropped, so
    /// the channel is still in step; the frame's receiver must be told.
    PayloadTooLarge {
        message: Box<Message>,
        size: usize,
    },
    /// A line that is not a frame (not JSON, or too long): whatever follows cannot be
    /// trusted to start on a frame boundary.
    LostSync(String),
    /// The runner closed its end: it exited or is exiting.
    Closed,
}

pub struct FrameReader<R> {
    inner: BufReader<R>,
    line: Vec<u8>,
    max_payload: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(reader: R, max_payload: usize) -> Self {
        FrameReader {
            inner: BufReader::with_capacity(64 * 1024, reader),
            line: Vec::new(),
            max_payload,
        }
    }

    pub async fn next(&mut self) -> std::io::Result<Incoming> {
        let Some(is_overlong) =
            read_capped_line(&mut self.inner, &mut self.line, MAX_LINE_BYTES).await?
        else {
            return Ok(Incoming::Closed);
        };
        if is_overlong {
            return Ok(Incoming::LostSync(format!(
                "a line longer than {MAX_LINE_BYTES} bytes (starts with {:?})",
                preview(&self.line)
            )));
        }
        let message: Message = match serde_json::from_slice(&self.line) {
            Ok(message) => message,
            Err(err) => {
                return Ok(Incoming::LostSync(format!(
                    "{err} in line {:?}",
                    preview(&self.line)
                )));
            }
        };
        if message.payload > self.max_payload {
            let size = message.payload;
            let skipped = tokio::io::copy(
                &mut (&mut self.inner).take(size as u64),
                &mut tokio::io::sink(),
            )
            .await?;
            if skipped < size as u64 {
                return Ok(Incoming::Closed);
            }
            return Ok(Incoming::PayloadTooLarge {
                message: Box::new(message),
                size,
            });
        }
        let mut payload = BytesMut::zeroed(message.payload);
        self.inner.read_exact(&mut payload).await?;
        Ok(Incoming::Frame(Box::new(Frame {
            message,
            payload: payload.freeze(),
        })))
    }
}

/// Reads up to the next newline into `line` (without it), keeping at most `cap` bytes
/// and discarding the rest of an overlong line, so that no line can exhaust memory.
/// Returns `None` at end of stream, `Some(true)` when the line was cut.
pub async fn read_capped_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
    cap: usize,
) -> std::io::Result<Option<bool>> {
    line.clear();
    let mut is_overlong = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(if line.is_empty() && !is_overlong {
                None
            } else {
                Some(is_overlong)
            });
        }
        let (chunk, found_newline) = match available.iter().position(|&b| b == b'\n') {
            Some(end) => (&available[..end], true),
            None => (available, false),
        };
        let room = cap.saturating_sub(line.len());
        if chunk.len() > room {
            is_overlong = true;
        }
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let used = chunk.len() + usize::from(found_newline);
        reader.consume(used);
        if found_newline {
            return Ok(Some(is_overlong));
        }
    }
}

fn preview(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(&line[..line.len().min(120)]);
    text.into_owned()
}

/// One frame ready to write: its JSON line (newline included) and its payload.
#[derive(Debug)]
pub struct OutgoingFrame {
    pub line: Vec<u8>,
    pub payload: Bytes,
}

impl OutgoingFrame {
    pub fn new(message: &Message, payload: Bytes) -> serde_json::Result<Self> {
        let mut line = serde_json::to_vec(message)?;
        line.push(b'\n');
        Ok(OutgoingFrame { line, payload })
    }
}

/// Writes one frame: the message line, then the payload, then flushes.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    frame: &mut OutgoingFrame,
) -> std::io::Result<()> {
    // Small bodies go out in the same write as their line: one syscall per request.
    if frame.payload.len() <= 64 * 1024 {
        frame.line.extend_from_slice(&frame.payload);
        writer.write_all(&frame.line).await?;
    } else {
        writer.write_all(&frame.line).await?;
        writer.write_all(&frame.payload).await?;
    }
    writer.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::wire::MessageKind;

    async fn read_all(input: &[u8]) -> Vec<Incoming> {
        let mut reader = FrameReader::new(input, 1024);
        let mut out = Vec::new();
        loop {
            match reader.next().await.unwrap() {
                Incoming::Closed => return out,
                other => out.push(other),
            }
        }
    }

    #[tokio::test]
    async fn frames_with_payload_round_trip() {
        let mut wire = Vec::new();
        let message = Message::request(1, "score", &serde_json::json!({}), 5).unwrap();
        let mut frame = OutgoingFrame::new(&message, Bytes::from_static(b"hello")).unwrap();
        write_frame(&mut wire, &mut frame).await.unwrap();
        let mut frame =
            OutgoingFrame::new(&Message::notification("shutdown"), Bytes::new()).unwrap();
        write_frame(&mut wire, &mut frame).await.unwrap();
        let frames = read_all(&wire).await;
        assert_eq!(frames.len(), 2);
        match &frames[0] {
            Incoming::Frame(frame) => {
                assert_eq!(frame.message.kind(), MessageKind::Request("score"));
                assert_eq!(&frame.payload[..], b"hello");
            }
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_line_that_is_not_a_frame_is_lost_sync() {
        let mut wire = b"Segmentation fault\n".to_vec();
        wire.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":4,\"result\":{}}\n");
        let frames = read_all(&wire).await;
        assert!(matches!(frames[0], Incoming::LostSync(_)));
    }

    #[tokio::test]
    async fn overlong_lines_are_lost_sync_not_dropped() {
        let mut wire = vec![b'x'; MAX_LINE_BYTES + 10];
        wire.push(b'\n');
        let frames = read_all(&wire).await;
        assert!(matches!(&frames[0], Incoming::LostSync(text) if text.contains("longer than")));
    }

    #[tokio::test]
    async fn a_json_line_of_several_mib_is_a_frame() {
        let big = "x".repeat(3 * 1024 * 1024);
        let line = format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":4,\"error\":{{\"code\":1,\"message\":\"{big}\"}}}}\n"
        );
        let frames = read_all(line.as_bytes()).await;
        assert!(
            matches!(&frames[0], Incoming::Frame(frame) if frame.message.error.as_ref().unwrap().message.len() == big.len())
        );
    }

    #[tokio::test]
    async fn an_oversized_payload_is_skipped_and_the_next_frame_read_in_step() {
        let mut wire = b"{\"jsonrpc\":\"2.0\",\"id\":4,\"result\":{},\"payload\":2000}\n".to_vec();
        // Payload bytes shaped like a frame must not be read as one.
        let fake = b"{\"jsonrpc\":\"2.0\",\"id\":9,\"result\":{}}\n";
        while wire.len() < 60 + 2000 - fake.len() {
            wire.extend_from_slice(fake);
        }
        let pad = 60 + 2000 - wire.len();
        wire.extend(std::iter::repeat_n(b' ', pad));
        let header_len = wire.iter().position(|&b| b == b'\n').unwrap() + 1;
        wire.truncate(header_len + 2000);
        while wire.len() < header_len + 2000 {
            wire.push(b' ');
        }
        wire.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{}}\n");
        let frames = read_all(&wire).await;
        assert!(matches!(
            &frames[0],
            Incoming::PayloadTooLarge { size: 2000, .. }
        ));
        assert!(matches!(&frames[1], Incoming::Frame(frame) if frame.message.id == Some(5)));
        assert_eq!(frames.len(), 2);
    }
}
