//! What the admin console charts: per-minute counts of login and message traffic for the
//! last hour (cluster-wide, through the ephemeral store), and this instance's latest mail
//! failures. Prometheus keeps the long history; this is the at-a-glance view an operator
//! gets without running one. Counted through the application's [`crate::telemetry::Telemetry`].

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use poem_openapi::Object;

use crate::domain::now_ms;
use crate::ports::{BackendResult, Ephemeral};

/// The series of the traffic chart, in chart order ([`KINDS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    OtpRequested,
    OtpMailed,
    OtpVerified,
    OtpFailed,
    OtpLocked,
    OtpRateLimited,
    Messages,
}

pub const KINDS: [Kind; 7] = [
    Kind::OtpRequested,
    Kind::OtpMailed,
    Kind::OtpVerified,
    Kind::OtpFailed,
    Kind::OtpLocked,
    Kind::OtpRateLimited,
    Kind::Messages,
];

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::OtpRequested => "requested",
            Kind::OtpMailed => "mailed",
            Kind::OtpVerified => "verified",
            Kind::OtpFailed => "failed",
            Kind::OtpLocked => "locked",
            Kind::OtpRateLimited => "rate_limited",
            Kind::Messages => "messages",
        }
    }
}

pub const MINUTES_KEPT: usize = 60;
const FAILURES_KEPT: usize = 20;
/// Counters outlive the hour they are shown for by a few minutes, so the oldest minute
/// shown is never half-expired.
const COUNTER_TTL: Duration = Duration::from_secs((MINUTES_KEPT as u64 + 5) * 60);

/// A mail the worker could not deliver. The body is never kept: it holds the code.
#[derive(Debug, Clone, Object, PartialEq, Eq)]
#[oai(rename_all = "camelCase")]
pub struct MailFailure {
    /// When it failed, ms since the epoch.
    pub at: i64,
    pub to: String,
    pub attempt: u32,
    pub error: String,
    /// Whether the mail was set aside for good (otherwise it is retried).
    pub dead_lettered: bool,
}

/// One series of the traffic chart: a count per minute, oldest first.
#[derive(Debug, Clone, Object, PartialEq, Eq)]
#[oai(rename_all = "camelCase")]
pub struct Series {
    /// `requested`, `mailed`, `verified`, `failed`, `locked`, `rate_limited` or `messages`.
    pub name: String,
    pub per_minute: Vec<u64>,
    pub total: u64,
}

#[derive(Debug, Clone, Object, PartialEq, Eq)]
pub struct Timeline {
    /// The first minute of the series (ms since the epoch).
    pub from: i64,
    pub series: Vec<Series>,
}

/// Counts are gathered here and added to per-minute counters in the ephemeral store
/// every second ([`Activity::flush`]): one round trip per second instead of one per
/// event, and with Redis every instance adds to the same counters, so the console shows
/// the cluster's traffic whichever instance serves it.
#[derive(Default)]
pub struct Activity {
    pending: Mutex<HashMap<(i64, Kind), u64>>,
    failures: Mutex<VecDeque<MailFailure>>,
    /// Bumped on every new failure, so a live view can tell cheaply whether to push.
    failures_version: AtomicU64,
}

fn counter_key(kind: Kind, minute: i64) -> String {
    format!("activity:{}:{minute}", kind.name())
}

impl Activity {
    pub fn count(&self, kind: Kind) {
        self.count_at(kind, now_ms() / 60_000);
    }

    fn count_at(&self, kind: Kind, minute: i64) {
        *self.pending.lock().unwrap().entry((minute, kind)).or_default() += 1;
    }

    /// Adds what was counted since the last flush to the shared counters. On failure the
    /// counts are kept for the next flush.
    pub async fn flush(&self, store: &dyn Ephemeral) -> BackendResult<()> {
        let pending: Vec<((i64, Kind), u64)> = self.pending.lock().unwrap().drain().collect();
        let mut left = pending.into_iter();
        while let Some(((minute, kind), n)) = left.next() {
            if let Err(e) = store.add(&counter_key(kind, minute), n, COUNTER_TTL).await {
                let mut back = self.pending.lock().unwrap();
                for ((minute, kind), n) in std::iter::once(((minute, kind), n)).chain(left) {
                    *back.entry((minute, kind)).or_default() += n;
                }
                return Err(e);
            }
        }
        Ok(())
    }

    pub fn mail_failed(&self, failure: MailFailure) {
        let mut failures = self.failures.lock().unwrap();
        failures.push_front(failure);
        failures.truncate(FAILURES_KEPT);
        drop(failures);
        self.failures_version.fetch_add(1, Ordering::Relaxed);
    }

