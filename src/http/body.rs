//! Reading a request body with a size limit and a deadline, so that neither a huge
//! upload nor a slow client can hold memory or a connection without bound.

use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};

#[derive(Debug, PartialEq)]
pub enum BodyError {
    TooLarge { limit: usize },
    TooSlow,
    Broken(String),
}

/// How much of a refused body is still read (and dropped) before answering 413, and
/// for how long: a client still sending gets the answer instead of a connection reset.
const DRAIN_LIMIT: usize = 16 * 1024 * 1024;
const DRAIN_TIME: Duration = Duration::from_secs(2);

/// Collects the body, refusing it as soon as it passes `limit` bytes; `deadline` bounds
/// the time to receive all of it (slow or stalled clients).
pub async fn read_limited<S, B>(
    stream: S,
    declared_length: Option<u64>,
    limit: usize,
    deadline: Duration,
) -> Result<Bytes, BodyError>
where
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    let mut stream = stream;
    let result = if declared_length.is_some_and(|length| length > limit as u64) {
        Err(BodyError::TooLarge { limit })
    } else {
        let capacity = declared_length.unwrap_or(0) as usize;
        tokio::time::timeout(deadline, collect(&mut stream, capacity, limit))
            .await
            .unwrap_or(Err(BodyError::TooSlow))
    };
    if let Err(BodyError::TooLarge { .. }) = result {
        let _ = tokio::time::timeout(DRAIN_TIME, drain(&mut stream, DRAIN_LIMIT)).await;
    }
    result
}

async fn collect<S, B>(stream: &mut S, capacity: usize, limit: usize) -> Result<Bytes, BodyError>
where
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    let mut body = BytesMut::with_capacity(capacity);
    while let Some(chunk) = stream.next().await {
        let mut chunk = chunk.map_err(|err| BodyError::Broken(err.to_string()))?;
        if body.len() + chunk.remaining() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        while chunk.has_remaining() {
            let piece = chunk.chunk();
            body.extend_from_slice(piece);
            let taken = piece.len();
            chunk.advance(taken);
        }
    }
    Ok(body.freeze())
}

/// Reads and drops up to `budget` more bytes of a body.
async fn drain<S, B>(stream: &mut S, budget: usize)
where
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    let mut seen = 0;
    while let Some(Ok(chunk)) = stream.next().await {
        seen += chunk.remaining();
        if seen > budget {
            return;
        }
    }
}
