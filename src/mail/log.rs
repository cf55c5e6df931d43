//! Development mailer: writes mails to the log instead of sending them.

use async_trait::async_trait;

use crate::ports::{BackendResult, MailJob, Mailer};

pub struct LogMailer;

#[async_trait]
impl Mailer for LogMailer {
    async fn send(&self, job: &MailJob) -> BackendResult<()> {
        // The one place an OTP may be logged: this transport exists so a developer
        // without SMTP can log in, and start-up warns loudly that it is active.
        tracing::info!(target: "confab::mail", to = %job.to, subject = %job.subject, "mail (log transport): {}", job.body);
        Ok(())
    }

    fn describe(&self) -> String {
        "log (mails are printed to the log, not sent)".to_string()
    }
}
