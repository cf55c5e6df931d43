//! The embedded store: one SQLite file in `data_dir`, WAL mode so readers never wait for
//! the writer and several confab processes on one host can share the file.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use r2d2::Pool;
use r2d2_sqlite::rusqlite::{self, params, OptionalExtension, Row};
use r2d2_sqlite::SqliteConnectionManager;

use crate::domain::{now_ms, Email, ObjectId, User};
use crate::ports::{BackendResult, Store};

/// Ordered schema steps; `PRAGMA user_version` records how many have run.
const MIGRATIONS: &[&str] = &[r#"
    CREATE TABLE users (
        id            TEXT PRIMARY KEY NOT NULL,
        name          TEXT NOT NULL,
        email         TEXT NOT NULL UNIQUE,
        created_at    INTEGER NOT NULL,
        updated_at    INTEGER NOT NULL,
        token_version INTEGER NOT NULL DEFAULT 0
    );
    "#];

pub struct SqliteStore {
    pool: Pool<SqliteConnectionManager>,
}

impl SqliteStore {
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let manager = SqliteConnectionManager::file(path).with_init(|conn| {
            conn.busy_timeout(Duration::from_secs(5))?;
            conn.execute_batch(
                "PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = NORMAL;
                 PRAGMA foreign_keys = ON;",
            )
        });
        let pool = Pool::builder()
            .max_size(8)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(5))
            .build(manager)
            .with_context(|| format!("opening SQLite database {}", path.display()))?;
        migrate(&mut *pool.get()?).context("migrating SQLite schema")?;
        Ok(Self { pool })
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

fn user_from_row(row: &Row<'_>) -> rusqlite::Result<User> {
    let id: String = row.get(0)?;
    let email: String = row.get(2)?;
    let corrupt = |what: &str, value: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            format!("stored {what} {value:?} is invalid").into(),
        )
    };
    Ok(User {
        id: ObjectId::parse(&id).map_err(|_| corrupt("user id", &id))?,
        name: row.get(1)?,
        email: Email::parse(&email).map_err(|_| corrupt("email", &email))?,
        created_at: row.get(3)?,
        updated_at: row.get(4)?,
        token_version: row.get(5)?,
    })
}

fn select_user(conn: &rusqlite::Connection, id: &str) -> rusqlite::Result<Option<User>> {
    conn.query_row(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"), [id], user_from_row).optional()
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
        self.with_conn(move |conn| select_user(conn, &id)).await
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

    async fn ping(&self) -> BackendResult<()> {
        self.with_conn(|conn| conn.query_row("SELECT 1", [], |_| Ok(()))).await
    }
}
