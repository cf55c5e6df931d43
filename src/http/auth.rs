//! The bearer-token security scheme shared by every authenticated endpoint.

use std::sync::Arc;

use poem::Request;
use poem_openapi::auth::Bearer;
use poem_openapi::SecurityScheme;

use super::error::ApiError;
use crate::app::AppState;
use crate::domain::User;

/// `Authorization: Bearer <jwt>` from `POST /api/v1/verify`. The token must be valid,
/// unexpired, and not revoked; the user is loaded fresh from the store.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "check_bearer")]
pub struct BearerAuth(pub User);

async fn check_bearer(req: &Request, bearer: Bearer) -> poem::Result<User> {
    let state = req.data::<Arc<AppState>>().expect("AppState is attached to every request");
    state.auth.authenticate(&bearer.token).await.map_err(|e| ApiError::from(e).into())
}
