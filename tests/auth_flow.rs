//! The login flow end to end through a real SMTP server, and the OTP rules.

mod common;

use common::smtp::SmtpSink;
use common::{expect_error, unique_email, TestApp};
use serde_json::json;

async fn app_with_smtp(tweak: impl FnOnce(&mut confab::config::Config)) -> (TestApp, SmtpSink) {
    let sink = SmtpSink::start();
    let url = sink.url();
    let app = TestApp::spawn_with(|c| {
        c.smtp_url = Some(url);
        tweak(c);
    })
    .await;
    (app, sink)
}

#[tokio::test]
async fn login_verify_me_update_and_list_through_real_smtp() {
    let (app, sink) = app_with_smtp(|_| {}).await;
    let email = unique_email("Alice");

    // Mixed case and spaces are normalised: one identity per address.
    let (status, body) =
        app.post("/api/v1/login", json!({ "email": format!("  {} ", email.to_uppercase()) }), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"message": "OTP sent to your mail"}));

    let lower = email.to_lowercase();
    let otp = sink.wait_for_otp(&lower).await;
    let mail = &sink.mails_to(&lower)[0];
    assert!(mail.contains("Subject: Your otp code"), "{mail}");
    assert!(mail.contains(&format!("Your OTP is {otp}. It is valid for 5 minutes")), "{mail}");

    let (status, body) = app.post("/api/v1/verify", json!({ "email": lower, "otp": otp }), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"], "User Verified");
    let user = &body["user"];
    let expected_name: String = lower.chars().take(8).collect();
    assert_eq!(user["name"], expected_name.as_str());
    assert_eq!(user["email"], lower.as_str());
    assert_eq!(user["__v"], 0);
    let id = user["_id"].as_str().unwrap();
    assert_eq!(id.len(), 24);
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    for key in ["createdAt", "updatedAt"] {
        let ts = user[key].as_str().unwrap();
        assert!(ts.ends_with('Z') && ts.len() == 24, "{key} = {ts}");
    }
    let token = body["token"].as_str().unwrap().to_string();

    let (status, me) = app.get("/api/v1/me", Some(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(&me, user);

    let (status, updated) = app.post("/api/v1/update/user", json!({ "name": "  Alice Liddell " }), Some(&token)).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["message"], "User Updated");
    assert_eq!(updated["user"]["name"], "Alice Liddell");
    let new_token = updated["token"].as_str().unwrap();
    assert_ne!(new_token, token);

    // /me reads the store, so even the old token sees the new name.
    let (_, me) = app.get("/api/v1/me", Some(&token)).await;
    assert_eq!(me["name"], "Alice Liddell");

    let (status, all) = app.get("/api/v1/user/all", Some(new_token)).await;
    assert_eq!(status, 200);
    let all = all.as_array().unwrap();
    assert!(all.iter().any(|u| u["_id"] == id && u["name"] == "Alice Liddell"));

    let (status, by_id) = app.get(&format!("/api/v1/user/{id}"), Some(new_token)).await;
    assert_eq!(status, 200);
    assert_eq!(by_id["email"], lower.as_str());
}

#[tokio::test]
async fn codes_are_single_use_and_resend_is_limited() {
    let (app, sink) = app_with_smtp(|_| {}).await;
    let email = unique_email("bob");
    assert_eq!(app.post("/api/v1/login", json!({ "email": email }), None).await.0, 200);
    let msg = expect_error(app.post("/api/v1/login", json!({ "email": email }), None).await, 429);
    assert_eq!(msg, "Too many requests. Please wait before requesting new otp");

    let otp = sink.wait_for_otp(&email).await;
    let (status, first) = app.post("/api/v1/verify", json!({ "email": email, "otp": otp }), None).await;
    assert_eq!(status, 200);
    let msg = expect_error(app.post("/api/v1/verify", json!({ "email": email, "otp": otp }), None).await, 400);
    assert_eq!(msg, "Invalid or expired OTP");
    assert_eq!(sink.mails_to(&email).len(), 1, "exactly one mail was sent");

    // A second login of the same address is the same user.
    let (user, _) = app.user_with_token(&email).await;
    assert_eq!(first["user"]["_id"], user.id.to_hex().as_str());
}

#[tokio::test]
async fn five_wrong_guesses_burn_the_code() {
    let (app, sink) = app_with_smtp(|_| {}).await;
    let email = unique_email("carol");
    assert_eq!(app.post("/api/v1/login", json!({ "email": email }), None).await.0, 200);
    let otp = sink.wait_for_otp(&email).await;
    let wrong = if otp == "111111" { "222222" } else { "111111" };
    for attempt in 1..=5 {
        let msg = expect_error(app.post("/api/v1/verify", json!({ "email": email, "otp": wrong }), None).await, 400);
        assert_eq!(msg, "Invalid or expired OTP", "attempt {attempt}");
    }
    // The sixth attempt is refused even with the right code.
    let msg = expect_error(app.post("/api/v1/verify", json!({ "email": email, "otp": otp }), None).await, 429);
    assert_eq!(msg, "Too many wrong attempts. Please request a new OTP");
}

#[tokio::test]
async fn expired_codes_are_refused() {
    let (app, sink) = app_with_smtp(|c| c.otp_ttl_secs = 1).await;
    let email = unique_email("dave");
    assert_eq!(app.post("/api/v1/login", json!({ "email": email }), None).await.0, 200);
    let otp = sink.wait_for_otp(&email).await;
    assert!(sink.mails_to(&email)[0].contains("It is valid for 1 second"));
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let msg = expect_error(app.post("/api/v1/verify", json!({ "email": email, "otp": otp }), None).await, 400);
    assert_eq!(msg, "Invalid or expired OTP");
}

#[tokio::test]
async fn login_rejects_missing_blank_and_invalid_emails() {
    let app = TestApp::spawn().await;
    for body in [json!({}), json!({ "email": "" }), json!({ "email": "   " })] {
        assert_eq!(expect_error(app.post("/api/v1/login", body, None).await, 400), "Email is required");
    }
    for bad in ["alice", "alice@", "a b@example.com", "@example.com"] {
        let msg = expect_error(app.post("/api/v1/login", json!({ "email": bad }), None).await, 400);
        assert_eq!(msg, "Please enter a valid email address", "{bad}");
    }
    // Wrong JSON type and malformed JSON are client errors too.
    expect_error(app.post("/api/v1/login", json!({ "email": 42 }), None).await, 400);
    let resp = app
        .client
        .post(app.url("/api/v1/login"))
        .header("content-type", "application/json")
        .body("{\"email\":")
        .send()
        .await
        .unwrap();
    expect_error(common::read(resp).await, 400);
}

#[tokio::test]
async fn verify_requires_both_fields() {
    let app = TestApp::spawn().await;
    for body in [
        json!({}),
        json!({ "email": "a@example.com" }),
        json!({ "otp": "123456" }),
        json!({ "email": " ", "otp": "1" }),
    ] {
        assert_eq!(expect_error(app.post("/api/v1/verify", body, None).await, 400), "Email and OTP Required");
    }
    let msg = expect_error(
        app.post("/api/v1/verify", json!({ "email": "nobody@example.com", "otp": "123456" }), None).await,
        400,
    );
    assert_eq!(msg, "Invalid or expired OTP");
}

#[tokio::test]
async fn login_is_limited_per_client_address() {
    let app = TestApp::spawn_with(|c| c.login_ip_limit = 3).await;
    for i in 0..3 {
        let (status, body) = app.post("/api/v1/login", json!({ "email": unique_email(&format!("ip{i}")) }), None).await;
        assert_eq!(status, 200, "{body}");
    }
    let msg = expect_error(app.post("/api/v1/login", json!({ "email": unique_email("ip3") }), None).await, 429);
    assert!(msg.contains("Too many OTP requests"), "{msg}");
}

/// Behind a trusted proxy the limit is per client, and the client cannot dodge it by
/// sending its own `X-Forwarded-For`: only the hop the proxy appended counts.
#[tokio::test]
async fn behind_a_proxy_the_limit_uses_the_hop_the_proxy_added() {
    let app = TestApp::spawn_with(|c| {
        c.login_ip_limit = 2;
        c.trust_forwarded_for = true;
    })
    .await;
    let login = |forwarded: String, tag: &str| {
        app.client
            .post(app.url("/api/v1/login"))
            .header("x-forwarded-for", forwarded)
            .json(&json!({ "email": unique_email(tag) }))
            .send()
    };
    for (i, spoofed) in ["1.1.1.1", "2.2.2.2"].iter().enumerate() {
        let resp = login(format!("{spoofed}, 203.0.113.7"), &format!("xff{i}")).await.unwrap();
        assert_eq!(resp.status(), 200);
    }
    let third = common::read(login("3.3.3.3, 203.0.113.7".into(), "xff2").await.unwrap()).await;
    assert!(expect_error(third, 429).contains("Too many OTP requests"));
    // Another client behind the same proxy is not affected.
    let other = login("1.1.1.1, 198.51.100.9".into(), "xff3").await.unwrap();
    assert_eq!(other.status(), 200);
}

/// Two instances sharing one Redis act as one: a code mailed by A verifies on B, and
/// the resend limit set on A holds on B.
#[tokio::test]
async fn otp_state_is_shared_through_redis() {
    let sink = SmtpSink::start();
    let redis_url = common::backends::redis_url();
    let prefix = format!("confab-test:{}:", confab::domain::ObjectId::new());
    let shared = |c: &mut confab::config::Config| {
        c.smtp_url = Some(sink.url());
        c.redis_url = Some(redis_url.clone());
        c.redis_prefix = prefix.clone();
    };
    let a = TestApp::spawn_with(shared).await;
    let b = TestApp::spawn_with(shared).await;
    // Wait until both are connected to Redis.
    for app in [&a, &b] {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let (status, body) = app.get("/readyz", None).await;
            if status == 200 {
                assert!(body["backends"][1]["backend"].as_str().unwrap().starts_with("redis"), "{body}");
                break;
            }
            assert!(std::time::Instant::now() < deadline, "not ready: {body}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    let email = unique_email("shared");
    assert_eq!(a.post("/api/v1/login", json!({ "email": email }), None).await.0, 200);
    assert_eq!(
        expect_error(b.post("/api/v1/login", json!({ "email": email }), None).await, 429),
        "Too many requests. Please wait before requesting new otp"
    );
    let otp = sink.wait_for_otp(&email).await;
    let (status, body) = b.post("/api/v1/verify", json!({ "email": email, "otp": otp }), None).await;
    assert_eq!(status, 200, "{body}");
    // Single use across instances too.
    assert_eq!(
        expect_error(a.post("/api/v1/verify", json!({ "email": email, "otp": otp }), None).await, 400),
        "Invalid or expired OTP"
    );
}
