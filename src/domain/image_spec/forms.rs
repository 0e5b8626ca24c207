//! The Create and Edit forms: the raw fields as the browser sends them, and the validated
//! request each becomes. Both share `AttributesForm`, which parses into `ImageAttributes`.

use serde::{Deserialize, Serialize};

use super::*;
use crate::domain::attributes::{Architecture, BootMode, Features};
use crate::domain::checksum::ExpectedChecksum;
use crate::domain::conversion::ConvertTo;
use crate::domain::history::FieldChange;
use crate::domain::image::DiskFormat;
use crate::domain::keys::EncryptionChoice;
use crate::domain::os_catalogue::{self, OperatingSystem, OsRequirement};
use crate::domain::signature::{SignatureClaim, SignatureForm};
use crate::domain::tags::{Tag, TagPair, parse_tag_set};
use crate::domain::upload::LocalImageFile;
use crate::domain::validation::{FieldErrors, collect};

/// An image's own attributes: what Create sets and Edit changes. One type for the validated
/// forms, the stored rows and Image Details. Made from input only by `AttributesForm::parse`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageAttributes {
    pub name: String,
    pub description: String,
    /// `None`: not specified (the image API may create an image without one).
    pub os: Option<OperatingSystem>,
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
                os_catalogue::label::OS_FAMILY,
                os_catalogue::family_label(self.os.as_ref()).into(),
                os_catalogue::family_label(after.os.as_ref()).into(),
            ),
            (
                os_catalogue::label::OS_PLATFORM,
                os_catalogue::platform_label(self.os.as_ref()).into(),
                os_catalogue::platform_label(after.os.as_ref()).into(),
            ),
            (
                os_catalogue::label::OS_VERSION,
                os_catalogue::version_label(self.os.as_ref()).into(),
                os_catalogue::version_label(after.os.as_ref()).into(),
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
    /// Operating system: `linux` or `windows`.
    pub os_family: String,
    /// System platform (`ubuntu`, `windows-server`…).
    pub os_platform: String,
    /// System version; empty means not specified.
    pub os_version: String,
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
    /// The form filled with an image's current attributes, as Edit starts.
    pub fn of(attributes: &ImageAttributes) -> Self {
        let checkbox = |on: bool| on.then(|| "on".to_owned());
        Self {
            name: attributes.name.clone(),
            description: attributes.description.clone(),
            os_family: attributes
                .os
                .as_ref()
                .map_or("", |os| os.family().as_str())
                .to_owned(),
            os_platform: attributes
                .os
                .as_ref()
                .map_or("", |os| os.platform.as_str())
                .to_owned(),
            os_version: attributes
                .os
                .as_ref()
                .and_then(|os| os.version.as_ref())
                .map(|v| v.as_str().to_owned())
                .unwrap_or_default(),
            min_disk: attributes.min_disk_gb.to_string(),
            min_ram: attributes.min_ram_gb.to_string(),
            architecture: attributes.architecture.as_str().to_owned(),
            boot_mode: attributes.boot_mode.as_str().to_owned(),
            protected: checkbox(attributes.protected),
            cloud_init: checkbox(attributes.features.cloud_init),
            qemu_guest_agent: checkbox(attributes.features.qemu_guest_agent),
        }
    }

    /// Validates every field, adding each error to `errors`; `os` says whether the operating
    /// system may be left out.
    fn parse(&self, os: OsRequirement, errors: &mut FieldErrors) -> Option<ImageAttributes> {
        let name = collect(ImageName::parse(&self.name), errors);
        let min_disk = collect(MinDiskGb::parse(&self.min_disk), errors);
        let min_ram = collect(MinRamGb::parse(&self.min_ram), errors);
        let description = collect(Description::parse(&self.description), errors);
        let architecture = match self.architecture.as_str() {
            "" => Some(Architecture::default()),
            raw => collect(Architecture::parse(raw), errors),
        };
        let os = OperatingSystem::parse_as(
            os,
            &self.os_family,
            &self.os_platform,
            &self.os_version,
            architecture,
        )
        .map_err(|os_errors| errors.extend(os_errors))
        .ok();
        let boot_mode = match self.boot_mode.as_str() {
            "" => Some(BootMode::default()),
            raw => collect(BootMode::parse(raw), errors),
        };
        Some(ImageAttributes {
            name: name?.as_str().to_owned(),
            os: os?,
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
    /// Encryption: `off` (or empty) or `on`, and the key (empty for the default key).
    #[serde(default)]
    pub encryption: String,
    #[serde(default)]
    pub encryption_key: String,
    /// Convert to: `none`, `qcow2` or `raw`; empty for the console's default.
    #[serde(default)]
    pub convert_to: String,
    /// The optional Signature section; all empty: not signed.
    #[serde(default)]
    pub signature: SignatureForm,
}

/// A validated request to create an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewImage {
    pub attributes: ImageAttributes,
    pub source: ImageSource,
    pub disk_format: DiskFormat,
    pub checksum: Option<ExpectedChecksum>,
    pub encryption: EncryptionChoice,
    /// `None`: the console's default.
    pub convert_to: Option<ConvertTo>,
    /// The bytes' signature, verified before the image becomes Active.
    pub signature: Option<SignatureClaim>,
    pub visibility: Visibility,
    pub tags: Vec<Tag>,
}

/// The order of fields on the Create Image form, so errors are listed as the form reads.
const FORM_ORDER: [&str; 23] = [
    field::NAME,
    field::SOURCE,
    crate::domain::upload::field::LOCAL_FILE,
    field::DISK_FORMAT,
    crate::domain::conversion::field::CONVERT_TO,
    crate::domain::checksum::field::CHECKSUM,
    crate::domain::keys::field::ENCRYPTION,
    crate::domain::keys::field::ENCRYPTION_KEY,
    crate::domain::signature::field::CERTIFICATE,
    crate::domain::signature::field::HASH_METHOD,
    crate::domain::signature::field::KEY_TYPE,
    crate::domain::signature::field::SIGNATURE,
    os_catalogue::field::OS_FAMILY,
    "architecture",
    os_catalogue::field::OS_PLATFORM,
    os_catalogue::field::OS_VERSION,
    "boot_mode",
    field::MIN_DISK,
    field::MIN_RAM,
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
        let attributes = self.attributes.parse(OsRequirement::Required, &mut errors);
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
        let encryption = collect(
            EncryptionChoice::parse(&self.encryption, &self.encryption_key),
            &mut errors,
        );
        let convert_to = collect(ConvertTo::parse(&self.convert_to), &mut errors);
        let signature = self
            .signature
            .parse()
            .map_err(|signature_errors| errors.extend(signature_errors))
            .ok();
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
        match (
            attributes,
            source,
            disk_format,
            checksum,
            encryption,
            convert_to,
            signature,
            visibility,
            tags,
        ) {
            (
                Some(attributes),
                Some(source),
                Some(disk_format),
                Some(checksum),
                Some(encryption),
                Some(convert_to),
                Some(signature),
                Some(visibility),
                Some(tags),
            ) if errors.is_empty() => Ok(NewImage {
                attributes,
                source,
                disk_format,
                checksum,
                encryption,
                convert_to,
                signature,
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
    /// Validates every field; `os` is the rule for the image's operating system
    /// (`OsRequirement::to_edit` for an image being edited).
    pub fn parse(&self, os: OsRequirement) -> Result<ImageEdit, FieldErrors> {
        let mut errors = Vec::new();
        let attributes = self.attributes.parse(os, &mut errors);
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
