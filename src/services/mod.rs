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
    /// A backend failed. Shown to clients only as this generic message; the detail
    /// (hosts, driver errors) goes to the log through [`ServiceError::logged`].
    #[error("Service temporarily unavailable, please retry")]
    Unavailable(anyhow::Error),
}

impl ServiceError {
    /// Logs a backend failure's detail (other errors are the client's own doing) and
    /// returns the error, whose text is then safe to send.
    pub fn logged(self, context: &str) -> Self {
        if let Self::Unavailable(error) = &self {
            tracing::error!(error = %format!("{error:#}"), "backend failure: {context}");
        }
        self
    }
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
