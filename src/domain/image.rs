//! An image as the console shows it: status, formats and the records sent to the pages.

use serde::{Deserialize, Serialize};

use super::image_spec::{ImageAttributes, Visibility};
use super::os_catalogue::OperatingSystem;
use super::tags::TagPair;
use super::validation::or_list;

/// The lifecycle of an image (Create Image guide): Queued → Importing → Active from a URL,
/// Uploading → Active from a local file, or Failed. An Active image can be Deactivated and
/// reactivated; Delete moves an Active, Deactivated or Failed image to the Recycle Bin
/// (Deleted), from which it is restored to its status before, or destroyed (Deleting while its
/// bytes are removed, then gone).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ImageStatus {
    /// Created; waiting for an import slot.
    Queued,
    /// A local file is being uploaded from a browser (or another tus client).
    Uploading,
    /// Bytes are being fetched and checked.
    Importing,
    /// Received and checked bytes are being converted to the format the image asked for.
    Converting,
    /// Stored, inspected and usable.
    Active,
    /// The import did not succeed; `failure_reason` says why.
    Failed,
    /// Stored, but its owner has stopped every download and every new use of it.
    Deactivated,
    /// In the Recycle Bin: kept, with its bytes, until restored or destroyed.
    Deleted,
    /// Being destroyed: its bytes are being removed.
    Deleting,
}

impl ImageStatus {
    pub const ALL: [ImageStatus; 9] = [
        ImageStatus::Queued,
        ImageStatus::Uploading,
        ImageStatus::Importing,
        ImageStatus::Converting,
        ImageStatus::Active,
        ImageStatus::Failed,
        ImageStatus::Deactivated,
        ImageStatus::Deleted,
        ImageStatus::Deleting,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ImageStatus::Queued => "queued",
            ImageStatus::Uploading => "uploading",
            ImageStatus::Importing => "importing",
            ImageStatus::Converting => "converting",
            ImageStatus::Active => "active",
            ImageStatus::Failed => "failed",
            ImageStatus::Deactivated => "deactivated",
            ImageStatus::Deleted => "deleted",
            ImageStatus::Deleting => "deleting",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ImageStatus::Queued => "Queued",
            ImageStatus::Uploading => "Uploading",
            ImageStatus::Importing => "Importing",
            ImageStatus::Converting => "Converting",
            ImageStatus::Active => "Active",
            ImageStatus::Failed => "Failed",
            ImageStatus::Deactivated => "Deactivated",
            ImageStatus::Deleted => "Deleted",
            ImageStatus::Deleting => "Deleting",
        }
    }

    pub fn from_db(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// Whether the status will change without anyone acting, so pages should refresh.
    pub fn is_in_progress(self) -> bool {
        matches!(
            self,
            ImageStatus::Queued
                | ImageStatus::Uploading
                | ImageStatus::Importing
                | ImageStatus::Converting
        )
    }

    /// Whether the image is in the Recycle Bin (or leaving it): the Image List shows these
    /// only when asked for by status.
    pub fn in_recycle_bin(self) -> bool {
        matches!(self, ImageStatus::Deleted | ImageStatus::Deleting)
    }

    /// Whether Delete may move an image of this status to the Recycle Bin: it is available,
    /// deactivated, or its import failed. Work in progress is cancelled first.
    pub fn can_be_deleted(self) -> bool {
        matches!(
            self,
            ImageStatus::Active | ImageStatus::Deactivated | ImageStatus::Failed
        )
    }
}

/// An image file's format: declared on the Create form, and confirmed by inspecting the
/// bytes (never taken from the name alone). ISO files become installation images.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DiskFormat {
    #[default]
    Qcow2,
    Raw,
    Vmdk,
    Vhd,
    Vhdx,
    Iso,
}

