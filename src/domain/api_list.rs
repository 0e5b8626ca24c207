//! The image API's list (`GET /v2/images`) in the console's terms: which fields of the API's
//! image document a filter compares and a sort orders by, and the status names the API uses.
//! `server::glance` parses the query into an `ApiListQuery`; the store answers it in SQL.

use super::deprecation::Inclusion;
use super::image::ImageStatus;
use super::share::ShareStatus;
use super::tags::TagPair;

/// The id of the one store images are kept in, as the API names it.
pub const STORE_ID: &str = "default";

/// Most images one page holds, and how many without `limit`.
pub const MAX_LIMIT: u32 = 1000;
pub const DEFAULT_LIMIT: u32 = 25;

/// The API's name for a status: Glance's, where the console has a word of its own. An import
/// from a URL is `importing`; data sent in a request body is `saving`.
pub fn api_status(status: ImageStatus, from_url: bool) -> &'static str {
    match status {
        ImageStatus::Queued => "queued",
        ImageStatus::Uploading => "uploading",
        ImageStatus::Importing if from_url => "importing",
        ImageStatus::Importing => "saving",
        // Glance's status while an import task works on data it has.
        ImageStatus::Converting => "importing",
        ImageStatus::Active => "active",
        ImageStatus::Failed => "killed",
        ImageStatus::Deactivated => "deactivated",
        ImageStatus::Deleted => "pending_delete",
        ImageStatus::Deleting => "deleted",
    }
}

/// A key the list sorts by: a field of the image document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiSortKey {
    Name,
    Status,
    ContainerFormat,
    DiskFormat,
    Size,
    VirtualSize,
    Id,
    CreatedAt,
    UpdatedAt,
    MinDisk,
    MinRam,
    Visibility,
}

impl ApiSortKey {
    pub const ALL: [ApiSortKey; 12] = [
        ApiSortKey::Name,
        ApiSortKey::Status,
        ApiSortKey::ContainerFormat,
        ApiSortKey::DiskFormat,
        ApiSortKey::Size,
        ApiSortKey::VirtualSize,
        ApiSortKey::Id,
        ApiSortKey::CreatedAt,
        ApiSortKey::UpdatedAt,
        ApiSortKey::MinDisk,
        ApiSortKey::MinRam,
        ApiSortKey::Visibility,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ApiSortKey::Name => "name",
            ApiSortKey::Status => "status",
            ApiSortKey::ContainerFormat => "container_format",
            ApiSortKey::DiskFormat => "disk_format",
            ApiSortKey::Size => "size",
            ApiSortKey::VirtualSize => "virtual_size",
            ApiSortKey::Id => "id",
            ApiSortKey::CreatedAt => "created_at",
            ApiSortKey::UpdatedAt => "updated_at",
            ApiSortKey::MinDisk => "min_disk",
            ApiSortKey::MinRam => "min_ram",
            ApiSortKey::Visibility => "visibility",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }
}

/// One key of the list's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiSort {
    pub key: ApiSortKey,
    pub descending: bool,
}

/// A field of the image document that a filter compares with the text the document shows
/// (numbers in decimal, `true`/`false`, times as RFC 3339 whole seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiField {
    Id,
    Name,
    Owner,
    Visibility,
    Status,
    /// The system platform (`os_distro`); filter values are normalised to the console's.
    OsDistro,
    /// The operating system (`os_type`): `linux` or `windows`.
    OsType,
    OsVersion,
    DiskFormat,
    ContainerFormat,
    MinDisk,
    /// In MB, as the document shows it.
    MinRam,
    Size,
    VirtualSize,
    Protected,
    Architecture,
    /// `hw_firmware_type`: the boot mode.
    FirmwareType,
    /// `hw_qemu_guest_agent`: `yes` or `no`.
    QemuGuestAgent,
    Description,
    Checksum,
    HashAlgo,
    HashValue,
    FailureReason,
    Stores,
    SelfLink,
    File,
    Schema,
    CreatedAt,
    UpdatedAt,
}

