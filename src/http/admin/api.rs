//! `/admin/api/*`: console sessions, the overview and its live feed, and the actions.

use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use poem::web::sse::Event;
use poem::web::Data;
use poem::Request;
use poem_openapi::param::Path;
use poem_openapi::payload::{EventStream, Json};
use poem_openapi::types::ToJSON;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags, Union};

use super::session::{cookie, AdminAuth};
use crate::app::AppState;
use crate::http::error::ApiError;
use crate::http::fields::IdParam;
use crate::services::admin::console::Snapshot;
use crate::services::admin::Credential;

#[derive(Tags)]
enum AdminTags {
    /// The admin console's API: log in with the admin token or an admin's JWT.
    Admin,
}

/// With the admin token.
#[derive(Debug, Object)]
struct WithAdminToken {
    /// The admin token (shown or written to a file at first start).
    #[oai(validator(min_length = 1, max_length = 1024))]
    token: String,
}

/// As a user listed in `admin_emails`.
#[derive(Debug, Object)]
struct WithUserToken {
    /// A token from `POST /api/v1/verify`.
    #[oai(validator(min_length = 1, max_length = 4096))]
    jwt: String,
}

/// Exactly one of the two (a body with both is refused).
#[derive(Debug, Union)]
#[oai(one_of)]
enum OpenSession {
    AdminToken(WithAdminToken),
    UserToken(WithUserToken),
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
struct SessionOpened {
    /// `admin token`, or the admin's email.
    who: String,
    /// ms since the epoch.
    expires_at: i64,
    /// The session secret, for `Authorization: Bearer` (the cookie carries the same).
    session: String,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
struct SessionInfo {
    who: String,
    expires_at: i64,
    /// The instance that answered.
    instance: String,
}

#[derive(Debug, Object)]
struct Done {
    message: String,
}

#[derive(Debug, Object)]
struct Disconnected {
    /// Sockets that were open, on every instance.
    disconnected: u64,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
struct Revoked {
    revoked: bool,
    /// Tokens issued before this version are refused.
    token_version: i64,
    disconnected: u64,
}

#[derive(Debug, Object)]
struct Requeued {
    requeued: u64,
}

#[derive(ApiResponse)]
enum OpenedResponse {
    /// The session is open; the cookie holds it for the console.
    #[oai(status = 200)]
    Opened(Json<SessionOpened>, #[oai(header = "Set-Cookie")] String),
}

#[derive(ApiResponse)]
enum ClosedResponse {
    /// The session is closed and the cookie cleared.
    #[oai(status = 200)]
    Closed(Json<Done>, #[oai(header = "Set-Cookie")] String),
}

type Snapshots = BoxStream<'static, Snapshot>;

#[derive(ApiResponse)]
enum LiveResponse {
    /// Server-Sent Events: a `snapshot` event at once and whenever what it shows
    /// changes (backend health at least every 15 s); a comment every 15 s keeps proxies
    /// from closing the stream. It ends when the session does.
    #[oai(status = 200)]
    Live(EventStream<Snapshots>, #[oai(header = "X-Accel-Buffering")] String),
}

fn count(n: usize) -> u64 {
    n as u64
}

pub struct AdminApi;

type ApiResult<T> = Result<T, ApiError>;

#[OpenApi(prefix_path = "/admin/api", tag = "AdminTags::Admin")]
impl AdminApi {
    /// Open a console session
    ///
    /// With the admin token or an admin's JWT. Ten wrong tries per client address in
    /// 15 minutes, and further tries answer 429 without being checked.
    #[oai(path = "/session", method = "post")]
    async fn open_session(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        body: Json<OpenSession>,
    ) -> ApiResult<OpenedResponse> {
        let credential = match body.0 {
            OpenSession::AdminToken(WithAdminToken { token }) => Credential::AdminToken(token),
            OpenSession::UserToken(WithUserToken { jwt }) => Credential::UserToken(jwt),
        };
        let (secret, session) = state.admin.open_session(credential, state.client_ip(req)).await?;
        let set_cookie = cookie(req, &secret, state.admin.session_ttl().as_secs());
        let opened = SessionOpened { who: session.who, expires_at: session.expires_at, session: secret };
        Ok(OpenedResponse::Opened(Json(opened), set_cookie))
    }

    /// The current session
    #[oai(path = "/session", method = "get")]
    async fn show_session(&self, state: Data<&Arc<AppState>>, auth: AdminAuth) -> ApiResult<Json<SessionInfo>> {
        let AdminAuth { session, .. } = auth;
        let instance = state.settings.instance.clone();
        Ok(Json(SessionInfo { who: session.who, expires_at: session.expires_at, instance }))
    }

    /// Log out
    #[oai(path = "/session", method = "delete")]
    async fn close_session(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: AdminAuth,
    ) -> ApiResult<ClosedResponse> {
        state.admin.close_session(&auth.secret).await?;
        Ok(ClosedResponse::Closed(Json(Done { message: "Logged out".into() }), cookie(req, "", 0)))
    }

    /// What the console shows, now
    #[oai(path = "/overview", method = "get")]
    async fn overview(&self, state: Data<&Arc<AppState>>, _auth: AdminAuth) -> ApiResult<Json<Snapshot>> {
        Ok(Json(state.admin.overview().await))
    }

    /// The console's live feed
    #[oai(path = "/stream", method = "get")]
    async fn stream(&self, state: Data<&Arc<AppState>>, auth: AdminAuth) -> ApiResult<LiveResponse> {
        let snapshots = state.admin.clone().live(auth.secret, state.stopping.clone()).boxed();
        let events = EventStream::new(snapshots)
            .keep_alive(Duration::from_secs(15))
            .to_event(|snapshot| Event::message(snapshot.to_json_string()).event_type("snapshot"));
        // nginx would otherwise buffer the stream and the console would stop being live.
        Ok(LiveResponse::Live(events, "no".into()))
    }

    /// Close a user's sockets
    ///
    /// On every instance; the clients reconnect with their tokens.
    #[oai(path = "/users/:id/disconnect", method = "post")]
    async fn disconnect_user(
        &self,
        state: Data<&Arc<AppState>>,
        _auth: AdminAuth,
        id: Path<IdParam>,
    ) -> ApiResult<Json<Disconnected>> {
        let disconnected = state.admin.disconnect_user(&id.0 .0).await?;
        Ok(Json(Disconnected { disconnected: count(disconnected) }))
    }

    /// Revoke a user's tokens
    ///
    /// Every token issued so far is refused from now on, and the user's sockets close.
    #[oai(path = "/users/:id/revoke", method = "post")]
    async fn revoke_user(
        &self,
        state: Data<&Arc<AppState>>,
        _auth: AdminAuth,
        id: Path<IdParam>,
    ) -> ApiResult<Json<Revoked>> {
        let revoked = state.admin.revoke_user(&id.0 .0).await?;
        Ok(Json(Revoked {
            revoked: true,
            token_version: revoked.token_version,
            disconnected: count(revoked.disconnected),
        }))
    }

    /// Re-queue dead-lettered mail
    #[oai(path = "/mail/requeue-dead", method = "post")]
    async fn requeue_dead(&self, state: Data<&Arc<AppState>>, _auth: AdminAuth) -> ApiResult<Json<Requeued>> {
        Ok(Json(Requeued { requeued: state.admin.requeue_dead_mail().await? }))
    }
}
