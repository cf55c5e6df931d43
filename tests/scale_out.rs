//! Two confab instances sharing one SQLite file, one Redis and one RabbitMQ act as one:
//! a code issued by A verifies on B, and mails requested on both are each delivered
//! exactly once by the two competing mail workers.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::sio::RawSocket;
use common::smtp::SmtpSink;
use common::TestApp;
use serde_json::json;

use common::backends::{amqp_url, redis_url};

async fn ready(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.get("/readyz", None).await.0 != 200 {
        assert!(Instant::now() < deadline, "instance not ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Real time across instances through socketioxide's Redis adapter: a message POSTed on
/// A reaches a socket on B, B's reader makes A's socket see `messagesSeen`, and the
/// online list on A includes a user connected only to B.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_on_two_instances_act_as_one() {
    let shared_dir = tempfile::tempdir().unwrap();
    let tag = confab::domain::ObjectId::new();
    let configure = |c: &mut confab::config::Config| {
        c.data_dir = shared_dir.path().to_path_buf();
        c.redis_url = Some(redis_url());
        c.redis_prefix = format!("confab-test:{tag}:");
    };
    let a = TestApp::spawn_with(configure).await;
    let b = TestApp::spawn_with(configure).await;
    ready(&a).await;
    ready(&b).await;
    let (alice, alice_token) = a.user_with_token("cluster-alice@example.com").await;
    let (bob, bob_token) = a.user_with_token("cluster-bob@example.com").await;
    let (status, chat) =
        a.post("/api/v1/chat/new", json!({ "otherUserId": alice.id.to_hex() }), Some(&bob_token)).await;
    assert_eq!(status, 201, "{chat}");
    let chat_id = chat["chatId"].as_str().unwrap().to_string();

    let mut alice_on_b = RawSocket::connect(&b.base, &alice_token).await;
    let mut bob_on_a = RawSocket::connect(&a.base, &bob_token).await;
    let both = [alice.id.to_hex(), bob.id.to_hex()];
    let online = bob_on_a
        .wait_for("getOnlineUser", Duration::from_secs(10), |list| {
            let ids: Vec<&str> = list.as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
            both.iter().all(|id| ids.contains(&id.as_str()))
        })
        .await;
    assert!(online.is_some(), "A's online list includes Alice, who is connected only to B");

    let mut latencies = Vec::new();
    for i in 0..200 {
        let started = Instant::now();
        let (status, sent) =
            a.post("/api/v1/message", json!({ "chatId": chat_id, "text": format!("hop {i}") }), Some(&bob_token)).await;
        assert_eq!(status, 201, "{sent}");
        let id = sent["message"]["_id"].as_str().unwrap().to_string();
        let got = alice_on_b.wait_for("newMessage", Duration::from_secs(5), |m| m["_id"] == id.as_str()).await;
        assert!(got.is_some(), "message {i} posted on A reached the socket on B");
        latencies.push(started.elapsed());
    }
    latencies.sort();
    println!(
        "POST on A → newMessage on B: p50 {:.2} ms, p99 {:.2} ms over {} messages",
        latencies[latencies.len() / 2].as_secs_f64() * 1e3,
        latencies[latencies.len() * 99 / 100].as_secs_f64() * 1e3,
        latencies.len()
    );

    // Alice (on B) opens the chat: the messages become seen and Bob (on A) is told.
    let (status, _) = b.get(&format!("/api/v1/message/{chat_id}"), Some(&alice_token)).await;
    assert_eq!(status, 200);
    let seen = bob_on_a
        .wait_for("messagesSeen", Duration::from_secs(5), |p| {
            p["chatId"] == chat_id.as_str() && p["seenBy"] == alice.id.to_hex().as_str()
        })
        .await
        .expect("messagesSeen crossed instances");
    assert_eq!(seen["messageIds"].as_array().unwrap().len(), 200);

    // With Alice viewing the chat on B, a message posted on A is seen at once.
    alice_on_b.emit("joinChat", &json!(chat_id)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, sent) =
        a.post("/api/v1/message", json!({ "chatId": chat_id, "text": "seen at once" }), Some(&bob_token)).await;
    assert_eq!(sent["message"]["seen"], true, "A saw through Redis that Alice has the chat open on B");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_login_state_and_deliver_each_mail_once() {
    let sink = SmtpSink::start();
    let shared_dir = tempfile::tempdir().unwrap();
    let redis_url = redis_url();
    let amqp_url = amqp_url();
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
    ready(&a).await;
    ready(&b).await;

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

/// The admin console of either instance sees the whole cluster: a session opened on A
/// works on B (sessions live in Redis), the online list names the instance each user is
/// on, traffic counted on both adds up, a disconnect from A closes a socket held by B,
/// and the queue is RabbitMQ's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_console_sees_the_whole_cluster() {
    let shared_dir = tempfile::tempdir().unwrap();
    let tag = confab::domain::ObjectId::new();
    let queue = format!("send-otp-test-{tag}");
    let configure = |name: &'static str| {
        let (dir, queue) = (shared_dir.path().to_path_buf(), queue.clone());
        move |c: &mut confab::config::Config| {
            c.data_dir = dir;
            c.redis_url = Some(redis_url());
            c.redis_prefix = format!("confab-test:{tag}:");
            c.amqp_url = Some(amqp_url());
            c.amqp_queue = queue;
            c.instance_name = Some(name.into());
        }
    };
    let a = TestApp::spawn_with(configure("node-a")).await;
    let b = TestApp::spawn_with(configure("node-b")).await;
    ready(&a).await;
    ready(&b).await;

    let (status, opened) = common::read(
        a.client
            .post(a.url("/admin/api/session"))
            .json(&json!({ "token": "test-admin-token-0123456789" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{opened}");
    let session = opened["session"].as_str().unwrap().to_string();
    let overview = |app: &TestApp| {
        let req = app.client.get(app.url("/admin/api/overview")).bearer_auth(&session);
        async move { common::read(req.send().await.unwrap()).await }
    };

    let (alice, alice_token) = a.user_with_token(&common::unique_email("admin-alice")).await;
    let (bob, bob_token) = a.user_with_token(&common::unique_email("admin-bob")).await;
    let mut alice_on_b = RawSocket::connect(&b.base, &alice_token).await;
    let _bob_on_a = RawSocket::connect(&a.base, &bob_token).await;

    let deadline = Instant::now() + Duration::from_secs(10);
    let view = loop {
        let (status, view) = overview(&b).await;
        assert_eq!(status, 200, "A's session is honoured by B: {view}");
        if view["onlineCount"] == 2 {
            break view;
        }
        assert!(Instant::now() < deadline, "both users online: {view}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let entry = |id: String| view["online"].as_array().unwrap().iter().find(|u| u["id"] == id).cloned().unwrap();
    let (alice_entry, bob_entry) = (entry(alice.id.to_hex()), entry(bob.id.to_hex()));
    assert_eq!(alice_entry["instances"], json!(["node-b"]));
    assert_eq!(alice_entry["sockets"], 1, "B knows its own sockets");
    assert_eq!(bob_entry["instances"], json!(["node-a"]));
    assert_eq!(bob_entry["sockets"], json!(null), "B does not count A's sockets");
    assert_eq!(view["instance"], "node-b");
    assert!(view["mailQueue"]["backend"].as_str().unwrap().starts_with("rabbitmq"), "{}", view["mailQueue"]);
    assert_eq!(view["mailQueue"]["depth"], 0);
    assert_eq!(view["mailQueue"]["deadLetters"], 0);

    // Codes requested on both instances add up in either console.
    for (app, email) in [(&a, common::unique_email("traffic-a")), (&b, common::unique_email("traffic-b"))] {
        assert_eq!(app.post("/api/v1/login", json!({ "email": email }), None).await.0, 200);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, view) = overview(&a).await;
        let series = view["traffic"]["series"].as_array().unwrap();
        if series.iter().find(|s| s["name"] == "requested").unwrap()["total"] == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "both instances' codes counted: {}", view["traffic"]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let disconnect = a.client.post(a.url(&format!("/admin/api/users/{}/disconnect", alice.id))).bearer_auth(&session);
    let (status, done) = common::read(disconnect.send().await.unwrap()).await;
    assert_eq!((status.as_u16(), done["disconnected"].as_u64()), (200, Some(1)), "{done}");
    assert!(alice_on_b.closed_by_server(Duration::from_secs(5)).await, "A's action closed B's socket");

    confab::queue::amqp::AmqpQueue::new(&amqp_url(), &queue, 1).delete_queues().await.unwrap();
}
