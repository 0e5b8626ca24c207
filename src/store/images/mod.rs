//! Image rows and their tags. Every query a person's request can reach filters by account,
//! and every change is written together with its Work History event, in one transaction.

mod changes;
mod imports;
mod lifecycle;
mod properties;
#[cfg(feature = "seed")]
mod seed;
pub(super) mod transition;

pub use imports::{ClaimedBody, ClaimedImport, InterruptedImport, Reservation};
pub(super) use lifecycle::end_references_of_member;
pub use lifecycle::{
    BinOutcome, DestroyStart, PurgeTarget, ReferenceOutcome, Remover, StatusChangeOutcome,
};

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::history::{NewEvent, insert_event};
use super::{Store, to_i64, to_u64};
use crate::domain::attributes::{Architecture, BootMode, Features};
use crate::domain::history::{HistoryTopic, SYSTEM_WORKER, WorkResult, notes};
use crate::domain::image::{
    ApiWait, DiskFormat, ImageDetail, ImageStatus, ImageSummary, ImportProgress, image_srn,
};
use crate::domain::image_spec::{ImageAttributes, Visibility};
use crate::domain::lifecycle::DeletedInfo;
use crate::domain::os_catalogue::{OperatingSystem, OsPlatform, OsVersion};
use crate::domain::tags::{Tag, TagPair};

/// A new image, as the service hands it to the store.
#[derive(Clone, Debug)]
pub struct NewImageRow {
    pub id: String,
    pub account_id: String,
    pub attributes: ImageAttributes,
    pub visibility: Visibility,
    pub image_type: &'static str,
    pub source_url: Option<String>,
    /// `algorithm:hex`, as `ExpectedChecksum::to_db` writes it.
    pub expected_checksum: Option<String>,
    /// Set when the bytes come as an upload of a local file: the image starts Uploading.
    pub local_file: Option<LocalFileRow>,
    /// The format inspection must find.
    pub declared_format: DiskFormat,
    pub created_by: String,
    pub created_at_ms: i64,
}

/// The local file an Uploading image waits for.
#[derive(Clone, Debug)]
pub struct LocalFileRow {
    pub name: String,
    pub size_bytes: u64,
}

/// An image row as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRow {
    /// Creation order, unique across accounts; every list sort breaks ties on it.
    pub seq: i64,
    pub id: String,
    pub account_id: String,
    pub attributes: ImageAttributes,
    pub visibility: Visibility,
    pub status: ImageStatus,
    pub failure_reason: Option<String>,
    pub image_type: String,
    pub source_url: Option<String>,
    pub source_file_name: Option<String>,
    pub disk_format: Option<DiskFormat>,
    pub size_bytes: Option<u64>,
    pub virtual_size_bytes: Option<u64>,
    pub hash_algo: Option<String>,
    pub hash_value: Option<String>,
    pub checksum_md5: Option<String>,
    pub expected_checksum: Option<String>,
    /// What the creator declared; inspection must find this format.
    pub declared_format: DiskFormat,
    pub blob_key: Option<String>,
    pub bytes_done: u64,
    pub bytes_total: Option<u64>,
    pub import_attempts: u32,
    pub link_generation: i64,
    pub created_by: String,
    pub created_at_ms: i64,
    pub updated_by: String,
    pub updated_at_ms: i64,
    /// The image whose bytes Create shared Image reused for this one.
    pub source_image_id: Option<String>,
    /// Set while the image is in the Recycle Bin.
    pub deleted: Option<DeletedInfo>,
}

/// The attributes an Edit may change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttributeUpdate {
    pub attributes: ImageAttributes,
    pub visibility: Visibility,
}

/// What an Edit did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateOutcome {
    Written,
    /// The image changed since the form was loaded (or is gone).
    Changed,
    /// Private was asked for while this many shares are in force.
    ActiveShares(u64),
}

/// The outcome of a finished import, written in one update.
#[derive(Clone, Debug)]
pub struct ImportedBytes {
    pub disk_format: DiskFormat,
    pub size_bytes: u64,
    pub virtual_size_bytes: u64,
    pub hash_algo: &'static str,
    pub hash_value: String,
    pub checksum_md5: String,
    pub blob_key: String,
}

