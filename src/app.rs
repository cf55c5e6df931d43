//! Builds the application from validated settings: backends, services, listener and the
//! supervised background tasks; and shuts them down in order.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use poem::listener::{Acceptor, AcceptorExt, BoxAcceptor, Listener, TcpListener};
use poem::{EndpointExt, Request, Server};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::backends::{Descriptions, Health, Ports};
use crate::config::Settings;
use crate::deadline::Deadline;
use crate::ephemeral::memory::MemoryEphemeral;
use crate::ephemeral::redis::RedisEphemeral;
use crate::mail::log::LogMailer;
use crate::mail::smtp::SmtpMailer;
use crate::mail::worker::{self, RetryPolicy};
use crate::media::cloudinary::Cloudinary;
use crate::media::image::ImageLimits;
use crate::media::local::LocalMedia;
use crate::ports::MediaStore;
use crate::ports::{Ephemeral, MailQueue, Mailer, Store};
use crate::queue::amqp::AmqpQueue;
use crate::queue::memory::MemoryQueue;
use crate::realtime::presence::Presence;
use crate::realtime::Realtime;
use crate::secrets;
use crate::services::admin::{AdminPolicy, AdminService, Instance};
use crate::services::auth::{AuthService, OtpPolicy};
use crate::services::chats::ChatService;
use crate::services::media::MediaService;
use crate::services::users::UserService;
use crate::store::metered::MeteredStore;
use crate::store::mongo::MongoStore;
use crate::store::sqlite::SqliteStore;
use crate::telemetry::Telemetry;

/// Everything request handlers need, shared behind one `Arc`. Handlers reach the
/// backends only through these services.
pub struct AppState {
    pub settings: Settings,
    pub auth: Arc<AuthService>,
    pub users: UserService,
    pub chats: ChatService,
    pub presence: Arc<Presence>,
    pub media: Arc<MediaService>,
    pub admin: Arc<AdminService>,
    /// Pings every backend, for `/readyz`.
    pub health: Health,
    /// What this instance counts about itself (metrics, console timeline).
    pub telemetry: Arc<Telemetry>,
    /// Cancelled when shutdown begins, so long-lived responses (the admin console's
    /// live stream) end instead of holding the graceful shutdown to its timeout.
    pub stopping: CancellationToken,
}

impl AppState {
    /// The client's address for rate limiting: the peer, or, when configured to trust a
    /// proxy, the last `X-Forwarded-For` hop: the one that proxy added. Earlier hops are
    /// whatever the client sent, so trusting them would let it pick its own address.
    pub fn client_ip(&self, req: &Request) -> Option<IpAddr> {
        if self.settings.config.trust_forwarded_for {
            let forwarded = req
                .headers()
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .next_back()
                .and_then(|v| v.trim().parse().ok());
            if forwarded.is_some() {
                return forwarded;
            }
        }
        req.remote_addr().as_socket_addr().map(|a| a.ip())
    }

    /// The origin clients reach this server at. Only for decisions about the response to
    /// this request (e.g. a `Secure` cookie): it is derived from headers, so never store it.
    pub fn public_base(&self, req: &Request) -> String {
        if let Some(url) = &self.settings.config.public_url {
            return url.trim_end_matches('/').to_string();
        }
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let trusted = self.settings.config.trust_forwarded_for;
        let proto = trusted.then(|| header("x-forwarded-proto")).flatten().unwrap_or_else(|| "http".into());
        let host = trusted
            .then(|| header("x-forwarded-host"))
            .flatten()
            .or_else(|| header("host"))
            .unwrap_or_else(|| "localhost".into());
        format!("{proto}://{host}")
    }
}

/// Keeps the gauges that reflect backend state current for `/metrics`.
async fn sample_gauges(mail_queue: Arc<dyn MailQueue>, state: Arc<AppState>) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        let depth = mail_queue.depth().await.ok();
        let dead = mail_queue.dead_letters().await.ok();
        state.telemetry.sampled(depth, dead, state.presence.online_count());
    }
}

/// Hands memory back to the system after many connections closed. glibc keeps what a
/// connection storm allocated (4.7 GB stayed resident at 10,000 sockets after every
/// client had left; `malloc_trim` took it to 32 MB), so the process would look as large
/// as its busiest minute forever.
async fn release_memory_after_disconnects(telemetry: Arc<Telemetry>) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    let mut peak = 0;
    loop {
        tick.tick().await;
        let now = telemetry.connections();
        peak = peak.max(now);
        if peak - now >= 500 && now <= peak / 2 {
            crate::memory::trim_heap();
            peak = now;
        }
    }
}

pub struct Application {
    acceptor: BoxAcceptor,
    addrs: Vec<SocketAddr>,
    state: Arc<AppState>,
    ports: Ports,
    descriptions: Descriptions,
    realtime: Realtime,
}

