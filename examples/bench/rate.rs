//! The message path under a fixed offered load: `bash bench/run.sh rate`.
//!
//! `--users` users in pairs, each pair with a chat, every user connected over WebSocket.
//! Messages are posted at a fixed rate (an open loop: a slow server does not slow the
//! sender down, so queueing shows up as latency) for `--seconds` at each of `--rates`.
//! Latency is from the moment the POST is sent until `newMessage` reaches the
//! recipient's socket; nothing may be lost (every message reaches both members).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Semaphore};

use super::{arg, list_arg, load_average, open_chat, own_cpu_secs, seed, socket_client, Event, Server};

/// Send times by sequence number, and the recipient's latencies.
#[derive(Default)]
struct Clock {
    sent: Vec<Option<Instant>>,
    latencies: Vec<Duration>,
}

pub async fn rate() {
    let users = arg("--users", 2000).max(2) & !1;
    let rates = list_arg("--rates", &[1000, 2000, 3000, 4000, 5000]);
    let seconds = arg("--seconds", 10);
    println!(
        "rate: {users} users in {} chats, all connected; POST /api/v1/message at fixed rates, {seconds} s each; \
         latency POST sent → newMessage at the recipient",
        users / 2
    );
    let (dir, seeded) = seed(users).await;
    let server = Server::start(dir);
    let base = format!("http://127.0.0.1:{}", server.port);
    let http = reqwest::Client::builder().pool_max_idle_per_host(512).build().unwrap();
    // (chat, sender's token, index of the recipient)
    let mut chats = Vec::new();
    for (i, pair) in seeded.chunks(2).enumerate() {
        chats.push((open_chat(&http, &base, &pair[0].1, &pair[1].0).await, pair[0].1.clone(), 2 * i + 1));
    }
    let clock = Arc::new(Mutex::new(Clock::default()));
    let (connected, delivered) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    for (index, (_, token)) in seeded.iter().enumerate() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        tokio::spawn(socket_client(server.port, token.clone(), tx, None));
        let (clock, connected, delivered) = (clock.clone(), connected.clone(), delivered.clone());
        let recipient = index % 2 == 1;
        tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                match event {
                    Event::Connected => _ = connected.fetch_add(1, Ordering::Relaxed),
                    Event::Frame(f) if f.starts_with("42[\"newMessage\"") => {
                        delivered.fetch_add(1, Ordering::Relaxed);
                        if let (true, Some(seq)) = (recipient, sequence_in(&f)) {
                            let mut clock = clock.lock().unwrap();
                            if let Some(Some(sent)) = clock.sent.get(seq).copied() {
                                clock.latencies.push(sent.elapsed());
                            }
                        }
                    }
                    _ => {}
                }
            }
        });
    }
    while connected.load(Ordering::Relaxed) < users {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!("  all {users} connected; server RSS {}; load average {}", server.proc_field("VmRSS:"), load_average());
    println!(
        "  {:>7} {:>8} {:>6} {:>8} {:>8} {:>8} {:>8} {:>11} {:>10}",
        "offered", "posted", "lost", "p50 ms", "p90 ms", "p99 ms", "max ms", "server CPU", "load CPU"
    );
    let mut best = None;
    let mut seq = 0usize;
    for rate in rates {
        let (cpu_before, own_before) = (server.cpu_secs(), own_cpu_secs());
        let delivered_before = delivered.load(Ordering::Relaxed);
        clock.lock().unwrap().latencies.clear();
        let (posted, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let in_flight = Arc::new(Semaphore::new(1024));
        let total = rate * seconds;
        let started = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(2));
        let mut sent = 0;
        while sent < total {
            tick.tick().await;
            let due = ((started.elapsed().as_secs_f64() * rate as f64) as usize).min(total);
            while sent < due {
                let (chat, token, _) = chats[sent % chats.len()].clone();
                let permit = in_flight.clone().acquire_owned().await.unwrap();
                clock.lock().unwrap().sent.push(Some(Instant::now()));
                let (http, base, posted, failed) = (http.clone(), base.clone(), posted.clone(), failed.clone());
                let text = format!("r{seq}");
                tokio::spawn(async move {
                    let ok = http
                        .post(format!("{base}/api/v1/message"))
                        .bearer_auth(token)
                        .json(&serde_json::json!({ "chatId": chat, "text": text }))
                        .send()
                        .await
                        .is_ok_and(|r| r.status() == 201);
                    let counter = if ok { posted } else { failed };
                    counter.fetch_add(1, Ordering::Relaxed);
                    drop(permit);
                });
                sent += 1;
                seq += 1;
            }
        }
        let _ = in_flight.acquire_many(1024).await;
        // Deliveries still on their way: wait until they stop coming (at most 5 s).
        let mut last = 0;
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = delivered.load(Ordering::Relaxed);
            if now == last && now - delivered_before >= 2 * posted.load(Ordering::Relaxed) {
                break;
            }
            last = now;
        }
        let posted = posted.load(Ordering::Relaxed);
        let lost = (2 * posted).saturating_sub(delivered.load(Ordering::Relaxed) - delivered_before)
            + failed.load(Ordering::Relaxed);
        let mut latencies = std::mem::take(&mut clock.lock().unwrap().latencies);
        latencies.sort();
        let ms = |p: f64| {
            latencies
                .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
                .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
        };
        let span = started.elapsed().as_secs_f64();
        println!(
            "  {rate:>7} {posted:>8} {lost:>6} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>9.2} c {:>8.2} c",
            ms(0.5),
            ms(0.9),
            ms(0.99),
            ms(1.0),
            (server.cpu_secs() - cpu_before) / span,
            (own_cpu_secs() - own_before) / span,
        );
        if lost == 0 && ms(0.99) <= 50.0 {
            best = Some(rate);
        }
    }
    println!("  cores: server and load generator CPU seconds per second; load average {}", load_average());
    println!(
        "  server RSS after the last rate {} (peak {}); all {users} users still connected",
        server.proc_field("VmRSS:"),
        server.proc_field("VmHWM:")
    );
    match best {
        Some(rate) => println!("  highest offered rate with p99 ≤ 50 ms and nothing lost: {rate} msg/s"),
        None => println!("  no offered rate held p99 ≤ 50 ms with nothing lost"),
    }
}

/// The sequence number in a `newMessage` frame's text (`"text":"r<seq>"`).
fn sequence_in(frame: &str) -> Option<usize> {
    let start = frame.find("\"text\":\"r")? + 9;
    let digits = frame[start..].bytes().take_while(u8::is_ascii_digit).count();
    frame[start..start + digits].parse().ok()
}