/// Per-account limits checked, atomically, when an image is created.
#[derive(Clone, Copy, Debug)]
pub struct QuotaLimits {
    pub max_images: u64,
    pub max_stored_bytes: u64,
}

/// How much of its quota an account uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    /// Every image, the Recycle Bin's too.
    pub image_count: u64,
    /// Bytes of stored images (the Recycle Bin's too) plus the announced size of imports in
    /// progress.
    pub stored_bytes: u64,
    /// How many of them are in the Recycle Bin, and the bytes those take.
    pub recycle_bin_images: u64,
    pub recycle_bin_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateImageError {
    #[error("image quota reached")]
    ImageQuota(Usage),
    #[error("storage quota reached")]
    StorageQuota(Usage),
    #[error("too many uploads in progress")]
    TooManyUploads(u64),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// A new image of an existing image's bytes (Create shared Image).
#[derive(Clone, Debug)]
pub struct SharedCopy<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub created_by: &'a str,
    pub created_at_ms: i64,
}

/// What Create shared Image did.
#[derive(Debug)]
pub enum CreateSharedOutcome {
    Created,
    NotFound,
    /// The source is not a Private, Active image with stored bytes (as it is now).
    NotEligible(Box<ImageRow>),
    ImageQuota(Usage),
}

/// The facts a download link is checked against.
#[derive(Clone, Debug)]
pub struct DownloadTarget {
    pub account_id: String,
    pub name: String,
    pub status: ImageStatus,
    pub blob_key: Option<String>,
    pub size_bytes: Option<u64>,
    pub link_generation: i64,
    pub disk_format: Option<DiskFormat>,
}

pub(super) const COLUMNS: &str = "i.seq, i.id, i.account_id, i.name, i.description, i.os_type, i.os_version, i.min_disk_gb, \
    i.min_ram_gb, i.visibility, i.protected, i.architecture, i.boot_mode, i.features, i.status, \
    i.failure_reason, i.image_type, i.source_url, i.source_file_name, i.disk_format, i.size_bytes, \
    i.virtual_size_bytes, i.hash_algo, i.hash_value, i.checksum_md5, i.expected_checksum, i.declared_format, i.blob_key, i.bytes_done, \
    i.bytes_total, i.import_attempts, i.link_generation, i.created_by, i.created_at, \
    i.updated_by, i.updated_at, i.source_image_id, i.deleted_at, i.deleted_by, i.restore_status, \
    i.destroy_at";

/// The columns of `ImageAttributes`, in the order `bind_attributes` binds them.
const ATTRIBUTE_COLUMNS: &str = "name, description, os_type, min_disk_gb, min_ram_gb, protected, architecture, boot_mode, features";

/// Binds an image's attributes in the order of `ATTRIBUTE_COLUMNS`.
fn bind_attributes<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    a: &'q ImageAttributes,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    query
        .bind(&a.name)
        .bind(&a.description)
        .bind(a.os.platform.as_str())
        .bind(to_i64(a.min_disk_gb))
        .bind(to_i64(a.min_ram_gb))
        .bind(i64::from(a.protected))
        .bind(a.architecture.as_str())
        .bind(a.boot_mode.as_str())
        .bind(a.features.to_db())
}

/// The System version as stored: NULL when not specified. (Written beside
/// `ATTRIBUTE_COLUMNS`, which every statement numbers its parameters after.)
pub(super) fn os_version(a: &ImageAttributes) -> Option<String> {
    a.os.version.as_ref().map(|v| v.as_str().to_owned())
}

/// Reads an image's attributes from a row selected with `COLUMNS`.
fn attributes_from_row(r: &AnyRow) -> sqlx::Result<ImageAttributes> {
    let text = |c: &str| r.try_get::<String, _>(c);
    let os_type = text("os_type")?;
    let platform =
        OsPlatform::from_value(&os_type).ok_or_else(|| decode_error("os_type", &os_type))?;
    let version = match r.try_get::<Option<String>, _>("os_version")? {
        None => None,
        Some(v) => {
            Some(OsVersion::stored(platform, &v).ok_or_else(|| decode_error("os_version", &v))?)
        }
    };
    let architecture = text("architecture")?;
    let boot_mode = text("boot_mode")?;
    Ok(ImageAttributes {
        name: text("name")?,
        description: text("description")?,
        os: OperatingSystem { platform, version },
        min_disk_gb: to_u64(r.try_get("min_disk_gb")?),
        min_ram_gb: to_u64(r.try_get("min_ram_gb")?),
        protected: r.try_get::<i64, _>("protected")? != 0,
        architecture: Architecture::parse(&architecture)
            .map_err(|_| decode_error("architecture", &architecture))?,
        boot_mode: BootMode::parse(&boot_mode)
            .map_err(|_| decode_error("boot_mode", &boot_mode))?,
        features: Features::from_db(&text("features")?),
    })
}

