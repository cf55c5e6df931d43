//! The Ephemeral contract: the same cases run against every adapter.

mod common;

use std::sync::Arc;
use std::time::Duration;

use confab::ephemeral::memory::MemoryEphemeral;
use confab::ephemeral::redis::RedisEphemeral;
use confab::ports::Ephemeral;

mod suite {
    use super::*;

    pub async fn set_get_delete(e: Arc<dyn Ephemeral>, p: &str) {
        let k = format!("{p}:a");
        assert_eq!(e.get(&k).await.unwrap(), None);
        e.set(&k, "1", Duration::from_secs(60)).await.unwrap();
        e.set(&k, "2", Duration::from_secs(60)).await.unwrap();
        assert_eq!(e.get(&k).await.unwrap().as_deref(), Some("2"));
        assert!(e.delete(&k).await.unwrap());
        assert!(!e.delete(&k).await.unwrap(), "second delete finds nothing");
        assert_eq!(e.get(&k).await.unwrap(), None);
        e.ping().await.unwrap();
    }

    pub async fn values_expire(e: Arc<dyn Ephemeral>, p: &str) {
        let k = format!("{p}:ttl");
        e.set(&k, "x", Duration::from_millis(1100)).await.unwrap();
        assert!(e.get(&k).await.unwrap().is_some());
        tokio::time::sleep(Duration::from_millis(1300)).await;
        assert_eq!(e.get(&k).await.unwrap(), None);
        assert!(!e.delete(&k).await.unwrap());
    }

    pub async fn set_if_absent_has_one_winner(e: Arc<dyn Ephemeral>, p: &str) {
        let k = format!("{p}:nx");
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let (e, k) = (e.clone(), k.clone());
                tokio::spawn(async move { e.set_if_absent(&k, &i.to_string(), Duration::from_secs(60)).await.unwrap() })
            })
            .collect();
        let mut winners = 0;
        for t in tasks {
            winners += t.await.unwrap() as usize;
        }
        assert_eq!(winners, 1);
    }

    pub async fn set_if_absent_after_expiry(e: Arc<dyn Ephemeral>, p: &str) {
        let k = format!("{p}:nx-exp");
        assert!(e.set_if_absent(&k, "a", Duration::from_millis(1000)).await.unwrap());
        assert!(!e.set_if_absent(&k, "b", Duration::from_millis(1000)).await.unwrap());
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert!(e.set_if_absent(&k, "c", Duration::from_secs(5)).await.unwrap());
        assert_eq!(e.get(&k).await.unwrap().as_deref(), Some("c"));
    }

    pub async fn increment_counts_atomically_in_a_fixed_window(e: Arc<dyn Ephemeral>, p: &str) {
        let k = format!("{p}:ctr");
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let (e, k) = (e.clone(), k.clone());
                tokio::spawn(async move { e.increment(&k, Duration::from_millis(1500)).await.unwrap() })
            })
            .collect();
        let mut seen = Vec::new();
        for t in tasks {
            seen.push(t.await.unwrap());
        }
        seen.sort();
        assert_eq!(seen, (1..=50).collect::<Vec<u64>>(), "every increment sees a distinct count");
        // Later increments do not extend the window.
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert_eq!(e.increment(&k, Duration::from_millis(1500)).await.unwrap(), 51);
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(e.increment(&k, Duration::from_secs(5)).await.unwrap(), 1, "a new window starts at 1");
    }

    pub async fn add_sums_and_get_many_reads_in_order(e: Arc<dyn Ephemeral>, p: &str) {
        let (a, b, missing) = (format!("{p}:sum-a"), format!("{p}:sum-b"), format!("{p}:sum-none"));
        assert_eq!(e.add(&a, 5, Duration::from_millis(1500)).await.unwrap(), 5);
        assert_eq!(e.add(&a, 3, Duration::from_secs(60)).await.unwrap(), 8);
        assert_eq!(e.increment(&a, Duration::from_secs(60)).await.unwrap(), 9, "increment is add 1");
        assert_eq!(e.add(&b, 2, Duration::from_secs(60)).await.unwrap(), 2);
        assert!(e.add(&b, 0, Duration::from_secs(60)).await.is_err(), "adding nothing is a mistake");
        let got = e.get_many(&[b.clone(), missing.clone(), a.clone()]).await.unwrap();
        assert_eq!(got, [Some("2".to_string()), None, Some("9".to_string())]);
        assert!(e.get_many(&[]).await.unwrap().is_empty());
        // The first add set the window; later adds did not extend it.
        tokio::time::sleep(Duration::from_millis(1700)).await;
        assert_eq!(e.get_many(&[a]).await.unwrap(), [None]);
    }
}

macro_rules! ephemeral_contract {
    ($backend:ident, $make:expr) => {
        mod $backend {
            use super::*;
            ephemeral_contract!(@case $make, set_get_delete, values_expire, set_if_absent_has_one_winner,
                set_if_absent_after_expiry, increment_counts_atomically_in_a_fixed_window,
                add_sums_and_get_many_reads_in_order);
        }
    };
    (@case $make:expr, $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let e: Arc<dyn Ephemeral> = $make().await;
                let prefix = format!("test:{}", confab::domain::ObjectId::new());
                suite::$case(e, &prefix).await;
            }
        )*
    };
}

async fn memory() -> Arc<dyn Ephemeral> {
    Arc::new(MemoryEphemeral::new())
}

ephemeral_contract!(memory_ephemeral, memory);

use common::backends::redis_url;

async fn redis() -> Arc<dyn Ephemeral> {
    let prefix = format!("confab-test:{}:", confab::domain::ObjectId::new());
    let e = RedisEphemeral::connect(&redis_url(), &prefix).unwrap();
    e.wait_connected(Duration::from_secs(5)).await.expect("Redis is running (packaging/test.sh starts it)");
    Arc::new(e)
}

ephemeral_contract!(redis_ephemeral, redis);

#[tokio::test]
async fn redis_keys_carry_the_prefix_and_expire() {
    let prefix = format!("confab-test:{}:", confab::domain::ObjectId::new());
    let e = RedisEphemeral::connect(&redis_url(), &prefix).unwrap();
    e.wait_connected(Duration::from_secs(5)).await.unwrap();
    e.set("otp:a@example.com", "hash", Duration::from_secs(30)).await.unwrap();
    let client = redis::Client::open(redis_url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let ttl: i64 = redis::cmd("PTTL").arg(format!("{prefix}otp:a@example.com")).query_async(&mut c).await.unwrap();
    assert!(ttl > 25_000 && ttl <= 30_000, "{ttl}");
}

#[tokio::test]
async fn unreachable_redis_answers_unavailable_instead_of_hanging() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let e = RedisEphemeral::connect(&format!("redis://127.0.0.1:{port}"), "x:").unwrap();
    let started = std::time::Instant::now();
    let err = e.get("k").await.unwrap_err();
    assert!(err.to_string().contains("not connected"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(e.wait_connected(Duration::from_millis(300)).await.is_err());
}
