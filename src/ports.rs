//! The traits the domain services depend on. Each backend implements one of them in its
//! own module; which one is used is decided once, at start-up, from the config.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domain::{Chat, Email, LatestMessage, Message, ObjectId, User};

/// Backend failures are infrastructure trouble (disk, network, broker), never the
/// client's fault: they become 503s and log lines, not client-facing detail.
pub type BackendResult<T> = anyhow::Result<T>;

/// Users, chats and messages.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Returns the user with this email, creating it with `default_name` if absent.
    /// Must be atomic: two concurrent first logins create one user.
    async fn find_or_create_user(&self, email: &Email, default_name: &str) -> BackendResult<User>;
    async fn user_by_id(&self, id: &ObjectId) -> BackendResult<Option<User>>;
    async fn list_users(&self) -> BackendResult<Vec<User>>;
    async fn rename_user(&self, id: &ObjectId, name: &str) -> BackendResult<Option<User>>;
    /// Invalidates every token issued so far for this user.
    async fn bump_token_version(&self, id: &ObjectId) -> BackendResult<Option<User>>;

    /// Finds the chat between the two users (in either order) or creates it with
    /// `creator` first. Atomic: racing calls end with one chat. `true` when created.
    async fn open_chat(&self, creator: &ObjectId, other: &ObjectId) -> BackendResult<(Chat, bool)>;
    async fn chat_by_id(&self, id: &ObjectId) -> BackendResult<Option<Chat>>;
    /// The user's chats, most recently active first, each with the other member and the
    /// number of messages the user has not seen — in a fixed number of queries.
    async fn chats_for_user(&self, user: &ObjectId) -> BackendResult<Vec<ChatSummary>>;
    /// Stores the message and makes it the chat's latest (bumping `updated_at`), atomically.
    async fn add_message(&self, message: &Message, latest: &LatestMessage) -> BackendResult<()>;
    /// Messages of a chat, oldest first: all of them, or the `limit` newest before a message.
    async fn messages(&self, chat: &ObjectId, page: &HistoryPage) -> BackendResult<Vec<Message>>;
    /// Marks every unseen message not sent by `reader` as seen at `at`; returns their ids.
    async fn mark_seen(&self, chat: &ObjectId, reader: &ObjectId, at: i64) -> BackendResult<Vec<ObjectId>>;

    async fn ping(&self) -> BackendResult<()>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatSummary {
    pub chat: Chat,
    /// `None` when the other member no longer exists.
    pub other: Option<User>,
    pub unseen: u64,
}

/// Which slice of a chat's history to read. The default is the whole history, as the
/// original returns it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryPage {
    /// Only messages older than this one (by creation time, then id).
    pub before: Option<ObjectId>,
    /// At most this many, the newest of the selection.
    pub limit: Option<u32>,
}

/// Short-lived shared state with expiry: OTP codes, attempt counters, rate limits.
/// Every operation is atomic so several instances can share one backend.
#[async_trait]
pub trait Ephemeral: Send + Sync + 'static {
    /// Stores `value` under `key` for `ttl`, replacing any previous value.
    async fn set(&self, key: &str, value: &str, ttl: Duration) -> BackendResult<()>;
    /// Stores `value` only if `key` is absent; returns whether it was stored.
    async fn set_if_absent(&self, key: &str, value: &str, ttl: Duration) -> BackendResult<bool>;
    async fn get(&self, key: &str) -> BackendResult<Option<String>>;
    /// Removes `key`; returns whether it existed, so exactly one of several racing
    /// callers can "consume" a value.
    async fn delete(&self, key: &str) -> BackendResult<bool>;
    /// Adds `by` (at least 1) to the counter at `key` (created at 0 with `ttl` if absent)
    /// and returns the new count. The expiry is set only at creation: a fixed window.
    async fn add(&self, key: &str, by: u64, ttl: Duration) -> BackendResult<u64>;
    async fn increment(&self, key: &str, ttl: Duration) -> BackendResult<u64> {
        self.add(key, 1, ttl).await
    }
    /// The values of several keys in one round trip, in order.
    async fn get_many(&self, keys: &[String]) -> BackendResult<Vec<Option<String>>>;
    async fn ping(&self) -> BackendResult<()>;
}

