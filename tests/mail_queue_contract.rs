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
use confab::queue::memory::MemoryQueue;

fn job(to: &str) -> MailJob {
    MailJob {
        to: to.into(),
        subject: "Your otp code".into(),
        body: "Your OTP is 123456. It is valid for 5 minutes".into(),
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
            queue_contract!(@case $make, fifo_and_depth, retry_redelivers_after_the_delay, dead_letters_are_counted, unsettled_deliveries_come_back);
        }
    };
    (@case $make:expr, $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                suite::$case($make().await).await;
            }
        )*
    };
}

async fn memory() -> Arc<dyn MailQueue> {
    Arc::new(MemoryQueue::new(100))
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
    assert_eq!(process_one(&queue, &mailer, &policy(3)).await.unwrap(), Outcome::Sent);
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
    let outcome = process_one(&queue, &mailer, &policy(5)).await.unwrap();
    assert_eq!(outcome, Outcome::Retrying { delay: Duration::from_millis(100) });
    assert_eq!(
        process_one(&queue, &mailer, &policy(5)).await.unwrap(),
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
        outcomes.push(process_one(&queue, &mailer, &policy(3)).await.unwrap());
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
    assert!(matches!(process_one(&queue, &mailer, &policy(5)).await.unwrap(), Outcome::Retrying { .. }));
    let revived = SmtpSink::start_on(port);
    assert_eq!(process_one(&queue, &mailer, &policy(5)).await.unwrap(), Outcome::Sent);
    assert_eq!(revived.mails_to("back@example.com").len(), 1);
}
