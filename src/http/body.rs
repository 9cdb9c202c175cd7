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
    if declared_length.is_some_and(|length| length > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    let collect = async {
        let mut stream = stream;
        let mut body = BytesMut::with_capacity(declared_length.unwrap_or(0) as usize);
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
    };
    tokio::time::timeout(deadline, collect)
        .await
        .unwrap_or(Err(BodyError::TooSlow))
}
