//! The Socket.IO contract as an AsyncAPI 3 document (`openapi/asyncapi.json`, committed
//! beside the OpenAPI spec), served at `/asyncapi.json` and rendered at `/asyncapi/`
//! by a small page of our own (no library, the admin console's strict CSP).
//! `tests/asyncapi.rs` checks it against the events the server registers and emits.

use poem::http::header;
use poem::{Endpoint, EndpointExt, Response, Route};

/// The committed document, compiled in.
pub const DOCUMENT: &str = include_str!("../../openapi/asyncapi.json");

#[derive(rust_embed::RustEmbed)]
#[folder = "src/http/asyncapi/"]
struct Page;

pub fn document() -> impl Endpoint {
    poem::endpoint::make_sync(|_| {
        Response::builder().content_type("application/json").header(header::CACHE_CONTROL, "no-cache").body(DOCUMENT)
    })
}

pub fn page() -> impl Endpoint {
    Route::new()
        .nest("/", poem::endpoint::EmbeddedFilesEndpoint::<Page>::new().with(super::admin::strict_page_headers()))
}
