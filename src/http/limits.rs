//! Request-body size limit that, unlike poem's `SizeLimit`, also covers bodies without a
//! `Content-Length` (chunked) and lets body-less requests through.

use poem::http::StatusCode;
use poem::web::headers::{ContentLength, HeaderMapExt};
use poem::{Body, Endpoint, Middleware, Request, Result};

use super::error::json_response;

pub struct BodyLimit(pub usize);

impl<E: Endpoint> Middleware<E> for BodyLimit {
    type Output = BodyLimitEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        BodyLimitEndpoint { inner, limit: self.0 }
    }
}

pub struct BodyLimitEndpoint<E> {
    inner: E,
    limit: usize,
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
        match req.headers().typed_get::<ContentLength>() {
            Some(ContentLength(len)) if len > self.limit as u64 => return Err(too_large(self.limit)),
            Some(_) => {}
            None if req.headers().contains_key(poem::http::header::TRANSFER_ENCODING) => {
                let bytes = req.take_body().into_bytes_limit(self.limit).await.map_err(|e| match e {
                    poem::error::ReadBodyError::PayloadTooLarge => too_large(self.limit),
                    other => other.into(),
                })?;
                req.set_body(Body::from_bytes(bytes));
            }
            None => {}
        }
        self.inner.call(req).await
    }
}
