//! Free-form image properties, as the image API sets them (Glance's additional properties):
//! a key and a string value. The console's own attributes have their own fields, so their
//! names are not free-form properties.

use super::validation::{FieldError, describe_char};

pub mod field {
    pub const PROPERTIES: &str = "properties";
}

/// Most free-form properties on one image (Glance's default `image_property_quota`).
pub const MAX_PROPERTIES: usize = 128;

/// Names that are image fields or mapped attributes, never free-form properties.
pub const RESERVED_KEYS: [&str; 38] = [
    "id",
    "name",
    "status",
    "visibility",
    "protected",
    "os_hidden",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "owner",
    "size",
    "virtual_size",
    "min_disk",
    "min_ram",
    "disk_format",
    "container_format",
    "created_at",
    "updated_at",
    "tags",
    "direct_url",
    "locations",
    "self",
    "file",
    "schema",
    "stores",
    "os_distro",
    "os_type",
    "os_version",
    "architecture",
    "hw_firmware_type",
    "hw_qemu_guest_agent",
    "description",
    "img_signature",
    "img_signature_hash_method",
    "img_signature_key_type",
    "img_signature_certificate_uuid",
    "deprecation_time",
    "source_image_id",
];

/// A property's key: 1–255 characters, no control characters, not a reserved name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PropertyKey(String);

impl PropertyKey {
    pub const MAX_CHARS: usize = 255;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let err = |m: String| Err(FieldError::new(field::PROPERTIES, m));
        if raw.is_empty() {
            return err("A property needs a name.".into());
        }
        let count = raw.chars().count();
        if count > Self::MAX_CHARS {
            return err(format!(
                "Property names must be at most {} characters ({count} given).",
                Self::MAX_CHARS
            ));
        }
        if let Some(bad) = raw.chars().find(|c| c.is_control()) {
            return err(format!(
                "Property names cannot contain {}.",
                describe_char(bad)
            ));
        }
        if RESERVED_KEYS.contains(&raw) {
            return err(format!(
                "'{raw}' is an image field, not a free-form property; set it as the field."
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A property's value: up to 1,024 characters, no control characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PropertyValue(String);

impl PropertyValue {
    pub const MAX_CHARS: usize = 1024;

    pub fn parse(key: &str, raw: &str) -> Result<Self, FieldError> {
        let err = |m: String| Err(FieldError::new(field::PROPERTIES, m));
        let count = raw.chars().count();
        if count > Self::MAX_CHARS {
            return err(format!(
                "The value of property '{key}' must be at most {} characters ({count} given).",
                Self::MAX_CHARS
            ));
        }
        if let Some(bad) = raw.chars().find(|c| c.is_control()) {
            return err(format!(
                "The value of property '{key}' cannot contain {}.",
                describe_char(bad)
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Refuses more than `MAX_PROPERTIES` properties on one image.
pub fn check_property_count(count: usize) -> Result<(), FieldError> {
    if count > MAX_PROPERTIES {
        return Err(FieldError::new(
            field::PROPERTIES,
            format!("An image can have at most {MAX_PROPERTIES} properties ({count} given)."),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(PropertyKey::parse("owner_specified.openstack.sha256").is_ok());
        assert!(PropertyKey::parse(&"k".repeat(255)).is_ok());
        assert!(PropertyKey::parse(&"k".repeat(256)).is_err());
        assert!(PropertyKey::parse("").is_err());
        assert!(PropertyKey::parse("a\nb").is_err());
        let reserved = PropertyKey::parse("min_ram").unwrap_err();
        assert!(reserved.message.contains("image field"), "{reserved}");
    }

    #[test]
    fn values() {
        assert!(PropertyValue::parse("k", "").is_ok());
        assert!(PropertyValue::parse("k", &"v".repeat(1024)).is_ok());
        let long = PropertyValue::parse("k", &"v".repeat(1025)).unwrap_err();
        assert!(long.message.contains("'k'"), "{long}");
        assert!(PropertyValue::parse("k", "a\u{0}").is_err());
        assert!(check_property_count(MAX_PROPERTIES).is_ok());
        assert!(check_property_count(MAX_PROPERTIES + 1).is_err());
    }
}
