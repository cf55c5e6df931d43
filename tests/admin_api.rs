//! The admin console's API: sessions (admin token or an `admin_emails` user), the rate
//! limit on wrong tokens, what the overview shows, and the actions.

mod common;

use std::time::Duration;

use common::sio::RawSocket;
use common::smtp::SmtpSink;
use common::{expect_error, read, unique_email, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

async fn open_session(app: &TestApp, body: Value) -> (StatusCode, Value) {
    read(app.client.post(app.url("/admin/api/session")).json(&body).send().await.unwrap()).await
}

async fn admin_session(app: &TestApp) -> String {
    let (status, body) = open_session(app, json!({ "token": ADMIN_TOKEN })).await;
    assert_eq!(status, 200, "{body}");
    body["session"].as_str().unwrap().to_string()
}

async fn admin(app: &TestApp, method: reqwest::Method, path: &str, session: &str) -> (StatusCode, Value) {
    let req = app.client.request(method, app.url(path)).header("cookie", format!("confab_admin={session}"));
    read(req.send().await.unwrap()).await
}

async fn overview(app: &TestApp, session: &str) -> Value {
    let (status, body) = admin(app, reqwest::Method::GET, "/admin/api/overview", session).await;
    assert_eq!(status, 200, "{body}");
    body
}

const PROTECTED: &[(&str, &str)] = &[
    ("GET", "/admin/api/overview"),
    ("GET", "/admin/api/stream"),
    ("GET", "/admin/api/session"),
    ("DELETE", "/admin/api/session"),
    ("POST", "/admin/api/users/66ab1c2d3e4f5a6b7c8d9e0f/disconnect"),
    ("POST", "/admin/api/users/66ab1c2d3e4f5a6b7c8d9e0f/revoke"),
    ("POST", "/admin/api/mail/requeue-dead"),
    ("GET", "/admin/api/no-such-thing"),
];

#[tokio::test]
async fn every_admin_api_call_needs_a_live_session() {
    let app = TestApp::spawn_with(|c| c.admin_session_secs = 2).await;
    let forged = "ab".repeat(32);
    let user_jwt = app.user_with_token(&unique_email("not-admin")).await.1;
    for (method, path) in PROTECTED {
        let method: reqwest::Method = method.parse().unwrap();
        let none = read(app.client.request(method.clone(), app.url(path)).send().await.unwrap()).await;
        expect_error(none, 401);
        expect_error(admin(&app, method.clone(), path, &forged).await, 401);
        // A user's JWT is not an admin session.
        let bearer = app.client.request(method.clone(), app.url(path)).bearer_auth(&user_jwt);
        expect_error(read(bearer.send().await.unwrap()).await, 401);
    }

    let session = admin_session(&app).await;
    let (status, who) = admin(&app, reqwest::Method::GET, "/admin/api/session", &session).await;
    assert_eq!(status, 200);
    assert_eq!(who["who"], "admin token");
    // Bearer works as well as the cookie, for scripts.
    let bearer = app.client.get(app.url("/admin/api/overview")).bearer_auth(&session);
    assert_eq!(bearer.send().await.unwrap().status(), 200);

    tokio::time::sleep(Duration::from_millis(2300)).await;
    let expired = expect_error(admin(&app, reqwest::Method::GET, "/admin/api/overview", &session).await, 401);
    assert!(expired.contains("expired"), "{expired}");
}

#[tokio::test]
async fn the_session_cookie_is_locked_down_and_logout_ends_it() {
    let app = TestApp::spawn().await;
    let resp =
        app.client.post(app.url("/admin/api/session")).json(&json!({ "token": ADMIN_TOKEN })).send().await.unwrap();
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    for part in ["confab_admin=", "HttpOnly", "SameSite=Strict", "Path=/admin", "Max-Age=3600"] {
        assert!(cookie.contains(part), "{part} missing from {cookie}");
    }
    let session = read(resp).await.1["session"].as_str().unwrap().to_string();
    let (status, _) = admin(&app, reqwest::Method::DELETE, "/admin/api/session", &session).await;
    assert_eq!(status, 200);
    expect_error(admin(&app, reqwest::Method::GET, "/admin/api/overview", &session).await, 401);
}

#[tokio::test]
async fn bad_session_requests_get_clear_errors() {
    let app = TestApp::spawn().await;
    for body in [json!({}), json!({ "token": "" }), json!({ "token": "a", "jwt": "b" }), json!({ "pw": "x" })] {
        let message = expect_error(open_session(&app, body).await, 400);
        assert!(message.contains("token"), "{message}");
    }
    let raw = app.client.post(app.url("/admin/api/session")).body("not json").send().await.unwrap();
    expect_error(read(raw).await, 415);
    let raw = app
        .client
        .post(app.url("/admin/api/session"))
        .header("content-type", "application/json")
        .body("not json")
        .send()
        .await
        .unwrap();
    expect_error(read(raw).await, 400);
    let huge = json!({ "token": "x".repeat(300 * 1024) });
    expect_error(open_session(&app, huge).await, 413);
}

#[tokio::test]
async fn wrong_tokens_are_limited_before_they_are_checked() {
    let app = TestApp::spawn().await;
    for _ in 0..confab::services::admin::WRONG_ATTEMPTS_ALLOWED {
        let message = expect_error(open_session(&app, json!({ "token": "guess-guess-guess" })).await, 401);
        assert_eq!(message, "Wrong admin token");
    }
    // Even the right token is refused now: the limit is checked first.
    let message = expect_error(open_session(&app, json!({ "token": ADMIN_TOKEN })).await, 429);
    assert!(message.contains("Too many"), "{message}");

    let text = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    let count = |outcome: &str| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == "confab_admin_logins_total" && s.labels.get("outcome") == Some(outcome))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v) => v,
                ref other => panic!("{other:?}"),
            })
    };
    assert_eq!(count("refused"), Some(confab::services::admin::WRONG_ATTEMPTS_ALLOWED as f64));
    assert_eq!(count("rate_limited"), Some(1.0));
    assert_eq!(count("opened"), Some(0.0));
}

