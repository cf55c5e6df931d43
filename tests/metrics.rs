//! `/metrics` in Prometheus text format: parsed with a real parser, the named series
//! move as the app is used, labels never carry ids, and the Grafana dashboard only
//! references series that exist.

mod common;

use std::collections::HashSet;

use common::{expect_error, TestApp};
use serde_json::json;

async fn scrape(app: &TestApp, token: Option<&str>) -> prometheus_parse::Scrape {
    let mut req = app.client.get(app.url("/metrics"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = resp.text().await.unwrap();
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("valid Prometheus text")
}

fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            prometheus_parse::Value::Histogram(ref buckets) => buckets.last().map(|b| b.count).unwrap_or(0.0),
            _ => 0.0,
        })
        .sum()
}

#[tokio::test]
async fn series_move_as_the_app_is_used() {
    let app = TestApp::spawn().await;
    let before = scrape(&app, None).await;
    let login = [("method", "POST"), ("route", "/api/v1/login"), ("status", "200")];

    assert_eq!(app.post("/api/v1/login", json!({ "email": "metrics@example.com" }), None).await.0, 200);
    expect_error(app.post("/api/v1/login", json!({ "email": "metrics@example.com" }), None).await, 429);
    expect_error(
        app.post("/api/v1/verify", json!({ "email": "metrics@example.com", "otp": "000000" }), None).await,
        400,
    );
    let (alice, token) = app.user_with_token("m-alice@example.com").await;
    let (bob, _) = app.user_with_token("m-bob@example.com").await;
    let (_, chat) = app.post("/api/v1/chat/new", json!({ "otherUserId": bob.id.to_hex() }), Some(&token)).await;
    assert_eq!(
        app.post("/api/v1/message", json!({ "chatId": chat["chatId"], "text": "hi" }), Some(&token)).await.0,
        201
    );
    expect_error(app.get(&format!("/api/v1/user/{}", alice.id), None).await, 401);
    // Labels are the routes the router matched; what no route matched shares one label.
    expect_error(app.get(&format!("/api/v1/message/{}", alice.id), Some(&token)).await, 404);
    expect_error(app.get("/wp-admin/setup.php", None).await, 404);

    let after = scrape(&app, None).await;
    let delta = |name: &str, labels: &[(&str, &str)]| value(&after, name, labels) - value(&before, name, labels);
    assert_eq!(delta("confab_http_requests_total", &login), 1.0);
    assert_eq!(delta("confab_otp_total", &[("outcome", "requested")]), 1.0);
    assert_eq!(delta("confab_otp_total", &[("outcome", "rate_limited")]), 1.0);
    assert_eq!(delta("confab_otp_total", &[("outcome", "failed")]), 1.0);
    assert_eq!(delta("confab_messages_stored_total", &[("type", "text")]), 1.0);
    assert_eq!(delta("confab_messages_delivered_total", &[]), 1.0);
    assert!(delta("confab_http_request_duration_seconds_count", &[("route", "/api/v1/message")]) >= 1.0);
    assert!(delta("confab_store_operation_duration_seconds_count", &[("operation", "add_message")]) >= 1.0);
    assert_eq!(delta("confab_http_requests_total", &[("route", "/api/v1/user/:id"), ("status", "401")]), 1.0);
    assert_eq!(delta("confab_http_requests_total", &[("route", "/api/v1/message/:chatId"), ("status", "404")]), 1.0);
    assert_eq!(delta("confab_http_requests_total", &[("route", "/other"), ("status", "404")]), 1.0);
    assert_eq!(value(&after, "confab_build_info", &[]), 1.0);

    // No label value is an id.
    for sample in &after.samples {
        for (_, v) in sample.labels.iter() {
            let looks_like_id = v.len() >= 24
                && v.split('/').any(|part| part.len() == 24 && part.chars().all(|c| c.is_ascii_hexdigit()));
            assert!(!looks_like_id, "{} has an id in a label: {v}", sample.metric);
        }
    }
}

#[tokio::test]
async fn metrics_can_require_a_token() {
    let app = TestApp::spawn_with(|c| c.metrics_token = Some("scrape-secret-123".into())).await;
    assert_eq!(expect_error(app.get("/metrics", None).await, 401), "A valid metrics token is required");
    let resp = app.client.get(app.url("/metrics")).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(resp.status(), 401);
    scrape(&app, Some("scrape-secret-123")).await;
}

#[tokio::test]
async fn the_grafana_dashboard_uses_only_existing_series() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("dash@example.com").await;
    app.get("/api/v1/me", Some(&token)).await;
    let exposed: HashSet<String> = scrape(&app, None).await.samples.iter().map(|s| s.metric.clone()).collect();
    let dashboard =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/grafana/confab.json"))
            .unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&dashboard).expect("dashboard is JSON");
    assert!(!parsed["panels"].as_array().unwrap().is_empty());
    let mut referenced = HashSet::new();
    for (i, _) in dashboard.match_indices("confab_") {
        let name: String = dashboard[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        referenced.insert(name);
    }
    assert!(referenced.len() >= 10, "{referenced:?}");
    for name in &referenced {
        // Gauges and counters registered with no samples yet still show in HELP lines,
        // so check against the registered families too.
        let family = ["_bucket", "_sum", "_count"].iter().fold(name.clone(), |n, s| n.trim_end_matches(s).to_string());
        let known = exposed.contains(name) || exposed.iter().any(|e| e.starts_with(&family));
        assert!(known, "dashboard references {name}, which /metrics does not expose");
    }
}

#[tokio::test]
async fn metrics_can_be_switched_off() {
    let app = TestApp::spawn_with(|c| c.metrics_enabled = false).await;
    expect_error(common::read(app.client.get(app.url("/metrics")).send().await.unwrap()).await, 404);
    let (status, _) = app.post("/api/v1/login", serde_json::json!({ "email": "off@example.com" }), None).await;
    assert_eq!(status, 200, "the API works without metrics");
    // This instance keeps no Prometheus registry at all, so nothing is timed or counted;
    // the console's traffic counts go on.
    assert!(app.state.telemetry.render().is_none(), "no metrics recorded");
    let requested = app.state.telemetry.activity();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let timeline = requested.timeline(app.ports.ephemeral.as_ref()).await.unwrap();
    let series = timeline.series.iter().find(|s| s.name == "requested").unwrap();
    assert_eq!(series.total, 1, "the console still counts the login");
}
