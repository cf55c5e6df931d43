//! The embedded store: one SQLite file in `data_dir`, WAL mode so readers never wait for
//! the writer and several confab processes on one host can share the file.
//!
//! The hot path of a message POST spends no thread hand-off on reads: point reads by key
//! run on the calling task when a pooled connection is free (they take microseconds),
//! and messages are written by one thread that commits in batches ([`writer`]).

mod writer;

use std::path::Path;
use std::sync::LazyLock;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use r2d2::Pool;
use r2d2_sqlite::rusqlite::{self, params, OptionalExtension, Row};
use r2d2_sqlite::SqliteConnectionManager;

use crate::domain::{now_ms, Chat, Email, Image, LatestMessage, Message, MessageKind, ObjectId, User};
use crate::ports::{BackendResult, ChatSummary, HistoryPage, Store};

/// Ordered schema steps; `PRAGMA user_version` records how many have run.
const MIGRATIONS: &[&str] = &[
    r#"
    CREATE TABLE users (
        id            TEXT PRIMARY KEY NOT NULL,
        name          TEXT NOT NULL,
        email         TEXT NOT NULL UNIQUE,
        created_at    INTEGER NOT NULL,
        updated_at    INTEGER NOT NULL,
        token_version INTEGER NOT NULL DEFAULT 0
    );
    "#,
    r#"
    CREATE TABLE chats (
        id            TEXT PRIMARY KEY NOT NULL,
        user_a        TEXT NOT NULL REFERENCES users(id),
        user_b        TEXT NOT NULL REFERENCES users(id),
        -- the two ids sorted and joined: one chat per pair, whoever opened it
        pair_key      TEXT NOT NULL UNIQUE,
        latest_text   TEXT,
        latest_sender TEXT,
        created_at    INTEGER NOT NULL,
        updated_at    INTEGER NOT NULL
    );
    CREATE INDEX chats_by_user_a ON chats (user_a, updated_at DESC);
    CREATE INDEX chats_by_user_b ON chats (user_b, updated_at DESC);
    CREATE TABLE messages (
        id              TEXT PRIMARY KEY NOT NULL,
        chat_id         TEXT NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
        sender          TEXT NOT NULL,
        text            TEXT NOT NULL DEFAULT '',
        image_url       TEXT,
        image_public_id TEXT,
        image_thumb_url TEXT,
        message_type    TEXT NOT NULL CHECK (message_type IN ('text', 'image')),
        seen            INTEGER NOT NULL DEFAULT 0,
        seen_at         INTEGER,
        created_at      INTEGER NOT NULL,
        updated_at      INTEGER NOT NULL
    );
    CREATE INDEX messages_by_chat ON messages (chat_id, created_at, id);
    CREATE INDEX messages_unseen ON messages (chat_id, sender) WHERE seen = 0;
    "#,
];

pub struct SqliteStore {
    pool: Pool<SqliteConnectionManager>,
    writer: writer::Writer,
}

fn configure(conn: &mut rusqlite::Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;",
    )
}

impl SqliteStore {
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let manager = SqliteConnectionManager::file(path).with_init(configure);
        let pool = Pool::builder()
            .max_size(8)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(5))
            .build(manager)
            .with_context(|| format!("opening SQLite database {}", path.display()))?;
        migrate(&mut *pool.get()?).context("migrating SQLite schema")?;
        let mut conn = rusqlite::Connection::open(path)?;
        configure(&mut conn)?;
        let writer = writer::Writer::start(conn).context("starting the SQLite writer thread")?;
        Ok(Self { pool, writer })
    }

    /// A read by key: on the calling task when a connection is free at once (no thread
    /// wake-up, which cost more than the read itself), else on the blocking pool.
    async fn read_by_key<T, F>(&self, work: F) -> BackendResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        match self.pool.try_get() {
            Some(mut conn) => Ok(work(&mut conn)?),
            None => self.with_conn(work).await,
        }
    }

    /// Runs `work` on a pooled connection off the async runtime.
    async fn with_conn<T, F>(&self, work: F) -> BackendResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get()?;
            Ok(work(&mut conn)?)
        })
        .await?
    }
}

