//! The admin console: its embedded UI at `/admin/`, and `/admin/api/*`, where everything
//! but opening a session requires one (cookie `confab_admin`, or `Authorization: Bearer`).

use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, Stream};
use poem::http::{header, Method, StatusCode};
use poem::middleware::SetHeader;
use poem::web::sse::{Event, SSE};
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route};
use serde::Deserialize;
use serde_json::json;

use super::credentials;
use super::error::{json_response, ApiError};
use crate::app::AppState;
use crate::console::{self, BackendView, Fingerprint, UserCache};
use crate::domain::ObjectId;
use crate::services::admin::{AdminSession, Credential};
use crate::services::ServiceError;

#[derive(rust_embed::RustEmbed)]
#[folder = "admin-ui/"]
struct AdminUi;

pub const COOKIE: &str = "confab_admin";

/// How often the live view looks for changes; it pushes only when something changed.
const LOOK_EVERY: Duration = Duration::from_secs(1);
/// Backend pings cost a round trip each (Cloudinary's is remote), so they are refreshed
/// less often than the rest.
const BACKENDS_EVERY: Duration = Duration::from_secs(15);

fn failure(e: ServiceError) -> poem::Error {
    poem::Error::from_response(ApiError::from(e).into_response())
}

fn refuse(status: StatusCode, message: &str) -> poem::Error {
    poem::Error::from_response(json_response(status, message))
}

fn session_secret(req: &Request) -> Option<String> {
    let headers = req.headers();
    credentials::bearer(headers).or_else(|| credentials::cookie(headers, COOKIE)).map(str::to_string)
}

async fn current_session(state: &AppState, req: &Request) -> poem::Result<(String, AdminSession)> {
    let Some(secret) = session_secret(req) else {
        return Err(refuse(StatusCode::UNAUTHORIZED, "Admin session required: log in to the console"));
    };
    match state.admin.session(&secret).await.map_err(failure)? {
        Some(session) => Ok((secret, session)),
        None => Err(refuse(StatusCode::UNAUTHORIZED, "Admin session expired or invalid: log in again")),
    }
}

fn state_of(req: &Request) -> Arc<AppState> {
    req.data::<Arc<AppState>>().expect("state is attached to every route").clone()
}

