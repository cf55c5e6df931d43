//! The mail queue on RabbitMQ, compatible with the original: durable queue `send-otp`,
//! persistent JSON messages `{to, subject, body}`, so the original's producers and
//! consumers can share it. Added: publisher confirms, prefetch, manual ack after the
//! mailer accepted, retries through per-delay queues whose expired messages dead-letter
//! back to the main queue, a `<queue>.dead` queue after the last attempt, and reconnects
//! with backoff when the broker goes away.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use async_trait::async_trait;
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer};
use tokio::sync::Mutex;

use crate::config::mask_url_password;
use crate::ports::{BackendResult, Delivery, MailJob, MailQueue};

const ATTEMPTS_HEADER: &str = "x-confab-attempts";

pub struct AmqpQueue {
    inner: Arc<Inner>,
    consumer: Mutex<Option<Consumer>>,
}

struct Inner {
    url: String,
    shown_url: String,
    queue: String,
    prefetch: u16,
    session: Mutex<Option<(Connection, Channel)>>,
    /// Retry queues this instance declared, so `depth` can count jobs waiting in them.
    retry_delays: std::sync::Mutex<std::collections::BTreeSet<Duration>>,
}

fn persistent(attempts: u32) -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert(ShortString::from(ATTEMPTS_HEADER), AMQPValue::LongLongInt(i64::from(attempts)));
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type(ShortString::from("application/json"))
        .with_headers(headers)
}

fn attempts_of(properties: &BasicProperties) -> u32 {
    let value = properties.headers().as_ref().and_then(|h| h.inner().get(&ShortString::from(ATTEMPTS_HEADER)).cloned());
    match value {
        Some(AMQPValue::LongLongInt(n)) => n.max(0) as u32,
        Some(AMQPValue::LongInt(n)) => n.max(0) as u32,
        _ => 0,
    }
}

impl Inner {
    fn dead_queue(&self) -> String {
        format!("{}.dead", self.queue)
    }

    fn retry_queue(&self, delay: Duration) -> String {
        format!("{}.retry.{}", self.queue, delay.as_millis())
    }

    /// The live channel, connecting (and declaring the queues) if needed.
    async fn channel(&self) -> BackendResult<Channel> {
        let mut session = self.session.lock().await;
        if let Some((conn, channel)) = session.as_ref() {
            if conn.status().connected() && channel.status().connected() {
                return Ok(channel.clone());
            }
            tracing::warn!("RabbitMQ connection to {} lost; reconnecting", self.shown_url);
        }
        *session = None;
        let properties = ConnectionProperties::default().with_connection_name("confab".into());
        let conn = tokio::time::timeout(Duration::from_secs(5), Connection::connect(&self.url, properties))
            .await
            .map_err(|_| anyhow!("RabbitMQ at {} did not answer within 5 s", self.shown_url))?
            .with_context(|| format!("connecting to RabbitMQ at {}", self.shown_url))?;
        let channel = conn.create_channel().await?;
        channel.confirm_select(ConfirmSelectOptions::default()).await?;
        channel.basic_qos(self.prefetch, BasicQosOptions::default()).await?;
        // Declared exactly as the original declares it (durable, no arguments), so an
        // existing queue is accepted and the original's services can share it.
        for queue in [self.queue.clone(), self.dead_queue()] {
            channel.queue_declare(queue.as_str().into(), QueueDeclareOptions::durable(), FieldTable::default()).await?;
        }
        tracing::info!("connected to RabbitMQ at {}, queue {}", self.shown_url, self.queue);
        *session = Some((conn, channel.clone()));
        Ok(channel)
    }

    async fn publish(&self, queue: &str, payload: &[u8], attempts: u32) -> BackendResult<()> {
        let channel = self.channel().await?;
        let confirm = channel
            .basic_publish("".into(), queue.into(), BasicPublishOptions::default(), payload, persistent(attempts))
            .await?
            .await?;
        anyhow::ensure!(confirm.is_ack(), "RabbitMQ did not confirm the message to {queue}");
        Ok(())
    }

