//! confab as it is shipped: the container image built from `Containerfile`, run with
//! podman and a named volume; and the Debian package installed in a container that runs
//! systemd. Not part of the default suite (the builds take minutes):
//! `bash packaging/container/test.sh` builds both and runs this with `--ignored`.
//!
//! What a new operator would check: the healthcheck turns healthy, a user logs in with a
//! code mailed through SMTP, a message reaches another user's Socket.IO client, and after
//! a restart the data and the tokens are still there.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::node::run_scenario;
use common::smtp::SmtpSink;
use serde_json::{json, Value};

fn podman(args: &[&str]) -> (bool, String) {
    let out = Command::new("podman").args(args).output().expect("podman is installed");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text.trim().to_string())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Runs the image's own HEALTHCHECK (`confab healthcheck`) until it passes.
fn wait_healthy(name: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let (ok, out) = podman(&["healthcheck", "run", name]);
        if ok {
            let (_, status) = podman(&["inspect", "--format", "{{.State.Health.Status}}", name]);
            assert_eq!(status, "healthy", "podman's view of the container's health");
            return started.elapsed();
        }
        if started.elapsed() > limit {
            let (_, logs) = podman(&["logs", name]);
            panic!("{name} not healthy within {limit:?}: {out}\n{logs}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

struct Container {
    name: String,
    volume: String,
}

impl Drop for Container {
    fn drop(&mut self) {
        podman(&["rm", "-f", "-t", "2", &self.name]);
        podman(&["volume", "rm", "-f", &self.volume]);
    }
}

/// Where a deployment's mail arrives: a sink the test runs, or a Maildir a container
/// writes to.
enum Mail<'a> {
    Sink(&'a SmtpSink),
    Maildir(&'a std::path::Path),
}

impl Mail<'_> {
    fn mails(&self) -> Vec<String> {
        match self {
            Mail::Sink(sink) => sink.mails(),
            Mail::Maildir(dir) => std::fs::read_dir(dir.join("box/new"))
                .map(|entries| entries.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok()).collect())
                .unwrap_or_default(),
        }
    }

    async fn otp(&self, to: &str) -> String {
        let header = format!("To: {to}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mails = self.mails();
            let mine = mails.iter().filter(|m| m.lines().any(|l| l.eq_ignore_ascii_case(&header)));
            if let Some(otp) = mine.filter_map(|m| common::smtp::otp_in(m)).next_back() {
                return otp;
            }
            assert!(Instant::now() < deadline, "no code mailed to {to}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn login(client: &reqwest::Client, base: &str, mail: &Mail<'_>, email: &str) -> Value {
    let resp = client.post(format!("{base}/api/v1/login")).json(&json!({ "email": email })).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let otp = mail.otp(email).await;
    let resp =
        client.post(format!("{base}/api/v1/verify")).json(&json!({ "email": email, "otp": otp })).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// What a new user does against a deployed confab at `base`: two logins by mailed code,
/// a chat, one message to the other's Socket.IO client; then `restart` and the message
/// and tokens must still be there. Returns a line of figures.
async fn exercise(base: &str, mail: &Mail<'_>, restart: impl FnOnce()) -> String {
    let client = reqwest::Client::new();
    let alice = login(&client, base, mail, "alice@example.com").await;
    let bob = login(&client, base, mail, "bob@example.com").await;
    let token_a = alice["token"].as_str().unwrap().to_string();
    let resp = client
        .post(format!("{base}/api/v1/chat/new"))
        .bearer_auth(&token_a)
        .json(&json!({ "otherUserId": bob["user"]["_id"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let chat = resp.json::<Value>().await.unwrap()["chatId"].as_str().unwrap().to_string();
    let env = [
        ("CONFAB_URL", base.to_string()),
        ("TOKEN_A", token_a.clone()),
        ("TOKEN_B", bob["token"].as_str().unwrap().to_string()),
        ("CHAT", chat.clone()),
    ];
    let delivered = run_scenario("deployed.mjs", &env, Duration::from_secs(40)).await;
    restart();
    // A new client: the old one's pooled connections died with the process.
    let client = reqwest::Client::new();
    let history = client.get(format!("{base}/api/v1/message/{chat}")).bearer_auth(&token_a).send().await.unwrap();
    assert_eq!(history.status(), 200, "the token issued before the restart still works");
    let history: Value = history.json().await.unwrap();
    let messages = history["messages"].as_array().unwrap();
    assert!(messages.iter().any(|m| m["_id"] == delivered["id"]), "the message survived the restart: {history}");
    format!(
        "message delivered over {} in {} ms; {} mails through SMTP; data and tokens kept across the restart",
        delivered["transport"],
        delivered["ms"],
        mail.mails().len()
    )
}

async fn wait_http(url: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let last = match reqwest::get(url).await {
            Ok(r) if r.status() == 200 => return started.elapsed(),
            Ok(r) => format!("{}: {}", r.status(), r.text().await.unwrap_or_default()),
            Err(e) => e.to_string(),
        };
        assert!(started.elapsed() < limit, "{url} did not answer 200 within {limit:?}; last: {last}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
#[ignore = "needs the image: run bash packaging/container/test.sh"]
async fn the_container_image_serves_logs_in_delivers_and_keeps_its_data() {
    let image = std::env::var("CONFAB_IMAGE").unwrap_or_else(|_| "localhost/confab:test".into());
    let smtp = SmtpSink::start();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let container = Container { name: format!("confab-test-{port}"), volume: format!("confab-test-data-{port}") };
    let (ok, out) = podman(&[
        "run",
        "-d",
        "--name",
        &container.name,
        "--network",
        "host",
        "-v",
        &format!("{}:/var/lib/confab", container.volume),
        "-e",
        &format!("CONFAB_ADDR=127.0.0.1:{port}"),
        "-e",
        &format!("CONFAB_SMTP_URL={}", smtp.url()),
        &image,
    ]);
    assert!(ok, "podman run: {out}");
    let healthy_in = wait_healthy(&container.name, Duration::from_secs(30));
    let mut healthy_again = Duration::ZERO;
    let figures = exercise(&base, &Mail::Sink(&smtp), || {
        let (ok, out) = podman(&["restart", "-t", "10", &container.name]);
        assert!(ok, "podman restart: {out}");
        healthy_again = wait_healthy(&container.name, Duration::from_secs(30));
    })
    .await;
    let (_, logs) = podman(&["logs", &container.name]);
    assert!(!logs.contains("Your OTP is"), "codes went by SMTP, not to the log");
    let (_, size) = podman(&["image", "inspect", "--format", "{{.Size}}", &image]);
    println!(
        "container: image {image} {:.0} MB; healthy {healthy_in:?} after start, {healthy_again:?} after restart; {figures}",
        size.parse::<f64>().unwrap_or_default() / 1e6,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the image: run bash packaging/container/test.sh"]
async fn the_debian_package_runs_sandboxed_under_systemd() {
    let image = std::env::var("CONFAB_SYSTEMD_IMAGE").unwrap_or_else(|_| "localhost/confab-systemd:test".into());
    // What the package installed, before this test mounts its own config over it: the
    // example config readable by the service's group only, and the system user.
    let (ok, installed) = podman(&[
        "run",
        "--rm",
        &image,
        "sh",
        "-c",
        "stat -c '%a %U:%G' /etc/confab/confab.toml && getent passwd confab | cut -d: -f6,7",
    ]);
    assert!(ok, "{installed}");
    assert_eq!(installed, "640 root:confab\n/var/lib/confab:/usr/sbin/nologin", "as the README says");
    let smtp = SmtpSink::start();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), format!("addr = \"127.0.0.1:{port}\"\nsmtp_url = \"{}\"\n", smtp.url())).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(config.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let container = Container { name: format!("confab-systemd-{port}"), volume: format!("confab-systemd-data-{port}") };
    let (ok, out) = podman(&[
        "run",
        "-d",
        "--name",
        &container.name,
        "--systemd=always",
        "--cap-add",
        "SYS_ADMIN",
        "--network",
        "host",
        "-v",
        &format!("{}:/etc/confab/confab.toml:ro", config.path().display()),
        "-v",
        &format!("{}:/var/lib/confab", container.volume),
        &image,
    ]);
    assert!(ok, "podman run: {out}");
    let exec = |args: &[&str]| {
        let mut all = vec!["exec", container.name.as_str()];
        all.extend_from_slice(args);
        podman(&all)
    };
    let up_in = wait_http(&format!("{base}/healthz"), Duration::from_secs(60)).await;
    let (_, active) = exec(&["systemctl", "is-active", "confab"]);
    assert_eq!(active, "active");
    let (_, pid) = exec(&["systemctl", "show", "-p", "MainPID", "--value", "confab"]);
    let (_, user) = exec(&["stat", "-c", "%U", &format!("/proc/{pid}")]);
    assert_eq!(user, "confab", "runs as its own user");
    let (ok, security) = exec(&["systemd-analyze", "security", "--no-pager", "confab.service"]);
    assert!(ok, "{security}");
    let exposure: f64 = security
        .lines()
        .find_map(|l| l.split("Overall exposure level for confab.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{security}"));
    assert!(exposure <= 2.0, "sandboxing as configured: {exposure}\n{security}");
    // The sandbox is really applied (not skipped for lack of privileges): /home is hidden
    // and the process may not gain privileges.
    let (_, status) = exec(&["grep", "NoNewPrivs", &format!("/proc/{pid}/status")]);
    assert!(status.ends_with('1'), "{status}");
    exec(&["mkdir", "-p", "/home/someone"]);
    let (_, outside) = exec(&["ls", "/home"]);
    let (_, inside) = exec(&["nsenter", "-t", &pid, "-m", "ls", "/home"]);
    assert!(outside.contains("someone") && !inside.contains("someone"), "ProtectHome hides /home: {inside}");
    let mut restarted_in = Duration::ZERO;
    let figures = exercise(&base, &Mail::Sink(&smtp), || {
        let started = Instant::now();
        let (ok, out) = exec(&["systemctl", "restart", "confab"]);
        assert!(ok, "systemctl restart: {out}");
        let rt = tokio::runtime::Handle::current();
        let url = format!("{base}/healthz");
        tokio::task::block_in_place(|| rt.block_on(wait_http(&url, Duration::from_secs(30))));
        restarted_in = started.elapsed();
    })
    .await;
    let (_, journal) = exec(&["journalctl", "-u", "confab", "--no-pager"]);
    assert!(!journal.contains("Your OTP is"), "codes went by SMTP, not to the journal");
    println!(
        "systemd: unit active {up_in:?} after boot, as user {user:?}, exposure {exposure}; restart {restarted_in:?}; {figures}"
    );
}

/// The two-instance stack of packaging/compose (nginx, Redis, RabbitMQ, a mail catcher)
/// on images made from Debian packages (packaging/container/compose.local.yaml).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the images: run bash packaging/container/test.sh"]
async fn the_compose_stack_comes_up_and_serves_behind_its_load_balancer() {
    let compose = common::cached_tool("podman-compose", "podman-compose");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let maildir = tempfile::tempdir().unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(maildir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let run = |args: &[&str]| {
        let out = Command::new(&compose)
            .args(["-f", "compose.yaml", "-f"])
            .arg(root.join("packaging/container/compose.local.yaml"))
            .args(args)
            .current_dir(root.join("packaging/compose"))
            .env("CONFAB_COMPOSE_MAILDIR", maildir.path())
            .output()
            .expect("podman-compose runs");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    };
    struct Down<F: Fn(&[&str]) -> (bool, String)>(F);
    impl<F: Fn(&[&str]) -> (bool, String)> Drop for Down<F> {
        fn drop(&mut self) {
            (self.0)(&["down", "-v", "-t", "2"]);
        }
    }
    let stack = Down(run);
    let (ok, out) = (stack.0)(&["up", "-d"]);
    assert!(ok, "podman-compose up: {out}");
    let base = "http://127.0.0.1:8080";
    let started = Instant::now();
    loop {
        let ready = reqwest::get(format!("{base}/readyz")).await;
        if let Ok(resp) = ready {
            let body: Value = resp.json().await.unwrap_or_default();
            if body["ready"] == true {
                let names: Vec<&str> =
                    body["backends"].as_array().unwrap().iter().filter_map(|b| b["backend"].as_str()).collect();
                assert!(names.iter().any(|b| b.starts_with("redis")), "{names:?}");
                assert!(names.iter().any(|b| b.starts_with("rabbitmq")), "{names:?}");
                break;
            }
        }
        assert!(started.elapsed() < Duration::from_secs(90), "the stack was not ready through nginx within 90 s");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let ready_in = started.elapsed();
    let figures = exercise(base, &Mail::Maildir(maildir.path()), || {
        // nginx resolves its upstreams once, at start, and restarted instances may get
        // new addresses: it is restarted after them.
        let (ok, out) = (stack.0)(&["restart", "confab-a", "confab-b", "lb"]);
        assert!(ok, "restarting both instances and the balancer: {out}");
        let rt = tokio::runtime::Handle::current();
        tokio::task::block_in_place(|| rt.block_on(wait_http(&format!("{base}/readyz"), Duration::from_secs(60))));
    })
    .await;
    println!("compose: ready through nginx {ready_in:?} after up (Redis and RabbitMQ from Debian packages); {figures}");
}