impl DiskFormat {
    pub const ALL: [DiskFormat; 6] = [
        DiskFormat::Qcow2,
        DiskFormat::Raw,
        DiskFormat::Vmdk,
        DiskFormat::Vhd,
        DiskFormat::Vhdx,
        DiskFormat::Iso,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DiskFormat::Qcow2 => "qcow2",
            DiskFormat::Raw => "raw",
            DiskFormat::Vmdk => "vmdk",
            DiskFormat::Vhd => "vhd",
            DiskFormat::Vhdx => "vhdx",
            DiskFormat::Iso => "iso",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            DiskFormat::Qcow2 => "qcow2",
            DiskFormat::Raw => "Raw",
            DiskFormat::Vmdk => "VMDK",
            DiskFormat::Vhd => "VHD",
            DiskFormat::Vhdx => "VHDX",
            DiskFormat::Iso => "ISO",
        }
    }

    /// The file name endings a file of this format may have.
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            DiskFormat::Qcow2 => &[".qcow2"],
            DiskFormat::Raw => &[".raw", ".img"],
            DiskFormat::Vmdk => &[".vmdk"],
            DiskFormat::Vhd => &[".vhd"],
            DiskFormat::Vhdx => &[".vhdx"],
            DiskFormat::Iso => &[".iso"],
        }
    }

    /// The format whose ending a file name has, if any.
    pub fn from_file_name(name: &str) -> Option<Self> {
        let name = name.to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|f| f.extensions().iter().any(|e| name.ends_with(e)))
    }

    /// "a disk image (.qcow2, .raw, .img, .vmdk, .vhd, .vhdx or .iso)".
    pub fn every_extension() -> String {
        let all: Vec<&str> = Self::ALL
            .iter()
            .flat_map(|f| f.extensions())
            .copied()
            .collect();
        or_list(&all)
    }

    /// The formats as the image API names them: "qcow2, raw, vmdk, vhd, vhdx or iso".
    pub fn every_value() -> String {
        let all: Vec<&str> = Self::ALL.iter().map(|f| f.as_str()).collect();
        or_list(&all)
    }

    /// The formats as the console names them: "qcow2, Raw, VMDK, VHD, VHDX or ISO".
    pub fn every_label() -> String {
        let all: Vec<&str> = Self::ALL.iter().map(|f| f.label()).collect();
        or_list(&all)
    }

    /// A file input's `accept`: ".qcow2,.raw,…".
    pub fn accept_attribute() -> String {
        Self::ALL
            .iter()
            .flat_map(|f| f.extensions())
            .copied()
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The Image Type an image of this format gets (an ISO is an installation image).
    pub fn image_type(self) -> &'static str {
        match self {
            DiskFormat::Iso => IMAGE_TYPE_INSTALLATION,
            _ => IMAGE_TYPE_IMAGE_BASED,
        }
    }

    pub fn from_db(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == raw)
    }

    /// Empty means qcow2, so forms without the choice keep working.
    pub fn parse(raw: &str) -> Result<Self, super::FieldError> {
        match raw {
            "" => Ok(DiskFormat::Qcow2),
            raw => Self::from_db(raw).ok_or_else(|| {
                super::FieldError::new(
                    super::image_spec::field::DISK_FORMAT,
                    "Choose one of the listed disk formats.",
                )
            }),
        }
    }
}

/// The Image Type of an ISO file that a VM boots from to install an OS (seed 003).
pub const IMAGE_TYPE_INSTALLATION: &str = "Installation Image";

/// How the image was made (Image Details guide). Imports are Image-Based.
pub const IMAGE_TYPE_IMAGE_BASED: &str = "Image-Based";

/// Hash algorithm of `hash_value`, as Glance's `os_hash_algo`.
pub const HASH_ALGORITHM: &str = "sha512";

/// Progress of an import, for the progress bar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportProgress {
    pub bytes_done: u64,
    /// Unknown when the source sends no Content-Length.
    pub bytes_total: Option<u64>,
}

impl ImportProgress {
    /// Whole percent done, when the total is known.
    pub fn percent(&self) -> Option<u8> {
        let total = self.bytes_total.filter(|t| *t > 0)?;
        Some(((self.bytes_done.min(total) as u128 * 100) / total as u128) as u8)
    }
}

