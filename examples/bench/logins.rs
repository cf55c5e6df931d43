//! Complete email-code logins per second: `bash bench/run.sh logins`.
//!
//! `--workers` clients each loop: `POST /api/v1/login` for a new address, wait for the
//! code in the server's log (the embedded dev mail transport prints each mail there),
//! `POST /api/v1/verify` with it, which creates the user and issues a token. The
//! per-address limit is raised for the run (all clients share 127.0.0.1).

use std::collections::HashMap;
use std::io::BufRead;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::{arg, load_average, own_cpu_secs, Server};

/// Codes read from the log, by address.
#[derive(Default)]
struct Mailbox {
    codes: Mutex<HashMap<String, String>>,
    arrived: Notify,
}

impl Mailbox {
    /// Reads `to=<address>` and `Your OTP is <code>` from each mail line of the log.
    fn read(self: Arc<Self>, log: std::process::ChildStdout) {
        for line in std::io::BufReader::new(log).lines().map_while(Result::ok) {
            let code = line.split("Your OTP is ").nth(1).map(|rest| rest.chars().take(6).collect::<String>());
            let to = line.split(" to=").nth(1).and_then(|rest| rest.split_whitespace().next());
            if let (Some(code), Some(to)) = (code, to) {
                self.codes.lock().unwrap().insert(to.to_string(), code);
                self.arrived.notify_waiters();
            }
        }
    }

    async fn code_for(&self, email: &str) -> String {
        loop {
            let arrived = self.arrived.notified();
            if let Some(code) = self.codes.lock().unwrap().remove(email) {
                return code;
            }
            let _ = tokio::time::timeout(Duration::from_millis(50), arrived).await;
        }
    }
}

pub async fn logins() {
    let (workers, seconds) = (arg("--workers", 32), arg("--seconds", 10) as u64);
    println!("logins: {workers} clients, each login → code from the mail → verify, for {seconds} s");
    let env = [("CONFAB_LOG", "warn,confab::mail=info"), ("CONFAB_LOGIN_IP_LIMIT", "100000000")];
    let mut server = Server::start_capturing(tempfile::tempdir().unwrap(), &env, true);
    let mailbox = Arc::new(Mailbox::default());
    let log = server.child.stdout.take().expect("captured log");
    std::thread::spawn({
        let mailbox = mailbox.clone();
        move || mailbox.read(log)
    });
    let base = format!("http://127.0.0.1:{}", server.port);
    let http = reqwest::Client::new();
    let (done, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let (cpu, own, started) = (server.cpu_secs(), own_cpu_secs(), Instant::now());
    let until = started + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for worker in 0..workers {
        let (http, base, mailbox) = (http.clone(), base.clone(), mailbox.clone());
        let (done, failed, latencies) = (done.clone(), failed.clone(), latencies.clone());
        tasks.push(tokio::spawn(async move {
            for n in 0.. {
                if Instant::now() >= until {
                    break;
                }
                let email = format!("login-{worker}-{n}@example.com");
                let began = Instant::now();
                let asked =
                    http.post(format!("{base}/api/v1/login")).json(&serde_json::json!({ "email": email })).send();
                if !asked.await.is_ok_and(|r| r.status() == 200) {
                    failed.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let code = match tokio::time::timeout(Duration::from_secs(5), mailbox.code_for(&email)).await {
                    Ok(code) => code,
                    Err(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                };
                let verified = http
                    .post(format!("{base}/api/v1/verify"))
                    .json(&serde_json::json!({ "email": email, "otp": code }))
                    .send()
                    .await;
                if verified.is_ok_and(|r| r.status() == 200) {
                    done.fetch_add(1, Ordering::Relaxed);
                    latencies.lock().unwrap().push(began.elapsed());
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let span = started.elapsed().as_secs_f64();
    let mut latencies = std::mem::take(&mut *latencies.lock().unwrap());
    latencies.sort();
    let ms = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    };
    let ok = done.load(Ordering::Relaxed);
    println!(
        "  {:.0} complete logins/s ({ok} in {span:.1} s, {} failed); login → token p50 {:.1} ms, p99 {:.1} ms",
        ok as f64 / span,
        failed.load(Ordering::Relaxed),
        ms(0.5),
        ms(0.99)
    );
    println!(
        "  server {:.2} cores, load generator {:.2} cores; server RSS {} (peak {}) after {ok} new users; load average {}",
        (server.cpu_secs() - cpu) / span,
        (own_cpu_secs() - own) / span,
        server.proc_field("VmRSS:"),
        server.proc_field("VmHWM:"),
        load_average()
    );
}
