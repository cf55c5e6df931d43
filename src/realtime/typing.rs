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
use socketioxide::handler::{FromMessage, MessageHandler};
use socketioxide::socket::Socket;
use socketioxide::BroadcastError;
use socketioxide_core::adapter::errors::SocketError;
use socketioxide_core::Value;

use super::ordered::{Done, InOrder};
use crate::domain::ObjectId;
use crate::telemetry::Telemetry;

/// A socket's relay state: the chats it has joined with `joinChat` (and not left), who
/// may relay typing there, kept beside its rooms so a relay needs no copy of the room
/// list; and until when its relays give their turn up at once (see
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

    fn patient(&self) -> bool {
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
/// up to `FULL_BUFFER_WAIT`. A recipient that does not read at all, or a cluster backend
/// that is down (each publish then waits for its deadline), would so stall every later
/// event of the sender: after a relay failed, the sender's relays give their turn up at
/// once and do not wait for full buffers for `IMPATIENCE` (such indicators are dropped
/// and counted in the broadcast failures).
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

/// Relays `event` from the verified user `user_hex` as `relayed`. Built once per socket,
/// with the socket's order and relay state, so an event looks nothing up.
pub struct TypingRelay {
    pub event: &'static str,
    pub relayed: &'static str,
    pub user_hex: Arc<str>,
    pub order: Arc<InOrder>,
    pub joined: Arc<JoinedChats>,
    pub telemetry: Arc<Telemetry>,
    /// `backend_timeout_ms`: how long a relay may wait for the cluster adapter.
    pub deadline: Duration,
}

impl<A: Adapter> MessageHandler<A, TypingRelay> for TypingRelay {
    fn call(&self, socket: Arc<Socket<A>>, value: Value, ack_id: Option<i64>) {
        let turn = self.order.ticket();
        let Ok(Data(payload)) = Data::<serde_json::Value>::from_message(socket.clone(), value, ack_id) else {
            return; // `turn` gives its place up when dropped
        };
        let chat = super::events::chat_id_in(&payload).and_then(|c| ObjectId::parse(c).ok());
        let (relayed, user_hex, telemetry) = (self.relayed, self.user_hex.clone(), self.telemetry.clone());
        let (event, joined, deadline) = (self.event, self.joined.clone(), self.deadline);
        let relay = move |done: Done| async move {
            telemetry.socket_event(event);
            // Only members joined to the chat relay; the user id is the verified one.
            let Some(chat) = chat.filter(|c| joined.contains(c)) else { return };
            let room = chat.to_hex();
            let payload = Relayed { chat_id: &room, user_id: &user_hex };
            // Impatient, the relay gives its turn up at once: the sender's later events
            // go ahead while this one meets the full buffer or the cluster's deadline.
            let patient = joined.patient();
            let done = patient.then_some(done);
            let mut waiting_since = None;
            let delivered = loop {
                let broadcast = socket.to(room.clone()).emit(relayed, &payload);
                // Past the deadline: the cluster adapter's backend (Redis) did not answer.
                let Ok(emitted) = tokio::time::timeout(deadline, broadcast).await else { break false };
                match emitted {
                    Ok(()) => break true,
                    Err(e) if patient && every_socket_failed_with(&e, SocketError::InternalChannelFull) => {
                        if waiting_since.get_or_insert_with(Instant::now).elapsed() >= FULL_BUFFER_WAIT {
                            break false;
                        }
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    // A recipient that closed meanwhile lost nothing.
                    Err(e) if every_socket_failed_with(&e, SocketError::Closed) => break true,
                    // A full buffer without patience, or the adapter's backend failing.
                    Err(_) => break false,
                }
            };
            if !delivered {
                joined.waited_in_vain();
                telemetry.broadcast_failed(relayed);
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
