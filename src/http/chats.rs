//! The original chat service's endpoints, under `/api/v1`.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::multipart::Upload;
use poem_openapi::{ApiRequest, ApiResponse, Multipart, Object, OpenApi, Tags};

use super::auth::BearerAuth;
use super::error::ApiError;
use super::fields::{CallerIdSpec, CaptionSpec, ChatIdSpec, Field, IdParam, OtherUserSpec, TextSpec};
use crate::app::AppState;
use crate::domain::ObjectId;
use crate::ports::HistoryPage;
use crate::services::chats::Draft;
use crate::services::ServiceError;
use crate::wire::{ChatJson, MessageJson, PeerJson};

#[derive(Tags)]
enum ApiTags {
    /// One-to-one conversations.
    Chats,
    /// Messages in a chat.
    Messages,
}

#[derive(Debug, Object)]
struct NewChatRequest {
    /// The user to chat with.
    #[oai(rename = "otherUserId")]
    other_user_id: Field<OtherUserSpec>,
    /// Sent by the original web client; ignored (the caller comes from the token).
    #[oai(rename = "userId")]
    user_id: Field<CallerIdSpec>,
}

#[derive(Debug, Object)]
struct NewChatBody {
    /// `New Chat created` or `Chat already exists`.
    message: String,
    #[oai(rename = "chatId")]
    chat_id: String,
}

#[derive(ApiResponse)]
enum NewChatResponse {
    /// The chat already existed.
    #[oai(status = 200)]
    Existing(Json<NewChatBody>),
    /// A new chat was created.
    #[oai(status = 201)]
    Created(Json<NewChatBody>),
}

#[derive(Debug, Object)]
struct ChatListItem {
    /// The other member.
    user: PeerJson,
    chat: ChatJson,
}

#[derive(Debug, Object)]
struct ChatList {
    /// Most recently active first.
    chats: Vec<ChatListItem>,
}

#[derive(ApiResponse)]
enum ChatListResponse {
    #[oai(status = 200)]
    Ok(Json<ChatList>),
}

#[derive(Debug, Object)]
struct SendMessageJson {
    #[oai(rename = "chatId")]
    chat_id: Field<ChatIdSpec>,
    /// Up to 4000 characters.
    text: Field<TextSpec>,
}

#[derive(Debug, Multipart)]
struct SendMessageForm {
    #[oai(rename = "chatId")]
    chat_id: Field<ChatIdSpec>,
    /// Up to 4000 characters; a caption when an image is sent.
    text: Field<CaptionSpec>,
    /// JPEG, PNG, GIF or WebP.
    image: Option<Upload>,
}

#[derive(ApiRequest)]
enum SendMessageBody {
    Json(Json<SendMessageJson>),
    Multipart(SendMessageForm),
}

#[derive(Debug, Object)]
struct SentMessage {
    message: MessageJson,
    /// The sender's id (the caller).
    sender: String,
}

#[derive(ApiResponse)]
enum SendMessageResponse {
    #[oai(status = 201)]
    Created(Json<SentMessage>),
}

#[derive(Debug, Object)]
struct History {
    /// Oldest first.
    messages: Vec<MessageJson>,
    /// The other member.
    user: PeerJson,
}

#[derive(ApiResponse)]
enum HistoryResponse {
    #[oai(status = 200)]
    Ok(Json<History>),
}

pub struct ChatsApi;

type ApiResult<T> = Result<T, ApiError>;

#[OpenApi(prefix_path = "/api/v1")]
impl ChatsApi {
    /// Open a chat with another user
    ///
    /// Returns the existing chat between the two users, or creates it (201).
    #[oai(path = "/chat/new", method = "post", tag = "ApiTags::Chats")]
    async fn new_chat(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
        body: Json<NewChatRequest>,
    ) -> ApiResult<NewChatResponse> {
        body.0.user_id.text()?;
        let (chat, created) = state.chats.open(&auth.0, body.0.other_user_id.text()?).await?;
        let chat_id = chat.id.to_hex();
        Ok(if created {
            NewChatResponse::Created(Json(NewChatBody { message: "New Chat created".into(), chat_id }))
        } else {
            NewChatResponse::Existing(Json(NewChatBody { message: "Chat already exists".into(), chat_id }))
        })
    }

    /// The caller's chats
    ///
    /// Each with the other member and the number of messages the caller has not seen,
    /// most recently active first.
    #[oai(path = "/chat/all", method = "get", tag = "ApiTags::Chats")]
    async fn all_chats(&self, state: Data<&Arc<AppState>>, auth: BearerAuth) -> ApiResult<ChatListResponse> {
        let chats = state.chats.list(&auth.0).await?;
        let chats = chats
            .iter()
            .map(|(summary, peer)| ChatListItem {
                user: peer.into(),
                chat: ChatJson::new(&summary.chat, summary.unseen),
            })
            .collect();
        Ok(ChatListResponse::Ok(Json(ChatList { chats })))
    }

    /// Send a message
    ///
    /// JSON or `multipart/form-data` (`chatId`, `text`, optional file `image`). The message
    /// is marked seen at once when the receiver has the chat open; both members' sockets
    /// get `newMessage`.
    #[oai(path = "/message", method = "post", tag = "ApiTags::Messages")]
    async fn send(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
        body: SendMessageBody,
    ) -> ApiResult<SendMessageResponse> {
        let me = &auth.0;
        let message = match body {
            SendMessageBody::Json(Json(b)) => {
                state.chats.post(me, Draft { chat_id: b.chat_id.text()?, text: b.text.text()? }).await?
            }
            SendMessageBody::Multipart(form) => {
                let draft = Draft { chat_id: form.chat_id.text()?, text: form.text.text()? };
                match form.image {
                    None => state.chats.post(me, draft).await?,
                    Some(upload) => {
                        let bytes = upload
                            .into_vec()
                            .await
                            .map_err(|e| ServiceError::BadRequest(format!("Could not read the image: {e}")))?;
                        state.chats.post_image(me, draft, bytes).await?
                    }
                }
            }
        };
        Ok(SendMessageResponse::Created(Json(SentMessage { message: (&message).into(), sender: me.id.to_hex() })))
    }

    /// A chat's messages
    ///
    /// Marks the messages the caller had not seen as seen (the sender is told with
    /// `messagesSeen`). Without parameters the whole history is returned, oldest first, as
    /// the original does; `limit` (1–200) returns only the newest `limit` messages, and
    /// `before` (a message id) those older than that message, for paging back.
    #[oai(path = "/message/:chatId", method = "get", tag = "ApiTags::Messages")]
    async fn history(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
        #[oai(name = "chatId")] chat_id: Path<IdParam>,
        /// Only messages older than this one (a message id).
        before: Query<Option<IdParam>>,
        /// How many of the newest messages (1–200).
        #[oai(validator(minimum(value = "1"), maximum(value = "200")))]
        limit: Query<Option<u32>>,
    ) -> ApiResult<HistoryResponse> {
        let before = before.0.as_ref().map(|b| ObjectId::parse(&b.0)).transpose().map_err(ServiceError::from)?;
        let limit = limit.0.or(before.map(|_| 50));
        let (messages, peer) = state.chats.read(&auth.0, &chat_id.0 .0, HistoryPage { before, limit }).await?;
        let messages = messages.iter().map(MessageJson::from).collect();
        Ok(HistoryResponse::Ok(Json(History { messages, user: (&peer).into() })))
    }
}