    async fn declare_retry_queue(&self, delay: Duration) -> BackendResult<String> {
        let name = self.retry_queue(delay);
        let mut args = FieldTable::default();
        args.insert("x-message-ttl".into(), AMQPValue::LongLongInt(delay.as_millis() as i64));
        args.insert("x-dead-letter-exchange".into(), AMQPValue::LongString(LongString::from("")));
        args.insert("x-dead-letter-routing-key".into(), AMQPValue::LongString(LongString::from(self.queue.as_str())));
        let channel = self.channel().await?;
        channel.queue_declare(name.as_str().into(), QueueDeclareOptions::durable(), args).await?;
        self.retry_delays.lock().unwrap().insert(delay);
        Ok(name)
    }

    async fn count(&self, queue: &str) -> BackendResult<u64> {
        let channel = self.channel().await?;
        let options = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
        let declared = channel.queue_declare(queue.into(), options, FieldTable::default()).await?;
        Ok(u64::from(declared.message_count()))
    }
}

impl AmqpQueue {
    /// Start-up does not wait for the broker: the first use connects, and every use after
    /// a connection loss reconnects.
    pub fn new(url: &str, queue: &str, prefetch: u16) -> Self {
        let inner = Inner {
            url: url.to_string(),
            shown_url: mask_url_password(url),
            queue: queue.to_string(),
            prefetch,
            session: Mutex::new(None),
            retry_delays: Default::default(),
        };
        Self { inner: Arc::new(inner), consumer: Mutex::new(None) }
    }

    pub fn describe(&self) -> String {
        format!("rabbitmq ({}, queue {})", self.inner.shown_url, self.inner.queue)
    }

