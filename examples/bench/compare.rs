//! confab beside the original's Socket.IO layer on plain Node socket.io 4
//! (bench/node/server.mjs), with the same load generator: `bash bench/run.sh compare`.
//!
//! For each count in `--users` and each server (confab with presence; Node without
//! presence; Node with the original's presence broadcast), N authenticated WebSocket
//! clients connect (256 handshakes in flight); measured: connect time, server CPU, RSS
//! per idle connection 10 s after all are up, and RSS after every client left (sampled
//! until it is within 20 MB of the start, for at most 60 s). The original's presence
//! is measured up to `--node-presence-max` users (1,000): it is O(N²) per connect. Then the typing relay on
//! 100 pairs. `--pin` runs each server on one core (`taskset -c 0`) and the load
//! generator on the other. Prints a table and writes the figures as JSON (`--json`,
//! default bench/compare.json).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::{mpsc, Semaphore};

use super::{
    kib, list_arg, load_average, open_chat, own_cpu_secs, proc_cpu_secs, seed, socket_client_with, Event, Server,
};

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Confab,
    Node,
    NodePresence,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Confab => "confab (presence on)",
            Kind::Node => "Node socket.io (no presence)",
            Kind::NodePresence => "Node socket.io (original presence)",
        }
    }
}

/// A running server under test, and how its clients say who they are.
struct Target {
    /// From spawning the process until it accepted a connection.
    start_ms: f64,
    port: u16,
    pid: u32,
    /// (handshake query, connect packet) per user.
    hellos: Vec<(String, String)>,
    _confab: Option<Server>,
    _node: Option<NodeServer>,
    /// Confab needs real chats; Node takes any room name.
    chats: Vec<String>,
}

struct NodeServer(Child);

