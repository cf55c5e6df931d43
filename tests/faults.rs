//! Backend outages, refused (Redis restarting) and blackholed (a partition, where only
//! timeouts notice), through a TCP proxy the test controls (tests/common/fault.rs) in
//! front of the real Redis: requests answer within the deadline, `/readyz` names what is
//! down, messages are stored throughout, and real-time delivery resumes by itself once
//! Redis is back.

mod common;

use std::time::{Duration, Instant};

use common::fault::FaultProxy;
use common::sio::RawSocket;
use common::{unique_email, TestApp};
use serde_json::json;

const REDIS: &str = "127.0.0.1:6379";

async fn app_behind(proxy: &FaultProxy) -> TestApp {
    let url = format!("redis://{}", proxy.host_port());
    TestApp::spawn_with(|c| {
        c.redis_url = Some(url);
        c.redis_prefix = format!("confab-fault-{}:", confab::domain::ObjectId::new());
        c.backend_timeout_ms = 1000;
    })
    .await
}

async fn post(
    app: &TestApp,
    token: &str,
    chat: &str,
    text: &str,
) -> (reqwest::StatusCode, serde_json::Value, Duration) {
    let started = Instant::now();
    let (status, body) = app.post("/api/v1/message", json!({ "chatId": chat, "text": text }), Some(token)).await;
    (status, body, started.elapsed())
}

/// Posts until `socket` hears one of them; returns how long that took.
async fn delivery_resumes(app: &TestApp, token: &str, chat: &str, socket: &mut RawSocket, limit: Duration) -> Duration {
    let started = Instant::now();
    let mut n = 0;
    while started.elapsed() < limit {
        n += 1;
        let text = format!("after-{n}");
        let (status, body, _) = post(app, token, chat, &text).await;
        assert_eq!(status, 201, "{body}");
        if socket.wait_for("newMessage", Duration::from_millis(300), |m| m["text"] == text.as_str()).await.is_some() {
            return started.elapsed();
        }
    }
    panic!("real-time delivery did not resume within {limit:?}");
}

