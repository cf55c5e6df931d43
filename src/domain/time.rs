use chrono::{DateTime, SecondsFormat, Utc};

/// Milliseconds since the Unix epoch: the unit every store keeps timestamps in.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// `2025-08-01T10:20:30.123Z`, the exact shape mongoose gives the original's clients.
pub fn iso8601(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    #[test]
    fn iso8601_has_millis_and_z() {
        assert_eq!(super::iso8601(1_754_043_630_123), "2025-08-01T10:20:30.123Z");
    }
}
