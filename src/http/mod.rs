//! The HTTP surface: REST API (documented with poem-openapi), Swagger UI, probes, and
//! the Socket.IO endpoint, with CORS, body limits and JSON errors around all of it.

pub mod admin;
pub mod asyncapi;
pub mod auth;
pub mod chats;
pub mod credentials;
pub mod error;
pub mod fields;
pub mod health;
pub mod limits;
pub mod ops;
pub mod users;

use std::sync::Arc;

use poem::middleware::Cors;
use poem::{Endpoint, EndpointExt, IntoResponse, Route};
use poem_openapi::OpenApiService;

use crate::app::AppState;
use crate::config::CorsOrigins;
use crate::telemetry::Telemetry;

pub type Apis = (health::HealthApi, users::UsersApi, chats::ChatsApi, admin::AdminApi, ops::OpsApi);

/// The whole API as one document; also used to generate and check `openapi/openapi.json`.
/// Served in two parts (see [`routes`]), since the admin part sits beside the console.
pub fn openapi() -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (health::HealthApi, users::UsersApi, chats::ChatsApi, admin::AdminApi, ops::OpsApi),
        "confab",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Self-hostable chat backend. Log in with `POST /api/v1/login` and `POST /api/v1/verify`, \
             then send the token as `Authorization: Bearer <token>`. Every error is `{\"message\": …}`. \
             Real time (Socket.IO at `/socket.io/`): [its events](/asyncapi/), as [AsyncAPI](/asyncapi.json). \
             The admin console's API is under `/admin/api`, behind an admin session.",
    )
    .license("MIT")
}

/// The generated spec as stable, pretty JSON.
pub fn spec_json() -> String {
    openapi().spec()
}

/// A page of the static web client in `web_root`, for paths nothing else answered:
/// `/chat` is `chat.html` or `chat/index.html`, `/` is `index.html` (the original's
/// client built with `output: "export"` has exactly these files).
async fn web_client_page(root: &std::path::Path, path: &str) -> Option<poem::Response> {
    let files = poem::endpoint::StaticFilesEndpoint::new(root).index_file("index.html");
    let trimmed = path.trim_end_matches('/');
    let candidates = [path.to_string(), format!("{trimmed}.html")];
    for candidate in candidates.iter().filter(|c| !c.is_empty() && !c.ends_with("/.html")) {
        let req = poem::Request::builder().uri_str(candidate).finish();
        if let Ok(resp) = files.call(req).await {
            if resp.status().is_success() {
                return Some(resp);
            }
        }
    }
    None
}

/// The methods each documented path answers, for the `Allow` header of a 405 (RFC 9110
/// requires it). Read from the spec itself, so it cannot drift from the routes.
struct AllowedMethods(Vec<(Vec<String>, String)>);

impl AllowedMethods {
    fn from_spec() -> Self {
        let spec: serde_json::Value = serde_json::from_str(&spec_json()).expect("the generated spec is JSON");
        let paths = spec["paths"].as_object().cloned().unwrap_or_default();
        Self(
            paths
                .into_iter()
                .map(|(path, operations)| {
                    let segments = path.split('/').map(str::to_string).collect();
                    let mut methods: Vec<String> = operations
                        .as_object()
                        .map(|o| o.keys().map(|m| m.to_uppercase()).collect())
                        .unwrap_or_default();
                    if methods.iter().any(|m| m == "GET") {
                        methods.push("HEAD".into());
                    }
                    methods.push("OPTIONS".into());
                    (segments, methods.join(", "))
                })
                .collect(),
        )
    }

    fn for_path(&self, path: &str) -> Option<&str> {
        let segments: Vec<&str> = path.split('/').collect();
        self.0.iter().find_map(|(template, methods)| {
            let matches = template.len() == segments.len()
                && template.iter().zip(&segments).all(|(t, s)| t == s || (t.starts_with('{') && !s.is_empty()));
            matches.then_some(methods.as_str())
        })
    }
}

/// A redirect of a page load that arrived on another port than `web_port` to the same
/// path there, or `None` when it arrived on `web_port`. Only page loads are sent over:
/// the API answers on every port, as the original client calls it on both.
fn redirect_to_web_port(req: &poem::Request, web_port: u16) -> Option<poem::Response> {
    let local = req.local_addr().as_socket_addr()?;
    if local.port() == web_port {
        return None;
    }
    // The host the browser used (only the port changes), or the listener's own address.
    let host = req
        .uri()
        .host()
        .map(str::to_string)
        .or_else(|| {
            req.headers()
                .get(poem::http::header::HOST)?
                .to_str()
                .ok()?
                .parse::<poem::http::uri::Authority>()
                .ok()
                .map(|a| a.host().to_string())
        })
        .unwrap_or_else(|| local.ip().to_string());
    let path = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let location = format!("http://{host}:{web_port}{path}");
    // Refuse to echo anything that does not parse back as a URL of that shape.
    let parsed = url::Url::parse(&location).ok()?;
    Some(
        poem::Response::builder()
            .status(poem::http::StatusCode::FOUND)
            .header(poem::http::header::LOCATION, parsed.as_str())
            .header(poem::http::header::CACHE_CONTROL, "no-store")
            .finish(),
    )
}

