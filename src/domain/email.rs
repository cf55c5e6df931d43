use std::fmt;

use super::Invalid;

/// An email address, trimmed and lowercased so `A@x.com` and `a@x.com` are one user
/// (the original treated them as two).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

/// RFC 5321 caps a forward path at 254 characters (counted as sent, spaces included).
const MAX_LEN: usize = 254;

impl Email {
    /// Exactly what the API documents (`EMAIL_PATTERN` in `http::fields`): surrounding
    /// spaces allowed, at most 254 characters as sent.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(Invalid::new("Email is required"));
        }
        if raw.chars().count() > MAX_LEN || !looks_like_address(trimmed) {
            return Err(Invalid::new("Please enter a valid email address"));
        }
        Ok(Self(trimmed.to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Deliberately simple: one `@`, a non-empty local part, a dotted domain, no spaces or
/// control characters. The mail server is the real judge; this only stops obvious junk
/// before it costs a mail.
fn looks_like_address(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    let bad_char = |c: char| {
        c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';' | '"' | '(' | ')' | '[' | ']' | '\\')
    };
    !local.is_empty()
        && local.chars().count() <= 64
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !email.chars().any(bad_char)
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_lowercases() {
        assert_eq!(Email::parse("  Alice@Example.COM ").unwrap().as_str(), "alice@example.com");
    }

    #[test]
    fn rejects_junk() {
        for bad in
            ["", "   ", "alice", "alice@", "@example.com", "a@b", "a b@c.com", "a@@b.com", "a@b..com", "a@.b.com"]
        {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(300))).is_err());
    }
}
