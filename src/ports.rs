//! The traits the domain services depend on. Each backend implements one of them in its
//! own module; which one is used is decided once, at start-up, from the config.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domain::{Email, ObjectId, User};

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
    async fn ping(&self) -> BackendResult<()>;
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
    /// Adds one to the counter at `key` (created at 0 with `ttl` if absent) and returns
    /// the new count. The expiry is set only at creation: a fixed window.
    async fn increment(&self, key: &str, ttl: Duration) -> BackendResult<u64>;
    async fn ping(&self) -> BackendResult<()>;
}

/// A mail job, in the original's `send-otp` JSON shape so its producers and consumers
/// can share a queue with confab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailJob {
    pub to: String,
    pub subject: String,
    pub body: String,
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
