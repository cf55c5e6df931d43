//! The original web client's exact set-up, as the README tells a user to run it: the
//! static client served through `web_root` with `addr = "…:5000,…:5002"`, its REST calls
//! on both ports and its socket opened on the `:5002` origin with only `?userId=`. The
//! browser only sends the `token` cookie with that socket when the page itself comes
//! from `:5002`, so page loads on the other port are redirected there.

mod common;

use std::time::Duration;

use common::node::run_scenario;
use common::web::original_client_site;
use common::{free_port, unique_email, TestApp};
use serde_json::json;

const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

struct Setup {
    app: TestApp,
    _site: tempfile::TempDir,
    rest_port: u16,
    socket_port: u16,
}

/// The app on two ports like the original's user (`:5000`) and chat (`:5002`) services,
/// serving the client from the socket's port (or, to show the defect, the REST port).
async fn two_port_app(page_on_rest_port: bool) -> Setup {
    let (rest_port, socket_port) = (free_port(), free_port());
    let site =
        original_client_site(&format!("http://localhost:{rest_port}"), &format!("http://localhost:{socket_port}"));
    let root = site.path().to_path_buf();
    let app = TestApp::spawn_with(|c| {
        c.addr = format!("127.0.0.1:{rest_port},127.0.0.1:{socket_port}");
        c.web_root = Some(root);
        c.web_port = Some(if page_on_rest_port { rest_port } else { socket_port });
    })
    .await;
    Setup { app, _site: site, rest_port, socket_port }
}

/// Two users with a chat between them, as the scenario's environment.
async fn pair(app: &TestApp) -> Vec<(&'static str, String)> {
    let (a, token_a) = app.user_with_token(&unique_email("web-a")).await;
    let (b, token_b) = app.user_with_token(&unique_email("web-b")).await;
    let (status, chat) = app.post("/api/v1/chat/new", json!({ "otherUserId": b.id.to_hex() }), Some(&token_a)).await;
    assert_eq!(status, 201, "{chat}");
    vec![
        ("TOKEN_A", token_a),
        ("TOKEN_B", token_b),
        ("USER_A", a.id.to_hex()),
        ("USER_B", b.id.to_hex()),
        ("CHAT_ID", chat["chatId"].as_str().unwrap().to_string()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_loads_on_the_rest_port_move_to_the_socket_port_and_the_api_stays_on_both() {
    let Setup { app, rest_port, socket_port, _site } = two_port_app(false).await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let page = client.get(format!("http://localhost:{rest_port}/chat?x=1")).send().await.unwrap();
    assert_eq!(page.status(), 302);
    assert_eq!(page.headers()["location"], format!("http://localhost:{socket_port}/chat?x=1").as_str());
    let page = client.get(format!("http://localhost:{socket_port}/")).send().await.unwrap();
    assert_eq!(page.status(), 200, "{:?}", page.headers().clone());
    assert!(page.text().await.unwrap().contains("original-client stand-in"));
    // The API, the docs and a missing page under /api are answered on both ports.
    for port in [rest_port, socket_port] {
        let me = client.get(format!("http://localhost:{port}/api/v1/me")).send().await.unwrap();
        assert_eq!(me.status(), 401, "API on :{port}");
        let docs = client.get(format!("http://localhost:{port}/openapi.json")).send().await.unwrap();
        assert_eq!(docs.status(), 200, "spec on :{port}");
    }
    drop(app);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn original_client_gets_real_time_whichever_port_it_is_opened_on() {
    let Setup { app, socket_port, rest_port, _site } = two_port_app(false).await;
    let artifacts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("test-artifacts/web-client");
    let mut env = pair(&app).await;
    env.extend([
        // A opens the README's URL on the REST port, B the socket's port.
        ("PAGE_A", format!("http://localhost:{rest_port}/")),
        ("PAGE_B", format!("http://localhost:{socket_port}/chat")),
        ("EXPECT_ORIGIN", format!("http://localhost:{socket_port}")),
        ("EXPECT", "realtime".into()),
        ("ADMIN_URL", app.base.clone()),
        ("ADMIN_TOKEN", ADMIN_TOKEN.into()),
        ("ARTIFACTS", artifacts.display().to_string()),
    ]);
    let report = run_scenario("webclient.mjs", &env, Duration::from_secs(90)).await;
    assert!(report["steps"].as_array().unwrap().len() >= 9, "{report}");
}

/// The defect this fixes, kept as a test: served from the REST port, the page's
/// cross-origin socket carries no credential and is refused (never trusted as `userId`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_from_the_other_port_the_socket_has_no_credential_and_is_refused() {
    let Setup { app, rest_port, _site, .. } = two_port_app(true).await;
    let mut env = pair(&app).await;
    env.extend([
        ("PAGE_A", format!("http://localhost:{rest_port}/")),
        ("PAGE_B", format!("http://localhost:{rest_port}/")),
        ("EXPECT_ORIGIN", format!("http://localhost:{rest_port}")),
        ("EXPECT", "refused".into()),
    ]);
    run_scenario("webclient.mjs", &env, Duration::from_secs(60)).await;
}
