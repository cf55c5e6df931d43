use std::convert::Infallible;
use std::future::{ready, Ready};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::Full;
use poem::endpoint::{BoxEndpoint, TowerCompatExt};
use poem::http::{header, HeaderValue, StatusCode};
use poem::{Endpoint, EndpointExt, Request, Response};
use socketioxide::adapter::Adapter;
use socketioxide::service::SocketIoService;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tower_service::Service;

use crate::http::error::json_response;

/// What socketioxide calls for requests outside its path; never reached through
/// `/socket.io` routing, but the service needs one.
#[derive(Clone)]
pub struct NotFound;

impl<B> Service<http::Request<B>> for NotFound {
    type Response = http::Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<B>) -> Self::Future {
        let response = http::Response::builder()
            .status(StatusCode::NOT_FOUND)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from_static(br#"{"message":"Not found"}"#)))
            .expect("static response");
        ready(Ok(response))
    }
}

pub struct SocketIoEndpoint<A: Adapter> {
    polling: BoxEndpoint<'static, Response>,
    streams: SocketIoService<NotFound, A>,
    max_payload: usize,
}

impl<A: Adapter> SocketIoEndpoint<A> {
    pub fn new(svc: SocketIoService<NotFound, A>, max_payload: usize) -> Self {
        Self { polling: svc.clone().compat().boxed(), streams: svc, max_payload }
    }

    fn upgrade(&self, req: Request) -> poem::Result<Response> {
        let query = req.uri().query().unwrap_or_default();
        if !query.split('&').any(|kv| kv == "EIO=4") {
            return Ok(json_response(
                StatusCode::BAD_REQUEST,
                "Unsupported Engine.IO protocol version (EIO=4 expected)",
            ));
        }
        let key = match req.headers().get("sec-websocket-key") {
            Some(key) if req.headers().get("sec-websocket-version").is_some_and(|v| v == "13") => key.clone(),
            _ => return Ok(json_response(StatusCode::BAD_REQUEST, "Invalid WebSocket handshake")),
        };
        let on_upgrade = req.take_upgrade()?;
        let mut head = http::Request::builder().method(req.method().clone()).version(req.version());
        if let Some(headers) = head.headers_mut() {
            *headers = detached_headers(req.headers());
        }
        let head =
            head.uri(detached_uri(req.uri())).body(()).map_err(|e| poem::Error::new(e, StatusCode::BAD_REQUEST))?;
        let mut streams = self.streams.clone();
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    if let Err(e) = streams.call((upgraded, head)).await {
                        tracing::debug!(error = ?e, "socket.io websocket rejected");
                    }
                }
                Err(e) => tracing::debug!(error = %e, "websocket upgrade failed"),
            }
        });
        Ok(Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(header::CONNECTION, HeaderValue::from_static("upgrade"))
            .header(header::UPGRADE, HeaderValue::from_static("websocket"))
            .header("sec-websocket-accept", derive_accept_key(key.as_bytes()))
            .finish())
    }
}

fn is_websocket_upgrade(req: &Request) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

impl<A: Adapter> Endpoint for SocketIoEndpoint<A> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        if is_websocket_upgrade(&req) {
            return self.upgrade(req);
        }
        // Refused from its declared size, before a byte of the body is read (the engine
        // would cut the connection mid-body, which clients see as a reset, not a 413).
        let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|len| len > self.max_payload as u64) {
            let message = format!("Socket.IO packets are limited to {} bytes", self.max_payload);
            return Ok(json_response(StatusCode::PAYLOAD_TOO_LARGE, message));
        }
        let mut req = req;
        *req.headers_mut() = detached_headers(req.headers());
        *req.uri_mut() = detached_uri(req.uri());
        self.polling.call(req).await
    }
}

// The engine keeps the request that opened a session (its headers and URI) for the
// session's life. hyper parses them as slices of the connection's read buffer, so
// keeping them as they are keeps that whole buffer, 16 KB, alive per socket: at 1,000
// idle sockets, a third of the heap. Copies hold only the bytes they need, and only the
// headers something reads: the credentials and origin checks of the handshake
// (realtime/identity.rs) and the engine's parsing of a polling body. A browser sends a
// dozen more (user agent, languages, WebSocket extensions, ...), about 1 KB per socket.
const HEADERS_KEPT: [header::HeaderName; 5] =
    [header::AUTHORIZATION, header::COOKIE, header::ORIGIN, header::HOST, header::CONTENT_TYPE];

fn detached_headers(headers: &http::HeaderMap) -> http::HeaderMap {
    let mut copy = http::HeaderMap::new();
    for name in &HEADERS_KEPT {
        for value in headers.get_all(name) {
            let mut detached =
                HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| HeaderValue::from_static(""));
            detached.set_sensitive(value.is_sensitive());
            copy.append(name.clone(), detached);
        }
    }
    copy
}

fn detached_uri(uri: &http::Uri) -> http::Uri {
    uri.to_string().parse().unwrap_or_else(|_| uri.clone())
}
