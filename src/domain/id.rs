use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use super::Invalid;

/// A MongoDB-style ObjectId (12 bytes, shown as 24 lowercase hex digits), used on every
/// backend so ids look the same to clients whatever the store.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId([u8; 12]);

impl ObjectId {
    /// Layout as in MongoDB: 4-byte big-endian seconds, 5 random bytes fixed per process,
    /// 3-byte counter starting at a random value, so ids sort roughly by creation time.
    pub fn new() -> Self {
        static PROCESS: OnceLock<[u8; 5]> = OnceLock::new();
        static COUNTER: OnceLock<AtomicU32> = OnceLock::new();
        let process = PROCESS.get_or_init(rand::random);
        let counter =
            COUNTER.get_or_init(|| AtomicU32::new(rand::random::<u32>() & 0x00ff_ffff)).fetch_add(1, Ordering::Relaxed);
        let secs = (super::now_ms() / 1000) as u32;
        let mut bytes = [0u8; 12];
        bytes[..4].copy_from_slice(&secs.to_be_bytes());
        bytes[4..9].copy_from_slice(process);
        bytes[9..].copy_from_slice(&counter.to_be_bytes()[1..]);
        Self(bytes)
    }

    pub fn parse(text: &str) -> Result<Self, Invalid> {
        let mut bytes = [0u8; 12];
        if text.len() != 24 || hex::decode_to_slice(text, &mut bytes).is_err() {
            return Err(Invalid::new(format!("Invalid id: {}", shorten(text))));
        }
        Ok(Self(bytes))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn bytes(&self) -> [u8; 12] {
        self.0
    }

    pub fn from_bytes(bytes: [u8; 12]) -> Self {
        Self(bytes)
    }
}

impl Default for ObjectId {
    fn default() -> Self {
        Self::new()
    }
}

/// Echoing a multi-kilobyte id back to the client helps nobody.
fn shorten(text: &str) -> String {
    if text.chars().count() <= 40 {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(40).collect::<String>())
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({})", self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_unique_24_hex_and_round_trip() {
        let a = ObjectId::new();
        let b = ObjectId::new();
        assert_ne!(a, b);
        assert_eq!(a.to_hex().len(), 24);
        assert_eq!(ObjectId::parse(&a.to_hex()).unwrap(), a);
    }

    #[test]
    fn parse_rejects_wrong_length_and_non_hex() {
        assert!(ObjectId::parse("xyz").is_err());
        assert!(ObjectId::parse("66ab00000000000000000000a").is_err());
        assert!(ObjectId::parse("66ab0000000000000000000g").is_err());
        assert!(ObjectId::parse("66AB00000000000000000000").is_ok());
    }
}