impl Application {
    /// Opens the backends and binds every listen address (port 0 picks a free port,
    /// which tests use).
    pub async fn build(mut settings: Settings) -> anyhow::Result<Self> {
        let config = &settings.config;
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data_dir {}", config.data_dir.display()))?;

        let (unmetered, store_description): (Arc<dyn Store>, String) = match &config.mongo_uri {
            Some(uri) => {
                let mongo = MongoStore::connect(uri).await?;
                let description = mongo.describe();
                (Arc::new(mongo), description)
            }
            None => {
                let db_path = config.data_dir.join("confab.db");
                (Arc::new(SqliteStore::open(&db_path)?), format!("sqlite ({})", db_path.display()))
            }
        };
        let telemetry = Arc::new(Telemetry::new(config.metrics_enabled));
        let deadline = Duration::from_millis(config.backend_timeout_ms);
        let unmetered: Arc<dyn Store> = Arc::new(Deadline::new(unmetered, deadline));
        let store: Arc<dyn Store> =
            if config.metrics_enabled { Arc::new(MeteredStore(unmetered, telemetry.clone())) } else { unmetered };
        let (ephemeral, ephemeral_description): (Arc<dyn Ephemeral>, String) = match &config.redis_url {
            Some(url) => {
                let redis = RedisEphemeral::connect(url, &config.redis_prefix)?;
                let description = redis.describe();
                (Arc::new(redis), description)
            }
            None => (Arc::new(MemoryEphemeral::new()), "in-process".into()),
        };
        let ephemeral: Arc<dyn Ephemeral> = Arc::new(Deadline::new(ephemeral, deadline));
        let (mail_queue, mail_queue_description): (Arc<dyn MailQueue>, String) = match &config.amqp_url {
            Some(url) => {
                let amqp = AmqpQueue::new(url, &config.amqp_queue, config.amqp_prefetch);
                let description = amqp.describe();
                (Arc::new(amqp), description)
            }
            None => (Arc::new(MemoryQueue::new(config.mail_queue_capacity)), "in-process".into()),
        };
        let mail_queue: Arc<dyn MailQueue> = Arc::new(Deadline::new(mail_queue, deadline));
        let mailer: Arc<dyn Mailer> = match &config.smtp_url {
            Some(url) => Arc::new(SmtpMailer::new(url, settings.mail_from.clone())?),
            None => Arc::new(LogMailer),
        };
        let mut descriptions = Descriptions {
            store: store_description,
            ephemeral: ephemeral_description,
            mail_queue: mail_queue_description,
            mailer: mailer.describe(),
            realtime: None,
        };

        let jwt_secret = secrets::jwt_secret(&config.data_dir, config.jwt_secret.as_deref())?;
        let (admin, new_admin_token) = secrets::admin_credential(&config.data_dir, config.admin_token.as_deref())?;
        if let Some(token) = new_admin_token {
            // Only its hash is kept. On a terminal it is shown there, once; otherwise the
            // output goes to a log (the journal, `docker logs`) that others may read, so
            // it is handed over in a file only the service user can read.
            if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                eprintln!(
                    "\n  confab admin token (shown once, only its hash is stored in {}):\n\n      {token}\n\n  \
                     Paste it into the admin console at /admin. Lost it? Run `confab admin-token --reset`.\n",
                    config.data_dir.display()
                );
            } else {
                let file = secrets::hand_over_admin_token(&config.data_dir, &token)?;
                eprintln!(
                    "\n  confab admin token written to {} (readable by this user only; it is in no log).\n  \
                     Paste it into the admin console at /admin, then delete the file. Lost it? Run \
                     `confab admin-token --reset`.\n",
                    file.display()
                );
            }
        }
        let policy = OtpPolicy {
            ttl: Duration::from_secs(config.otp_ttl_secs),
            max_attempts: config.otp_max_attempts,
            per_ip_limit: config.login_ip_limit,
            per_ip_window: Duration::from_secs(config.login_ip_window_secs),
            ..OtpPolicy::default()
        };
        let auth = Arc::new(AuthService::new(
            store.clone(),
            ephemeral.clone(),
            mail_queue.clone(),
            &jwt_secret,
            policy,
            telemetry.clone(),
        ));
        let users = UserService::new(store.clone(), auth.clone());
        let admin_policy = AdminPolicy {
            credential: admin,
            admin_emails: settings.admin_emails.clone(),
            session_ttl: Duration::from_secs(config.admin_session_secs),
        };

