//! The admin console: its embedded UI at `/admin/`, and `/admin/api/*` (documented in the
//! OpenAPI spec), where everything but opening a session requires one (cookie
//! `confab_admin`, or `Authorization: Bearer`).

mod api;
mod session;

use poem::http::header;
use poem::middleware::SetHeader;
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response};

pub use api::AdminApi;
pub use session::COOKIE;

#[derive(rust_embed::RustEmbed)]
#[folder = "admin-ui/"]
struct AdminUi;

pub const API_PREFIX: &str = "/admin/api";

const OPEN_SESSION_SHAPE: &str = r#"Send {"token": "<admin token>"} or {"jwt": "<token from /api/v1/verify>"}"#;

/// Everything under `/admin/api` but `/session` is refused without a session, even paths
/// that do not exist, so probing reveals nothing. (`/session` checks for itself: opening
/// one needs none, and other methods there get 405.)
async fn with_session<E: Endpoint>(inner: std::sync::Arc<E>, mut req: Request) -> poem::Result<Response> {
    if req.uri().path() != format!("{API_PREFIX}/session") {
        let current = session::current(&req).await?;
        req.set_data(current);
    }
    inner.call(req).await.map(IntoResponse::into_response)
}

/// The admin API at `/admin/api` (mount without stripping the prefix): behind a session,
/// never cached.
pub fn api(service: impl Endpoint + 'static) -> impl Endpoint {
    // The only body here is the one that opens a session: say what it must look like.
    let explain = |_: poem_openapi::error::ParseRequestPayloadError| async {
        super::error::json_response(poem::http::StatusCode::BAD_REQUEST, OPEN_SESSION_SHAPE)
    };
    service
        .catch_error(explain)
        .around(with_session)
        .with(SetHeader::new().overriding(header::CACHE_CONTROL, "no-store"))
}

/// The console's pages: same-origin only, never framed, revalidated on every load.
pub fn ui() -> impl Endpoint {
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
