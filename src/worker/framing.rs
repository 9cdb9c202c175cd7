//! Reading and writing frames (a JSON line plus an optional raw payload) on a runner's
//! pipes. Caps line length and survives garbage: a bad line is reported, never fatal.

use bytes::{Bytes, BytesMut};
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader,
};

use super::wire::Message;

/// The longest JSON line accepted from a runner (payloads are not counted).
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

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
    /// A line that is not a frame (too long, not JSON): shown to the operator, skipped.
    Garbage(String),
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
        let Some(is_overlong) = self.read_line().await? else {
            return Ok(Incoming::Closed);
        };
        if is_overlong {
            return Ok(Incoming::Garbage(format!(
                "a line longer than {MAX_LINE_BYTES} bytes (starts with {:?})",
                preview(&self.line)
            )));
        }
        let message: Message = match serde_json::from_slice(&self.line) {
            Ok(message) => message,
            Err(err) => {
                return Ok(Incoming::Garbage(format!(
                    "{err} in line {:?}",
                    preview(&self.line)
                )));
            }
        };
        if message.payload > self.max_payload {
            return Ok(Incoming::Garbage(format!(
                "a frame announcing a payload of {} bytes, over the limit of {} bytes",
                message.payload, self.max_payload
            )));
        }
        let mut payload = BytesMut::zeroed(message.payload);
        self.inner.read_exact(&mut payload).await?;
        Ok(Incoming::Frame(Box::new(Frame {
            message,
            payload: payload.freeze(),
        })))
    }

    async fn read_line(&mut self) -> std::io::Result<Option<bool>> {
        read_capped_line(&mut self.inner, &mut self.line, MAX_LINE_BYTES).await
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

/// Writes one frame: the message line, then the payload, then flushes.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    message: &Message,
    payload: &[u8],
) -> std::io::Result<()> {
    let mut buffer = serde_json::to_vec(message).map_err(std::io::Error::other)?;
    buffer.push(b'\n');
    // Small bodies go out in the same write as their line: one syscall per request.
    if payload.len() <= 64 * 1024 {
        buffer.extend_from_slice(payload);
        writer.write_all(&buffer).await?;
    } else {
        writer.write_all(&buffer).await?;
        writer.write_all(payload).await?;
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
        write_frame(&mut wire, &message, b"hello").await.unwrap();
        write_frame(&mut wire, &Message::notification("shutdown"), b"")
            .await
            .unwrap();
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
    async fn garbage_lines_are_reported_and_skipped() {
        let mut wire = b"Segmentation fault\n".to_vec();
        wire.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":4,\"result\":{}}\n");
        let frames = read_all(&wire).await;
        assert!(matches!(frames[0], Incoming::Garbage(_)));
        assert!(matches!(frames[1], Incoming::Frame(_)));
    }

    #[tokio::test]
    async fn overlong_lines_are_cut_and_reported() {
        let mut wire = vec![b'x'; MAX_LINE_BYTES + 10];
        wire.push(b'\n');
        wire.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":4,\"result\":{}}\n");
        let frames = read_all(&wire).await;
        assert!(matches!(&frames[0], Incoming::Garbage(text) if text.contains("longer than")));
        assert!(matches!(frames[1], Incoming::Frame(_)));
    }

    #[tokio::test]
    async fn oversized_payload_is_refused() {
        let wire = b"{\"jsonrpc\":\"2.0\",\"id\":4,\"result\":{},\"payload\":999999}\n".to_vec();
        let frames = read_all(&wire).await;
        assert!(matches!(&frames[0], Incoming::Garbage(text) if text.contains("over the limit")));
    }
}