fn migrate(conn: &mut rusqlite::Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let done: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (step, sql) in MIGRATIONS.iter().enumerate().skip(done as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", step as i64 + 1)?;
    }
    tx.commit()
}

const USER_COLUMNS: &str = "id, name, email, created_at, updated_at, token_version";
const OTHER_USER_COLUMNS: &str = "u.id, u.name, u.email, u.created_at, u.updated_at, u.token_version";

fn corrupt(column: usize, what: &str, value: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        column,
        rusqlite::types::Type::Text,
        format!("stored {what} {value:?} is invalid").into(),
    )
}

fn id_at(row: &Row<'_>, column: usize) -> rusqlite::Result<ObjectId> {
    let text: String = row.get(column)?;
    ObjectId::parse(&text).map_err(|_| corrupt(column, "id", &text))
}

/// Reads the user columns starting at `at`, in `USER_COLUMNS` order.
fn user_at(row: &Row<'_>, at: usize) -> rusqlite::Result<User> {
    let email: String = row.get(at + 2)?;
    Ok(User {
        id: id_at(row, at)?,
        name: row.get(at + 1)?,
        email: Email::parse(&email).map_err(|_| corrupt(at + 2, "email", &email))?,
        created_at: row.get(at + 3)?,
        updated_at: row.get(at + 4)?,
        token_version: row.get(at + 5)?,
    })
}

fn user_from_row(row: &Row<'_>) -> rusqlite::Result<User> {
    user_at(row, 0)
}

const CHAT_COLUMNS: &str = "c.id, c.user_a, c.user_b, c.latest_text, c.latest_sender, c.created_at, c.updated_at";
const CHAT_COLUMN_COUNT: usize = 7;

fn chat_from_row(row: &Row<'_>) -> rusqlite::Result<Chat> {
    let latest_text: Option<String> = row.get(3)?;
    let latest_sender: Option<String> = row.get(4)?;
    let latest_message = match (latest_text, latest_sender) {
        (Some(text), Some(sender)) => {
            Some(LatestMessage { text, sender: ObjectId::parse(&sender).map_err(|_| corrupt(4, "sender", &sender))? })
        }
        _ => None,
    };
    Ok(Chat {
        id: id_at(row, 0)?,
        users: [id_at(row, 1)?, id_at(row, 2)?],
        latest_message,
        created_at: row.get(5)?,
        updated_at: row.get(6)?,
    })
}

const MESSAGE_COLUMNS: &str = "id, chat_id, sender, text, image_url, image_public_id, image_thumb_url, message_type, \
     seen, seen_at, created_at, updated_at";

fn message_from_row(row: &Row<'_>) -> rusqlite::Result<Message> {
    let image_url: Option<String> = row.get(4)?;
    let kind: String = row.get(7)?;
    Ok(Message {
        id: id_at(row, 0)?,
        chat_id: id_at(row, 1)?,
        sender: id_at(row, 2)?,
        text: row.get(3)?,
        image: match image_url {
            Some(url) => Some(Image {
                url,
                public_id: row.get::<_, Option<String>>(5)?.unwrap_or_default(),
                thumb_url: row.get(6)?,
            }),
            None => None,
        },
        kind: MessageKind::parse(&kind).ok_or_else(|| corrupt(7, "message type", &kind))?,
        seen: row.get(8)?,
        seen_at: row.get(9)?,
        created_at: row.get(10)?,
        updated_at: row.get(11)?,
    })
}

fn pair_key(a: &ObjectId, b: &ObjectId) -> String {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    format!("{lo}:{hi}")
}

