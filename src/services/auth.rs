//! Passwordless login: one-time codes by mail, then a JWT.
//!
//! Compared with the original: codes come from a CSPRNG, are stored only as an HMAC,
//! compared in constant time, burned after `max_attempts` wrong guesses, and `/login`
//! is limited per email and per client address.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::tokens::{TokenError, TokenKeys};
use super::{ServiceError, ServiceResult};
use crate::domain::{default_name_for, Email, ObjectId, User};
use crate::mail::otp_mail;
use crate::ports::{Ephemeral, MailQueue, Store};
use crate::telemetry::{OtpOutcome, Telemetry};

#[derive(Debug, Clone)]
pub struct OtpPolicy {
    pub ttl: Duration,
    pub resend_after: Duration,
    pub max_attempts: u64,
    pub per_ip_limit: u64,
    pub per_ip_window: Duration,
}

impl Default for OtpPolicy {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(300),
            resend_after: Duration::from_secs(60),
            max_attempts: 5,
            per_ip_limit: 60,
            per_ip_window: Duration::from_secs(600),
        }
    }
}

pub const UNAUTH_NO_HEADER: &str = "Please Login - No auth header";
pub const UNAUTH_JWT: &str = "Please Login - JWT error";
pub const UNAUTH_NO_USER: &str = "Invalid token";
pub const UNAUTH_REVOKED: &str = "Please Login - token revoked";
const INVALID_OTP: &str = "Invalid or expired OTP";

pub struct AuthService {
    store: Arc<dyn Store>,
    ephemeral: Arc<dyn Ephemeral>,
    mail: Arc<dyn MailQueue>,
    tokens: TokenKeys,
    otp_key: Vec<u8>,
    policy: OtpPolicy,
    telemetry: Arc<Telemetry>,
}

/// Keys in the ephemeral store. The first two are the original's names.
fn otp_key(email: &Email) -> String {
    format!("otp:{email}")
}
fn resend_key(email: &Email) -> String {
    format!("otp:ratelimit:{email}")
}
fn attempts_key(email: &Email) -> String {
    format!("otp:attempts:{email}")
}
fn ip_key(ip: IpAddr) -> String {
    format!("otp:ip:{ip}")
}

impl AuthService {
    pub fn new(
        store: Arc<dyn Store>,
        ephemeral: Arc<dyn Ephemeral>,
        mail: Arc<dyn MailQueue>,
        jwt_secret: &[u8],
        policy: OtpPolicy,
        telemetry: Arc<Telemetry>,
    ) -> Self {
        // A separate key for OTP hashes, so a leaked hash says nothing about the JWT key.
        let otp_key = hmac_bytes(jwt_secret, b"confab otp hashing key");
        Self { store, ephemeral, mail, tokens: TokenKeys::new(jwt_secret), otp_key, policy, telemetry }
    }

    /// `POST /login`: mails a fresh code.
    pub async fn request_otp(&self, raw_email: &str, client: Option<IpAddr>) -> ServiceResult<()> {
        let email = Email::parse(raw_email)?;
        if let Some(ip) = client {
            let count = self.ephemeral.increment(&ip_key(ip), self.policy.per_ip_window).await?;
            if count > self.policy.per_ip_limit {
                self.telemetry.otp(OtpOutcome::RateLimited);
                return Err(ServiceError::TooManyRequests(
                    "Too many OTP requests from your network. Please try again later".into(),
                ));
            }
        }
        if !self.ephemeral.set_if_absent(&resend_key(&email), "true", self.policy.resend_after).await? {
            self.telemetry.otp(OtpOutcome::RateLimited);
            return Err(ServiceError::TooManyRequests(
                "Too many requests. Please wait before requesting new otp".into(),
            ));
        }
        let otp = format!("{:06}", rand::rng().random_range(100_000..=999_999));
        self.ephemeral.set(&otp_key(&email), &self.hash_otp(&email, &otp), self.policy.ttl).await?;
        self.ephemeral.delete(&attempts_key(&email)).await?;
        if let Err(error) = self.mail.enqueue(otp_mail(email.as_str(), &otp, self.policy.ttl)).await {
            // Undo, so the user is neither locked out for a minute nor left with a code
            // nobody will ever send.
            let _ = self.ephemeral.delete(&otp_key(&email)).await;
            let _ = self.ephemeral.delete(&resend_key(&email)).await;
            return Err(ServiceError::Unavailable(error.context("queueing the OTP mail")));
        }
        self.telemetry.otp(OtpOutcome::Requested);
        Ok(())
    }