async fn outage(kind: &str) {
    let proxy = FaultProxy::start(REDIS).await;
    let app = app_behind(&proxy).await;
    let (_, alice) = app.user_with_token(&unique_email("fault-alice")).await;
    let (bob, bob_token) = app.user_with_token(&unique_email("fault-bob")).await;
    let (_, chat) = app.post("/api/v1/chat/new", json!({ "otherUserId": bob.id.to_hex() }), Some(&alice)).await;
    let chat = chat["chatId"].as_str().unwrap().to_string();
    let mut old_socket = RawSocket::connect(&app.base, &bob_token).await;
    let ack = old_socket.emit_with_ack("joinChat", &json!(chat), Duration::from_secs(5)).await;
    assert_eq!(ack.map(|a| a["ok"].clone()), Some(json!(true)));
    let (status, _, _) = post(&app, &alice, &chat, "before").await;
    assert_eq!(status, 201);
    assert!(old_socket.wait_for("newMessage", Duration::from_secs(3), |m| m["text"] == "before").await.is_some());

    match kind {
        "refused" => proxy.refuse(),
        _ => proxy.blackhole(),
    }
    // During the outage: stored anyway, answered within the deadline; /readyz says why.
    let (status, body, took) = post(&app, &alice, &chat, "during").await;
    assert_eq!(status, 201, "the store comes first: {body}");
    assert!(took < Duration::from_millis(2500), "{kind}: POST took {took:?}");
    let started = Instant::now();
    let (status, ready) = app.get("/readyz", None).await;
    assert!(started.elapsed() < Duration::from_millis(2500), "{kind}: /readyz took {:?}", started.elapsed());
    assert_eq!(status, 503, "{ready}");
    let down: Vec<&str> = ready["backends"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["ok"] == false)
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert!(down.contains(&"realtime") && down.contains(&"ephemeral"), "{kind}: {ready}");
    // Logins need Redis: a clear 503 within the deadline.
    let started = Instant::now();
    let (status, body) = app.post("/api/v1/login", json!({ "email": unique_email("fault-login") }), None).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["message"], "Service temporarily unavailable, please retry");
    assert!(started.elapsed() < Duration::from_millis(2500), "{kind}: login took {:?}", started.elapsed());
    // Typing relays cannot reach the other instances; they must not hold up the typist's
    // later events for a deadline each.
    for _ in 0..10 {
        old_socket.emit("typing", &json!({ "chatId": chat })).await;
    }
    let started = Instant::now();
    let ack = old_socket.emit_with_ack("joinChat", &json!(chat), Duration::from_secs(30)).await;
    assert_eq!(ack.map(|a| a["ok"].clone()), Some(json!(true)), "{kind}");
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "{kind}: joinChat after typing took {:?}",
        started.elapsed()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;

    proxy.restore();
    let resumed = delivery_resumes(&app, &alice, &chat, &mut old_socket, Duration::from_secs(5)).await;
    println!("{kind}: delivery to an open socket resumed {resumed:?} after Redis came back");
    let mut new_socket = RawSocket::connect(&app.base, &bob_token).await;
    let (status, _, _) = post(&app, &alice, &chat, "to-new").await;
    assert_eq!(status, 201);
    assert!(new_socket.wait_for("newMessage", Duration::from_secs(3), |m| m["text"] == "to-new").await.is_some());
    let back = Instant::now();
    loop {
        let (status, ready) = app.get("/readyz", None).await;
        if status == 200 {
            break;
        }
        assert!(back.elapsed() < Duration::from_secs(5), "{kind}: still not ready 5 s after recovery: {ready}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("{kind}: /readyz 200 again {:?} later", back.elapsed());
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.lines().any(|l| l.starts_with("confab_realtime_broadcast_failures_total{event=\"newMessage\"}")),
        "failed broadcasts are counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn realtime_recovers_from_a_refused_redis() {
    outage("refused").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn realtime_recovers_from_a_blackholed_redis() {
    outage("blackholed").await;
}

/// The mail queue on RabbitMQ through the fault proxy: while the broker is unreachable a
/// login answers 503 within the deadline (its code is not left behind unsent), and once
/// it is back logins are mailed again without a restart, by the same worker.
async fn broker_outage(kind: &str) {
    let proxy = FaultProxy::start("127.0.0.1:5672").await;
    let smtp = common::smtp::SmtpSink::start();
    let queue = format!("send-otp-fault-{}", confab::domain::ObjectId::new());
    let url = format!("amqp://guest:guest@{}/%2f", proxy.host_port());
    let app = TestApp::spawn_with(|c| {
        c.amqp_url = Some(url);
        c.amqp_queue = queue;
        c.smtp_url = Some(smtp.url());
        c.backend_timeout_ms = 1000;
        c.login_ip_limit = 1000;
    })
    .await;
    let before = unique_email("broker-before");
    assert_eq!(app.post("/api/v1/login", json!({ "email": before }), None).await.0, 200);
    smtp.wait_for_otp(&before).await;

    match kind {
        "refused" => proxy.refuse(),
        _ => proxy.blackhole(),
    }
    let started = Instant::now();
    let (status, body) = app.post("/api/v1/login", json!({ "email": unique_email("broker-during") }), None).await;
    assert_eq!(status, 503, "{kind}: {body}");
    assert!(started.elapsed() < Duration::from_millis(2500), "{kind}: login took {:?}", started.elapsed());
    let (status, ready) = app.get("/readyz", None).await;
    assert_eq!(status, 503, "{ready}");
    tokio::time::sleep(Duration::from_secs(2)).await;

    proxy.restore();
    let back = Instant::now();
    let after = unique_email("broker-after");
    loop {
        let (status, body) = app.post("/api/v1/login", json!({ "email": after }), None).await;
        if status == 200 {
            break;
        }
        assert_eq!(status, 503, "{body}");
        assert!(back.elapsed() < Duration::from_secs(10), "{kind}: logins still refused 10 s after recovery");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let accepted = back.elapsed();
    smtp.wait_for_otp(&after).await;
    println!("{kind}: logins accepted {accepted:?} and mailed {:?} after RabbitMQ came back", back.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_recovers_from_a_refused_rabbitmq() {
    broker_outage("refused").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_recovers_from_a_blackholed_rabbitmq() {
    broker_outage("blackholed").await;
}

/// An SMTP server down for 45 s, longer than the first retries reach (2, 4, 8, 16 s):
/// a code's mail keeps being retried while the code is valid, so every mail arrives once
/// the server is back (before, all of them were dead-lettered at about 30 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_mails_outlast_a_45_second_smtp_outage() {
    let port = common::free_port();
    let app = TestApp::spawn_with(|c| {
        c.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
        c.login_ip_limit = 1000;
    })
    .await;
    let emails: Vec<String> = (0..10).map(|i| unique_email(&format!("outage{i}"))).collect();
    for email in &emails {
        assert_eq!(app.post("/api/v1/login", json!({ "email": email }), None).await.0, 200);
    }
    tokio::time::sleep(Duration::from_secs(45)).await;
    let smtp = common::smtp::SmtpSink::start_on(port);
    let back = Instant::now();
    for email in &emails {
        let code = smtp.wait_for_otp_within(email, Duration::from_secs(40)).await;
        let (status, body) = app.post("/api/v1/verify", json!({ "email": email, "otp": code }), None).await;
        assert_eq!(status, 200, "the mailed code still works: {body}");
    }
    for email in &emails {
        assert_eq!(smtp.mails_to(email).len(), 1, "{email}: exactly one mail");
    }
    println!("all 10 mails delivered {:?} after SMTP came back", back.elapsed());
}

/// The MongoDB store through the fault proxy: requests that need it answer 503 within
/// the deadline while it is refused or blackholed, and succeed again once it is back.
async fn store_outage(kind: &str) {
    let target =
        common::backends::mongo_base().trim_start_matches("mongodb://").split(['/', '?']).next().unwrap().to_string();
    let proxy = FaultProxy::start(&target).await;
    let (_, database) = common::backends::mongo_uri_for_new_database();
    let uri = format!("mongodb://{}/{database}?directConnection=true", proxy.host_port());
    let app = TestApp::spawn_with(|c| {
        c.mongo_uri = Some(uri);
        c.backend_timeout_ms = 1000;
    })
    .await;
    let (_, token) = app.user_with_token(&unique_email("store-fault")).await;
    assert_eq!(app.get("/api/v1/chat/all", Some(&token)).await.0, 200);
    match kind {
        "refused" => proxy.refuse(),
        _ => proxy.blackhole(),
    }
    let started = Instant::now();
    let (status, body) = app.get("/api/v1/chat/all", Some(&token)).await;
    assert_eq!(status, 503, "{kind}: {body}");
    assert_eq!(body["message"], "Service temporarily unavailable, please retry");
    assert!(started.elapsed() < Duration::from_millis(2500), "{kind}: answered after {:?}", started.elapsed());
    let (status, ready) = app.get("/readyz", None).await;
    assert_eq!(status, 503, "{ready}");
    proxy.restore();
    let back = Instant::now();
    while app.get("/api/v1/chat/all", Some(&token)).await.0 != 200 {
        assert!(back.elapsed() < Duration::from_secs(15), "{kind}: the store did not come back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("{kind}: MongoDB store answering again {:?} after it came back", back.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_recover_from_a_refused_mongodb() {
    store_outage("refused").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_recover_from_a_blackholed_mongodb() {
    store_outage("blackholed").await;
}
