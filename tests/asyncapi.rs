//! The AsyncAPI document (`openapi/asyncapi.json`) against the implementation: it names
//! exactly the events the server handles and sends, every reference in it resolves, and
//! it is what `/asyncapi.json` serves, with a rendered page at `/asyncapi/`. The
//! payloads a real client receives are validated against it in tests/js/realtime.mjs.

mod common;

use std::collections::BTreeSet;

use common::TestApp;
use confab::realtime::contract::{CLIENT_EVENTS, SERVER_EVENTS};
use serde_json::Value;

fn document() -> Value {
    serde_json::from_str(confab::http::asyncapi::DOCUMENT).expect("openapi/asyncapi.json is JSON")
}

fn operations(doc: &Value, action: &str) -> BTreeSet<String> {
    doc["operations"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, op)| op["action"] == action)
        .map(|(name, _)| name.clone())
        .collect()
}

#[test]
fn it_documents_exactly_the_events_the_server_handles_and_sends() {
    let doc = document();
    assert_eq!(doc["asyncapi"], "3.0.0");
    let handled: BTreeSet<String> = CLIENT_EVENTS.iter().map(|e| e.to_string()).collect();
    assert_eq!(operations(&doc, "receive"), handled, "client → server events");
    let mut sent: BTreeSet<String> = SERVER_EVENTS.iter().map(|e| e.to_string()).collect();
    sent.insert("connect_error".into());
    assert_eq!(operations(&doc, "send"), sent, "server → client events");
}

fn refs<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("$ref", Value::String(r)) => found.push(r),
                    _ => refs(v, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
        _ => {}
    }
}

#[test]
fn every_reference_resolves() {
    let doc = document();
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(found.len() > 40, "only {} references", found.len());
    for r in found {
        let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("{r} is not local"));
        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
    }
}

#[tokio::test]
async fn the_server_serves_the_document_and_its_page() {
    let app = TestApp::spawn().await;
    let http = reqwest::Client::new();
    let served = http.get(app.url("/asyncapi.json")).send().await.unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(served.headers()["content-type"], "application/json");
    assert_eq!(served.json::<Value>().await.unwrap(), document());
    let page = http.get(app.url("/asyncapi/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-security-policy"].to_str().unwrap().contains("script-src 'self'"));
    assert!(page.text().await.unwrap().contains("/asyncapi/render.js"));
    let script = http.get(app.url("/asyncapi/render.js")).send().await.unwrap();
    assert_eq!(script.status(), 200);
    // The REST docs point to it.
    let spec: Value = http.get(app.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert!(spec["info"]["description"].as_str().unwrap().contains("/asyncapi/"));
}
