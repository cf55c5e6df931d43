//! `confab backup` while the server is under write load, then `confab restore` into an
//! empty data directory: every message acknowledged before the backup started is there,
//! and so is an image uploaded before it.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{unique_email, TestApp};
use confab::domain::ObjectId;
use confab::ports::HistoryPage;
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_confab");

fn confab(data_dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).env("CONFAB_DATA_DIR", data_dir);
    cmd
}

/// A small valid PNG.
fn png() -> Vec<u8> {
    let img = image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(40, 30, image::Rgb([200, 10, 10])));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_write_load_restores_every_message_acknowledged_before_it() {
    let app = Arc::new(TestApp::spawn().await);
    let (_alice, alice_token) = app.user_with_token(&unique_email("bk-alice")).await;
    let (bob, _) = app.user_with_token(&unique_email("bk-bob")).await;
    let (status, chat) =
        app.post("/api/v1/chat/new", json!({ "otherUserId": bob.id.to_hex() }), Some(&alice_token)).await;
    assert_eq!(status, 201);
    let chat = chat["chatId"].as_str().unwrap().to_string();

    let form = reqwest::multipart::Form::new()
        .text("chatId", chat.clone())
        .part("image", reqwest::multipart::Part::bytes(png()).file_name("a.png"));
    let resp =
        app.client.post(app.url("/api/v1/message")).bearer_auth(&alice_token).multipart(form).send().await.unwrap();
    assert_eq!(resp.status(), 201);
    let uploaded: serde_json::Value = resp.json().await.unwrap();
    let image_url = uploaded["message"]["image"]["url"].as_str().unwrap().to_string();

    // Writers keep posting through the backup; each acknowledgement is timed.
    let acked: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (app, token, chat, acked, stop) =
                (app.clone(), alice_token.clone(), chat.clone(), acked.clone(), stop.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let text = format!("w{w}-{n}");
                    let (status, body) =
                        app.post("/api/v1/message", json!({ "chatId": chat, "text": text }), Some(&token)).await;
                    assert_eq!(status, 201, "{body}");
                    acked.lock().unwrap().push((Instant::now(), body["message"]["_id"].as_str().unwrap().into()));
                    n += 1;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("confab.backup");
    let started = Instant::now();
    let data_dir = app.data_dir.path().to_path_buf();
    let backup_file = file.clone();
    let out = tokio::task::spawn_blocking(move || confab(&data_dir).arg("backup").arg(&backup_file).output().unwrap())
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = String::from_utf8_lossy(&out.stdout).to_string();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let before: Vec<&String> = acked.iter().filter(|(at, _)| *at < started).map(|(_, id)| id).collect();
    let during = acked.iter().filter(|(at, _)| *at >= started && *at < started + took).count();
    assert!(before.len() > 50, "load before the backup: {}", before.len());
    assert!(during > 0, "the server kept acknowledging writes during the backup");
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600, "it holds secrets");
    }

    // Into an empty data directory, then served by a fresh app.
    let restored = tempfile::tempdir().unwrap();
    let restored_dir = restored.path().join("data");
    let out = confab(&restored_dir).arg("restore").arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let again = confab(&restored_dir).arg("restore").arg(&file).output().unwrap();
    assert_eq!(again.status.code(), Some(1), "a second restore over it is refused");
    assert!(String::from_utf8_lossy(&again.stderr).contains("empty data directory"));

    let back = TestApp::spawn_with(|c| c.data_dir = restored_dir.clone()).await;
    let chat_id = ObjectId::parse(&chat).unwrap();
    let stored = back.ports.store.messages(&chat_id, &HistoryPage::default()).await.unwrap();
    let ids: std::collections::HashSet<String> = stored.iter().map(|m| m.id.to_hex()).collect();
    let missing: Vec<&&String> = before.iter().filter(|id| !ids.contains(id.as_str())).collect();
    assert!(missing.is_empty(), "{} of {} acknowledged messages lost: {missing:?}", missing.len(), before.len());
    // Tokens from before the backup still work (the JWT secret came along), and the image loads.
    let (status, _) = back.get(&format!("/api/v1/message/{chat}"), Some(&alice_token)).await;
    assert_eq!(status, 200);
    let image = back.client.get(back.url(&image_url)).send().await.unwrap();
    assert_eq!(image.status(), 200);
    assert_eq!(
        image.bytes().await.unwrap().len(),
        std::fs::read(app.data_dir.path().join(&image_url[1..])).unwrap().len()
    );
    println!(
        "backup: {report}; {} acknowledged before it, {during} during its {took:?}, {} stored after restore",
        before.len(),
        stored.len()
    );
}

#[test]
fn restore_refuses_what_is_not_a_backup() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("bogus.tar");
    std::fs::write(&bogus, b"not a tar at all, just words").unwrap();
    let out = confab(&dir.path().join("data")).arg("restore").arg(&bogus).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a confab backup"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = confab(&dir.path().join("empty")).arg("backup").arg(dir.path().join("x")).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no SQLite store"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
