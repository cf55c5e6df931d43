//! Prometheus metrics, served at `/metrics`. One process-wide registry (like the log),
//! so any layer can count without threading a handle through. Labels are route
//! templates and fixed outcome names, never ids or emails.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub socket_connections: IntGauge,
    pub socket_events: IntCounterVec,
    /// `socket_events` for each client event, resolved once: a typing relay counts every
    /// event, and a label lookup hashes and locks.
    socket_event_counts: [IntCounter; crate::realtime::contract::CLIENT_EVENTS.len()],
    pub messages_stored: IntCounterVec,
    pub messages_delivered: IntCounter,
    pub broadcast_failures: IntCounterVec,
    pub otp: IntCounterVec,
    pub mail: IntCounterVec,
    pub mail_queue_depth: IntGauge,
    pub mail_dead_letters: IntGauge,
    pub store_duration: HistogramVec,
    pub online_users: IntGauge,
    pub admin_logins: IntCounterVec,
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry.register(Box::new(c.clone())).expect("unique metric");
    c
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("valid metric");
    registry.register(Box::new(g.clone())).expect("unique metric");
    g
}

fn histogram(registry: &Registry, name: &str, help: &str, labels: &[&str], buckets: Vec<f64>) -> HistogramVec {
    let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels).expect("valid metric");
    registry.register(Box::new(h.clone())).expect("unique metric");
    h
}

impl Metrics {
    /// A registry of its own with every series; the fixed-label ones start at zero.
    pub fn new() -> Self {
        Self::registered().with_known_series()
    }

    fn registered() -> Self {
        let registry = Registry::new();
        let latency = vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
        let build = IntGaugeVec::new(Opts::new("confab_build_info", "Build information; always 1"), &["version"])
            .expect("valid metric");
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        registry.register(Box::new(build)).expect("unique metric");
        let messages_delivered =
            IntCounter::new("confab_messages_delivered_total", "newMessage events pushed to sockets")
                .expect("valid metric");
        registry.register(Box::new(messages_delivered.clone())).expect("unique metric");
        let socket_events =
            counter(&registry, "confab_socket_events_total", "Socket.IO events received from clients", &["event"]);
        Self {
            http_requests: counter(
                &registry,
                "confab_http_requests_total",
                "HTTP requests by route template and status",
                &["method", "route", "status"],
            ),
            http_duration: histogram(
                &registry,
                "confab_http_request_duration_seconds",
                "HTTP request latency",
                &["method", "route"],
                latency.clone(),
            ),
            socket_connections: gauge(&registry, "confab_socket_connections", "Open Socket.IO connections"),
            socket_event_counts: crate::realtime::contract::CLIENT_EVENTS
                .map(|event| socket_events.with_label_values(&[event])),
            socket_events,
            messages_stored: counter(&registry, "confab_messages_stored_total", "Messages stored", &["type"]),
            messages_delivered,
            broadcast_failures: counter(
                &registry,
                "confab_realtime_broadcast_failures_total",
                "Socket.IO emits that could not be sent (e.g. the Redis adapter lost Redis), by event",
                &["event"],
            ),
            otp: counter(&registry, "confab_otp_total", "Login codes by outcome", &["outcome"]),
            mail: counter(&registry, "confab_mail_total", "Mail deliveries by outcome", &["outcome"]),
            mail_queue_depth: gauge(&registry, "confab_mail_queue_depth", "Mails waiting to be sent"),
            mail_dead_letters: gauge(&registry, "confab_mail_dead_letters", "Mails set aside after the last attempt"),
            store_duration: histogram(
                &registry,
                "confab_store_operation_duration_seconds",
                "Store operation latency",
                &["operation"],
                latency,
            ),
            admin_logins: counter(
                &registry,
                "confab_admin_logins_total",
                "Admin console logins by outcome (opened, refused, rate_limited)",
                &["outcome"],
            ),
            online_users: gauge(
                &registry,
                "confab_online_users",
                "Users with at least one connection to this instance",
            ),
            registry,
        }
    }

    /// Creates the fixed-label series at zero, so they are exported (and `rate()` works)
    /// before the first event.
    fn with_known_series(self) -> Self {
        use crate::telemetry::{AdminLogin, MailOutcome, OtpOutcome};
        for outcome in OtpOutcome::ALL {
            self.otp.with_label_values(&[outcome.label()]);
        }
        for outcome in MailOutcome::ALL {
            self.mail.with_label_values(&[outcome.label()]);
        }
        for outcome in AdminLogin::ALL {
            self.admin_logins.with_label_values(&[outcome.label()]);
        }
        for kind in ["text", "image"] {
            self.messages_stored.with_label_values(&[kind]);
        }
        self
    }

    pub fn count_socket_event(&self, event: &str) {
        let known = crate::realtime::contract::CLIENT_EVENTS.iter().position(|e| *e == event);
        match known {
            Some(i) => self.socket_event_counts[i].inc(),
            None => self.socket_events.with_label_values(&[event]).inc(),
        }
    }

    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out).expect("text encoding");
        String::from_utf8(out).expect("prometheus text is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Request labels from the route poem's router matched, so ids never reach a label and
/// a new endpoint needs no list kept by hand. poem-openapi registers its paths with
/// numbered parameters (`/api/v1/user/:param0`); the spec's names are put back. What no
/// route matched shares one label, so a scan of random URLs cannot explode the series.
pub struct RouteLabels(std::collections::HashMap<String, String>);

impl RouteLabels {
    /// `spec_paths`: the OpenAPI paths (`/api/v1/user/{id}`).
    pub fn new<'a>(spec_paths: impl IntoIterator<Item = &'a str>) -> Self {
        let mut renamed = std::collections::HashMap::new();
        for path in spec_paths {
            let (mut numbered, mut named, mut index) = (Vec::new(), Vec::new(), 0);
            for segment in path.split('/') {
                match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => {
                        numbered.push(format!(":param{index}"));
                        named.push(format!(":{name}"));
                        index += 1;
                    }
                    None => {
                        numbered.push(segment.to_string());
                        named.push(segment.to_string());
                    }
                }
            }
            if index > 0 {
                renamed.insert(numbered.join("/"), named.join("/"));
            }
        }
        Self(renamed)
    }

    pub fn label(&self, matched: Option<&str>) -> String {
        match matched {
            Some(pattern) if !pattern.is_empty() && pattern != "/" => {
                self.0.get(pattern).cloned().unwrap_or_else(|| pattern.to_string())
            }
            _ => "/other".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn openapi_parameters_get_their_names_back() {
        let labels = super::RouteLabels::new(["/api/v1/user/{id}", "/api/v1/message/{chatId}", "/api/v1/me"]);
        assert_eq!(labels.label(Some("/api/v1/user/:param0")), "/api/v1/user/:id");
        assert_eq!(labels.label(Some("/api/v1/message/:param0")), "/api/v1/message/:chatId");
        assert_eq!(labels.label(Some("/admin/api/users/:id/revoke")), "/admin/api/users/:id/revoke");
        assert_eq!(labels.label(Some("/api/v1/me")), "/api/v1/me");
        assert_eq!(labels.label(None), "/other");
        assert_eq!(labels.label(Some("")), "/other");
    }
}
