//! What the admin console shows, assembled from the live state: who is online where, the
//! mail queue, login and message traffic, recent mail failures and backend health; and
//! the live view, which pushes a new snapshot whenever any of that changes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{self, Stream};
use poem_openapi::Object;
use tokio_util::sync::CancellationToken;

use super::AdminService;
use crate::activity::{MailFailure, Series, Timeline, KINDS, MINUTES_KEPT};
use crate::domain::{now_ms, ObjectId};
use crate::ports::OnlineUser;

/// Online users listed in full; beyond this only the count is sent, so a large site's
/// console stays light.
pub const ONLINE_LISTED: usize = 200;

/// How often the live view looks for changes; it pushes only when something changed.
const LOOK_EVERY: Duration = Duration::from_secs(1);
/// Backend pings cost a round trip each (Cloudinary's is remote), so they are refreshed
/// less often than the rest.
const BACKENDS_EVERY: Duration = Duration::from_secs(15);

/// Everything the console shows, as of `generatedAt`.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct Snapshot {
    pub instance: String,
    pub version: String,
    /// ms since the epoch, as is every time here.
    pub started_at: i64,
    pub generated_at: i64,
    /// Users online on any instance.
    pub online_count: u64,
    /// The first 200 of them.
    pub online: Vec<OnlineEntry>,
    /// Socket.IO connections open on this instance.
    pub connections: i64,
    pub mail_queue: QueueView,
    /// Login and message traffic per minute, across every instance.
    pub traffic: Timeline,
    /// Why `traffic` is all zeros, when its store could not be read.
    pub traffic_error: Option<String>,
    /// This instance's latest mail failures, newest first.
    pub mail_failures: Vec<MailFailure>,
    pub backends: Vec<BackendView>,
}

#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct OnlineEntry {
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    /// Names of the instances the user has sockets on.
    pub instances: Vec<String>,
    /// Known for connections to this instance only.
    pub since: Option<i64>,
    pub sockets: Option<u32>,
}

#[derive(Debug, Clone, Object, PartialEq, Eq)]
#[oai(rename_all = "camelCase")]
pub struct QueueView {
    pub backend: String,
    pub depth: Option<u64>,
    pub dead_letters: Option<u64>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Object)]
pub struct BackendView {
    /// `store`, `ephemeral`, `mail_queue`, `media` or `realtime`.
    pub name: String,
    pub backend: String,
    pub ok: bool,
    pub error: Option<String>,
}

/// The parts of the state that, when unchanged, mean the console has nothing new to show.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    traffic: Result<Timeline, String>,
    failures: u64,
    online: Vec<OnlineUser>,
    connections: i64,
    queue: QueueView,
}

/// Names and emails of online users, so a live view reads each user once rather than on
/// every push; forgotten every minute, so renames show up.
struct UserCache {
    known: HashMap<ObjectId, Option<(String, String)>>,
    since: Instant,
}

const USER_CACHE_TTL: Duration = Duration::from_secs(60);

impl Default for UserCache {
    fn default() -> Self {
        Self { known: HashMap::new(), since: Instant::now() }
    }
}

impl AdminService {
    async fn backends(&self) -> Vec<BackendView> {
        self.instance
            .health
            .check()
            .await
            .into_iter()
            .map(|c| BackendView {
                name: c.name.to_string(),
                backend: c.backend,
                ok: c.error.is_none(),
                error: c.error,
            })
            .collect()
    }

    async fn queue_view(&self) -> QueueView {
        let (depth, dead) = tokio::join!(self.mail_queue.depth(), self.mail_queue.dead_letters());
        let error = depth.as_ref().err().or(dead.as_ref().err()).map(|e| format!("{e:#}"));
        let backend = self.instance.health.mail_queue_description().to_string();
        QueueView { backend, depth: depth.ok(), dead_letters: dead.ok(), error }
    }