/// Guesses sent all at once are counted before any is checked: no more than the allowed
/// number reach the (slow) comparison.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_guesses_share_one_limit() {
    let app = TestApp::spawn().await;
    let guesses: Vec<_> = (0..40)
        .map(|i| {
            let request =
                app.client.post(app.url("/admin/api/session")).json(&json!({ "token": format!("guess-{i:04}") }));
            tokio::spawn(async move { request.send().await.unwrap().status() })
        })
        .collect();
    let mut answers = Vec::new();
    for guess in guesses {
        answers.push(guess.await.unwrap());
    }
    let checked = answers.iter().filter(|status| **status == 401).count();
    let limited = answers.iter().filter(|status| **status == 429).count();
    assert_eq!(checked as u64, confab::services::admin::WRONG_ATTEMPTS_ALLOWED, "{limited} limited");
    assert_eq!(checked + limited, 40);
}

#[tokio::test]
async fn without_a_configured_token_only_the_generated_tokens_hash_is_kept() {
    // Logging in with the generated token itself is tests/binary.rs's part: only the
    // real binary's output shows it.
    let app = TestApp::spawn_with(|c| c.admin_token = None).await;
    let hash = std::fs::read_to_string(app.data_dir.path().join("admin_token.argon2")).unwrap();
    assert!(hash.starts_with("$argon2"), "{hash}");
    expect_error(open_session(&app, json!({ "token": ADMIN_TOKEN })).await, 401);
}

#[tokio::test]
async fn admin_emails_users_open_the_console_after_an_otp_login() {
    let smtp = SmtpSink::start();
    let boss = unique_email("boss");
    let listed = boss.clone();
    let app = TestApp::spawn_with(|c| {
        c.smtp_url = Some(smtp.url());
        c.admin_emails = format!("someone@example.com, {}", listed.to_uppercase());
    })
    .await;
    let (status, _) = app.post("/api/v1/login", json!({ "email": boss }), None).await;
    assert_eq!(status, 200);
    let otp = smtp.wait_for_otp(&boss).await;
    let (status, verified) = app.post("/api/v1/verify", json!({ "email": boss, "otp": otp }), None).await;
    assert_eq!(status, 200, "{verified}");
    let jwt = verified["token"].as_str().unwrap();

    let (status, opened) = open_session(&app, json!({ "jwt": jwt })).await;
    assert_eq!(status, 200, "{opened}");
    assert_eq!(opened["who"], boss);
    overview(&app, opened["session"].as_str().unwrap()).await;

    let other = app.user_with_token(&unique_email("staff")).await.1;
    let message = expect_error(open_session(&app, json!({ "jwt": other })).await, 403);
    assert!(message.contains("admin_emails"), "{message}");
    expect_error(open_session(&app, json!({ "jwt": "forged.jwt.value" })).await, 401);
}