impl Drop for NodeServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn pinned() -> bool {
    std::env::args().any(|a| a == "--pin")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn start(kind: Kind, users: usize, pairs: usize) -> Target {
    if kind == Kind::Confab {
        let (dir, seeded) = seed(users.max(2 * pairs)).await;
        let spawned = Instant::now();
        let server = Server::start_with(dir, &[]);
        let start_ms = spawned.elapsed().as_secs_f64() * 1e3;
        let (pid, port) = (server.child.id(), server.port);
        if pinned() {
            let _ = Command::new("taskset").args(["-pc", "0", &pid.to_string()]).stdout(Stdio::null()).status();
        }
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let mut chats = Vec::new();
        for pair in seeded.chunks(2).take(pairs) {
            chats.push(open_chat(&http, &base, &pair[0].1, &pair[1].0).await);
        }
        let hellos = seeded.iter().map(|(_, t)| (String::new(), format!("40{{\"token\":\"{t}\"}}"))).collect();
        return Target { start_ms, port, pid, hellos, _confab: Some(server), _node: None, chats };
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench/node");
    assert!(dir.join("node_modules/socket.io").exists(), "run `npm ci --prefix bench/node` (bench/run.sh does)");
    let port = free_port();
    let mut command = if pinned() {
        let mut c = Command::new("taskset");
        c.args(["-c", "0", "node", "server.mjs"]);
        c
    } else {
        let mut c = Command::new("node");
        c.arg("server.mjs");
        c
    };
    let spawned = Instant::now();
    let child = command
        .current_dir(&dir)
        .env("PORT", port.to_string())
        .env("PRESENCE", if kind == Kind::NodePresence { "1" } else { "0" })
        .stdout(Stdio::null())
        .spawn()
        .expect("node is installed");
    super::wait_for_port(port, "the Node reference server");
    let start_ms = spawned.elapsed().as_secs_f64() * 1e3;
    let hellos = (0..users.max(2 * pairs)).map(|i| (format!("&userId=user{i}"), "40".to_string())).collect();
    let chats = (0..pairs).map(|i| format!("chat{i}")).collect();
    Target { start_ms, port, pid: child.id(), hellos, _confab: None, _node: Some(NodeServer(child)), chats }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status.lines().find(|l| l.starts_with("VmRSS:")).map(|l| kib(&l[6..])).unwrap_or(0)
}

/// Connects `users` idle clients, measures, disconnects them, measures again.
async fn idle_connections(target: &Target, users: usize) -> Value {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rss_before, cpu_before) = (rss_kib(target.pid), proc_cpu_secs(&target.pid.to_string()));
    let connected = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(256));
    let mut clients = Vec::with_capacity(users);
    let started = Instant::now();
    for (query, hello) in target.hellos.iter().take(users).cloned() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let permit = gate.clone().acquire_owned().await.unwrap();
        let port = target.port;
        clients.push(tokio::spawn(async move { socket_client_with(port, &query, hello, tx, None).await }));
        let (connected, failed) = (connected.clone(), failed.clone());
        tokio::spawn(async move {
            let mut permit = Some(permit);
            while let Some(event) = rx.recv().await {
                match event {
                    Event::Connected => _ = (connected.fetch_add(1, Ordering::Relaxed), permit.take()),
                    Event::Refused(_) => _ = (failed.fetch_add(1, Ordering::Relaxed), permit.take()),
                    Event::Frame(_) => {}
                }
            }
            // The connection ended before it was let in.
            if permit.is_some() {
                failed.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while connected.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed) < users && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let connect_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (rss_idle, cpu) = (rss_kib(target.pid), proc_cpu_secs(&target.pid.to_string()) - cpu_before);
    let ok = connected.load(Ordering::Relaxed);
    clients.iter().for_each(|c| c.abort());
    let left = Instant::now();
    let mut rss_after = rss_kib(target.pid);
    while rss_after > rss_before + 20 * 1024 && left.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        rss_after = rss_kib(target.pid);
    }
    json!({
        "users": users,
        "connected": ok,
        "failures": users - ok,
        "connect_s": round(connect_secs, 2),
        "server_cpu_s": round(cpu, 2),
        "rss_before_mb": rss_before / 1024,
        "rss_idle_mb": rss_idle / 1024,
        "kb_per_connection": round((rss_idle.saturating_sub(rss_before)) as f64 / ok.max(1) as f64, 1),
        "rss_after_leave_mb": rss_after / 1024,
        "after_leave_s": round(left.elapsed().as_secs_f64(), 0),
        "load_average": load_average(),
    })
}

/// `bash bench/run.sh typing [--pairs 100 --seconds 10]`: confab's typing relay alone.
pub async fn typing() {
    let (pairs, seconds) = (super::arg("--pairs", 100), super::arg("--seconds", 10) as u64);
    println!("typing: {pairs} typist→watcher pairs, 32 indicators in flight each, {seconds} s");
    let target = start(Kind::Confab, 0, pairs).await;
    let row = typing_relay(&target, pairs, seconds).await;
    println!(
        "  {} deliveries/s; server {} cores ({} per core-second), RSS {} MB; load generator {} cores; load average {}",
        row["deliveries_per_s"],
        row["server_cores"],
        row["deliveries_per_core_s"],
        row["server_rss_mb"],
        row["load_generator_cores"],
        row["load_average"].as_str().unwrap_or_default()
    );
}

/// Typing indicators relayed per second, each typist keeping 32 in flight (the next is
/// sent as one is delivered), so the server, not the window, sets the pace.
async fn typing_relay(target: &Target, pairs: usize, seconds: u64) -> Value {
    let delivered = Arc::new(AtomicUsize::new(0));
    let mut typists = Vec::new();
    for (pair, chat) in target.chats.iter().enumerate().take(pairs) {
        let credit = Arc::new(Semaphore::new(0));
        for side in 0..2 {
            let (query, hello) = target.hellos[2 * pair + side].clone();
            let (events, mut rx) = mpsc::unbounded_channel();
            let (out, outbox) = mpsc::unbounded_channel();
            let port = target.port;
            tokio::spawn(async move { socket_client_with(port, &query, hello, events, Some(outbox)).await });
            while !matches!(rx.recv().await, Some(Event::Connected)) {}
            out.send(format!("421[\"joinChat\",\"{chat}\"]")).unwrap();
            let joined = Arc::new(Semaphore::new(0));
            let (joined_seen, credit_back, delivered) = (joined.clone(), credit.clone(), delivered.clone());
            let watcher = side == 1;
            tokio::spawn(async move {
                while let Some(event) = rx.recv().await {
                    match event {
                        Event::Frame(f) if f.starts_with("431[") => joined_seen.add_permits(1),
                        Event::Frame(f) if watcher && f.starts_with("42[\"user") => {
                            delivered.fetch_add(1, Ordering::Relaxed);
                            credit_back.add_permits(1);
                        }
                        _ => {}
                    }
                }
            });
            joined.acquire().await.unwrap().forget();
            if side == 0 {
                typists.push((out, chat.clone(), pair, credit.clone()));
            }
        }
    }
    let mut senders = Vec::new();
    for (out, chat, pair, credit) in typists {
        credit.add_permits(32);
        senders.push(tokio::spawn(async move {
            for n in 0usize.. {
                credit.acquire().await.unwrap().forget();
                let event = if n % 2 == 0 { "typing" } else { "stopTyping" };
                let frame = format!("42[\"{event}\",{{\"chatId\":\"{chat}\",\"userId\":\"user{}\"}}]", 2 * pair);
                if out.send(frame).is_err() {
                    break;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pid = target.pid.to_string();
    let (before, cpu, own, started) =
        (delivered.load(Ordering::Relaxed), proc_cpu_secs(&pid), own_cpu_secs(), Instant::now());
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let span = started.elapsed().as_secs_f64();
    let rate = (delivered.load(Ordering::Relaxed) - before) as f64 / span;
    let cores = (proc_cpu_secs(&pid) - cpu) / span;
    let rss_mb = rss_kib(target.pid) / 1024;
    senders.iter().for_each(|s| s.abort());
    json!({
        "pairs": pairs,
        "deliveries_per_s": rate.round() as u64,
        "server_cores": round(cores, 2),
        "deliveries_per_core_s": (rate / cores.max(0.01)).round() as u64,
        "load_generator_cores": round((own_cpu_secs() - own) / span, 2),
        "server_rss_mb": rss_mb,
        "load_average": load_average(),
    })
}

fn round(v: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (v * f).round() / f
}

pub async fn compare() {
    let counts = list_arg("--users", &[1000, 5000, 10000]);
    let out = std::env::args()
        .position(|a| a == "--json")
        .and_then(|i| std::env::args().nth(i + 1))
        .unwrap_or_else(|| format!("{}/bench/compare.json", env!("CARGO_MANIFEST_DIR")));
    println!(
        "compare: confab vs the original's socket layer on Node socket.io 4; {}; load average {}",
        if pinned() { "servers pinned to core 0" } else { "unpinned" },
        load_average()
    );
    let kinds = [Kind::Confab, Kind::Node, Kind::NodePresence];
    let mut report = json!({ "pinned": pinned(), "startup": [], "idle": [], "typing": [] });
    println!("  {:<36} {:>16} {:>14}", "start-up (no users)", "to accepting ms", "idle RSS MB");
    for kind in [Kind::Confab, Kind::Node] {
        let target = start(kind, 0, 0).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let idle_mb = rss_kib(target.pid) as f64 / 1024.0;
        println!("  {:<36} {:>16.0} {:>14.1}", kind.label(), target.start_ms, idle_mb);
        report["startup"].as_array_mut().unwrap().push(
            json!({ "server": kind.label(), "start_ms": round(target.start_ms, 1), "idle_rss_mb": round(idle_mb, 1) }),
        );
    }
    let binary = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/confab");
    let binary_mb = std::fs::metadata(&binary).map_or(f64::NAN, |m| m.len() as f64 / 1e6);
    println!("  confab binary: {binary_mb:.1} MB (all backends, the admin console and the docs included)");
    report["binary_mb"] = json!(round(binary_mb, 1));
    println!(
        "  {:<36} {:>6} {:>9} {:>8} {:>9} {:>11} {:>13}",
        "idle WebSocket connections", "users", "connect s", "CPU s", "RSS MB", "KB / conn", "RSS after MB"
    );
    // The original's presence costs O(N²) per connect: 5,000 users took 288 s to connect
    // here, so by default it is measured only up to 1,000.
    let presence_max = super::arg("--node-presence-max", 1000);
    for &users in &counts {
        for kind in kinds {
            if kind == Kind::NodePresence && users > presence_max {
                continue;
            }
            let target = start(kind, users, 0).await;
            let row = idle_connections(&target, users).await;
            println!(
                "  {:<36} {:>6} {:>9} {:>8} {:>9} {:>11} {:>13}",
                kind.label(),
                format!("{}/{users}", row["connected"]),
                row["connect_s"].to_string(),
                row["server_cpu_s"].to_string(),
                row["rss_idle_mb"].to_string(),
                row["kb_per_connection"].to_string(),
                format!("{} ({} s)", row["rss_after_leave_mb"], row["after_leave_s"])
            );
            let mut row = row;
            row["server"] = json!(kind.label());
            report["idle"].as_array_mut().unwrap().push(row);
        }
        let (confab, node) = (&report["idle"].as_array().unwrap(), users);
        let per = |label: &str| {
            confab
                .iter()
                .find(|r| r["server"] == label && r["users"] == node)
                .and_then(|r| r["kb_per_connection"].as_f64())
                .unwrap_or(f64::NAN)
        };
        println!(
            "  {:<36} KB per connection, confab / Node: {:.2} (Node without presence), {:.2} (with)",
            "",
            per(Kind::Confab.label()) / per(Kind::Node.label()),
            per(Kind::Confab.label()) / per(Kind::NodePresence.label())
        );
    }
    println!(
        "  {:<36} {:>14} {:>13} {:>15} {:>14}",
        "typing relay, 100 pairs", "deliveries/s", "server cores", "per core-s", "load gen cores"
    );
    for kind in [Kind::Confab, Kind::Node] {
        let target = start(kind, 0, 100).await;
        let mut row = typing_relay(&target, 100, 10).await;
        println!(
            "  {:<36} {:>14} {:>13} {:>15} {:>14}",
            kind.label(),
            row["deliveries_per_s"].to_string(),
            row["server_cores"].to_string(),
            row["deliveries_per_core_s"].to_string(),
            row["load_generator_cores"].to_string()
        );
        row["server"] = json!(kind.label());
        report["typing"].as_array_mut().unwrap().push(row);
    }
    let typing = report["typing"].as_array().unwrap();
    let per_core = |i: usize| typing[i]["deliveries_per_core_s"].as_f64().unwrap_or(f64::NAN);
    println!("  typing per core: confab / Node = {:.2}", per_core(0) / per_core(1));
    report["load_average_end"] = json!(load_average());
    std::fs::write(&out, serde_json::to_string_pretty(&report).unwrap()).expect("write the JSON report");
    println!("  figures written to {out}");
}
