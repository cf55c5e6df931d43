//! What an admin can do to a running site.

use super::AdminService;
use crate::domain::ObjectId;
use crate::services::{ServiceError, ServiceResult};

/// The outcome of revoking a user's tokens.
pub struct Revoked {
    /// The user's token version now; tokens issued before it are refused.
    pub token_version: i64,
    /// Sockets that were open and are now closed.
    pub disconnected: usize,
}

fn user_id(raw: &str) -> ServiceResult<ObjectId> {
    ObjectId::parse(raw).map_err(|_| ServiceError::BadRequest("Invalid user id".into()))
}

impl AdminService {
    /// Closes every socket of `user` on every instance; returns how many were open.
    pub async fn disconnect_user(&self, user: &str) -> ServiceResult<usize> {
        let user = user_id(user)?;
        let disconnected = self.connections.disconnect_user(&user).await?;
        tracing::info!(user = %user, disconnected, "admin disconnected a user's sockets");
        Ok(disconnected)
    }

    /// Invalidates every token issued to `user` so far and closes its sockets.
    pub async fn revoke_user(&self, user: &str) -> ServiceResult<Revoked> {
        let user = user_id(user)?;
        let Some(revoked) = self.store.bump_token_version(&user).await? else {
            return Err(ServiceError::NotFound("No such user".into()));
        };
        // Open sockets were authenticated with the old tokens; closing them makes the
        // clients reconnect, and the revoked tokens are refused then.
        let disconnected = self.connections.disconnect_user(&user).await?;
        tracing::info!(user = %user, disconnected, "admin revoked a user's tokens");
        Ok(Revoked { token_version: revoked.token_version, disconnected })
    }

    /// Puts dead-lettered mails back on the queue; returns how many.
    pub async fn requeue_dead_mail(&self) -> ServiceResult<u64> {
        let requeued = self.mail_queue.requeue_dead_letters().await?;
        tracing::info!(requeued, "admin re-queued dead-lettered mails");
        Ok(requeued)
    }
}