pub(super) fn decode_error(column: &str, value: &str) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: format!("unexpected value {value:?}").into(),
    }
}

/// The Recycle Bin's columns of a row selected with `COLUMNS`: all set, or none.
fn deleted_from_row(r: &AnyRow) -> sqlx::Result<Option<DeletedInfo>> {
    let deleted_at: Option<i64> = r.try_get("deleted_at")?;
    let deleted_by: Option<String> = r.try_get("deleted_by")?;
    let restore_status: Option<String> = r.try_get("restore_status")?;
    let destroy_at: Option<i64> = r.try_get("destroy_at")?;
    let (Some(deleted_at_ms), Some(deleted_by), Some(restore), Some(destroy_at_ms)) =
        (deleted_at, deleted_by, restore_status, destroy_at)
    else {
        return Ok(None);
    };
    Ok(Some(DeletedInfo {
        deleted_at_ms,
        deleted_by,
        restores_to: ImageStatus::from_db(&restore)
            .ok_or_else(|| decode_error("restore_status", &restore))?,
        destroy_at_ms,
    }))
}

impl ImageRow {
    pub(super) fn from_row(r: &AnyRow) -> sqlx::Result<Self> {
        let text = |c: &str| r.try_get::<String, _>(c);
        let visibility = text("visibility")?;
        let status = text("status")?;
        let disk_format: Option<String> = r.try_get("disk_format")?;
        let opt_u64 = |c: &str| -> sqlx::Result<Option<u64>> {
            Ok(r.try_get::<Option<i64>, _>(c)?.map(to_u64))
        };
        Ok(Self {
            seq: r.try_get("seq")?,
            id: text("id")?,
            account_id: text("account_id")?,
            attributes: attributes_from_row(r)?,
            visibility: Visibility::parse(&visibility)
                .map_err(|_| decode_error("visibility", &visibility))?,
            status: ImageStatus::from_db(&status).ok_or_else(|| decode_error("status", &status))?,
            failure_reason: r.try_get("failure_reason")?,
            image_type: text("image_type")?,
            source_url: r.try_get("source_url")?,
            source_file_name: r.try_get("source_file_name")?,
            disk_format: match disk_format {
                Some(f) => {
                    Some(DiskFormat::from_db(&f).ok_or_else(|| decode_error("disk_format", &f))?)
                }
                None => None,
            },
            size_bytes: opt_u64("size_bytes")?,
            virtual_size_bytes: opt_u64("virtual_size_bytes")?,
            hash_algo: r.try_get("hash_algo")?,
            hash_value: r.try_get("hash_value")?,
            checksum_md5: r.try_get("checksum_md5")?,
            expected_checksum: r.try_get("expected_checksum")?,
            declared_format: match r.try_get::<Option<String>, _>("declared_format")? {
                Some(f) => {
                    DiskFormat::from_db(&f).ok_or_else(|| decode_error("declared_format", &f))?
                }
                None => DiskFormat::Qcow2,
            },
            blob_key: r.try_get("blob_key")?,
            bytes_done: to_u64(r.try_get("bytes_done")?),
            bytes_total: opt_u64("bytes_total")?,
            import_attempts: u32::try_from(r.try_get::<i64, _>("import_attempts")?)
                .unwrap_or(u32::MAX),
            link_generation: r.try_get("link_generation")?,
            created_by: text("created_by")?,
            created_at_ms: r.try_get("created_at")?,
            updated_by: text("updated_by")?,
            updated_at_ms: r.try_get("updated_at")?,
            source_image_id: r.try_get("source_image_id")?,
            deleted: deleted_from_row(r)?,
        })
    }

