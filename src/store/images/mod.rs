//! Image rows and their tags. Every query a person's request can reach filters by account,
//! and every change is written together with its Work History event, in one transaction.

mod changes;
mod conversion;
mod imports;
mod lifecycle;
pub mod lineage;
mod properties;
mod references;
mod row;
mod seed;
pub(super) mod transition;

pub use conversion::ConversionJob;
pub use imports::{ClaimedBody, ClaimedImport, InterruptedImport, Reservation};
pub use lifecycle::{BinOutcome, DestroyStart, PurgeTarget, Remover, StatusChangeOutcome};
pub use properties::DeclaredFormatOutcome;
pub use references::ReferenceOutcome;
pub(super) use references::end_references_of_member;

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
use crate::domain::os_catalogue::{
    OperatingSystem, OsPlatform, OsVersion, UNSPECIFIED_OS_TYPE, stored_os_type,
};
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
    /// An encrypted image's key (its id and name, for Work History).
    pub encryption_key: Option<ImageKey>,
    /// The format its bytes become once received and checked; `None`: not chosen (kept as
    /// they arrive, unless an image API import chooses).
    pub convert_to: Option<crate::domain::conversion::ConvertTo>,
    /// Glance's `img_signature*` properties, as set (the bytes are verified against them).
    pub signature: crate::domain::signature::SignatureProperties,
    /// The image it is made from (a replica's source), recorded in its lineage.
    pub source_image_id: Option<String>,
    /// The Created event's message (where a replica came from).
    pub note: Option<String>,
    pub created_by: String,
    pub created_at_ms: i64,
}

/// The key an image's bytes are sealed under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageKey {
    pub id: String,
    pub name: String,
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
    /// The key an encrypted image's bytes are sealed under (chosen when it was created).
    pub encryption_key_id: Option<String>,
    /// The data key of its bytes, once an attempt at them began.
    pub data_key: Option<crate::store::keys::WrappedDataKey>,
    /// The format its bytes become once received and checked.
    pub convert_to: crate::domain::conversion::ConvertTo,
    /// The file as received, once its converted bytes became the image's.
    pub source_file: Option<crate::domain::conversion::SourceFile>,
    /// Glance's signature properties, as set.
    pub signature: crate::domain::signature::SignatureProperties,
    /// What its bytes' signature verified with.
    pub verified_signature: Option<crate::domain::signature::VerifiedSignature>,
    /// When it is, or was, deprecated.
    pub deprecate_at_ms: Option<i64>,
    /// Hidden from default lists (Glance's `os_hidden`).
    pub os_hidden: bool,
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
    /// What the bytes' signature verified with, for a signed image.
    pub verified_signature: Option<crate::domain::signature::VerifiedSignature>,
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
    /// The id a client chose belongs to another image.
    #[error("image id in use")]
    IdInUse,
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
    /// The data key of an encrypted image's bytes.
    pub data_key: Option<crate::store::keys::WrappedDataKey>,
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
     WHEN i.status = 'converting' THEN COALESCE(i.size_bytes, 0) + COALESCE(i.bytes_reserved, 0) \
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

use row::{ATTRIBUTE_COLUMNS, bind_attributes, os_version};
pub(in crate::store) use row::{COLUMNS, decode_error, signature_properties_from_row};

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
            "SELECT account_id, name, status, blob_key, size_bytes, link_generation, disk_format, \
             encryption_key_id, data_key_version, data_key_wrapped, data_key_nonce, data_key_format \
             FROM images WHERE id = $1",
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
                data_key: crate::store::keys::WrappedDataKey::from_row(&r)?,
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

/// Gives an image in status `from` its checked bytes, recording it: it becomes Active, or
/// Converting when it asked for another format (its row then names the bytes as received
/// until the conversion replaces them). The status it took; `None` when no such row was in
/// that status (it was deleted meanwhile).
pub(super) async fn activate(
    conn: &mut AnyConnection,
    account_id: &str,
    id: &str,
    from: ImageStatus,
    bytes: &ImportedBytes,
    now_ms: i64,
) -> sqlx::Result<Option<ImageStatus>> {
    let to = match convert_to(&mut *conn, account_id, id).await? {
        Some(target) if target.converts(bytes.disk_format) => ImageStatus::Converting,
        Some(_) => ImageStatus::Active,
        None => return Ok(None),
    };
    if !keep_bytes(conn, (account_id, id), (from, to), "", bytes, now_ms).await? {
        return Ok(None);
    }
    let name = image_name(&mut *conn, account_id, id).await?;
    let message = match to {
        ImageStatus::Converting => notes::received_for_conversion(bytes.disk_format),
        _ => String::new(),
    };
    insert_event(
        &mut *conn,
        account_id,
        id,
        &name,
        &NewEvent {
            message: &message,
            ..NewEvent::succeeded(HistoryTopic::ImportFinished, SYSTEM_WORKER)
        },
        now_ms,
    )
    .await?;
    Ok(Some(to))
}

/// The format an image asked its bytes to become; `None` when there is no such image.
pub(super) async fn convert_to(
    conn: &mut AnyConnection,
    account_id: &str,
    id: &str,
) -> sqlx::Result<Option<crate::domain::conversion::ConvertTo>> {
    let row = sqlx::query("SELECT convert_to FROM images WHERE id = $1 AND account_id = $2")
        .bind(id)
        .bind(account_id)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| {
        let raw: Option<String> = r.try_get("convert_to")?;
        Ok(crate::domain::conversion::ConvertTo::from_db(
            raw.as_deref(),
        ))
    })
    .transpose()
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
         checksum_md5 = $7, blob_key = $8, bytes_done = $3, bytes_total = $3, updated_at = $9, bytes_reserved = NULL, \
         import_attempts = CASE WHEN $1 = 'converting' THEN 0 ELSE import_attempts END, \
         signature_verified_at = $13, signature_subject = $14, signature_fingerprint = $15 \
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
    .bind(bytes.verified_signature.as_ref().map(|v| v.verified_at_ms))
    .bind(
        bytes
            .verified_signature
            .as_ref()
            .map(|v| v.certificate_subject.clone()),
    )
    .bind(
        bytes
            .verified_signature
            .as_ref()
            .map(|v| v.certificate_fingerprint.clone()),
    )
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
