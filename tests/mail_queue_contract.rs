//! The MailQueue contract, and the mail worker against a real SMTP server: a job is
//! acked only after the server accepted it, retried while it refuses, dead-lettered
//! after the last attempt.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::smtp::SmtpSink;
use confab::mail::smtp::SmtpMailer;
use confab::mail::worker::{process_one, Outcome, RetryPolicy};
use confab::ports::{MailJob, MailQueue, Mailer};
use confab::queue::amqp::AmqpQueue;
use confab::queue::memory::MemoryQueue;
use confab::telemetry::Telemetry;

fn job(to: &str) -> MailJob {
    MailJob {
        to: to.into(),
        subject: "Your otp code".into(),
        body: "Your OTP is 123456. It is valid for 5 minutes".into(),
        expires_at: None,
    }
}

mod suite {
    use super::*;

    pub async fn fifo_and_depth(q: Arc<dyn MailQueue>) {
        for i in 0..3 {
            q.enqueue(job(&format!("{i}@example.com"))).await.unwrap();
        }
        assert_eq!(q.depth().await.unwrap(), 3);
        for i in 0..3 {
            let d = q.receive().await.unwrap();
            assert_eq!(d.job().to, format!("{i}@example.com"));
            assert_eq!(d.attempts(), 0);
            d.ack().await.unwrap();
        }
        assert_eq!(q.depth().await.unwrap(), 0);
        q.ping().await.unwrap();
    }

    pub async fn retry_redelivers_after_the_delay(q: Arc<dyn MailQueue>) {
        q.enqueue(job("retry@example.com")).await.unwrap();
        let d = q.receive().await.unwrap();
        let start = std::time::Instant::now();
        d.retry(Duration::from_millis(300)).await.unwrap();
        assert_eq!(q.depth().await.unwrap(), 1, "a job waiting for its retry still counts");
        let again = tokio::time::timeout(Duration::from_secs(5), q.receive()).await.unwrap().unwrap();
        assert!(start.elapsed() >= Duration::from_millis(300));
        assert_eq!(again.attempts(), 1);
        assert_eq!(again.job().to, "retry@example.com");
        again.ack().await.unwrap();
    }

    pub async fn dead_letters_are_counted(q: Arc<dyn MailQueue>) {
        q.enqueue(job("dead@example.com")).await.unwrap();
        q.receive().await.unwrap().dead_letter().await.unwrap();
        assert_eq!(q.dead_letters().await.unwrap(), 1);
        assert_eq!(q.depth().await.unwrap(), 0);
    }

    pub async fn dead_letters_can_be_requeued(q: Arc<dyn MailQueue>) {
        for to in ["a@example.com", "b@example.com"] {
            q.enqueue(job(to)).await.unwrap();
            let d = q.receive().await.unwrap();
            d.retry(Duration::from_millis(1)).await.unwrap();
            let again = tokio::time::timeout(Duration::from_secs(5), q.receive()).await.unwrap().unwrap();
            assert_eq!(again.attempts(), 1);
            again.dead_letter().await.unwrap();
        }
        assert_eq!(q.dead_letters().await.unwrap(), 2);
        assert_eq!(q.requeue_dead_letters().await.unwrap(), 2);
        assert_eq!(q.dead_letters().await.unwrap(), 0);
        let mut back = Vec::new();
        for _ in 0..2 {
            let d = tokio::time::timeout(Duration::from_secs(5), q.receive()).await.unwrap().unwrap();
            assert_eq!(d.attempts(), 0, "a re-queued mail gets all its attempts again");
            back.push(d.job().to.clone());
            d.ack().await.unwrap();
        }
        back.sort();
        assert_eq!(back, ["a@example.com", "b@example.com"]);
        assert_eq!(q.requeue_dead_letters().await.unwrap(), 0, "nothing left to move");
    }

    pub async fn unsettled_deliveries_come_back(q: Arc<dyn MailQueue>) {
        q.enqueue(job("crash@example.com")).await.unwrap();
        drop(q.receive().await.unwrap());
        let again = tokio::time::timeout(Duration::from_secs(5), q.receive()).await.unwrap().unwrap();
        assert_eq!(again.job().to, "crash@example.com");
        again.ack().await.unwrap();
    }
}

