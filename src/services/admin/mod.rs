//! Who may open the admin console: the admin token, or a user whose email is listed in
//! `admin_emails`, exchanged for a short-lived session. Sessions and the count of wrong
//! attempts live in the ephemeral store, so every instance honours them.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::telemetry::{AdminLogin, Telemetry};
use sha2::{Digest, Sha256};

mod actions;
pub mod console;

use super::auth::AuthService;
use super::{ServiceError, ServiceResult};
use crate::backends::{Health, Ports};
use crate::domain::{now_ms, Email};
use crate::ports::{Connections, Ephemeral, MailQueue, Store};
use crate::realtime::presence::Presence;
use crate::secrets::AdminCredential;

/// Wrong tokens allowed per client address per window before further tries are refused
/// without being checked.
pub const WRONG_ATTEMPTS_ALLOWED: u64 = 10;
pub const WRONG_ATTEMPTS_WINDOW: Duration = Duration::from_secs(15 * 60);

pub enum Credential {
    AdminToken(String),
    /// A user's JWT from the OTP login.
    UserToken(String),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AdminSession {
    /// "admin token" or the admin's email.
    pub who: String,
    /// ms since the epoch.
    pub expires_at: i64,
    /// The admin credential in force when the session opened; a reset ends the session.
    #[serde(default)]
    pub credential: String,
}

/// Who may administer this instance, and for how long a console session lasts.
pub struct AdminPolicy {
    pub credential: AdminCredential,
    pub admin_emails: Vec<Email>,
    pub session_ttl: Duration,
}

/// What the console reports about: this instance's name and start, and its live state.
pub struct Instance {
    pub name: String,
    /// ms since the epoch.
    pub started_at: i64,
    pub presence: Arc<Presence>,
    pub health: Health,
}

/// The admin console's rules: sessions, the overview and its live updates, and the
/// actions (disconnect, revoke, re-queue dead mail).
pub struct AdminService {
    ephemeral: Arc<dyn Ephemeral>,
    store: Arc<dyn Store>,
    connections: Arc<dyn Connections>,
    mail_queue: Arc<dyn MailQueue>,
    auth: Arc<AuthService>,
    credential: Arc<AdminCredential>,
    admin_emails: Vec<Email>,
    session_ttl: Duration,
    telemetry: Arc<Telemetry>,
    instance: Instance,
}

fn session_key(secret: &str) -> String {
    // Only a hash of the session secret is stored: a read of the store yields no sessions.
    format!("admin:session:{}", hex::encode(Sha256::digest(secret.as_bytes())))
}

fn attempts_key(ip: Option<IpAddr>) -> String {
    match ip {
        Some(ip) => format!("admin:wrong:{ip}"),
        None => "admin:wrong:unknown".into(),
    }
}

const REFUSED: &str = "Wrong admin token";
const NOT_ADMIN: &str = "This account is not an admin (see admin_emails)";
const TOO_MANY: &str = "Too many wrong admin logins from your address; try again in 15 minutes";

impl AdminService {
    pub fn new(
        ports: &Ports,
        auth: Arc<AuthService>,
        policy: AdminPolicy,
        instance: Instance,
        telemetry: Arc<Telemetry>,
    ) -> Self {
        Self {
            ephemeral: ports.ephemeral.clone(),
            store: ports.store.clone(),
            connections: ports.connections.clone(),
            mail_queue: ports.mail_queue.clone(),
            auth,
            credential: Arc::new(policy.credential),
            admin_emails: policy.admin_emails,
            session_ttl: policy.session_ttl,
            telemetry,
            instance,
        }
    }

    /// Checks the credential and opens a session; returns its secret and details.
    pub async fn open_session(
        &self,
        credential: Credential,
        client: Option<IpAddr>,
    ) -> ServiceResult<(String, AdminSession)> {
        let key = attempts_key(client);
        // Every try takes an attempt before the (deliberately slow) hash comparison, in
        // one atomic step: parallel guesses cannot all pass a check made before any of
        // them was counted, and guessing cannot burn CPU. A success gives the address
        // its attempts back.
        let attempt = self.ephemeral.increment(&key, WRONG_ATTEMPTS_WINDOW).await?;
        if attempt > WRONG_ATTEMPTS_ALLOWED {
            self.telemetry.admin_login(AdminLogin::RateLimited);
            return Err(ServiceError::TooManyRequests(TOO_MANY.into()));
        }
        let who = match self.identify(credential).await {
            Ok(who) => who,
            Err(e @ (ServiceError::Unauthorized(_) | ServiceError::Forbidden(_))) => {
                self.telemetry.admin_login(AdminLogin::Refused);
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        self.ephemeral.delete(&key).await?;
        let mut bytes = [0u8; 32];
        rand::fill(&mut bytes[..]);
        let secret = hex::encode(bytes);
        let session = AdminSession {
            who,
            expires_at: now_ms() + self.session_ttl.as_millis() as i64,
            credential: self.credential.generation(),
        };
        let value = serde_json::to_string(&session).map_err(anyhow::Error::from)?;
        self.ephemeral.set(&session_key(&secret), &value, self.session_ttl).await?;
        tracing::info!(who = %session.who, "admin console session opened");
        self.telemetry.admin_login(AdminLogin::Opened);
        Ok((secret, session))
    }

    async fn identify(&self, credential: Credential) -> ServiceResult<String> {
        match credential {
            Credential::AdminToken(token) => {
                let credential = self.credential.clone();
                let ok = tokio::task::spawn_blocking(move || credential.verify(token.trim()))
                    .await
                    .map_err(anyhow::Error::from)?;
                if ok {
                    Ok("admin token".into())
                } else {
                    Err(ServiceError::Unauthorized(REFUSED.into()))
                }
            }
            Credential::UserToken(jwt) => {
                let user = self.auth.authenticate(jwt.trim()).await?;
                if self.admin_emails.contains(&user.email) {
                    Ok(user.email.as_str().to_string())
                } else {
                    Err(ServiceError::Forbidden(NOT_ADMIN.into()))
                }
            }
        }
    }

    /// The session behind a secret, if it is still open.
    pub async fn session(&self, secret: &str) -> ServiceResult<Option<AdminSession>> {
        if secret.len() != 64 {
            return Ok(None);
        }
        let Some(raw) = self.ephemeral.get(&session_key(secret)).await? else { return Ok(None) };
        let session: Option<AdminSession> = serde_json::from_str(&raw).ok();
        let generation = self.credential.generation();
        Ok(session.filter(|s| s.expires_at > now_ms() && s.credential == generation))
    }

    pub async fn close_session(&self, secret: &str) -> ServiceResult<()> {
        self.ephemeral.delete(&session_key(secret)).await?;
        Ok(())
    }

    pub fn session_ttl(&self) -> Duration {
        self.session_ttl
    }
}
