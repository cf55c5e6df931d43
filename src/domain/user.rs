use super::{Email, Invalid, ObjectId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: ObjectId,
    pub name: String,
    pub email: Email,
    pub created_at: i64,
    pub updated_at: i64,
    /// Bumped to revoke every token issued before; tokens carry the version they were issued at.
    pub token_version: i64,
}

/// A display name: 1–64 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserName(String);

const MAX_NAME_CHARS: usize = 64;

impl UserName {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(Invalid::new("Name is required"));
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(Invalid::new(format!("Name must be at most {MAX_NAME_CHARS} characters")));
        }
        if name.chars().any(char::is_control) {
            return Err(Invalid::new("Name must not contain control characters"));
        }
        Ok(Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// The original names a new user after the first 8 characters of the email
/// (`alice@example.com` → `alice@ex`); counted in characters, not bytes.
pub fn default_name_for(email: &Email) -> String {
    email.as_str().chars().take(8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_name_is_first_eight_chars() {
        let email = Email::parse("alice@example.com").unwrap();
        assert_eq!(default_name_for(&email), "alice@ex");
        let short = Email::parse("é@b.co").unwrap();
        assert_eq!(default_name_for(&short), "é@b.co");
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(UserName::parse("  Bob ").unwrap().as_str(), "Bob");
        assert!(UserName::parse("   ").is_err());
        assert!(UserName::parse(&"x".repeat(65)).is_err());
        assert!(UserName::parse(&"é".repeat(64)).is_ok());
        assert!(UserName::parse("a\u{0}b").is_err());
    }
}
