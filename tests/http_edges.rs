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

/// Sends raw bytes on one connection (after `before`, a well-formed request answered on the
/// same connection when given) and returns the status and JSON body of the last response.
/// hyper answers an unparsable request head itself, before confab sees it; the vendored
/// patch (vendor/README.md) gives those answers the same `{"message"}` body.
async fn raw_exchange(app: &TestApp, before: Option<&str>, request: &[u8]) -> (reqwest::StatusCode, serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(app.addrs[0]).await.unwrap();
    if let Some(path) = before {
        let head = format!("GET {path} HTTP/1.1\r\nhost: confab\r\n\r\n");
        conn.write_all(head.as_bytes()).await.unwrap();
        let mut seen = Vec::new();
        let mut chunk = [0u8; 4096];
        // The probe's answer is small and ends with its JSON body.
        while !seen.ends_with(b"}") {
            let n = conn.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed after the first request");
            seen.extend_from_slice(&chunk[..n]);
        }
        assert!(seen.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&seen));
    }
    // The server may answer and close before it has read everything; that is fine.
    let _ = conn.write_all(request).await;
    // Closing with unread request bytes makes the server's kernel send a reset after the
    // answer; what arrived before it is still read.
    let mut raw = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), conn.read_to_end(&mut raw));
    if let Err(e) = read.await.expect("the server closes the connection after its answer") {
        assert!(!raw.is_empty(), "no answer before {e}");
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no response head: {text:?}"));
    let status = reqwest::StatusCode::from_bytes(&head.as_bytes()[9..12]).unwrap();
    let head = head.to_ascii_lowercase();
    assert!(head.contains("content-type: application/json"), "{head}");
    assert!(head.contains(&format!("content-length: {}", body.len())), "{head} / {body}");
    (status, serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}")))
}

#[tokio::test]
async fn oversized_and_malformed_request_heads_answer_json() {
    let app = TestApp::spawn().await;
    let long_uri = format!("GET /api/v1/users?q={} HTTP/1.1\r\nhost: confab\r\n\r\n", "a".repeat(70_000));
    let many_headers = format!(
        "GET /healthz HTTP/1.1\r\nhost: confab\r\n{}\r\n",
        (0..150).map(|i| format!("x-h{i}: v\r\n")).collect::<String>()
    );
    let huge_header = format!("GET /healthz HTTP/1.1\r\nhost: confab\r\nx-big: {}\r\n\r\n", "b".repeat(600_000));
    for before in [None, Some("/healthz")] {
        let msg = expect_error(raw_exchange(&app, before, long_uri.as_bytes()).await, 414);
        assert_eq!(msg, "request URI too long");
        let msg = expect_error(raw_exchange(&app, before, many_headers.as_bytes()).await, 431);
        assert_eq!(msg, "request header fields too large");
        let msg = expect_error(raw_exchange(&app, before, huge_header.as_bytes()).await, 431);
        assert_eq!(msg, "request header fields too large");
        let msg = expect_error(raw_exchange(&app, before, b"NOT HTTP AT ALL\r\n\r\n").await, 400);
        assert_eq!(msg, "malformed HTTP request");
    }
    // The server is unharmed.
    assert_eq!(app.get("/healthz", None).await.0.as_u16(), 200);
}
