//! A deadline on every call into a backend, whichever adapter is behind the port. A
//! backend that stops answering (a partition, a blackholed connection) would otherwise
//! hold each request until the driver's own timeouts, 7–30 s; with this the request
//! gets its 503 within `backend_timeout_ms`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::domain::{Chat, Email, LatestMessage, Message, ObjectId, User};
use crate::ports::{BackendResult, ChatSummary, Delivery, Ephemeral, HistoryPage, MailQueue, Store};

/// A port behind a deadline.
pub struct Deadline<T: ?Sized> {
    inner: Arc<T>,
    limit: Duration,
}

impl<T: ?Sized> Deadline<T> {
    pub fn new(inner: Arc<T>, limit: Duration) -> Self {
        Self { inner, limit }
    }

    async fn within<R>(&self, op: &str, call: impl Future<Output = BackendResult<R>>) -> BackendResult<R> {
        match tokio::time::timeout(self.limit, call).await {
            Ok(result) => result,
            Err(_) => Err(anyhow::anyhow!("{op}: no answer within {:?}", self.limit)),
        }
    }
}

#[async_trait]
impl Store for Deadline<dyn Store> {
    async fn find_or_create_user(&self, email: &Email, default_name: &str) -> BackendResult<User> {
        self.within("store find_or_create_user", self.inner.find_or_create_user(email, default_name)).await
    }
    async fn user_by_id(&self, id: &ObjectId) -> BackendResult<Option<User>> {
        self.within("store user_by_id", self.inner.user_by_id(id)).await
    }
    async fn list_users(&self) -> BackendResult<Vec<User>> {
        self.within("store list_users", self.inner.list_users()).await
    }
    async fn rename_user(&self, id: &ObjectId, name: &str) -> BackendResult<Option<User>> {
        self.within("store rename_user", self.inner.rename_user(id, name)).await
    }
    async fn bump_token_version(&self, id: &ObjectId) -> BackendResult<Option<User>> {
        self.within("store bump_token_version", self.inner.bump_token_version(id)).await
    }
    async fn open_chat(&self, creator: &ObjectId, other: &ObjectId) -> BackendResult<(Chat, bool)> {
        self.within("store open_chat", self.inner.open_chat(creator, other)).await
    }
    async fn chat_by_id(&self, id: &ObjectId) -> BackendResult<Option<Chat>> {
        self.within("store chat_by_id", self.inner.chat_by_id(id)).await
    }
    async fn chats_for_user(&self, user: &ObjectId) -> BackendResult<Vec<ChatSummary>> {
        self.within("store chats_for_user", self.inner.chats_for_user(user)).await
    }
    async fn add_message(&self, message: &Message, latest: &LatestMessage) -> BackendResult<()> {
        self.within("store add_message", self.inner.add_message(message, latest)).await
    }
    async fn messages(&self, chat: &ObjectId, page: &HistoryPage) -> BackendResult<Vec<Message>> {
        self.within("store messages", self.inner.messages(chat, page)).await
    }
    async fn mark_seen(&self, chat: &ObjectId, reader: &ObjectId, at: i64) -> BackendResult<Vec<ObjectId>> {
        self.within("store mark_seen", self.inner.mark_seen(chat, reader, at)).await
    }
    async fn ping(&self) -> BackendResult<()> {
        self.within("store ping", self.inner.ping()).await
    }
}

#[async_trait]
impl Ephemeral for Deadline<dyn Ephemeral> {
    async fn set(&self, key: &str, value: &str, ttl: Duration) -> BackendResult<()> {
        self.within("ephemeral set", self.inner.set(key, value, ttl)).await
    }
    async fn set_if_absent(&self, key: &str, value: &str, ttl: Duration) -> BackendResult<bool> {
        self.within("ephemeral set_if_absent", self.inner.set_if_absent(key, value, ttl)).await
    }
    async fn get(&self, key: &str) -> BackendResult<Option<String>> {
        self.within("ephemeral get", self.inner.get(key)).await
    }
    async fn delete(&self, key: &str) -> BackendResult<bool> {
        self.within("ephemeral delete", self.inner.delete(key)).await
    }
    async fn add(&self, key: &str, by: u64, ttl: Duration) -> BackendResult<u64> {
        self.within("ephemeral add", self.inner.add(key, by, ttl)).await
    }
    async fn get_many(&self, keys: &[String]) -> BackendResult<Vec<Option<String>>> {
        self.within("ephemeral get_many", self.inner.get_many(keys)).await
    }
    async fn ping(&self) -> BackendResult<()> {
        self.within("ephemeral ping", self.inner.ping()).await
    }
}

#[async_trait]
impl MailQueue for Deadline<dyn MailQueue> {
    async fn enqueue(&self, job: crate::ports::MailJob) -> BackendResult<()> {
        self.within("mail queue enqueue", self.inner.enqueue(job)).await
    }
    /// Waiting for the next job has no deadline: an empty queue is not a fault.
    async fn receive(&self) -> BackendResult<Box<dyn Delivery>> {
        self.inner.receive().await
    }
    async fn depth(&self) -> BackendResult<u64> {
        self.within("mail queue depth", self.inner.depth()).await
    }
    async fn dead_letters(&self) -> BackendResult<u64> {
        self.within("mail queue dead_letters", self.inner.dead_letters()).await
    }
    async fn requeue_dead_letters(&self) -> BackendResult<u64> {
        self.within("mail queue requeue_dead_letters", self.inner.requeue_dead_letters()).await
    }
    async fn ping(&self) -> BackendResult<()> {
        self.within("mail queue ping", self.inner.ping()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Stuck;

    #[async_trait]
    impl Ephemeral for Stuck {
        async fn set(&self, _: &str, _: &str, _: Duration) -> BackendResult<()> {
            std::future::pending().await
        }
        async fn set_if_absent(&self, _: &str, _: &str, _: Duration) -> BackendResult<bool> {
            std::future::pending().await
        }
        async fn get(&self, _: &str) -> BackendResult<Option<String>> {
            std::future::pending().await
        }
        async fn delete(&self, _: &str) -> BackendResult<bool> {
            std::future::pending().await
        }
        async fn add(&self, _: &str, _: u64, _: Duration) -> BackendResult<u64> {
            std::future::pending().await
        }
        async fn get_many(&self, _: &[String]) -> BackendResult<Vec<Option<String>>> {
            std::future::pending().await
        }
        async fn ping(&self) -> BackendResult<()> {
            std::future::pending().await
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_never_answers_fails_at_the_deadline() {
        let stuck: Arc<dyn Ephemeral> = Arc::new(Stuck);
        let bounded = Deadline::new(stuck, Duration::from_millis(1500));
        let started = tokio::time::Instant::now();
        let err = bounded.get("k").await.unwrap_err();
        assert_eq!(started.elapsed(), Duration::from_millis(1500));
        assert!(err.to_string().contains("ephemeral get: no answer within 1.5s"), "{err}");
    }
}
