//! The JSON shapes clients see, exactly as the original serialises them (mongoose keys:
//! `_id`, `__v`, camelCase, ISO-8601 dates). Shared by the REST API and Socket.IO.

use std::borrow::Cow;

use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use poem_openapi::types::{Example, ToJSON, Type};
use poem_openapi::Object;
use serde_json::Value;

use crate::domain::{iso8601, Chat, Image, Message, User};
use crate::services::chats::Peer;

/// A user as the original serialises it.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct UserJson {
    /// 24-hex id.
    #[oai(rename = "_id")]
    pub id: String,
    pub name: String,
    pub email: String,
    /// ISO-8601 UTC with milliseconds.
    #[oai(rename = "createdAt")]
    pub created_at: String,
    #[oai(rename = "updatedAt")]
    pub updated_at: String,
    /// Always 0; kept for the original's clients.
    #[oai(rename = "__v")]
    pub version: i64,
}

impl Example for UserJson {
    fn example() -> Self {
        Self {
            id: "66ab1c2d3e4f5a6b7c8d9e0f".into(),
            name: "alice@ex".into(),
            email: "alice@example.com".into(),
            created_at: "2025-08-01T10:20:30.123Z".into(),
            updated_at: "2025-08-01T10:20:30.123Z".into(),
            version: 0,
        }
    }
}

impl From<&User> for UserJson {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.to_hex(),
            name: u.name.clone(),
            email: u.email.as_str().to_string(),
            created_at: iso8601(u.created_at),
            updated_at: iso8601(u.updated_at),
            version: 0,
        }
    }
}

/// The other member of a chat. When that user no longer exists only `_id` and
/// `name: "Unknown User"` are present, as in the original.
#[derive(Debug, Clone, Object)]
pub struct PeerJson {
    #[oai(rename = "_id")]
    pub id: String,
    pub name: String,
    #[oai(skip_serializing_if_is_none)]
    pub email: Option<String>,
    #[oai(rename = "createdAt", skip_serializing_if_is_none)]
    pub created_at: Option<String>,
    #[oai(rename = "updatedAt", skip_serializing_if_is_none)]
    pub updated_at: Option<String>,
    #[oai(rename = "__v", skip_serializing_if_is_none)]
    pub version: Option<i64>,
}

impl From<&Peer> for PeerJson {
    fn from(peer: &Peer) -> Self {
        match peer {
            Peer::Known(u) => {
                let u = UserJson::from(u);
                Self {
                    id: u.id,
                    name: u.name,
                    email: Some(u.email),
                    created_at: Some(u.created_at),
                    updated_at: Some(u.updated_at),
                    version: Some(0),
                }
            }
            Peer::Unknown(id) => Self {
                id: id.to_hex(),
                name: "Unknown User".into(),
                email: None,
                created_at: None,
                updated_at: None,
                version: None,
            },
        }
    }
}

#[derive(Debug, Clone, Object)]
pub struct ImageJson {
    pub url: String,
    #[oai(rename = "publicId")]
    pub public_id: String,
    /// A small preview (max 320 px), when the media store makes one.
    #[oai(rename = "thumbUrl", skip_serializing_if_is_none)]
    pub thumb_url: Option<String>,
}

impl From<&Image> for ImageJson {
    fn from(i: &Image) -> Self {
        Self { url: i.url.clone(), public_id: i.public_id.clone(), thumb_url: i.thumb_url.clone() }
    }
}

/// A message. Text messages have no `image` key at all; `seenAt` is `null` until seen.
#[derive(Debug, Clone, Object)]
pub struct MessageJson {
    #[oai(rename = "_id")]
    pub id: String,
    #[oai(rename = "chatId")]
    pub chat_id: String,
    /// The sender's user id.
    pub sender: String,
    pub text: String,
    #[oai(skip_serializing_if_is_none)]
    pub image: Option<ImageJson>,
    /// `text` or `image`.
    #[oai(rename = "messageType")]
    pub message_type: String,
    pub seen: bool,
    #[oai(rename = "seenAt")]
    pub seen_at: Nullable<String>,
    #[oai(rename = "createdAt")]
    pub created_at: String,
    #[oai(rename = "updatedAt")]
    pub updated_at: String,
    #[oai(rename = "__v")]
    pub version: i64,
}

