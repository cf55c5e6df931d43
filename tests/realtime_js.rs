//! Real-time behaviour through the official Socket.IO client (npm `socket.io-client`),
//! on each transport setting its users choose. The scenario is tests/js/realtime.mjs.

mod common;

use common::{TestApp, TEST_JWT_SECRET};
use serde_json::json;

fn node_modules_ready() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js");
    assert!(
        dir.join("node_modules/socket.io-client").exists(),
        "tests/js/node_modules is missing: run `npm ci --prefix tests/js` (packaging/test.sh does)"
    );
    dir
}

fn expired_token(user_id: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims =
        json!({ "user": { "_id": user_id, "name": "x", "email": "x@example.com" }, "iat": now - 100, "exp": now - 10 });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(TEST_JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

async fn run_scenario(transports: &str) {
    let dir = node_modules_ready();
    let app = TestApp::spawn().await;
    let (a, ta) = app.user_with_token("rt-a@example.com").await;
    let (b, tb) = app.user_with_token("rt-b@example.com").await;
    let (c, tc) = app.user_with_token("rt-c@example.com").await;
    let expired = expired_token(&a.id.to_hex());
    let ids = [a.id.to_hex(), b.id.to_hex(), c.id.to_hex()];
    let node = tokio::process::Command::new("node")
        .arg("realtime.mjs")
        .current_dir(dir)
        .env("CONFAB_URL", &app.base)
        .env("TRANSPORTS", transports)
        .env("USER_A", &ids[0])
        .env("USER_B", &ids[1])
        .env("USER_C", &ids[2])
        .env("TOKEN_A", ta)
        .env("TOKEN_B", tb)
        .env("TOKEN_C", tc)
        .env("TOKEN_EXPIRED", expired)
        .kill_on_drop(true)
        .output();
    // The scenario bounds its own steps; this bounds the process, so CI never hangs.
    let out = tokio::time::timeout(std::time::Duration::from_secs(90), node)
        .await
        .expect("scenario finished within 90 s")
        .expect("node is installed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "scenario failed with {transports}:\n{stdout}\n{stderr}");
    assert!(stdout.contains("\"ok\":true"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_only() {
    run_scenario(r#"["websocket"]"#).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_then_websocket() {
    run_scenario(r#"["polling","websocket"]"#).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_only() {
    run_scenario(r#"["polling"]"#).await;
}