    /// What an image made through the image API (no URL, no local file, no source image)
    /// waits for from its client, if anything.
    fn api_wait(&self) -> Option<ApiWait> {
        if self.source_url.is_some()
            || self.source_file_name.is_some()
            || self.source_image_id.is_some()
        {
            return None;
        }
        match self.status {
            ImageStatus::Queued => Some(ApiWait::Data),
            ImageStatus::Uploading => Some(ApiWait::Import),
            _ => None,
        }
    }

    fn progress(&self) -> Option<ImportProgress> {
        if self.api_wait().is_some() {
            return None;
        }
        matches!(self.status, ImageStatus::Importing | ImageStatus::Uploading).then_some(
            ImportProgress {
                bytes_done: self.bytes_done,
                bytes_total: self.bytes_total,
            },
        )
    }

    /// The owner's Account ID when `viewer` is another account (a recipient of a share).
    fn shared_by(&self, viewer: &str) -> Option<String> {
        (self.account_id != viewer).then(|| self.account_id.clone())
    }

    /// The row as a line of `viewer`'s Image List.
    pub fn into_summary(self, viewer: &str) -> ImageSummary {
        ImageSummary {
            shared_by: self.shared_by(viewer),
            progress: self.progress(),
            api_wait: self.api_wait(),
            id: self.id,
            name: self.attributes.name,
            os: self.attributes.os,
            status: self.status,
            visibility: self.visibility,
            protected: self.attributes.protected,
            size_bytes: self.size_bytes,
            failure_reason: self.failure_reason,
            source_file_name: self.source_file_name,
            created_at_ms: self.created_at_ms,
        }
    }

    /// The row as Image Details shows it, whole. What another account may see of it is the
    /// service's rule (`service::shares::as_seen_by_recipient`).
    pub fn into_detail(self, tags: Vec<TagPair>, active_shares: u64) -> ImageDetail {
        ImageDetail {
            progress: self.progress(),
            api_wait: self.api_wait(),
            srn: image_srn(&self.account_id, &self.id),
            id: self.id,
            account_id: self.account_id,
            attributes: self.attributes,
            status: self.status,
            failure_reason: self.failure_reason,
            image_type: self.image_type,
            source_url: self.source_url,
            source_file_name: self.source_file_name,
            size_bytes: self.size_bytes,
            virtual_size_bytes: self.virtual_size_bytes,
            disk_format: self.disk_format,
            hash_algorithm: self.hash_algo,
            hash_value: self.hash_value,
            checksum_md5: self.checksum_md5,
            expected_checksum: self
                .expected_checksum
                .as_deref()
                .and_then(crate::domain::checksum::ExpectedChecksum::from_db),
            visibility: self.visibility,
            tags,
            created_by: self.created_by,
            created_at_ms: self.created_at_ms,
            updated_by: self.updated_by,
            updated_at_ms: self.updated_at_ms,
            shared_by: None,
            active_shares,
            source_image_id: self.source_image_id,
            deleted: self.deleted,
            references: Vec::new(),
        }
    }
}

async fn fetch_row(
    conn: &mut AnyConnection,
    account_id: &str,
    id: &str,
) -> sqlx::Result<Option<ImageRow>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM images i WHERE i.id = $1 AND i.account_id = $2"
    ))
    .bind(id)
    .bind(account_id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(ImageRow::from_row).transpose()
}

/// The bytes an image `i` counts towards its account's storage: what an import has reserved
/// (see `reserve_import_bytes`), the file size an upload announced, its size once stored, and nothing for a second image of the
/// same bytes (Create shared Image), whose file is stored once.
const STORED_BYTES: &str = "CASE WHEN i.status = 'importing' THEN COALESCE(i.bytes_reserved, i.bytes_total, 0) \
     WHEN i.status = 'uploading' THEN COALESCE(i.bytes_total, 0) \
     WHEN i.source_image_id IS NOT NULL AND EXISTS (SELECT 1 FROM images o \
         WHERE o.blob_key = i.blob_key AND o.account_id = i.account_id AND o.seq < i.seq) THEN 0 \
     ELSE COALESCE(i.size_bytes, 0) END";

