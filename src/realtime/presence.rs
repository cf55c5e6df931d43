//! Who is online: every connection of a user is counted, and a user is offline only when
//! the last one closes.
//!
//! The web client wants the whole list on every change, and the list grows with the
//! number of users, so each broadcast costs O(N²) bytes. The original sent one per
//! connect (O(N³) for a ramp of N users). Here changes are debounced: one broadcast
//! once changes pause, and during a sustained stream of changes at most one per
//! `max_wait`, which grows with the number of users online.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;

use socketioxide::socket::Sid;

use crate::domain::{now_ms, ObjectId};

#[derive(Default)]
pub struct Presence {
    online: Mutex<HashMap<ObjectId, Online>>,
    /// Sockets that connected since the last broadcast and still need the list (a
    /// second tab of a user already online changes nothing, but needs it too).
    newcomers: Mutex<Vec<Sid>>,
    changed: Notify,
}

#[derive(Debug, Clone, Copy)]
pub struct Online {
    pub connections: u32,
    /// When the first of the current connections opened (ms since the epoch).
    pub since: i64,
}

impl Presence {
    /// Returns true when this made the user come online.
    pub fn connected(&self, user: ObjectId) -> bool {
        let mut online = self.online.lock().unwrap();
        let entry = online.entry(user).or_insert(Online { connections: 0, since: now_ms() });
        entry.connections += 1;
        let came_online = entry.connections == 1;
        drop(online);
        if came_online {
            self.changed.notify_one();
        }
        came_online
    }

    /// Returns true when this made the user go offline.
    pub fn disconnected(&self, user: ObjectId) -> bool {
        let mut online = self.online.lock().unwrap();
        let went_offline = match online.get_mut(&user) {
            Some(entry) if entry.connections > 1 => {
                entry.connections -= 1;
                false
            }
            Some(_) => {
                online.remove(&user);
                true
            }
            None => false,
        };
        drop(online);
        if went_offline {
            self.changed.notify_one();
        }
        went_offline
    }

    /// `socket` has connected and must be sent the list, changed or not.
    pub fn needs_list(&self, socket: Sid) {
        self.newcomers.lock().unwrap().push(socket);
        self.changed.notify_one();
    }

    /// The sockets waiting for the list, emptied.
    pub fn take_newcomers(&self) -> Vec<Sid> {
        std::mem::take(&mut *self.newcomers.lock().unwrap())
    }

    pub fn online_ids(&self) -> Vec<String> {
        self.online.lock().unwrap().keys().map(ObjectId::to_hex).collect()
    }

    /// This instance's connections of `user`, if any.
    pub fn local(&self, user: &ObjectId) -> Option<Online> {
        self.online.lock().unwrap().get(user).copied()
    }

    pub fn is_online(&self, user: &ObjectId) -> bool {
        self.online.lock().unwrap().contains_key(user)
    }

    /// Waits for the next change. A change made while nobody waits is kept, so none is lost.
    pub async fn wait_for_change(&self) {
        self.changed.notified().await;
    }

    pub fn online_count(&self) -> usize {
        self.online.lock().unwrap().len()
    }

    /// Waits for a change, then for changes to pause for `quiet` (or `max_wait(n)` to pass
    /// since the first change), so a burst of connects becomes one broadcast.
    pub async fn settled_change(&self, quiet: Duration) {
        self.wait_for_change().await;
        let first = tokio::time::Instant::now();
        let max_wait = max_wait(self.online_count());
        loop {
            let left = max_wait.saturating_sub(first.elapsed());
            if left.is_zero() || tokio::time::timeout(quiet.min(left), self.wait_for_change()).await.is_err() {
                return;
            }
        }
    }
}

/// The longest a broadcast is held back during a stream of changes: 250 ms for a small
/// site, growing by 0.4 ms per online user up to 5 s.
pub fn max_wait(online: usize) -> Duration {
    (Duration::from_millis(250) + Duration::from_micros(400) * online as u32).min(Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_is_online_until_the_last_connection_closes() {
        let p = Presence::default();
        let u = ObjectId::new();
        assert!(p.connected(u));
        assert!(!p.connected(u), "second tab");
        assert!(!p.disconnected(u), "one tab left");
        assert!(p.is_online(&u));
        assert!(p.disconnected(u));
        assert!(!p.is_online(&u));
        assert!(!p.disconnected(u), "unknown users are ignored");
    }

    #[tokio::test(start_paused = true)]
    async fn bursts_become_one_settled_change() {
        let p = std::sync::Arc::new(Presence::default());
        let burst = {
            let p = p.clone();
            tokio::spawn(async move {
                for _ in 0..20 {
                    p.connected(ObjectId::new());
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
        };
        let started = tokio::time::Instant::now();
        p.settled_change(Duration::from_millis(100)).await;
        // The burst lasts ~200 ms, then 100 ms of quiet; max_wait(≤20) is ~258 ms.
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(250) && waited <= Duration::from_millis(310), "{waited:?}");
        burst.await.unwrap();
        assert_eq!(max_wait(10_000), Duration::from_millis(4250));
        assert_eq!(max_wait(1_000_000), Duration::from_secs(5));
    }

    #[tokio::test]
    async fn changes_are_not_lost_between_waits() {
        let p = Presence::default();
        p.connected(ObjectId::new());
        tokio::time::timeout(Duration::from_millis(100), p.wait_for_change()).await.expect("stored change is seen");
    }
}
