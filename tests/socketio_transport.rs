//! The Socket.IO endpoint inside poem speaks Engine.IO v4 over long-polling and over a
//! real WebSocket upgrade (the transport a naive poem mount breaks).

mod common;

use common::TestApp;
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn polling_handshake_opens_a_session() {
    let app = TestApp::spawn().await;
    let resp = app.client.get(app.url("/socket.io/?EIO=4&transport=polling")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(text.starts_with("0{"), "{text}");
    let open: serde_json::Value = serde_json::from_str(&text[1..]).unwrap();
    assert!(open["sid"].as_str().is_some());
    assert_eq!(open["upgrades"], serde_json::json!(["websocket"]));
}

#[tokio::test]
async fn websocket_transport_exchanges_frames() {
    let app = TestApp::spawn().await;
    let url = format!("{}/socket.io/?EIO=4&transport=websocket", app.base.replace("http://", "ws://"));
    let (mut ws, resp) = tokio_tungstenite::connect_async(url).await.expect("websocket handshake");
    assert_eq!(resp.status(), 101);
    let open = tokio::time::timeout(std::time::Duration::from_secs(5), ws.next()).await.unwrap().unwrap().unwrap();
    match open {
        Message::Text(t) => assert!(t.starts_with("0{"), "{t}"),
        other => panic!("expected the Engine.IO open packet, got {other:?}"),
    }
}

#[tokio::test]
async fn bad_upgrades_get_400_not_101() {
    let app = TestApp::spawn().await;
    let url = format!("{}/socket.io/?EIO=3&transport=websocket", app.base.replace("http://", "ws://"));
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 400),
        other => panic!("expected a 400, got {other:?}"),
    }
}

async fn namespace_answer(base: &str, query: &str) -> String {
    let url = format!("{}/socket.io/?EIO=4&transport=websocket{query}", base.replace("http://", "ws://"));
    connect_answer(url, "").await
}

/// Opens the WebSocket `request`, sends CONNECT with `auth` (JSON or empty) and returns
/// the namespace's answer (`40…` accepted, `44…` refused).
async fn connect_answer(
    request: impl tokio_tungstenite::tungstenite::client::IntoClientRequest + Unpin,
    auth: &str,
) -> String {
    use futures_util::SinkExt;
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let _open = ws.next().await;
    ws.send(Message::text(format!("40{auth}"))).await.unwrap();
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(5), ws.next()).await.unwrap() {
            Some(Ok(Message::Text(t))) if t.starts_with("4") => return t.to_string(),
            Some(Ok(_)) => continue,
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn the_originals_unverified_user_id_works_only_when_enabled() {
    let strict = TestApp::spawn().await;
    let (user, _) = strict.user_with_token("legacy@example.com").await;
    let refused = namespace_answer(&strict.base, &format!("&userId={}", user.id)).await;
    assert!(refused.starts_with("44") && refused.contains("Please Login"), "{refused}");

    let legacy = TestApp::spawn_with(|c| c.legacy_socket_identity = true).await;
    let (user, _) = legacy.user_with_token("legacy@example.com").await;
    assert!(namespace_answer(&legacy.base, &format!("&userId={}", user.id)).await.starts_with("40{"));
    let unknown = namespace_answer(&legacy.base, "&userId=66ab1c2d3e4f5a6b7c8d9e0f").await;
    assert!(unknown.starts_with("44") && unknown.contains("Unknown user"), "{unknown}");
}

/// Opens a WebSocket with the `token` cookie and `origin`, sends CONNECT with `auth`, and
/// returns the namespace's answer.
async fn cookie_handshake(app: &TestApp, token: &str, origin: Option<&str>, auth: &str) -> String {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = format!("{}/socket.io/?EIO=4&transport=websocket", app.base.replace("http://", "ws://"));
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert("cookie", format!("token={token}").parse().unwrap());
    if let Some(origin) = origin {
        req.headers_mut().insert("origin", origin.parse().unwrap());
    }
    connect_answer(req, auth).await
}

/// Cross-site WebSocket hijacking: a page elsewhere can make the browser attach the
/// `token` cookie, so the cookie counts only from the server's own origin (or one in
/// `cors_origins`); a token the client sends itself counts from anywhere.
#[tokio::test]
async fn the_token_cookie_opens_a_socket_only_from_an_allowed_origin() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("cswsh@example.com").await;
    let own = app.base.clone();
    for origin in ["https://evil.example", "null", "http://localhost:1"] {
        let answer = cookie_handshake(&app, &token, Some(origin), "").await;
        assert!(answer.starts_with("44") && answer.contains("own origin"), "{origin}: {answer}");
    }
    assert!(cookie_handshake(&app, &token, Some(&own), "").await.starts_with("40{"), "same origin");
    assert!(cookie_handshake(&app, &token, None, "").await.starts_with("40{"), "no Origin: not a browser page");
    let with_auth = format!("{{\"token\":\"{token}\"}}");
    assert!(cookie_handshake(&app, "x", Some("https://evil.example"), &with_auth).await.starts_with("40{"));

    let listed = TestApp::spawn_with(|c| c.cors_origins = "https://chat.example.com".into()).await;
    let (_, token) = listed.user_with_token("cswsh@example.com").await;
    assert!(cookie_handshake(&listed, &token, Some("https://chat.example.com"), "").await.starts_with("40{"));
    // An unlisted origin does not even get the upgrade: CORS refuses it first.
    let url = format!("{}/socket.io/?EIO=4&transport=websocket", listed.base.replace("http://", "ws://"));
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url).unwrap();
    req.headers_mut().insert("origin", "https://evil.example".parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 403),
        other => panic!("expected 403, got {other:?}"),
    }
}

/// Oversized packets are refused on both transports, also before the namespace connect:
/// a WebSocket frame over the limit closes the connection, a polling POST over it gets
/// a 413 before its body is read.
#[tokio::test]
async fn oversized_packets_are_refused_before_and_after_connecting() {
    use futures_util::SinkExt;
    let app = TestApp::spawn().await;
    let url = format!("{}/socket.io/?EIO=4&transport=websocket", app.base.replace("http://", "ws://"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let _open = ws.next().await;
    let huge = format!("42[\"typing\",\"{}\"]", "x".repeat(1024 * 1024));
    let _ = ws.send(Message::text(huge)).await;
    let closed = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return true,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await;
    assert_eq!(closed, Ok(true), "the server closed the connection");

    let open = app.client.get(app.url("/socket.io/?EIO=4&transport=polling")).send().await.unwrap();
    let text = open.text().await.unwrap();
    let sid = serde_json::from_str::<serde_json::Value>(&text[1..]).unwrap()["sid"].as_str().unwrap().to_string();
    let post = app
        .client
        .post(app.url(&format!("/socket.io/?EIO=4&transport=polling&sid={sid}")))
        .body(vec![b'4'; 10 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 413);
    let body: serde_json::Value = post.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("limited to 16384 bytes"), "{body}");
}
