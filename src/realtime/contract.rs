//! Every Socket.IO event name, in one place: the handlers and emitters use these, and
//! `tests/asyncapi.rs` checks them against the AsyncAPI document
//! (`openapi/asyncapi.json`), so neither can drift from the other.

// Client → server.
pub const JOIN_CHAT: &str = "joinChat";
pub const LEAVE_CHAT: &str = "leaveChat";
pub const TYPING: &str = "typing";
pub const STOP_TYPING: &str = "stopTyping";

// Server → client.
pub const NEW_MESSAGE: &str = "newMessage";
pub const MESSAGES_SEEN: &str = "messagesSeen";
pub const USER_TYPING: &str = "userTyping";
pub const USER_STOPPED_TYPING: &str = "userStoppedTyping";
pub const ONLINE_LIST: &str = "getOnlineUser";
/// The plural some clones of the original listen to; only with `presence_plural_event`.
pub const ONLINE_LIST_PLURAL: &str = "getOnlineUsers";
pub const USER_ONLINE: &str = "userOnline";
pub const USER_OFFLINE: &str = "userOffline";

/// The events a client may send.
pub const CLIENT_EVENTS: [&str; 4] = [JOIN_CHAT, LEAVE_CHAT, TYPING, STOP_TYPING];

/// The events the server sends.
pub const SERVER_EVENTS: [&str; 8] = [
    NEW_MESSAGE,
    MESSAGES_SEEN,
    USER_TYPING,
    USER_STOPPED_TYPING,
    ONLINE_LIST,
    ONLINE_LIST_PLURAL,
    USER_ONLINE,
    USER_OFFLINE,
];
