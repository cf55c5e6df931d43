//! The stored documents as types, read with serde. Tolerant where the original's own data
//! varies (an id stored as a string or an ObjectId, a date or epoch milliseconds, the
//! fields the original never wrote), strict everywhere else: a document missing a field
//! the original always wrote, or holding a value of the wrong kind, is an error that
//! names the collection, the document and the field, never a silent 0 or "".

use mongodb::bson::{self, Bson, Document};
use serde::de::{Deserializer, Error as _};
use serde::Deserialize;

use crate::domain::{Chat, Email, Image, LatestMessage, Message, MessageKind, ObjectId, User};

fn any_id<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectId, D::Error> {
    id_from(Bson::deserialize(d)?).map_err(D::Error::custom)
}

fn id_from(value: Bson) -> Result<ObjectId, String> {
    match value {
        Bson::ObjectId(o) => Ok(ObjectId::from_bytes(o.bytes())),
        Bson::String(s) => ObjectId::parse(&s).map_err(|e| format!("id {s:?}: {e}")),
        other => Err(format!("expected an id, found {other}")),
    }
}

fn two_ids<'de, D: Deserializer<'de>>(d: D) -> Result<[ObjectId; 2], D::Error> {
    let ids = Vec::<Bson>::deserialize(d)?;
    let count = ids.len();
    let ids: Vec<ObjectId> = ids.into_iter().map(id_from).collect::<Result<_, _>>().map_err(D::Error::custom)?;
    ids.try_into().map_err(|_| D::Error::custom(format!("expected two member ids, found {count}")))
}

fn millis<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    match Bson::deserialize(d)? {
        Bson::DateTime(t) => Ok(t.timestamp_millis()),
        Bson::Int64(n) => Ok(n),
        Bson::Int32(n) => Ok(i64::from(n)),
        other => Err(D::Error::custom(format!("expected a date, found {other}"))),
    }
}

fn optional_millis<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match Bson::deserialize(d)? {
        Bson::Null => Ok(None),
        Bson::DateTime(t) => Ok(Some(t.timestamp_millis())),
        Bson::Int64(n) => Ok(Some(n)),
        other => Err(D::Error::custom(format!("expected a date or null, found {other}"))),
    }
}

fn integer<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    match Bson::deserialize(d)? {
        Bson::Int64(n) => Ok(n),
        Bson::Int32(n) => Ok(i64::from(n)),
        other => Err(D::Error::custom(format!("expected an integer, found {other}"))),
    }
}

fn text_or_image() -> String {
    "text".into()
}

#[derive(Deserialize)]
struct UserDoc {
    #[serde(rename = "_id", deserialize_with = "any_id")]
    id: ObjectId,
    name: String,
    email: String,
    #[serde(rename = "createdAt", deserialize_with = "millis")]
    created_at: i64,
    #[serde(rename = "updatedAt", deserialize_with = "millis")]
    updated_at: i64,
    /// Added by confab: the original's users have none.
    #[serde(rename = "tokenVersion", default, deserialize_with = "integer")]
    token_version: i64,
}

#[derive(Deserialize)]
struct LatestDoc {
    text: String,
    #[serde(deserialize_with = "any_id")]
    sender: ObjectId,
}

#[derive(Deserialize)]
struct ChatDoc {
    #[serde(rename = "_id", deserialize_with = "any_id")]
    id: ObjectId,
    #[serde(deserialize_with = "two_ids")]
    users: [ObjectId; 2],
    /// Absent (or null) until the first message.
    #[serde(rename = "latestMessage", default)]
    latest_message: Option<LatestDoc>,
    #[serde(rename = "createdAt", deserialize_with = "millis")]
    created_at: i64,
    #[serde(rename = "updatedAt", deserialize_with = "millis")]
    updated_at: i64,
}

#[derive(Deserialize)]
struct ImageDoc {
    url: String,
    #[serde(rename = "publicId", default)]
    public_id: String,
    #[serde(rename = "thumbUrl", default)]
    thumb_url: Option<String>,
}

#[derive(Deserialize)]
struct MessageDoc {
    #[serde(rename = "_id", deserialize_with = "any_id")]
    id: ObjectId,
    #[serde(rename = "chatId", deserialize_with = "any_id")]
    chat_id: ObjectId,
    #[serde(deserialize_with = "any_id")]
    sender: ObjectId,
    /// The original's image messages may have no text.
    #[serde(default)]
    text: String,
    #[serde(default)]
    image: Option<ImageDoc>,
    #[serde(rename = "messageType", default = "text_or_image")]
    message_type: String,
    #[serde(default)]
    seen: bool,
    #[serde(rename = "seenAt", default, deserialize_with = "optional_millis")]
    seen_at: Option<i64>,
    #[serde(rename = "createdAt", deserialize_with = "millis")]
    created_at: i64,
    #[serde(rename = "updatedAt", deserialize_with = "millis")]
    updated_at: i64,
}

