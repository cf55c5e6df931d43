//! What the admin console shows, assembled from the live state: who is online where, the
//! mail queue, login and message traffic, recent mail failures and backend health.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::activity::{MailFailure, Series, Timeline, KINDS, MINUTES_KEPT};
use crate::app::AppState;
use crate::domain::{now_ms, ObjectId};
use crate::ports::OnlineUser;

/// Online users listed in full; beyond this only the count is sent, so a large site's
/// console stays light.
pub const ONLINE_LISTED: usize = 200;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub instance: String,
    pub version: &'static str,
    pub started_at: i64,
    pub generated_at: i64,
    pub online_count: usize,
    pub online: Vec<OnlineEntry>,
    /// Socket.IO connections open on this instance.
    pub connections: i64,
    pub mail_queue: QueueView,
    /// Login and message traffic per minute, across every instance.
    pub traffic: Timeline,
    /// Why `traffic` is all zeros, when its store could not be read.
    pub traffic_error: Option<String>,
    pub mail_failures: Vec<MailFailure>,
    pub backends: Vec<BackendView>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OnlineEntry {
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub instances: Vec<String>,
    /// Known for connections to this instance only.
    pub since: Option<i64>,
    pub sockets: Option<u32>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct QueueView {
    pub backend: String,
    pub depth: Option<u64>,
    pub dead_letters: Option<u64>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackendView {
    pub name: &'static str,
    pub backend: String,
    pub ok: bool,
    pub error: Option<String>,
}

/// The parts of the state that, when unchanged, mean the console has nothing new to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    traffic: Result<Timeline, String>,
    failures: u64,
    online: Vec<OnlineUser>,
    connections: i64,
    queue: QueueView,
}

pub async fn backends(state: &AppState) -> Vec<BackendView> {
    state
        .check_backends()
        .await
        .into_iter()
        .map(|c| BackendView { name: c.name, backend: c.backend, ok: c.error.is_none(), error: c.error })
        .collect()
}

async fn queue_view(state: &AppState) -> QueueView {
    let (depth, dead) = tokio::join!(state.mail_queue.depth(), state.mail_queue.dead_letters());
    let error = depth.as_ref().err().or(dead.as_ref().err()).map(|e| format!("{e:#}"));
    QueueView { backend: state.mail_queue_description().to_string(), depth: depth.ok(), dead_letters: dead.ok(), error }
}

/// The cheap reading taken every second to decide whether to build and push a snapshot.
pub async fn fingerprint(state: &AppState) -> Fingerprint {
    let online = match state.connections.online().await {
        Ok(online) => online,
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "admin console: could not list online users");
            Vec::new()
        }
    };
    let traffic = state.telemetry.activity().timeline(state.ephemeral.as_ref()).await.map_err(|e| format!("{e:#}"));
    Fingerprint {
        traffic,
        failures: state.telemetry.activity().failures_version(),
        online,
        connections: state.telemetry.connections(),
        queue: queue_view(state).await,
    }
}

/// Names and emails of online users, so a live view reads each user once rather than on
/// every push; forgotten every minute, so renames show up.
pub struct UserCache {
    known: HashMap<ObjectId, Option<(String, String)>>,
    since: Instant,
}

const USER_CACHE_TTL: Duration = Duration::from_secs(60);

impl Default for UserCache {
    fn default() -> Self {
        Self { known: HashMap::new(), since: Instant::now() }
    }
}

impl UserCache {
    async fn name_and_email(&mut self, state: &AppState, id: &ObjectId) -> Option<(String, String)> {
        if self.since.elapsed() > USER_CACHE_TTL {
            *self = Self::default();
        }
        if let Some(known) = self.known.get(id) {
            return known.clone();
        }
        // A failed read is not remembered: the next push tries again.
        let user = state.store.user_by_id(id).await.ok()?;
        let found = user.map(|u| (u.name, u.email.as_str().to_string()));
        self.known.insert(*id, found.clone());
        found
    }
}

pub async fn snapshot(
    state: &Arc<AppState>,
    fingerprint: &Fingerprint,
    backends: Vec<BackendView>,
    users: &mut UserCache,
) -> Snapshot {
    let mut online = Vec::with_capacity(fingerprint.online.len().min(ONLINE_LISTED));
    for entry in fingerprint.online.iter().take(ONLINE_LISTED) {
        let user = users.name_and_email(state, &entry.user).await;
        let local = state.presence.local(&entry.user);
        let (name, email) = user.map_or((None, None), |(n, e)| (Some(n), Some(e)));
        online.push(OnlineEntry {
            id: entry.user.to_hex(),
            name,
            email,
            instances: entry.instances.clone(),
            since: local.map(|l| l.since),
            sockets: local.map(|l| l.connections),
        });
    }
    let a = state.telemetry.activity();
    Snapshot {
        instance: state.settings.instance.clone(),
        version: env!("CARGO_PKG_VERSION"),
        started_at: state.started_at,
        generated_at: now_ms(),
        online_count: fingerprint.online.len(),
        online,
        connections: fingerprint.connections,
        mail_queue: fingerprint.queue.clone(),
        traffic: fingerprint.traffic.clone().unwrap_or_else(|_| empty_timeline()),
        traffic_error: fingerprint.traffic.clone().err(),
        mail_failures: a.recent_failures(),
        backends,
    }
}

fn empty_timeline() -> Timeline {
    let from = (now_ms() / 60_000 - MINUTES_KEPT as i64 + 1) * 60_000;
    let series = KINDS.iter().map(|k| Series { name: k.name(), per_minute: vec![0; MINUTES_KEPT], total: 0 }).collect();
    Timeline { from, series }
}