/// What an image made through the image API waits for: its data, or (with its data staged)
/// an import. Its client sends either; the console does nothing on its own meanwhile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApiWait {
    Data,
    Import,
}

impl ApiWait {
    pub fn describe(self) -> &'static str {
        match self {
            ApiWait::Data => {
                "Waiting for its data from the image API (PUT /v2/images/{id}/file, or stage and import)."
            }
            ApiWait::Import => {
                "Its data is staged and checked; waiting for an import through the image API (glance-direct)."
            }
        }
    }
}

/// A row of the Image List.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSummary {
    pub id: String,
    pub name: String,
    /// `None`: not specified (an image the image API created without one).
    pub os: Option<OperatingSystem>,
    pub status: ImageStatus,
    pub visibility: Visibility,
    pub protected: bool,
    pub size_bytes: Option<u64>,
    pub progress: Option<ImportProgress>,
    pub failure_reason: Option<String>,
    /// The local file an Uploading image waits for.
    pub source_file_name: Option<String>,
    pub created_at_ms: i64,
    /// The owner's Account ID when another account shares this image with the viewer.
    pub shared_by: Option<String>,
    /// Set while an image made through the image API waits for its client.
    pub api_wait: Option<ApiWait>,
    /// Whether its bytes are encrypted.
    #[serde(default)]
    pub encrypted: bool,
    /// When it is, or was, deprecated.
    #[serde(default)]
    pub deprecate_at_ms: Option<i64>,
    /// Deprecated now (judged by the service's clock).
    #[serde(default)]
    pub deprecated: bool,
    /// Hidden from default lists (Glance's `os_hidden`).
    #[serde(default)]
    pub hidden: bool,
}

/// Where a replica's bytes come from: the source image, named where an import's URL is kept
/// (`image:<id>`), so a replica runs as any import does (slots, lease, progress, restarts).
pub const REPLICA_SOURCE_SCHEME: &str = "image:";

/// The source of a replica made from image `id`.
pub fn replica_url(id: &str) -> String {
    format!("{REPLICA_SOURCE_SCHEME}{id}")
}

/// The source image's id of a replica's source, if `source_url` names one.
pub fn replica_source(source_url: &str) -> Option<&str> {
    source_url.strip_prefix(REPLICA_SOURCE_SCHEME)
}

/// How an encrypted image's bytes are protected, as Details shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageEncryption {
    /// The key (its name is empty for another account's key, which a recipient does not see).
    pub key: super::keys::KeyRef,
    /// The key version its data key is wrapped under; `None` before any byte arrived.
    pub data_key_version: Option<u32>,
}

impl ImageSummary {
    /// Whether the row will change without anyone acting, so the list should refresh.
    pub fn changes_by_itself(&self) -> bool {
        self.status.is_in_progress() && self.api_wait.is_none()
    }
}

