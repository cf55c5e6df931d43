//! Request and response values described exactly in the OpenAPI spec, without giving up
//! the original's error messages.
//!
//! poem-openapi's `String` accepts `false` or `12` and hands the handler `"false"`, and
//! a field must be `Option` for a missing one to reach the handler (which then answers
//! with the original's words, e.g. `Email and OTP Required`), so the spec called
//! required fields optional. [`Field`] is declared required, with the pattern and
//! lengths the domain enforces, and always reaches the handler: missing, `null`, a
//! string, or anything else (refused with 400 as not a string).

use std::borrow::Cow;
use std::marker::PhantomData;

use poem::web::Field as PoemField;
use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use poem_openapi::types::{ParseFromJSON, ParseFromMultipartField, ParseResult, ToJSON, Type};
use serde_json::Value;

use crate::services::ServiceError;

/// What a request field looks like, for the spec.
pub trait FieldSpec: Send + Sync + 'static {
    /// The JSON key, for error messages.
    const KEY: &'static str;
    /// Whether the spec lists it as required.
    const REQUIRED: bool = true;
    fn describe(schema: &mut MetaSchema);
}

/// A JSON (or form) string field of a request; see the module docs.
pub struct Field<S> {
    value: Option<Value>,
    spec: PhantomData<S>,
}

impl<S: FieldSpec> std::fmt::Debug for Field<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Field({}: {:?})", S::KEY, self.value)
    }
}

impl<S: FieldSpec> Field<S> {
    pub fn new(value: Option<Value>) -> Self {
        Self { value, spec: PhantomData }
    }

    /// The string; `None` when missing or `null`; 400 for any other JSON type.
    pub fn text(&self) -> Result<Option<&str>, ServiceError> {
        match &self.value {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ServiceError::BadRequest(format!("`{}` must be a string", S::KEY))),
        }
    }
}

impl<S: FieldSpec> Type for Field<S> {
    const IS_REQUIRED: bool = S::REQUIRED;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "string".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        let mut schema = MetaSchema::new("string");
        S::describe(&mut schema);
        MetaSchemaRef::Inline(Box::new(schema))
    }

    fn as_raw_value(&self) -> Option<&Self> {
        Some(self)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl<S: FieldSpec> ParseFromJSON for Field<S> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        Ok(Self::new(value))
    }
}

/// Only for the derive's sake: request fields are never written out.
impl<S: FieldSpec> ToJSON for Field<S> {
    fn to_json(&self) -> Option<Value> {
        self.value.clone()
    }
}

impl<S: FieldSpec> ParseFromMultipartField for Field<S> {
    async fn parse_from_multipart(field: Option<PoemField>) -> ParseResult<Self> {
        match field {
            Some(field) => Ok(Self::new(Some(Value::String(field.text().await?)))),
            None => Ok(Self::new(None)),
        }
    }
}

/// An id: 24 hex digits. (Repeated as a literal where a derive attribute needs one.)
pub const OBJECT_ID_PATTERN: &str = "^[0-9a-fA-F]{24}$";

/// Exactly what [`crate::domain::Email::parse`] accepts: surrounding spaces (as Rust's
/// `trim` sees them: Python's `\s` also counts \x1c–\x1f), then a local
/// part of 1–64 characters and a dotted domain, without spaces, control characters,
/// `<>,;"()[]\` or a second `@`.
pub const EMAIL_PATTERN: &str = concat!(
    r#"^[^\S\x1c-\x1f]*[^\s\x00-\x1f\x7f-\x9f<>,;"()\[\]\\@]{1,64}"#,
    r#"@[^\s\x00-\x1f\x7f-\x9f<>,;"()\[\]\\@.]+(\.[^\s\x00-\x1f\x7f-\x9f<>,;"()\[\]\\@.]+)+[^\S\x1c-\x1f]*$"#
);

/// Exactly what [`crate::domain::UserName::parse`] accepts: 1–64 characters once
/// surrounding spaces are trimmed, no control characters.
pub const NAME_PATTERN: &str =
    r"^[^\S\x1c-\x1f]*[^\s\x00-\x1f\x7f-\x9f]([^\x00-\x1f\x7f-\x9f]{0,62}[^\s\x00-\x1f\x7f-\x9f])?[^\S\x1c-\x1f]*$";

