//! Message content: the four `content.type`s of API.md, their limits, and the canonical
//! text that decides whether two sends carry "the same content" (idempotency).
//!
//! Deserializing a [`Content`] checks its shape (type, fields, their JSON types);
//! [`Content::validate`] checks the limits, one of which (`max_text_bytes`) is
//! configuration. Unknown fields are ignored and dropped, so they never make two
//! otherwise equal contents differ.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::Error;

/// The largest `custom.data`, serialized (API.md: "any JSON object ≤ 16 KiB").
pub const MAX_CUSTOM_BYTES: usize = 16 * 1024;
/// The longest media `url`, in bytes.
pub const MAX_URL_BYTES: usize = 2048;
/// The longest media `name`, in bytes.
pub const MAX_NAME_BYTES: usize = 256;
/// The longest media `mime`, in bytes.
pub const MAX_MIME_BYTES: usize = 128;

/// The body of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Content {
    /// `{"type": "text", "text": "hi"}`: non-empty, at most `max_text_bytes` of UTF-8.
    Text {
        /// The text.
        text: String,
    },
    /// `{"type": "image", "url": ..., ...}`: a reference; the media is stored elsewhere.
    Image(Media),
    /// `{"type": "file", "url": ..., ...}`: a reference; the media is stored elsewhere.
    File(Media),
    /// `{"type": "custom", "data": {...}}`: any JSON object of at most 16 KiB.
    Custom {
        /// The application's object.
        data: Map<String, Value>,
    },
}

/// A reference to media stored elsewhere. Only `url` is required: API.md lists the
/// fields without saying which are optional, and a sender may not know a size or type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Media {
    /// An `http://` or `https://` URL of at most 2048 bytes.
    pub url: String,
    /// A display name of at most 256 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Size in bytes; a JSON integer from 0 to `i64::MAX`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    /// A MIME type of at most 128 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime: Option<String>,
}

impl Content {
    /// Checks the limits: text non-empty and ≤ `max_text_bytes` (over: `TooLarge`),
    /// media fields, custom data ≤ 16 KiB serialized (over: `TooLarge`).
    pub fn validate(&self, max_text_bytes: usize) -> Result<(), Error> {
        match self {
            Content::Text { text } if text.is_empty() => {
                Err(Error::BadRequest("content.text must not be empty".into()))
            }
            Content::Text { text } if text.len() > max_text_bytes => Err(Error::TooLarge(format!(
                "content.text is over {max_text_bytes} bytes"
            ))),
            Content::Text { .. } => Ok(()),
            Content::Image(media) | Content::File(media) => media.validate(),
            Content::Custom { data } => {
                let size = serde_json::to_string(data)
                    .map(|s| s.len())
                    .unwrap_or(usize::MAX);
                if size > MAX_CUSTOM_BYTES {
                    Err(Error::TooLarge(format!(
                        "content.data is over {MAX_CUSTOM_BYTES} bytes"
                    )))
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Parses and validates content from a JSON value (the edge's entry point).
    pub fn from_value(value: Value, max_text_bytes: usize) -> Result<Content, Error> {
        let content: Content = serde_json::from_value(value)
            .map_err(|e| Error::BadRequest(format!("invalid content: {e}")))?;
        content.validate(max_text_bytes)?;
        Ok(content)
    }

    /// A stable JSON text of this content: object keys sorted at every level, no
    /// whitespace, unknown fields gone. Two sends carry the same content iff their
    /// canonical texts are equal. Independent of serde_json's `preserve_order` feature,
    /// which another crate in the build could switch on.
    pub fn canonical_json(&self) -> String {
        // Serializing these types to a Value cannot fail: every map key is a string.
        let value = serde_json::to_value(self).unwrap_or(Value::Null);
        let mut out = String::new();
        write_canonical(&value, &mut out);
        out
    }

    /// Reads back content stored as [`Content::canonical_json`]. Shape only: the limits
    /// held when it was stored.
    pub fn from_stored(json: &str) -> Result<Content, Error> {
        serde_json::from_str(json)
            .map_err(|e| Error::Internal(format!("stored content does not parse: {e}")))
    }

    /// The API name of this content's type.
    pub fn type_name(&self) -> &'static str {
        match self {
            Content::Text { .. } => "text",
            Content::Image(_) => "image",
            Content::File(_) => "file",
            Content::Custom { .. } => "custom",
        }
    }
}

impl Media {
    fn validate(&self) -> Result<(), Error> {
        let scheme_ok = ["http://", "https://"].iter().any(|scheme| {
            self.url.len() > scheme.len()
                && self.url.as_bytes()[..scheme.len()].eq_ignore_ascii_case(scheme.as_bytes())
        });
        if !scheme_ok
            || self
                .url
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(Error::BadRequest(
                "content.url must be an http(s) URL".into(),
            ));
        }
        check_len("content.url", &self.url, MAX_URL_BYTES)?;
        if let Some(name) = &self.name {
            check_len("content.name", name, MAX_NAME_BYTES)?;
        }
        if let Some(mime) = &self.mime {
            check_len("content.mime", mime, MAX_MIME_BYTES)?;
        }
        match self.size {
            Some(size) if size < 0 => Err(Error::BadRequest(
                "content.size must not be negative".into(),
            )),
            _ => Ok(()),
        }
    }
}

/// A field over its length limit is an invalid field (400), not a too-large body: only
/// the body and the text have 413 in API.md.
fn check_len(field: &str, value: &str, max: usize) -> Result<(), Error> {
    if value.len() > max {
        Err(Error::BadRequest(format!("{field} is over {max} bytes")))
    } else {
        Ok(())
    }
}

/// Writes `value` as JSON with object keys in byte order. Recursion is bounded: values
/// come from serde_json's parser, which stops at 128 levels.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests;
