//! Times every store operation into `confab_store_operation_duration_seconds`,
//! whichever adapter is behind it.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use crate::domain::{Chat, Email, LatestMessage, Message, ObjectId, User};
use crate::ports::{BackendResult, ChatSummary, HistoryPage, Store};
use crate::telemetry::Telemetry;

pub struct MeteredStore(pub Arc<dyn Store>, pub Arc<Telemetry>);

macro_rules! timed {
    ($self:ident, $op:literal, $call:expr) => {{
        let started = Instant::now();
        let result = $call.await;
        $self.1.store_call($op, started.elapsed());
        result
    }};
}

#[async_trait]
impl Store for MeteredStore {
    async fn find_or_create_user(&self, email: &Email, default_name: &str) -> BackendResult<User> {
        timed!(self, "find_or_create_user", self.0.find_or_create_user(email, default_name))
    }
    async fn user_by_id(&self, id: &ObjectId) -> BackendResult<Option<User>> {
        timed!(self, "user_by_id", self.0.user_by_id(id))
    }
    async fn list_users(&self) -> BackendResult<Vec<User>> {
        timed!(self, "list_users", self.0.list_users())
    }
    async fn rename_user(&self, id: &ObjectId, name: &str) -> BackendResult<Option<User>> {
        timed!(self, "rename_user", self.0.rename_user(id, name))
    }
    async fn bump_token_version(&self, id: &ObjectId) -> BackendResult<Option<User>> {
        timed!(self, "bump_token_version", self.0.bump_token_version(id))
    }
    async fn open_chat(&self, creator: &ObjectId, other: &ObjectId) -> BackendResult<(Chat, bool)> {
        timed!(self, "open_chat", self.0.open_chat(creator, other))
    }
    async fn chat_by_id(&self, id: &ObjectId) -> BackendResult<Option<Chat>> {
        timed!(self, "chat_by_id", self.0.chat_by_id(id))
    }
    async fn chats_for_user(&self, user: &ObjectId) -> BackendResult<Vec<ChatSummary>> {
        timed!(self, "chats_for_user", self.0.chats_for_user(user))
    }
    async fn add_message(&self, message: &Message, latest: &LatestMessage) -> BackendResult<()> {
        timed!(self, "add_message", self.0.add_message(message, latest))
    }
    async fn messages(&self, chat: &ObjectId, page: &HistoryPage) -> BackendResult<Vec<Message>> {
        timed!(self, "messages", self.0.messages(chat, page))
    }
    async fn mark_seen(&self, chat: &ObjectId, reader: &ObjectId, at: i64) -> BackendResult<Vec<ObjectId>> {
        timed!(self, "mark_seen", self.0.mark_seen(chat, reader, at))
    }
    async fn ping(&self) -> BackendResult<()> {
        timed!(self, "ping", self.0.ping())
    }
}
