//! The admin session as an OpenAPI security requirement: the `confab_admin` cookie the
//! console's login sets, or the same secret as `Authorization: Bearer` for scripts.

use std::sync::Arc;

use poem::http::StatusCode;
use poem::{Request, RequestBody};
use poem_openapi::registry::{MetaSecurityScheme, Registry};
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};

use crate::app::AppState;
use crate::http::credentials;
use crate::http::error::{json_response, ApiError};
use crate::services::admin::AdminSession;

pub const COOKIE: &str = "confab_admin";
const COOKIE_SCHEME: &str = "AdminSessionCookie";
const BEARER_SCHEME: &str = "AdminSessionBearer";

/// An open admin session and its secret (needed to close it, or to follow it in the
/// live view).
#[derive(Clone)]
pub struct AdminAuth {
    pub secret: String,
    pub session: AdminSession,
}

fn refuse(message: &str) -> poem::Error {
    poem::Error::from_response(json_response(StatusCode::UNAUTHORIZED, message))
}

fn state_of(req: &Request) -> &Arc<AppState> {
    req.data::<Arc<AppState>>().expect("state is attached to every route")
}

/// The session the request carries, or a 401 saying why there is none.
pub async fn current(req: &Request) -> poem::Result<AdminAuth> {
    let headers = req.headers();
    let Some(secret) = credentials::bearer(headers).or_else(|| credentials::cookie(headers, COOKIE)) else {
        return Err(refuse("Admin session required: log in to the console"));
    };
    match state_of(req).admin.session(secret).await.map_err(|e| poem::Error::from(ApiError::from(e)))? {
        Some(session) => Ok(AdminAuth { secret: secret.to_string(), session }),
        None => Err(refuse("Admin session expired or invalid: log in again")),
    }
}

/// The `Set-Cookie` value that stores (or, with `max_age` 0, clears) the session in the
/// browser; `Secure` when the console is served over https.
pub fn cookie(req: &Request, value: &str, max_age: u64) -> String {
    let secure = if state_of(req).public_base(req).starts_with("https://") { "; Secure" } else { "" };
    format!("{COOKIE}={value}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

impl<'a> ApiExtractor<'a> for AdminAuth {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        registry.create_security_scheme(
            COOKIE_SCHEME,
            MetaSecurityScheme {
                ty: "apiKey",
                description: Some("The `confab_admin` cookie set by `POST /admin/api/session` (the console uses it)."),
                name: Some(COOKIE),
                key_in: Some("cookie"),
                scheme: None,
                bearer_format: None,
                flows: None,
                openid_connect_url: None,
            },
        );
        registry.create_security_scheme(
            BEARER_SCHEME,
            MetaSecurityScheme {
                ty: "http",
                description: Some("The `session` secret returned by `POST /admin/api/session`, for scripts."),
                name: None,
                key_in: None,
                scheme: Some("bearer"),
                bearer_format: None,
                flows: None,
                openid_connect_url: None,
            },
        );
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![COOKIE_SCHEME, BEARER_SCHEME]
    }

    async fn from_request(
        req: &'a Request,
        _body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        // The session guard in front of the API has usually looked it up already.
        match req.data::<AdminAuth>() {
            Some(found) => Ok(found.clone()),
            None => current(req).await,
        }
    }
}
