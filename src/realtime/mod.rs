//! Socket.IO: identity, chat rooms, typing relays, presence broadcasts, and the
//! [`Notifier`] the chat service uses to push messages and seen receipts.
//!
//! Rooms: every connection joins its user's room (`<userId>`), so events go to users,
//! not to one remembered socket; `joinChat` adds the chat room (`<chatId>`) and a
//! viewing room (`<chatId>:<userId>`) used for the seen-at-send rule.

mod bridge;
mod identity;
pub mod presence;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};
use socketioxide::extract::{AckSender, Data, SocketRef};
use socketioxide::handler::ConnectHandler;
use socketioxide::SocketIo;

pub use bridge::SocketIoEndpoint;
use presence::Presence;

use crate::app::AppState;
use crate::domain::{Message, ObjectId};
use crate::ports::Notifier;
use crate::wire::MessageJson;

/// The verified user of a connection, kept in the socket's extensions.
#[derive(Debug, Clone, Copy)]
pub struct SocketUser(pub ObjectId);

/// How long presence changes must pause before the online list is broadcast.
pub const PRESENCE_QUIET: Duration = Duration::from_millis(100);

/// Builds the Socket.IO server and its poem endpoint; handlers are attached by
/// [`register`] once the application state exists.
pub fn build() -> (SocketIoEndpoint, SocketIo) {
    let (svc, io) = SocketIo::builder().build_with_inner_svc(bridge::NotFound);
    (SocketIoEndpoint::new(svc), io)
}

fn viewing_room(chat: &ObjectId, user: &ObjectId) -> String {
    format!("{chat}:{user}")
}

/// The pushes the REST handlers need, over Socket.IO.
pub struct SocketNotifier {
    io: SocketIo,
}

impl SocketNotifier {
    pub fn new(io: SocketIo) -> Self {
        Self { io }
    }
}

#[async_trait]
impl Notifier for SocketNotifier {
    async fn is_viewing(&self, user: &ObjectId, chat: &ObjectId) -> bool {
        match self.io.to(viewing_room(chat, user)).fetch_sockets().await {
            Ok(sockets) => !sockets.is_empty(),
            Err(e) => {
                tracing::warn!(error = %e, "could not ask who is viewing a chat; treating as not seen");
                false
            }
        }
    }

    async fn message_created(&self, message: &Message, members: [ObjectId; 2]) {
        let payload = MessageJson::from(message).into_value();
        // One broadcast to the union of rooms: every connection gets it exactly once.
        let rooms = vec![message.chat_id.to_hex(), members[0].to_hex(), members[1].to_hex()];
        if let Err(e) = self.io.to(rooms).emit("newMessage", &payload).await {
            tracing::warn!(error = %e, "newMessage broadcast failed");
        }
    }

    async fn messages_seen(&self, notify: &ObjectId, chat: &ObjectId, seen_by: &ObjectId, ids: &[ObjectId]) {
        let payload = json!({
            "chatId": chat.to_hex(),
            "seenBy": seen_by.to_hex(),
            "messageIds": ids.iter().map(ObjectId::to_hex).collect::<Vec<_>>(),
        });
        if let Err(e) = self.io.to(notify.to_hex()).emit("messagesSeen", &payload).await {
            tracing::warn!(error = %e, "messagesSeen broadcast failed");
        }
    }
}

/// A chat id from `joinChat`'s payload: a bare string as the original's client sends, or
/// `{chatId}` as some clones do.
fn chat_id_in(payload: &Value) -> Option<&str> {
    payload.as_str().or_else(|| payload.get("chatId").and_then(Value::as_str))
}

fn user_of(socket: &SocketRef) -> Option<ObjectId> {
    socket.extensions.get::<SocketUser>().map(|u| u.0)
}

fn reply(ack: AckSender, ok: bool, message: &str) {
    // Only sent when the client asked for an acknowledgement.
    let _ = ack.send(&json!({ "ok": ok, "message": message }));
}

