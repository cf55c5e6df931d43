//! The MongoDB store. Documents keep the original's collections and field names
//! (`users`, `chats`, `messages`; `chatId`, `sender`, `seen`, `seenAt`, `latestMessage`,
//! `createdAt`, `__v`), so a database of the original can be pointed at confab. Chat
//! member ids are strings, as the original stores them. Added fields: `tokenVersion`
//! on users and `pairKey` on chats (a unique key for one chat per pair of users).

mod documents;
pub mod migrate;

use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use futures_util::TryStreamExt;
use mongodb::bson::oid::ObjectId as Oid;
use mongodb::bson::{doc, Bson, DateTime, Document};
use mongodb::options::{ClientOptions, IndexOptions, ReturnDocument};
use mongodb::{Client, Collection, Database, IndexModel};

use crate::config::mask_url_password;
use documents::{chat_from, message_from, user_from};

use crate::domain::{now_ms, Chat, Email, LatestMessage, Message, ObjectId, User};
use crate::ports::{BackendResult, ChatSummary, HistoryPage, Store};

pub struct MongoStore {
    db: Database,
    users: Collection<Document>,
    chats: Collection<Document>,
    messages: Collection<Document>,
    shown_uri: String,
}

fn oid(id: &ObjectId) -> Oid {
    Oid::from_bytes(id.bytes())
}

fn id_of(o: &Oid) -> ObjectId {
    ObjectId::from_bytes(o.bytes())
}

fn date(ms: i64) -> DateTime {
    DateTime::from_millis(ms)
}

fn is_duplicate_key(e: &mongodb::error::Error) -> bool {
    e.to_string().contains("E11000")
        || matches!(e.kind.as_ref(), mongodb::error::ErrorKind::Write(mongodb::error::WriteFailure::WriteError(w)) if w.code == 11000)
        || matches!(e.kind.as_ref(), mongodb::error::ErrorKind::Command(c) if c.code == 11000)
}

/// A document read with `parse`, or `None` (logged) when it is not one confab can use.
fn readable<T>(d: &Document, parse: fn(&Document) -> anyhow::Result<T>) -> Option<T> {
    match parse(d) {
        Ok(value) => Some(value),
        Err(e) => {
            tracing::warn!(id = ?d.get("_id"), error = %format!("{e:#}"), "skipping a stored document confab cannot read");
            None
        }
    }
}

fn message_doc(m: &Message) -> Document {
    let mut d = doc! {
        "_id": oid(&m.id),
        "chatId": oid(&m.chat_id),
        "sender": m.sender.to_hex(),
        "text": &m.text,
        "messageType": m.kind.as_str(),
        "seen": m.seen,
        "seenAt": m.seen_at.map(date).map(Bson::DateTime).unwrap_or(Bson::Null),
        "createdAt": date(m.created_at),
        "updatedAt": date(m.updated_at),
        "__v": 0,
    };
    if let Some(image) = &m.image {
        let mut i = doc! { "url": &image.url, "publicId": &image.public_id };
        if let Some(thumb) = &image.thumb_url {
            i.insert("thumbUrl", thumb);
        }
        d.insert("image", i);
    }
    d
}

/// Inserts the `$setOnInsert` document unless `filter` matches one, and returns the
/// stored document either way. When two callers race, the unique index lets one
/// insert; the other re-reads what it wrote.
async fn insert_unless_present(
    collection: &Collection<Document>,
    filter: Document,
    insert: Document,
) -> anyhow::Result<Document> {
    let upsert = collection
        .find_one_and_update(filter.clone(), insert)
        .upsert(true)
        .return_document(ReturnDocument::After)
        .await;
    let found = match upsert {
        Ok(found) => found,
        Err(e) if is_duplicate_key(&e) => None,
        Err(e) => return Err(e.into()),
    };
    match found {
        Some(document) => Ok(document),
        None => collection.find_one(filter).await?.context("document missing right after its upsert"),
    }
}

fn pair_key(a: &ObjectId, b: &ObjectId) -> String {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    format!("{lo}:{hi}")
}

