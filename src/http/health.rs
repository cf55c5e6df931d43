//! Liveness and readiness probes.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::app::AppState;

#[derive(Debug, Object)]
struct Health {
    status: String,
}

#[derive(Debug, Object)]
struct BackendStatus {
    /// `store`, `ephemeral`, `mail_queue`, `media` or `realtime`.
    name: String,
    /// Which adapter serves this port, e.g. `sqlite (./data/confab.db)`.
    backend: String,
    ok: bool,
    /// Why it is not ready; absent when ok.
    #[oai(skip_serializing_if_is_none)]
    error: Option<String>,
}

#[derive(Debug, Object)]
struct Readiness {
    ready: bool,
    backends: Vec<BackendStatus>,
}

#[derive(ApiResponse)]
enum ReadyResponse {
    /// Every configured backend answered.
    #[oai(status = 200)]
    Ready(Json<Readiness>),
    /// At least one backend did not answer.
    #[oai(status = 503)]
    NotReady(Json<Readiness>),
}

pub struct HealthApi;

#[OpenApi]
impl HealthApi {
    /// Liveness: the process is up
    #[oai(path = "/healthz", method = "get", tag = "HealthTags::Health")]
    async fn healthz(&self) -> Json<Health> {
        Json(Health { status: "ok".into() })
    }

    /// Readiness: every configured backend is reachable
    #[oai(path = "/readyz", method = "get", tag = "HealthTags::Health")]
    async fn readyz(&self, state: Data<&Arc<AppState>>) -> ReadyResponse {
        let checks = state.health.check().await;
        let backends: Vec<BackendStatus> = checks
            .into_iter()
            .map(|c| BackendStatus { name: c.name.into(), backend: c.backend, ok: c.error.is_none(), error: c.error })
            .collect();
        let ready = backends.iter().all(|b| b.ok);
        let body = Json(Readiness { ready, backends });
        if ready {
            ReadyResponse::Ready(body)
        } else {
            ReadyResponse::NotReady(body)
        }
    }
}

#[derive(poem_openapi::Tags)]
enum HealthTags {
    /// Probes for load balancers and orchestrators.
    Health,
}
