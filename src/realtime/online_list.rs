//! Sends who is online: the whole list as `getOnlineUser` (what the original client
//! needs), or, for clients that ask for it in their handshake (`auth.presence =
//! "delta"`), the list once and then only what changed, as `userOnline` / `userOffline`
//! with an array of user ids. The whole list to everyone costs O(N²) bytes per change;
//! the changes cost O(N) per change.
//!
//! Each instance sends to the whole cluster what it sees of the cluster (the users'
//! rooms, collected through the adapter), so a change on one instance reaches every
//! client. A change two instances both see may reach a delta client twice: the events
//! are set operations, so applying one twice changes nothing.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use socketioxide::adapter::Adapter;
use socketioxide::socket::Sid;
use socketioxide::SocketIo;

use super::contract::{ONLINE_LIST, ONLINE_LIST_PLURAL, USER_OFFLINE, USER_ONLINE};
use super::presence::Presence;
use super::rooms::{PRESENCE_DELTA_ROOM, PRESENCE_LIST_ROOM, USER_ROOM_PREFIX};

/// How long presence changes must pause before the online list is broadcast.
pub const PRESENCE_QUIET: Duration = Duration::from_millis(100);

/// Bytes per second the online-list broadcasts may cost (recipients × list size). A
/// small site never notices it; with thousands online it spaces broadcasts out so they
/// cannot starve connects and messages.
pub const PRESENCE_BUDGET_BYTES_PER_SEC: f64 = 200e6;

/// Bytes of one user id in a JSON array.
const ID_BYTES: f64 = 27.0;

/// Whether a socket asked for changes instead of whole lists; kept in its extensions.
#[derive(Clone, Copy)]
pub struct WantsDeltas;

/// Everyone online on every instance: the users' rooms, which the adapter collects from
/// the whole cluster. Falls back to this instance's view if that query fails.
async fn online_users<A: Adapter>(io: &SocketIo<A>, presence: &Presence) -> BTreeSet<String> {
    match io.rooms().await {
        Ok(rooms) => rooms.iter().filter_map(|room| room.strip_prefix(USER_ROOM_PREFIX).map(str::to_string)).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "could not collect the cluster's online users; sending this instance's");
            presence.online_ids().into_iter().collect()
        }
    }
}

async fn emit_to<A: Adapter, T: serde::Serialize + ?Sized>(
    io: &SocketIo<A>,
    room: &'static str,
    event: &str,
    data: &T,
) {
    if let Err(e) = io.to(room).emit(event, data).await {
        tracing::debug!(error = %e, "{event} broadcast incomplete");
    }
}

/// Sends the online list once changes settle, within the byte budget. Each payload is
/// serialised once per broadcast, not per recipient.
pub async fn broadcast<A: Adapter>(io: SocketIo<A>, presence: Arc<Presence>, plural_too: bool) {
    let mut next_allowed = tokio::time::Instant::now();
    let mut last_sent = BTreeSet::new();
    // The original's event name, and (when configured) the plural some clones use.
    let list_events: &[&str] = if plural_too { &[ONLINE_LIST, ONLINE_LIST_PLURAL] } else { &[ONLINE_LIST] };
    loop {
        presence.settled_change(PRESENCE_QUIET).await;
        tokio::time::sleep_until(next_allowed).await;
        let online = online_users(&io, &presence).await;
        let newcomers = presence.take_newcomers();
        let list: Vec<&String> = online.iter().collect();
        let mut bytes = 0.0;
        let mut recipients_of_list = 0;
        if online != last_sent {
            let came: Vec<&String> = online.difference(&last_sent).collect();
            let went: Vec<&String> = last_sent.difference(&online).collect();
            for event in list_events {
                emit_to(&io, PRESENCE_LIST_ROOM, event, &list).await;
            }
            recipients_of_list = io.local().within(PRESENCE_LIST_ROOM).sockets().len();
            let delta_sockets = io.local().within(PRESENCE_DELTA_ROOM).sockets().len();
            if !came.is_empty() {
                emit_to(&io, PRESENCE_DELTA_ROOM, USER_ONLINE, &came).await;
            }
            if !went.is_empty() {
                emit_to(&io, PRESENCE_DELTA_ROOM, USER_OFFLINE, &went).await;
            }
            bytes += delta_sockets as f64 * (came.len() + went.len()) as f64 * ID_BYTES;
        }
        // Whoever connected since the last broadcast and has not just been sent the
        // whole list gets it now: every second tab, and every delta client's start.
        for socket in newcomers.iter().filter_map(|sid: &Sid| io.get_socket(*sid)) {
            let in_list_room = socket.extensions.get::<WantsDeltas>().is_none();
            if in_list_room && online != last_sent {
                continue;
            }
            recipients_of_list += 1;
            for event in list_events {
                let _ = socket.emit(*event, &list);
            }
        }
        bytes += list_events.len() as f64 * recipients_of_list as f64 * (list.len() as f64 * ID_BYTES + 24.0);
        if bytes > 64e6 {
            // Each recipient's copy of a large list is allocated, written and freed over
            // the next moments: then hand the pages back rather than keep them
            // fragmented in the allocator.
            tokio::spawn(async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                let _ = tokio::task::spawn_blocking(crate::memory::trim_heap).await;
            });
        }
        next_allowed = tokio::time::Instant::now() + Duration::from_secs_f64(bytes / PRESENCE_BUDGET_BYTES_PER_SEC);
        last_sent = online;
    }
}
