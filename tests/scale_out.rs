//! Two confab instances sharing one SQLite file, one Redis and one RabbitMQ act as one:
//! a code issued by A verifies on B, and mails requested on both are each delivered
//! exactly once by the two competing mail workers.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::smtp::SmtpSink;
use common::TestApp;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_login_state_and_deliver_each_mail_once() {
    let sink = SmtpSink::start();
    let shared_dir = tempfile::tempdir().unwrap();
    let redis_url = std::env::var("CONFAB_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let amqp_url =
        std::env::var("CONFAB_TEST_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let tag = confab::domain::ObjectId::new();
    let queue = format!("send-otp-test-{tag}");
    let configure = |c: &mut confab::config::Config| {
        c.data_dir = shared_dir.path().to_path_buf();
        c.smtp_url = Some(sink.url());
        c.redis_url = Some(redis_url.clone());
        c.redis_prefix = format!("confab-test:{tag}:");
        c.amqp_url = Some(amqp_url.clone());
        c.amqp_queue = queue.clone();
        c.login_ip_limit = 10_000;
    };
    let a = TestApp::spawn_with(configure).await;
    let b = TestApp::spawn_with(configure).await;
    for app in [&a, &b] {
        let deadline = Instant::now() + Duration::from_secs(10);
        while app.get("/readyz", None).await.0 != 200 {
            assert!(Instant::now() < deadline, "instance not ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // 200 codes requested, alternating instances.
    let emails: Vec<String> = (0..200).map(|i| format!("scale-{i}-{tag}@example.com")).collect();
    let started = Instant::now();
    let requests = emails.iter().enumerate().map(|(i, email)| {
        let app = if i % 2 == 0 { &a } else { &b };
        app.post("/api/v1/login", json!({ "email": email }), None)
    });
    for (status, body) in futures_util::future::join_all(requests).await {
        assert_eq!(status, 200, "{body}");
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let counts = loop {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for mail in sink.mails() {
            if let Some(to) = mail.lines().find_map(|l| l.strip_prefix("To: ")) {
                *counts.entry(to.trim().to_string()).or_default() += 1;
            }
        }
        if emails.iter().all(|e| counts.contains_key(e)) || Instant::now() > deadline {
            break counts;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let elapsed = started.elapsed();
    for email in &emails {
        assert_eq!(counts.get(email), Some(&1), "{email} delivered exactly once");
    }
    println!(
        "200 OTP mails through RabbitMQ → SMTP in {:.2} s ({:.0} mails/s)",
        elapsed.as_secs_f64(),
        200.0 / elapsed.as_secs_f64()
    );

    // A code mailed by A verifies on B; the user exists for both (one SQLite file).
    let otp = sink.wait_for_otp(&emails[0]).await;
    let (status, verified) = b.post("/api/v1/verify", json!({ "email": emails[0], "otp": otp }), None).await;
    assert_eq!(status, 200, "{verified}");
    let token = verified["token"].as_str().unwrap();
    let (status, me) = a.get("/api/v1/me", Some(token)).await;
    assert_eq!(status, 200);
    assert_eq!(me["email"], emails[0].as_str());

    let cleanup = confab::queue::amqp::AmqpQueue::new(&amqp_url, &queue, 1);
    cleanup.delete_queues().await.unwrap();
}
