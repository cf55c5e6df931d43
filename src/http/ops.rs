//! `/metrics` for Prometheus and `/media/…` for stored images, documented like the rest
//! of the API.

use std::sync::Arc;

use poem::http::StatusCode;
use poem::web::{Data, StaticFileRequest, StaticFileResponse};
use poem::{IntoResponse, Request, Response};
use poem_openapi::param::Path;
use poem_openapi::payload::{Binary, Payload, PlainText};
use poem_openapi::registry::{
    MetaHeader, MetaMediaType, MetaResponse, MetaResponses, MetaSchema, MetaSchemaRef, Registry,
};
use poem_openapi::types::Type;
use poem_openapi::{ApiResponse, OpenApi, Tags};
use subtle::ConstantTimeEq;

use super::credentials;
use super::error::{json_response, ApiError, ErrorBody};
use crate::app::AppState;
use crate::media::local::FOLDER;
use crate::services::ServiceError;

#[derive(Tags)]
enum OpsTags {
    /// For operators: metrics and stored files.
    Operations,
}

#[derive(ApiResponse)]
enum MetricsResponse {
    /// Prometheus text exposition format.
    #[oai(status = 200, content_type = "text/plain; version=0.0.4; charset=utf-8")]
    Text(PlainText<String>),
}

/// An image as stored: cacheable for a year (names are never reused), with `ETag`,
/// `Last-Modified` and byte ranges answered as for any static file.
pub struct MediaFile(Response);

impl From<StaticFileResponse> for MediaFile {
    fn from(file: StaticFileResponse) -> Self {
        let mut resp = file.into_response();
        let headers = resp.headers_mut();
        headers.insert(
            poem::http::header::CACHE_CONTROL,
            poem::http::HeaderValue::from_static("public, max-age=31536000, immutable"),
        );
        headers.insert(poem::http::header::X_CONTENT_TYPE_OPTIONS, poem::http::HeaderValue::from_static("nosniff"));
        Self(resp)
    }
}

impl IntoResponse for MediaFile {
    fn into_response(self) -> Response {
        self.0
    }
}

fn header(name: &str, description: &str) -> MetaHeader {
    MetaHeader {
        name: name.into(),
        description: Some(description.into()),
        required: false,
        deprecated: false,
        schema: MetaSchemaRef::Inline(Box::new(MetaSchema::new("string"))),
    }
}

impl ApiResponse for MediaFile {
    fn meta() -> MetaResponses {
        let image = |description| MetaResponse {
            description,
            status: None,
            status_range: None,
            content: ["image/jpeg", "image/png", "image/gif", "image/webp"]
                .into_iter()
                .map(|content_type| MetaMediaType { content_type, schema: Binary::<Vec<u8>>::schema_ref() })
                .collect(),
            headers: vec![
                header("Cache-Control", "`public, max-age=31536000, immutable`"),
                header("ETag", "For `If-None-Match`"),
                header("Last-Modified", "For `If-Modified-Since`"),
            ],
        };
        let bare = |status, description| MetaResponse {
            description,
            status: Some(status),
            status_range: None,
            content: vec![],
            headers: vec![],
        };
        let refused = |status, description| MetaResponse {
            content: vec![MetaMediaType {
                content_type: "application/json; charset=utf-8",
                schema: ErrorBody::schema_ref(),
            }],
            ..bare(status, description)
        };
        MetaResponses {
            responses: vec![
                MetaResponse { status: Some(200), ..image("The image.") },
                MetaResponse { status: Some(206), ..image("The requested byte range (`Range` header).") },
                bare(304, "Unchanged since the `ETag` or date the client sent."),
                refused(412, "An `If-Match` or `If-Unmodified-Since` condition failed."),
                refused(416, "The `Range` is outside the file."),
            ],
        }
    }

    fn register(registry: &mut Registry) {
        ErrorBody::register(registry);
    }
}

fn media_response(file: Result<StaticFileResponse, poem::error::StaticFileError>) -> Result<MediaFile, ApiError> {
    use poem::error::StaticFileError as E;
    let refused = |status, message| Ok(MediaFile(json_response(status, message)));
    match file {
        Ok(file) => Ok(file.into()),
        Err(E::PreconditionFailed) => refused(StatusCode::PRECONDITION_FAILED, "Precondition failed"),
        Err(E::RangeNotSatisfiable { .. }) => refused(StatusCode::RANGE_NOT_SATISFIABLE, "Range not satisfiable"),
        Err(E::Io(e)) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(ServiceError::Unavailable(anyhow::Error::from(e).context("reading a stored image")).into())
        }
        // Anything else (missing, a directory, a name that tries to leave the folder) is
        // answered alike, so probing learns nothing.
        Err(_) => Err(ServiceError::NotFound("Not found".into()).into()),
    }
}

/// A stored file name: letters, digits, `_`, `-` and one extension; nothing that could
/// name another directory.
fn plain_file_name(name: &str) -> bool {
    let mut parts = name.split('.');
    let (Some(stem), Some(ext), None) = (parts.next(), parts.next(), parts.next()) else { return false };
    let ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    ok(stem) && ok(ext)
}

pub struct OpsApi;

#[OpenApi(tag = "OpsTags::Operations")]
impl OpsApi {
    /// Prometheus metrics
    ///
    /// Needs `Authorization: Bearer <metrics_token>` when `metrics_token` is set; 404
    /// when `metrics_enabled` is false.
    #[oai(path = "/metrics", method = "get")]
    async fn metrics(&self, state: Data<&Arc<AppState>>, req: &Request) -> Result<MetricsResponse, ApiError> {
        let config = &state.settings.config;
        if let Some(expected) = &config.metrics_token {
            let given = credentials::bearer(req.headers());
            if !given.is_some_and(|g| bool::from(g.as_bytes().ct_eq(expected.as_bytes()))) {
                return Err(ServiceError::Unauthorized("A valid metrics token is required".into()).into());
            }
        }
        let text = state.telemetry.render().ok_or_else(|| ServiceError::NotFound("Not found".into()))?;
        Ok(MetricsResponse::Text(PlainText(text)))
    }

    /// A stored chat image or thumbnail
    ///
    /// The `url` and `thumbUrl` of a message's image, when images are stored locally
    /// (no `cloudinary_url`).
    #[oai(path = "/media/chat-images/:file", method = "get")]
    async fn media(
        &self,
        state: Data<&Arc<AppState>>,
        file: Path<String>,
        conditions: StaticFileRequest,
    ) -> Result<MediaFile, ApiError> {
        let config = &state.settings.config;
        if config.cloudinary_url.is_some() || !plain_file_name(&file.0) {
            return Err(ServiceError::NotFound("Not found".into()).into());
        }
        let path = config.data_dir.join("media").join(FOLDER).join(&file.0);
        media_response(conditions.create_response(path, false, false))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_plain_names_are_served() {
        for ok in ["66ab1c2d3e4f5a6b7c8d9e0f.jpg", "66ab1c2d3e4f5a6b7c8d9e0f_thumb.webp"] {
            assert!(super::plain_file_name(ok), "{ok}");
        }
        for bad in ["..", "../x.jpg", "a/b.jpg", ".jpg", "a.", "a.b.c", "", "a b.jpg", "a%2f.jpg"] {
            assert!(!super::plain_file_name(bad), "{bad}");
        }
    }
}
