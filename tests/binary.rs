//! The real `confab` binary as a new user runs it: embedded defaults, OTP mail printed to
//! the log, config errors on one line, secrets masked, clean exit on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_confab");

/// A confab command with a clean environment, so the caller's CONFAB_* or PORT settings
/// cannot leak in.
fn confab(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).current_dir(dir);
    cmd
}

struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(dir: &std::path::Path, envs: &[(&str, &str)]) -> Self {
        let mut child =
            confab(dir).envs(envs.iter().copied()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let (tx, lines) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        Self { child, lines, seen: Vec::new() }
    }

    /// Waits for a line containing `needle`, returning it.
    fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        if let Some(l) = self.seen.iter().find(|l| l.contains(needle)) {
            return l.clone();
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!("no line containing {needle:?}; output so far:\n{}", self.seen.join("\n")),
            }
        }
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "confab did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn port_from(line: &str) -> u16 {
    let after = line.split("listening on 127.0.0.1:").nth(1).expect("listen line");
    after.split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
}

fn post(port: u16, path: &str, body: &str) -> (u16, serde_json::Value) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let resp = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{port}{path}"))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap())
    })
}

#[test]
fn embedded_defaults_log_mailer_login_and_clean_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = Running::start(dir.path(), &[("CONFAB_ADDR", "127.0.0.1:0")]);
    // Not a terminal, as under systemd or docker: the token goes to a private file, not
    // to the log.
    let token_banner = app.wait_for("admin token written to");
    assert!(token_banner.contains("./data/admin_token.first"), "{token_banner}");
    app.wait_for("Paste it into the admin console at /admin");
    let handed_over = dir.path().join("data/admin_token.first");
    let admin_token = std::fs::read_to_string(&handed_over).unwrap().trim().to_string();
    assert_eq!(admin_token.len(), 48);
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&handed_over).unwrap().permissions().mode() & 0o777, 0o600);
    }
    app.wait_for("PRINTED TO THIS LOG");
    let port = port_from(&app.wait_for("listening on 127.0.0.1:"));
    app.wait_for("confab ready");
    assert!(dir.path().join("data/confab.db").exists(), "SQLite store in ./data");

    let (status, body) = post(port, "/api/v1/login", r#"{"email":"newcomer@example.com"}"#);
    assert_eq!((status, body["message"].as_str()), (200, Some("OTP sent to your mail")));
    let mail = app.wait_for("Your OTP is ");
    let otp: String = mail.split("Your OTP is ").nth(1).unwrap().chars().take(6).collect();
    let (status, body) = post(port, "/api/v1/verify", &format!(r#"{{"email":"newcomer@example.com","otp":"{otp}"}}"#));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["name"], "newcomer");
    let admin_login = format!(r#"{{"token":"{admin_token}"}}"#);
    let (status, body) = post(port, "/admin/api/session", &admin_login);
    assert_eq!((status, body["who"].as_str()), (200, Some("admin token")), "the printed token opens the console");
    assert!(app.seen.iter().all(|l| !l.contains('\u{1b}')), "no colour codes when not on a terminal");
    assert!(app.seen.iter().all(|l| !l.contains(&admin_token)), "the admin token is in no log line");

    let status = app.terminate();
    assert!(status.success(), "clean exit on SIGTERM: {status}");

    // A restart keeps secrets: no new admin token is printed, old tokens stay valid.
    let mut again = Running::start(dir.path(), &[("CONFAB_ADDR", "127.0.0.1:0")]);
    let port = port_from(&again.wait_for("listening on 127.0.0.1:"));
    again.wait_for("confab ready");
    assert!(again.seen.iter().all(|l| !l.contains("admin token written")));
    assert_eq!(post(port, "/admin/api/session", &admin_login).0, 200, "its hash survived the restart");
    assert!(!std::fs::read_to_string(dir.path().join("data/admin_token.argon2")).unwrap().contains(&admin_token));

    // `confab admin-token --reset` while the server runs: the old token and the session
    // opened with it stop working there at once; the new token (printed, not logged) works.
    let (status, opened) = post(port, "/admin/api/session", &admin_login);
    assert_eq!(status, 200);
    let old_session = opened["session"].as_str().unwrap().to_string();
    let show_session = |session: &str| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let url = format!("http://127.0.0.1:{port}/admin/api/session");
            reqwest::Client::new().get(url).bearer_auth(session).send().await.unwrap().status().as_u16()
        })
    };
    assert_eq!(show_session(&old_session), 200);
    let refused = confab(dir.path()).arg("admin-token").output().unwrap();
    assert_eq!(refused.status.code(), Some(1), "without --reset it explains, changes nothing");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--reset"));
    let reset = confab(dir.path()).args(["admin-token", "--reset"]).output().unwrap();
    assert!(reset.status.success(), "{}", String::from_utf8_lossy(&reset.stderr));
    let new_token = String::from_utf8(reset.stdout).unwrap().trim().to_string();
    assert_eq!(new_token.len(), 48);
    assert_ne!(new_token, admin_token);
    assert_eq!(show_session(&old_session), 401, "sessions opened before the reset end");
    assert_eq!(post(port, "/admin/api/session", &admin_login).0, 401, "the old token is refused");
    let new_login = format!(r#"{{"token":"{new_token}"}}"#);
    assert_eq!(post(port, "/admin/api/session", &new_login).0, 200, "the new one opens the console");
    assert!(!dir.path().join("data/admin_token.first").exists(), "the stale hand-over file is removed");
    assert!(again.seen.iter().all(|l| !l.contains(&new_token)), "the new token is in no log line");
    again.terminate();
}

#[test]
fn invalid_config_fails_fast_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    for (key, value, named) in [
        ("CONFAB_ADDR", "nonsense", "addr"),
        ("CONFAB_SMTP_URL", "http://x", "smtp_url"),
        ("CONFAB_OTP_MAX_ATTEMPTS", "lots", "otp_max_attempts"),
    ] {
        let out = confab(dir.path()).env(key, value).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{key}={value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(stderr.starts_with(&format!("confab: config error: {named}: ")), "{stderr}");
    }
    let out = confab(dir.path()).args(["--config", "missing.toml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    std::fs::write(dir.path().join("confab.toml"), "adr = \":5000\"\n").unwrap();
    let out = confab(dir.path()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("adr"), "a typo in the file is named: {stderr}");
}

#[test]
fn config_command_masks_secrets_and_honours_layers() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("confab.toml"), "mail_from = \"File <file@example.com>\"\nlogin_ip_limit = 7\n")
        .unwrap();
    let out = confab(dir.path())
        .arg("config")
        .env("CONFAB_SMTP_URL", "smtps://me:hunter2@smtp.example.com:465")
        .env("CONFAB_JWT_SECRET", "a-very-secret-signing-key-123456")
        .env("PORT", "5002")
        .env("CONFAB_LOGIN_IP_LIMIT", "9")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(!shown.contains("hunter2") && !shown.contains("a-very-secret"), "{shown}");
    assert!(shown.contains("addr = \"0.0.0.0:5002\""), "PORT alias: {shown}");
    assert!(shown.contains("mail_from = \"File <file@example.com>\""), "file layer: {shown}");
    assert!(shown.contains("login_ip_limit = 9"), "CONFAB_* beats the file: {shown}");
}

