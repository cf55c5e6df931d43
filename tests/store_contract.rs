//! The Store contract: the same cases run against every store adapter.

mod common;

use std::sync::Arc;

use confab::domain::{now_ms, Email, LatestMessage, Message, MessageKind, ObjectId, User};
use confab::ports::{HistoryPage, Store};
use confab::store::sqlite::SqliteStore;

/// Keeps whatever backs a store (a temp dir, a database) alive for the test.
type Guard = Box<dyn std::any::Any + Send>;

mod suite {
    use super::*;

    fn email(s: &str) -> Email {
        Email::parse(s).unwrap()
    }

    pub async fn find_or_create_is_idempotent_and_atomic(store: Arc<dyn Store>) {
        let e = email("race@example.com");
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (store, e) = (store.clone(), e.clone());
                tokio::spawn(async move { store.find_or_create_user(&e, "race@exa").await.unwrap() })
            })
            .collect();
        let mut ids = Vec::new();
        for t in tasks {
            ids.push(t.await.unwrap().id);
        }
        assert!(ids.windows(2).all(|w| w[0] == w[1]), "one user for concurrent first logins");
        let users = store.list_users().await.unwrap();
        assert_eq!(users.iter().filter(|u| u.email == e).count(), 1);
        // Later calls keep the existing name.
        let again = store.find_or_create_user(&e, "other").await.unwrap();
        assert_eq!((again.id, again.name.as_str()), (ids[0], "race@exa"));
    }

    pub async fn users_round_trip(store: Arc<dyn Store>) {
        let created = store.find_or_create_user(&email("rt@example.com"), "rt@examp").await.unwrap();
        assert_eq!(created.created_at, created.updated_at);
        assert_eq!(created.token_version, 0);
        let fetched = store.user_by_id(&created.id).await.unwrap().unwrap();
        assert_eq!(fetched, created);
        assert!(store.user_by_id(&ObjectId::new()).await.unwrap().is_none());
    }

    pub async fn rename_updates_name_and_timestamp(store: Arc<dyn Store>) {
        let u = store.find_or_create_user(&email("rename@example.com"), "rename@e").await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let renamed = store.rename_user(&u.id, "Renée").await.unwrap().unwrap();
        assert_eq!(renamed.name, "Renée");
        assert!(renamed.updated_at > u.updated_at);
        assert_eq!(renamed.created_at, u.created_at);
        assert!(store.rename_user(&ObjectId::new(), "x").await.unwrap().is_none());
    }

    pub async fn token_version_bumps(store: Arc<dyn Store>) {
        let u = store.find_or_create_user(&email("tv@example.com"), "tv@examp").await.unwrap();
        let bumped = store.bump_token_version(&u.id).await.unwrap().unwrap();
        assert_eq!(bumped.token_version, u.token_version + 1);
        assert!(store.bump_token_version(&ObjectId::new()).await.unwrap().is_none());
    }

    pub async fn list_is_in_creation_order(store: Arc<dyn Store>) {
        let mut expected = Vec::new();
        for i in 0..5 {
            expected.push(store.find_or_create_user(&email(&format!("list{i}@example.com")), "n").await.unwrap().id);
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        let listed: Vec<_> =
            store.list_users().await.unwrap().into_iter().map(|u| u.id).filter(|id| expected.contains(id)).collect();
        assert_eq!(listed, expected);
        store.ping().await.unwrap();
    }

    async fn two_users(store: &Arc<dyn Store>, tag: &str) -> (User, User) {
        let a = store.find_or_create_user(&email(&format!("{tag}-a@example.com")), "a").await.unwrap();
        let b = store.find_or_create_user(&email(&format!("{tag}-b@example.com")), "b").await.unwrap();
        (a, b)
    }

    fn message(chat: ObjectId, sender: ObjectId, text: &str, at: i64) -> Message {
        Message {
            id: ObjectId::new(),
            chat_id: chat,
            sender,
            text: text.into(),
            image: None,
            kind: MessageKind::Text,
            seen: false,
            seen_at: None,
            created_at: at,
            updated_at: at,
        }
    }

    async fn post(store: &Arc<dyn Store>, chat: ObjectId, sender: ObjectId, text: &str, at: i64) -> Message {
        let m = message(chat, sender, text, at);
        store.add_message(&m, &LatestMessage { text: text.into(), sender }).await.unwrap();
        m
    }

    pub async fn one_chat_per_pair_whoever_opens_it(store: Arc<dyn Store>) {
        let (a, b) = two_users(&store, "pair").await;
        let tasks: Vec<_> = (0..10)
            .map(|i| {
                let store = store.clone();
                let (x, y) = if i % 2 == 0 { (a.id, b.id) } else { (b.id, a.id) };
                tokio::spawn(async move { store.open_chat(&x, &y).await.unwrap() })
            })
            .collect();
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        assert_eq!(results.iter().filter(|(_, created)| *created).count(), 1, "exactly one creation");
        assert!(results.windows(2).all(|w| w[0].0.id == w[1].0.id));
        let chat = store.chat_by_id(&results[0].0.id).await.unwrap().unwrap();
        assert!(chat.has_member(&a.id) && chat.has_member(&b.id));
        assert_eq!(chat.latest_message, None);
        assert!(store.chat_by_id(&ObjectId::new()).await.unwrap().is_none());
    }

    pub async fn messages_update_the_chat_and_read_back_in_order(store: Arc<dyn Store>) {
        let (a, b) = two_users(&store, "msgs").await;
        let (chat, _) = store.open_chat(&a.id, &b.id).await.unwrap();
        let base = now_ms();
        let m1 = post(&store, chat.id, a.id, "one", base + 1).await;
        let m2 = post(&store, chat.id, b.id, "two", base + 2).await;
        let m3 = post(&store, chat.id, a.id, "three", base + 2).await;
        let updated = store.chat_by_id(&chat.id).await.unwrap().unwrap();
        assert_eq!(updated.latest_message, Some(LatestMessage { text: "three".into(), sender: a.id }));
        assert_eq!(updated.updated_at, base + 2);
        let all = store.messages(&chat.id, &HistoryPage::default()).await.unwrap();
        assert_eq!(all, vec![m1.clone(), m2.clone(), m3.clone()]);
        let newest = store.messages(&chat.id, &HistoryPage { before: None, limit: Some(2) }).await.unwrap();
        assert_eq!(newest, vec![m2.clone(), m3.clone()]);
        let before = store.messages(&chat.id, &HistoryPage { before: Some(m3.id), limit: Some(1) }).await.unwrap();
        assert_eq!(before, vec![m2.clone()]);
        let from_elsewhere =
            store.messages(&chat.id, &HistoryPage { before: Some(ObjectId::new()), limit: None }).await.unwrap();
        assert!(from_elsewhere.is_empty(), "a `before` outside the chat selects nothing");
    }

    pub async fn mark_seen_marks_only_the_other_sides_unseen_messages(store: Arc<dyn Store>) {
        let (a, b) = two_users(&store, "seen").await;
        let (chat, _) = store.open_chat(&a.id, &b.id).await.unwrap();
        let base = now_ms();
        let from_a1 = post(&store, chat.id, a.id, "a1", base).await;
        let from_b = post(&store, chat.id, b.id, "b1", base + 1).await;
        let from_a2 = post(&store, chat.id, a.id, "a2", base + 2).await;
        let mut marked = store.mark_seen(&chat.id, &b.id, base + 10).await.unwrap();
        marked.sort();
        let mut expected = vec![from_a1.id, from_a2.id];
        expected.sort();
        assert_eq!(marked, expected);
        assert!(store.mark_seen(&chat.id, &b.id, base + 20).await.unwrap().is_empty(), "nothing twice");
        let all = store.messages(&chat.id, &HistoryPage::default()).await.unwrap();
        for m in &all {
            if m.id == from_b.id {
                assert!(!m.seen && m.seen_at.is_none());
            } else {
                assert!(m.seen);
                assert_eq!(m.seen_at, Some(base + 10));
            }
        }
    }

    pub async fn chat_list_has_peers_unseen_counts_and_activity_order(store: Arc<dyn Store>) {
        let (a, b) = two_users(&store, "list").await;
        let c = store.find_or_create_user(&email("list-c@example.com"), "c").await.unwrap();
        let (ab, _) = store.open_chat(&a.id, &b.id).await.unwrap();
        let (ca, _) = store.open_chat(&c.id, &a.id).await.unwrap();
        let base = now_ms() + 1000;
        post(&store, ab.id, b.id, "hi", base).await;
        post(&store, ab.id, b.id, "there", base + 1).await;
        post(&store, ca.id, a.id, "mine", base + 2).await;
        let list = store.chats_for_user(&a.id).await.unwrap();
        let ids: Vec<_> = list.iter().map(|s| s.chat.id).collect();
        assert_eq!(ids, vec![ca.id, ab.id], "most recent activity first");
        assert_eq!(list[0].other.as_ref().map(|u| u.id), Some(c.id));
        assert_eq!(list[0].unseen, 0, "own messages are never unseen");
        assert_eq!(list[1].other.as_ref().map(|u| u.id), Some(b.id));
        assert_eq!(list[1].unseen, 2);
        let for_b = store.chats_for_user(&b.id).await.unwrap();
        assert_eq!(for_b.len(), 1);
        assert_eq!(for_b[0].unseen, 0);
        assert!(store.chats_for_user(&ObjectId::new()).await.unwrap().is_empty());
    }
}

