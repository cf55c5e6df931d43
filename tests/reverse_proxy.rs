//! The documented secure path for the original's own deployment shape: the web client on
//! its own server, confab elsewhere, and nginx or Caddy putting both on one origin with
//! the configs shipped in packaging/proxy. The same browser scenario as tests/web_client.rs
//! then gets full real time with the client's token cookie as its socket's credential.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::node::run_scenario;
use common::web::original_client_site;
use common::{free_port, unique_email, TestApp};
use serde_json::json;

/// A child process that is killed when the test ends, however it ends.
struct Running(Child, &'static str);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(what: &'static str, cmd: &mut Command) -> Running {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {what}: {e} (packaging/test.sh installs it)"));
    Running(child, what)
}

async fn wait_listening(port: u16, running: &mut Running) {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        if let Ok(Some(status)) = running.0.try_wait() {
            panic!("{} exited with {status} before listening on {port}", running.1);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{} did not listen on {port}", running.1);
}

fn shipped(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/proxy").join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The shipped file with only its addresses changed: the proxy's listen address and the
/// two upstreams (confab on :5000, the web client on :3000).
fn localised(text: &str, replacements: &[(&str, String)]) -> String {
    let mut out = text.to_string();
    for (from, to) in replacements {
        assert!(out.contains(from), "the shipped config still has {from:?}");
        out = out.replace(from, to);
    }
    out
}

enum Proxy {
    Nginx,
    Caddy,
}

fn start_proxy(proxy: Proxy, dir: &Path, port: u16, confab: u16, web: u16) -> Running {
    let upstreams = [("127.0.0.1:5000", format!("127.0.0.1:{confab}")), ("127.0.0.1:3000", format!("127.0.0.1:{web}"))];
    match proxy {
        Proxy::Nginx => {
            let mut swaps = vec![("listen 80;", format!("listen 127.0.0.1:{port};"))];
            swaps.extend(upstreams);
            std::fs::write(dir.join("site.conf"), localised(&shipped("nginx.conf"), &swaps)).unwrap();
            // The shipped file is a server block for conf.d; this is the part nginx.conf has.
            let main = format!(
                "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
                 events {{ worker_connections 256; }}\n\
                 http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  \
                 include {d}/site.conf;\n}}\n",
                d = dir.display()
            );
            std::fs::write(dir.join("nginx.conf"), main).unwrap();
            spawn(
                "nginx",
                Command::new("nginx").arg("-e").arg(dir.join("error.log")).arg("-c").arg(dir.join("nginx.conf")),
            )
        }
        Proxy::Caddy => {
            let mut swaps = vec![("chat.example.com {", format!("http://localhost:{port} {{"))];
            swaps.extend(upstreams);
            // No admin endpoint (tests run side by side); nothing else differs.
            let caddyfile = format!("{{\n\tadmin off\n}}\n\n{}", localised(&shipped("Caddyfile"), &swaps));
            std::fs::write(dir.join("Caddyfile"), caddyfile).unwrap();
            spawn(
                "caddy",
                Command::new("caddy")
                    .args(["run", "--adapter", "caddyfile", "--config"])
                    .arg(dir.join("Caddyfile"))
                    .env("HOME", dir)
                    .env("XDG_DATA_HOME", dir.join("data"))
                    .env("XDG_CONFIG_HOME", dir.join("config"))
                    .stderr(Stdio::null()),
            )
        }
    }
}

async fn client_behind(proxy: Proxy) {
    let app = TestApp::spawn_with(|c| c.trust_forwarded_for = true).await;
    let confab_port = app.addrs[0].port();
    let (proxy_port, web_port) = (free_port(), free_port());
    let origin = format!("http://localhost:{proxy_port}");
    // The client's own server: a plain static one, as a CDN or `next start` would be.
    let site = original_client_site(&origin, &origin);
    let mut web = spawn(
        "the web client's server",
        Command::new("/usr/bin/python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1", "--directory"])
            .arg(site.path())
            .arg(web_port.to_string())
            .stderr(Stdio::null()),
    );
    wait_listening(web_port, &mut web).await;
    let dir = tempfile::tempdir().unwrap();
    let mut proxy = start_proxy(proxy, dir.path(), proxy_port, confab_port, web_port);
    wait_listening(proxy_port, &mut proxy).await;

    let (a, token_a) = app.user_with_token(&unique_email("proxy-a")).await;
    let (b, token_b) = app.user_with_token(&unique_email("proxy-b")).await;
    let (status, chat) = app.post("/api/v1/chat/new", json!({ "otherUserId": b.id.to_hex() }), Some(&token_a)).await;
    assert_eq!(status, 201, "{chat}");
    let env = [
        ("PAGE_A", format!("{origin}/")),
        ("PAGE_B", format!("{origin}/chat.html")),
        ("EXPECT_ORIGIN", origin.clone()),
        ("EXPECT", "realtime".into()),
        ("TOKEN_A", token_a),
        ("TOKEN_B", token_b),
        ("USER_A", a.id.to_hex()),
        ("USER_B", b.id.to_hex()),
        ("CHAT_ID", chat["chatId"].as_str().unwrap().to_string()),
        // The admin console through the proxy too.
        ("ADMIN_URL", origin.clone()),
        ("ADMIN_TOKEN", "test-admin-token-0123456789".into()),
    ];
    let report = run_scenario("webclient.mjs", &env, Duration::from_secs(90)).await;
    assert!(report["steps"].as_array().unwrap().len() >= 9, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn original_client_behind_nginx_gets_real_time() {
    client_behind(Proxy::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn original_client_behind_caddy_gets_real_time() {
    client_behind(Proxy::Caddy).await;
}
