//! The fields of the Create Image form, each a newtype that can only be built by `parse`.

use serde::{Deserialize, Serialize};

use super::attributes::{Architecture, BootMode, Features};
use super::checksum::ExpectedChecksum;
use super::history::FieldChange;
use super::image::DiskFormat;
use super::tags::{Tag, TagPair, parse_tag_set};
use super::upload::LocalImageFile;
use super::validation::{FieldError, FieldErrors, collect, describe_char, with_thousands};

/// Form field names, shared by the form markup, the server function arguments and the errors.
pub mod field {
    pub const NAME: &str = "name";
    /// Image file URL or Local file.
    pub const SOURCE: &str = "source";
    pub const SOURCE_URL: &str = "source_url";
    pub const DISK_FORMAT: &str = "disk_format";
    pub const OS_TYPE: &str = "os_type";
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
        let Ok(url) = url::Url::parse(raw) else {
            return err(
                "Image file URL is not a valid URL; it should look like https://host/path/image.qcow2.",
            );
        };
        if !matches!(url.scheme(), "http" | "https") {
            return err("Image file URL must start with http:// or https://.");
        }
        if url.host_str().is_none_or(str::is_empty) {
            return err("Image file URL must name a host.");
        }
        if !url.username().is_empty() || url.password().is_some() {
            return err("Image file URL cannot contain a user name or password.");
        }
        if DiskFormat::from_file_name(url.path()).is_none() {
            return Err(FieldError::new(
                field::SOURCE_URL,
                format!(
                    "Image file URL must point to a disk image file ({}).",
                    DiskFormat::every_extension()
                ),
            ));
        }
        Ok(Self(url.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last path segment, used as a default download name and in the Summary panel.
    pub fn file_name(&self) -> String {
        url::Url::parse(&self.0)
            .ok()
            .and_then(|u| u.path_segments()?.next_back().map(str::to_owned))
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

/// The OS types the Create Image guide offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OsType {
    Alma,
    CentOS,
    Oracle,
    Rhel,
    Rocky,
    Ubuntu,
}

impl OsType {
    pub const ALL: [OsType; 6] = [
        OsType::Alma,
        OsType::CentOS,
        OsType::Oracle,
        OsType::Rhel,
        OsType::Rocky,
        OsType::Ubuntu,
    ];

    /// The stable value stored in the database and sent by the form.
    pub fn as_str(self) -> &'static str {
        match self {
            OsType::Alma => "alma",
            OsType::CentOS => "centos",
            OsType::Oracle => "oracle",
            OsType::Rhel => "rhel",
            OsType::Rocky => "rocky",
            OsType::Ubuntu => "ubuntu",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            OsType::Alma => "Alma Linux",
            OsType::CentOS => "CentOS",
            OsType::Oracle => "Oracle Linux",
            OsType::Rhel => "RHEL",
            OsType::Rocky => "Rocky Linux",
            OsType::Ubuntu => "Ubuntu",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        if raw.is_empty() {
            return Err(FieldError::new(field::OS_TYPE, "Select an OS type."));
        }
        Self::ALL
            .into_iter()
            .find(|os| os.as_str() == raw)
            .ok_or_else(|| {
                FieldError::new(
                    field::OS_TYPE,
                    "OS type must be one of Alma Linux, CentOS, Oracle Linux, RHEL, Rocky Linux or Ubuntu.",
                )
            })
    }
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

/// An image's own attributes: what Create sets and Edit changes. One type for the validated
/// forms, the stored rows and Image Details. Made from input only by `AttributesForm::parse`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageAttributes {
    pub name: String,
    pub description: String,
    pub os_type: OsType,
    pub min_disk_gb: u64,
    pub min_ram_gb: u64,
    pub protected: bool,
    pub architecture: Architecture,
    pub boot_mode: BootMode,
    pub features: Features,
}

/// How the Protected setting reads ("Use", as the guides say, or "Not used").
pub fn protected_label(protected: bool) -> &'static str {
    if protected { "Use" } else { "Not used" }
}

impl ImageAttributes {
    /// The fields that differ in `after`, as Work History shows them.
    pub fn changes_to(&self, after: &ImageAttributes) -> Vec<FieldChange> {
        let gb = |n: u64| format!("{n} GB");
        let fields = [
            ("Image name", self.name.clone(), after.name.clone()),
            (
                "Description",
                self.description.clone(),
                after.description.clone(),
            ),
            (
                "OS type",
                self.os_type.label().into(),
                after.os_type.label().into(),
            ),
            ("Minimum Disk", gb(self.min_disk_gb), gb(after.min_disk_gb)),
            ("Minimum RAM", gb(self.min_ram_gb), gb(after.min_ram_gb)),
            (
                "Protected",
                protected_label(self.protected).into(),
                protected_label(after.protected).into(),
            ),
            (
                "Architecture",
                self.architecture.as_str().into(),
                after.architecture.as_str().into(),
            ),
            (
                "Boot mode",
                self.boot_mode.label().into(),
                after.boot_mode.label().into(),
            ),
            ("Features", self.features.label(), after.features.label()),
        ];
        fields
            .into_iter()
            .filter(|(_, old, new)| old != new)
            .map(|(field, old, new)| FieldChange {
                field: field.to_owned(),
                old,
                new,
            })
            .collect()
    }
}

/// The attribute fields as the Create and Edit forms send them: every one a raw string, and
/// a checkbox present only when checked.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributesForm {
    pub name: String,
    pub description: String,
    pub os_type: String,
    pub min_disk: String,
    pub min_ram: String,
    /// Empty means the default (x86_64, BIOS).
    pub architecture: String,
    pub boot_mode: String,
    pub protected: Option<String>,
    pub cloud_init: Option<String>,
    pub qemu_guest_agent: Option<String>,
}

impl AttributesForm {
    /// Validates every field, adding each error to `errors`.
    fn parse(&self, errors: &mut FieldErrors) -> Option<ImageAttributes> {
        let name = collect(ImageName::parse(&self.name), errors);
        let os_type = collect(OsType::parse(&self.os_type), errors);
        let min_disk = collect(MinDiskGb::parse(&self.min_disk), errors);
        let min_ram = collect(MinRamGb::parse(&self.min_ram), errors);
        let description = collect(Description::parse(&self.description), errors);
        let architecture = match self.architecture.as_str() {
            "" => Some(Architecture::default()),
            raw => collect(Architecture::parse(raw), errors),
        };
        let boot_mode = match self.boot_mode.as_str() {
            "" => Some(BootMode::default()),
            raw => collect(BootMode::parse(raw), errors),
        };
        Some(ImageAttributes {
            name: name?.as_str().to_owned(),
            os_type: os_type?,
            min_disk_gb: min_disk?.get(),
            min_ram_gb: min_ram?.get(),
            protected: parse_checkbox(self.protected.as_deref()),
            description: description?.as_str().to_owned(),
            architecture: architecture?,
            boot_mode: boot_mode?,
            features: Features {
                cloud_init: parse_checkbox(self.cloud_init.as_deref()),
                qemu_guest_agent: parse_checkbox(self.qemu_guest_agent.as_deref()),
            },
        })
    }
}

/// The Create Image form as the browser sends it: every field a raw string.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateImageForm {
    pub attributes: AttributesForm,
    /// `url` (or empty) or `file`.
    #[serde(default)]
    pub source: String,
    pub source_url: String,
    /// The local file's name and size in bytes, as the browser read them.
    #[serde(default)]
    pub file_name: String,
    #[serde(default)]
    pub file_size: String,
    /// Empty means qcow2.
    #[serde(default)]
    pub disk_format: String,
    pub visibility: String,
    pub tags: Vec<TagPair>,
    /// Optional expected checksum of the file (see `ExpectedChecksum`).
    #[serde(default)]
    pub checksum: String,
}