async fn usage(conn: &mut AnyConnection, account_id: &str) -> sqlx::Result<Usage> {
    let row = sqlx::query(&format!(
        "SELECT COUNT(*) AS images, CAST(COALESCE(SUM({STORED_BYTES}), 0) AS BIGINT) AS bytes, \
         CAST(COALESCE(SUM(CASE WHEN i.status IN ($2, $3) THEN 1 ELSE 0 END), 0) AS BIGINT) AS binned, \
         CAST(COALESCE(SUM(CASE WHEN i.status IN ($2, $3) THEN {STORED_BYTES} ELSE 0 END), 0) AS BIGINT) AS binned_bytes \
         FROM images i WHERE i.account_id = $1"
    ))
    .bind(account_id)
    .bind(ImageStatus::Deleted.as_str())
    .bind(ImageStatus::Deleting.as_str())
    .fetch_one(&mut *conn)
    .await?;
    Ok(Usage {
        image_count: to_u64(row.try_get("images")?),
        stored_bytes: to_u64(row.try_get("bytes")?),
        recycle_bin_images: to_u64(row.try_get("binned")?),
        recycle_bin_bytes: to_u64(row.try_get("binned_bytes")?),
    })
}

/// Takes the account's write lock for the rest of the transaction, so two creates cannot both
/// pass the quota check. Writing the row locks it in PostgreSQL and the database in SQLite.
async fn lock_account(conn: &mut AnyConnection, account_id: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE accounts SET created_at = created_at WHERE id = $1")
        .bind(account_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Takes the image row's write lock for the rest of the transaction and reads the row as it
/// is then (`None`: no such image in the account). Rules that read other rows about the image
/// (its shares) read them after this, so two changes of the same image are checked one after
/// the other: PostgreSQL gives each later statement a snapshot taken once the lock is held,
/// and SQLite has one writer at a time.
pub(super) async fn lock_image(
    conn: &mut AnyConnection,
    account_id: &str,
    id: &str,
) -> sqlx::Result<Option<ImageRow>> {
    let done =
        sqlx::query("UPDATE images SET updated_at = updated_at WHERE id = $1 AND account_id = $2")
            .bind(id)
            .bind(account_id)
            .execute(&mut *conn)
            .await?;
    if done.rows_affected() != 1 {
        return Ok(None);
    }
    fetch_row(conn, account_id, id).await
}

impl Store {
    pub async fn account_usage(&self, account_id: &str) -> sqlx::Result<Usage> {
        let mut conn = self.pool.acquire().await?;
        usage(&mut conn, account_id).await
    }

    pub async fn get_image(&self, account_id: &str, id: &str) -> sqlx::Result<Option<ImageRow>> {
        let mut conn = self.pool.acquire().await?;
        fetch_row(&mut conn, account_id, id).await
    }

    /// The image's tags, ordered by key.
    pub async fn list_tags(&self, account_id: &str, image_id: &str) -> sqlx::Result<Vec<TagPair>> {
        let rows = sqlx::query(
            "SELECT tag_key, tag_value FROM image_tags WHERE image_id = $1 AND account_id = $2 ORDER BY tag_key",
        )
        .bind(image_id)
        .bind(account_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TagPair {
                    key: r.try_get("tag_key")?,
                    value: r.try_get("tag_value")?,
                })
            })
            .collect()
    }

    /// Looks an image up by id alone, for a signed download link: the signature, which
    /// names the account, is what authorizes it.
    pub async fn find_download_target(&self, id: &str) -> sqlx::Result<Option<DownloadTarget>> {
        let row = sqlx::query(
            "SELECT account_id, name, status, blob_key, size_bytes, link_generation, disk_format FROM images WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let status: String = r.try_get("status")?;
            Ok(DownloadTarget {
                account_id: r.try_get("account_id")?,
                name: r.try_get("name")?,
                status: ImageStatus::from_db(&status)
                    .ok_or_else(|| decode_error("status", &status))?,
                blob_key: r.try_get("blob_key")?,
                size_bytes: r.try_get::<Option<i64>, _>("size_bytes")?.map(to_u64),
                link_generation: r.try_get("link_generation")?,
                disk_format: r
                    .try_get::<Option<String>, _>("disk_format")?
                    .as_deref()
                    .and_then(DiskFormat::from_db),
            })
        })
        .transpose()
    }

    // ---- Import worker. Each call names the image's account too, and changes a row only
    // ---- from the status the worker expects, so a deleted or finished image is never revived.

    /// Every blob key a row points at, to tell orphaned files from live ones.
    pub async fn list_blob_keys(&self) -> sqlx::Result<Vec<String>> {
        let rows = sqlx::query("SELECT blob_key FROM images WHERE blob_key IS NOT NULL")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| r.try_get("blob_key")).collect()
    }
}