fn cookie(req: &Request, state: &AppState, value: &str, max_age: u64) -> String {
    let secure = if state.public_base(req).starts_with("https://") { "; Secure" } else { "" };
    format!("{COOKIE}={value}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenSession {
    token: Option<String>,
    jwt: Option<String>,
}

const OPEN_SESSION_SHAPE: &str = r#"Send {"token": "<admin token>"} or {"jwt": "<token from /api/v1/verify>"}"#;

async fn open_session(mut req: Request) -> poem::Result<Response> {
    let state = state_of(&req);
    let bytes = req
        .take_body()
        .into_bytes_limit(16 * 1024)
        .await
        .map_err(|_| refuse(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large"))?;
    let parsed: OpenSession =
        serde_json::from_slice(&bytes).map_err(|_| refuse(StatusCode::BAD_REQUEST, OPEN_SESSION_SHAPE))?;
    let credential = match (parsed.token, parsed.jwt) {
        (Some(token), None) if !token.trim().is_empty() => Credential::AdminToken(token),
        (None, Some(jwt)) if !jwt.trim().is_empty() => Credential::UserToken(jwt),
        _ => return Err(refuse(StatusCode::BAD_REQUEST, OPEN_SESSION_SHAPE)),
    };
    let (secret, session) = state.admin.open_session(credential, state.client_ip(&req)).await.map_err(failure)?;
    let max_age = state.admin.session_ttl().as_secs();
    Ok(Response::builder()
        .header(header::SET_COOKIE, cookie(&req, &state, &secret, max_age))
        .content_type("application/json; charset=utf-8")
        .body(json!({ "who": session.who, "expiresAt": session.expires_at, "session": secret }).to_string()))
}

async fn show_session(req: Request) -> poem::Result<Response> {
    let state = state_of(&req);
    let (_, session) = current_session(&state, &req).await?;
    Ok(json_ok(json!({ "who": session.who, "expiresAt": session.expires_at, "instance": state.settings.instance })))
}

async fn close_session(req: Request) -> poem::Result<Response> {
    let state = state_of(&req);
    let (secret, _) = current_session(&state, &req).await?;
    state.admin.close_session(&secret).await.map_err(failure)?;
    Ok(Response::builder()
        .header(header::SET_COOKIE, cookie(&req, &state, "", 0))
        .content_type("application/json; charset=utf-8")
        .body(json!({ "message": "Logged out" }).to_string()))
}

fn json_ok(value: serde_json::Value) -> Response {
    Response::builder().content_type("application/json; charset=utf-8").body(value.to_string())
}

async fn overview(req: Request) -> poem::Result<Response> {
    let state = state_of(&req);
    let fingerprint = console::fingerprint(&state).await;
    let backends = console::backends(&state).await;
    let snapshot = console::snapshot(&state, &fingerprint, backends, &mut UserCache::default()).await;
    Ok(json_ok(serde_json::to_value(snapshot).expect("snapshot serialises")))
}

struct Watch {
    state: Arc<AppState>,
    /// The session the stream was opened with: when it ends (logout, expiry), so does
    /// the stream.
    secret: String,
    last: Option<Fingerprint>,
    backends: Vec<BackendView>,
    backends_at: Option<tokio::time::Instant>,
    users: UserCache,
}

/// Snapshots, pushed as `snapshot` events whenever what they show changes, for as long
/// as the session lasts.
fn snapshots(state: Arc<AppState>, secret: String) -> impl Stream<Item = Event> + Send + 'static {
    let watch =
        Watch { state, secret, last: None, backends: Vec::new(), backends_at: None, users: UserCache::default() };
    stream::unfold(watch, |mut w| async move {
        loop {
            if w.state.stopping.is_cancelled() || !matches!(w.state.admin.session(&w.secret).await, Ok(Some(_))) {
                return None;
            }
            let backends_due = w.backends_at.is_none_or(|at| at.elapsed() >= BACKENDS_EVERY);
            let fingerprint = console::fingerprint(&w.state).await;
            if backends_due || w.last.as_ref() != Some(&fingerprint) {
                if backends_due {
                    w.backends = console::backends(&w.state).await;
                    w.backends_at = Some(tokio::time::Instant::now());
                }
                let snapshot = console::snapshot(&w.state, &fingerprint, w.backends.clone(), &mut w.users).await;
                w.last = Some(fingerprint);
                let data = serde_json::to_string(&snapshot).expect("snapshot serialises");
                return Some((Event::message(data).event_type("snapshot"), w));
            }
            tokio::select! {
                _ = w.state.stopping.cancelled() => return None,
                _ = tokio::time::sleep(LOOK_EVERY) => {}
            }
        }
    })
}

async fn live(req: Request) -> poem::Result<Response> {
    let state = state_of(&req);
    let (secret, _) = current_session(&state, &req).await?;
    let mut response = SSE::new(snapshots(state, secret)).keep_alive(Duration::from_secs(15)).into_response();
    // nginx would otherwise buffer the stream and the console would stop being live.
    response.headers_mut().insert("x-accel-buffering", poem::http::HeaderValue::from_static("no"));
    Ok(response)
}

fn user_id(req: &Request) -> poem::Result<ObjectId> {
    let raw = req.raw_path_param("id").unwrap_or_default();
    ObjectId::parse(raw).map_err(|_| refuse(StatusCode::BAD_REQUEST, "Invalid user id"))
}

async fn disconnect_user(req: Request) -> poem::Result<Response> {
    let state = state_of(&req);
    let id = user_id(&req)?;
    let disconnected = state.connections.disconnect_user(&id).await.map_err(|e| failure(e.into()))?;
    tracing::info!(user = %id, disconnected, "admin disconnected a user's sockets");
    Ok(json_ok(json!({ "disconnected": disconnected })))
}

async fn revoke_user(req: Request) -> poem::Result<Response> {
    let state = state_of(&req);
    let id = user_id(&req)?;
    let Some(user) = state.store.bump_token_version(&id).await.map_err(|e| failure(e.into()))? else {
        return Err(refuse(StatusCode::NOT_FOUND, "No such user"));
    };
    // Open sockets were authenticated with the old tokens; closing them makes the
    // clients reconnect, and the revoked tokens are refused then.
    let disconnected = state.connections.disconnect_user(&id).await.map_err(|e| failure(e.into()))?;
    tracing::info!(user = %id, disconnected, "admin revoked a user's tokens");
    Ok(json_ok(json!({ "revoked": true, "tokenVersion": user.token_version, "disconnected": disconnected })))
}

async fn requeue_dead(req: Request) -> poem::Result<Response> {
    let state = state_of(&req);
    let requeued = state.mail_queue.requeue_dead_letters().await.map_err(|e| failure(e.into()))?;
    tracing::info!(requeued, "admin re-queued dead-lettered mails");
    Ok(json_ok(json!({ "requeued": requeued })))
}

/// Everything under `/admin/api` except opening a session: refused without one, even
/// paths that do not exist, so probing reveals nothing.
async fn with_session<E: Endpoint>(inner: Arc<E>, req: Request) -> poem::Result<Response> {
    let state = state_of(&req);
    current_session(&state, &req).await?;
    inner.call(req).await.map(IntoResponse::into_response)
}

fn api() -> impl Endpoint {
    use poem::endpoint::make;
    let protected = Route::new()
        .at("/overview", poem::get(make(overview)))
        .at("/stream", poem::get(make(live)))
        .at("/users/:id/disconnect", poem::post(make(disconnect_user)))
        .at("/users/:id/revoke", poem::post(make(revoke_user)))
        .at("/mail/requeue-dead", poem::post(make(requeue_dead)))
        .around(with_session);
    let session = poem::endpoint::make(|req: Request| async move {
        match *req.method() {
            Method::POST => open_session(req).await,
            Method::GET => show_session(req).await,
            Method::DELETE => close_session(req).await,
            _ => Err(refuse(StatusCode::METHOD_NOT_ALLOWED, "Use POST, GET or DELETE")),
        }
    });
    Route::new()
        .at("/session", session)
        .nest("/", protected)
        .with(SetHeader::new().overriding(header::CACHE_CONTROL, "no-store"))
}

/// The console's pages: same-origin only, never framed, revalidated on every load.
fn ui() -> impl Endpoint {
    poem::endpoint::EmbeddedFilesEndpoint::<AdminUi>::new().with(strict_page_headers())
}

/// Headers for the pages confab serves itself: scripts, styles and requests from its own
/// origin only, never framed, revalidated on every load.
pub(super) fn strict_page_headers() -> SetHeader {
    SetHeader::new()
        .overriding(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
                 connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        )
        .overriding(header::X_FRAME_OPTIONS, "DENY")
        .overriding(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .overriding(header::REFERRER_POLICY, "no-referrer")
        .overriding(header::CACHE_CONTROL, "no-cache")
}

pub fn routes() -> impl Endpoint {
    Route::new().nest("/api", api()).nest("/", ui())
}
