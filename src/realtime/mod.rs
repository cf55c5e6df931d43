//! Socket.IO: identity, chat rooms, typing relays, presence broadcasts, and the
//! [`Notifier`] the chat service uses to push messages and seen receipts.
//!
//! The pieces: `identity` verifies the handshake, `events` runs each connection, `rooms`
//! names the rooms they share, `presence` debounces the online list, `ordered` keeps a
//! socket's events in order. With `redis_url` set, socketioxide's Redis adapter carries
//! emits and room queries to every instance, so the online list (the `user:` rooms of
//! the whole cluster) and messages span them.

mod bridge;
pub mod contract;
mod events;
mod identity;
mod online_list;
mod ordered;
pub mod presence;
mod redis_driver;
mod rooms;
mod typing;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use futures_util::future::BoxFuture;
use poem::endpoint::BoxEndpoint;
use poem::{EndpointExt, Response};
use serde_json::{json, Value};
use socketioxide::adapter::Adapter;
use socketioxide::extract::{Data, SocketRef};
use socketioxide::handler::ConnectHandler;
use socketioxide::SocketIo;
use socketioxide_core::adapter::{DefinedAdapter, Spawnable};
use socketioxide_redis::{CustomRedisAdapter, RedisAdapterConfig, RedisAdapterCtr};

pub use bridge::SocketIoEndpoint;
use presence::Presence;
pub use redis_driver::ResilientRedisDriver as AdapterLink;
use rooms::{user_room, viewing_room, AT_ROOM_PREFIX};

use crate::app::AppState;
use crate::domain::{Message, ObjectId};
use crate::ports::{BackendResult, Connections, Notifier, OnlineUser};
use crate::telemetry::Telemetry;
use crate::wire::MessageJson;

/// The verified user of a connection, kept in the socket's extensions.
#[derive(Debug, Clone, Copy)]
pub struct SocketUser(pub ObjectId);

/// The Socket.IO server, whichever adapter it runs on.
pub struct Realtime {
    pub endpoint: BoxEndpoint<'static, Response>,
    pub notifier: Arc<dyn Notifier>,
    pub connections: Arc<dyn Connections>,
    attach: Box<dyn FnOnce(Arc<AppState>, Arc<Presence>) + Send>,
    close: Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send>,
    pub adapter: String,
    /// The Redis adapter's connection, for readiness checks; `None` in memory.
    pub link: Option<AdapterLink>,
}

impl Realtime {
    /// Attaches the namespace handlers and starts the presence broadcaster.
    pub fn attach(&mut self, state: Arc<AppState>, presence: Arc<Presence>) {
        let attach = std::mem::replace(&mut self.attach, Box::new(|_, _| {}));
        attach(state, presence);
    }

    /// The endpoint to mount at `/socket.io`, and the future that closes every
    /// connection (poem's graceful shutdown does not track upgraded ones).
    pub fn into_parts(self) -> (BoxEndpoint<'static, Response>, BoxFuture<'static, ()>) {
        (self.endpoint, (self.close)())
    }
}

fn assemble<A: Adapter + DefinedAdapter>(
    svc: socketioxide::service::SocketIoService<bridge::NotFound, A>,
    io: SocketIo<A>,
    adapter: String,
    link: Option<AdapterLink>,
    options: &Options,
) -> Realtime {
    let (attach_io, close_io) = (io.clone(), io.clone());
    Realtime {
        endpoint: SocketIoEndpoint::new(svc, options.max_payload).boxed(),
        notifier: Arc::new(SocketNotifier::new(io.clone(), options.deadline, options.telemetry.clone())),
        connections: Arc::new(SocketConnections { io }),
        attach: Box::new(move |state, presence| register(&attach_io, state, presence)),
        close: Box::new(move || Box::pin(async move { close_io.close().await })),
        adapter,
        link,
    }
}

/// How the Socket.IO server is built.
pub struct Options<'a> {
    /// Redis for the adapter that spans instances; in memory when `None`.
    pub redis_url: Option<&'a str>,
    pub key_prefix: &'a str,
    /// Bounds every cluster call (publish, room queries).
    pub deadline: Duration,
    /// Largest packet a client may send, on either transport, before or after connecting.
    pub max_payload: usize,
    pub telemetry: Arc<Telemetry>,
}

fn builder(options: &Options) -> socketioxide::SocketIoBuilder {
    let limit = options.max_payload;
    // Each WebSocket keeps a read buffer of this size for its life (4 KiB by default);
    // clients send small events, and a rare larger one just takes a few more reads.
    const WS_READ_BUFFER: usize = 1024;
    SocketIo::builder()
        .max_payload(limit as u64)
        .ws_max_message_size(limit)
        .ws_max_frame_size(limit)
        .ws_read_buffer_size(WS_READ_BUFFER)
}