macro_rules! store_contract {
    ($backend:ident, $make:expr) => {
        mod $backend {
            use super::*;
            store_contract!(@case $make, find_or_create_is_idempotent_and_atomic, users_round_trip,
                rename_updates_name_and_timestamp, token_version_bumps, list_is_in_creation_order,
                one_chat_per_pair_whoever_opens_it, messages_update_the_chat_and_read_back_in_order,
                mark_seen_marks_only_the_other_sides_unseen_messages,
                chat_list_has_peers_unseen_counts_and_activity_order);
        }
    };
    (@case $make:expr, $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (store, _guard): (Arc<dyn Store>, Guard) = $make().await;
                suite::$case(store).await;
            }
        )*
    };
}

async fn sqlite() -> (Arc<dyn Store>, Guard) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("confab.db")).unwrap();
    (Arc::new(store), Box::new(dir))
}

store_contract!(sqlite_store, sqlite);

/// A MongoDB server: the one the test command starts (SecantusDB, a MongoDB-compatible
/// test server) or any real MongoDB in `CONFAB_TEST_MONGO_URI`. Each test gets its own
/// database, dropped afterwards.
async fn mongo() -> (Arc<dyn Store>, Guard) {
    let (uri, _) = common::backends::mongo_uri_for_new_database();
    let store = Arc::new(confab::store::mongo::MongoStore::connect(&uri).await.unwrap());
    store.ensure_indexes().await.expect("MongoDB is running (packaging/test.sh starts a test server)");
    (store.clone(), Box::new(DropDatabase(Some(store))))
}

