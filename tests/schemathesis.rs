//! The OpenAPI spec describes what the server does: schemathesis (pinned 4.32.5,
//! installed by packaging/test.sh) runs every check — response schemas, status codes,
//! content types, negative data rejected, positive data accepted, undeclared methods,
//! auth — over more than 5,000 generated requests, with real ids fed in so requests
//! reach the handlers, and must find nothing.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{unique_email, TestApp};
use serde_json::json;

fn schemathesis() -> PathBuf {
    if let Some(path) = std::env::var_os("CONFAB_SCHEMATHESIS") {
        return PathBuf::from(path);
    }
    common::cached_tool("schemathesis", "schemathesis")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spec_matches_the_server_under_every_schemathesis_check() {
    let bin = schemathesis();
    assert!(bin.exists(), "{} missing: packaging/test.sh installs schemathesis 4.32.5", bin.display());
    let app = TestApp::spawn_with(|c| c.login_ip_limit = 1_000_000).await;
    let (me, token) = app.user_with_token(&unique_email("st-me")).await;
    let (peer, _) = app.user_with_token(&unique_email("st-peer")).await;
    let (status, chat) = app.post("/api/v1/chat/new", json!({ "otherUserId": peer.id.to_hex() }), Some(&token)).await;
    assert_eq!(status, 201);
    let chat = chat["chatId"].as_str().unwrap();
    let (me, peer) = (me.id.to_hex(), peer.id.to_hex());
    // Real ids half of the time, so generated requests also get past "not found".
    // Two answers are the documented contract for schema-valid input: a well-formed
    // but wrong code is 400 `Invalid or expired OTP` (as in the original), and a form
    // with neither text nor image is 400 `Either text or image is required` (a rule
    // OpenAPI cannot express for multipart).
    let config = format!(
        r#"headers = {{ Authorization = "Bearer {token}" }}

[dictionaries.chats]
values = ["{chat}"]
[dictionaries.peers]
values = ["{peer}"]
[dictionaries.users]
values = ["{me}", "{peer}"]

[parameters]
"path.chatId" = {{ dictionary = "chats", probability = 0.5 }}
"body.chatId" = {{ dictionary = "chats", probability = 0.5 }}
"path.id" = {{ dictionary = "users", probability = 0.5 }}
"body.otherUserId" = {{ dictionary = "peers", probability = 0.5 }}

[[operations]]
include-path = "/api/v1/verify"
checks.positive_data_acceptance.expected-statuses = [200, 400, 429]

[[operations]]
include-name = "POST /api/v1/message"
checks.positive_data_acceptance.expected-statuses = [201, 400, 404, 429]
"#
    );
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("schemathesis.toml");
    std::fs::write(&config_path, config).unwrap();
    let run = tokio::process::Command::new(&bin)
        .arg("--config-file")
        .arg(&config_path)
        .args(["run", &app.url("/openapi.json"), "--checks", "all", "--max-examples", "450", "--seed", "7"])
        .args(["--no-color", "--workers", "1", "--report-dir"])
        .arg(dir.path().join("report"))
        .current_dir(dir.path())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(400), run).await.expect("schemathesis finished").unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "schemathesis found problems:\n{report}\n{}", String::from_utf8_lossy(&out.stderr));
    // "  6050 generated, 6050 passed, 16 skipped"
    let cases = report
        .lines()
        .filter(|l| l.contains(" generated, "))
        .find_map(|l| l.trim().split(' ').next()?.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no test-case count in:\n{report}"));
    assert!(cases >= 5000, "only {cases} requests generated");
    let summary: Vec<&str> = report.lines().filter(|l| l.contains("generated") || l.contains("Selected")).collect();
    println!("schemathesis: {}", summary.join(" | "));
}