    pub fn failures_version(&self) -> u64 {
        self.failures_version.load(Ordering::Relaxed)
    }

    /// The last hour up to now, one value per minute, zeros where nothing happened.
    pub async fn timeline(&self, store: &dyn Ephemeral) -> BackendResult<Timeline> {
        timeline_at(store, now_ms() / 60_000).await
    }

    /// This instance's latest mail failures, newest first.
    pub fn recent_failures(&self) -> Vec<MailFailure> {
        self.failures.lock().unwrap().iter().cloned().collect()
    }
}

async fn timeline_at(store: &dyn Ephemeral, now_minute: i64) -> BackendResult<Timeline> {
    let first = now_minute - MINUTES_KEPT as i64 + 1;
    let keys: Vec<String> =
        KINDS.iter().flat_map(|kind| (first..=now_minute).map(move |minute| counter_key(*kind, minute))).collect();
    let values = store.get_many(&keys).await?;
    let series = KINDS
        .iter()
        .zip(values.chunks(MINUTES_KEPT))
        .map(|(kind, minutes)| {
            let per_minute: Vec<u64> =
                minutes.iter().map(|v| v.as_deref().and_then(|v| v.parse().ok()).unwrap_or(0)).collect();
            Series { name: kind.name().to_string(), total: per_minute.iter().sum(), per_minute }
        })
        .collect();
    Ok(Timeline { from: first * 60_000, series })
}

/// Flushes every second until `stop`, then once more.
pub async fn flush_every_second(
    telemetry: std::sync::Arc<crate::telemetry::Telemetry>,
    store: std::sync::Arc<dyn Ephemeral>,
    stop: tokio_util::sync::CancellationToken,
) {
    let activity = telemetry.activity();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut failing = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        match activity.flush(store.as_ref()).await {
            Ok(()) => failing = false,
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %format!("{e:#}"), "could not record console traffic counts; keeping them for later");
            }
            Err(_) => {}
        }
    }
    let _ = activity.flush(store.as_ref()).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ephemeral::memory::MemoryEphemeral;

    fn series<'a>(t: &'a Timeline, name: &str) -> &'a Series {
        t.series.iter().find(|s| s.name == name).unwrap()
    }

    #[tokio::test]
    async fn counts_land_in_their_minute_and_age_out_after_an_hour() {
        let (a, store) = (Activity::default(), MemoryEphemeral::new());
        a.count_at(Kind::OtpRequested, 1000);
        a.count_at(Kind::OtpRequested, 1000);
        a.count_at(Kind::Messages, 1030);
        a.flush(&store).await.unwrap();
        a.count_at(Kind::OtpRequested, 1000);
        a.flush(&store).await.unwrap();
        let t = timeline_at(&store, 1030).await.unwrap();
        let requested = series(&t, "requested");
        assert_eq!(requested.per_minute.len(), MINUTES_KEPT);
        assert_eq!(requested.per_minute[MINUTES_KEPT - 31], 3, "flushes add up");
        assert_eq!(requested.total, 3);
        assert_eq!(*series(&t, "messages").per_minute.last().unwrap(), 1);
        assert_eq!(t.from, (1030 - 59) * 60_000);

        let later = timeline_at(&store, 1060).await.unwrap();
        assert_eq!(series(&later, "requested").total, 0, "an hour later the first minute is out of view");
        assert_eq!(series(&later, "messages").total, 1);
    }

    #[tokio::test]
    async fn two_instances_add_to_the_same_counters() {
        let store = MemoryEphemeral::new();
        let (a, b) = (Activity::default(), Activity::default());
        a.count_at(Kind::OtpVerified, 500);
        b.count_at(Kind::OtpVerified, 500);
        a.flush(&store).await.unwrap();
        b.flush(&store).await.unwrap();
        assert_eq!(series(&timeline_at(&store, 500).await.unwrap(), "verified").total, 2);
    }

    #[test]
    fn failures_keep_the_newest() {
        let a = Activity::default();
        let before = a.failures_version();
        for attempt in 0..30 {
            a.mail_failed(MailFailure { at: 0, to: "a@b.c".into(), attempt, error: "x".into(), dead_lettered: false });
        }
        let failures = a.recent_failures();
        assert_eq!(failures.len(), FAILURES_KEPT);
        assert_eq!(failures[0].attempt, 29, "newest first");
        assert!(a.failures_version() > before);
    }
}