macro_rules! queue_contract {
    ($backend:ident, $make:expr) => {
        mod $backend {
            use super::*;
            queue_contract!(@case $make, fifo_and_depth, retry_redelivers_after_the_delay, dead_letters_are_counted, dead_letters_can_be_requeued, unsettled_deliveries_come_back);
        }
    };
    (@case $make:expr, $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (queue, cleanup) = $make().await;
                suite::$case(queue).await;
                if let Some(amqp) = cleanup {
                    amqp.delete_queues().await.unwrap();
                }
            }
        )*
    };
}

async fn memory() -> (Arc<dyn MailQueue>, Option<Arc<AmqpQueue>>) {
    (Arc::new(MemoryQueue::new(100)), None)
}

use common::backends::amqp_url;

/// The real RabbitMQ the test command starts (or `CONFAB_TEST_AMQP_URL`), with queue
/// names of the test's own.
async fn rabbitmq() -> (Arc<dyn MailQueue>, Option<Arc<AmqpQueue>>) {
    let name = format!("send-otp-test-{}", confab::domain::ObjectId::new());
    let queue = Arc::new(AmqpQueue::new(&amqp_url(), &name, 16));
    queue.ping().await.expect("RabbitMQ is running (packaging/test.sh starts it)");
    (queue.clone(), Some(queue))
}

queue_contract!(rabbitmq_queue, rabbitmq);