        let mut addrs = Vec::new();
        let mut acceptor: Option<BoxAcceptor> = None;
        for addr in &settings.listen {
            let bound =
                TcpListener::bind(*addr).into_acceptor().await.with_context(|| format!("listening on {addr}"))?;
            addrs.extend(bound.local_addr().iter().filter_map(|a| a.as_socket_addr().copied()));
            acceptor = Some(match acceptor {
                None => bound.boxed(),
                Some(previous) => previous.combine(bound).boxed(),
            });
        }
        let acceptor = acceptor.context("no listen address")?;
        if settings.config.instance_name.is_none() {
            // Named again from the bound port: a configured port 0 picks a free one.
            settings.instance =
                crate::config::default_instance_name(addrs.first().map(|a| a.port()).unwrap_or_default());
        }
        let media_store: Arc<dyn MediaStore> = match &config.cloudinary_url {
            Some(url) => Arc::new(Cloudinary::from_url(url)?),
            None => Arc::new(LocalMedia::open(&config.data_dir.join("media"), config.public_url.as_deref())?),
        };
        let limits = ImageLimits {
            max_bytes: config.max_image_bytes,
            max_dimension: config.max_image_dimension,
            ..ImageLimits::default()
        };
        let media = Arc::new(MediaService::new(media_store, limits));
        let mut realtime = crate::realtime::build(crate::realtime::Options {
            redis_url: config.redis_url.as_deref(),
            key_prefix: &config.redis_prefix,
            deadline,
            max_payload: config.socket_max_payload_bytes,
            telemetry: telemetry.clone(),
        })
        .await?;
        descriptions.realtime =
            realtime.link.clone().map(|link| (format!("socket.io adapter, {}", realtime.adapter), link));
        let chats = ChatService::new(store.clone(), realtime.notifier.clone(), media.clone(), telemetry.clone());
        let presence = Arc::new(Presence::default());
        let ports = Ports {
            store,
            ephemeral,
            mail_queue,
            mailer,
            media: media.store().clone(),
            connections: realtime.connections.clone(),
        };
        let health = Health::new(ports.clone(), descriptions.clone());
        let instance = Instance {
            name: settings.instance.clone(),
            started_at: crate::domain::now_ms(),
            presence: presence.clone(),
            health: health.clone(),
        };
        let admin = Arc::new(AdminService::new(&ports, auth.clone(), admin_policy, instance, telemetry.clone()));
        let state = Arc::new(AppState {
            settings,
            auth,
            users,
            chats,
            presence: presence.clone(),
            media,
            admin,
            health,
            telemetry,
            stopping: CancellationToken::new(),
        });
        realtime.attach(state.clone(), presence);
        Ok(Self { acceptor, addrs, state, ports, descriptions, realtime })
    }

    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    pub fn state(&self) -> Arc<AppState> {
        self.state.clone()
    }

    /// The backends as configured, for start-up messages and for tests that prepare data.
    pub fn ports(&self) -> &Ports {
        &self.ports
    }

    /// Which adapter serves each port.
    pub fn descriptions(&self) -> &Descriptions {
        &self.descriptions
    }

    /// Serves until `shutdown` completes, then closes Socket.IO sessions (poem's graceful
    /// shutdown does not track upgraded connections), drains in-flight requests and gives
    /// the mail worker a moment to empty the in-process queue.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let Self { acceptor, state, ports, realtime, .. } = self;
        let (socketio, close_sockets) = realtime.into_parts();
        let stop_worker = CancellationToken::new();
        let workers: Vec<JoinHandle<()>> = (0..state.settings.config.mail_workers)
            .map(|_| {
                tokio::spawn(worker::run(
                    ports.mail_queue.clone(),
                    ports.mailer.clone(),
                    RetryPolicy { max_attempts: state.settings.config.mail_max_attempts, ..RetryPolicy::default() },
                    state.telemetry.clone(),
                    stop_worker.clone(),
                ))
            })
            .collect();
        let sampler = tokio::spawn(sample_gauges(ports.mail_queue.clone(), state.clone()));
        let trimmer = tokio::spawn(release_memory_after_disconnects(state.telemetry.clone()));
        let stop_flusher = CancellationToken::new();
        let flusher = tokio::spawn(crate::activity::flush_every_second(
            state.telemetry.clone(),
            ports.ephemeral.clone(),
            stop_flusher.clone(),
        ));
        let routes = crate::http::routes(state.clone(), socketio);
        let stopping = state.stopping.clone();
        let signal = async move {
            shutdown.await;
            tracing::info!("shutting down");
            stopping.cancel();
            close_sockets.await;
        };
        Server::new_with_acceptor(acceptor)
            .run_with_graceful_shutdown(routes.boxed(), signal, Some(Duration::from_secs(10)))
            .await
            .context("HTTP server failed")?;
        // Only the in-process queue loses jobs at exit; a broker keeps them.
        let in_process = state.settings.config.amqp_url.is_none();
        let drain_until = tokio::time::Instant::now() + Duration::from_secs(5);
        while in_process && ports.mail_queue.depth().await.unwrap_or(0) > 0 && tokio::time::Instant::now() < drain_until
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        sampler.abort();
        trimmer.abort();
        stop_worker.cancel();
        for worker in workers {
            let _ = worker.await;
        }
        // Last, so what the workers counted while draining is recorded too.
        stop_flusher.cancel();
        let _ = flusher.await;
        Ok(())
    }
}
