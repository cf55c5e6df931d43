//! SMTP mailer on lettre: `smtp://` (plain, or STARTTLS with `?tls=required`) and
//! `smtps://` (implicit TLS), with credentials in the URL.

use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::ports::{BackendResult, MailJob, Mailer};

pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// host:port only, for logs: the URL may carry a password.
    endpoint: String,
}

impl SmtpMailer {
    pub fn new(url: &str, from: Mailbox) -> anyhow::Result<Self> {
        let parsed = url::Url::parse(url).context("smtp_url is not a URL")?;
        let endpoint = format!(
            "{}://{}:{}",
            parsed.scheme(),
            parsed.host_str().unwrap_or("?"),
            parsed.port().map(|p| p.to_string()).unwrap_or_else(|| "default".into())
        );
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .context("smtp_url is not a valid SMTP URL")?
            .timeout(Some(Duration::from_secs(20)))
            .build();
        Ok(Self { transport, from, endpoint })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, job: &MailJob) -> BackendResult<()> {
        let to: Mailbox = job.to.parse().with_context(|| format!("recipient {:?} is not a mailbox", job.to))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(job.subject.clone())
            .body(job.body.clone())
            .context("building mail")?;
        self.transport.send(message).await.with_context(|| format!("SMTP delivery via {}", self.endpoint))?;
        Ok(())
    }

    fn describe(&self) -> String {
        format!("smtp ({})", self.endpoint)
    }
}
