//! Real-time behaviour through the official Socket.IO client (npm `socket.io-client`),
//! on each transport setting its users choose. The scenario is tests/js/realtime.mjs.

mod common;

use common::node::run_scenario;
use common::{TestApp, TEST_JWT_SECRET};
use serde_json::json;

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

async fn scenario_with(transports: &str) {
    let app = TestApp::spawn().await;
    let (a, ta) = app.user_with_token("rt-a@example.com").await;
    let (b, tb) = app.user_with_token("rt-b@example.com").await;
    let (c, tc) = app.user_with_token("rt-c@example.com").await;
    let expired = expired_token(&a.id.to_hex());
    let env = [
        ("CONFAB_URL", app.base.clone()),
        ("TRANSPORTS", transports.to_string()),
        ("USER_A", a.id.to_hex()),
        ("USER_B", b.id.to_hex()),
        ("USER_C", c.id.to_hex()),
        ("TOKEN_A", ta),
        ("TOKEN_B", tb),
        ("TOKEN_C", tc),
        ("TOKEN_EXPIRED", expired),
    ];
    let report = run_scenario("realtime.mjs", &env, std::time::Duration::from_secs(90)).await;
    assert_eq!(report["transports"].to_string(), transports.replace(' ', ""), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_only() {
    scenario_with(r#"["websocket"]"#).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_then_websocket() {
    scenario_with(r#"["polling","websocket"]"#).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_only() {
    scenario_with(r#"["polling"]"#).await;
}