/// Attaches the namespace handlers and starts the presence broadcaster.
pub fn register(io: &SocketIo, state: Arc<AppState>, presence: Arc<Presence>) {
    let on_connect = {
        let (state, presence) = (state.clone(), presence.clone());
        move |socket: SocketRef| {
            let (state, presence) = (state.clone(), presence.clone());
            async move { on_connect(socket, state, presence).await }
        }
    };
    let authenticate = {
        let state = state.clone();
        move |socket: SocketRef, Data(auth): Data<Value>| {
            let state = state.clone();
            async move { identity::authenticate(&socket, &auth, &state).await }
        }
    };
    io.ns("/", on_connect.with(authenticate));
    tokio::spawn(broadcast_presence(io.clone(), presence));
}

async fn on_connect(socket: SocketRef, state: Arc<AppState>, presence: Arc<Presence>) {
    let Some(user) = user_of(&socket) else { return };
    socket.join(user.to_hex());
    presence.connected(user);

    socket.on("joinChat", {
        let state = state.clone();
        move |socket: SocketRef, Data(payload): Data<Value>, ack: AckSender| {
            let state = state.clone();
            async move {
                let Some(chat_id) = chat_id_in(&payload) else {
                    return reply(ack, false, "chatId required");
                };
                match state.chats.member_chat(&user, chat_id).await {
                    Ok(chat) => {
                        socket.join([chat.id.to_hex(), viewing_room(&chat.id, &user)]);
                        reply(ack, true, "joined");
                    }
                    Err(e) => {
                        tracing::debug!(user = %user, chat = chat_id, error = %e, "joinChat refused");
                        reply(ack, false, &e.to_string());
                    }
                }
            }
        }
    });
    socket.on("leaveChat", move |socket: SocketRef, Data(payload): Data<Value>| async move {
        if let Some(chat) = chat_id_in(&payload).and_then(|c| ObjectId::parse(c).ok()) {
            socket.leave([chat.to_hex(), viewing_room(&chat, &user)]);
        }
    });
    for (event, relayed) in [("typing", "userTyping"), ("stopTyping", "userStoppedTyping")] {
        socket.on(event, move |socket: SocketRef, Data(payload): Data<Value>| async move {
            let Some(chat) = chat_id_in(&payload).and_then(|c| ObjectId::parse(c).ok()) else { return };
            let room = chat.to_hex();
            // Only members joined to the chat can relay; the user id is the verified one.
            if !socket.rooms().iter().any(|r| *r == room) {
                return;
            }
            let payload = json!({ "chatId": room, "userId": user.to_hex() });
            let _ = socket.to(room).emit(relayed, &payload).await;
        });
    }
    socket.on_disconnect(move |socket: SocketRef| {
        let presence = presence.clone();
        async move {
            if let Some(user) = user_of(&socket) {
                presence.disconnected(user);
            }
        }
    });
}

/// Bytes per second the online-list broadcasts may cost (recipients × list size). A
/// small site never notices it; with thousands online it spaces broadcasts out so they
/// cannot starve connects and messages.
pub const PRESENCE_BUDGET_BYTES_PER_SEC: f64 = 200e6;

/// Sends the online list to everyone once changes settle, within the byte budget. The
/// list is serialised once per broadcast, not per recipient.
async fn broadcast_presence(io: SocketIo, presence: Arc<Presence>) {
    let mut next_allowed = tokio::time::Instant::now();
    loop {
        presence.settled_change(PRESENCE_QUIET).await;
        tokio::time::sleep_until(next_allowed).await;
        let list = presence.online_ids();
        let recipients = io.sockets().len();
        // The original's event name, and the plural some of its clones listen to.
        for event in ["getOnlineUser", "getOnlineUsers"] {
            if let Err(e) = io.emit(event, &list).await {
                tracing::debug!(error = %e, "presence broadcast incomplete");
            }
        }
        let bytes = 2.0 * recipients as f64 * (list.len() as f64 * 27.0 + 24.0);
        next_allowed = tokio::time::Instant::now() + Duration::from_secs_f64(bytes / PRESENCE_BUDGET_BYTES_PER_SEC);
    }
}