/// Counts every request by method, route template and final status, with its latency.
async fn observe_http<E: Endpoint>(
    inner: std::sync::Arc<E>,
    req: poem::Request,
    telemetry: Arc<Telemetry>,
    labels: Arc<crate::metrics::RouteLabels>,
) -> poem::Result<poem::Response> {
    let method = req.method().as_str().to_string();
    let started = std::time::Instant::now();
    let result = inner.call(req).await.map(IntoResponse::into_response);
    let (status, matched) = match &result {
        Ok(resp) => (resp.status(), resp.data::<poem::PathPattern>()),
        Err(e) => (e.status(), e.data::<poem::PathPattern>()),
    };
    let route = labels.label(matched.map(|p| &*p.0));
    telemetry.http_request(&method, &route, status.as_u16(), started.elapsed());
    result
}

pub fn routes(
    state: Arc<AppState>,
    socketio: poem::endpoint::BoxEndpoint<'static, poem::Response>,
) -> poem::endpoint::BoxEndpoint<'static, poem::Response> {
    let documented = openapi();
    let docs = documented.swagger_ui();
    let spec = documented.spec_endpoint();
    let version = env!("CARGO_PKG_VERSION");
    let api =
        OpenApiService::new((health::HealthApi, users::UsersApi, chats::ChatsApi, ops::OpsApi), "confab", version);
    let admin_api = OpenApiService::new(admin::AdminApi, "confab", version);
    let cors = match &state.settings.cors {
        CorsOrigins::Any => Cors::new(),
        CorsOrigins::List(origins) => Cors::new().allow_origins(origins.iter().map(String::as_str)),
    }
    .allow_methods(["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"]);
    let config = &state.settings.config;
    let body_limit = limits::BodyLimit {
        default: config.body_limit_bytes,
        // Room for the image and the other form fields.
        uploads: config.max_image_bytes + 64 * 1024,
    };
    let route = Route::new()
        .nest_no_strip("/socket.io", socketio)
        .nest("/docs", docs)
        .at("/openapi.json", spec)
        .at("/asyncapi.json", asyncapi::document())
        .nest("/asyncapi", asyncapi::page());
    let metrics_enabled = config.metrics_enabled;
    let telemetry = state.telemetry.clone();
    let web_root = config.web_root.clone();
    let web_port = state.settings.web_port;
    let allowed = Arc::new(AllowedMethods::from_spec());
    let routes = route
        .nest_no_strip(admin::API_PREFIX, admin::api(admin_api.with(body_limit)))
        .nest("/admin", admin::ui())
        .nest("/", api.with(body_limit))
        .around(move |inner, req| {
            let web_root = web_root.clone();
            async move {
                let wants_page = matches!(*req.method(), poem::http::Method::GET | poem::http::Method::HEAD);
                let path = req.uri().path().to_string();
                let elsewhere = web_port.and_then(|port| redirect_to_web_port(&req, port));
                match inner.call(req).await {
                    Err(e) if e.is::<poem::error::NotFoundError>() && wants_page && web_root.is_some() => {
                        match elsewhere {
                            Some(redirect) => Ok(redirect),
                            None => web_client_page(web_root.as_deref().expect("checked"), &path).await.ok_or(e),
                        }
                    }
                    other => other.map(IntoResponse::into_response),
                }
            }
        })
        .catch_all_error(error::json_error)
        .around(move |inner, req| {
            let allowed = allowed.clone();
            async move {
                let path = req.uri().path().to_string();
                let mut resp = inner.call(req).await?.into_response();
                if resp.status() == poem::http::StatusCode::METHOD_NOT_ALLOWED {
                    if let Some(methods) = allowed.for_path(&path).and_then(|m| m.parse().ok()) {
                        resp.headers_mut().insert(poem::http::header::ALLOW, methods);
                    }
                }
                Ok(resp)
            }
        })
        .with(cors)
        // Again outside CORS: its own refusals (origin not allowed) must be JSON too.
        .catch_all_error(error::json_error)
        .data(state);
    if metrics_enabled {
        let spec: serde_json::Value = serde_json::from_str(&spec_json()).expect("the generated spec is JSON");
        let paths = spec["paths"].as_object().map(|p| p.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
        let labels = Arc::new(crate::metrics::RouteLabels::new(paths.iter().map(String::as_str)));
        routes.around(move |inner, req| observe_http(inner, req, telemetry.clone(), labels.clone())).boxed()
    } else {
        routes.boxed()
    }
}
