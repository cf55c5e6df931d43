//! Every authenticated endpoint refuses missing, malformed, forged, expired, `alg:none`
//! and revoked tokens with 401 and the original's messages.

mod common;

use base64::Engine;
use common::{expect_error, TestApp, TEST_JWT_SECRET};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{json, Value};

const PROTECTED: &[(&str, &str)] = &[
    ("GET", "/api/v1/me"),
    ("GET", "/api/v1/user/all"),
    ("GET", "/api/v1/user/66ab1c2d3e4f5a6b7c8d9e0f"),
    ("POST", "/api/v1/update/user"),
];

async fn call(app: &TestApp, method: &str, path: &str, auth: Option<&str>) -> (reqwest::StatusCode, Value) {
    let mut req = app.client.request(Method::from_bytes(method.as_bytes()).unwrap(), app.url(path));
    if method == "POST" {
        req = req.json(&json!({ "name": "x" }));
    }
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    common::read(req.send().await.unwrap()).await
}

fn claims_for(id: &str, exp_offset: i64) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({
        "user": { "_id": id, "name": "x", "email": "x@example.com", "createdAt": "2025-01-01T00:00:00.000Z", "updatedAt": "2025-01-01T00:00:00.000Z", "__v": 0 },
        "iat": now, "exp": now + exp_offset
    })
}

fn sign(claims: &Value, secret: &str) -> String {
    encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
}

#[tokio::test]
async fn missing_and_malformed_headers_are_refused() {
    let app = TestApp::spawn().await;
    for (method, path) in PROTECTED {
        for header in [None, Some("Basic abc"), Some("Bearer"), Some("bearer")] {
            let msg = expect_error(call(&app, method, path, header).await, 401);
            assert_eq!(msg, "Please Login - No auth header", "{method} {path} {header:?}");
        }
        let msg = expect_error(call(&app, method, path, Some("Bearer not.a.jwt")).await, 401);
        assert_eq!(msg, "Please Login - JWT error");
    }
}

#[tokio::test]
async fn forged_expired_and_unsigned_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let (user, good) = app.user_with_token("tokens@example.com").await;
    let id = user.id.to_hex();
    let forged = sign(&claims_for(&id, 3600), "some-other-secret-entirely-000000");
    let expired = sign(&claims_for(&id, -10), TEST_JWT_SECRET);
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let alg_none = format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), b64(&claims_for(&id, 3600)));
    let hs512 = encode(
        &Header::new(Algorithm::HS512),
        &claims_for(&id, 3600),
        &EncodingKey::from_secret(TEST_JWT_SECRET.as_bytes()),
    )
    .unwrap();
    for (method, path) in PROTECTED {
        let (status, body) = call(&app, method, path, Some(&format!("Bearer {good}"))).await;
        assert_ne!(status, 401, "the valid token is accepted on {method} {path}: {body}");
        for (what, token) in [("forged", &forged), ("expired", &expired), ("alg none", &alg_none), ("HS512", &hs512)] {
            let msg = expect_error(call(&app, method, path, Some(&format!("Bearer {token}"))).await, 401);
            assert_eq!(msg, "Please Login - JWT error", "{what} on {method} {path}");
        }
    }
}

#[tokio::test]
async fn tokens_without_a_known_user_or_revoked_are_refused() {
    let app = TestApp::spawn().await;
    let no_user = sign(&json!({ "iat": 0, "exp": chrono::Utc::now().timestamp() + 60 }), TEST_JWT_SECRET);
    assert_eq!(
        expect_error(call(&app, "GET", "/api/v1/me", Some(&format!("Bearer {no_user}"))).await, 401),
        "Invalid token"
    );
    let ghost = sign(&claims_for("66ab1c2d3e4f5a6b7c8d9e0f", 60), TEST_JWT_SECRET);
    assert_eq!(
        expect_error(call(&app, "GET", "/api/v1/me", Some(&format!("Bearer {ghost}"))).await, 401),
        "Invalid token"
    );

    let (user, token) = app.user_with_token("revoked@example.com").await;
    assert_eq!(app.get("/api/v1/me", Some(&token)).await.0, 200);
    app.ports.store.bump_token_version(&user.id).await.unwrap();
    let msg = expect_error(app.get("/api/v1/me", Some(&token)).await, 401);
    assert_eq!(msg, "Please Login - token revoked");
}

#[tokio::test]
async fn issued_tokens_have_the_original_shape_and_lifetime() {
    let app = TestApp::spawn().await;
    let (user, token) = app.user_with_token("shape@example.com").await;
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["user"]["_id"], user.id.to_hex().as_str());
    assert_eq!(claims["user"]["email"], "shape@example.com");
    assert_eq!(claims["user"]["__v"], 0);
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert_eq!(lifetime, 15 * 24 * 3600);
}
