//! The concurrency limit (the seed's max-connections middleware): at most N
//! requests in flight to the upstream, an optional FIFO queue of bounded
//! size with its own timeout, and an immediate refusal for the rest.
//!
//! A tokio `Semaphore` holds the N slots (it is fair, so the queue is
//! first-come first-served); an atomic counts the waiters so a full queue
//! refuses at once without waiting.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Settings of one concurrency limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConcurrencyRule {
    /// Requests in flight to the upstream at most.
    pub max: usize,
    /// Requests that may wait for a slot (0: none wait).
    pub queue: usize,
    /// How long a request may wait in the queue.
    pub queue_timeout: Duration,
    /// `Retry-After` sent with the 503 of a request refused (`None`: none).
    pub retry_after: Option<Duration>,
}

/// Why a request got no slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Every slot busy and the queue full (or absent).
    Full,
    /// Waited the queue timeout without a slot.
    QueueTimeout,
}

/// The live limit of one route.
#[derive(Debug)]
pub struct ConcurrencyLimit {
    rule: ConcurrencyRule,
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
}

/// Takes one waiter off the count when the wait ends, also when the
/// request's future is dropped mid-wait (its client left).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ConcurrencyLimit {
    /// A limit with every slot free.
    pub fn new(rule: ConcurrencyRule) -> ConcurrencyLimit {
        ConcurrencyLimit {
            rule,
            slots: Arc::new(Semaphore::new(rule.max)),
            waiting: AtomicUsize::new(0),
        }
    }

    /// The rule it enforces.
    pub fn rule(&self) -> &ConcurrencyRule {
        &self.rule
    }

    /// Requests waiting in the queue now.
    pub fn queue_depth(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// A slot, held until the permit drops.
    pub async fn acquire(&self) -> Result<OwnedSemaphorePermit, Refused> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(permit);
        }
        // Reserve a place in the queue, or refuse if it is full.
        let reserved = self
            .waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
                (w < self.rule.queue).then_some(w + 1)
            });
        if reserved.is_err() {
            return Err(Refused::Full);
        }
        let _waiting = Waiting(&self.waiting);
        match tokio::time::timeout(self.rule.queue_timeout, self.slots.clone().acquire_owned())
            .await
        {
            Ok(Ok(permit)) => Ok(permit),
            // The semaphore is never closed; a closed one would mean no slot ever.
            Ok(Err(_)) => Err(Refused::Full),
            Err(_) => Err(Refused::QueueTimeout),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slots_then_queue_then_refusal() {
        let limit = Arc::new(ConcurrencyLimit::new(ConcurrencyRule {
            max: 2,
            queue: 1,
            queue_timeout: Duration::from_millis(50),
            retry_after: None,
        }));
        let a = limit.acquire().await.unwrap();
        let _b = limit.acquire().await.unwrap();
        // The third waits; a fourth finds the queue full.
        let waiter = tokio::spawn({
            let limit = limit.clone();
            async move { limit.acquire().await.map(drop) }
        });
        tokio::task::yield_now().await;
        assert_eq!(limit.queue_depth(), 1);
        assert_eq!(limit.acquire().await.err(), Some(Refused::Full));
        // Freeing a slot lets the waiter in.
        drop(a);
        assert_eq!(waiter.await.unwrap(), Ok(()));
        assert_eq!(limit.queue_depth(), 0);
        // With both slots busy again, a waiter times out.
        let _c = limit.acquire().await.unwrap();
        assert_eq!(limit.acquire().await.err(), Some(Refused::QueueTimeout));
        assert_eq!(limit.queue_depth(), 0);
    }
}