/// The extra fields of a chat-list row (the aggregation's lookups).
#[derive(Deserialize)]
struct SummaryExtras {
    #[serde(default)]
    other: Vec<Document>,
    #[serde(default)]
    unseen: Vec<UnseenCount>,
}

#[derive(Deserialize)]
struct UnseenCount {
    #[serde(deserialize_with = "integer")]
    n: i64,
}

/// Reads `d` as `T`, naming the collection and the document in the error.
fn read<T: serde::de::DeserializeOwned>(collection: &str, d: &Document) -> anyhow::Result<T> {
    bson::from_document(d.clone()).map_err(|e| {
        let id = d.get("_id").map_or_else(|| "without an _id".to_string(), |id| id.to_string());
        anyhow::anyhow!("stored {collection} document {id} is unreadable: {e}")
    })
}

pub fn user_from(d: &Document) -> anyhow::Result<User> {
    let u: UserDoc = read("users", d)?;
    let email = Email::parse(&u.email).map_err(|e| anyhow::anyhow!("stored email {:?}: {e}", u.email))?;
    Ok(User {
        id: u.id,
        name: u.name,
        email,
        created_at: u.created_at,
        updated_at: u.updated_at,
        token_version: u.token_version,
    })
}

pub fn chat_from(d: &Document) -> anyhow::Result<Chat> {
    let c: ChatDoc = read("chats", d)?;
    Ok(Chat {
        id: c.id,
        users: c.users,
        latest_message: c.latest_message.map(|l| LatestMessage { text: l.text, sender: l.sender }),
        created_at: c.created_at,
        updated_at: c.updated_at,
    })
}

pub fn message_from(d: &Document) -> anyhow::Result<Message> {
    let m: MessageDoc = read("messages", d)?;
    let kind = MessageKind::parse(&m.message_type).ok_or_else(|| {
        anyhow::anyhow!("stored message {} has messageType {:?} (text or image expected)", m.id, m.message_type)
    })?;
    Ok(Message {
        id: m.id,
        chat_id: m.chat_id,
        sender: m.sender,
        text: m.text,
        image: m.image.map(|i| Image { url: i.url, public_id: i.public_id, thumb_url: i.thumb_url }),
        kind,
        seen: m.seen,
        seen_at: m.seen_at,
        created_at: m.created_at,
        updated_at: m.updated_at,
    })
}

/// A chat-list row: the chat, the other member's user document (if the lookup found
/// one) and the count of messages unseen by the reader.
pub fn summary_parts(d: &Document) -> anyhow::Result<(Chat, Option<Document>, u64)> {
    let extras: SummaryExtras = read("chats", d)?;
    let unseen = extras.unseen.first().map_or(0, |c| c.n.max(0) as u64);
    Ok((chat_from(d)?, extras.other.into_iter().next(), unseen))
}

#[cfg(test)]
mod tests {
    use mongodb::bson::{doc, oid::ObjectId as Oid, DateTime};

    use super::*;

    #[test]
    fn the_originals_shapes_are_read() {
        let (a, b) = (Oid::new(), Oid::new());
        let chat = doc! { "_id": Oid::new(), "users": [a.to_hex(), b.to_hex()], "createdAt": DateTime::now(),
        "updatedAt": DateTime::now(), "__v": 0 };
        let read = chat_from(&chat).unwrap();
        assert_eq!(read.users[1].to_hex(), b.to_hex());
        assert_eq!(read.latest_message, None);
        let image_only = doc! { "_id": Oid::new(), "chatId": chat.get("_id").unwrap().clone(), "sender": a.to_hex(),
        "image": { "url": "https://x/y.jpg", "publicId": "y" }, "messageType": "image", "seen": false,
        "seenAt": Bson::Null, "createdAt": DateTime::now(), "updatedAt": DateTime::now(), "__v": 0 };
        let m = message_from(&image_only).unwrap();
        assert_eq!((m.text.as_str(), m.kind, m.seen_at), ("", MessageKind::Image, None));
    }

    #[test]
    fn a_corrupt_document_is_an_error_naming_the_field() {
        let id = Oid::new();
        let missing = doc! { "_id": id, "name": "x", "createdAt": DateTime::now(), "updatedAt": DateTime::now() };
        let e = user_from(&missing).unwrap_err().to_string();
        assert!(e.contains("users") && e.contains(&id.to_hex()) && e.contains("email"), "{e}");
        let wrong_kind = doc! { "_id": id, "name": "x", "email": "x@example.com", "createdAt": "yesterday",
        "updatedAt": DateTime::now() };
        let e = user_from(&wrong_kind).unwrap_err().to_string();
        assert!(e.contains("expected a date"), "{e}");
        let three =
            doc! { "_id": id, "users": ["a", "b", "c"], "createdAt": DateTime::now(), "updatedAt": DateTime::now() };
        assert!(chat_from(&three).is_err());
    }
}