    /// The cheap reading taken every second to decide whether to build and push a snapshot.
    async fn fingerprint(&self) -> Fingerprint {
        let online = match self.connections.online().await {
            Ok(online) => online,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "admin console: could not list online users");
                Vec::new()
            }
        };
        let activity = self.telemetry.activity();
        let traffic = activity.timeline(self.ephemeral.as_ref()).await.map_err(|e| format!("{e:#}"));
        Fingerprint {
            traffic,
            failures: activity.failures_version(),
            online,
            connections: self.telemetry.connections(),
            queue: self.queue_view().await,
        }
    }

    async fn name_and_email(&self, users: &mut UserCache, id: &ObjectId) -> Option<(String, String)> {
        if users.since.elapsed() > USER_CACHE_TTL {
            *users = UserCache::default();
        }
        if let Some(known) = users.known.get(id) {
            return known.clone();
        }
        // A failed read is not remembered: the next push tries again.
        let user = self.store.user_by_id(id).await.ok()?;
        let found = user.map(|u| (u.name, u.email.as_str().to_string()));
        users.known.insert(*id, found.clone());
        found
    }

    async fn snapshot(&self, fingerprint: &Fingerprint, backends: Vec<BackendView>, users: &mut UserCache) -> Snapshot {
        let mut online = Vec::with_capacity(fingerprint.online.len().min(ONLINE_LISTED));
        for entry in fingerprint.online.iter().take(ONLINE_LISTED) {
            let user = self.name_and_email(users, &entry.user).await;
            let local = self.instance.presence.local(&entry.user);
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
        Snapshot {
            instance: self.instance.name.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: self.instance.started_at,
            generated_at: now_ms(),
            online_count: fingerprint.online.len() as u64,
            online,
            connections: fingerprint.connections,
            mail_queue: fingerprint.queue.clone(),
            traffic: fingerprint.traffic.clone().unwrap_or_else(|_| empty_timeline()),
            traffic_error: fingerprint.traffic.clone().err(),
            mail_failures: self.telemetry.activity().recent_failures(),
            backends,
        }
    }

    /// The console's state now.
    pub async fn overview(&self) -> Snapshot {
        let (fingerprint, backends) = tokio::join!(self.fingerprint(), self.backends());
        self.snapshot(&fingerprint, backends, &mut UserCache::default()).await
    }

    /// Snapshots, the first at once and then whenever what they show changes, for as
    /// long as the session behind `secret` stays open and `stopping` is not cancelled.
    pub fn live(self: Arc<Self>, secret: String, stopping: CancellationToken) -> impl Stream<Item = Snapshot> + Send {
        let watch = Watch { admin: self, secret, stopping, last: None, backends: Vec::new(), backends_at: None };
        stream::unfold((watch, UserCache::default()), |(mut w, mut users)| async move {
            let snapshot = w.next_change(&mut users).await?;
            Some((snapshot, (w, users)))
        })
    }
}

struct Watch {
    admin: Arc<AdminService>,
    secret: String,
    stopping: CancellationToken,
    last: Option<Fingerprint>,
    backends: Vec<BackendView>,
    backends_at: Option<tokio::time::Instant>,
}

impl Watch {
    async fn next_change(&mut self, users: &mut UserCache) -> Option<Snapshot> {
        loop {
            if self.stopping.is_cancelled() || !matches!(self.admin.session(&self.secret).await, Ok(Some(_))) {
                return None;
            }
            let backends_due = self.backends_at.is_none_or(|at| at.elapsed() >= BACKENDS_EVERY);
            let fingerprint = self.admin.fingerprint().await;
            if backends_due || self.last.as_ref() != Some(&fingerprint) {
                if backends_due {
                    self.backends = self.admin.backends().await;
                    self.backends_at = Some(tokio::time::Instant::now());
                }
                let snapshot = self.admin.snapshot(&fingerprint, self.backends.clone(), users).await;
                self.last = Some(fingerprint);
                return Some(snapshot);
            }
            tokio::select! {
                _ = self.stopping.cancelled() => return None,
                _ = tokio::time::sleep(LOOK_EVERY) => {}
            }
        }
    }
}

fn empty_timeline() -> Timeline {
    let from = (now_ms() / 60_000 - MINUTES_KEPT as i64 + 1) * 60_000;
    let series = KINDS
        .iter()
        .map(|k| Series { name: k.name().to_string(), per_minute: vec![0; MINUTES_KEPT], total: 0 })
        .collect();
    Timeline { from, series }
}
