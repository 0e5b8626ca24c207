//! Tags: up to 50 key/value pairs per image (the guides' limit), keys unique per image.

use serde::{Deserialize, Serialize};

use super::validation::{FieldError, FieldErrors, describe_char};

pub mod field {
    pub const TAG_KEY: &str = "tag_key";
    pub const TAG_VALUE: &str = "tag_value";
    pub const TAGS: &str = "tags";
}

/// Tags allowed per image.
pub const MAX_TAGS: usize = 50;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TagKey(String);

impl TagKey {
    pub const MAX_CHARS: usize = 128;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let err = |m: String| Err(FieldError::new(field::TAG_KEY, m));
        if raw.is_empty() {
            return err("Enter a tag key.".into());
        }
        let count = raw.chars().count();
        if count > Self::MAX_CHARS {
            return err(format!(
                "Tag key must be at most {} characters (it has {count}).",
                Self::MAX_CHARS
            ));
        }
        if let Some(bad) = raw.chars().find(|c| c.is_control()) {
            return err(format!("Tag key cannot contain {}.", describe_char(bad)));
        }
        if raw.trim() != raw {
            return err("Tag key cannot start or end with a space.".into());
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TagValue(String);

impl TagValue {
    pub const MAX_CHARS: usize = 256;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let count = raw.chars().count();
        if count > Self::MAX_CHARS {
            return Err(FieldError::new(
                field::TAG_VALUE,
                format!(
                    "Tag value must be at most {} characters (it has {count}).",
                    Self::MAX_CHARS
                ),
            ));
        }
        if let Some(bad) = raw.chars().find(|c| c.is_control()) {
            return Err(FieldError::new(
                field::TAG_VALUE,
                format!("Tag value cannot contain {}.", describe_char(bad)),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One validated tag.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Tag {
    pub key: TagKey,
    pub value: TagValue,
}

/// A tag as shown and sent: plain strings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagPair {
    pub key: String,
    pub value: String,
}

impl From<&Tag> for TagPair {
    fn from(tag: &Tag) -> Self {
        Self {
            key: tag.key.as_str().to_owned(),
            value: tag.value.as_str().to_owned(),
        }
    }
}

/// Validates a whole set of tags: each key and value, unique keys, at most 50. Errors for
/// row `i` use the field names `tag_key.i` / `tag_value.i` so a form can place them.
pub fn parse_tag_set(pairs: &[TagPair]) -> Result<Vec<Tag>, FieldErrors> {
    let mut errors = Vec::new();
    let mut tags: Vec<Tag> = Vec::new();
    if pairs.len() > MAX_TAGS {
        errors.push(FieldError::new(
            field::TAGS,
            format!(
                "An image can have at most {MAX_TAGS} tags ({} given).",
                pairs.len()
            ),
        ));
    }
    for (i, pair) in pairs.iter().enumerate() {
        let key = TagKey::parse(&pair.key)
            .map_err(|e| FieldError::new(&format!("{}.{i}", field::TAG_KEY), e.message));
        let value = TagValue::parse(&pair.value)
            .map_err(|e| FieldError::new(&format!("{}.{i}", field::TAG_VALUE), e.message));
        match (key, value) {
            (Ok(key), Ok(value)) => {
                if tags.iter().any(|t| t.key == key) {
                    errors.push(FieldError::new(
                        &format!("{}.{i}", field::TAG_KEY),
                        format!(
                            "Tag key '{}' is already used; keys must be unique.",
                            key.as_str()
                        ),
                    ));
                } else {
                    tags.push(Tag { key, value });
                }
            }
            (key, value) => errors.extend(key.err().into_iter().chain(value.err())),
        }
    }
    if errors.is_empty() {
        Ok(tags)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(k: &str, v: &str) -> TagPair {
        TagPair {
            key: k.into(),
            value: v.into(),
        }
    }

    #[test]
    fn key_and_value_boundaries() {
        assert!(TagKey::parse(&"k".repeat(128)).is_ok());
        assert_eq!(
            TagKey::parse(&"k".repeat(129)).unwrap_err().message,
            "Tag key must be at most 128 characters (it has 129)."
        );
        assert_eq!(TagKey::parse("").unwrap_err().message, "Enter a tag key.");
        assert!(TagValue::parse("").is_ok());
        assert!(TagValue::parse(&"v".repeat(256)).is_ok());
        assert!(TagValue::parse(&"v".repeat(257)).is_err());
        assert!(TagKey::parse("env\n").is_err());
        assert!(TagKey::parse(" env").is_err());
        assert!(TagKey::parse("環境").is_ok());
    }

    #[test]
    fn sets_have_unique_keys_and_at_most_fifty() {
        let fifty: Vec<_> = (0..50).map(|i| pair(&format!("k{i}"), "v")).collect();
        assert_eq!(parse_tag_set(&fifty).unwrap().len(), 50);
        let fifty_one: Vec<_> = (0..51).map(|i| pair(&format!("k{i}"), "v")).collect();
        let errors = parse_tag_set(&fifty_one).unwrap_err();
        assert_eq!(
            errors[0].message,
            "An image can have at most 50 tags (51 given)."
        );
        let duplicate = parse_tag_set(&[pair("env", "a"), pair("env", "b")]).unwrap_err();
        assert_eq!(duplicate[0].field, "tag_key.1");
        assert_eq!(
            duplicate[0].message,
            "Tag key 'env' is already used; keys must be unique."
        );
    }
}