macro_rules! spec {
    ($(#[$doc:meta])* $name:ident, $key:literal, required: $required:literal, |$schema:ident| $describe:block) => {
        $(#[$doc])*
        pub struct $name;
        impl FieldSpec for $name {
            const KEY: &'static str = $key;
            const REQUIRED: bool = $required;
            fn describe($schema: &mut MetaSchema) $describe
        }
    };
}

spec!(
    /// `email`: where the code goes. Trimmed and lowercased before use.
    EmailSpec, "email", required: true, |s| {
        s.max_length = Some(254);
        s.pattern = Some(EMAIL_PATTERN.into());
        s.example = Some("alice@example.com".into());
    }
);

spec!(
    /// `otp`: the 6-digit code, as a string.
    OtpSpec, "otp", required: true, |s| {
        s.pattern = Some("^[0-9]{6}$".into());
        s.example = Some("123456".into());
    }
);

spec!(
    /// `name`: 1–64 characters once trimmed, no control characters.
    NameSpec, "name", required: true, |s| {
        s.pattern = Some(NAME_PATTERN.into());
        s.example = Some("Alice".into());
    }
);

spec!(
    /// `otherUserId`: the user to chat with.
    OtherUserSpec, "otherUserId", required: true, |s| {
        s.pattern = Some(OBJECT_ID_PATTERN.into());
        s.example = Some("66ab1c2d3e4f5a6b7c8d9e0f".into());
    }
);

spec!(
    /// `userId`: sent by the original web client (its own id) and ignored.
    CallerIdSpec, "userId", required: false, |s| {
        s.pattern = Some(OBJECT_ID_PATTERN.into());
    }
);

spec!(
    /// `chatId`: the chat to post in.
    ChatIdSpec, "chatId", required: true, |s| {
        s.pattern = Some(OBJECT_ID_PATTERN.into());
        s.example = Some("66ab1c2d3e4f5a6b7c8d9e10".into());
    }
);

spec!(
    /// `text` of a JSON message: something other than spaces, up to 4000 characters.
    TextSpec, "text", required: true, |s| {
        s.min_length = Some(1);
        s.max_length = Some(4000);
        s.pattern = Some(r"\S".into());
        s.example = Some("hello".into());
    }
);

spec!(
    /// `text` of a form: optional with an image (a caption), up to 4000 characters.
    CaptionSpec, "text", required: false, |s| {
        s.max_length = Some(4000);
    }
);

/// An id in the path or query: declared as 24 hex digits; a malformed one reaches the
/// handler, which refuses it with `Invalid id: …` like every other id.
#[derive(Debug, Clone)]
pub struct IdParam(pub String);

impl Type for IdParam {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "string(objectid)".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        let mut schema = MetaSchema::new("string");
        schema.pattern = Some(OBJECT_ID_PATTERN.into());
        schema.example = Some("66ab1c2d3e4f5a6b7c8d9e0f".into());
        MetaSchemaRef::Inline(Box::new(schema))
    }

    fn as_raw_value(&self) -> Option<&Self> {
        Some(self)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl poem_openapi::types::ParseFromParameter for IdParam {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        Ok(Self(value.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_reach_the_handler_whatever_was_sent() {
        let parse = |v: Option<Value>| Field::<EmailSpec>::parse_from_json(v).unwrap();
        assert_eq!(parse(None).text().unwrap(), None);
        assert_eq!(parse(Some(Value::Null)).text().unwrap(), None);
        assert_eq!(parse(Some("a@b.co".into())).text().unwrap(), Some("a@b.co"));
        let refused = parse(Some(Value::Bool(false))).text().unwrap_err();
        assert_eq!(refused.to_string(), "`email` must be a string");
    }

    #[test]
    fn the_email_pattern_promises_no_more_than_the_domain_accepts() {
        // Python-style checks are what schemathesis runs; here a few edge cases by hand.
        for ok in ["a@b.co", "first.last+tag@sub.example.org", "x_y@a-b.cd"] {
            assert!(crate::domain::Email::parse(ok).is_ok(), "{ok}");
        }
        let schema = Field::<EmailSpec>::schema_ref();
        let MetaSchemaRef::Inline(schema) = schema else { panic!("inline") };
        assert_eq!(schema.pattern.as_deref(), Some(EMAIL_PATTERN));
        const { assert!(Field::<EmailSpec>::IS_REQUIRED && !Field::<CallerIdSpec>::IS_REQUIRED) };
    }
}
