//! Benchmarks that print figures: `bash bench/run.sh presence --users 10000` and
//! `bash bench/run.sh roundtrip --messages 1000`.
//!
//! The release `confab` binary runs as its own process (as in production, and so each
//! side has its own file-descriptor budget) on a fresh data_dir; users are created
//! directly in its SQLite store and tokens signed with its configured secret, so the
//! measurement is the real-time path, not the login flow. Clients speak Engine.IO v4 /
//! Socket.IO v5 over WebSocket, as socket.io-client does with `transports: ["websocket"]`.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use confab::domain::{default_name_for, Email, User};
use confab::ports::Store;
use confab::services::tokens::TokenKeys;
use confab::store::sqlite::SqliteStore;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, Semaphore};
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "confab-bench-secret-0123456789abcdef";

mod compare;
mod logins;
mod rate;

/// A comma-separated list argument, e.g. `--rates 1000,2000`.
fn list_arg(name: &str, default: &[usize]) -> Vec<usize> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| default.to_vec())
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Server {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(dir: tempfile::TempDir) -> Self {
        Self::start_with(dir, &[])
    }

    fn start_with(dir: tempfile::TempDir, env: &[(&str, &str)]) -> Self {
        Self::start_capturing(dir, env, false)
    }

    /// With `capture_log`, the server's log (stdout) is left for the caller to read from
    /// `child.stdout`.
    fn start_capturing(dir: tempfile::TempDir, env: &[(&str, &str)], capture_log: bool) -> Self {
        // CONFAB_BENCH_BIN: another build to compare with (e.g. an older commit's).
        let bin = std::env::var_os("CONFAB_BENCH_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/confab"));
        assert!(bin.exists(), "build the server first: cargo build --release (bench/run.sh does)");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(bin)
            .env("CONFAB_ADDR", format!("127.0.0.1:{port}"))
            .env("CONFAB_DATA_DIR", dir.path())
            .env("CONFAB_JWT_SECRET", SECRET)
            .env("CONFAB_ADMIN_TOKEN", "bench-admin-token-0123456789")
            .env("CONFAB_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(if capture_log { Stdio::piped() } else { Stdio::null() })
            .spawn()
            .expect("start confab");
        wait_for_port(port, "confab");
        Self { child, port, _dir: dir }
    }

    fn proc_field(&self, field: &str) -> String {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status.lines().find(|l| l.starts_with(field)).map(|l| l[field.len()..].trim().to_string()).unwrap_or_default()
    }

    /// User + system CPU seconds the server has used so far.
    fn cpu_secs(&self) -> f64 {
        proc_cpu_secs(&self.child.id().to_string())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates `n` users in a fresh data_dir and returns them with tokens.
async fn seed(n: usize) -> (tempfile::TempDir, Vec<(User, String)>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("confab.db")).unwrap();
    let keys = TokenKeys::new(SECRET.as_bytes());
    let now = chrono::Utc::now().timestamp();
    let mut users = Vec::with_capacity(n);
    for i in 0..n {
        let email = Email::parse(&format!("bench{i}@example.com")).unwrap();
        let user = store.find_or_create_user(&email, &default_name_for(&email)).await.unwrap();
        let token = keys.issue(&user, now);
        users.push((user, token));
    }
    (dir, users)
}

/// Opens the chat between the token's user and `other`; returns its id.
async fn open_chat(http: &reqwest::Client, base: &str, token: &str, other: &User) -> String {
    let chat: serde_json::Value = http
        .post(format!("{base}/api/v1/chat/new"))
        .bearer_auth(token)
        .json(&serde_json::json!({ "otherUserId": other.id.to_hex() }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    chat["chatId"].as_str().unwrap().to_string()
}

enum Event {
    Connected,
    Refused(String),
    Frame(String),
}

/// A minimal Socket.IO client over WebSocket. Answers pings; reports connect results
/// and every event frame (`42[...]`) to `events`.
async fn socket_client(
    port: u16,
    token: String,
    events: mpsc::UnboundedSender<Event>,
    outbox: Option<mpsc::UnboundedReceiver<String>>,
) {
    socket_client_with(port, "", format!("40{{\"token\":\"{token}\"}}"), events, outbox).await
}

/// The same client with extra handshake query parameters (`&userId=…`) and its own
/// namespace connect packet, for servers that identify users another way.
async fn socket_client_with(
    port: u16,
    query: &str,
    connect_packet: String,
    events: mpsc::UnboundedSender<Event>,
    outbox: Option<mpsc::UnboundedReceiver<String>>,
) {
    let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket{query}");
    let (ws, _) = match tokio_tungstenite::connect_async(url).await {
        Ok(ok) => ok,
        Err(e) => {
            let _ = events.send(Event::Refused(format!("websocket: {e}")));
            return;
        }
    };
    let (mut tx, mut rx) = ws.split();
    let mut outbox = outbox;
    loop {
        let next = async {
            match outbox.as_mut() {
                Some(o) => o.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            frame = rx.next() => {
                let Some(Ok(Message::Text(text))) = frame else { break };
                let text = text.as_str();
                if text.starts_with('0') {
                    let _ = tx.send(Message::text(connect_packet.clone())).await;
                } else if text == "2" {
                    let _ = tx.send(Message::text("3")).await;
                } else if text.starts_with("40") {
                    let _ = events.send(Event::Connected);
                } else if text.starts_with("44") {
                    let _ = events.send(Event::Refused(text.to_string()));
                    break;
                } else if text.starts_with("42") || text.starts_with("43") {
                    let _ = events.send(Event::Frame(text.to_string()));
                }
            }
            Some(out) = next => { let _ = tx.send(Message::text(out)).await; }
        }
    }
}

/// Waits until a server just started accepts connections on `port` (at most 10 s).
fn wait_for_port(port: u16, server: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{server} did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// CPU seconds this process (the load generator) has used.
fn own_cpu_secs() -> f64 {
    proc_cpu_secs("self")
}

/// User + system CPU seconds of a process so far (`pid` or "self").
fn proc_cpu_secs(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    fields.get(11..13).map(|f| f.iter().filter_map(|v| v.parse::<f64>().ok()).sum::<f64>()).unwrap_or(0.0) / 100.0
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn kib(field: &str) -> u64 {
    field.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0)
}

async fn presence(users: usize) {
    println!(
        "presence: {users} users connecting over WebSocket (max 256 handshakes in flight); load average {}",
        load_average()
    );
    let (dir, seeded) = seed(users).await;
    let server = Server::start(dir);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = kib(&server.proc_field("VmRSS:"));
    let cpu_before = server.cpu_secs();
    let expected: HashSet<String> = seeded.iter().map(|(u, _)| u.id.to_hex()).collect();
    let connected = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(Mutex::new(Vec::<String>::new()));
    let last_lists: Arc<Vec<Mutex<String>>> = Arc::new((0..users).map(|_| Mutex::new(String::new())).collect());
    let gate = Arc::new(Semaphore::new(256));
    let mut clients = Vec::with_capacity(users);
    let start = Instant::now();
    for (i, (_, token)) in seeded.into_iter().enumerate() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let permit = gate.clone().acquire_owned().await.unwrap();
        clients.push(tokio::spawn(socket_client(server.port, token, tx, None)));
        let (connected, refused, last_lists) = (connected.clone(), refused.clone(), last_lists.clone());
        tokio::spawn(async move {
            let mut permit = Some(permit);
            while let Some(ev) = rx.recv().await {
                match ev {
                    Event::Connected => {
                        connected.fetch_add(1, Ordering::Relaxed);
                        permit.take();
                    }
                    Event::Refused(why) => {
                        refused.lock().unwrap().push(why);
                        permit.take();
                    }
                    Event::Frame(f) if f.starts_with("42[\"getOnlineUser\",") => *last_lists[i].lock().unwrap() = f,
                    Event::Frame(_) => {}
                }
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while connected.load(Ordering::Relaxed) + refused.lock().unwrap().len() < users && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let all_connected = start.elapsed();
    let ok = connected.load(Ordering::Relaxed);
    let failures = refused.lock().unwrap().len();
    // Every client's latest list must be the whole set; the frame length is a cheap
    // first check, the exact comparison follows.
    let full_len = "42[\"getOnlineUser\",[".len() + users * 26 + users.saturating_sub(1) + 2;
    let converge_deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < converge_deadline && !last_lists.iter().all(|l| l.lock().unwrap().len() == full_len) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let converged = start.elapsed();
    let cpu = server.cpu_secs() - cpu_before;
    let mut exact = 0;
    for list in last_lists.iter() {
        let frame = list.lock().unwrap().clone();
        let parsed: serde_json::Value = serde_json::from_str(frame.get(2..).unwrap_or("")).unwrap_or_default();
        let ids: HashSet<String> = parsed[1]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
            .unwrap_or_default();
        exact += (ids == expected) as usize;
    }
    // Idle for 10 s after convergence, then measure.
    tokio::time::sleep(Duration::from_secs(10)).await;
    if let Some(hold) = std::env::var("CONFAB_BENCH_HOLD").ok().and_then(|v| v.parse().ok()) {
        eprintln!("  holding {hold} s: server pid {}", server.child.id());
        tokio::time::sleep(Duration::from_secs(hold)).await;
    }
    let rss_idle = kib(&server.proc_field("VmRSS:"));
    let peak = kib(&server.proc_field("VmHWM:"));
    println!("  connected:              {ok}/{users} in {:.2} s ({failures} failures)", all_connected.as_secs_f64());
    println!(
        "  every client's last getOnlineUser == true online set: {exact}/{users} (after {:.2} s)",
        converged.as_secs_f64()
    );
    println!("  server CPU for the ramp: {cpu:.2} s");
    println!(
        "  RSS: {} MB before, {} MB with {ok} idle connections 10 s after convergence, peak {} MB: {:.1} KB per connection",
        rss_before / 1024,
        rss_idle / 1024,
        peak / 1024,
        (rss_idle.saturating_sub(rss_before)) as f64 / ok.max(1) as f64
    );
    let first_failure = refused.lock().unwrap().first().cloned();
    if let Some(first) = first_failure {
        println!("  first failure: {first}");
    }
    for client in clients {
        client.abort();
    }
    let left = Instant::now();
    let mut rss_after = rss_idle;
    while left.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_secs(5)).await;
        rss_after = kib(&server.proc_field("VmRSS:"));
        if rss_after <= rss_before + 20 * 1024 {
            break;
        }
    }
    println!(
        "  after every client left: RSS {} MB ({} MB above the start) after {:.0} s; load average {}",
        rss_after / 1024,
        rss_after.saturating_sub(rss_before) / 1024,
        left.elapsed().as_secs_f64(),
        load_average()
    );
}

/// Runs the round trip with metrics on (the default) and off, to show what they cost:
/// three servers each, in alternating order so warm-up and drift favour neither.
async fn roundtrip(messages: usize) {
    println!("roundtrip: {messages} messages, POST /api/v1/message → newMessage at the recipient (chat open)");
    let mut p99s: [Vec<f64>; 2] = Default::default();
    for round in [[0, 1], [1, 0], [0, 1]] {
        for setting in round {
            let (label, enabled) = [("metrics on ", "true"), ("metrics off", "false")][setting];
            print!("  {label}: ");
            p99s[setting].push(roundtrip_once(messages, &[("CONFAB_METRICS_ENABLED", enabled)]).await);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!("  median p99: metrics on {:.2} ms, metrics off {:.2} ms", median(&mut p99s[0]), median(&mut p99s[1]));
}

/// One server, one run; prints the percentiles and returns p99 in ms.
async fn roundtrip_once(messages: usize, env: &[(&str, &str)]) -> f64 {
    let (dir, seeded) = seed(2).await;
    let server = Server::start_with(dir, env);
    let (alice, bob) = (&seeded[0], &seeded[1]);
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{}", server.port);
    let chat_id = open_chat(&http, &base, &alice.1, &bob.0).await;
    let (tx, mut events) = mpsc::unbounded_channel();
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    tokio::spawn(socket_client(server.port, bob.1.clone(), tx, Some(out_rx)));
    while !matches!(events.recv().await, Some(Event::Connected)) {}
    out_tx.send(format!("42[\"joinChat\",\"{chat_id}\"]")).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut latencies = Vec::with_capacity(messages);
    for i in 0..messages {
        let started = Instant::now();
        let resp = http
            .post(format!("{base}/api/v1/message"))
            .bearer_auth(&alice.1)
            .json(&serde_json::json!({ "chatId": chat_id, "text": format!("message {i}") }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        let needle = format!("\"text\":\"message {i}\"");
        loop {
            match tokio::time::timeout(Duration::from_secs(5), events.recv()).await {
                Ok(Some(Event::Frame(f))) if f.starts_with("42[\"newMessage\"") && f.contains(&needle) => break,
                Ok(Some(_)) => {}
                _ => panic!("message {i} never arrived"),
            }
        }
        latencies.push(started.elapsed());
    }
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "p50 {:.2} ms   p90 {:.2} ms   p99 {:.2} ms   max {:.2} ms",
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.90).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3
    );
    pct(0.99).as_secs_f64() * 1e3
}

/// A JPEG of about `target` bytes: noisy pixels compress poorly, like a photo.
fn jpeg_of_about(target: usize) -> Vec<u8> {
    let mut side = 600u32;
    loop {
        let img = image::RgbImage::from_fn(side, side * 3 / 4, |x, y| {
            let n = (x.wrapping_mul(7919) ^ y.wrapping_mul(104729)).wrapping_mul(2654435761);
            image::Rgb([(n >> 8) as u8, (n >> 16) as u8, (x + y) as u8])
        });
        let mut out = std::io::Cursor::new(Vec::new());
        image::DynamicImage::ImageRgb8(img).write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
        let bytes = out.into_inner();
        if bytes.len() >= target || side > 4000 {
            return bytes;
        }
        side += 200;
    }
}

async fn uploads(count: usize, concurrency: usize) {
    let jpeg = Arc::new(jpeg_of_about(1024 * 1024));
    println!("uploads: {count} image messages of a {} KB JPEG, {concurrency} at a time", jpeg.len() / 1024);
    let (dir, seeded) = seed(2).await;
    let server = Server::start(dir);
    let base = format!("http://127.0.0.1:{}", server.port);
    let http = reqwest::Client::new();
    let chat_id = open_chat(&http, &base, &seeded[0].1, &seeded[1].0).await;
    let rss_before = server.proc_field("VmRSS:");
    let gate = Arc::new(Semaphore::new(concurrency));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..count {
        let permit = gate.clone().acquire_owned().await.unwrap();
        let (http, base, token, chat_id, jpeg) =
            (http.clone(), base.clone(), seeded[0].1.clone(), chat_id.clone(), jpeg.clone());
        tasks.push(tokio::spawn(async move {
            let part =
                reqwest::multipart::Part::bytes(jpeg.to_vec()).file_name("photo.jpg").mime_str("image/jpeg").unwrap();
            let form = reqwest::multipart::Form::new().text("chatId", chat_id).part("image", part);
            let status = http
                .post(format!("{base}/api/v1/message"))
                .bearer_auth(token)
                .multipart(form)
                .send()
                .await
                .unwrap()
                .status();
            drop(permit);
            status.as_u16()
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += (t.await.unwrap() == 201) as usize;
    }
    let elapsed = started.elapsed();
    println!(
        "  {ok}/{count} stored in {:.2} s: {:.1} images/s",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64()
    );
    println!("  server RSS before: {rss_before}; peak (VmHWM): {}", server.proc_field("VmHWM:"));
}

/// `GET /api/v1/chat/all` on the MongoDB store for a user with `chats` chats among
/// `users` users, seeded as the original stores its documents (ObjectId `_id`s, member
/// ids as strings, one unseen message per chat). The database is dropped afterwards.
async fn chatlist(users: usize, chats: usize, runs: usize) {
    use mongodb::bson::{doc, oid::ObjectId as Oid, DateTime, Document};
    let base = std::env::var("CONFAB_BENCH_MONGO").unwrap_or_else(|_| "mongodb://127.0.0.1:27017".into());
    let database = format!("confab_bench_{}", Oid::new());
    println!("chatlist: GET /api/v1/chat/all, {chats} chats among {users} users, MongoDB store ({base}/{database})");
    let client = mongodb::Client::with_uri_str(&base).await.expect("MongoDB reachable (CONFAB_BENCH_MONGO)");
    let db = client.database(&database);
    let now = DateTime::now();
    let ids: Vec<Oid> = (0..users).map(|_| Oid::new()).collect();
    let seeding = Instant::now();
    for (batch, chunk) in ids.chunks(1000).enumerate() {
        let docs: Vec<Document> = chunk
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let n = batch * 1000 + i;
                doc! { "_id": id, "name": format!("user{n}"), "email": format!("user{n}@example.com"),
                "createdAt": now, "updatedAt": now, "__v": 0 }
            })
            .collect();
        db.collection::<Document>("users").insert_many(docs).await.unwrap();
    }
    let me = ids[0].to_hex();
    let chat_ids: Vec<Oid> = (0..chats).map(|_| Oid::new()).collect();
    for (batch, chunk) in chat_ids.chunks(1000).enumerate() {
        let (mut chat_docs, mut message_docs) = (Vec::new(), Vec::new());
        for (i, chat) in chunk.iter().enumerate() {
            let peer = ids[1 + (batch * 1000 + i) % (users - 1)].to_hex();
            let at = DateTime::from_millis(now.timestamp_millis() - (batch * 1000 + i) as i64);
            chat_docs
                .push(doc! { "_id": chat, "users": [&me, &peer], "latestMessage": { "text": "hi", "sender": &peer },
                "createdAt": at, "updatedAt": at, "__v": 0 });
            message_docs.push(doc! { "chatId": chat, "sender": &peer, "text": "hi", "messageType": "text",
            "seen": false, "seenAt": null, "createdAt": at, "updatedAt": at, "__v": 0 });
        }
        db.collection::<Document>("chats").insert_many(chat_docs).await.unwrap();
        db.collection::<Document>("messages").insert_many(message_docs).await.unwrap();
    }
    println!("  seeded in {:.1} s", seeding.elapsed().as_secs_f64());
    let uri = match base.split_once('?') {
        Some((host, query)) => format!("{}/{database}?{query}", host.trim_end_matches('/')),
        None => format!("{}/{database}", base.trim_end_matches('/')),
    };
    let server = Server::start_with(tempfile::tempdir().unwrap(), &[("CONFAB_MONGO_URI", &uri)]);
    let user = User {
        id: confab::domain::ObjectId::parse(&me).unwrap(),
        name: "user0".into(),
        email: Email::parse("user0@example.com").unwrap(),
        created_at: now.timestamp_millis(),
        updated_at: now.timestamp_millis(),
        token_version: 0,
    };
    let token = TokenKeys::new(SECRET.as_bytes()).issue(&user, chrono::Utc::now().timestamp());
    let http = reqwest::Client::builder().timeout(Duration::from_secs(600)).build().unwrap();
    let url = format!("http://127.0.0.1:{}/api/v1/chat/all", server.port);
    // The server builds its indexes in the background at start: let it finish first.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut times = Vec::new();
    for run in 1..=runs {
        let started = Instant::now();
        let resp = http.get(&url).bearer_auth(&token).send().await.unwrap();
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.unwrap();
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        let list = body["chats"].as_array().map(Vec::as_slice).unwrap_or_default();
        let named = list.iter().filter(|c| c["user"]["name"].as_str().is_some_and(|n| n.starts_with("user"))).count();
        let unseen: u64 = list.iter().filter_map(|c| c["chat"]["unseenCount"].as_u64()).sum();
        println!(
            "  run {run}: {status} in {elapsed:.0} ms: {} chats, {named} with their peer's name, {unseen} unseen",
            list.len()
        );
        times.push(elapsed);
    }
    times.sort_by(f64::total_cmp);
    println!("  median {:.0} ms", times[times.len() / 2]);
    drop(server);
    // Once more if the first try meets a pooled connection the server has closed.
    if db.drop().await.is_err() {
        db.drop().await.expect("dropping the bench database");
    }
}

/// Sustained load: `sockets` users (one socket each, paired into chats) while messages
/// are posted at `rate` per second for `minutes`. Every message must reach both members'
/// sockets; RSS, deliveries and errors are printed every `sample` seconds.
async fn soak(sockets: usize, rate: usize, minutes: usize) {
    let sockets = sockets.max(2) & !1;
    println!("soak: {sockets} sockets in {} chats, {rate} msg/s for {minutes} min", sockets / 2);
    let (dir, seeded) = seed(sockets).await;
    let server = Server::start(dir);
    let base = format!("http://127.0.0.1:{}", server.port);
    let http = reqwest::Client::new();
    let mut chats = Vec::new();
    for pair in seeded.chunks(2) {
        chats.push((open_chat(&http, &base, &pair[0].1, &pair[1].0).await, pair[0].1.clone()));
    }
    let delivered = Arc::new(AtomicUsize::new(0));
    let connected = Arc::new(AtomicUsize::new(0));
    for (_, token) in &seeded {
        let (tx, mut rx) = mpsc::unbounded_channel();
        tokio::spawn(socket_client(server.port, token.clone(), tx, None));
        let (delivered, connected) = (delivered.clone(), connected.clone());
        tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                match ev {
                    Event::Connected => _ = connected.fetch_add(1, Ordering::Relaxed),
                    Event::Frame(f) if f.starts_with("42[\"newMessage\"") => {
                        _ = delivered.fetch_add(1, Ordering::Relaxed)
                    }
                    _ => {}
                }
            }
        });
    }
    while connected.load(Ordering::Relaxed) < sockets {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rss_start = server.proc_field("VmRSS:");
    println!("  all {sockets} connected; RSS {rss_start}");
    let (posted, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let in_flight = Arc::new(Semaphore::new(256));
    let started = Instant::now();
    let total = Duration::from_secs(minutes as u64 * 60);
    let sample = Duration::from_secs(if minutes > 5 { 60 } else { 10 });
    let mut next_sample = started + sample;
    let mut sent = 0usize;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    while started.elapsed() < total {
        tick.tick().await;
        // Catch up to where the rate says we should be.
        let due = (started.elapsed().as_secs_f64() * rate as f64) as usize;
        while sent < due {
            let (chat, token) = chats[sent % chats.len()].clone();
            let permit = in_flight.clone().acquire_owned().await.unwrap();
            let (http, base, posted, failed) = (http.clone(), base.clone(), posted.clone(), failed.clone());
            tokio::spawn(async move {
                let ok = http
                    .post(format!("{base}/api/v1/message"))
                    .bearer_auth(token)
                    .json(&serde_json::json!({ "chatId": chat, "text": "soak" }))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 201);
                if ok {
                    posted.fetch_add(1, Ordering::Relaxed)
                } else {
                    failed.fetch_add(1, Ordering::Relaxed)
                };
                drop(permit);
            });
            sent += 1;
        }
        if Instant::now() >= next_sample {
            next_sample += sample;
            let p = posted.load(Ordering::Relaxed);
            println!(
                "  {:>5.0} s: posted {p}, failed {}, delivered {}/{}, RSS {}, CPU {:.1} s",
                started.elapsed().as_secs_f64(),
                failed.load(Ordering::Relaxed),
                delivered.load(Ordering::Relaxed),
                2 * p,
                server.proc_field("VmRSS:"),
                server.cpu_secs()
            );
        }
    }
    // Let the last messages land.
    let _ = in_flight.acquire_many(256).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (p, f, d) = (posted.load(Ordering::Relaxed), failed.load(Ordering::Relaxed), delivered.load(Ordering::Relaxed));
    println!(
        "  done: {p} posted ({:.0}/s), {f} failed, {d} of {} deliveries ({} lost)",
        p as f64 / total.as_secs_f64(),
        2 * p,
        (2 * p).saturating_sub(d)
    );
    println!(
        "  RSS start {rss_start}, end {}, peak {}; server CPU {:.1} s",
        server.proc_field("VmRSS:"),
        server.proc_field("VmHWM:"),
        server.cpu_secs()
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    match std::env::args().nth(1).as_deref() {
        Some("presence") => rt.block_on(presence(arg("--users", 10_000))),
        Some("roundtrip") => rt.block_on(roundtrip(arg("--messages", 1000))),
        Some("rate") => rt.block_on(rate::rate()),
        Some("typing") => rt.block_on(compare::typing()),
        Some("compare") => rt.block_on(compare::compare()),
        Some("logins") => rt.block_on(logins::logins()),
        Some("uploads") => rt.block_on(uploads(arg("--count", 100), arg("--concurrency", 20))),
        Some("soak") => rt.block_on(soak(arg("--sockets", 1000), arg("--rate", 500), arg("--minutes", 30))),
        Some("chatlist") => rt.block_on(chatlist(arg("--users", 10_000), arg("--chats", 1000), arg("--runs", 3))),
        _ => eprintln!(
            "usage: bench/run.sh presence [--users N] | roundtrip [--messages N] \
             | rate [--users N --rates R1,R2 --seconds S] | typing [--pairs N --seconds S] \
             | compare [--users N1,N2 --pin --json FILE] | logins [--workers W --seconds S] | uploads [--count N --concurrency C] \
             | chatlist [--users N --chats N --runs N] | soak [--sockets N --rate R --minutes M]"
        ),
    }
}
