//! One connection's life: what happens when it is accepted, the events it may send
//! (`joinChat`, `leaveChat`, `typing`, `stopTyping`) and its close.
//!
//! socketioxide tells the client it is connected *before* it runs the connect handler,
//! which it spawns on a task of its own. So the event handlers are attached earlier, by
//! the handshake middleware once the identity is verified: an event the client sends
//! the moment it is told it is in always finds its handler. And a client that leaves at
//! once can close before the connect handler ran: [`Admission`] makes the two meet in
//! one place, so a closed socket is never counted online nor left in a room.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, Data, SocketRef};

use super::contract::{JOIN_CHAT, LEAVE_CHAT, STOP_TYPING, TYPING, USER_STOPPED_TYPING, USER_TYPING};
use super::online_list::WantsDeltas;
use super::ordered::{InOrder, Turn};
use super::presence::Presence;
use super::rooms::{at_room, user_room, viewing_room, PRESENCE_DELTA_ROOM, PRESENCE_LIST_ROOM};
use super::typing::{JoinedChats, TypingRelay};
use super::SocketUser;
use crate::app::AppState;
use crate::domain::ObjectId;

/// Whether a connection was counted online, and whether it has closed.
#[derive(Default)]
struct Admission {
    state: Mutex<AdmissionState>,
}

#[derive(Default)]
struct AdmissionState {
    counted: bool,
    closed: bool,
}

fn user_of<A: Adapter>(socket: &SocketRef<A>) -> Option<ObjectId> {
    socket.extensions.get::<SocketUser>().map(|u| u.0)
}

/// Called by the handshake middleware once the user is verified, before the client is
/// told it is connected. Each handler first waits for its `Turn`, so the socket's events
/// take effect in the order it sent them.
pub fn attach<A: Adapter>(socket: &SocketRef<A>, auth: &Value, state: &Arc<AppState>, presence: &Arc<Presence>) {
    let Some(user) = user_of(socket) else { return };
    if auth.get("presence").and_then(Value::as_str) == Some("delta") {
        socket.extensions.insert(WantsDeltas);
    }
    let order = Arc::new(InOrder::default());
    socket.extensions.insert(order.clone());
    let joined = Arc::new(JoinedChats::default());
    let admission = Arc::new(Admission::default());
    socket.extensions.insert(admission.clone());

    socket.on(JOIN_CHAT, {
        let (state, joined) = (state.clone(), joined.clone());
        move |socket: SocketRef<A>, turn: Turn, Data(payload): Data<Value>, ack: AckSender<A>| {
            let (state, joined) = (state.clone(), joined.clone());
            async move {
                let _done = turn.wait().await;
                state.telemetry.socket_event(JOIN_CHAT);
                let Some(chat_id) = chat_id_in(&payload) else {
                    return reply(ack, false, "chatId required");
                };
                match state.chats.member_chat(&user, chat_id).await {
                    Ok(chat) => {
                        socket.join([chat.id.to_hex(), viewing_room(&chat.id, &user)]);
                        joined.joined(chat.id);
                        reply(ack, true, "joined");
                    }
                    Err(e) => {
                        let e = e.logged(JOIN_CHAT);
                        tracing::debug!(user = %user, chat = chat_id, error = %e, "joinChat refused");
                        reply(ack, false, &e.to_string());
                    }
                }
            }
        }
    });
    socket.on(LEAVE_CHAT, {
        let (telemetry, joined) = (state.telemetry.clone(), joined.clone());
        move |socket: SocketRef<A>, turn: Turn, Data(payload): Data<Value>| {
            let (telemetry, joined) = (telemetry.clone(), joined.clone());
            async move {
                let _done = turn.wait().await;
                telemetry.socket_event(LEAVE_CHAT);
                if let Some(chat) = chat_id_in(&payload).and_then(|c| ObjectId::parse(c).ok()) {
                    socket.leave([chat.to_hex(), viewing_room(&chat, &user)]);
                    joined.left(&chat);
                }
            }
        }
    });
    let user_hex: Arc<str> = user.to_hex().into();
    for (event, relayed) in [(TYPING, USER_TYPING), (STOP_TYPING, USER_STOPPED_TYPING)] {
        let (order, joined, telemetry) = (order.clone(), joined.clone(), state.telemetry.clone());
        let deadline = Duration::from_millis(state.settings.config.backend_timeout_ms);
        socket
            .on(event, TypingRelay { event, relayed, user_hex: user_hex.clone(), order, joined, telemetry, deadline });
    }
    socket.on_disconnect({
        let (presence, telemetry) = (presence.clone(), state.telemetry.clone());
        move || {
            let mut admission = admission.state.lock().unwrap();
            admission.closed = true;
            if admission.counted {
                presence.disconnected(user);
                telemetry.socket_closed();
            }
            std::future::ready(())
        }
    });
}

/// The connect handler: the socket joins its user's rooms and counts as online, unless
/// it closed in the meantime.
pub fn admitted<A: Adapter>(socket: &SocketRef<A>, state: &AppState, presence: &Presence) {
    let (Some(user), Some(admission)) = (user_of(socket), socket.extensions.get::<Arc<Admission>>()) else {
        return;
    };
    let mut admission = admission.state.lock().unwrap();
    if admission.closed {
        return;
    }
    // Rooms joined after the close would never be left: the namespace cleans up a
    // socket's rooms once, right after its disconnect handler.
    let presence_room =
        if socket.extensions.get::<WantsDeltas>().is_some() { PRESENCE_DELTA_ROOM } else { PRESENCE_LIST_ROOM };
    socket.join([user_room(&user), at_room(&user, &state.settings.instance), presence_room.to_string()]);
    presence.connected(user);
    presence.needs_list(socket.id);
    state.telemetry.socket_opened();
    admission.counted = true;
}

/// A chat id from `joinChat`'s payload: a bare string as the original's client sends, or
/// `{chatId}` as some clones do.
pub(super) fn chat_id_in(payload: &Value) -> Option<&str> {
    payload.as_str().or_else(|| payload.get("chatId").and_then(Value::as_str))
}

fn reply<A: Adapter>(ack: AckSender<A>, ok: bool, message: &str) {
    // Only sent when the client asked for an acknowledgement.
    let _ = ack.send(&json!({ "ok": ok, "message": message }));
}
