//! Reading a request body with a size limit and a deadline, so that neither a huge
//! upload nor a slow client can hold memory or a connection without bound; and a total
//! budget for the bodies of all requests in flight, so that many large uploads at once
//! (1,024 queued requests of 100 MiB each) cannot exhaust the server's memory either.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};

#[derive(Debug, PartialEq)]
pub enum BodyError {
    TooLarge {
        limit: usize,
    },
    /// The bodies of the requests in flight already fill the server's budget.
    OverBudget {
        budget: usize,
    },
    TooSlow,
    Broken(String),
}

/// The bytes of request bodies the server holds at once, across all requests.
#[derive(Debug, Clone)]
pub struct BodyBudget {
    used: Arc<AtomicUsize>,
    total: usize,
}

impl BodyBudget {
    pub fn new(total: usize) -> Self {
        BodyBudget {
            used: Arc::default(),
            total,
        }
    }

    /// An empty lease, grown as the body arrives.
    fn lease(&self) -> BodyLease {
        BodyLease {
            budget: self.clone(),
            bytes: 0,
        }
    }
}

/// The part of the budget one request's body holds; given back when dropped (when the
/// request is answered).
#[derive(Debug)]
pub struct BodyLease {
    budget: BodyBudget,
    bytes: usize,
}

impl BodyLease {
    fn grow(&mut self, bytes: usize) -> Result<(), BodyError> {
        let budget = &self.budget;
        let taken = budget
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes)
                    .filter(|total| *total <= budget.total)
            });
        match taken {
            Ok(_) => {
                self.bytes += bytes;
                Ok(())
            }
            Err(_) => Err(BodyError::OverBudget {
                budget: budget.total,
            }),
        }
    }
}

impl Drop for BodyLease {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// What a body reserves up front from its `Content-Length`: a client announcing 100 MiB
/// and sending nothing must not make the server allocate it.
const MAX_UP_FRONT_BYTES: usize = 1024 * 1024;

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
    budget: &BodyBudget,
) -> Result<(Bytes, BodyLease), BodyError>
where
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    let mut stream = stream;
    let mut lease = budget.lease();
    let result = if declared_length.is_some_and(|length| length > limit as u64) {
        Err(BodyError::TooLarge { limit })
    } else {
        let capacity = (declared_length.unwrap_or(0) as usize).min(MAX_UP_FRONT_BYTES);
        tokio::time::timeout(deadline, collect(&mut stream, capacity, limit, &mut lease))
            .await
            .unwrap_or(Err(BodyError::TooSlow))
    };
    if let Err(BodyError::TooLarge { .. } | BodyError::OverBudget { .. }) = result {
        let _ = tokio::time::timeout(DRAIN_TIME, drain(&mut stream, DRAIN_LIMIT)).await;
    }
    result.map(|body| (body, lease))
}

async fn collect<S, B>(
    stream: &mut S,
    capacity: usize,
    limit: usize,
    lease: &mut BodyLease,
) -> Result<Bytes, BodyError>
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
        lease.grow(chunk.remaining())?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(sizes: &[usize]) -> impl Stream<Item = Result<Bytes, warp::Error>> + Unpin {
        futures_util::stream::iter(
            sizes
                .iter()
                .map(|size| Ok(Bytes::from(vec![b'x'; *size])))
                .collect::<Vec<_>>(),
        )
    }

    #[tokio::test]
    async fn bodies_share_one_budget_and_give_it_back_when_dropped() {
        let budget = BodyBudget::new(100);
        let limit = 1000;
        let deadline = Duration::from_secs(5);
        let (first, lease) = read_limited(chunks(&[30, 30]), None, limit, deadline, &budget)
            .await
            .unwrap();
        assert_eq!(first.len(), 60);
        let refused = read_limited(chunks(&[30, 30]), None, limit, deadline, &budget).await;
        assert_eq!(refused.unwrap_err(), BodyError::OverBudget { budget: 100 });
        drop(lease);
        assert!(
            read_limited(chunks(&[30, 30]), None, limit, deadline, &budget)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_large_declared_length_is_not_reserved_up_front() {
        let budget = BodyBudget::new(1 << 30);
        let (body, _lease) = read_limited(
            chunks(&[10]),
            Some(500 * 1024 * 1024),
            usize::MAX,
            Duration::from_secs(5),
            &budget,
        )
        .await
        .unwrap();
        assert!(body.len() == 10);
    }
}