    /// `POST /verify`: exchanges a code for the user (created on first login) and a token.
    pub async fn verify_otp(&self, raw_email: &str, raw_otp: &str) -> ServiceResult<(User, String)> {
        if raw_email.trim().is_empty() || raw_otp.trim().is_empty() {
            return Err(ServiceError::BadRequest("Email and OTP Required".into()));
        }
        let email = Email::parse(raw_email)?;
        let otp = raw_otp.trim();
        // Count before comparing, so parallel guesses cannot overtake the limit.
        let attempts = self.ephemeral.increment(&attempts_key(&email), self.policy.ttl).await?;
        if attempts > self.policy.max_attempts {
            self.telemetry.otp(OtpOutcome::Locked);
            self.ephemeral.delete(&otp_key(&email)).await?;
            return Err(ServiceError::TooManyRequests("Too many wrong attempts. Please request a new OTP".into()));
        }
        let Some(stored) = self.ephemeral.get(&otp_key(&email)).await? else {
            return Err(ServiceError::BadRequest(INVALID_OTP.into()));
        };
        let matches: bool = self.hash_otp(&email, otp).as_bytes().ct_eq(stored.as_bytes()).into();
        if !matches {
            self.telemetry.otp(OtpOutcome::Failed);
            if attempts == self.policy.max_attempts {
                self.ephemeral.delete(&otp_key(&email)).await?;
            }
            return Err(ServiceError::BadRequest(INVALID_OTP.into()));
        }
        // Whoever deletes the code first wins; a replay of the same code finds nothing.
        if !self.ephemeral.delete(&otp_key(&email)).await? {
            return Err(ServiceError::BadRequest(INVALID_OTP.into()));
        }
        self.ephemeral.delete(&attempts_key(&email)).await?;
        let user = self.store.find_or_create_user(&email, &default_name_for(&email)).await?;
        let token = self.issue_token(&user);
        self.telemetry.otp(OtpOutcome::Verified);
        Ok((user, token))
    }

    pub fn issue_token(&self, user: &User) -> String {
        self.tokens.issue(user, crate::domain::now_ms() / 1000)
    }

    /// Resolves a bearer token to the current user as stored now (not as the token
    /// remembers it), refusing tokens revoked since they were issued.
    pub async fn authenticate(&self, token: &str) -> ServiceResult<User> {
        let (claimed, token_version) = self.tokens.verify(token).map_err(|e| match e {
            TokenError::Rejected => ServiceError::Unauthorized(UNAUTH_JWT.into()),
            TokenError::NoUser => ServiceError::Unauthorized(UNAUTH_NO_USER.into()),
        })?;
        let id = ObjectId::parse(&claimed.id).map_err(|_| ServiceError::Unauthorized(UNAUTH_NO_USER.into()))?;
        let user =
            self.store.user_by_id(&id).await?.ok_or_else(|| ServiceError::Unauthorized(UNAUTH_NO_USER.into()))?;
        if user.token_version != token_version {
            return Err(ServiceError::Unauthorized(UNAUTH_REVOKED.into()));
        }
        Ok(user)
    }

    fn hash_otp(&self, email: &Email, otp: &str) -> String {
        let mut input = Vec::with_capacity(email.as_str().len() + 8);
        input.extend_from_slice(email.as_str().as_bytes());
        input.push(b':');
        input.extend_from_slice(otp.as_bytes());
        hex::encode(hmac_bytes(&self.otp_key, &input))
    }
}

fn hmac_bytes(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}
