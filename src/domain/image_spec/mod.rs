//! The fields of the Create Image and Edit forms, each a newtype that can only be built by
//! `parse`; the forms themselves are in `forms`.

mod forms;
#[cfg(test)]
mod tests;

pub use forms::*;

use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use super::image::DiskFormat;
use super::upload::LocalImageFile;
use super::validation::{FieldError, describe_char, with_thousands};
use super::web_url::WebUrl;

/// Form field names, shared by the form markup, the server function arguments and the errors.
pub mod field {
    pub const NAME: &str = "name";
    /// Image file URL or Local file.
    pub const SOURCE: &str = "source";
    pub const SOURCE_URL: &str = "source_url";
    pub const DISK_FORMAT: &str = "disk_format";
    pub const MIN_DISK: &str = "min_disk";
    pub const MIN_RAM: &str = "min_ram";
    pub const VISIBILITY: &str = "visibility";
    pub const PROTECTED: &str = "protected";
    pub const DESCRIPTION: &str = "description";
}

/// An image name: 1–255 English letters, digits, spaces, '-' and '_' (the Create Image guide).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageName(String);

impl ImageName {
    /// The guide's limit.
    pub const MAX_CHARS: usize = 255;

    /// The rule in one line, for the forms.
    pub fn hint() -> &'static str {
        static HINT: LazyLock<String> = LazyLock::new(|| {
            format!(
                "Up to {} English letters, digits, spaces, '-' and '_'.",
                ImageName::MAX_CHARS
            )
        });
        &HINT
    }

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let err = |m: String| Err(FieldError::new(field::NAME, m));
        if raw.is_empty() {
            return err("Enter an image name.".into());
        }
        let count = raw.chars().count();
        if count > Self::MAX_CHARS {
            return err(format!(
                "Image name must be at most {} characters (it has {count}).",
                Self::MAX_CHARS
            ));
        }
        if let Some(bad) = raw
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, ' ' | '-' | '_')))
        {
            return err(format!(
                "Image name can contain only English letters, digits, spaces, '-' and '_' (found {}).",
                describe_char(bad)
            ));
        }
        if raw.starts_with(' ') || raw.ends_with(' ') {
            return err("Image name cannot start or end with a space.".into());
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An http or https URL of a disk image file (its name ends in a format's extension).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageFileUrl(String);

impl ImageFileUrl {
    /// Long enough for presigned object-storage URLs, short enough to show and to log.
    pub const MAX_CHARS: usize = 2048;

    /// The rule in one line, for the form.
    pub fn hint() -> &'static str {
        static HINT: LazyLock<String> = LazyLock::new(|| {
            format!(
                "An http or https URL of a {} file, such as an Object Storage link. The file's name tells its format.",
                DiskFormat::every_extension()
            )
        });
        &HINT
    }

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let err = |m: &str| Err(FieldError::new(field::SOURCE_URL, m));
        if raw.is_empty() {
            return err("Enter the URL of the image file.");
        }
        if raw.chars().count() > Self::MAX_CHARS {
            return err("Image file URL must be at most 2,048 characters.");
        }
        if raw.chars().any(char::is_whitespace) {
            return err("Image file URL cannot contain spaces.");
        }
        let Some(url) = WebUrl::parse(raw) else {
            return err(
                "Image file URL is not a valid URL; it should look like https://host/path/image.qcow2.",
            );
        };
        if !matches!(url.scheme.as_str(), "http" | "https") {
            return err("Image file URL must start with http:// or https://.");
        }
        if url.host.is_empty() {
            return err("Image file URL must name a host.");
        }
        if !url.username.is_empty() || !url.password.is_empty() {
            return err("Image file URL cannot contain a user name or password.");
        }
        if DiskFormat::from_file_name(&url.path).is_none() {
            return Err(FieldError::new(
                field::SOURCE_URL,
                format!(
                    "Image file URL must point to a disk image file ({}).",
                    DiskFormat::every_extension()
                ),
            ));
        }
        Ok(Self(url.href))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last path segment, used as a default download name and in the Summary panel.
    pub fn file_name(&self) -> String {
        WebUrl::parse(&self.0)
            .map(|url| url.last_segment().to_owned())
            .unwrap_or_default()
    }
}

/// Where a new image's bytes come from: a URL the console downloads, or a file on the
/// user's computer that the browser uploads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SourceKind {
    #[default]
    Url,
    LocalFile,
}

