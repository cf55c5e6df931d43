//! The admin console in Debian's Chromium through playwright-core: the scenario is
//! tests/js/admin.mjs. Screenshots land in test-artifacts/admin/.

mod common;

use common::node::run_scenario;
use common::smtp::SmtpSink;
use common::{unique_email, TestApp};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_users_queue_and_otp_traffic_live() {
    let artifacts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("test-artifacts/admin");
    let smtp = SmtpSink::start();
    let app = TestApp::spawn_with(|c| {
        c.smtp_url = Some(smtp.url());
        // Fewer workers than mails, so frozen SMTP leaves mails waiting in the queue.
        c.mail_workers = 2;
        c.admin_emails = "console-admin@example.com".into();
    })
    .await;
    let (user, token) = app.user_with_token(&unique_email("console-user")).await;
    let emails: Vec<String> = (0..8).map(|i| unique_email(&format!("console-otp{i}"))).collect();
    // A conversation, so the messages chart has something to show.
    let (peer, _) = app.user_with_token(&unique_email("console-peer")).await;
    let (_, chat) = app.post("/api/v1/chat/new", json!({ "otherUserId": peer.id.to_hex() }), Some(&token)).await;
    for text in ["hi", "are you there?", "ok, later"] {
        let body = json!({ "chatId": chat["chatId"], "text": text });
        assert_eq!(app.post("/api/v1/message", body, Some(&token)).await.0, 201);
    }
    let env = [
        ("CONFAB_URL", app.base.clone()),
        ("ADMIN_TOKEN", "test-admin-token-0123456789".to_string()),
        ("ADMIN_EMAIL", "console-admin@example.com".to_string()),
        ("MAILDIR", smtp.new_dir().display().to_string()),
        ("USER_ID", user.id.to_hex()),
        ("USER_EMAIL", user.email.as_str().to_string()),
        ("USER_TOKEN", token),
        ("SMTP_PID", smtp.pid().to_string()),
        ("EMAILS", emails.join(",")),
        ("MESSAGES_SENT", "3".to_string()),
        ("ARTIFACTS", artifacts.display().to_string()),
    ];
    let report = run_scenario("admin.mjs", &env, std::time::Duration::from_secs(150)).await;
    assert!(report["steps"].as_array().unwrap().len() >= 8, "{report}");
    // What the console showed is what happened: every code was delivered once SMTP resumed.
    for email in &emails {
        assert_eq!(smtp.mails_to(email).len(), 1, "{email} got its code");
    }
    for shot in ["01-wrong-token-refused", "02-user-online", "03-queue-stalled", "04-queue-drained"] {
        let path = artifacts.join(format!("{shot}.png"));
        let size = std::fs::metadata(&path).unwrap_or_else(|_| panic!("{} saved", path.display())).len();
        assert!(size > 10_000, "{} is a real screenshot ({size} bytes)", path.display());
    }
    println!("screenshots in {}", artifacts.display());
}
