use super::{Invalid, ObjectId};

/// A conversation between exactly two users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chat {
    pub id: ObjectId,
    /// Creator first, as the original stores them.
    pub users: [ObjectId; 2],
    pub latest_message: Option<LatestMessage>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Chat {
    pub fn has_member(&self, user: &ObjectId) -> bool {
        self.users.contains(user)
    }

    /// The member who is not `me` (None if `me` is not a member).
    pub fn other_member(&self, me: &ObjectId) -> Option<ObjectId> {
        match self.users {
            [a, b] if a == *me => Some(b),
            [a, b] if b == *me => Some(a),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatestMessage {
    pub text: String,
    pub sender: ObjectId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Text,
    Image,
}

impl MessageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Image => "image",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "text" => Some(Self::Text),
            "image" => Some(Self::Image),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub url: String,
    pub public_id: String,
    pub thumb_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: ObjectId,
    pub chat_id: ObjectId,
    pub sender: ObjectId,
    pub text: String,
    pub image: Option<Image>,
    pub kind: MessageKind,
    pub seen: bool,
    pub seen_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What the chat list shows for a message: the original's "📷 Image" for any image.
pub fn latest_text_for(message: &Message) -> String {
    match message.kind {
        MessageKind::Image => "📷 Image".to_string(),
        MessageKind::Text => message.text.clone(),
    }
}

/// Message text: at most 4000 characters. Blank text counts as no text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageText(String);

pub const MAX_TEXT_CHARS: usize = 4000;

impl MessageText {
    /// `None` for absent or blank text.
    pub fn parse(raw: Option<&str>) -> Result<Option<Self>, Invalid> {
        let Some(text) = raw.filter(|t| !t.trim().is_empty()) else { return Ok(None) };
        if text.chars().count() > MAX_TEXT_CHARS {
            return Err(Invalid::new(format!("Message text must be at most {MAX_TEXT_CHARS} characters")));
        }
        Ok(Some(Self(text.to_string())))
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_limits() {
        assert_eq!(MessageText::parse(None).unwrap(), None);
        assert_eq!(MessageText::parse(Some("  \n")).unwrap(), None);
        assert!(MessageText::parse(Some(&"é".repeat(4000))).unwrap().is_some());
        assert!(MessageText::parse(Some(&"x".repeat(4001))).is_err());
        // Text is kept as typed, surrounding spaces included.
        assert_eq!(MessageText::parse(Some(" hi ")).unwrap().unwrap().into_string(), " hi ");
    }

    #[test]
    fn other_member() {
        let (a, b, c) = (ObjectId::new(), ObjectId::new(), ObjectId::new());
        let chat = Chat { id: ObjectId::new(), users: [a, b], latest_message: None, created_at: 0, updated_at: 0 };
        assert_eq!(chat.other_member(&a), Some(b));
        assert_eq!(chat.other_member(&b), Some(a));
        assert_eq!(chat.other_member(&c), None);
    }
}