/// A validated request to create an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewImage {
    pub attributes: ImageAttributes,
    pub source: ImageSource,
    pub disk_format: DiskFormat,
    pub checksum: Option<ExpectedChecksum>,
    pub visibility: Visibility,
    pub tags: Vec<Tag>,
}

/// The order of fields on the Create Image form, so errors are listed as the form reads.
const FORM_ORDER: [&str; 14] = [
    field::NAME,
    field::SOURCE,
    super::upload::field::LOCAL_FILE,
    field::DISK_FORMAT,
    crate::domain::checksum::field::CHECKSUM,
    field::OS_TYPE,
    field::MIN_DISK,
    field::MIN_RAM,
    "architecture",
    "boot_mode",
    field::VISIBILITY,
    field::PROTECTED,
    field::DESCRIPTION,
    "tag",
];

impl CreateImageForm {
    /// Validates every field, returning all errors at once. `import_limit_bytes` bounds a
    /// local file's size.
    pub fn parse(&self, import_limit_bytes: u64) -> Result<NewImage, FieldErrors> {
        let mut errors = Vec::new();
        let attributes = self.attributes.parse(&mut errors);
        let source = match collect(SourceKind::parse(&self.source), &mut errors) {
            Some(SourceKind::Url) => {
                collect(ImageFileUrl::parse(&self.source_url), &mut errors).map(ImageSource::Url)
            }
            Some(SourceKind::LocalFile) => collect(
                LocalImageFile::parse(&self.file_name, &self.file_size, import_limit_bytes),
                &mut errors,
            )
            .map(ImageSource::LocalFile),
            None => None,
        };
        // The format is the one the file's name declares, unless the request names one,
        // which must then fit the name. Inspection confirms it from the bytes either way.
        let file_name = source.as_ref().map(|source| match source {
            ImageSource::Url(url) => url.file_name(),
            ImageSource::LocalFile(file) => file.name().to_owned(),
        });
        let named = file_name.as_deref().and_then(DiskFormat::from_file_name);
        let disk_format = match (self.disk_format.as_str(), named) {
            ("", Some(named)) => Some(named),
            (raw, _) => collect(DiskFormat::parse(raw), &mut errors),
        };
        if let (Some(format), Some(file_name)) = (disk_format, &file_name) {
            collect(check_format_fits_file(format, file_name), &mut errors);
        }
        let checksum = collect(ExpectedChecksum::parse(&self.checksum), &mut errors);
        let visibility = collect(Visibility::parse(&self.visibility), &mut errors);
        let tags = parse_tag_set(&self.tags)
            .map_err(|tag_errors| errors.extend(tag_errors))
            .ok();
        errors.sort_by_key(|e| {
            FORM_ORDER
                .iter()
                .position(|f| e.field.starts_with(f))
                .unwrap_or(usize::MAX)
        });
        match (attributes, source, disk_format, checksum, visibility, tags) {
            (
                Some(attributes),
                Some(source),
                Some(disk_format),
                Some(checksum),
                Some(visibility),
                Some(tags),
            ) if errors.is_empty() => Ok(NewImage {
                attributes,
                source,
                disk_format,
                checksum,
                visibility,
                tags,
            }),
            _ => Err(errors),
        }
    }
}