/// Everything the Details tab shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageDetail {
    pub id: String,
    pub srn: String,
    pub account_id: String,
    pub attributes: ImageAttributes,
    pub status: ImageStatus,
    pub failure_reason: Option<String>,
    pub image_type: String,
    pub source_url: Option<String>,
    /// The name of the local file an upload was created with.
    pub source_file_name: Option<String>,
    pub size_bytes: Option<u64>,
    pub virtual_size_bytes: Option<u64>,
    pub disk_format: Option<DiskFormat>,
    pub hash_algorithm: Option<String>,
    pub hash_value: Option<String>,
    pub checksum_md5: Option<String>,
    /// The checksum the creator gave, which the bytes were verified against.
    pub expected_checksum: Option<super::checksum::ExpectedChecksum>,
    pub visibility: Visibility,
    pub tags: Vec<TagPair>,
    pub progress: Option<ImportProgress>,
    pub created_by: String,
    pub created_at_ms: i64,
    pub updated_by: String,
    pub updated_at_ms: i64,
    /// The owner's Account ID when another account shares this image with the viewer, who
    /// may then view and download it and nothing else.
    pub shared_by: Option<String>,
    /// Accounts holding a share in force (Pending, Accepted or Rejected); the owner's view.
    pub active_shares: u64,
    /// The image whose bytes Create shared Image reused for this one.
    pub source_image_id: Option<String>,
    /// Set while an image made through the image API waits for its client.
    pub api_wait: Option<ApiWait>,
    /// Set while the image is in the Recycle Bin.
    pub deleted: Option<super::lifecycle::DeletedInfo>,
    /// What uses the image; Delete is refused while anything does. The owner sees all of
    /// them, an account the image is shared with its own.
    pub references: Vec<super::lifecycle::ImageReference>,
    /// Set for an encrypted image.
    #[serde(default)]
    pub encryption: Option<ImageEncryption>,
    /// The format its bytes become once received and checked.
    #[serde(default)]
    pub convert_to: super::conversion::ConvertTo,
    /// A converted image's file as it was received.
    #[serde(default)]
    pub source_file: Option<super::conversion::SourceFile>,
    /// Glance's signature properties, as set.
    #[serde(default)]
    pub signature: super::signature::SignatureProperties,
    /// What the bytes' signature verified with; `None` for an image not (yet) verified.
    #[serde(default)]
    pub verified_signature: Option<super::signature::VerifiedSignature>,
    /// The images it was made from, nearest first (filled in by the service).
    #[serde(default)]
    pub lineage: Vec<Ancestor>,
    /// When it is, or was, deprecated.
    #[serde(default)]
    pub deprecate_at_ms: Option<i64>,
    /// Deprecated now (judged by the service's clock).
    #[serde(default)]
    pub deprecated: bool,
    /// Hidden from default lists (Glance's `os_hidden`).
    #[serde(default)]
    pub hidden: bool,
}

impl ImageDetail {
    /// Whether the image will change without anyone acting, so the page should refresh.
    pub fn changes_by_itself(&self) -> bool {
        self.status.is_in_progress() && self.api_wait.is_none()
    }

    /// Whether its data came, or comes, through the image API rather than a URL, a local
    /// file or another image.
    pub fn from_api(&self) -> bool {
        self.source_url.is_none()
            && self.source_file_name.is_none()
            && self.source_image_id.is_none()
    }

    /// Why Delete cannot move the image to the Recycle Bin now, if it cannot.
    pub fn delete_blocked_reason(&self) -> Option<String> {
        super::lifecycle::DeleteCheck {
            status: self.status,
            protected: self.attributes.protected,
            browser_upload: self.source_file_name.is_some(),
            references: &self.references,
        }
        .blocked_reason()
    }

    /// Why Create shared Image is unavailable for this image, if it is.
    pub fn create_shared_blocked_reason(&self) -> Option<&'static str> {
        if self.shared_by.is_some() {
            Some("Only the owner account can create a shared image from it.")
        } else if self.status == ImageStatus::Deactivated {
            Some("The image is Deactivated: reactivate it first.")
        } else if self.status != ImageStatus::Active {
            Some("A shared image can be created once the image is Active.")
        } else if self.visibility != super::image_spec::Visibility::Private {
            Some("A shared image can be created only from a Private image.")
        } else {
            None
        }
    }

    /// Why Create shared Image is unavailable, its key included (a copy shares its data key).
    pub fn create_shared_blocked(&self) -> Option<String> {
        self.create_shared_blocked_reason()
            .map(str::to_owned)
            .or_else(|| {
                self.encryption
                    .as_ref()
                    .and_then(|e| e.key.unusable_reason())
            })
    }

    /// Why Replicate is unavailable for this image, if it is.
    pub fn replicate_blocked_reason(&self) -> Option<String> {
        if self.shared_by.is_some() {
            return Some("Only the owner account can replicate it.".into());
        }
        if self.status != ImageStatus::Active {
            return Some("An image can be replicated once it is Active.".into());
        }
        self.encryption
            .as_ref()
            .and_then(|e| e.key.unusable_reason())
    }

    /// The image this one is a replica of, if Replicate made it.
    pub fn replica_of(&self) -> Option<&str> {
        self.source_url.as_deref().and_then(replica_source)
    }

    /// Why no download link can be made for this image now, if so.
    pub fn download_blocked_reason(&self) -> Option<&'static str> {
        match self.status {
            ImageStatus::Active => None,
            ImageStatus::Deactivated => Some(
                "Downloads are refused while the image is Deactivated: new links cannot be made, and links issued before answer that it is deactivated.",
            ),
            _ => Some("A download link can be created once the image is Active."),
        }
    }

    /// Why Share to another Account is unavailable for this image, if it is.
    pub fn share_blocked_reason(&self) -> Option<&'static str> {
        if self.shared_by.is_some() {
            Some("Only the owner account can share it.")
        } else if self.status == ImageStatus::Deactivated {
            Some("The image is Deactivated: reactivate it first.")
        } else if self.status != ImageStatus::Active {
            Some("An image can be shared once it is Active.")
        } else {
            None
        }
    }
}