impl From<&Message> for MessageJson {
    fn from(m: &Message) -> Self {
        Self {
            id: m.id.to_hex(),
            chat_id: m.chat_id.to_hex(),
            sender: m.sender.to_hex(),
            text: m.text.clone(),
            image: m.image.as_ref().map(ImageJson::from),
            message_type: m.kind.as_str().into(),
            seen: m.seen,
            seen_at: Nullable(m.seen_at.map(iso8601)),
            created_at: iso8601(m.created_at),
            updated_at: iso8601(m.updated_at),
            version: 0,
        }
    }
}

impl MessageJson {
    pub fn into_value(self) -> Value {
        self.to_json().unwrap_or(Value::Null)
    }
}

/// `{text, sender}` once a message exists; `{}` for a chat without messages, exactly
/// as the original serialises it.
#[derive(Debug, Clone, Object)]
pub struct LatestMessageJson {
    #[oai(skip_serializing_if_is_none)]
    pub text: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub sender: Option<String>,
}

#[derive(Debug, Clone, Object)]
pub struct ChatJson {
    #[oai(rename = "_id")]
    pub id: String,
    /// The two member ids, creator first.
    pub users: Vec<String>,
    #[oai(rename = "latestMessage")]
    pub latest_message: LatestMessageJson,
    #[oai(rename = "createdAt")]
    pub created_at: String,
    #[oai(rename = "updatedAt")]
    pub updated_at: String,
    #[oai(rename = "__v")]
    pub version: i64,
    /// Messages from the other member the caller has not seen.
    #[oai(rename = "unseenCount")]
    pub unseen_count: u64,
}

impl ChatJson {
    pub fn new(chat: &Chat, unseen: u64) -> Self {
        let latest = chat.latest_message.as_ref();
        Self {
            id: chat.id.to_hex(),
            users: chat.users.iter().map(|u| u.to_hex()).collect(),
            latest_message: LatestMessageJson {
                text: latest.map(|l| l.text.clone()),
                sender: latest.map(|l| l.sender.to_hex()),
            },
            created_at: iso8601(chat.created_at),
            updated_at: iso8601(chat.updated_at),
            version: 0,
            unseen_count: unseen,
        }
    }
}

/// A value that is always present in the response, `null` when absent (like the
/// original's `seenAt`), and declared so.
#[derive(Debug, Clone)]
pub struct Nullable<T>(pub Option<T>);

impl<T: Type> Type for Nullable<T> {
    const IS_REQUIRED: bool = true;
    type RawValueType = T::RawValueType;
    type RawElementValueType = T::RawElementValueType;

    fn name() -> Cow<'static, str> {
        format!("nullable_{}", T::name()).into()
    }

    fn schema_ref() -> MetaSchemaRef {
        match T::schema_ref() {
            MetaSchemaRef::Inline(mut schema) => {
                schema.nullable = true;
                MetaSchemaRef::Inline(schema)
            }
            reference => MetaSchemaRef::Inline(Box::new(MetaSchema {
                nullable: true,
                all_of: vec![reference],
                ..MetaSchema::ANY
            })),
        }
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        self.0.as_ref().and_then(T::as_raw_value)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        match &self.0 {
            Some(value) => value.raw_element_iter(),
            None => Box::new(std::iter::empty()),
        }
    }
}

/// Only for the derive's sake (responses are not parsed back).
impl<T: poem_openapi::types::ParseFromJSON> poem_openapi::types::ParseFromJSON for Nullable<T> {
    fn parse_from_json(value: Option<Value>) -> poem_openapi::types::ParseResult<Self> {
        match value {
            None | Some(Value::Null) => Ok(Self(None)),
            value => {
                T::parse_from_json(value).map(|v| Self(Some(v))).map_err(poem_openapi::types::ParseError::propagate)
            }
        }
    }
}

impl<T: ToJSON> ToJSON for Nullable<T> {
    fn to_json(&self) -> Option<Value> {
        Some(self.0.as_ref().and_then(T::to_json).unwrap_or(Value::Null))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nullable_values_are_null_not_absent() {
        assert_eq!(Nullable::<String>(None).to_json(), Some(Value::Null));
        assert_eq!(Nullable(Some("x".to_string())).to_json(), Some(Value::String("x".into())));
        let MetaSchemaRef::Inline(schema) = Nullable::<String>::schema_ref() else { panic!("inline") };
        assert!(schema.nullable && schema.ty == "string");
    }
}
