//! Who a Socket.IO connection belongs to. A verified JWT from `auth.token`, an
//! `Authorization: Bearer` header or the `token` cookie (set by the original web client);
//! the original's unverified `?userId=` only with `legacy_socket_identity = true`.

use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;

use super::SocketUser;
use crate::app::AppState;
use crate::config::CorsOrigins;

#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("Please Login - no token in the Socket.IO handshake")]
    NoToken,
    #[error("Please Login - the token cookie is only accepted from this server's own origin")]
    ForeignOrigin,
    #[error("{0}")]
    Rejected(String),
}

fn token_from<A: Adapter>(socket: &SocketRef<A>, auth: &Value, cors: &CorsOrigins) -> Result<Option<String>, Refused> {
    if let Some(t) = auth.get("token").and_then(Value::as_str) {
        return Ok(Some(t.trim_start_matches("Bearer ").to_string()));
    }
    let headers = &socket.req_parts().headers;
    if let Some(token) = crate::http::credentials::bearer(headers) {
        return Ok(Some(token.to_string()));
    }
    match crate::http::credentials::cookie(headers, "token") {
        // The browser attaches the cookie whoever opened the socket: only a page of this
        // origin, or of one configured by name, may use it.
        Some(token) if cookie_origin_allowed(headers, cors) => Ok(Some(token.to_string())),
        Some(_) => Err(Refused::ForeignOrigin),
        None => Ok(None),
    }
}

/// No `Origin` (not a browser, or a same-origin GET), the server's own origin, or one
/// listed in `cors_origins`. The `*` default lists none, and `null` is never allowed.
fn cookie_origin_allowed(headers: &http::HeaderMap, cors: &CorsOrigins) -> bool {
    let Some(origin) = headers.get(http::header::ORIGIN) else { return true };
    let Ok(origin) = origin.to_str() else { return false };
    let own_host = headers.get(http::header::HOST).and_then(|h| h.to_str().ok());
    let same_origin = url::Url::parse(origin).ok().is_some_and(|url| {
        let host_port = match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_string(),
            _ => return false,
        };
        own_host.is_some_and(|own| own.eq_ignore_ascii_case(&host_port))
    });
    same_origin || matches!(cors, CorsOrigins::List(list) if list.iter().any(|o| o.eq_ignore_ascii_case(origin)))
}

fn legacy_user_id<A: Adapter>(socket: &SocketRef<A>, auth: &Value) -> Option<String> {
    if let Some(id) = auth.get("userId").and_then(Value::as_str) {
        return Some(id.to_string());
    }
    let query = socket.req_parts().uri.query()?;
    url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "userId").map(|(_, v)| v.into_owned())
}

pub async fn authenticate<A: Adapter>(socket: &SocketRef<A>, auth: &Value, state: &AppState) -> Result<(), Refused> {
    let user = match token_from(socket, auth, &state.settings.cors)? {
        Some(token) => {
            state
                .auth
                .authenticate(&token)
                .await
                .map_err(|e| Refused::Rejected(e.logged("socket handshake").to_string()))?
                .id
        }
        None if state.settings.config.legacy_socket_identity => {
            let raw = legacy_user_id(socket, auth).ok_or(Refused::NoToken)?;
            let user = state.users.by_id(&raw).await.map_err(|e| match e {
                crate::services::ServiceError::NotFound(_) => Refused::Rejected("Unknown user".into()),
                other => Refused::Rejected(other.logged("legacy socket handshake").to_string()),
            })?;
            user.id
        }
        None => return Err(Refused::NoToken),
    };
    socket.extensions.insert(SocketUser(user));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(http::header::HOST, host.parse().unwrap());
        if let Some(o) = origin {
            h.insert(http::header::ORIGIN, o.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_cookie_counts_from_the_own_origin_or_a_listed_one_only() {
        let any = CorsOrigins::Any;
        let listed = CorsOrigins::List(vec!["https://chat.example.com".into()]);
        assert!(cookie_origin_allowed(&headers(None, "localhost:5002"), &any), "no Origin: not a cross-site page");
        assert!(cookie_origin_allowed(&headers(Some("http://localhost:5002"), "localhost:5002"), &any));
        assert!(cookie_origin_allowed(&headers(Some("https://chat.example.com"), "chat.example.com"), &any));
        assert!(
            !cookie_origin_allowed(&headers(Some("http://localhost:5000"), "localhost:5002"), &any),
            "port differs"
        );
        assert!(!cookie_origin_allowed(&headers(Some("https://evil.example"), "localhost:5002"), &any));
        assert!(!cookie_origin_allowed(&headers(Some("null"), "localhost:5002"), &any));
        assert!(cookie_origin_allowed(&headers(Some("https://chat.example.com"), "10.0.0.5:5000"), &listed));
        assert!(!cookie_origin_allowed(&headers(Some("https://evil.example"), "10.0.0.5:5000"), &listed));
    }
}