/// Marks an image in status `from` Active with its bytes, recording it. `false` when no such
/// row was in that status (it was deleted meanwhile).
pub(super) async fn activate(
    conn: &mut AnyConnection,
    account_id: &str,
    id: &str,
    from: ImageStatus,
    bytes: &ImportedBytes,
    now_ms: i64,
) -> sqlx::Result<bool> {
    let moved = (from, ImageStatus::Active);
    if !keep_bytes(conn, (account_id, id), moved, "", bytes, now_ms).await? {
        return Ok(false);
    }
    let name = image_name(&mut *conn, account_id, id).await?;
    insert_event(
        &mut *conn,
        account_id,
        id,
        &name,
        &NewEvent::succeeded(HistoryTopic::ImportFinished, SYSTEM_WORKER),
        now_ms,
    )
    .await?;
    Ok(true)
}

/// Gives an image in status `moved.0` (and meeting `also`, SQL on its row, if not empty) its
/// stored bytes and the status `moved.1`, counts its reference to them, and forgets what was
/// incoming. `false` when no such row was in that status.
pub(super) async fn keep_bytes(
    conn: &mut AnyConnection,
    (account_id, id): (&str, &str),
    (from, to): (ImageStatus, ImageStatus),
    also: &str,
    bytes: &ImportedBytes,
    now_ms: i64,
) -> sqlx::Result<bool> {
    let done = sqlx::query(&format!(
        "UPDATE images SET status = $1, failure_reason = NULL, disk_format = $2, \
         size_bytes = $3, virtual_size_bytes = $4, hash_algo = $5, hash_value = $6, \
         checksum_md5 = $7, blob_key = $8, bytes_done = $3, bytes_total = $3, updated_at = $9 \
         WHERE id = $10 AND account_id = $11 AND status = $12{also}"
    ))
    .bind(to.as_str())
    .bind(bytes.disk_format.as_str())
    .bind(to_i64(bytes.size_bytes))
    .bind(to_i64(bytes.virtual_size_bytes))
    .bind(bytes.hash_algo)
    .bind(&bytes.hash_value)
    .bind(&bytes.checksum_md5)
    .bind(&bytes.blob_key)
    .bind(now_ms)
    .bind(id)
    .bind(account_id)
    .bind(from.as_str())
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    sqlx::query("INSERT INTO image_blobs (blob_key, refs) VALUES ($1, 1)")
        .bind(&bytes.blob_key)
        .execute(&mut *conn)
        .await?;
    // The bytes are the image's now: nothing incoming is left to resume or remove.
    super::incoming::forget_all(&mut *conn, id).await?;
    Ok(true)
}

/// Drops one image's reference to a stored file; `true` when it was the last, so the file
/// may be removed once the transaction commits.
async fn release_blob_ref(conn: &mut AnyConnection, blob_key: &str) -> sqlx::Result<bool> {
    let counted = sqlx::query("UPDATE image_blobs SET refs = refs - 1 WHERE blob_key = $1")
        .bind(blob_key)
        .execute(&mut *conn)
        .await?;
    if counted.rows_affected() == 0 {
        // Not counted: this image was its only user.
        return Ok(true);
    }
    let gone = sqlx::query("DELETE FROM image_blobs WHERE blob_key = $1 AND refs <= 0")
        .bind(blob_key)
        .execute(&mut *conn)
        .await?;
    Ok(gone.rows_affected() == 1)
}

pub(super) async fn image_name(
    conn: &mut AnyConnection,
    account_id: &str,
    id: &str,
) -> sqlx::Result<String> {
    sqlx::query("SELECT name FROM images WHERE id = $1 AND account_id = $2")
        .bind(id)
        .bind(account_id)
        .fetch_one(&mut *conn)
        .await?
        .try_get("name")
}
