//! Types that parse input once so the rest of the code never re-validates it.

mod chat;
mod email;
mod id;
mod time;
mod user;

pub use chat::{latest_text_for, Chat, Image, LatestMessage, Message, MessageKind, MessageText, MAX_TEXT_CHARS};
pub use email::Email;
pub use id::ObjectId;
pub use time::{iso8601, now_ms};
pub use user::{default_name_for, User, UserName};

/// A value the caller sent that cannot be accepted; the text is safe to show to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl Invalid {
    pub fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}