impl SourceKind {
    pub const ALL: [SourceKind; 2] = [SourceKind::Url, SourceKind::LocalFile];

    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Url => "url",
            SourceKind::LocalFile => "file",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            SourceKind::Url => "Image file URL",
            SourceKind::LocalFile => "Local file",
        }
    }

    pub fn hint(self) -> &'static str {
        match self {
            SourceKind::Url => "The console downloads the file from an http or https URL.",
            SourceKind::LocalFile => {
                "This browser uploads a file from your computer; an interrupted upload can be resumed."
            }
        }
    }

    /// Empty means Image file URL, so forms without the choice keep working.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        match raw {
            "" => Ok(SourceKind::Url),
            raw => Self::ALL
                .into_iter()
                .find(|s| s.as_str() == raw)
                .ok_or_else(|| {
                    FieldError::new(field::SOURCE, "Choose Image file URL or Local file.")
                }),
        }
    }
}

/// The declared Disk format must fit the file's name: a `.vmdk` file is not declared qcow2.
/// The bytes are inspected later; this catches the slip before anything is sent.
pub fn check_format_fits_file(format: DiskFormat, file_name: &str) -> Result<(), FieldError> {
    match DiskFormat::from_file_name(file_name) {
        Some(named) if named == format => Ok(()),
        Some(named) => {
            let lower = file_name.to_ascii_lowercase();
            let ending = named
                .extensions()
                .iter()
                .find(|e| lower.ends_with(*e))
                .copied()
                .unwrap_or_default();
            Err(FieldError::new(
                field::DISK_FORMAT,
                format!(
                    "{file_name} ends in {ending}, the ending of {} files; choose Disk format {} or another file.",
                    named.label(),
                    named.label()
                ),
            ))
        }
        None => Ok(()),
    }
}

/// A new image's source, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageSource {
    Url(ImageFileUrl),
    LocalFile(LocalImageFile),
}

/// Parses a whole number of GB within `0..=max`, for Minimum Disk and Minimum RAM.
fn parse_gb(raw: &str, field_name: &str, label: &str, max: u64) -> Result<u64, FieldError> {
    let range = format!("between 0 and {} GB", with_thousands(max));
    let err = |m: String| Err(FieldError::new(field_name, m));
    if raw.is_empty() {
        return err(format!("Enter {label} in GB, {range}."));
    }
    if !raw.bytes().all(|b| b.is_ascii_digit()) {
        return err(format!("{label} must be a whole number of GB, {range}."));
    }
    match raw.parse::<u64>() {
        Ok(n) if n <= max => Ok(n),
        _ => err(format!("{label} must be {range}.")),
    }
}

/// Minimum disk size in GB, 0–12,288.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinDiskGb(u64);

impl MinDiskGb {
    /// 12 TiB, the largest boot volume the guide allows.
    pub const MAX: u64 = 12_288;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        parse_gb(raw, field::MIN_DISK, "Minimum Disk", Self::MAX).map(Self)
    }

    pub fn get(self) -> u64 {
        self.0
    }
}

/// Minimum RAM in GB, 0–2,097,151.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinRamGb(u64);

impl MinRamGb {
    /// 2^21 - 1 GB, the guide's upper bound.
    pub const MAX: u64 = 2_097_151;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        parse_gb(raw, field::MIN_RAM, "Minimum RAM", Self::MAX).map(Self)
    }

    pub fn get(self) -> u64 {
        self.0
    }
}

/// Who may use the image: only its account, or accounts it is shared with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Visibility {
    Private,
    Shared,
}

impl Visibility {
    pub const ALL: [Visibility; 2] = [Visibility::Private, Visibility::Shared];

    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Private => "private",
            Visibility::Shared => "shared",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Visibility::Private => "Private",
            Visibility::Shared => "Shared",
        }
    }

    pub fn hint(self) -> &'static str {
        match self {
            Visibility::Private => "Can be used only within the Account",
            Visibility::Shared => "Can be shared between Accounts",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == raw)
            .ok_or_else(|| {
                FieldError::new(field::VISIBILITY, "Visibility must be Private or Shared.")
            })
    }
}

/// Optional free text, up to 255 characters, no control characters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Description(String);

impl Description {
    pub const MAX_CHARS: usize = 255;

    /// The rule in one line, for the forms.
    pub fn hint() -> &'static str {
        static HINT: LazyLock<String> =
            LazyLock::new(|| format!("Optional, up to {} characters.", Description::MAX_CHARS));
        &HINT
    }

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let count = raw.chars().count();
        if count > Self::MAX_CHARS {
            return Err(FieldError::new(
                field::DESCRIPTION,
                format!(
                    "Description must be at most {} characters (it has {count}).",
                    Self::MAX_CHARS
                ),
            ));
        }
        if let Some(bad) = raw.chars().find(|c| c.is_control()) {
            return Err(FieldError::new(
                field::DESCRIPTION,
                format!("Description cannot contain {}.", describe_char(bad)),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Parses the Protected checkbox: a browser sends its value only when it is checked.
pub fn parse_checkbox(raw: Option<&str>) -> bool {
    matches!(raw, Some("on" | "true" | "1"))
}
