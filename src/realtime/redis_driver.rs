//! The pub/sub link between instances for socketioxide's Redis adapter, on a connection
//! that survives Redis outages.
//!
//! socketioxide-redis's own driver holds one multiplexed connection for the life of the
//! process: after a Redis restart every publish fails with "broken pipe" and no instance
//! hears another again until it is restarted. This driver sits on redis's
//! `ConnectionManager` instead, which reconnects in the background and subscribes to the
//! adapter's channels again, so delivery resumes by itself once Redis is back. Every
//! command has a response timeout, so a partitioned Redis costs a bounded wait, not a
//! hung request.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, FromRedisValue, PushInfo, PushKind};
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use tokio::sync::mpsc;

#[derive(Debug)]
pub struct DriverError(redis::RedisError);

impl fmt::Display for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for DriverError {}

impl From<redis::RedisError> for DriverError {
    fn from(e: redis::RedisError) -> Self {
        Self(e)
    }
}

type Handlers = Arc<RwLock<HashMap<String, mpsc::Sender<ChanItem>>>>;

#[derive(Clone)]
pub struct ResilientRedisDriver {
    conn: ConnectionManager,
    handlers: Handlers,
}

fn route(push: PushInfo, handlers: &Handlers) {
    if !matches!(push.kind, PushKind::Message | PushKind::SMessage) || push.data.len() < 2 {
        return;
    }
    let mut data = push.data.into_iter();
    let (Some(channel), Some(payload)) = (data.next(), data.next()) else { return };
    let (Ok(channel), Ok(payload)) = (String::from_redis_value(channel), Vec::<u8>::from_redis_value(payload)) else {
        tracing::warn!("unreadable message on a Socket.IO adapter channel");
        return;
    };
    if let Some(tx) = handlers.read().expect("handlers lock").get(&channel) {
        if let Err(e) = tx.try_send((channel, payload)) {
            tracing::warn!(error = %e, "Socket.IO adapter channel is full; a cluster message was dropped");
        }
    }
}

impl ResilientRedisDriver {
    /// Connects (waiting for the first connection); `timeout` bounds every command and
    /// connection attempt.
    pub async fn connect(client: redis::Client, timeout: Duration) -> redis::RedisResult<Self> {
        let handlers: Handlers = Arc::default();
        let routed = handlers.clone();
        let config = ConnectionManagerConfig::new()
            .set_push_sender(move |push: PushInfo| {
                route(push, &routed);
                Ok::<(), std::convert::Infallible>(())
            })
            .set_automatic_resubscription()
            .set_response_timeout(Some(timeout))
            .set_connection_timeout(Some(timeout))
            .set_min_delay(Duration::from_millis(100))
            .set_max_delay(Duration::from_secs(2));
        let conn = ConnectionManager::new_with_config(client, config).await?;
        Ok(Self { conn, handlers })
    }

    /// Whether Redis answers on the adapter's connection.
    pub async fn ping(&self) -> redis::RedisResult<()> {
        redis::cmd("PING").query_async::<()>(&mut self.conn.clone()).await
    }
}

impl Driver for ResilientRedisDriver {
    type Error = DriverError;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), DriverError> {
        self.conn.clone().publish::<_, _, redis::Value>(chan, val).await?;
        Ok(())
    }

    async fn subscribe(&self, chan: String, size: usize) -> Result<MessageStream<ChanItem>, DriverError> {
        let (tx, rx) = mpsc::channel(size);
        // Registered first, so nothing published right after the SUBSCRIBE is missed.
        self.handlers.write().expect("handlers lock").insert(chan.clone(), tx);
        self.conn.clone().subscribe(chan.as_str()).await?;
        Ok(MessageStream::new(rx))
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), DriverError> {
        self.handlers.write().expect("handlers lock").remove(&chan);
        self.conn.clone().unsubscribe(chan).await?;
        Ok(())
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, DriverError> {
        let (_, count): (String, u16) =
            redis::cmd("PUBSUB").arg("NUMSUB").arg(chan).query_async(&mut self.conn.clone()).await?;
        Ok(count)
    }
}
