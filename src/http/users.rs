//! The original user service's endpoints, under `/api/v1`.

use std::sync::Arc;

use poem::web::Data;
use poem::Request;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};

use super::auth::BearerAuth;
use super::error::ApiError;
use super::fields::{EmailSpec, Field, IdParam, NameSpec, OtpSpec};
use crate::app::AppState;
use crate::wire::UserJson;

#[derive(Tags)]
enum ApiTags {
    /// Passwordless login: a one-time code by mail, then a JWT.
    Auth,
    /// Profiles.
    Users,
}

#[derive(Debug, Object)]
struct LoginRequest {
    /// Where to send the code. Trimmed and lowercased.
    email: Field<EmailSpec>,
}

#[derive(Debug, Object)]
struct VerifyRequest {
    email: Field<EmailSpec>,
    /// The 6-digit code from the mail, as a string.
    otp: Field<OtpSpec>,
}

#[derive(Debug, Object)]
struct UpdateUserRequest {
    /// 1–64 characters after trimming.
    name: Field<NameSpec>,
}

#[derive(Debug, Object)]
struct MessageBody {
    message: String,
}

/// The user plus a fresh token, which replaces the client's stored one.
#[derive(Debug, Object)]
struct UserWithToken {
    message: String,
    user: UserJson,
    token: String,
}

#[derive(ApiResponse)]
enum LoginResponse {
    /// The code was queued for mailing: `{"message":"OTP sent to your mail"}`.
    #[oai(status = 200)]
    Sent(Json<MessageBody>),
}

#[derive(ApiResponse)]
enum UserWithTokenResponse {
    #[oai(status = 200)]
    Ok(Json<UserWithToken>),
}

#[derive(ApiResponse)]
enum UserResponse {
    #[oai(status = 200)]
    Ok(Json<UserJson>),
}

#[derive(ApiResponse)]
enum UserListResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<UserJson>>),
}

pub struct UsersApi;

type ApiResult<T> = Result<T, ApiError>;

#[OpenApi(prefix_path = "/api/v1")]
impl UsersApi {
    /// Mail a one-time login code
    ///
    /// Sends a 6-digit code valid for 5 minutes. At most one request per email per
    /// minute, and a per-client-address limit; both answer 429.
    #[oai(path = "/login", method = "post", tag = "ApiTags::Auth")]
    async fn login(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        body: Json<LoginRequest>,
    ) -> ApiResult<LoginResponse> {
        let email = body.0.email.text()?.unwrap_or_default();
        state.auth.request_otp(email, state.client_ip(req)).await?;
        Ok(LoginResponse::Sent(Json(MessageBody { message: "OTP sent to your mail".into() })))
    }

    /// Exchange a code for a token
    ///
    /// Creates the user on first login (named after the first 8 characters of the email).
    /// Codes are single use; after 5 wrong attempts the code is burned (429).
    #[oai(path = "/verify", method = "post", tag = "ApiTags::Auth")]
    async fn verify(&self, state: Data<&Arc<AppState>>, body: Json<VerifyRequest>) -> ApiResult<UserWithTokenResponse> {
        let VerifyRequest { email, otp } = body.0;
        let (email, otp) = (email.text()?.unwrap_or_default(), otp.text()?.unwrap_or_default());
        let (user, token) = state.auth.verify_otp(email, otp).await?;
        Ok(UserWithTokenResponse::Ok(Json(UserWithToken {
            message: "User Verified".into(),
            user: (&user).into(),
            token,
        })))
    }

    /// The current user
    ///
    /// Read from the store, so a rename shows at once.
    #[oai(path = "/me", method = "get", tag = "ApiTags::Users")]
    async fn me(&self, auth: BearerAuth) -> ApiResult<UserResponse> {
        Ok(UserResponse::Ok(Json((&auth.0).into())))
    }

    /// Every user, including the caller
    #[oai(path = "/user/all", method = "get", tag = "ApiTags::Users")]
    async fn all(&self, state: Data<&Arc<AppState>>, _auth: BearerAuth) -> ApiResult<UserListResponse> {
        let users = state.users.all().await?;
        Ok(UserListResponse::Ok(Json(users.iter().map(UserJson::from).collect())))
    }

    /// One user by id
    ///
    /// Unlike the original this needs a token, since it returns the email.
    #[oai(path = "/user/:id", method = "get", tag = "ApiTags::Users")]
    async fn by_id(
        &self,
        state: Data<&Arc<AppState>>,
        _auth: BearerAuth,
        id: Path<IdParam>,
    ) -> ApiResult<UserResponse> {
        let user = state.users.by_id(&id.0 .0).await?;
        Ok(UserResponse::Ok(Json((&user).into())))
    }

    /// Rename the current user
    ///
    /// Returns the updated user and a fresh token.
    #[oai(path = "/update/user", method = "post", tag = "ApiTags::Users")]
    async fn update(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
        body: Json<UpdateUserRequest>,
    ) -> ApiResult<UserWithTokenResponse> {
        let (user, token) = state.users.rename(&auth.0, body.0.name.text()?).await?;
        Ok(UserWithTokenResponse::Ok(Json(UserWithToken {
            message: "User Updated".into(),
            user: (&user).into(),
            token,
        })))
    }
}
