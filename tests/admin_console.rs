//! The admin console in Debian's Chromium through playwright-core: the scenario is
//! tests/js/admin.mjs. Screenshots land in test-artifacts/admin/.

mod common;

use common::smtp::SmtpSink;
use common::{unique_email, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_users_queue_and_otp_traffic_live() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "tests/js/node_modules is missing: run `npm ci --prefix tests/js` (packaging/test.sh does)"
    );
    let artifacts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("test-artifacts/admin");
    let smtp = SmtpSink::start();
    let app = TestApp::spawn_with(|c| {
        c.smtp_url = Some(smtp.url());
        // Fewer workers than mails, so frozen SMTP leaves mails waiting in the queue.
        c.mail_workers = 2;
    })
    .await;
    let (user, token) = app.user_with_token(&unique_email("console-user")).await;
    let emails: Vec<String> = (0..8).map(|i| unique_email(&format!("console-otp{i}"))).collect();
    let node = tokio::process::Command::new("node")
        .arg("admin.mjs")
        .current_dir(&dir)
        .env("CONFAB_URL", &app.base)
        .env("ADMIN_TOKEN", "test-admin-token-0123456789")
        .env("USER_ID", user.id.to_hex())
        .env("USER_EMAIL", user.email.as_str())
        .env("USER_TOKEN", token)
        .env("SMTP_PID", smtp.pid().to_string())
        .env("EMAILS", emails.join(","))
        .env("ARTIFACTS", &artifacts)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(150), node)
        .await
        .expect("browser scenario finished within 150 s")
        .expect("node is installed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "browser scenario failed:\n{stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|_| panic!("no report on stdout:\n{stdout}\n{stderr}"));
    assert_eq!(report["ok"], true, "{report}");
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
