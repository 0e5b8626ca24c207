//! Conversion on import: the format an image's bytes become once they have been received,
//! checked and inspected, and what is kept of the file that was sent.

use serde::{Deserialize, Serialize};

use super::image::DiskFormat;
use super::validation::FieldError;

pub mod field {
    /// Create Image's Convert to.
    pub const CONVERT_TO: &str = "convert_to";
}

/// What becomes of a disk image's format: kept as it arrived, or converted to qcow2 or raw.
/// An installation image (ISO) is never converted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConvertTo {
    #[default]
    Keep,
    Qcow2,
    Raw,
}

impl ConvertTo {
    pub const ALL: [ConvertTo; 3] = [ConvertTo::Keep, ConvertTo::Qcow2, ConvertTo::Raw];

    /// The value of the form, the `CONVERT_TO` setting and the image API: `none`, `qcow2`,
    /// `raw`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConvertTo::Keep => "none",
            ConvertTo::Qcow2 => "qcow2",
            ConvertTo::Raw => "raw",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ConvertTo::Keep => "Keep as uploaded",
            ConvertTo::Qcow2 => "qcow2",
            ConvertTo::Raw => "Raw",
        }
    }

    /// A value as sent; empty means "not chosen" (`None`: the console's default applies).
    /// `keep` is the form's spelling of `none`.
    pub fn parse(raw: &str) -> Result<Option<Self>, FieldError> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "" => Ok(None),
            "none" | "keep" => Ok(Some(ConvertTo::Keep)),
            "qcow2" => Ok(Some(ConvertTo::Qcow2)),
            "raw" => Ok(Some(ConvertTo::Raw)),
            other => Err(FieldError::new(
                field::CONVERT_TO,
                format!(
                    "Convert to must be none (keep as uploaded), qcow2 or raw (found \"{}\").",
                    other.chars().take(32).collect::<String>()
                ),
            )),
        }
    }

    /// The stored column is `as_str`, or `NULL` where nothing was chosen, which keeps the
    /// bytes as they arrive (an image API import may still choose).
    pub fn from_db(raw: Option<&str>) -> Self {
        match raw {
            Some("qcow2") => ConvertTo::Qcow2,
            Some("raw") => ConvertTo::Raw,
            _ => ConvertTo::Keep,
        }
    }

    /// The format the bytes become, if any.
    pub fn target(self) -> Option<DiskFormat> {
        match self {
            ConvertTo::Keep => None,
            ConvertTo::Qcow2 => Some(DiskFormat::Qcow2),
            ConvertTo::Raw => Some(DiskFormat::Raw),
        }
    }

    /// Whether bytes inspected as `format` are converted: a target other than their format,
    /// and never an installation image.
    pub fn converts(self, format: DiskFormat) -> bool {
        match self.target() {
            Some(target) => format != target && format != DiskFormat::Iso,
            None => false,
        }
    }
}

/// The file that was sent, as received and checked, kept on a converted image so its sender
/// can still verify what they sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFile {
    pub disk_format: DiskFormat,
    pub size_bytes: u64,
    pub sha512: String,
    pub md5: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_as_the_form_and_the_setting_spell_them() {
        assert_eq!(ConvertTo::parse(""), Ok(None));
        assert_eq!(ConvertTo::parse("keep"), Ok(Some(ConvertTo::Keep)));
        assert_eq!(ConvertTo::parse("none"), Ok(Some(ConvertTo::Keep)));
        assert_eq!(ConvertTo::parse(" QCOW2 "), Ok(Some(ConvertTo::Qcow2)));
        assert_eq!(ConvertTo::parse("raw"), Ok(Some(ConvertTo::Raw)));
        let error = ConvertTo::parse("vmdk").unwrap_err();
        assert_eq!(error.field, field::CONVERT_TO);
        assert!(error.message.contains("\"vmdk\""), "{}", error.message);
        for choice in ConvertTo::ALL {
            assert_eq!(ConvertTo::parse(choice.as_str()), Ok(Some(choice)));
            assert_eq!(ConvertTo::from_db(Some(choice.as_str())), choice);
        }
    }

    #[test]
    fn only_another_disk_format_is_converted() {
        assert!(ConvertTo::Qcow2.converts(DiskFormat::Vmdk));
        assert!(ConvertTo::Qcow2.converts(DiskFormat::Raw));
        assert!(ConvertTo::Raw.converts(DiskFormat::Qcow2));
        assert!(ConvertTo::Raw.converts(DiskFormat::Vhdx));
        assert!(!ConvertTo::Qcow2.converts(DiskFormat::Qcow2));
        assert!(!ConvertTo::Raw.converts(DiskFormat::Raw));
        assert!(!ConvertTo::Qcow2.converts(DiskFormat::Iso));
        assert!(!ConvertTo::Raw.converts(DiskFormat::Iso));
        for format in DiskFormat::ALL {
            assert!(!ConvertTo::Keep.converts(format));
        }
    }
}
