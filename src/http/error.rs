//! Every error leaves as `{"message": …}` with a fitting status, whichever layer raised it.

use poem::http::StatusCode;
use poem::Response;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};

use crate::services::auth::UNAUTH_NO_HEADER;
use crate::services::ServiceError;

#[derive(Debug, Clone, Object)]
pub struct ErrorBody {
    /// What went wrong, in words fit to show a user.
    #[oai(validator(max_length = 1000))]
    pub message: String,
}

#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// The request is malformed or a value is invalid.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// Missing, invalid, expired or revoked token.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// Authenticated, but not allowed to do this.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// The thing asked for does not exist.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The body or an uploaded file is too large.
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// The body is not JSON (or, for `/message`, a form) as the operation expects.
    /// Raised by the framework before the handler runs; listed here for the spec.
    #[allow(dead_code)]
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
    /// Too many requests; wait and retry.
    #[oai(status = 429)]
    TooManyRequests(Json<ErrorBody>),
    /// A backend (database, queue, cache) is unreachable; retry later.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

fn body(message: impl Into<String>) -> Json<ErrorBody> {
    Json(ErrorBody { message: message.into() })
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::BadRequest(m) => Self::BadRequest(body(m)),
            ServiceError::Unauthorized(m) => Self::Unauthorized(body(m)),
            ServiceError::Forbidden(m) => Self::Forbidden(body(m)),
            ServiceError::NotFound(m) => Self::NotFound(body(m)),
            ServiceError::TooManyRequests(m) => Self::TooManyRequests(body(m)),
            ServiceError::TooLarge(m) => Self::PayloadTooLarge(body(m)),
            unavailable @ ServiceError::Unavailable(_) => {
                Self::Unavailable(body(unavailable.logged("while serving a request").to_string()))
            }
        }
    }
}

/// Turns errors raised outside our handlers (routing, body parsing, auth extraction,
/// body limits) into the same `{"message"}` shape, and hides internal detail of 5xx.
pub async fn json_error(err: poem::Error) -> Response {
    if err.is_from_response() {
        return err.into_response();
    }
    let (status, message) = if err.is::<poem_openapi::error::AuthorizationError>() {
        (StatusCode::UNAUTHORIZED, UNAUTH_NO_HEADER.to_string())
    } else if err.is::<poem::error::NotFoundError>() {
        (StatusCode::NOT_FOUND, "Not found".to_string())
    } else if err.status().is_server_error() {
        tracing::error!(error = %err, status = %err.status(), "request failed");
        (err.status(), "Internal server error".to_string())
    } else {
        (err.status(), shortened(&err.to_string()))
    };
    let mut resp = json_response(status, message);
    // The route the router matched, for the request metrics' label.
    if let Some(pattern) = err.data::<poem::PathPattern>() {
        resp.set_data(pattern.clone());
    }
    resp
}

/// The framework's own messages can quote the whole request (a body it could not
/// parse): keep the first 300 characters, within the documented 1000.
fn shortened(message: &str) -> String {
    const KEPT: usize = 300;
    match message.char_indices().nth(KEPT) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message.to_string(),
    }
}

pub fn json_response(status: StatusCode, message: impl Into<String>) -> Response {
    let body = serde_json::json!({ "message": message.into() });
    Response::builder().status(status).content_type("application/json; charset=utf-8").body(body.to_string())
}
