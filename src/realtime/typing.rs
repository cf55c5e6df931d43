//! `typing` / `stopTyping`: the busiest events, relayed to the other members in the chat.
//!
//! socketioxide runs a closure handler on a task of its own, for every event. A relay
//! does too little to pay for that: this handler runs on the socket's read task whenever
//! no earlier event of the socket is still running (the usual case), and only otherwise
//! waits its [`Turn`] on a task, so the socket's events still take effect in order.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use serde::Serialize;
use socketioxide::adapter::Adapter;
use socketioxide::extract::Data;
use socketioxide::handler::{FromMessage, FromMessageParts, MessageHandler};
use socketioxide::socket::Socket;
use socketioxide::BroadcastError;
use socketioxide_core::adapter::errors::SocketError;
use socketioxide_core::Value;

use super::ordered::{Done, Turn};
use crate::domain::ObjectId;
use crate::telemetry::Telemetry;

/// A socket's relay state: the chats it has joined with `joinChat` (and not left), who
/// may relay typing there, kept beside its rooms so a relay needs no copy of the room
/// list; and until when its relays do not wait for full buffers (see
/// [`FULL_BUFFER_WAIT`]).
#[derive(Default)]
pub struct JoinedChats(Mutex<RelayState>);

#[derive(Default)]
struct RelayState {
    chats: HashSet<ObjectId>,
    impatient_until: Option<Instant>,
}

impl JoinedChats {
    pub fn joined(&self, chat: ObjectId) {
        self.state().chats.insert(chat);
    }

    pub fn left(&self, chat: &ObjectId) {
        self.state().chats.remove(chat);
    }

    fn contains(&self, chat: &ObjectId) -> bool {
        self.state().chats.contains(chat)
    }

    fn may_wait(&self) -> bool {
        self.state().impatient_until.is_none_or(|until| Instant::now() >= until)
    }

    fn waited_in_vain(&self) {
        self.state().impatient_until = Some(Instant::now() + IMPATIENCE);
    }

    fn state(&self) -> std::sync::MutexGuard<'_, RelayState> {
        self.0.lock().expect("relay state lock")
    }
}

/// A recipient's send buffer (socketioxide's `max_buffer_size` packets) fills when a
/// client sends indicators faster than the other end's connection takes them. The relay
/// then waits for that connection's writer to drain it, holding the sender's turn, for
/// up to `FULL_BUFFER_WAIT`. A recipient that does not read at all would stall every
/// later event of the sender so: after a wait in vain, the sender's relays do not wait
/// for `IMPATIENCE` (a full buffer drops the indicator, counted in the broadcast
/// failures), so such a recipient delays the sender by at most 5 %.
const FULL_BUFFER_WAIT: Duration = Duration::from_millis(250);
const IMPATIENCE: Duration = Duration::from_secs(5);

fn every_socket_failed_with(error: &BroadcastError, kind: SocketError) -> bool {
    let same = |e: &SocketError| std::mem::discriminant(e) == std::mem::discriminant(&kind);
    matches!(error, BroadcastError::Socket(errors) if errors.iter().all(same))
}

#[derive(Serialize)]
struct Relayed<'a> {
    #[serde(rename = "chatId")]
    chat_id: &'a str,
    #[serde(rename = "userId")]
    user_id: &'a str,
}

/// Relays `event` from the verified user `user_hex` as `relayed`.
pub struct TypingRelay {
    pub event: &'static str,
    pub relayed: &'static str,
    pub user_hex: Arc<str>,
    pub telemetry: Arc<Telemetry>,
}

impl<A: Adapter> MessageHandler<A, TypingRelay> for TypingRelay {
    fn call(&self, socket: Arc<Socket<A>>, mut value: Value, ack_id: Option<i64>) {
        let Ok(turn) = Turn::from_message_parts(&socket, &mut value, &ack_id);
        let Ok(Data(payload)) = Data::<serde_json::Value>::from_message(socket.clone(), value, ack_id) else {
            return; // `turn` gives its place up when dropped
        };
        let chat = super::events::chat_id_in(&payload).and_then(|c| ObjectId::parse(c).ok());
        let (relayed, user_hex, telemetry) = (self.relayed, self.user_hex.clone(), self.telemetry.clone());
        let event = self.event;
        let relay = move |done: Done| async move {
            telemetry.socket_event(event);
            // Only members joined to the chat relay; the user id is the verified one.
            let joined = socket.extensions.get::<Arc<JoinedChats>>().filter(|j| chat.is_some_and(|c| j.contains(&c)));
            if let (Some(chat), Some(joined)) = (chat, joined) {
                let room = chat.to_hex();
                let payload = Relayed { chat_id: &room, user_id: &user_hex };
                let mut waiting_since = None;
                loop {
                    match socket.to(room.clone()).emit(relayed, &payload).await {
                        Ok(()) => break,
                        Err(e)
                            if every_socket_failed_with(&e, SocketError::InternalChannelFull) && joined.may_wait() =>
                        {
                            let since = *waiting_since.get_or_insert_with(Instant::now);
                            if since.elapsed() >= FULL_BUFFER_WAIT {
                                joined.waited_in_vain();
                                telemetry.broadcast_failed(relayed);
                                break;
                            }
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                        Err(e) => {
                            // A recipient that closed meanwhile lost nothing.
                            if !every_socket_failed_with(&e, SocketError::Closed) {
                                telemetry.broadcast_failed(relayed);
                            }
                            break;
                        }
                    }
                }
            }
            drop(done);
        };
        match turn.now() {
            Ok(done) => {
                // With the local adapter the relay is done in this first poll; a cluster
                // adapter may have to wait for its backend, and then the rest runs on a task.
                let mut relay = Box::pin(relay(done));
                if relay.as_mut().now_or_never().is_none() {
                    tokio::spawn(relay);
                }
            }
            Err(turn) => {
                tokio::spawn(async move { relay(turn.wait().await).await });
            }
        }
    }
}