struct DropDatabase(Option<Arc<confab::store::mongo::MongoStore>>);

impl Drop for DropDatabase {
    fn drop(&mut self) {
        if let Some(store) = self.0.take() {
            // The test's runtime is ending; drop the database from a short-lived one.
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                let _ = rt.block_on(store.drop_database());
            })
            .join()
            .ok();
        }
    }
}

store_contract!(mongo_store, mongo);

#[test]
fn sqlite_migrations_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("confab.db");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let id = rt.block_on(async {
        let store = SqliteStore::open(&path).unwrap();
        store.find_or_create_user(&Email::parse("keep@example.com").unwrap(), "keep@exa").await.unwrap().id
    });
    rt.block_on(async {
        let reopened = SqliteStore::open(&path).unwrap();
        assert!(reopened.user_by_id(&id).await.unwrap().is_some());
    });
}

/// A database written by the original (member ids as strings, no pairKey, no
/// tokenVersion, `latestMessage` absent) is read as it is.
#[tokio::test]
async fn mongo_reads_the_originals_documents() {
    use mongodb::bson::{doc, oid::ObjectId as Oid, DateTime};
    let (uri, database) = common::backends::mongo_uri_for_new_database();
    let client = mongodb::Client::with_uri_str(common::backends::mongo_base()).await.unwrap();
    let db = client.database(&database);
    let (alice, bob, chat) = (Oid::new(), Oid::new(), Oid::new());
    let now = DateTime::now();
    let users = db.collection::<mongodb::bson::Document>("users");
    users.insert_one(doc! { "_id": alice, "name": "alice@ex", "email": "alice@example.com", "createdAt": now, "updatedAt": now, "__v": 0 }).await.unwrap();
    users.insert_one(doc! { "_id": bob, "name": "bob@exam", "email": "bob@example.com", "createdAt": now, "updatedAt": now, "__v": 0 }).await.unwrap();
    db.collection::<mongodb::bson::Document>("chats")
        .insert_one(
            doc! { "_id": chat, "users": [alice.to_hex(), bob.to_hex()], "createdAt": now, "updatedAt": now, "__v": 0 },
        )
        .await
        .unwrap();
    let store = confab::store::mongo::MongoStore::connect(&uri).await.unwrap();
    store.ensure_indexes().await.unwrap();
    let alice_id = ObjectId::parse(&alice.to_hex()).unwrap();
    let bob_id = ObjectId::parse(&bob.to_hex()).unwrap();
    let me = store.user_by_id(&alice_id).await.unwrap().unwrap();
    assert_eq!((me.name.as_str(), me.token_version), ("alice@ex", 0));
    let (found, created) = store.open_chat(&bob_id, &alice_id).await.unwrap();
    assert!(!created, "the original's chat is found, not duplicated");
    assert_eq!(found.id.to_hex(), chat.to_hex());
    assert_eq!(found.latest_message, None);
    let list = store.chats_for_user(&alice_id).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].other.as_ref().map(|u| u.id), Some(bob_id));
    store.drop_database().await.unwrap();
}