/// `confab healthcheck`, as a container HEALTHCHECK runs it: 0 while the server at the
/// configured address answers, 1 (with the reason) when nothing listens there. A
/// wildcard listen address is asked on loopback.
#[test]
fn healthcheck_asks_the_server_at_the_configured_address() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("0.0.0.0:{port}");
    let check = || confab(dir.path()).arg("healthcheck").env("CONFAB_ADDR", &addr).output().unwrap();
    let down = check();
    assert_eq!(down.status.code(), Some(1), "nothing listening yet");
    assert!(String::from_utf8_lossy(&down.stderr).contains(&format!("127.0.0.1:{port}/healthz")));
    let mut app = Running::start(dir.path(), &[("CONFAB_ADDR", addr.as_str())]);
    app.wait_for("confab ready");
    let up = check();
    assert!(up.status.success(), "{}", String::from_utf8_lossy(&up.stderr));
    app.terminate();
}

#[test]
fn help_lists_the_commands() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for word in ["serve", "config", "openapi", "healthcheck", "--config"] {
        assert!(help.contains(word), "{word} in --help:\n{help}");
    }
}

#[test]
fn the_packaged_example_config_is_valid() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/confab.example.toml");
    let dir = tempfile::tempdir().unwrap();
    let out = confab(dir.path()).arg("--config").arg(&example).arg("config").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("data_dir = \"/var/lib/confab\""), "{shown}");
}