impl ApiField {
    /// The document field a query key names; other keys name free-form properties.
    pub fn from_key(key: &str) -> Option<Self> {
        Some(match key {
            "id" => ApiField::Id,
            "name" => ApiField::Name,
            "owner" => ApiField::Owner,
            "visibility" => ApiField::Visibility,
            "status" => ApiField::Status,
            "os_distro" => ApiField::OsDistro,
            "os_type" => ApiField::OsType,
            "os_version" => ApiField::OsVersion,
            "disk_format" => ApiField::DiskFormat,
            "container_format" => ApiField::ContainerFormat,
            "min_disk" => ApiField::MinDisk,
            "min_ram" => ApiField::MinRam,
            "size" => ApiField::Size,
            "virtual_size" => ApiField::VirtualSize,
            "protected" => ApiField::Protected,
            "architecture" => ApiField::Architecture,
            "hw_firmware_type" => ApiField::FirmwareType,
            "hw_qemu_guest_agent" => ApiField::QemuGuestAgent,
            "description" => ApiField::Description,
            "checksum" => ApiField::Checksum,
            "os_hash_algo" => ApiField::HashAlgo,
            "os_hash_value" => ApiField::HashValue,
            "failure_reason" => ApiField::FailureReason,
            "stores" => ApiField::Stores,
            "self" => ApiField::SelfLink,
            "file" => ApiField::File,
            "schema" => ApiField::Schema,
            "created_at" => ApiField::CreatedAt,
            "updated_at" => ApiField::UpdatedAt,
            _ => return None,
        })
    }
}

/// One condition of the list; an image is listed when it meets all of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiFilter {
    /// The field shows one of these texts.
    Field(ApiField, Vec<String>),
    /// The image has data of at least / at most this many bytes.
    SizeMin(u64),
    SizeMax(u64),
    /// The free-form property is set to one of these values (only an owner sees properties).
    Property(String, Vec<String>),
    /// The owner tagged the image so (`key` or `key=value`).
    Tag(TagPair),
}

/// `GET /v2/images`' query: own images outside the Recycle Bin, and images other accounts
/// share with the account whose share is in force, filtered, sorted and paged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiListQuery {
    pub filters: Vec<ApiFilter>,
    /// Which shared images are listed: those whose share has this status, or with `None`
    /// every one in force (Pending, Accepted, Rejected).
    pub member_status: Option<ShareStatus>,
    /// Most significant first; always ends with `created_at` and `id`, so the order is total.
    pub sort: Vec<ApiSort>,
    /// The page starts after this image.
    pub marker: Option<String>,
    pub limit: u32,
    /// Hidden images (`os_hidden`): left out unless `os_hidden=true` asks for them alone.
    pub hidden: Inclusion,
    /// Deprecated images: left out unless `deprecated=true` (them alone) or
    /// `deprecated=include`.
    pub deprecated: Inclusion,
}

impl Default for ApiListQuery {
    fn default() -> Self {
        Self {
            filters: Vec::new(),
            member_status: Some(ShareStatus::Accepted),
            sort: vec![
                ApiSort {
                    key: ApiSortKey::CreatedAt,
                    descending: true,
                },
                ApiSort {
                    key: ApiSortKey::Id,
                    descending: true,
                },
            ],
            marker: None,
            limit: DEFAULT_LIMIT,
            hidden: Inclusion::Exclude,
            deprecated: Inclusion::Exclude,
        }
    }
}

impl ApiListQuery {
    /// Whether shared images can match: tags and properties are the owner's, never shown to
    /// another account.
    pub fn can_match_shared(&self) -> bool {
        !self
            .filters
            .iter()
            .any(|f| matches!(f, ApiFilter::Property(..) | ApiFilter::Tag(_)))
    }
}
