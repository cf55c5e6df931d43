//! Who a Socket.IO connection belongs to. A verified JWT from `auth.token`, an
//! `Authorization: Bearer` header or the `token` cookie (set by the original web client);
//! the original's unverified `?userId=` only with `legacy_socket_identity = true`.

use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;

use super::SocketUser;
use crate::app::AppState;
use crate::domain::ObjectId;

#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("Please Login - no token in the Socket.IO handshake")]
    NoToken,
    #[error("{0}")]
    Rejected(String),
}

fn token_from<A: Adapter>(socket: &SocketRef<A>, auth: &Value) -> Option<String> {
    if let Some(t) = auth.get("token").and_then(Value::as_str) {
        return Some(t.trim_start_matches("Bearer ").to_string());
    }
    let headers = &socket.req_parts().headers;
    crate::http::credentials::bearer(headers)
        .or_else(|| crate::http::credentials::cookie(headers, "token"))
        .map(str::to_string)
}

fn legacy_user_id<A: Adapter>(socket: &SocketRef<A>, auth: &Value) -> Option<String> {
    if let Some(id) = auth.get("userId").and_then(Value::as_str) {
        return Some(id.to_string());
    }
    let query = socket.req_parts().uri.query()?;
    url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "userId").map(|(_, v)| v.into_owned())
}

pub async fn authenticate<A: Adapter>(socket: &SocketRef<A>, auth: &Value, state: &AppState) -> Result<(), Refused> {
    let user = match token_from(socket, auth) {
        Some(token) => state.auth.authenticate(&token).await.map_err(|e| Refused::Rejected(e.to_string()))?.id,
        None if state.settings.config.legacy_socket_identity => {
            let raw = legacy_user_id(socket, auth).ok_or(Refused::NoToken)?;
            let id = ObjectId::parse(&raw).map_err(|e| Refused::Rejected(e.to_string()))?;
            state
                .store
                .user_by_id(&id)
                .await
                .map_err(|e| Refused::Rejected(format!("backend unavailable: {e}")))?
                .ok_or_else(|| Refused::Rejected("Unknown user".into()))?
                .id
        }
        None => return Err(Refused::NoToken),
    };
    socket.extensions.insert(SocketUser(user));
    Ok(())
}
