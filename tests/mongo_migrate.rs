//! Moving an existing database of the original onto confab: `confab migrate` (the real
//! binary) reports and, with `--apply`, normalises the emails the original stored as
//! typed, so those users log in to their own accounts and chats; and `chat/all` reads
//! such a database, including users confab cannot use, without failing.

mod common;

use std::process::Command;

use common::smtp::SmtpSink;
use common::TestApp;
use mongodb::bson::{doc, oid::ObjectId as Oid, DateTime, Document};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_confab");

fn migrate(uri: &str, apply: bool) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).current_dir(dir.path());
    cmd.env("CONFAB_MONGO_URI", uri).env("CONFAB_DATA_DIR", dir.path()).arg("migrate");
    if apply {
        cmd.arg("--apply");
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

fn user(id: Oid, email: &str, created: i64) -> Document {
    let at = DateTime::from_millis(created);
    doc! { "_id": id, "name": email.chars().take(8).collect::<String>(), "email": email,
    "createdAt": at, "updatedAt": at, "__v": 0 }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_reports_then_normalises_and_mixed_case_users_log_in_to_their_accounts() {
    let (uri, database) = common::backends::mongo_uri_for_new_database();
    let client = mongodb::Client::with_uri_str(common::backends::mongo_base()).await.unwrap();
    let db = client.database(&database);
    let users = db.collection::<Document>("users");
    let (alice, bob, dave_old, dave_new, junk) = (Oid::new(), Oid::new(), Oid::new(), Oid::new(), Oid::new());
    let t = 1_750_000_000_000;
    users
        .insert_many([
            user(alice, "Alice@Example.com", t),
            user(bob, "bob@example.com", t + 1),
            user(dave_old, "Dave@Example.com", t + 2),
            user(dave_new, "DAVE@example.COM", t + 3),
            user(junk, "undefined", t + 4),
        ])
        .await
        .unwrap();
    let chat = Oid::new();
    let at = DateTime::from_millis(t + 10);
    db.collection::<Document>("chats")
        .insert_one(doc! { "_id": chat, "users": [alice.to_hex(), bob.to_hex()],
        "latestMessage": { "text": "hi Alice", "sender": bob.to_hex() },
        "createdAt": at, "updatedAt": at, "__v": 0 })
        .await
        .unwrap();
    // A chat with the user whose email is not an address: listed with a fallback peer.
    db.collection::<Document>("chats")
        .insert_one(doc! { "_id": Oid::new(), "users": [alice.to_hex(), junk.to_hex()], "createdAt": at, "updatedAt": at, "__v": 0 })
        .await
        .unwrap();

    let dry = migrate(&uri, false);
    println!("{dry}");
    for expected in [
        "Emails in `users`: 5 user(s), 1 already normalised.",
        "To rename (trimmed and lowercased, as confab looks them up): 2",
        &format!("{alice} \"Alice@Example.com\" -> \"alice@example.com\""),
        &format!("{dave_old} \"Dave@Example.com\" -> \"dave@example.com\""),
        "Addresses that differ only in case: 1",
        &format!("keeps the address: {dave_old} \"Dave@Example.com\", 0 chat(s)"),
        &format!(
            "left unchanged:    {dave_new} \"DAVE@example.COM\", 0 chat(s) (cannot log in; merge or delete by hand)"
        ),
        "Not an email address: 1",
        &format!("{junk} \"undefined\" (cannot log in)"),
        "Dry run: nothing was changed.",
    ] {
        assert!(dry.contains(expected), "dry run lacks {expected:?}:\n{dry}");
    }
    let stored = users.find_one(doc! { "_id": alice }).await.unwrap().unwrap();
    assert_eq!(stored.get_str("email").unwrap(), "Alice@Example.com", "a dry run writes nothing");

    let applied = migrate(&uri, true);
    assert!(applied.contains("Renamed (trimmed and lowercased, as confab looks them up): 2"), "{applied}");
    assert!(applied.contains("Applied: 2 renamed, 0 skipped."), "{applied}");
    assert!(migrate(&uri, false).contains("Dry run: nothing to change."), "a second run finds nothing to do");

    // Alice logs in, typing her address in any case, and lands in her own account.
    let smtp = SmtpSink::start();
    let app = TestApp::spawn_with(|c| {
        c.mongo_uri = Some(uri.clone());
        c.smtp_url = Some(smtp.url());
    })
    .await;
    let (status, body) = app.post("/api/v1/login", json!({ "email": "ALICE@example.com" }), None).await;
    assert_eq!(status, 200, "{body}");
    let otp = smtp.wait_for_otp("alice@example.com").await;
    let (status, body) = app.post("/api/v1/verify", json!({ "email": "alice@example.com", "otp": otp }), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["_id"], alice.to_hex(), "the original account, not a new one");
    let token = body["token"].as_str().unwrap();
    let (status, list) = app.get("/api/v1/chat/all", Some(token)).await;
    assert_eq!(status, 200, "{list}");
    let chats = list["chats"].as_array().unwrap();
    assert_eq!(chats.len(), 2, "{list}");
    let with_bob = chats.iter().find(|c| c["chat"]["_id"] == chat.to_hex()).expect("the chat with bob");
    assert_eq!(with_bob["user"]["_id"], bob.to_hex());
    assert_eq!(with_bob["chat"]["latestMessage"]["text"], "hi Alice");
    let with_junk = chats.iter().find(|c| c["chat"]["_id"] != chat.to_hex()).unwrap();
    assert_eq!(with_junk["user"]["name"], "Unknown User", "{with_junk}");
    // Every user confab can use is listed; the invalid one does not break the list.
    let (status, all) = app.get("/api/v1/user/all", Some(token)).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all.as_array().unwrap().len(), 4, "{all}");
    db.drop().await.unwrap();
}
