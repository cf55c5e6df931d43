//! The Store contract: the same cases run against every store adapter.

use std::sync::Arc;

use confab::domain::{Email, ObjectId};
use confab::ports::Store;
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
}

macro_rules! store_contract {
    ($backend:ident, $make:expr) => {
        mod $backend {
            use super::*;
            store_contract!(@case $make, find_or_create_is_idempotent_and_atomic, users_round_trip,
                rename_updates_name_and_timestamp, token_version_bumps, list_is_in_creation_order);
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