/// Interoperability with the original: its producer publishes plain JSON to a durable
/// queue with no headers; confab's worker must take it as a first attempt.
#[tokio::test]
async fn rabbitmq_reads_the_originals_messages() {
    use lapin::options::BasicPublishOptions;
    use lapin::{BasicProperties, Connection, ConnectionProperties};
    let (queue, cleanup) = rabbitmq().await;
    let name = queue_name(&cleanup);
    let conn = Connection::connect(&amqp_url(), ConnectionProperties::default()).await.unwrap();
    let channel = conn.create_channel().await.unwrap();
    let body = br#"{"to":"legacy@example.com","subject":"Your otp code","body":"Your OTP is 123456. It is valid for 5 minutes"}"#;
    channel
        .basic_publish(
            "".into(),
            name.as_str().into(),
            BasicPublishOptions::default(),
            body,
            BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    let delivery = tokio::time::timeout(Duration::from_secs(5), queue.receive()).await.unwrap().unwrap();
    assert_eq!(delivery.job().to, "legacy@example.com");
    assert_eq!(delivery.attempts(), 0);
    delivery.ack().await.unwrap();
    // Garbage is set aside, not retried forever.
    channel
        .basic_publish(
            "".into(),
            name.as_str().into(),
            BasicPublishOptions::default(),
            b"not json",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    queue.enqueue(job("after-garbage@example.com")).await.unwrap();
    let next = tokio::time::timeout(Duration::from_secs(5), queue.receive()).await.unwrap().unwrap();
    assert_eq!(next.job().to, "after-garbage@example.com");
    next.ack().await.unwrap();
    assert_eq!(queue.dead_letters().await.unwrap(), 1);
    cleanup.unwrap().delete_queues().await.unwrap();
}

fn queue_name(amqp: &Option<Arc<AmqpQueue>>) -> String {
    let described = amqp.as_ref().unwrap().describe();
    described.rsplit("queue ").next().unwrap().trim_end_matches(')').to_string()
}

/// The worker over RabbitMQ and SMTP: retried while SMTP refuses, delivered once it
/// accepts, then nothing left in any queue.
#[tokio::test]
async fn rabbitmq_worker_retries_through_the_delay_queue() {
    let (queue, cleanup) = rabbitmq().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let down =
        SmtpMailer::new(&format!("smtp://127.0.0.1:{port}"), "confab <no-reply@localhost>".parse().unwrap()).unwrap();
    queue.enqueue(job("retry-amqp@example.com")).await.unwrap();
    let outcome = process_one(queue.as_ref(), &down, &policy(5), &Telemetry::default()).await.unwrap();
    let retried_at = std::time::Instant::now();
    assert_eq!(outcome, Outcome::Retrying { delay: Duration::from_millis(100) });
    let sink = SmtpSink::start_on(port);
    let outcome = tokio::time::timeout(
        Duration::from_secs(10),
        process_one(queue.as_ref(), &down, &policy(5), &Telemetry::default()),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(outcome, Outcome::Sent);
    // Timed from the retry, not from the sink's start, which can take longer than the
    // delay on a loaded machine.
    assert!(retried_at.elapsed() >= Duration::from_millis(100), "came back through the delay queue");
    assert_eq!(sink.mails_to("retry-amqp@example.com").len(), 1);
    assert_eq!(queue.depth().await.unwrap(), 0);
    cleanup.unwrap().delete_queues().await.unwrap();
}

queue_contract!(memory_queue, memory);

fn policy(max_attempts: u32) -> RetryPolicy {
    RetryPolicy { max_attempts, first_delay: Duration::from_millis(100), max_delay: Duration::from_millis(400) }
}

#[tokio::test]
async fn worker_acks_only_after_smtp_accepted() {
    let sink = SmtpSink::start();
    let mailer = SmtpMailer::new(&sink.url(), "confab <no-reply@localhost>".parse().unwrap()).unwrap();
    let queue = MemoryQueue::new(10);
    queue.enqueue(job("ok@example.com")).await.unwrap();
    assert_eq!(process_one(&queue, &mailer, &policy(3), &Telemetry::default()).await.unwrap(), Outcome::Sent);
    assert_eq!(queue.depth().await.unwrap(), 0);
    let mails = sink.mails_to("ok@example.com");
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("From: confab <no-reply@localhost>"));
}

#[tokio::test]
async fn worker_retries_while_smtp_is_down_then_delivers() {
    // A port with nothing listening yet: real connection refusals.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mailer =
        SmtpMailer::new(&format!("smtp://127.0.0.1:{port}"), "confab <no-reply@localhost>".parse().unwrap()).unwrap();
    assert!(mailer.describe().contains(&port.to_string()));
    let queue = MemoryQueue::new(10);
    queue.enqueue(job("later@example.com")).await.unwrap();
    let outcome = process_one(&queue, &mailer, &policy(5), &Telemetry::default()).await.unwrap();
    assert_eq!(outcome, Outcome::Retrying { delay: Duration::from_millis(100) });
    assert_eq!(
        process_one(&queue, &mailer, &policy(5), &Telemetry::default()).await.unwrap(),
        Outcome::Retrying { delay: Duration::from_millis(200) }
    );
    assert_eq!(queue.depth().await.unwrap(), 1, "the job is kept while it waits");
    assert_eq!(queue.dead_letters().await.unwrap(), 0);
}

#[tokio::test]
async fn worker_dead_letters_after_the_last_attempt() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mailer =
        SmtpMailer::new(&format!("smtp://127.0.0.1:{port}"), "confab <no-reply@localhost>".parse().unwrap()).unwrap();
    let queue = MemoryQueue::new(10);
    queue.enqueue(job("never@example.com")).await.unwrap();
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        outcomes.push(process_one(&queue, &mailer, &policy(3), &Telemetry::default()).await.unwrap());
    }
    assert_eq!(outcomes.last(), Some(&Outcome::DeadLettered));
    assert_eq!(queue.dead_letters().await.unwrap(), 1);
    assert_eq!(queue.depth().await.unwrap(), 0);
}

#[tokio::test]
async fn worker_recovers_when_smtp_comes_back() {
    let sink = SmtpSink::start();
    let url = sink.url();
    let port = sink.port;
    drop(sink);
    let mailer = SmtpMailer::new(&url, "confab <no-reply@localhost>".parse().unwrap()).unwrap();
    let queue = MemoryQueue::new(10);
    queue.enqueue(job("back@example.com")).await.unwrap();
    assert!(matches!(
        process_one(&queue, &mailer, &policy(5), &Telemetry::default()).await.unwrap(),
        Outcome::Retrying { .. }
    ));
    let revived = SmtpSink::start_on(port);
    assert_eq!(process_one(&queue, &mailer, &policy(5), &Telemetry::default()).await.unwrap(), Outcome::Sent);
    assert_eq!(revived.mails_to("back@example.com").len(), 1);
}
