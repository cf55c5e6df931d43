//! Profiles: listing, looking up and renaming users.

use std::sync::Arc;

use super::auth::AuthService;
use super::{ServiceError, ServiceResult};
use crate::domain::{ObjectId, User, UserName};
use crate::ports::Store;

pub struct UserService {
    store: Arc<dyn Store>,
    auth: Arc<AuthService>,
}

impl UserService {
    pub fn new(store: Arc<dyn Store>, auth: Arc<AuthService>) -> Self {
        Self { store, auth }
    }

    pub async fn all(&self) -> ServiceResult<Vec<User>> {
        Ok(self.store.list_users().await?)
    }

    pub async fn by_id(&self, raw_id: &str) -> ServiceResult<User> {
        let id = ObjectId::parse(raw_id)?;
        self.store.user_by_id(&id).await?.ok_or_else(|| ServiceError::NotFound("User not found".into()))
    }

    /// Renames the caller and hands back a fresh token, as the original's client expects.
    pub async fn rename(&self, me: &User, raw_name: Option<&str>) -> ServiceResult<(User, String)> {
        let name = UserName::parse(raw_name.unwrap_or_default())?;
        let user = self
            .store
            .rename_user(&me.id, name.as_str())
            .await?
            .ok_or_else(|| ServiceError::NotFound("Please login".into()))?;
        let token = self.auth.issue_token(&user);
        Ok((user, token))
    }
}
