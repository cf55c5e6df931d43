//! What the admin console charts: per-minute counts of login and message traffic for the
//! last hour, and the latest mail failures. Prometheus keeps the long history; this is
//! the at-a-glance view an operator gets without running one. Process-wide like the
//! metrics, and counted at the same call sites.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use serde::Serialize;

use crate::domain::now_ms;

/// The series of the traffic chart, in the order of [`Minute::counts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

    /// The kind counted for an outcome of `confab_otp_total`.
    pub fn for_otp_outcome(outcome: &str) -> Option<Kind> {
        KINDS.into_iter().find(|k| *k != Kind::Messages && k.name() == outcome)
    }
}

pub const MINUTES_KEPT: usize = 60;
const FAILURES_KEPT: usize = 20;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Minute {
    /// Minutes since the epoch.
    at: i64,
    counts: [u64; KINDS.len()],
}

/// A mail the worker could not deliver. The body is never kept: it holds the code.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MailFailure {
    pub at: i64,
    pub to: String,
    pub attempt: u32,
    pub error: String,
    /// Whether the mail was set aside for good (otherwise it is retried).
    pub dead_lettered: bool,
}

/// One series of the traffic chart: a count per minute, oldest first.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Series {
    pub name: &'static str,
    pub per_minute: Vec<u64>,
    pub total: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Timeline {
    /// The first minute of the series (ms since the epoch).
    pub from: i64,
    pub series: Vec<Series>,
}

#[derive(Default)]
pub struct Activity {
    minutes: Mutex<VecDeque<Minute>>,
    failures: Mutex<VecDeque<MailFailure>>,
    /// Bumped on every change, so a live view can tell cheaply whether to push.
    version: AtomicU64,
}

impl Activity {
    pub fn count(&self, kind: Kind) {
        self.count_at(kind, now_ms() / 60_000);
    }

    fn count_at(&self, kind: Kind, minute: i64) {
        let index = KINDS.iter().position(|k| *k == kind).expect("every kind is listed");
        let mut minutes = self.minutes.lock().unwrap();
        match minutes.back_mut() {
            Some(last) if last.at == minute => last.counts[index] += 1,
            _ => {
                let mut fresh = Minute { at: minute, ..Minute::default() };
                fresh.counts[index] = 1;
                minutes.push_back(fresh);
                while minutes.front().is_some_and(|m| m.at <= minute - MINUTES_KEPT as i64) {
                    minutes.pop_front();
                }
            }
        }
        drop(minutes);
        self.version.fetch_add(1, Ordering::Relaxed);
    }

    pub fn mail_failed(&self, failure: MailFailure) {
        let mut failures = self.failures.lock().unwrap();
        failures.push_front(failure);
        failures.truncate(FAILURES_KEPT);
        drop(failures);
        self.version.fetch_add(1, Ordering::Relaxed);
    }

    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Relaxed)
    }

    /// The last hour up to now, one value per minute, zeros where nothing happened.
    pub fn timeline(&self) -> Timeline {
        self.timeline_at(now_ms() / 60_000)
    }

    fn timeline_at(&self, now_minute: i64) -> Timeline {
        let first = now_minute - MINUTES_KEPT as i64 + 1;
        let mut grid = [[0u64; MINUTES_KEPT]; KINDS.len()];
        for minute in self.minutes.lock().unwrap().iter().filter(|m| m.at >= first && m.at <= now_minute) {
            let slot = (minute.at - first) as usize;
            for (k, count) in minute.counts.iter().enumerate() {
                grid[k][slot] = *count;
            }
        }
        let series = KINDS
            .iter()
            .zip(grid)
            .map(|(kind, per_minute)| Series {
                name: kind.name(),
                total: per_minute.iter().sum(),
                per_minute: per_minute.to_vec(),
            })
            .collect();
        Timeline { from: first * 60_000, series }
    }

    pub fn recent_failures(&self) -> Vec<MailFailure> {
        self.failures.lock().unwrap().iter().cloned().collect()
    }
}

pub fn activity() -> &'static Activity {
    static ACTIVITY: OnceLock<Activity> = OnceLock::new();
    ACTIVITY.get_or_init(Activity::default)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series<'a>(t: &'a Timeline, name: &str) -> &'a Series {
        t.series.iter().find(|s| s.name == name).unwrap()
    }

    #[test]
    fn counts_land_in_their_minute_and_age_out_after_an_hour() {
        let a = Activity::default();
        a.count_at(Kind::OtpRequested, 1000);
        a.count_at(Kind::OtpRequested, 1000);
        a.count_at(Kind::Messages, 1030);
        let t = a.timeline_at(1030);
        let requested = series(&t, "requested");
        assert_eq!(requested.per_minute.len(), MINUTES_KEPT);
        assert_eq!(requested.per_minute[MINUTES_KEPT - 31], 2);
        assert_eq!(requested.total, 2);
        assert_eq!(*series(&t, "messages").per_minute.last().unwrap(), 1);
        assert_eq!(t.from, (1030 - 59) * 60_000);

        let later = a.timeline_at(1060);
        assert_eq!(series(&later, "requested").total, 0, "an hour later the first minute is gone");
        assert_eq!(series(&later, "messages").total, 1);
        a.count_at(Kind::Messages, 1100);
        assert_eq!(a.minutes.lock().unwrap().len(), 1, "old minutes are dropped");
    }

    #[test]
    fn otp_outcomes_map_to_kinds_and_failures_keep_the_newest() {
        assert_eq!(Kind::for_otp_outcome("rate_limited"), Some(Kind::OtpRateLimited));
        assert_eq!(Kind::for_otp_outcome("messages"), None);
        let a = Activity::default();
        let before = a.version();
        for attempt in 0..30 {
            a.mail_failed(MailFailure { at: 0, to: "a@b.c".into(), attempt, error: "x".into(), dead_lettered: false });
        }
        let failures = a.recent_failures();
        assert_eq!(failures.len(), FAILURES_KEPT);
        assert_eq!(failures[0].attempt, 29, "newest first");
        assert!(a.version() > before);
    }
}
