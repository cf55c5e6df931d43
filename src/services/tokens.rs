//! JWTs in the original's shape: HS256, `{user:{_id,name,email,createdAt,updatedAt,__v}}`,
//! valid 15 days. A `tv` claim (token version) lets a user's tokens be revoked.

use std::time::Duration;

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::domain::{iso8601, User};

pub const TOKEN_LIFETIME: Duration = Duration::from_secs(15 * 24 * 60 * 60);

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// Absent in tokens that are not ours: such tokens are answered "Invalid token".
    #[serde(default)]
    pub user: Option<TokenUser>,
    #[serde(default)]
    pub tv: i64,
    pub iat: i64,
    pub exp: i64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct TokenUser {
    #[serde(rename = "_id")]
    pub id: String,
    pub name: String,
    pub email: String,
    #[serde(rename = "createdAt")]
    pub created_at: String,
    #[serde(rename = "updatedAt")]
    pub updated_at: String,
    #[serde(rename = "__v", default)]
    pub version: i64,
}

pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

#[derive(Debug, PartialEq, Eq)]
pub enum TokenError {
    /// Bad signature, expired, malformed, wrong algorithm (including `none`).
    Rejected,
    /// Verified, but it does not name a user.
    NoUser,
}

impl TokenKeys {
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp"]);
        Self { encoding: EncodingKey::from_secret(secret), decoding: DecodingKey::from_secret(secret), validation }
    }

    pub fn issue(&self, user: &User, now_secs: i64) -> String {
        let claims = Claims {
            user: Some(TokenUser {
                id: user.id.to_hex(),
                name: user.name.clone(),
                email: user.email.as_str().to_string(),
                created_at: iso8601(user.created_at),
                updated_at: iso8601(user.updated_at),
                version: 0,
            }),
            tv: user.token_version,
            iat: now_secs,
            exp: now_secs + TOKEN_LIFETIME.as_secs() as i64,
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).expect("HS256 signing cannot fail")
    }

    pub fn verify(&self, token: &str) -> Result<(TokenUser, i64), TokenError> {
        let data = decode::<Claims>(token, &self.decoding, &self.validation).map_err(|_| TokenError::Rejected)?;
        let Claims { user, tv, .. } = data.claims;
        user.map(|u| (u, tv)).ok_or(TokenError::NoUser)
    }
}
