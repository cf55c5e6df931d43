//! Shared test helpers: the app on port 0 with its own data_dir, and a real SMTP server
//! (aiosmtpd) whose received mails the tests read back.
#![allow(dead_code)]

pub mod fault;
pub mod node;
pub mod sio;
pub mod smtp;
pub mod web;

use std::sync::Arc;

use confab::app::{AppState, Application};
use confab::backends::Ports;
use confab::config::Config;
use confab::domain::{default_name_for, Email, User};
use reqwest::StatusCode;
use serde_json::Value;

pub const TEST_JWT_SECRET: &str = "test-secret-for-confab-integration-tests";

pub struct TestApp {
    pub base: String,
    /// Every bound address (the first is `base`).
    pub addrs: Vec<std::net::SocketAddr>,
    pub client: reqwest::Client,
    pub state: Arc<AppState>,
    /// The backends, for tests that prepare or inspect data directly.
    pub ports: Ports,
    pub data_dir: tempfile::TempDir,
}

pub fn test_config(data_dir: &std::path::Path) -> Config {
    Config {
        addr: "127.0.0.1:0".into(),
        data_dir: data_dir.to_path_buf(),
        jwt_secret: Some(TEST_JWT_SECRET.into()),
        admin_token: Some("test-admin-token-0123456789".into()),
        ..Config::default()
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut config = test_config(data_dir.path());
        tweak(&mut config);
        let app = Application::build(config.validate().expect("valid test config")).await.expect("app builds");
        let base = format!("http://{}", app.addrs()[0]);
        let addrs = app.addrs().to_vec();
        let state = app.state();
        let ports = app.ports().clone();
        tokio::spawn(app.run(std::future::pending()));
        Self { base, addrs, client: reqwest::Client::new(), state, ports, data_dir }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post(&self, path: &str, body: Value, token: Option<&str>) -> (StatusCode, Value) {
        let mut req = self.client.post(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        read(req.send().await.expect("request sent")).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut req = self.client.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        read(req.send().await.expect("request sent")).await
    }

    /// A user and a token issued by the app's own auth service, for tests that are not
    /// about the login flow itself.
    pub async fn user_with_token(&self, email: &str) -> (User, String) {
        let email = Email::parse(email).unwrap();
        let user = self.ports.store.find_or_create_user(&email, &default_name_for(&email)).await.unwrap();
        let token = self.state.auth.issue_token(&user);
        (user, token)
    }
}

/// Status and JSON body; a non-JSON body fails the test, since every answer must be JSON.
pub async fn read(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.expect("body read");
    let json = serde_json::from_str(&text).unwrap_or_else(|_| panic!("non-JSON body with {status}: {text:?}"));
    (status, json)
}

/// Asserts a `{"message": …}` error with this status and returns the message.
pub fn expect_error(got: (StatusCode, Value), status: u16) -> String {
    assert_eq!(got.0.as_u16(), status, "unexpected status; body {}", got.1);
    let obj = got.1.as_object().expect("error body is an object");
    assert_eq!(obj.len(), 1, "error body has only `message`: {}", got.1);
    obj["message"].as_str().expect("message is a string").to_string()
}

/// A port that was free a moment ago, for tests that must name ports before binding
/// (several listeners that refer to each other, a proxy in front of the app).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0").local_addr().expect("local addr").port()
}

/// A unique address so tests can share mail sinks and stores.
pub fn unique_email(tag: &str) -> String {
    format!("{tag}-{}@example.com", confab::domain::ObjectId::new())
}

/// The backends the test command starts (or the ones named in `CONFAB_TEST_*`).
pub mod backends {
    pub fn redis_url() -> String {
        std::env::var("CONFAB_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
    }

    pub fn amqp_url() -> String {
        std::env::var("CONFAB_TEST_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
    }

    pub fn mongo_base() -> String {
        std::env::var("CONFAB_TEST_MONGO_URI").unwrap_or_else(|_| "mongodb://127.0.0.1:27017".into())
    }

    /// A URI for a fresh database of the test's own (name returned too).
    pub fn mongo_uri_for_new_database() -> (String, String) {
        let base = mongo_base();
        let database = format!("confab_test_{}", confab::domain::ObjectId::new());
        let uri = match base.split_once('?') {
            Some((host, query)) => format!("{}/{database}?{query}", host.trim_end_matches('/')),
            None => format!("{}/{database}", base.trim_end_matches('/')),
        };
        (uri, database)
    }
}

/// A pinned Python tool that packaging/test.sh installs in its own cached virtualenv
/// (`~/.cache/confab-tests/<name>/bin/<command>`).
pub fn cached_tool(name: &str, command: &str) -> std::path::PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache"));
    cache.join("confab-tests").join(name).join("bin").join(command)
}