/// An account's use of its quotas, shown above the Image List.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountUsage {
    /// Every image of the account, the Recycle Bin's too.
    pub image_count: u64,
    pub image_limit: u64,
    pub stored_bytes: u64,
    pub storage_limit_bytes: u64,
    /// The images in the Recycle Bin, which count towards both quotas, and their bytes.
    pub recycle_bin_images: u64,
    pub recycle_bin_bytes: u64,
}

/// What a batch Delete did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchDeleteResult {
    /// Names of the deleted images.
    pub deleted: Vec<String>,
    /// Images left alone, each with its name and why.
    pub skipped: Vec<SkippedImage>,
}

/// What a batch action (Approve, Reject, Restore, Destroy) did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchOutcome {
    /// Names of the images it was done to.
    pub done: Vec<String>,
    /// Images left as they were, each with its name and why.
    pub skipped: Vec<SkippedImage>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedImage {
    pub id: String,
    pub name: String,
    pub reason: String,
}

/// A signed download link, usable without a session until it expires or is revoked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownloadLink {
    /// Path and query; the page adds its own origin.
    pub path: String,
    pub expires_at_ms: i64,
}

/// How long a download link works (the UCloudStack guide: 24 hours).
pub const DOWNLOAD_LINK_HOURS: i64 = 24;

/// The SRN-style identifier of an image, unique across the console.
pub fn image_srn(account_id: &str, image_id: &str) -> String {
    format!("srn:image-console::{account_id}:image::image/{image_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trips() {
        for s in ImageStatus::ALL {
            assert_eq!(ImageStatus::from_db(s.as_str()), Some(s));
        }
        assert_eq!(ImageStatus::from_db("pending_delete"), None);
    }

    #[test]
    fn progress_percent() {
        let p = |done, total| ImportProgress {
            bytes_done: done,
            bytes_total: total,
        };
        assert_eq!(p(0, Some(100)).percent(), Some(0));
        assert_eq!(p(50, Some(200)).percent(), Some(25));
        assert_eq!(p(300, Some(200)).percent(), Some(100));
        assert_eq!(p(10, None).percent(), None);
        assert_eq!(p(10, Some(0)).percent(), None);
        assert_eq!(p(u64::MAX / 2, Some(u64::MAX)).percent(), Some(49));
    }
}

/// One ancestor of an image made from another (Create shared Image, Replicate): its source
/// is depth 1, that image's source depth 2, and so on up to the root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ancestor {
    pub depth: u32,
    pub id: String,
    /// The account that held it when the image was made from it.
    pub account_id: String,
    pub seen: AncestorState,
}

/// What the viewer may know of an ancestor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AncestorState {
    /// One of the viewer's account's images, as it is now.
    Image { name: String, status: ImageStatus },
    /// An image of another account: only its id and account are shown.
    OtherAccount,
    /// Destroyed: it no longer exists.
    Destroyed,
}

impl Ancestor {
    /// "an image of account X", "destroyed", or the image's name.
    pub fn describe(&self) -> String {
        match &self.seen {
            AncestorState::Image { name, .. } => name.clone(),
            AncestorState::OtherAccount => format!("an image of account {}", self.account_id),
            AncestorState::Destroyed => "destroyed".to_owned(),
        }
    }
}
