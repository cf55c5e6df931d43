//! Ephemeral state in Redis, shared by every confab instance: one round trip per
//! operation, each atomic (`SET NX PX`, a Lua script for counters).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::RwLock;

use crate::config::mask_url_password;
use crate::ports::{BackendResult, Ephemeral};

/// INCRBY, and set the window's expiry only when the counter is new (a fixed window).
const ADD: &str = r"
local n = redis.call('INCRBY', KEYS[1], ARGV[2])
if n == tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
";

pub struct RedisEphemeral {
    connection: Arc<RwLock<Option<ConnectionManager>>>,
    prefix: String,
    shown_url: String,
    add: redis::Script,
}

fn millis(ttl: Duration) -> u64 {
    (ttl.as_millis() as u64).max(1)
}

impl RedisEphemeral {
    /// Connects in the background: start-up does not wait for (or fail on) an
    /// unreachable Redis; operations answer "unavailable" until it is reached.
    pub fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).context("redis_url is not a valid Redis URL")?;
        let connection = Arc::new(RwLock::new(None));
        let shown_url = mask_url_password(url);
        tokio::spawn(connect_loop(client, connection.clone(), shown_url.clone()));
        Ok(Self { connection, prefix: prefix.to_string(), shown_url, add: redis::Script::new(ADD) })
    }

    /// Waits until connected (for tests and start-up checks).
    pub async fn wait_connected(&self, timeout: Duration) -> BackendResult<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.connection.read().await.is_none() {
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "Redis at {} not reachable", self.shown_url);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    async fn conn(&self) -> BackendResult<ConnectionManager> {
        self.connection.read().await.clone().ok_or_else(|| anyhow!("Redis at {} is not connected", self.shown_url))
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    pub fn describe(&self) -> String {
        format!("redis ({})", self.shown_url)
    }
}

async fn connect_loop(client: redis::Client, slot: Arc<RwLock<Option<ConnectionManager>>>, shown: String) {
    // Reconnects within about two seconds of Redis coming back (the default backoff can
    // leave it waiting far longer after an outage of a few seconds).
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(3)))
        .set_response_timeout(Some(Duration::from_secs(3)))
        .set_min_delay(Duration::from_millis(100))
        .set_max_delay(Duration::from_secs(2));
    let mut delay = Duration::from_millis(200);
    loop {
        match ConnectionManager::new_with_config(client.clone(), config.clone()).await {
            Ok(manager) => {
                *slot.write().await = Some(manager);
                tracing::info!("connected to Redis at {shown}");
                return;
            }
            Err(e) => {
                tracing::error!("Redis at {shown} is unreachable ({e}); retrying in {delay:?}");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
}

#[async_trait]
impl Ephemeral for RedisEphemeral {
    async fn set(&self, key: &str, value: &str, ttl: Duration) -> BackendResult<()> {
        let mut c = self.conn().await?;
        redis::cmd("SET").arg(self.key(key)).arg(value).arg("PX").arg(millis(ttl)).query_async::<()>(&mut c).await?;
        Ok(())
    }

    async fn set_if_absent(&self, key: &str, value: &str, ttl: Duration) -> BackendResult<bool> {
        let mut c = self.conn().await?;
        let set: Option<String> = redis::cmd("SET")
            .arg(self.key(key))
            .arg(value)
            .arg("NX")
            .arg("PX")
            .arg(millis(ttl))
            .query_async(&mut c)
            .await?;
        Ok(set.is_some())
    }

    async fn get(&self, key: &str) -> BackendResult<Option<String>> {
        let mut c = self.conn().await?;
        Ok(redis::cmd("GET").arg(self.key(key)).query_async(&mut c).await?)
    }

    async fn delete(&self, key: &str) -> BackendResult<bool> {
        let mut c = self.conn().await?;
        let removed: u64 = redis::cmd("DEL").arg(self.key(key)).query_async(&mut c).await?;
        Ok(removed > 0)
    }

    async fn add(&self, key: &str, by: u64, ttl: Duration) -> BackendResult<u64> {
        anyhow::ensure!(by > 0, "add needs a positive amount");
        let mut c = self.conn().await?;
        Ok(self.add.key(self.key(key)).arg(millis(ttl)).arg(by).invoke_async(&mut c).await?)
    }

    async fn get_many(&self, keys: &[String]) -> BackendResult<Vec<Option<String>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut c = self.conn().await?;
        let mut mget = redis::cmd("MGET");
        for key in keys {
            mget.arg(self.key(key));
        }
        Ok(mget.query_async(&mut c).await?)
    }

    async fn ping(&self) -> BackendResult<()> {
        let mut c = self.conn().await?;
        redis::cmd("PING").query_async::<String>(&mut c).await?;
        Ok(())
    }
}
