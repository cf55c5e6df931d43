//! Keeps one socket's events in the order the client sent them.
//!
//! socketioxide runs every event handler as its own task, so a `joinChat` still waiting
//! for the store could finish after the `leaveChat` sent right behind it (the socket then
//! stays in the room), and `typing`/`stopTyping` pairs could be relayed swapped. The
//! [`Turn`] extractor takes a ticket while socketioxide dispatches the event (extractors
//! run synchronously, in arrival order); the handler then waits for its turn, which
//! comes when every earlier event of the socket is done. A socket with no events in
//! flight costs two counters and an empty list: no task or queue per connection.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use socketioxide::adapter::Adapter;
use socketioxide::handler::FromMessageParts;
use socketioxide::socket::Socket;
use socketioxide_core::Value;

/// A socket's event counters; kept in its extensions.
#[derive(Default)]
pub struct InOrder {
    issued: AtomicU64,
    finished: AtomicU64,
    /// Events waiting for their turn, by ticket. Only the next one is woken when an
    /// event finishes: a burst of N queued events costs N wake-ups, not N².
    waiting: Mutex<Vec<(u64, Waker)>>,
}

impl InOrder {
    pub fn ticket(self: &Arc<Self>) -> Turn {
        let ticket = self.issued.fetch_add(1, Ordering::AcqRel);
        Turn { order: self.clone(), ticket, claimed: false }
    }

    fn wait_for(&self, ticket: u64) -> WaitForTurn<'_> {
        WaitForTurn { order: self, ticket, registered: false }
    }

    fn finish(&self) {
        let next = self.finished.fetch_add(1, Ordering::AcqRel) + 1;
        let waker = {
            let mut waiting = self.waiting.lock().expect("turn lock");
            waiting.iter().position(|(t, _)| *t == next).map(|i| waiting.swap_remove(i).1)
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

struct WaitForTurn<'a> {
    order: &'a InOrder,
    ticket: u64,
    registered: bool,
}

impl Future for WaitForTurn<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let (order, ticket) = (self.order, self.ticket);
        if order.finished.load(Ordering::Acquire) == ticket {
            return Poll::Ready(());
        }
        let mut waiting = order.waiting.lock().expect("turn lock");
        // Checked again under the lock: `finish` counts first and then looks for the
        // waker under it, so either it finds this one or this sees its count.
        if order.finished.load(Ordering::Acquire) == ticket {
            waiting.retain(|(t, _)| *t != ticket);
            return Poll::Ready(());
        }
        match waiting.iter_mut().find(|(t, _)| *t == ticket) {
            Some((_, waker)) => waker.clone_from(cx.waker()),
            None => waiting.push((ticket, cx.waker().clone())),
        }
        drop(waiting);
        self.registered = true;
        Poll::Pending
    }
}

impl Drop for WaitForTurn<'_> {
    fn drop(&mut self) {
        if !self.registered {
            return;
        }
        if let Ok(mut waiting) = self.order.waiting.lock() {
            waiting.retain(|(t, _)| *t != self.ticket);
        }
    }
}

/// An event's place in its socket's order.
pub struct Turn {
    order: Arc<InOrder>,
    ticket: u64,
    claimed: bool,
}

impl Turn {
    /// The turn at once when every earlier event is already done, else the turn back.
    pub fn now(mut self) -> Result<Done, Turn> {
        if self.order.finished.load(Ordering::Acquire) != self.ticket {
            return Err(self);
        }
        self.claimed = true;
        Ok(Done(self.order.clone()))
    }

    /// Waits until every earlier event is done; the event counts as done when the
    /// returned guard is dropped.
    pub async fn wait(mut self) -> Done {
        self.order.wait_for(self.ticket).await;
        self.claimed = true;
        Done(self.order.clone())
    }
}

impl Drop for Turn {
    /// An event that never ran (a later extractor refused it, or its task ended early)
    /// still gives up its turn, or every later event of the socket would wait forever.
    fn drop(&mut self) {
        if !self.claimed {
            let (order, ticket) = (self.order.clone(), self.ticket);
            tokio::spawn(async move {
                order.wait_for(ticket).await;
                order.finish();
            });
        }
    }
}

/// Marks the event done when dropped, also when its work panicked.
pub struct Done(Arc<InOrder>);

impl Drop for Done {
    fn drop(&mut self) {
        self.0.finish();
    }
}

impl<A: Adapter> FromMessageParts<A> for Turn {
    type Error = Infallible;

    fn from_message_parts(s: &Arc<Socket<A>>, _: &mut Value, _: &Option<i64>) -> Result<Self, Infallible> {
        let order = match s.extensions.get::<Arc<InOrder>>() {
            Some(order) => order,
            None => {
                // First event: the connect handler normally puts it there already.
                let order = Arc::new(InOrder::default());
                s.extensions.insert(order.clone());
                order
            }
        };
        Ok(order.ticket())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn work_runs_in_ticket_order_even_when_earlier_work_is_slower() {
        let order = Arc::new(InOrder::default());
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for i in 0..200u64 {
            let (tx, turn) = (tx.clone(), order.ticket());
            tokio::spawn(async move {
                // Some tasks start late: unordered, they would finish last.
                if i % 7 == 0 {
                    tokio::time::sleep(Duration::from_millis(3)).await;
                }
                let _done = turn.wait().await;
                tx.send(i).unwrap();
            });
        }
        drop(tx);
        let mut seen = Vec::new();
        while let Some(i) = rx.recv().await {
            seen.push(i);
        }
        assert_eq!(seen, (0..200).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn an_event_that_panicked_or_never_ran_does_not_block_the_next() {
        let order = Arc::new(InOrder::default());
        let first = order.ticket();
        let _ = tokio::spawn(async move {
            let _done = first.wait().await;
            panic!("handler bug");
        })
        .await;
        drop(order.ticket());
        let last = order.ticket();
        tokio::time::timeout(Duration::from_secs(2), last.wait()).await.expect("third event ran");
    }
}