/// Builds the Socket.IO server: in-memory, or on socketioxide's Redis adapter when
/// `redis_url` is set (waiting, with one log line per attempt, until Redis answers).
pub async fn build(options: Options<'_>) -> anyhow::Result<Realtime> {
    let (key_prefix, deadline) = (options.key_prefix, options.deadline);
    let Some(url) = options.redis_url else {
        let (svc, io) = builder(&options).build_with_inner_svc(bridge::NotFound);
        return Ok(assemble(svc, io, "in-memory".into(), None, &options));
    };
    // The adapter needs RESP3 (pub/sub on a multiplexed connection).
    let url = if url.contains("protocol=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&protocol=resp3")
    } else {
        format!("{url}?protocol=resp3")
    };
    let client = redis::Client::open(url.as_str()).context("redis_url is not a valid Redis URL")?;
    let shown = crate::config::mask_url_password(&url);
    let mut delay = Duration::from_millis(200);
    let link = loop {
        match AdapterLink::connect(client.clone(), deadline).await {
            Ok(link) => break link,
            Err(e) => {
                tracing::error!(
                    "Socket.IO Redis adapter: Redis at {shown} is unreachable ({e}); retrying in {delay:?}"
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    };
    // Channels under the deployment's key prefix, so deployments sharing a Redis stay apart.
    let config = RedisAdapterConfig::new().with_prefix(format!("{key_prefix}socket.io")).with_request_timeout(deadline);
    let ctr = RedisAdapterCtr::new_with_driver(link.clone(), config);
    let (svc, io) = builder(&options)
        .with_adapter::<CustomRedisAdapter<_, AdapterLink>>(ctr)
        .build_with_inner_svc(bridge::NotFound);
    Ok(assemble(svc, io, format!("redis ({shown})"), Some(link), &options))
}

/// The pushes the REST handlers need, over Socket.IO. A push that cannot be sent (the
/// cluster link is down) is counted and logged, never an error for the request that
/// caused it: the message is stored either way.
pub struct SocketNotifier<A: Adapter> {
    io: SocketIo<A>,
    deadline: Duration,
    telemetry: Arc<Telemetry>,
}

impl<A: Adapter> SocketNotifier<A> {
    pub fn new(io: SocketIo<A>, deadline: Duration, telemetry: Arc<Telemetry>) -> Self {
        Self { io, deadline, telemetry }
    }

    async fn emit(&self, event: &'static str, rooms: Vec<String>, payload: &Value) -> bool {
        let outcome = tokio::time::timeout(self.deadline, self.io.to(rooms).emit(event, payload)).await;
        let error = match outcome {
            Ok(Ok(())) => return true,
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {:?}", self.deadline),
        };
        self.telemetry.broadcast_failed(event);
        tracing::warn!(error = %error, "{event} broadcast failed");
        false
    }
}

#[async_trait]
impl<A: Adapter> Notifier for SocketNotifier<A> {
    async fn is_viewing(&self, user: &ObjectId, chat: &ObjectId) -> bool {
        let query = tokio::time::timeout(self.deadline, self.io.to(viewing_room(chat, user)).fetch_sockets()).await;
        match query {
            Ok(Ok(sockets)) => !sockets.is_empty(),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "could not ask who is viewing a chat; treating as not seen");
                false
            }
            Err(_) => {
                tracing::warn!("no answer within {:?} on who is viewing a chat; treating as not seen", self.deadline);
                false
            }
        }
    }

    async fn message_created(&self, message: &Message, members: [ObjectId; 2]) {
        let payload = MessageJson::from(message).into_value();
        // One broadcast to the union of rooms: every connection gets it exactly once.
        let rooms = vec![message.chat_id.to_hex(), user_room(&members[0]), user_room(&members[1])];
        if self.emit(contract::NEW_MESSAGE, rooms, &payload).await {
            self.telemetry.message_delivered();
        }
    }

    async fn messages_seen(&self, notify: &ObjectId, chat: &ObjectId, seen_by: &ObjectId, ids: &[ObjectId]) {
        let payload = json!({
            "chatId": chat.to_hex(),
            "seenBy": seen_by.to_hex(),
            "messageIds": ids.iter().map(ObjectId::to_hex).collect::<Vec<_>>(),
        });
        self.emit(contract::MESSAGES_SEEN, vec![user_room(notify)], &payload).await;
    }
}

/// Live connections for the admin console, across the cluster through the adapter.
pub struct SocketConnections<A: Adapter> {
    io: SocketIo<A>,
}

#[async_trait]
impl<A: Adapter> Connections for SocketConnections<A> {
    async fn online(&self) -> BackendResult<Vec<OnlineUser>> {
        let rooms = self.io.rooms().await.map_err(|e| anyhow::anyhow!("collecting rooms: {e}"))?;
        let mut by_user: std::collections::BTreeMap<ObjectId, Vec<String>> = Default::default();
        for room in &rooms {
            let Some((user, instance)) = room.strip_prefix(AT_ROOM_PREFIX).and_then(|r| r.split_once('@')) else {
                continue;
            };
            if let Ok(user) = ObjectId::parse(user) {
                by_user.entry(user).or_default().push(instance.to_string());
            }
        }
        Ok(by_user
            .into_iter()
            .map(|(user, mut instances)| {
                instances.sort();
                OnlineUser { user, instances }
            })
            .collect())
    }

    async fn disconnect_user(&self, user: &ObjectId) -> BackendResult<usize> {
        let room = user_room(user);
        let open = self.io.to(room.clone()).fetch_sockets().await.map_err(|e| anyhow::anyhow!("{e}"))?.len();
        self.io.to(room).disconnect().await.map_err(|e| anyhow::anyhow!("disconnecting: {e:?}"))?;
        Ok(open)
    }
}

fn register<A: Adapter + DefinedAdapter>(io: &SocketIo<A>, state: Arc<AppState>, presence: Arc<Presence>) {
    let on_connect = {
        let (state, presence) = (state.clone(), presence.clone());
        move |socket: SocketRef<A>| {
            events::admitted(&socket, &state, &presence);
            std::future::ready(())
        }
    };
    let authenticate = {
        let (state, presence) = (state.clone(), presence.clone());
        move |socket: SocketRef<A>, Data(auth): Data<Value>| {
            let (state, presence) = (state.clone(), presence.clone());
            async move {
                identity::authenticate(&socket, &auth, &state).await?;
                events::attach(&socket, &auth, &state, &presence);
                Ok::<_, identity::Refused>(())
            }
        }
    };
    io.ns("/", on_connect.with(authenticate)).spawn();
    let plural_too = state.settings.config.presence_plural_event;
    tokio::spawn(online_list::broadcast(io.clone(), presence, plural_too));
}
