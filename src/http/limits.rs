//! Request-body size limit that, unlike poem's `SizeLimit`, also covers bodies without a
//! `Content-Length` (chunked) and lets body-less requests through.

use poem::http::StatusCode;
use poem::web::headers::{ContentLength, HeaderMapExt};
use poem::{Body, Endpoint, Middleware, Request, Result};

use super::error::json_response;

#[derive(Clone, Copy)]
pub struct BodyLimit {
    pub default: usize,
    /// For multipart bodies to `POST /api/v1/message` (image uploads).
    pub uploads: usize,
}

impl<E: Endpoint> Middleware<E> for BodyLimit {
    type Output = BodyLimitEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        BodyLimitEndpoint { inner, default: self.default, uploads: self.uploads }
    }
}

pub struct BodyLimitEndpoint<E> {
    inner: E,
    default: usize,
    uploads: usize,
}

impl<E> BodyLimitEndpoint<E> {
    fn limit_for(&self, req: &Request) -> usize {
        let multipart = req.content_type().is_some_and(|t| t.starts_with("multipart/form-data"));
        if multipart && req.uri().path() == "/api/v1/message" {
            self.uploads
        } else {
            self.default
        }
    }
}

fn too_large(limit: usize) -> poem::Error {
    poem::Error::from_response(json_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("Request body is too large (limit {limit} bytes)"),
    ))
}

impl<E: Endpoint> Endpoint for BodyLimitEndpoint<E> {
    type Output = E::Output;

    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        let limit = self.limit_for(&req);
        match req.headers().typed_get::<ContentLength>() {
            Some(ContentLength(len)) if len > limit as u64 => return Err(too_large(limit)),
            Some(_) => {}
            None if req.headers().contains_key(poem::http::header::TRANSFER_ENCODING) => {
                let bytes = req.take_body().into_bytes_limit(limit).await.map_err(|e| match e {
                    poem::error::ReadBodyError::PayloadTooLarge => too_large(limit),
                    other => other.into(),
                })?;
                req.set_body(Body::from_bytes(bytes));
            }
            None => {}
        }
        self.inner.call(req).await
    }
}
