//! What confab counts about itself, injected into the services, the mail worker, the
//! real-time layer and the HTTP surface (never reached through a global): the Prometheus
//! series behind `/metrics`, the admin console's traffic timeline and mail failures, and
//! the count of open connections. Each application has its own, so two instances in one
//! process (as in tests) never mix their numbers, and with `metrics_enabled = false`
//! nothing is recorded for Prometheus at all.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crate::activity::{Activity, Kind, MailFailure};
use crate::metrics::Metrics;

/// Outcomes of login codes: `confab_otp_total{outcome}` and the console's chart series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtpOutcome {
    Requested,
    Verified,
    Failed,
    Locked,
    RateLimited,
}

impl OtpOutcome {
    pub const ALL: [OtpOutcome; 5] = [Self::Requested, Self::Verified, Self::Failed, Self::Locked, Self::RateLimited];

    pub fn label(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Verified => "verified",
            Self::Failed => "failed",
            Self::Locked => "locked",
            Self::RateLimited => "rate_limited",
        }
    }

    fn kind(self) -> Kind {
        match self {
            Self::Requested => Kind::OtpRequested,
            Self::Verified => Kind::OtpVerified,
            Self::Failed => Kind::OtpFailed,
            Self::Locked => Kind::OtpLocked,
            Self::RateLimited => Kind::OtpRateLimited,
        }
    }
}

/// What happened to one mail delivery: `confab_mail_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailOutcome {
    Sent,
    Failed,
    Retried,
    DeadLettered,
    Expired,
}

impl MailOutcome {
    pub const ALL: [MailOutcome; 5] = [Self::Sent, Self::Failed, Self::Retried, Self::DeadLettered, Self::Expired];

    pub fn label(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Retried => "retried",
            Self::DeadLettered => "dead_lettered",
            Self::Expired => "expired",
        }
    }
}

/// Admin console login attempts: `confab_admin_logins_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminLogin {
    Opened,
    Refused,
    RateLimited,
}

impl AdminLogin {
    pub const ALL: [AdminLogin; 3] = [Self::Opened, Self::Refused, Self::RateLimited];

    pub fn label(self) -> &'static str {
        match self {
            Self::Opened => "opened",
            Self::Refused => "refused",
            Self::RateLimited => "rate_limited",
        }
    }
}

pub struct Telemetry {
    metrics: Option<Metrics>,
    activity: Activity,
    connections: AtomicI64,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new(true)
    }
}

impl Telemetry {
    pub fn new(metrics_enabled: bool) -> Self {
        Self {
            metrics: metrics_enabled.then(Metrics::new),
            activity: Activity::default(),
            connections: AtomicI64::new(0),
        }
    }

    fn metrics(&self) -> Option<&Metrics> {
        self.metrics.as_ref()
    }

    /// The Prometheus text format, or `None` when metrics are off.
    pub fn render(&self) -> Option<String> {
        self.metrics().map(Metrics::render)
    }

    pub fn activity(&self) -> &Activity {
        &self.activity
    }

    pub fn otp(&self, outcome: OtpOutcome) {
        if let Some(m) = self.metrics() {
            m.otp.with_label_values(&[outcome.label()]).inc();
        }
        self.activity.count(outcome.kind());
    }

    pub fn message_stored(&self, kind: &str) {
        if let Some(m) = self.metrics() {
            m.messages_stored.with_label_values(&[kind]).inc();
        }
        self.activity.count(Kind::Messages);
    }

    pub fn message_delivered(&self) {
        if let Some(m) = self.metrics() {
            m.messages_delivered.inc();
        }
    }

    pub fn broadcast_failed(&self, event: &str) {
        if let Some(m) = self.metrics() {
            m.broadcast_failures.with_label_values(&[event]).inc();
        }
    }

    pub fn socket_event(&self, event: &str) {
        if let Some(m) = self.metrics() {
            m.count_socket_event(event);
        }
    }

    pub fn socket_opened(&self) {
        let now = self.connections.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(m) = self.metrics() {
            m.socket_connections.set(now);
        }
    }

    pub fn socket_closed(&self) {
        let now = self.connections.fetch_sub(1, Ordering::Relaxed) - 1;
        if let Some(m) = self.metrics() {
            m.socket_connections.set(now);
        }
    }

    /// Socket.IO connections open on this instance.
    pub fn connections(&self) -> i64 {
        self.connections.load(Ordering::Relaxed)
    }

    pub fn mail(&self, outcome: MailOutcome) {
        if let Some(m) = self.metrics() {
            m.mail.with_label_values(&[outcome.label()]).inc();
        }
        if outcome == MailOutcome::Sent {
            self.activity.count(Kind::OtpMailed);
        }
    }

    pub fn mail_failed(&self, failure: MailFailure) {
        self.activity.mail_failed(failure);
    }

    pub fn admin_login(&self, outcome: AdminLogin) {
        if let Some(m) = self.metrics() {
            m.admin_logins.with_label_values(&[outcome.label()]).inc();
        }
    }

    pub fn store_call(&self, operation: &str, took: Duration) {
        if let Some(m) = self.metrics() {
            m.store_duration.with_label_values(&[operation]).observe(took.as_secs_f64());
        }
    }

    pub fn http_request(&self, method: &str, route: &str, status: u16, took: Duration) {
        if let Some(m) = self.metrics() {
            m.http_requests.with_label_values(&[method, route, &status.to_string()]).inc();
            m.http_duration.with_label_values(&[method, route]).observe(took.as_secs_f64());
        }
    }

    /// The gauges that mirror backend state, sampled every few seconds.
    pub fn sampled(&self, queue_depth: Option<u64>, dead_letters: Option<u64>, online_users: usize) {
        let Some(m) = self.metrics() else { return };
        if let Some(depth) = queue_depth {
            m.mail_queue_depth.set(depth as i64);
        }
        if let Some(dead) = dead_letters {
            m.mail_dead_letters.set(dead as i64);
        }
        m.online_users.set(online_users as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_is_exported_from_the_start_and_counted_where_it_belongs() {
        let t = Telemetry::new(true);
        let text = t.render().unwrap();
        for o in OtpOutcome::ALL {
            assert!(text.contains(&format!("confab_otp_total{{outcome=\"{}\"}} 0", o.label())), "{text}");
        }
        for o in MailOutcome::ALL {
            assert!(text.contains(&format!("confab_mail_total{{outcome=\"{}\"}} 0", o.label())));
        }
        t.otp(OtpOutcome::RateLimited);
        t.socket_opened();
        t.socket_opened();
        t.socket_closed();
        assert_eq!(t.connections(), 1);
        let text = t.render().unwrap();
        assert!(text.contains("confab_otp_total{outcome=\"rate_limited\"} 1"));
        assert!(text.contains("confab_socket_connections 1"));
        let other = Telemetry::new(true);
        assert!(other.render().unwrap().contains("confab_otp_total{outcome=\"rate_limited\"} 0"), "not shared");
        assert!(Telemetry::new(false).render().is_none());
    }
}
