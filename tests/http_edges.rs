//! Everything outside the happy path answers JSON with the right status: unknown routes,
//! wrong methods, oversize bodies, malformed ids, bad names; plus CORS and the probes.

mod common;

use common::{expect_error, TestApp};
use serde_json::json;

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let app = TestApp::spawn().await;
    assert_eq!(expect_error(app.get("/nope", None).await, 404), "Not found");
    assert_eq!(expect_error(app.get("/api/v1/does/not/exist", None).await, 404), "Not found");
    let resp = app.client.delete(app.url("/api/v1/me")).send().await.unwrap();
    expect_error(common::read(resp).await, 405);
}

#[tokio::test]
async fn oversize_bodies_get_413() {
    let app = TestApp::spawn_with(|c| c.body_limit_bytes = 4096).await;
    let big = json!({ "email": format!("{}@example.com", "a".repeat(5000)) });
    let msg = expect_error(app.post("/api/v1/login", big.clone(), None).await, 413);
    assert!(msg.contains("too large"), "{msg}");

    // Chunked, without Content-Length.
    let chunks = vec![Ok::<_, std::io::Error>(big.to_string().into_bytes())];
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let resp = app
        .client
        .post(app.url("/api/v1/login"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    expect_error(common::read(resp).await, 413);
}

#[tokio::test]
async fn malformed_and_unknown_user_ids() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("ids@example.com").await;
    for bad in ["xyz", "66ab1c2d3e4f5a6b7c8d9e0", "66ab1c2d3e4f5a6b7c8d9e0g", "%27%20OR%201%3D1"] {
        let msg = expect_error(app.get(&format!("/api/v1/user/{bad}"), Some(&token)).await, 400);
        assert!(msg.starts_with("Invalid id"), "{bad}: {msg}");
    }
    let msg = expect_error(app.get("/api/v1/user/66ab1c2d3e4f5a6b7c8d9e0f", Some(&token)).await, 404);
    assert_eq!(msg, "User not found");
}

#[tokio::test]
async fn update_validates_the_name() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("names@example.com").await;
    assert_eq!(expect_error(app.post("/api/v1/update/user", json!({}), Some(&token)).await, 400), "Name is required");
    assert_eq!(
        expect_error(app.post("/api/v1/update/user", json!({ "name": "  " }), Some(&token)).await, 400),
        "Name is required"
    );
    let msg = expect_error(app.post("/api/v1/update/user", json!({ "name": "x".repeat(65) }), Some(&token)).await, 400);
    assert!(msg.contains("at most 64"), "{msg}");
    let (status, body) = app.post("/api/v1/update/user", json!({ "name": "é".repeat(64) }), Some(&token)).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn cors_preflight_allows_the_web_client() {
    let app = TestApp::spawn().await;
    let resp = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/me"))
        .header("origin", "http://localhost:3000")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization,content-type")
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let h = resp.headers();
    assert_eq!(h["access-control-allow-origin"], "http://localhost:3000");
    let allowed = h["access-control-allow-headers"].to_str().unwrap().to_lowercase();
    assert!(allowed.contains("authorization") && allowed.contains("content-type"), "{allowed}");
    // Errors carry CORS headers too, so the browser can show their message.
    let resp = app.client.get(app.url("/api/v1/me")).header("origin", "http://localhost:3000").send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["access-control-allow-origin"], "http://localhost:3000");
}

#[tokio::test]
async fn cors_allow_list_refuses_other_origins() {
    let app = TestApp::spawn_with(|c| c.cors_origins = "https://chat.example.com".into()).await;
    let resp = app.client.get(app.url("/healthz")).header("origin", "https://evil.example.net").send().await.unwrap();
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    expect_error(common::read(resp).await, 403);
    let resp = app.client.get(app.url("/healthz")).header("origin", "https://chat.example.com").send().await.unwrap();
    assert_eq!(resp.headers()["access-control-allow-origin"], "https://chat.example.com");
}

#[tokio::test]
async fn probes_report_each_backend() {
    let app = TestApp::spawn().await;
    let (status, body) = app.get("/healthz", None).await;
    assert_eq!((status.as_u16(), body), (200, json!({ "status": "ok" })));
    let (status, body) = app.get("/readyz", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ready"], true);
    let names: Vec<&str> = body["backends"].as_array().unwrap().iter().map(|b| b["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["store", "ephemeral", "mail_queue", "media"]);
    assert!(body["backends"][0]["backend"].as_str().unwrap().starts_with("sqlite"));
}

#[tokio::test]
async fn swagger_ui_and_spec_are_served() {
    let app = TestApp::spawn().await;
    let html = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(html.status(), 200);
    assert!(html.text().await.unwrap().to_lowercase().contains("swagger"));
    let (status, spec) = app.get("/openapi.json", None).await;
    assert_eq!(status, 200);
    for path in [
        "/api/v1/login",
        "/api/v1/verify",
        "/api/v1/me",
        "/api/v1/user/all",
        "/api/v1/user/{id}",
        "/api/v1/update/user",
        "/healthz",
        "/readyz",
    ] {
        assert!(spec["paths"].get(path).is_some(), "{path} documented");
    }
}

#[tokio::test]
async fn web_root_serves_the_exported_web_client() {
    let site = tempfile::tempdir().unwrap();
    std::fs::write(site.path().join("index.html"), "<html>home</html>").unwrap();
    std::fs::write(site.path().join("chat.html"), "<html>chat page</html>").unwrap();
    std::fs::create_dir(site.path().join("profile")).unwrap();
    std::fs::write(site.path().join("profile/index.html"), "<html>profile page</html>").unwrap();
    let root = site.path().to_path_buf();
    let app = TestApp::spawn_with(|c| c.web_root = Some(root)).await;
    for (path, expected) in
        [("/", "home"), ("/chat", "chat page"), ("/chat.html", "chat page"), ("/profile", "profile page")]
    {
        let resp = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        assert!(resp.text().await.unwrap().contains(expected), "{path}");
    }
    // The API and unknown paths still answer JSON.
    assert_eq!(expect_error(app.get("/nothing-here", None).await, 404), "Not found");
    assert_eq!(app.get("/healthz", None).await.0, 200);
    expect_error(app.get("/api/v1/me", None).await, 401);
}