#[tokio::test]
async fn the_overview_shows_who_is_online_and_actions_disconnect_and_revoke() {
    let app = TestApp::spawn_with(|c| c.instance_name = Some("test-instance".into())).await;
    let session = admin_session(&app).await;
    let (user, token) = app.user_with_token(&unique_email("online")).await;
    let mut first = RawSocket::connect(&app.base, &token).await;
    let mut second = RawSocket::connect(&app.base, &token).await;

    let view = overview(&app, &session).await;
    assert_eq!(view["instance"], "test-instance");
    assert_eq!(view["onlineCount"], 1);
    assert_eq!(view["connections"], 2);
    let entry = &view["online"][0];
    assert_eq!(entry["id"], user.id.to_hex());
    assert_eq!(entry["email"], user.email.as_str());
    assert_eq!(entry["instances"], json!(["test-instance"]));
    assert_eq!(entry["sockets"], 2);
    assert!(entry["since"].as_i64().unwrap() > 0);
    assert_eq!(view["backends"].as_array().unwrap().len(), 4);
    assert!(view["backends"].as_array().unwrap().iter().all(|b| b["ok"] == true), "{}", view["backends"]);

    let path = format!("/admin/api/users/{}/disconnect", user.id);
    let (status, done) = admin(&app, reqwest::Method::POST, &path, &session).await;
    assert_eq!((status.as_u16(), done["disconnected"].as_u64()), (200, Some(2)), "{done}");
    assert!(first.closed_by_server(Duration::from_secs(5)).await);
    assert!(second.closed_by_server(Duration::from_secs(5)).await);

    // Disconnecting does not revoke: the user reconnects; revoking ends the token.
    let mut again = RawSocket::connect(&app.base, &token).await;
    let path = format!("/admin/api/users/{}/revoke", user.id);
    let (status, done) = admin(&app, reqwest::Method::POST, &path, &session).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["disconnected"], 1);
    assert!(again.closed_by_server(Duration::from_secs(5)).await);
    expect_error(app.get("/api/v1/me", Some(&token)).await, 401);

    expect_error(admin(&app, reqwest::Method::POST, "/admin/api/users/nope/revoke", &session).await, 400);
    let missing = format!("/admin/api/users/{}/revoke", confab::domain::ObjectId::new());
    expect_error(admin(&app, reqwest::Method::POST, &missing, &session).await, 404);
}