/// The Edit form of Image Details as sent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EditImageForm {
    pub attributes: AttributesForm,
    /// Empty keeps the current visibility.
    #[serde(default)]
    pub visibility: String,
}

/// A validated Edit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageEdit {
    pub attributes: ImageAttributes,
    /// `None` keeps the current visibility.
    pub visibility: Option<Visibility>,
}

impl EditImageForm {
    pub fn parse(&self) -> Result<ImageEdit, FieldErrors> {
        let mut errors = Vec::new();
        let attributes = self.attributes.parse(&mut errors);
        let visibility = match self.visibility.as_str() {
            "" => Some(None),
            raw => collect(Visibility::parse(raw), &mut errors).map(Some),
        };
        match (attributes, visibility) {
            (Some(attributes), Some(visibility)) if errors.is_empty() => Ok(ImageEdit {
                attributes,
                visibility,
            }),
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_name_boundaries() {
        assert!(ImageName::parse("a").is_ok());
        assert!(ImageName::parse(&"a".repeat(255)).is_ok());
        let too_long = ImageName::parse(&"a".repeat(256)).unwrap_err();
        assert_eq!(too_long.field, "name");
        assert_eq!(
            too_long.message,
            "Image name must be at most 255 characters (it has 256)."
        );
        assert_eq!(
            ImageName::parse("").unwrap_err().message,
            "Enter an image name."
        );
    }

    #[test]
    fn image_name_allowed_characters() {
        assert!(ImageName::parse("Ubuntu 24_04-base").is_ok());
        assert!(ImageName::parse("ABCxyz0123456789").is_ok());
    }

    #[test]
    fn image_name_refuses_each_forbidden_character() {
        for c in "!\"#$%&'()*+,./:;<=>?@[\\]^`{|}~\t\n".chars() {
            let name = format!("img{c}x");
            let error = ImageName::parse(&name).unwrap_err();
            assert!(
                error.message.starts_with("Image name can contain only"),
                "{c:?} gave {error}"
            );
        }
        for s in ["é", "日本", "x\u{200b}"] {
            assert!(ImageName::parse(s).is_err(), "{s} should be refused");
        }
        assert_eq!(
            ImageName::parse("a#b").unwrap_err().message,
            "Image name can contain only English letters, digits, spaces, '-' and '_' (found '#')."
        );
    }

    #[test]
    fn image_name_cannot_start_or_end_with_space() {
        assert!(ImageName::parse(" x").is_err());
        assert!(ImageName::parse("x ").is_err());
        assert!(ImageName::parse(" ").is_err());
        assert!(ImageName::parse("x y").is_ok());
    }

    #[test]
    fn a_name_of_255_multibyte_chars_is_counted_in_characters() {
        // Counting bytes instead of characters would accept or refuse the wrong lengths.
        let error = ImageName::parse(&"é".repeat(10)).unwrap_err();
        assert!(error.message.contains("found 'é'"));
    }

    #[test]
    fn image_file_url_accepts_http_and_https_qcow2() {
        for ok in [
            "https://example.com/images/ubuntu.qcow2",
            "http://10.0.0.5:8080/a/b/c.QCOW2",
            "https://bucket.s3.example.com/x.qcow2?X-Amz-Signature=abc",
        ] {
            assert!(ImageFileUrl::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn image_file_url_refuses_bad_urls() {
        let cases = [
            ("", "Enter the URL of the image file."),
            ("not a url", "Image file URL cannot contain spaces."),
            (
                "example.com/x.qcow2",
                "Image file URL is not a valid URL; it should look like https://host/path/image.qcow2.",
            ),
            (
                "ftp://example.com/x.qcow2",
                "Image file URL must start with http:// or https://.",
            ),
            (
                "file:///etc/x.qcow2",
                "Image file URL must start with http:// or https://.",
            ),
            (
                "javascript:alert(1)//x.qcow2",
                "Image file URL must start with http:// or https://.",
            ),
            (
                "https://user:pw@example.com/x.qcow2",
                "Image file URL cannot contain a user name or password.",
            ),
            (
                "https://example.com/x.exe",
                "Image file URL must point to a disk image file (.qcow2, .raw, .img, .vmdk, .vhd, .vhdx or .iso).",
            ),
            (
                "https://example.com/x.qcow2/",
                "Image file URL must point to a disk image file (.qcow2, .raw, .img, .vmdk, .vhd, .vhdx or .iso).",
            ),
            (
                "https://example.com/?f=x.qcow2",
                "Image file URL must point to a disk image file (.qcow2, .raw, .img, .vmdk, .vhd, .vhdx or .iso).",
            ),
        ];
        for (raw, message) in cases {
            let error = ImageFileUrl::parse(raw).unwrap_err();
            assert_eq!(error.field, "source_url");
            assert_eq!(error.message, message, "for {raw:?}");
        }
        let long = format!("https://example.com/{}.qcow2", "a".repeat(2048));
        assert_eq!(
            ImageFileUrl::parse(&long).unwrap_err().message,
            "Image file URL must be at most 2,048 characters."
        );
    }

    #[test]
    fn image_file_url_file_name() {
        let url = ImageFileUrl::parse("https://example.com/a/ubuntu-24.qcow2?sig=1").unwrap();
        assert_eq!(url.file_name(), "ubuntu-24.qcow2");
    }

    #[test]
    fn os_type_values() {
        for os in OsType::ALL {
            assert_eq!(OsType::parse(os.as_str()), Ok(os));
        }
        assert_eq!(OsType::parse("").unwrap_err().message, "Select an OS type.");
        assert!(OsType::parse("windows").is_err());
        assert!(OsType::parse("Ubuntu").is_err());
    }

    #[test]
    fn min_disk_boundaries() {
        assert_eq!(MinDiskGb::parse("0").unwrap().get(), 0);
        assert_eq!(MinDiskGb::parse("12288").unwrap().get(), 12_288);
        let over = MinDiskGb::parse("12289").unwrap_err();
        assert_eq!(over.field, "min_disk");
        assert_eq!(
            over.message,
            "Minimum Disk must be between 0 and 12,288 GB."
        );
        for bad in ["-1", "1.5", "1e3", " 1", "abc", "99999999999999999999999"] {
            assert!(MinDiskGb::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            MinDiskGb::parse("").unwrap_err().message,
            "Enter Minimum Disk in GB, between 0 and 12,288 GB."
        );
    }

    #[test]
    fn min_ram_boundaries() {
        assert_eq!(MinRamGb::parse("2097151").unwrap().get(), 2_097_151);
        let over = MinRamGb::parse("2097152").unwrap_err();
        assert_eq!(over.field, "min_ram");
        assert_eq!(
            over.message,
            "Minimum RAM must be between 0 and 2,097,151 GB."
        );
        assert_eq!(
            MinRamGb::parse("-5").unwrap_err().message,
            "Minimum RAM must be a whole number of GB, between 0 and 2,097,151 GB."
        );
    }

    #[test]
    fn description_boundaries() {
        assert!(Description::parse("").is_ok());
        assert!(Description::parse(&"d".repeat(255)).is_ok());
        assert_eq!(
            Description::parse(&"d".repeat(256)).unwrap_err().message,
            "Description must be at most 255 characters (it has 256)."
        );
        assert_eq!(
            Description::parse("two\nlines").unwrap_err().message,
            "Description cannot contain the control character U+000A."
        );
        assert!(Description::parse("Ünïcödé and symbols #!@ are fine").is_ok());
    }

    #[test]
    fn visibility_values() {
        assert_eq!(Visibility::parse("private"), Ok(Visibility::Private));
        assert_eq!(Visibility::parse("shared"), Ok(Visibility::Shared));
        assert!(Visibility::parse("public").is_err());
    }

    #[test]
    fn form_reports_every_error_at_once() {
        let form = CreateImageForm {
            attributes: crate::domain::image_spec::AttributesForm {
                name: "bad#name".into(),
                os_type: "".into(),
                min_disk: "12289".into(),
                min_ram: "x".into(),
                protected: None,
                description: "d".repeat(256),
                ..Default::default()
            },
            source_url: "ftp://x/y.qcow2".into(),
            visibility: "public".into(),
            ..Default::default()
        };
        let errors = form.parse(1 << 30).unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "name",
                "source_url",
                "os_type",
                "min_disk",
                "min_ram",
                "visibility",
                "description"
            ]
        );
    }

    #[test]
    fn form_parses_a_valid_request() {
        let form = CreateImageForm {
            attributes: crate::domain::image_spec::AttributesForm {
                name: "ubuntu base".into(),
                os_type: "ubuntu".into(),
                min_disk: "10".into(),
                min_ram: "2".into(),
                protected: Some("on".into()),
                description: "".into(),
                cloud_init: Some("on".into()),
                ..Default::default()
            },
            source_url: "https://example.com/u.qcow2".into(),
            visibility: "private".into(),
            tags: vec![TagPair {
                key: "env".into(),
                value: "prod".into(),
            }],
            ..Default::default()
        };
        let spec = form.parse(1 << 30).unwrap();
        assert!(spec.attributes.protected);
        assert_eq!(spec.attributes.min_disk_gb, 10);
        assert_eq!(spec.attributes.os_type, OsType::Ubuntu);
        assert_eq!(spec.attributes.architecture, Architecture::X86_64);
        assert_eq!(spec.attributes.boot_mode, BootMode::Bios);
        assert!(spec.attributes.features.cloud_init);
        assert!(!spec.attributes.features.qemu_guest_agent);
        assert_eq!(spec.tags.len(), 1);
    }

    #[test]
    fn the_disk_format_must_fit_the_file_name() {
        let form = CreateImageForm {
            attributes: crate::domain::image_spec::AttributesForm {
                name: "installer".into(),
                os_type: "ubuntu".into(),
                min_disk: "10".into(),
                min_ram: "1".into(),
                ..Default::default()
            },
            source_url: "https://example.com/ubuntu-24.04-live.iso".into(),
            visibility: "private".into(),
            ..Default::default()
        };
        // Without a Disk format, the file's name declares it.
        assert_eq!(form.parse(1 << 30).unwrap().disk_format, DiskFormat::Iso);
        let qcow2 = CreateImageForm {
            disk_format: "qcow2".into(),
            ..form.clone()
        };
        let errors = qcow2.parse(1 << 30).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "disk_format");
        assert_eq!(
            errors[0].message,
            "ubuntu-24.04-live.iso ends in .iso, the ending of ISO files; choose Disk format ISO or another file."
        );
        let unknown = CreateImageForm {
            disk_format: "qed".into(),
            ..form
        };
        assert_eq!(
            unknown.parse(1 << 30).unwrap_err()[0].message,
            "Choose one of the listed disk formats."
        );
        assert!(check_format_fits_file(DiskFormat::Raw, "disk.img").is_ok());
        assert!(check_format_fits_file(DiskFormat::Raw, "disk.raw").is_ok());
        assert!(check_format_fits_file(DiskFormat::Vhd, "disk.vhdx").is_err());
    }

    #[test]
    fn a_local_file_source_needs_a_file_not_a_url() {
        let form = CreateImageForm {
            attributes: crate::domain::image_spec::AttributesForm {
                name: "from disk".into(),
                os_type: "rocky".into(),
                min_disk: "10".into(),
                min_ram: "1".into(),
                ..Default::default()
            },
            source: "file".into(),
            file_name: "disk.qcow2".into(),
            file_size: "4096".into(),
            visibility: "private".into(),
            ..Default::default()
        };
        let spec = form.parse(1 << 30).unwrap();
        assert_eq!(
            spec.source,
            ImageSource::LocalFile(LocalImageFile::parse("disk.qcow2", "4096", 1 << 30).unwrap())
        );
        let too_big = form.parse(4095).unwrap_err();
        assert_eq!(too_big.len(), 1);
        assert_eq!(too_big[0].field, "local_file");
        let no_file = CreateImageForm {
            file_name: String::new(),
            ..form.clone()
        };
        assert_eq!(no_file.parse(1 << 30).unwrap_err()[0].field, "local_file");
        let unknown = CreateImageForm {
            source: "ftp".into(),
            ..form
        };
        assert_eq!(
            unknown.parse(1 << 30).unwrap_err()[0].message,
            "Choose Image file URL or Local file."
        );
    }

    #[test]
    fn edit_form_uses_the_same_rules() {
        let form = EditImageForm {
            attributes: crate::domain::image_spec::AttributesForm {
                name: "bad#name".into(),
                os_type: "ubuntu".into(),
                min_disk: "12289".into(),
                min_ram: "0".into(),
                architecture: "sparc".into(),
                ..Default::default()
            },
            ..Default::default()
        };
        let errors = form.parse().unwrap_err();
        let messages: Vec<_> = errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "Image name can contain only English letters, digits, spaces, '-' and '_' (found '#').",
                "Minimum Disk must be between 0 and 12,288 GB.",
                "Architecture must be x86_64 or aarch64.",
            ]
        );
        let ok = EditImageForm {
            attributes: crate::domain::image_spec::AttributesForm {
                name: "renamed".into(),
                os_type: "rhel".into(),
                min_disk: "1".into(),
                min_ram: "1".into(),
                architecture: "aarch64".into(),
                boot_mode: "uefi".into(),
                qemu_guest_agent: Some("on".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let edit = ok.parse().unwrap();
        assert_eq!(
            edit.visibility, None,
            "an empty visibility keeps the current one"
        );
        let attributes = edit.attributes;
        assert_eq!(attributes.architecture, Architecture::Aarch64);
        assert_eq!(attributes.boot_mode, BootMode::Uefi);
        assert!(attributes.features.qemu_guest_agent);
        assert!(!attributes.protected);
        let shared = EditImageForm {
            visibility: "shared".into(),
            ..ok.clone()
        };
        assert_eq!(shared.parse().unwrap().visibility, Some(Visibility::Shared));
        let bad = EditImageForm {
            visibility: "public".into(),
            ..ok
        };
        assert_eq!(
            bad.parse().unwrap_err()[0].message,
            "Visibility must be Private or Shared."
        );
    }

    #[test]
    fn create_form_checks_its_tags() {
        let form = CreateImageForm {
            attributes: crate::domain::image_spec::AttributesForm {
                name: "n".into(),
                os_type: "ubuntu".into(),
                min_disk: "0".into(),
                min_ram: "0".into(),
                ..Default::default()
            },
            source_url: "https://example.com/a.qcow2".into(),
            visibility: "private".into(),
            tags: vec![
                TagPair {
                    key: "env".into(),
                    value: "a".into(),
                },
                TagPair {
                    key: "env".into(),
                    value: "b".into(),
                },
            ],
            ..Default::default()
        };
        let errors = form.parse(1 << 30).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "tag_key.1");
    }
}
