//! The supervised task that moves mails from the queue to the mailer. A job is acked only
//! after the mailer accepted it; failures are retried with exponential backoff. A login
//! code's mail is retried for as long as the code is valid and dead-lettered as expired
//! after that, never sent late; a job without an expiry is set aside (dead-lettered)
//! after `max_attempts`.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::ports::{MailQueue, Mailer};
use crate::telemetry::{MailOutcome, Telemetry};

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        // Retries every 15 s at most, so a waiting user gets the code soon after an
        // outage ends.
        Self { max_attempts: 5, first_delay: Duration::from_secs(2), max_delay: Duration::from_secs(15) }
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
    Retrying {
        delay: Duration,
    },
    DeadLettered,
    /// Its code expired before it could be sent: set aside unsent.
    Expired,
}

/// Shown in the admin console: who, which attempt and why — never the body (the code).
fn record_failure(
    telemetry: &Telemetry,
    job: &crate::ports::MailJob,
    attempts: u32,
    error: &anyhow::Error,
    dead_lettered: bool,
) {
    telemetry.mail_failed(crate::activity::MailFailure {
        at: crate::domain::now_ms(),
        to: job.to.clone(),
        attempt: attempts + 1,
        error: format!("{error:#}"),
        dead_lettered,
    });
}

/// One step of the worker: receive a job, try it once, settle it.
pub async fn process_one(
    queue: &dyn MailQueue,
    mailer: &dyn Mailer,
    policy: &RetryPolicy,
    telemetry: &Telemetry,
) -> anyhow::Result<Outcome> {
    let delivery = queue.receive().await?;
    let attempts = delivery.attempts();
    let expires_at = delivery.job().expires_at;
    if expires_at.is_some_and(|at| at <= crate::domain::now_ms()) {
        return expire(delivery, attempts, telemetry).await;
    }
    let error = match mailer.send(delivery.job()).await {
        Ok(()) => {
            delivery.ack().await?;
            telemetry.mail(MailOutcome::Sent);
            return Ok(Outcome::Sent);
        }
        Err(error) => error,
    };
    let delay = policy.delay_after(attempts);
    let retry = match expires_at {
        // While the code can still be used, however many attempts that takes.
        Some(at) => crate::domain::now_ms() + delay.as_millis() as i64 <= at,
        None => attempts + 1 < policy.max_attempts,
    };
    telemetry.mail(MailOutcome::Failed);
    if retry {
        tracing::warn!(error = %format!("{error:#}"), attempt = attempts + 1, retry_in = ?delay, "mail delivery failed; will retry");
        record_failure(telemetry, delivery.job(), attempts, &error, false);
        delivery.retry(delay).await?;
        telemetry.mail(MailOutcome::Retried);
        Ok(Outcome::Retrying { delay })
    } else if expires_at.is_some() {
        tracing::error!(error = %format!("{error:#}"), attempts = attempts + 1, "mail delivery failed until its code expired; dead-lettered");
        record_failure(telemetry, delivery.job(), attempts, &error, true);
        delivery.dead_letter().await?;
        telemetry.mail(MailOutcome::Expired);
        Ok(Outcome::Expired)
    } else {
        tracing::error!(error = %format!("{error:#}"), attempts = attempts + 1, "mail delivery failed for good; dead-lettered");
        record_failure(telemetry, delivery.job(), attempts, &error, true);
        delivery.dead_letter().await?;
        telemetry.mail(MailOutcome::DeadLettered);
        Ok(Outcome::DeadLettered)
    }
}

/// Sets aside, unsent, a mail whose code can no longer be used.
async fn expire(
    delivery: Box<dyn crate::ports::Delivery>,
    attempts: u32,
    telemetry: &Telemetry,
) -> anyhow::Result<Outcome> {
    let error = anyhow::anyhow!("the code expired before the mail could be sent");
    tracing::warn!(attempts, "mail not sent: its code has expired; dead-lettered");
    record_failure(telemetry, delivery.job(), attempts, &error, true);
    delivery.dead_letter().await?;
    telemetry.mail(MailOutcome::Expired);
    Ok(Outcome::Expired)
}

/// Runs until `stop` fires. Queue errors (a broker gone away) are retried with backoff
/// rather than ending the worker.
pub async fn run(
    queue: Arc<dyn MailQueue>,
    mailer: Arc<dyn Mailer>,
    policy: RetryPolicy,
    telemetry: Arc<Telemetry>,
    stop: CancellationToken,
) {
    let mut queue_backoff = Duration::from_millis(200);
    loop {
        let step = tokio::select! {
            _ = stop.cancelled() => break,
            step = process_one(queue.as_ref(), mailer.as_ref(), &policy, &telemetry) => step,
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use async_trait::async_trait;

    use super::*;
    use crate::ports::MailJob;
    use crate::queue::memory::MemoryQueue;

    /// An SMTP server that is down: every send fails, and the tries are counted.
    #[derive(Default)]
    struct Down(AtomicU32);

    #[async_trait]
    impl Mailer for Down {
        async fn send(&self, _: &MailJob) -> anyhow::Result<()> {
            self.0.fetch_add(1, Ordering::SeqCst);
            anyhow::bail!("connection refused")
        }
        fn describe(&self) -> String {
            "down".into()
        }
    }

    fn job(expires_in_ms: Option<i64>) -> MailJob {
        MailJob {
            to: "a@example.com".into(),
            subject: "Your otp code".into(),
            body: "Your OTP is 123456".into(),
            expires_at: expires_in_ms.map(|ms| crate::domain::now_ms() + ms),
        }
    }

    #[tokio::test]
    async fn a_codes_mail_is_retried_while_the_code_lives_then_set_aside_unsent() {
        let queue = MemoryQueue::new(10);
        let mailer = Down::default();
        let policy = RetryPolicy {
            max_attempts: 2,
            first_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(40),
        };
        queue.enqueue(job(Some(400))).await.unwrap();
        let mut outcomes = Vec::new();
        loop {
            let outcome = process_one(&queue, &mailer, &policy, &Telemetry::default()).await.unwrap();
            outcomes.push(outcome.clone());
            if !matches!(outcome, Outcome::Retrying { .. }) {
                break;
            }
        }
        assert_eq!(outcomes.last(), Some(&Outcome::Expired));
        assert!(outcomes.len() > 4, "retried past max_attempts while the code lived: {outcomes:?}");
        assert_eq!(queue.dead_letters().await.unwrap(), 1);

        // Already expired when received (e.g. queued through a long outage): never sent.
        let tries = mailer.0.load(Ordering::SeqCst);
        queue.enqueue(job(Some(-1))).await.unwrap();
        assert_eq!(process_one(&queue, &mailer, &policy, &Telemetry::default()).await.unwrap(), Outcome::Expired);
        assert_eq!(mailer.0.load(Ordering::SeqCst), tries, "an expired code is not mailed");

        // Without an expiry (the original's jobs): max_attempts as before.
        queue.enqueue(job(None)).await.unwrap();
        assert!(matches!(
            process_one(&queue, &mailer, &policy, &Telemetry::default()).await.unwrap(),
            Outcome::Retrying { .. }
        ));
        assert_eq!(process_one(&queue, &mailer, &policy, &Telemetry::default()).await.unwrap(), Outcome::DeadLettered);
    }
}
