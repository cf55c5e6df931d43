//! Who is online: every connection of a user is counted, and a user is offline only when
//! the last one closes. Changes are coalesced into at most one `getOnlineUser` broadcast
//! per window, so N users connecting cost O(N) work, not O(N²) as in the original.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;

use crate::domain::{now_ms, ObjectId};

#[derive(Default)]
pub struct Presence {
    online: Mutex<HashMap<ObjectId, Online>>,
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

    pub fn online_ids(&self) -> Vec<String> {
        self.online.lock().unwrap().keys().map(ObjectId::to_hex).collect()
    }

    pub fn snapshot(&self) -> Vec<(ObjectId, Online)> {
        self.online.lock().unwrap().iter().map(|(id, o)| (*id, *o)).collect()
    }

    pub fn is_online(&self, user: &ObjectId) -> bool {
        self.online.lock().unwrap().contains_key(user)
    }

    /// Waits for the next change. A change made while nobody waits is kept, so none is lost.
    pub async fn wait_for_change(&self) {
        self.changed.notified().await;
    }
}

/// Picks the pause before the next broadcast: at least `base`, and more when broadcasts
/// get expensive (large online lists), so the server never spends most of its time
/// re-sending the list.
pub fn next_window(base: Duration, last_broadcast: Duration) -> Duration {
    base.max(last_broadcast * 4).min(Duration::from_secs(5))
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

    #[tokio::test]
    async fn changes_are_not_lost_between_waits() {
        let p = Presence::default();
        p.connected(ObjectId::new());
        tokio::time::timeout(Duration::from_millis(100), p.wait_for_change()).await.expect("stored change is seen");
    }
}
