//! A minimal Socket.IO v5 client over WebSocket, for Rust-side tests that need a socket
//! alongside HTTP calls (the JS client covers the protocol itself in tests/js).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub struct RawSocket {
    ws: Ws,
    next_ack: u64,
}

impl RawSocket {
    /// Connects with `auth: {token}` and waits for the namespace's acceptance.
    pub async fn connect(base: &str, token: &str) -> Self {
        Self::connect_with(base, &serde_json::json!({ "token": token })).await
    }

    /// Connects with the given handshake `auth` object.
    pub async fn connect_with(base: &str, auth: &Value) -> Self {
        let url = format!("{}/socket.io/?EIO=4&transport=websocket", base.replace("http://", "ws://"));
        let (ws, _) = tokio_tungstenite::connect_async(url).await.expect("websocket handshake");
        Self::join(ws, auth).await
    }

    /// Connects over a TCP connection whose receive buffer is `bytes`, for a client that
    /// stops reading: what the server sends it then backs up after a few kilobytes.
    pub async fn connect_with_receive_buffer(base: &str, token: &str, bytes: u32) -> Self {
        let addr = base.trim_start_matches("http://").parse().expect("base is http://ip:port");
        let tcp = tokio::net::TcpSocket::new_v4().unwrap();
        tcp.set_recv_buffer_size(bytes).unwrap();
        let stream = tcp.connect(addr).await.expect("tcp connect");
        let url = format!("{}/socket.io/?EIO=4&transport=websocket", base.replace("http://", "ws://"));
        let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
        let (ws, _) = tokio_tungstenite::client_async(url, stream).await.expect("websocket handshake");
        Self::join(ws, &serde_json::json!({ "token": token })).await
    }

    async fn join(ws: Ws, auth: &Value) -> Self {
        let mut socket = Self { ws, next_ack: 0 };
        let open = socket.next_frame(Duration::from_secs(5)).await.expect("open packet");
        assert!(open.starts_with('0'), "{open}");
        socket.ws.send(Message::text(format!("40{auth}"))).await.unwrap();
        let ack = socket.next_frame(Duration::from_secs(5)).await.expect("connect answer");
        assert!(ack.starts_with("40"), "namespace refused: {ack}");
        socket
    }

    /// Asks to join with `auth: {token}` and drops the connection straight away, without
    /// waiting for the answer: a client that gives up while the handshake is checked.
    pub async fn connect_and_vanish(base: &str, token: &str) {
        let url = format!("{}/socket.io/?EIO=4&transport=websocket", base.replace("http://", "ws://"));
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("websocket handshake");
        let _open = ws.next().await;
        ws.send(Message::text(format!("40{{\"token\":\"{token}\"}}"))).await.unwrap();
    }

    async fn next_frame(&mut self, timeout: Duration) -> Option<String> {
        loop {
            match tokio::time::timeout(timeout, self.ws.next()).await {
                Ok(Some(Ok(Message::Text(t)))) if t.as_str() == "2" => {
                    self.ws.send(Message::text("3")).await.ok()?;
                }
                Ok(Some(Ok(Message::Text(t)))) => return Some(t.to_string()),
                Ok(Some(Ok(_))) => {}
                _ => return None,
            }
        }
    }

    /// The next event as (name, payload), or None after `timeout` without one.
    pub async fn next_event(&mut self, timeout: Duration) -> Option<(String, Value)> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let frame = self.next_frame(left).await?;
            if let Some(json) = frame.strip_prefix("42") {
                let v: Value = serde_json::from_str(json).ok()?;
                return Some((v[0].as_str()?.to_string(), v[1].clone()));
            }
        }
    }

    /// Waits for an event named `name` whose payload satisfies `matches`.
    pub async fn wait_for(&mut self, name: &str, timeout: Duration, matches: impl Fn(&Value) -> bool) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let (event, payload) = self.next_event(left).await?;
            if event == name && matches(&payload) {
                return Some(payload);
            }
        }
    }

    /// Whether the server closed this connection (a namespace disconnect or the socket
    /// itself) within `timeout`.
    pub async fn closed_by_server(&mut self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.ws.next()).await {
                Err(_) => return false,
                Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return true,
                Ok(Some(Ok(Message::Text(t)))) if t.as_str() == "41" || t.as_str() == "1" => return true,
                Ok(Some(Ok(Message::Text(t)))) if t.as_str() == "2" => {
                    let _ = self.ws.send(Message::text("3")).await;
                }
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// Emits with an acknowledgement id and waits for the server's answer, skipping (and
    /// dropping) other events meanwhile.
    pub async fn emit_with_ack(&mut self, event: &str, payload: &Value, timeout: Duration) -> Option<Value> {
        self.next_ack += 1;
        let id = self.next_ack;
        self.ws.send(Message::text(format!("42{id}{}", serde_json::json!([event, payload])))).await.unwrap();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let frame = self.next_frame(left).await?;
            if let Some(json) = frame.strip_prefix(&format!("43{id}")) {
                let v: Value = serde_json::from_str(json).ok()?;
                return Some(v[0].clone());
            }
        }
    }

    pub async fn emit(&mut self, event: &str, payload: &Value) {
        self.ws.send(Message::text(format!("42{}", serde_json::json!([event, payload])))).await.unwrap();
    }
}
