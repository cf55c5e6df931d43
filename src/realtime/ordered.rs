//! Keeps one socket's events in the order the client sent them.
//!
//! socketioxide runs every event handler as its own task, so a `joinChat` still waiting
//! for the store could finish after the `leaveChat` sent right behind it (the socket then
//! stays in the room), and `typing`/`stopTyping` pairs could be relayed swapped. The
//! [`Turn`] extractor takes a ticket while socketioxide dispatches the event (extractors
//! run synchronously, in arrival order); the handler then waits for its turn, which
//! comes when every earlier event of the socket is done. A socket with no events in
//! flight costs two counters: no task or queue per connection.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use socketioxide::adapter::Adapter;
use socketioxide::handler::FromMessageParts;
use socketioxide::socket::Socket;
use socketioxide_core::Value;
use tokio::sync::Notify;

/// A socket's event counters; kept in its extensions.
#[derive(Default)]
pub struct InOrder {
    issued: AtomicU64,
    finished: AtomicU64,
    turn_changed: Notify,
}

impl InOrder {
    pub fn ticket(self: &Arc<Self>) -> Turn {
        let ticket = self.issued.fetch_add(1, Ordering::AcqRel);
        Turn { order: self.clone(), ticket, claimed: false }
    }

    async fn wait_for(&self, ticket: u64) {
        loop {
            // Registered before the check, so a finish in between still wakes it.
            let changed = self.turn_changed.notified();
            if self.finished.load(Ordering::Acquire) == ticket {
                return;
            }
            changed.await;
        }
    }

    fn finish(&self) {
        self.finished.fetch_add(1, Ordering::AcqRel);
        self.turn_changed.notify_waiters();
    }
}

/// An event's place in its socket's order.
pub struct Turn {
    order: Arc<InOrder>,
    ticket: u64,
    claimed: bool,
}

impl Turn {
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