impl MongoStore {
    /// Connects lazily (the driver does) and creates the indexes in the background, so
    /// an unreachable server costs log lines and 503s, not a failed start.
    pub async fn connect(uri: &str) -> anyhow::Result<Self> {
        let mut options = ClientOptions::parse(uri).await.context("mongo_uri is not a valid MongoDB URI")?;
        options.app_name = Some("confab".into());
        options.max_pool_size = Some(32);
        options.connect_timeout = Some(Duration::from_secs(5));
        options.server_selection_timeout = Some(Duration::from_secs(5));
        let client = Client::with_options(options)?;
        let db = client.default_database().unwrap_or_else(|| client.database("confab"));
        let store = Self {
            users: db.collection("users"),
            chats: db.collection("chats"),
            messages: db.collection("messages"),
            db,
            shown_uri: mask_url_password(uri),
        };
        let indexes = store.clone_handles();
        tokio::spawn(async move {
            let mut delay = Duration::from_millis(500);
            while let Err(e) = indexes.ensure_indexes().await {
                tracing::error!(
                    "MongoDB at {}: could not create indexes ({e:#}); retrying in {delay:?}",
                    indexes.shown_uri
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        });
        Ok(store)
    }

    fn clone_handles(&self) -> Self {
        Self {
            db: self.db.clone(),
            users: self.users.clone(),
            chats: self.chats.clone(),
            messages: self.messages.clone(),
            shown_uri: self.shown_uri.clone(),
        }
    }

    pub fn describe(&self) -> String {
        format!("mongodb ({}, database {})", self.shown_uri, self.db.name())
    }

    /// Every index the queries need; safe to run again (and by several instances).
    pub async fn ensure_indexes(&self) -> anyhow::Result<()> {
        let unique = IndexOptions::builder().unique(true).build();
        let sparse_unique = IndexOptions::builder().unique(true).sparse(true).build();
        self.users.create_index(IndexModel::builder().keys(doc! { "email": 1 }).options(unique).build()).await?;
        self.chats.create_index(IndexModel::builder().keys(doc! { "users": 1, "updatedAt": -1 }).build()).await?;
        self.chats
            .create_index(IndexModel::builder().keys(doc! { "pairKey": 1 }).options(sparse_unique).build())
            .await?;
        self.messages
            .create_index(IndexModel::builder().keys(doc! { "chatId": 1, "createdAt": 1, "_id": 1 }).build())
            .await?;
        self.messages
            .create_index(IndexModel::builder().keys(doc! { "chatId": 1, "seen": 1, "sender": 1 }).build())
            .await?;
        Ok(())
    }

    /// Applies `update` to one user and returns the user as stored afterwards.
    async fn update_user(&self, id: &ObjectId, update: Document) -> anyhow::Result<Option<User>> {
        let found = self
            .users
            .find_one_and_update(doc! { "_id": oid(id) }, update)
            .return_document(ReturnDocument::After)
            .await?;
        found.as_ref().map(user_from).transpose()
    }

    /// Removes the database: for tests.
    pub async fn drop_database(&self) -> anyhow::Result<()> {
        Ok(self.db.drop().await?)
    }
}

#[async_trait]
impl Store for MongoStore {
    async fn find_or_create_user(&self, email: &Email, default_name: &str) -> BackendResult<User> {
        let now = date(now_ms());
        let insert = doc! { "$setOnInsert": {
            "_id": Oid::new(), "name": default_name, "email": email.as_str(),
            "createdAt": now, "updatedAt": now, "__v": 0, "tokenVersion": 0_i64,
        }};
        let found = insert_unless_present(&self.users, doc! { "email": email.as_str() }, insert).await?;
        user_from(&found)
    }

    async fn user_by_id(&self, id: &ObjectId) -> BackendResult<Option<User>> {
        self.users.find_one(doc! { "_id": oid(id) }).await?.as_ref().map(user_from).transpose()
    }

    async fn list_users(&self) -> BackendResult<Vec<User>> {
        let docs: Vec<Document> =
            self.users.find(doc! {}).sort(doc! { "createdAt": 1, "_id": 1 }).await?.try_collect().await?;
        // The original validated nothing: one user without a usable email must not take
        // the whole list down. `confab migrate` lists them.
        Ok(docs.iter().filter_map(|d| readable(d, user_from)).collect())
    }

    async fn rename_user(&self, id: &ObjectId, name: &str) -> BackendResult<Option<User>> {
        self.update_user(id, doc! { "$set": { "name": name, "updatedAt": date(now_ms()) } }).await
    }

    async fn bump_token_version(&self, id: &ObjectId) -> BackendResult<Option<User>> {
        self.update_user(id, doc! { "$inc": { "tokenVersion": 1_i64 }, "$set": { "updatedAt": date(now_ms()) } }).await
    }

    async fn open_chat(&self, creator: &ObjectId, other: &ObjectId) -> BackendResult<(Chat, bool)> {
        let members = vec![creator.to_hex(), other.to_hex()];
        // A chat of the original has no pairKey: find it by its members first.
        if let Some(existing) = self.chats.find_one(doc! { "users": { "$all": &members, "$size": 2 } }).await? {
            return Ok((chat_from(&existing)?, false));
        }
        let key = pair_key(creator, other);
        let new_id = Oid::new();
        let now = date(now_ms());
        let insert = doc! { "$setOnInsert": {
            "_id": new_id, "users": &members, "pairKey": &key, "createdAt": now, "updatedAt": now, "__v": 0,
        }};
        let chat = insert_unless_present(&self.chats, doc! { "pairKey": &key }, insert).await?;
        let created = chat.get_object_id("_id").ok() == Some(new_id);
        Ok((chat_from(&chat)?, created))
    }

    async fn chat_by_id(&self, id: &ObjectId) -> BackendResult<Option<Chat>> {
        self.chats.find_one(doc! { "_id": oid(id) }).await?.as_ref().map(chat_from).transpose()
    }

    async fn chats_for_user(&self, user: &ObjectId) -> BackendResult<Vec<ChatSummary>> {
        let me = user.to_hex();
        // One aggregation: the chats, each with its unseen count and the other member.
        // Both lookups are equality matches on an indexed field (`messages.chatId`,
        // `users._id`), so each chat costs two index probes whatever the collection
        // sizes: the peer's id is converted once per chat (members are stored as
        // strings) rather than converting every user's `_id` to compare with it.
        let pipeline = vec![
            doc! { "$match": { "users": &me } },
            doc! { "$sort": { "updatedAt": -1, "_id": -1 } },
            doc! { "$addFields": { "_peer": { "$convert": {
                "input": { "$arrayElemAt": [{ "$filter": { "input": "$users", "cond": { "$ne": ["$$this", &me] } } }, 0] },
                "to": "objectId",
                "onError": Bson::Null,
                "onNull": Bson::Null,
            } } } },
            doc! { "$lookup": { "from": "users", "localField": "_peer", "foreignField": "_id", "as": "other" } },
            doc! { "$lookup": {
                "from": "messages",
                "localField": "_id",
                "foreignField": "chatId",
                "pipeline": [
                    { "$match": { "seen": false, "sender": { "$ne": &me } } },
                    { "$group": { "_id": Bson::Null, "n": { "$sum": 1 } } },
                ],
                "as": "unseen",
            } },
        ];
        let docs: Vec<Document> = self.chats.aggregate(pipeline).await?.try_collect().await?;
        docs.iter()
            .map(|d| {
                let (chat, other, unseen) = documents::summary_parts(d)?;
                // A peer confab cannot read is shown without details, not as an error.
                let other = other.as_ref().and_then(|u| readable(u, user_from));
                Ok(ChatSummary { chat, other, unseen })
            })
            .collect()
    }

    async fn add_message(&self, message: &Message, latest: &LatestMessage) -> BackendResult<()> {
        // Without a replica set there are no transactions: the message goes in first, so
        // a failure in between leaves a stored message and a stale preview, never a
        // preview of a message that does not exist.
        self.messages.insert_one(message_doc(message)).await?;
        let update = doc! { "$set": {
            "latestMessage": { "text": &latest.text, "sender": latest.sender.to_hex() },
            "updatedAt": date(message.created_at),
        }};
        self.chats.update_one(doc! { "_id": oid(&message.chat_id) }, update).await?;
        Ok(())
    }

    async fn messages(&self, chat: &ObjectId, page: &HistoryPage) -> BackendResult<Vec<Message>> {
        let mut filter = doc! { "chatId": oid(chat) };
        if let Some(before) = &page.before {
            let Some(anchor) = self.messages.find_one(doc! { "_id": oid(before), "chatId": oid(chat) }).await? else {
                return Ok(Vec::new());
            };
            let at = anchor.get("createdAt").cloned().unwrap_or(Bson::Null);
            filter.insert(
                "$or",
                vec![
                    doc! { "createdAt": { "$lt": at.clone() } },
                    doc! { "createdAt": at, "_id": { "$lt": oid(before) } },
                ],
            );
        }
        let mut find = self.messages.find(filter).sort(doc! { "createdAt": -1, "_id": -1 });
        if let Some(limit) = page.limit {
            find = find.limit(i64::from(limit));
        }
        let docs: Vec<Document> = find.await?.try_collect().await?;
        let mut messages = docs.iter().map(message_from).collect::<anyhow::Result<Vec<_>>>()?;
        messages.reverse();
        Ok(messages)
    }

    async fn mark_seen(&self, chat: &ObjectId, reader: &ObjectId, at: i64) -> BackendResult<Vec<ObjectId>> {
        let filter = doc! { "chatId": oid(chat), "seen": false, "sender": { "$ne": reader.to_hex() } };
        let unseen: Vec<Document> =
            self.messages.find(filter.clone()).projection(doc! { "_id": 1 }).await?.try_collect().await?;
        let ids: Vec<Oid> = unseen.iter().filter_map(|d| d.get_object_id("_id").ok()).collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let update = doc! { "$set": { "seen": true, "seenAt": date(at), "updatedAt": date(at) } };
        self.messages.update_many(doc! { "_id": { "$in": &ids }, "seen": false }, update).await?;
        Ok(ids.iter().map(id_of).collect())
    }

    async fn ping(&self) -> BackendResult<()> {
        self.db.run_command(doc! { "ping": 1 }).await?;
        Ok(())
    }
}