/// A mail job, in the original's `send-otp` JSON shape so its producers and consumers
/// can share a queue with confab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailJob {
    pub to: String,
    pub subject: String,
    pub body: String,
    /// When what the mail carries (a login code) stops being valid, in ms since the
    /// epoch: it is retried until then and never sent after. An extra key the
    /// original's consumer ignores; its own jobs have none.
    #[serde(rename = "expiresAt", default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

/// The queue between the HTTP handlers and the mail worker.
#[async_trait]
pub trait MailQueue: Send + Sync + 'static {
    async fn enqueue(&self, job: MailJob) -> BackendResult<()>;
    /// Waits for the next job. The job stays owned by the queue until the delivery is
    /// settled, so a crash before `ack` means redelivery, not loss.
    async fn receive(&self) -> BackendResult<Box<dyn Delivery>>;
    /// Jobs waiting to be delivered (not counting dead letters).
    async fn depth(&self) -> BackendResult<u64>;
    /// Jobs that failed too often and were set aside.
    async fn dead_letters(&self) -> BackendResult<u64>;
    /// Moves every dead letter back to the queue with a fresh attempt count; returns how
    /// many were moved.
    async fn requeue_dead_letters(&self) -> BackendResult<u64>;
    async fn ping(&self) -> BackendResult<()>;
}

/// One received job; exactly one of the settling methods is called.
#[async_trait]
pub trait Delivery: Send {
    fn job(&self) -> &MailJob;
    /// How many times this job was tried before (0 on first delivery).
    fn attempts(&self) -> u32;
    async fn ack(self: Box<Self>) -> BackendResult<()>;
    /// Puts the job back to be delivered again after `delay`.
    async fn retry(self: Box<Self>, delay: Duration) -> BackendResult<()>;
    /// Gives up on the job and keeps it aside for an operator.
    async fn dead_letter(self: Box<Self>) -> BackendResult<()>;
}

/// Something that delivers a mail (SMTP, or the log in development).
#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    async fn send(&self, job: &MailJob) -> BackendResult<()>;
    /// A short description for logs and `/readyz`, without secrets.
    fn describe(&self) -> String;
}

/// Pushes events to connected clients; implemented by the real-time (Socket.IO) layer.
#[async_trait]
pub trait Notifier: Send + Sync + 'static {
    /// Whether any connection of `user` has `chat` open right now.
    async fn is_viewing(&self, user: &ObjectId, chat: &ObjectId) -> bool;
    /// A new message, for everyone in the chat (each connection once).
    async fn message_created(&self, message: &Message, members: [ObjectId; 2]);
    /// `seen_by` has seen `ids` in `chat`; tells `notify`.
    async fn messages_seen(&self, notify: &ObjectId, chat: &ObjectId, seen_by: &ObjectId, ids: &[ObjectId]);
}

/// One user's connections as the admin console shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnlineUser {
    pub user: ObjectId,
    /// The instances the user is connected to.
    pub instances: Vec<String>,
}

/// The admin console's view of, and hold over, live connections on every instance.
#[async_trait]
pub trait Connections: Send + Sync + 'static {
    async fn online(&self) -> BackendResult<Vec<OnlineUser>>;
    /// Closes every connection of `user`; returns how many were open.
    async fn disconnect_user(&self, user: &ObjectId) -> BackendResult<usize>;
}

/// Where uploaded images are kept.
#[async_trait]
pub trait MediaStore: Send + Sync + 'static {
    /// Stores the image and its thumbnail.
    async fn put(&self, image: &crate::media::image::ProcessedImage) -> BackendResult<crate::domain::Image>;
    /// Removes an image (and its thumbnail) by `publicId`.
    async fn delete(&self, public_id: &str) -> BackendResult<()>;
    fn describe(&self) -> String;
    async fn ping(&self) -> BackendResult<()>;
}
