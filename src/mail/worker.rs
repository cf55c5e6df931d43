//! The supervised task that moves mails from the queue to the mailer. A job is acked only
//! after the mailer accepted it; failures are retried with exponential backoff and set
//! aside (dead-lettered) after `max_attempts`.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::ports::{MailQueue, Mailer};

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_attempts: 5, first_delay: Duration::from_secs(2), max_delay: Duration::from_secs(300) }
    }
}

impl RetryPolicy {
    /// Delay before attempt `attempts + 1`: first_delay · 2^attempts, capped.
    pub fn delay_after(&self, attempts: u32) -> Duration {
        self.first_delay.saturating_mul(1u32 << attempts.min(20)).min(self.max_delay)
    }
}

/// What happened to one job; returned so tests and metrics can see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    Retrying { delay: Duration },
    DeadLettered,
}

fn count_mail(outcome: &str) {
    crate::metrics::metrics().mail.with_label_values(&[outcome]).inc();
    if outcome == "sent" {
        crate::activity::activity().count(crate::activity::Kind::OtpMailed);
    }
}

/// Shown in the admin console: who, which attempt and why — never the body (the code).
fn record_failure(job: &crate::ports::MailJob, attempts: u32, error: &anyhow::Error, dead_lettered: bool) {
    crate::activity::activity().mail_failed(crate::activity::MailFailure {
        at: crate::domain::now_ms(),
        to: job.to.clone(),
        attempt: attempts + 1,
        error: format!("{error:#}"),
        dead_lettered,
    });
}

/// One step of the worker: receive a job, try it once, settle it.
pub async fn process_one(queue: &dyn MailQueue, mailer: &dyn Mailer, policy: &RetryPolicy) -> anyhow::Result<Outcome> {
    let delivery = queue.receive().await?;
    let attempts = delivery.attempts();
    match mailer.send(delivery.job()).await {
        Ok(()) => {
            delivery.ack().await?;
            count_mail("sent");
            Ok(Outcome::Sent)
        }
        Err(error) if attempts + 1 < policy.max_attempts => {
            let delay = policy.delay_after(attempts);
            tracing::warn!(error = %format!("{error:#}"), attempt = attempts + 1, retry_in = ?delay, "mail delivery failed; will retry");
            record_failure(delivery.job(), attempts, &error, false);
            delivery.retry(delay).await?;
            count_mail("failed");
            count_mail("retried");
            Ok(Outcome::Retrying { delay })
        }
        Err(error) => {
            tracing::error!(error = %format!("{error:#}"), attempts = attempts + 1, "mail delivery failed for good; dead-lettered");
            record_failure(delivery.job(), attempts, &error, true);
            delivery.dead_letter().await?;
            count_mail("failed");
            count_mail("dead_lettered");
            Ok(Outcome::DeadLettered)
        }
    }
}

/// Runs until `stop` fires. Queue errors (a broker gone away) are retried with backoff
/// rather than ending the worker.
pub async fn run(queue: Arc<dyn MailQueue>, mailer: Arc<dyn Mailer>, policy: RetryPolicy, stop: CancellationToken) {
    let mut queue_backoff = Duration::from_millis(200);
    loop {
        let step = tokio::select! {
            _ = stop.cancelled() => break,
            step = process_one(queue.as_ref(), mailer.as_ref(), &policy) => step,
        };
        match step {
            Ok(_) => queue_backoff = Duration::from_millis(200),
            Err(error) => {
                tracing::error!(error = %format!("{error:#}"), "mail queue error; retrying in {queue_backoff:?}");
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(queue_backoff) => {}
                }
                queue_backoff = (queue_backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}
