//! The rooms every piece of real time agrees on.
//!
//! Every connection joins its user's room (`user:<userId>`), so events go to users, not
//! to one remembered socket, and the cluster's online list is the set of these rooms.
//! `joinChat` adds the chat room (`<chatId>`) and a viewing room (`<chatId>:<userId>`)
//! used for the seen-at-send rule.

use crate::domain::ObjectId;

pub const USER_ROOM_PREFIX: &str = "user:";

pub fn user_room(user: &ObjectId) -> String {
    format!("{USER_ROOM_PREFIX}{user}")
}

/// Every connection also joins `at:<userId>@<instance>`, so a cluster-wide room query
/// tells the admin console which instances each user is on.
pub const AT_ROOM_PREFIX: &str = "at:";

pub fn at_room(user: &ObjectId, instance: &str) -> String {
    format!("{AT_ROOM_PREFIX}{user}@{instance}")
}

pub fn viewing_room(chat: &ObjectId, user: &ObjectId) -> String {
    format!("{chat}:{user}")
}

/// Sockets sent the whole online list on every change (the original client's way).
pub const PRESENCE_LIST_ROOM: &str = "presence:list";

/// Sockets that asked to be sent only the changes.
pub const PRESENCE_DELTA_ROOM: &str = "presence:delta";