#[tokio::test]
async fn failed_mails_are_listed_without_their_code_and_can_be_requeued() {
    // Nothing listens on this port: every attempt fails at once.
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let app = TestApp::spawn_with(|c| {
        c.smtp_url = Some(format!("smtp://127.0.0.1:{dead_port}"));
        // A code's mail is retried while the code is valid: one second, so the first
        // failure is also the last.
        c.otp_ttl_secs = 1;
        c.mail_workers = 1;
    })
    .await;
    let session = admin_session(&app).await;
    let email = unique_email("bounce");
    let (status, _) = app.post("/api/v1/login", json!({ "email": email }), None).await;
    assert_eq!(status, 200);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let requested_total = |view: &Value| {
        let series = view["traffic"]["series"].as_array().unwrap();
        series.iter().find(|s| s["name"] == "requested").unwrap()["total"].as_u64().unwrap()
    };
    // Traffic counts reach the shared counters within a second.
    let view = loop {
        let view = overview(&app, &session).await;
        if view["mailQueue"]["deadLetters"] == 1 && requested_total(&view) == 1 {
            break view;
        }
        assert!(tokio::time::Instant::now() < deadline, "never dead-lettered: {}", view["mailQueue"]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let failure = view["mailFailures"].as_array().unwrap().iter().find(|f| f["to"] == email.as_str()).cloned();
    let failure = failure.expect("the failure is listed");
    assert_eq!(failure["deadLettered"], true);
    assert_eq!(failure["attempt"], 1);
    assert!(!failure["error"].as_str().unwrap().is_empty());
    assert!(!view.to_string().contains("Your OTP"), "mail bodies never reach the console");
    let requested = view["traffic"]["series"].as_array().unwrap().iter().find(|s| s["name"] == "requested").unwrap();
    assert_eq!(requested["perMinute"].as_array().unwrap().len(), 60);
    assert_eq!(view["trafficError"], Value::Null);

    let (status, done) = admin(&app, reqwest::Method::POST, "/admin/api/mail/requeue-dead", &session).await;
    assert_eq!((status.as_u16(), done["requeued"].as_u64()), (200, Some(1)), "{done}");
    // It comes back as a second failure: its code has expired, so it is not even tried.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let view = overview(&app, &session).await;
        let count = view["mailFailures"].as_array().unwrap().iter().filter(|f| f["to"] == email.as_str()).count();
        if count == 2 && view["mailQueue"]["deadLetters"] == 1 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "requeued mail was not retried: {view}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_live_stream_pushes_a_snapshot_when_something_changes() {
    use futures_util::StreamExt;
    let app = TestApp::spawn().await;
    let session = admin_session(&app).await;
    let resp = app
        .client
        .get(app.url("/admin/api/stream"))
        .header("cookie", format!("confab_admin={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let mut body = resp.bytes_stream();
    let mut buffer = String::new();
    let mut next_snapshot = async || -> Value {
        loop {
            if let Some(end) = buffer.find("\n\n") {
                let event: String = buffer.drain(..end + 2).collect();
                if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) {
                    assert!(event.contains("event: snapshot"), "{event}");
                    return serde_json::from_str(data).unwrap();
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), body.next()).await.expect("pushed in time");
            buffer.push_str(std::str::from_utf8(&chunk.unwrap().unwrap()).unwrap());
        }
    };
    let first = next_snapshot().await;
    assert_eq!(first["onlineCount"], 0);
    let (_, token) = app.user_with_token(&unique_email("streamed")).await;
    let _socket = RawSocket::connect(&app.base, &token).await;
    let pushed = next_snapshot().await;
    assert_eq!(pushed["onlineCount"], 1, "the connect is pushed without asking");

    // Logging out ends the stream too.
    let (status, _) = admin(&app, reqwest::Method::DELETE, "/admin/api/session", &session).await;
    assert_eq!(status, 200);
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(chunk) = body.next().await {
            if chunk.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream ends when its session does");
}

#[tokio::test]
async fn the_console_is_served_at_admin_with_a_strict_policy() {
    let app = TestApp::spawn().await;
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let resp = no_redirects.get(app.url("/admin")).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(resp.headers()["location"], "/admin/");
    let page = app.client.get(app.url("/admin/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(page.text().await.unwrap().contains("app.js"));
    for asset in ["app.js", "chart.js", "style.css"] {
        let resp = app.client.get(app.url(&format!("/admin/{asset}"))).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{asset}");
    }
    let missing = app.client.get(app.url("/admin/nope.js")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn an_open_live_stream_does_not_hold_up_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let settings = common::test_config(dir.path()).validate().unwrap();
    let app = confab::app::Application::build(settings).await.unwrap();
    let base = format!("http://{}", app.addrs()[0]);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run(async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let (_, opened) = read(
        client.post(format!("{base}/admin/api/session")).json(&json!({ "token": ADMIN_TOKEN })).send().await.unwrap(),
    )
    .await;
    let stream =
        client.get(format!("{base}/admin/api/stream")).bearer_auth(opened["session"].as_str().unwrap()).send().await;
    // Held open (not read, not dropped) through the shutdown.
    let stream = stream.unwrap();
    assert_eq!(stream.status(), 200);
    let started = std::time::Instant::now();
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("shutdown finished well before the 10 s grace timeout")
        .unwrap()
        .unwrap();
    // Without the stream ending itself, the server waits for its next write (the next
    // change, ≥ 1 s away, or the 15 s keep-alive) or the grace timeout.
    assert!(started.elapsed() < Duration::from_millis(900), "shutdown took {:?}", started.elapsed());
    drop(stream);
}
