//! Chats and messages: who may read and write what, the seen rules, and what the other
//! side is told.

use std::sync::Arc;

use super::media::MediaService;
use super::{ServiceError, ServiceResult};
use crate::domain::{
    latest_text_for, now_ms, Chat, Image, LatestMessage, Message, MessageKind, MessageText, ObjectId, User,
};
use crate::ports::{ChatSummary, HistoryPage, Notifier, Store};

/// The other member as shown to a client: the stored user, or the original's placeholder
/// when that user no longer exists (the original could answer `null` and crash its client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    Known(User),
    Unknown(ObjectId),
}

pub const NOT_A_MEMBER: &str = "You are not a participant of this chat";
pub const MAX_PAGE: u32 = 200;

pub struct ChatService {
    store: Arc<dyn Store>,
    notifier: Arc<dyn Notifier>,
    media: Arc<MediaService>,
    telemetry: Arc<crate::telemetry::Telemetry>,
}

/// What to post: a chat id and text, as the client sent them.
pub struct Draft<'a> {
    pub chat_id: Option<&'a str>,
    pub text: Option<&'a str>,
}

impl ChatService {
    pub fn new(
        store: Arc<dyn Store>,
        notifier: Arc<dyn Notifier>,
        media: Arc<MediaService>,
        telemetry: Arc<crate::telemetry::Telemetry>,
    ) -> Self {
        Self { store, notifier, media, telemetry }
    }

    /// `POST /chat/new`: the chat with `other`, created if needed. `true` when created.
    pub async fn open(&self, me: &User, other: Option<&str>) -> ServiceResult<(Chat, bool)> {
        let raw = other.map(str::trim).filter(|s| !s.is_empty());
        let other = ObjectId::parse(raw.ok_or_else(|| ServiceError::BadRequest("Other userid is required".into()))?)?;
        if other == me.id {
            return Err(ServiceError::BadRequest("You cannot start a chat with yourself".into()));
        }
        if self.store.user_by_id(&other).await?.is_none() {
            return Err(ServiceError::NotFound("User not found".into()));
        }
        Ok(self.store.open_chat(&me.id, &other).await?)
    }

    /// `GET /chat/all`.
    pub async fn list(&self, me: &User) -> ServiceResult<Vec<(ChatSummary, Peer)>> {
        let summaries = self.store.chats_for_user(&me.id).await?;
        Ok(summaries
            .into_iter()
            .map(|s| {
                let peer = match &s.other {
                    Some(u) => Peer::Known(u.clone()),
                    None => Peer::Unknown(s.chat.other_member(&me.id).unwrap_or(s.chat.users[1])),
                };
                (s, peer)
            })
            .collect())
    }

    /// A chat the caller belongs to, or the error the original gives.
    pub async fn member_chat(&self, me: &ObjectId, raw_chat_id: &str) -> ServiceResult<Chat> {
        let id = ObjectId::parse(raw_chat_id.trim())?;
        let chat = self.store.chat_by_id(&id).await?.ok_or_else(|| ServiceError::NotFound("Chat not found".into()))?;
        if !chat.has_member(me) {
            return Err(ServiceError::Forbidden(NOT_A_MEMBER.into()));
        }
        Ok(chat)
    }

    /// Checks everything about a post that can be checked before an upload is stored.
    async fn check_post(&self, me: &User, draft: &Draft<'_>, has_image: bool) -> ServiceResult<(Chat, String)> {
        let chat_id = draft.chat_id.map(str::trim).filter(|s| !s.is_empty());
        let chat_id = chat_id.ok_or_else(|| ServiceError::BadRequest("ChatId Required".into()))?;
        let text = MessageText::parse(draft.text)?;
        if text.is_none() && !has_image {
            return Err(ServiceError::BadRequest("Either text or image is required".into()));
        }
        let chat = self.member_chat(&me.id, chat_id).await?;
        Ok((chat, text.map(MessageText::into_string).unwrap_or_default()))
    }

    /// `POST /message` with text. The message is seen at once if the receiver has the
    /// chat open.
    pub async fn post(&self, me: &User, draft: Draft<'_>) -> ServiceResult<Message> {
        let (chat, text) = self.check_post(me, &draft, false).await?;
        self.deliver(me, &chat, text, None).await
    }

    /// `POST /message` with an image (and optional caption). Membership is checked before
    /// a byte is stored; if the message cannot be stored, neither is the image.
    pub async fn post_image(&self, me: &User, draft: Draft<'_>, upload: Vec<u8>) -> ServiceResult<Message> {
        let (chat, text) = self.check_post(me, &draft, true).await?;
        let processed = self.media.prepare(upload).await?;
        let image = self.media.keep(&processed).await?;
        match self.deliver(me, &chat, text, Some(image.clone())).await {
            Ok(message) => Ok(message),
            Err(e) => {
                self.media.discard(&image).await;
                Err(e)
            }
        }
    }

    async fn deliver(&self, me: &User, chat: &Chat, text: String, image: Option<Image>) -> ServiceResult<Message> {
        let receiver = chat.other_member(&me.id).ok_or_else(|| ServiceError::Unauthorized("No other user".into()))?;
        let now = now_ms();
        let seen = self.notifier.is_viewing(&receiver, &chat.id).await;
        let message = Message {
            id: ObjectId::new(),
            chat_id: chat.id,
            sender: me.id,
            text,
            kind: if image.is_some() { MessageKind::Image } else { MessageKind::Text },
            image,
            seen,
            seen_at: seen.then_some(now),
            created_at: now,
            updated_at: now,
        };
        let latest = LatestMessage { text: latest_text_for(&message), sender: me.id };
        self.store.add_message(&message, &latest).await?;
        self.telemetry.message_stored(message.kind.as_str());
        self.notifier.message_created(&message, chat.users).await;
        if seen {
            self.notifier.messages_seen(&me.id, &chat.id, &receiver, &[message.id]).await;
        }
        Ok(message)
    }

    /// `GET /message/{chatId}`: marks what the caller had not seen, tells the sender, and
    /// returns the history (or one page of it) with the other member.
    pub async fn read(&self, me: &User, raw_chat_id: &str, page: HistoryPage) -> ServiceResult<(Vec<Message>, Peer)> {
        if let Some(limit) = page.limit {
            if !(1..=MAX_PAGE).contains(&limit) {
                return Err(ServiceError::BadRequest(format!("limit must be between 1 and {MAX_PAGE}")));
            }
        }
        let chat = self.member_chat(&me.id, raw_chat_id).await?;
        let other = chat.other_member(&me.id).expect("member chat has another member");
        let marked = self.store.mark_seen(&chat.id, &me.id, now_ms()).await?;
        if !marked.is_empty() {
            self.notifier.messages_seen(&other, &chat.id, &me.id, &marked).await;
        }
        let messages = self.store.messages(&chat.id, &page).await?;
        let peer = match self.store.user_by_id(&other).await? {
            Some(u) => Peer::Known(u),
            None => Peer::Unknown(other),
        };
        Ok((messages, peer))
    }
}
