//! In-process ephemeral state for a single instance: a map with expiry times.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::ports::{BackendResult, Ephemeral};

#[derive(Default)]
pub struct MemoryEphemeral {
    entries: Arc<Mutex<HashMap<String, Entry>>>,
}

struct Entry {
    value: String,
    expires_at: Instant,
}

/// How often expired entries are swept; reads never see them regardless.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

impl MemoryEphemeral {
    /// Must be called inside a Tokio runtime: starts the sweeper, which stops when the
    /// map is dropped.
    pub fn new() -> Self {
        let this = Self::default();
        let weak: Weak<Mutex<HashMap<String, Entry>>> = Arc::downgrade(&this.entries);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            loop {
                tick.tick().await;
                let Some(entries) = weak.upgrade() else { break };
                let now = Instant::now();
                entries.lock().unwrap().retain(|_, e| e.expires_at > now);
            }
        });
        this
    }

    fn with_live<T>(&self, key: &str, f: impl FnOnce(&mut HashMap<String, Entry>, bool) -> T) -> T {
        let mut entries = self.entries.lock().unwrap();
        let live = match entries.get(key) {
            Some(e) if e.expires_at <= Instant::now() => {
                entries.remove(key);
                false
            }
            Some(_) => true,
            None => false,
        };
        f(&mut entries, live)
    }
}

fn entry(value: String, ttl: Duration) -> Entry {
    Entry { value, expires_at: Instant::now() + ttl }
}

#[async_trait]
impl Ephemeral for MemoryEphemeral {
    async fn set(&self, key: &str, value: &str, ttl: Duration) -> BackendResult<()> {
        self.entries.lock().unwrap().insert(key.to_string(), entry(value.to_string(), ttl));
        Ok(())
    }

    async fn set_if_absent(&self, key: &str, value: &str, ttl: Duration) -> BackendResult<bool> {
        Ok(self.with_live(key, |entries, live| {
            if !live {
                entries.insert(key.to_string(), entry(value.to_string(), ttl));
            }
            !live
        }))
    }

    async fn get(&self, key: &str) -> BackendResult<Option<String>> {
        Ok(self.with_live(key, |entries, live| live.then(|| entries[key].value.clone())))
    }

    async fn delete(&self, key: &str) -> BackendResult<bool> {
        Ok(self.with_live(key, |entries, live| {
            entries.remove(key);
            live
        }))
    }

    async fn add(&self, key: &str, by: u64, ttl: Duration) -> BackendResult<u64> {
        anyhow::ensure!(by > 0, "add needs a positive amount");
        self.with_live(key, |entries, live| {
            if !live {
                entries.insert(key.to_string(), entry(by.to_string(), ttl));
                return Ok(by);
            }
            let e = entries.get_mut(key).expect("live entry");
            let count: u64 = e.value.parse().map_err(|_| anyhow::anyhow!("{key} is not a counter"))?;
            e.value = (count + by).to_string();
            Ok(count + by)
        })
    }

    async fn get_many(&self, keys: &[String]) -> BackendResult<Vec<Option<String>>> {
        let mut values = Vec::with_capacity(keys.len());
        for key in keys {
            values.push(self.get(key).await?);
        }
        Ok(values)
    }

    async fn ping(&self) -> BackendResult<()> {
        Ok(())
    }
}
