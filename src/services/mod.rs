//! Domain services: the application's rules, written against the ports only. They know
//! nothing of HTTP, Socket.IO or which database is behind a port.

pub mod admin;
pub mod auth;
pub mod chats;
pub mod media;
pub mod tokens;
pub mod users;

use crate::domain::Invalid;

/// Why a request could not be served, in words safe to show the client.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    TooManyRequests(String),
    #[error("{0}")]
    TooLarge(String),
    /// A backend failed; the detail is logged, the client gets a generic message.
    #[error("backend unavailable: {0:#}")]
    Unavailable(anyhow::Error),
}

impl From<Invalid> for ServiceError {
    fn from(e: Invalid) -> Self {
        Self::BadRequest(e.0)
    }
}

impl From<anyhow::Error> for ServiceError {
    fn from(e: anyhow::Error) -> Self {
        Self::Unavailable(e)
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;