    /// Deletes the queues this instance uses (main, dead and the retry queues it
    /// declared): for tests and decommissioning.
    pub async fn delete_queues(&self) -> BackendResult<()> {
        let channel = self.inner.channel().await?;
        let mut names = vec![self.inner.queue.clone(), self.inner.dead_queue()];
        let delays: Vec<Duration> = self.inner.retry_delays.lock().unwrap().iter().copied().collect();
        names.extend(delays.iter().map(|d| self.inner.retry_queue(*d)));
        for name in names {
            channel.queue_delete(name.as_str().into(), QueueDeleteOptions::default()).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl MailQueue for AmqpQueue {
    async fn enqueue(&self, job: MailJob) -> BackendResult<()> {
        self.inner.publish(&self.inner.queue, &serde_json::to_vec(&job)?, 0).await
    }

    async fn receive(&self) -> BackendResult<Box<dyn Delivery>> {
        let mut slot = self.consumer.lock().await;
        loop {
            if slot.is_none() {
                let channel = self.inner.channel().await?;
                let consumer = channel
                    .basic_consume(
                        self.inner.queue.as_str().into(),
                        "confab-mail-worker".into(),
                        BasicConsumeOptions::default(),
                        FieldTable::default(),
                    )
                    .await?;
                *slot = Some(consumer);
            }
            let next = slot.as_mut().expect("consumer set above").next().await;
            let delivery = match next {
                Some(Ok(delivery)) => delivery,
                Some(Err(e)) => {
                    *slot = None;
                    return Err(anyhow::Error::from(e).context("RabbitMQ consumer failed"));
                }
                None => {
                    *slot = None;
                    return Err(anyhow!("RabbitMQ consumer was cancelled"));
                }
            };
            let attempts = attempts_of(&delivery.properties);
            match serde_json::from_slice::<MailJob>(&delivery.data) {
                Ok(job) => {
                    return Ok(Box::new(AmqpDelivery {
                        delivery: Some(delivery),
                        job,
                        attempts,
                        inner: self.inner.clone(),
                    }));
                }
                Err(e) => {
                    // Unreadable forever: set aside for an operator instead of looping on it.
                    tracing::error!(error = %e, "unreadable message on {}; moved to {}", self.inner.queue, self.inner.dead_queue());
                    self.inner.publish(&self.inner.dead_queue(), &delivery.data, attempts).await?;
                    delivery.acker.ack(BasicAckOptions::default()).await?;
                }
            }
        }
    }

    async fn depth(&self) -> BackendResult<u64> {
        let mut total = self.inner.count(&self.inner.queue).await?;
        let delays: Vec<Duration> = self.inner.retry_delays.lock().unwrap().iter().copied().collect();
        for delay in delays {
            total += self.inner.count(&self.inner.retry_queue(delay)).await?;
        }
        Ok(total)
    }

    async fn dead_letters(&self) -> BackendResult<u64> {
        self.inner.count(&self.inner.dead_queue()).await
    }

    async fn requeue_dead_letters(&self) -> BackendResult<u64> {
        let dead = self.inner.dead_queue();
        // Only what is there now: anything dead-lettered meanwhile waits for the next call.
        let waiting = self.inner.count(&dead).await?;
        let mut moved = 0;
        while moved < waiting {
            let channel = self.inner.channel().await?;
            let Some(message) = channel.basic_get(dead.as_str().into(), BasicGetOptions { no_ack: false }).await?
            else {
                break;
            };
            // Published (confirmed) before the ack: a crash in between duplicates, never loses.
            self.inner.publish(&self.inner.queue, &message.delivery.data, 0).await?;
            message.delivery.acker.ack(BasicAckOptions::default()).await?;
            moved += 1;
        }
        Ok(moved)
    }

    /// A round trip to the broker (a passive declare): a connection that still looks
    /// open is not proof the broker answers, as after a network partition.
    async fn ping(&self) -> BackendResult<()> {
        self.inner.count(&self.inner.queue).await.map(|_| ())
    }
}

struct AmqpDelivery {
    /// Taken when settled; still present on drop means the worker gave up mid-job, and
    /// the message is handed back to the queue.
    delivery: Option<lapin::message::Delivery>,
    job: MailJob,
    attempts: u32,
    inner: Arc<Inner>,
}

impl AmqpDelivery {
    fn take(&mut self) -> lapin::message::Delivery {
        self.delivery.take().expect("delivery settled once")
    }
}

impl Drop for AmqpDelivery {
    fn drop(&mut self) {
        if let Some(delivery) = self.delivery.take() {
            tokio::spawn(async move {
                let requeue = lapin::options::BasicNackOptions { requeue: true, ..Default::default() };
                let _ = delivery.acker.nack(requeue).await;
            });
        }
    }
}

#[async_trait]
impl Delivery for AmqpDelivery {
    fn job(&self) -> &MailJob {
        &self.job
    }

    fn attempts(&self) -> u32 {
        self.attempts
    }

    async fn ack(mut self: Box<Self>) -> BackendResult<()> {
        self.take().acker.ack(BasicAckOptions::default()).await?;
        Ok(())
    }

    async fn retry(mut self: Box<Self>, delay: Duration) -> BackendResult<()> {
        // Publish the retry (confirmed) before acking, so a crash in between means a
        // duplicate attempt, never a lost mail.
        let queue = self.inner.declare_retry_queue(delay).await?;
        let delivery = self.take();
        self.inner.publish(&queue, &delivery.data, self.attempts + 1).await?;
        delivery.acker.ack(BasicAckOptions::default()).await?;
        Ok(())
    }

    async fn dead_letter(mut self: Box<Self>) -> BackendResult<()> {
        let delivery = self.take();
        self.inner.publish(&self.inner.dead_queue(), &delivery.data, self.attempts + 1).await?;
        delivery.acker.ack(BasicAckOptions::default()).await?;
        Ok(())
    }
}