static SELECT_CHAT: LazyLock<String> = LazyLock::new(|| format!("SELECT {CHAT_COLUMNS} FROM chats c WHERE c.id = ?1"));
static SELECT_USER: LazyLock<String> = LazyLock::new(|| format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"));
static INSERT_MESSAGE: LazyLock<String> = LazyLock::new(|| {
    format!("INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)")
});

fn select_chat(conn: &rusqlite::Connection, id: &str) -> rusqlite::Result<Option<Chat>> {
    conn.prepare_cached(&SELECT_CHAT)?.query_row([id], chat_from_row).optional()
}

fn select_user(conn: &rusqlite::Connection, id: &str) -> rusqlite::Result<Option<User>> {
    conn.prepare_cached(&SELECT_USER)?.query_row([id], user_from_row).optional()
}

#[async_trait]
impl Store for SqliteStore {
    async fn find_or_create_user(&self, email: &Email, default_name: &str) -> BackendResult<User> {
        let email = email.as_str().to_string();
        let name = default_name.to_string();
        self.with_conn(move |conn| {
            let now = now_ms();
            // ON CONFLICT DO NOTHING keeps the first writer's row when logins race.
            conn.execute(
                "INSERT INTO users (id, name, email, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)
                 ON CONFLICT(email) DO NOTHING",
                params![ObjectId::new().to_hex(), name, email, now],
            )?;
            conn.query_row(&format!("SELECT {USER_COLUMNS} FROM users WHERE email = ?1"), [&email], user_from_row)
        })
        .await
    }

    async fn user_by_id(&self, id: &ObjectId) -> BackendResult<Option<User>> {
        let id = id.to_hex();
        self.read_by_key(move |conn| select_user(conn, &id)).await
    }

    async fn list_users(&self) -> BackendResult<Vec<User>> {
        self.with_conn(|conn| {
            let mut stmt = conn.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY created_at, id"))?;
            let users = stmt.query_map([], user_from_row)?.collect();
            users
        })
        .await
    }

    async fn rename_user(&self, id: &ObjectId, name: &str) -> BackendResult<Option<User>> {
        let id = id.to_hex();
        let name = name.to_string();
        self.with_conn(move |conn| {
            conn.execute("UPDATE users SET name = ?2, updated_at = ?3 WHERE id = ?1", params![id, name, now_ms()])?;
            select_user(conn, &id)
        })
        .await
    }

    async fn bump_token_version(&self, id: &ObjectId) -> BackendResult<Option<User>> {
        let id = id.to_hex();
        self.with_conn(move |conn| {
            conn.execute(
                "UPDATE users SET token_version = token_version + 1, updated_at = ?2 WHERE id = ?1",
                params![id, now_ms()],
            )?;
            select_user(conn, &id)
        })
        .await
    }

    async fn open_chat(&self, creator: &ObjectId, other: &ObjectId) -> BackendResult<(Chat, bool)> {
        let (creator, other) = (*creator, *other);
        self.with_conn(move |conn| {
            let now = now_ms();
            let key = pair_key(&creator, &other);
            let created = conn.execute(
                "INSERT INTO chats (id, user_a, user_b, pair_key, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)
                 ON CONFLICT(pair_key) DO NOTHING",
                params![ObjectId::new().to_hex(), creator.to_hex(), other.to_hex(), key, now],
            )? == 1;
            let chat =
                conn.query_row(&format!("SELECT {CHAT_COLUMNS} FROM chats c WHERE c.pair_key = ?1"), [&key], chat_from_row)?;
            Ok((chat, created))
        })
        .await
    }

    async fn chat_by_id(&self, id: &ObjectId) -> BackendResult<Option<Chat>> {
        let id = id.to_hex();
        self.read_by_key(move |conn| select_chat(conn, &id)).await
    }

    async fn chats_for_user(&self, user: &ObjectId) -> BackendResult<Vec<ChatSummary>> {
        let user = user.to_hex();
        self.with_conn(move |conn| {
            // One query: the two indexed halves of "my chats", the other member joined in,
            // and the unseen count from the partial index.
            let sql = format!(
                "SELECT {CHAT_COLUMNS},
                        (SELECT COUNT(*) FROM messages m WHERE m.chat_id = c.id AND m.seen = 0 AND m.sender != ?1),
                        {OTHER_USER_COLUMNS}
                 FROM (SELECT id FROM chats WHERE user_a = ?1 UNION ALL SELECT id FROM chats WHERE user_b = ?1) mine
                 JOIN chats c ON c.id = mine.id
                 LEFT JOIN users u ON u.id = CASE WHEN c.user_a = ?1 THEN c.user_b ELSE c.user_a END
                 ORDER BY c.updated_at DESC, c.id DESC"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map([&user], |row| {
                let other_id: Option<String> = row.get(CHAT_COLUMN_COUNT + 1)?;
                Ok(ChatSummary {
                    chat: chat_from_row(row)?,
                    unseen: row.get::<_, i64>(CHAT_COLUMN_COUNT)? as u64,
                    other: match other_id {
                        Some(_) => Some(user_at(row, CHAT_COLUMN_COUNT + 1)?),
                        None => None,
                    },
                })
            })?;
            rows.collect()
        })
        .await
    }

    async fn add_message(&self, message: &Message, latest: &LatestMessage) -> BackendResult<()> {
        let (m, latest) = (message.clone(), latest.clone());
        // Both statements in the same batch transaction: the preview never runs ahead of
        // the message it shows.
        self.writer
            .write(move |conn| {
                let image = m.image.as_ref();
                conn.prepare_cached(&INSERT_MESSAGE)?.execute(params![
                    m.id.to_hex(),
                    m.chat_id.to_hex(),
                    m.sender.to_hex(),
                    m.text,
                    image.map(|i| &i.url),
                    image.map(|i| &i.public_id),
                    image.and_then(|i| i.thumb_url.as_ref()),
                    m.kind.as_str(),
                    m.seen,
                    m.seen_at,
                    m.created_at,
                    m.updated_at
                ])?;
                conn.prepare_cached(
                    "UPDATE chats SET latest_text = ?2, latest_sender = ?3, updated_at = ?4 WHERE id = ?1",
                )?
                .execute(params![
                    m.chat_id.to_hex(),
                    latest.text,
                    latest.sender.to_hex(),
                    m.created_at
                ])?;
                Ok(())
            })
            .await
    }

    async fn messages(&self, chat: &ObjectId, page: &HistoryPage) -> BackendResult<Vec<Message>> {
        let chat = chat.to_hex();
        let (before, limit) = (page.before.map(|b| b.to_hex()), page.limit.map(i64::from).unwrap_or(-1));
        self.with_conn(move |conn| {
            // Newest first within the page, then flipped, so `limit` keeps the newest.
            let sql = format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages
                 WHERE chat_id = ?1
                   AND (?2 IS NULL OR (created_at, id) < (SELECT created_at, id FROM messages WHERE id = ?2 AND chat_id = ?1))
                 ORDER BY created_at DESC, id DESC
                 LIMIT ?3"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut messages = stmt.query_map(params![chat, before, limit], message_from_row)?.collect::<Result<Vec<_>, _>>()?;
            messages.reverse();
            Ok(messages)
        })
        .await
    }

    async fn mark_seen(&self, chat: &ObjectId, reader: &ObjectId, at: i64) -> BackendResult<Vec<ObjectId>> {
        let (chat, reader) = (chat.to_hex(), reader.to_hex());
        self.writer
            .write(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "UPDATE messages SET seen = 1, seen_at = ?3, updated_at = ?3
                 WHERE chat_id = ?1 AND sender != ?2 AND seen = 0
                 RETURNING id",
                )?;
                let ids =
                    stmt.query_map(params![chat, reader, at], |row| id_at(row, 0))?.collect::<Result<Vec<_>, _>>()?;
                Ok(ids)
            })
            .await
    }

    async fn ping(&self) -> BackendResult<()> {
        self.with_conn(|conn| conn.query_row("SELECT 1", [], |_| Ok(()))).await
    }
}