/// A user logged in through the printed code, for tests that drive the real binary.
fn log_in(app: &mut Running, port: u16, email: &str) -> (String, String) {
    let (status, _) = post(port, "/api/v1/login", &format!(r#"{{"email":"{email}"}}"#));
    assert_eq!(status, 200);
    let mail = app.wait_for("Your OTP is "); // the newest mail is this user's
    let otp: String = mail.split("Your OTP is ").nth(1).unwrap().chars().take(6).collect();
    app.seen.retain(|l| !l.contains("Your OTP is "));
    let (status, body) = post(port, "/api/v1/verify", &format!(r#"{{"email":"{email}","otp":"{otp}"}}"#));
    assert_eq!(status, 200, "{body}");
    (body["user"]["_id"].as_str().unwrap().to_string(), body["token"].as_str().unwrap().to_string())
}

/// `kill -9` while writers post: every message the server acknowledged (201) is there
/// after a restart, none twice.
#[test]
fn acknowledged_messages_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("CONFAB_ADDR", "127.0.0.1:0"), ("CONFAB_DATA_DIR", "state")];
    let mut app = Running::start(dir.path(), &env);
    let port = port_from(&app.wait_for("listening on 127.0.0.1:"));
    app.wait_for("confab ready");
    let (_, alice) = log_in(&mut app, port, "kill-alice@example.com");
    let (bob_id, _) = log_in(&mut app, port, "kill-bob@example.com");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let client = reqwest::Client::new();
    let chat: serde_json::Value = rt.block_on(async {
        let resp = client
            .post(format!("http://127.0.0.1:{port}/api/v1/chat/new"))
            .bearer_auth(&alice)
            .json(&serde_json::json!({ "otherUserId": bob_id }))
            .send()
            .await
            .unwrap();
        resp.json().await.unwrap()
    });
    let chat = chat["chatId"].as_str().unwrap().to_string();

    let mut acknowledged = Vec::new();
    let mut port = port;
    for round in 0..3 {
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let (client, alice, chat) = (client.clone(), alice.clone(), chat.clone());
                rt.spawn(async move {
                    let mut acked = Vec::new();
                    for n in 0.. {
                        let text = format!("r{round}-w{w}-{n}");
                        let sent = client
                            .post(format!("http://127.0.0.1:{port}/api/v1/message"))
                            .bearer_auth(&alice)
                            .json(&serde_json::json!({ "chatId": chat, "text": text }))
                            .send()
                            .await;
                        match sent {
                            Ok(resp) if resp.status() == 201 => acked.push(text),
                            _ => break,
                        }
                    }
                    acked
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(700));
        app.child.kill().unwrap(); // SIGKILL
        let _ = app.child.wait();
        for writer in writers {
            acknowledged.extend(rt.block_on(writer).unwrap());
        }
        app = Running::start(dir.path(), &env);
        port = port_from(&app.wait_for("listening on 127.0.0.1:"));
        app.wait_for("confab ready");
    }
    let history: serde_json::Value = rt.block_on(async {
        let url = format!("http://127.0.0.1:{port}/api/v1/message/{chat}");
        client.get(url).bearer_auth(&alice).send().await.unwrap().json().await.unwrap()
    });
    let stored: Vec<&str> =
        history["messages"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
    let unique: std::collections::HashSet<&str> = stored.iter().copied().collect();
    assert_eq!(unique.len(), stored.len(), "no message stored twice");
    let lost: Vec<&String> = acknowledged.iter().filter(|t| !unique.contains(t.as_str())).collect();
    assert!(acknowledged.len() > 100, "writers got going: {}", acknowledged.len());
    assert!(lost.is_empty(), "{} of {} acknowledged messages lost: {lost:?}", lost.len(), acknowledged.len());
    println!("{} acknowledged messages over 3 kill -9 rounds, 0 lost, 0 duplicated", acknowledged.len());
}

/// The README's command for the original web client, exactly as written
/// (`CONFAB_ADDR=:5000,:5002 CONFAB_WEB_ROOT=…`), with the default `web_port`: the page on
/// :5000 sends the browser to :5002, where the page and the socket share an origin.
#[test]
fn readme_two_port_command_serves_the_client_on_5002() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("out");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(site.join("index.html"), "<!doctype html><title>client</title>").unwrap();
    std::fs::write(site.join("chat.html"), "<!doctype html><title>chat</title>").unwrap();
    let env = [("CONFAB_ADDR", ":5000,:5002"), ("CONFAB_WEB_ROOT", "out")];
    let mut app = Running::start(dir.path(), &env);
    app.wait_for("web client at http://localhost:5002/");
    app.wait_for("confab ready");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let page = client.get("http://localhost:5000/chat").send().await.unwrap();
        assert_eq!(page.status(), 302);
        assert_eq!(page.headers()["location"], "http://localhost:5002/chat");
        let page = client.get("http://localhost:5002/chat").send().await.unwrap();
        assert_eq!(page.status(), 200);
        assert!(page.text().await.unwrap().contains("<title>chat</title>"));
        for port in [5000, 5002] {
            let me = client.get(format!("http://localhost:{port}/api/v1/me")).send().await.unwrap();
            assert_eq!(me.status(), 401, "the API answers on :{port}");
        }
    });
    assert!(app.terminate().success());
}
