//! Image rows and their tags. Every query a person's request can reach filters by account,
//! and every change is written together with its Work History event, in one transaction.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::history::{NewEvent, insert_event};
use super::sql::QueryParts;
use super::{Backend, Store, to_i64, to_u64};
use crate::domain::attributes::{Architecture, BootMode, Features};
use crate::domain::history::{HistoryTopic, SYSTEM_WORKER, WorkResult, notes};
use crate::domain::image::{
    DiskFormat, ImageDetail, ImageStatus, ImageSummary, ImportProgress, image_srn,
};
use crate::domain::image_spec::{ImageAttributes, OsType, Visibility};
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

/// What an import needs once it has claimed its image.
#[derive(Clone, Debug)]
pub struct ClaimedImport {
    pub source_url: String,
    /// `algorithm:hex`, if the creator gave one.
    pub expected_checksum: Option<String>,
    pub declared_format: DiskFormat,
}

/// An image whose import must be picked up again after a restart.
#[derive(Clone, Debug)]
pub struct InterruptedImport {
    pub id: String,
    pub account_id: String,
    pub status: ImageStatus,
    pub import_attempts: u32,
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
    pub image_count: u64,
    /// Bytes of Active images plus the announced size of imports in progress.
    pub stored_bytes: u64,
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

/// The outcome of reserving storage for an import.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reservation {
    /// The import may hold this many bytes in all.
    Granted(u64),
    /// Not even the bytes needed fit: only `room` is left in the quota.
    NoRoom { room: u64 },
    /// The image is no longer Importing (deleted or cancelled).
    Gone,
}

/// What a delete did.
#[derive(Debug)]
pub enum DeleteOutcome {
    /// Gone. `release_blob` is true when no other image uses its bytes, which may then be
    /// removed.
    Deleted {
        row: Box<ImageRow>,
        release_blob: bool,
    },
    Protected(Box<ImageRow>),
    NotFound,
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

pub(super) const COLUMNS: &str = "i.seq, i.id, i.account_id, i.name, i.description, i.os_type, i.min_disk_gb, \
    i.min_ram_gb, i.visibility, i.protected, i.architecture, i.boot_mode, i.features, i.status, \
    i.failure_reason, i.image_type, i.source_url, i.source_file_name, i.disk_format, i.size_bytes, \
    i.virtual_size_bytes, i.hash_algo, i.hash_value, i.checksum_md5, i.expected_checksum, i.declared_format, i.blob_key, i.bytes_done, \
    i.bytes_total, i.import_attempts, i.link_generation, i.created_by, i.created_at, \
    i.updated_by, i.updated_at, i.source_image_id";

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
        .bind(a.os_type.as_str())
        .bind(to_i64(a.min_disk_gb))
        .bind(to_i64(a.min_ram_gb))
        .bind(i64::from(a.protected))
        .bind(a.architecture.as_str())
        .bind(a.boot_mode.as_str())
        .bind(a.features.to_db())
}

/// Reads an image's attributes from a row selected with `COLUMNS`.
fn attributes_from_row(r: &AnyRow) -> sqlx::Result<ImageAttributes> {
    let text = |c: &str| r.try_get::<String, _>(c);
    let os_type = text("os_type")?;
    let architecture = text("architecture")?;
    let boot_mode = text("boot_mode")?;
    Ok(ImageAttributes {
        name: text("name")?,
        description: text("description")?,
        os_type: OsType::parse(&os_type).map_err(|_| decode_error("os_type", &os_type))?,
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
        })
    }

    fn progress(&self) -> Option<ImportProgress> {
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
            id: self.id,
            name: self.attributes.name,
            os_type: self.attributes.os_type,
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
        "SELECT COUNT(*) AS images, CAST(COALESCE(SUM({STORED_BYTES}), 0) AS BIGINT) AS bytes \
         FROM images i WHERE i.account_id = $1"
    ))
    .bind(account_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Usage {
        image_count: to_u64(row.try_get("images")?),
        stored_bytes: to_u64(row.try_get("bytes")?),
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

async fn insert_tags(
    conn: &mut AnyConnection,
    account_id: &str,
    image_id: &str,
    tags: &[Tag],
) -> sqlx::Result<()> {
    for tag in tags {
        sqlx::query("INSERT INTO image_tags (image_id, account_id, tag_key, tag_value) VALUES ($1, $2, $3, $4)")
            .bind(image_id)
            .bind(account_id)
            .bind(tag.key.as_str())
            .bind(tag.value.as_str())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

impl Store {
    /// Inserts a Queued image with its tags and its "created" event, refusing it when the
    /// account is at a quota limit.
    pub async fn create_image(
        &self,
        image: &NewImageRow,
        tags: &[Tag],
        limits: QuotaLimits,
    ) -> Result<(), CreateImageError> {
        let mut tx = self.begin_write().await?;
        lock_account(&mut tx, &image.account_id).await?;
        let used = usage(&mut tx, &image.account_id).await?;
        if used.image_count >= limits.max_images {
            return Err(CreateImageError::ImageQuota(used));
        }
        // An upload announces its size, which must fit; a URL's size is known only later.
        let incoming = image.local_file.as_ref().map_or(0, |f| f.size_bytes);
        if used.stored_bytes >= limits.max_stored_bytes
            || used.stored_bytes.saturating_add(incoming) > limits.max_stored_bytes
        {
            return Err(CreateImageError::StorageQuota(used));
        }
        if image.local_file.is_some() {
            let uploading: i64 = sqlx::query(
                "SELECT COUNT(*) AS n FROM images WHERE account_id = $1 AND status = $2",
            )
            .bind(&image.account_id)
            .bind(ImageStatus::Uploading.as_str())
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
            if to_u64(uploading) >= crate::domain::upload::MAX_UPLOADS_IN_PROGRESS {
                return Err(CreateImageError::TooManyUploads(to_u64(uploading)));
            }
        }
        let sql = format!(
            "INSERT INTO images ({ATTRIBUTE_COLUMNS}, id, account_id, visibility, status, \
             image_type, source_url, created_by, created_at, updated_by, updated_at, expected_checksum, \
             source_file_name, bytes_total, declared_format) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $16, $17, $18, $19, $20, $21)"
        );
        bind_attributes(sqlx::query(&sql), &image.attributes)
            .bind(&image.id)
            .bind(&image.account_id)
            .bind(image.visibility.as_str())
            .bind(match image.local_file {
                Some(_) => ImageStatus::Uploading.as_str(),
                None => ImageStatus::Queued.as_str(),
            })
            .bind(image.image_type)
            .bind(&image.source_url)
            .bind(&image.created_by)
            .bind(image.created_at_ms)
            .bind(&image.expected_checksum)
            .bind(image.local_file.as_ref().map(|f| f.name.clone()))
            .bind(image.local_file.as_ref().map(|f| to_i64(f.size_bytes)))
            .bind(image.declared_format.as_str())
            .execute(&mut *tx)
            .await?;
        insert_tags(&mut tx, &image.account_id, &image.id, tags).await?;
        insert_event(
            &mut tx,
            &image.account_id,
            &image.id,
            &image.attributes.name,
            &NewEvent::succeeded(HistoryTopic::Created, &image.created_by),
            image.created_at_ms,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Inserts many images at once, in their given state, without quota checks or history:
    /// for seeding large accounts (benchmarks, data moved from another system).
    pub async fn insert_images_bulk(
        &self,
        images: &[(NewImageRow, ImageStatus, Option<u64>)],
    ) -> sqlx::Result<()> {
        let mut tx = self.begin_write().await?;
        for chunk in images.chunks(500) {
            let mut filter = QueryParts::new();
            let mut values = Vec::with_capacity(chunk.len());
            for (image, status, size) in chunk {
                let size = match size {
                    Some(size) => filter.int(to_i64(*size)),
                    None => "NULL".to_owned(),
                };
                let created_by = filter.text(image.created_by.clone());
                let created_at = filter.int(image.created_at_ms);
                let a = &image.attributes;
                let cols = [
                    filter.text(a.name.clone()),
                    filter.text(a.description.clone()),
                    filter.text(a.os_type.as_str()),
                    filter.int(to_i64(a.min_disk_gb)),
                    filter.int(to_i64(a.min_ram_gb)),
                    filter.int(i64::from(a.protected)),
                    filter.text(a.architecture.as_str()),
                    filter.text(a.boot_mode.as_str()),
                    filter.text(a.features.to_db()),
                    filter.text(image.id.clone()),
                    filter.text(image.account_id.clone()),
                    filter.text(image.visibility.as_str()),
                    filter.text(status.as_str()),
                    filter.text(image.image_type),
                    filter.text(image.source_url.clone().unwrap_or_default()),
                    size,
                    created_by.clone(),
                    created_at.clone(),
                    created_by,
                    created_at,
                ];
                values.push(format!("({})", cols.join(", ")));
            }
            let sql = format!(
                "INSERT INTO images ({ATTRIBUTE_COLUMNS}, id, account_id, visibility, status, \
                 image_type, source_url, size_bytes, created_by, created_at, updated_by, updated_at) \
                 VALUES {}",
                values.join(", ")
            );
            sqlx::query_with(&sql, filter.arguments())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }

    /// Inserts many tags at once, for seeding (see `insert_images_bulk`).
    pub async fn insert_tags_bulk(
        &self,
        account_id: &str,
        tags: &[(String, String, String)],
    ) -> sqlx::Result<()> {
        let mut tx = self.begin_write().await?;
        for chunk in tags.chunks(1000) {
            let mut filter = QueryParts::new();
            let account = filter.text(account_id);
            let values: Vec<String> = chunk
                .iter()
                .map(|(image_id, key, value)| {
                    format!(
                        "({}, {account}, {}, {})",
                        filter.text(image_id.clone()),
                        filter.text(key.clone()),
                        filter.text(value.clone())
                    )
                })
                .collect();
            let sql = format!(
                "INSERT INTO image_tags (image_id, account_id, tag_key, tag_value) VALUES {}",
                values.join(", ")
            );
            sqlx::query_with(&sql, filter.arguments())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }

    /// Refreshes the planner's statistics (after a bulk load; PostgreSQL's autovacuum and
    /// SQLite's `PRAGMA optimize` do the same over time).
    pub async fn analyze(&self) -> sqlx::Result<()> {
        let sql = match self.backend {
            Backend::Sqlite => "ANALYZE",
            Backend::Postgres => "VACUUM ANALYZE",
        };
        sqlx::query(sql).execute(&self.pool).await?;
        Ok(())
    }

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

    /// Writes an Edit, if the image is unchanged since `expected_updated_at_ms` (so two
    /// people editing at once cannot silently overwrite each other). Returns whether it did.
    pub async fn update_image_attributes(
        &self,
        account_id: &str,
        id: &str,
        expected_updated_at_ms: i64,
        update: &AttributeUpdate,
        event: &NewEvent<'_>,
        now_ms: i64,
    ) -> sqlx::Result<UpdateOutcome> {
        let mut tx = self.begin_write().await?;
        let done = bind_attributes(
            sqlx::query(
                "UPDATE images SET name = $1, description = $2, os_type = $3, min_disk_gb = $4, \
                 min_ram_gb = $5, protected = $6, architecture = $7, boot_mode = $8, features = $9, \
                 visibility = $10, updated_by = $11, updated_at = $12 \
                 WHERE id = $13 AND account_id = $14 AND updated_at = $15",
            ),
            &update.attributes,
        )
        .bind(update.visibility.as_str())
        .bind(event.worker)
        .bind(now_ms)
        .bind(id)
        .bind(account_id)
        .bind(expected_updated_at_ms)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(UpdateOutcome::Changed);
        }
        // Read after the row is locked, so a share made meanwhile is seen.
        if update.visibility == Visibility::Private {
            let active = super::shares::count_active_shares(&mut tx, id).await?;
            if active > 0 {
                return Ok(UpdateOutcome::ActiveShares(active));
            }
        }
        insert_event(
            &mut tx,
            account_id,
            id,
            &update.attributes.name,
            event,
            now_ms,
        )
        .await?;
        tx.commit().await?;
        Ok(UpdateOutcome::Written)
    }

    /// Sets Protected and records it; returns the row as it was, or `None` if not found.
    pub async fn set_image_protected(
        &self,
        account_id: &str,
        id: &str,
        protected: bool,
        event: &NewEvent<'_>,
        now_ms: i64,
    ) -> sqlx::Result<Option<ImageRow>> {
        let mut tx = self.begin_write().await?;
        let Some(before) = fetch_row(&mut tx, account_id, id).await? else {
            return Ok(None);
        };
        sqlx::query(
            "UPDATE images SET protected = $1, updated_by = $2, updated_at = $3 WHERE id = $4 AND account_id = $5",
        )
        .bind(i64::from(protected))
        .bind(event.worker)
        .bind(now_ms)
        .bind(id)
        .bind(account_id)
        .execute(&mut *tx)
        .await?;
        insert_event(
            &mut tx,
            account_id,
            id,
            &before.attributes.name,
            event,
            now_ms,
        )
        .await?;
        tx.commit().await?;
        Ok(Some(before))
    }

    /// Replaces the image's tags, if it is unchanged since `expected_updated_at_ms`.
    pub async fn replace_image_tags(
        &self,
        account_id: &str,
        id: &str,
        expected_updated_at_ms: i64,
        tags: &[Tag],
        event: &NewEvent<'_>,
        now_ms: i64,
    ) -> sqlx::Result<bool> {
        let mut tx = self.begin_write().await?;
        let Some(row) = fetch_row(&mut tx, account_id, id).await? else {
            return Ok(false);
        };
        let done = sqlx::query(
            "UPDATE images SET updated_by = $1, updated_at = $2 WHERE id = $3 AND account_id = $4 AND updated_at = $5",
        )
        .bind(event.worker)
        .bind(now_ms)
        .bind(id)
        .bind(account_id)
        .bind(expected_updated_at_ms)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM image_tags WHERE image_id = $1 AND account_id = $2")
            .bind(id)
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
        insert_tags(&mut tx, account_id, id, tags).await?;
        insert_event(&mut tx, account_id, id, &row.attributes.name, event, now_ms).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Deletes an unprotected image of the account with its tags, recording the deletion.
    pub async fn delete_unprotected_image(
        &self,
        account_id: &str,
        id: &str,
        worker: &str,
        now_ms: i64,
    ) -> sqlx::Result<DeleteOutcome> {
        let mut tx = self.begin_write().await?;
        let Some(row) = lock_image(&mut tx, account_id, id).await? else {
            return Ok(DeleteOutcome::NotFound);
        };
        if row.attributes.protected {
            return Ok(DeleteOutcome::Protected(Box::new(row)));
        }
        super::shares::end_shares_of_deleted_image(&mut tx, &row, worker, now_ms).await?;
        sqlx::query("DELETE FROM image_tags WHERE image_id = $1 AND account_id = $2")
            .bind(id)
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM images WHERE id = $1 AND account_id = $2 AND protected = 0")
            .bind(id)
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
        let release_blob = match &row.blob_key {
            Some(key) => release_blob_ref(&mut tx, key).await?,
            None => false,
        };
        insert_event(
            &mut tx,
            account_id,
            id,
            &row.attributes.name,
            &NewEvent::succeeded(HistoryTopic::Deleted, worker),
            now_ms,
        )
        .await?;
        tx.commit().await?;
        Ok(DeleteOutcome::Deleted {
            row: Box::new(row),
            release_blob,
        })
    }

    /// Creates a Shared image of the bytes of the account's Private, Active image `source_id`:
    /// the file is not copied but counted once more, so it stays until the last image using it
    /// is deleted. Both images record it in their Work History. Counts against the image
    /// quota, not the storage quota (nothing more is stored).
    pub async fn create_shared_image(
        &self,
        account_id: &str,
        source_id: &str,
        copy: &SharedCopy<'_>,
        max_images: u64,
    ) -> sqlx::Result<CreateSharedOutcome> {
        let mut tx = self.begin_write().await?;
        lock_account(&mut tx, account_id).await?;
        let Some(source) = lock_image(&mut tx, account_id, source_id).await? else {
            return Ok(CreateSharedOutcome::NotFound);
        };
        let Some(blob_key) = source.blob_key.clone().filter(|_| {
            source.status == ImageStatus::Active && source.visibility == Visibility::Private
        }) else {
            return Ok(CreateSharedOutcome::NotEligible(Box::new(source)));
        };
        let used = usage(&mut tx, account_id).await?;
        if used.image_count >= max_images {
            return Ok(CreateSharedOutcome::ImageQuota(used));
        }
        let counted = sqlx::query("UPDATE image_blobs SET refs = refs + 1 WHERE blob_key = $1")
            .bind(&blob_key)
            .execute(&mut *tx)
            .await?;
        if counted.rows_affected() == 0 {
            // Not counted yet: the source was its only user.
            sqlx::query("INSERT INTO image_blobs (blob_key, refs) VALUES ($1, 2)")
                .bind(&blob_key)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO images (id, account_id, name, description, os_type, min_disk_gb, \
             min_ram_gb, visibility, protected, architecture, boot_mode, features, status, \
             image_type, source_url, source_file_name, disk_format, size_bytes, virtual_size_bytes, \
             hash_algo, hash_value, checksum_md5, expected_checksum, declared_format, blob_key, \
             bytes_done, bytes_total, created_by, created_at, updated_by, updated_at, source_image_id) \
             SELECT $1, account_id, $2, description, os_type, min_disk_gb, min_ram_gb, $3, 0, \
             architecture, boot_mode, features, status, image_type, source_url, source_file_name, \
             disk_format, size_bytes, virtual_size_bytes, hash_algo, hash_value, checksum_md5, \
             expected_checksum, declared_format, blob_key, size_bytes, size_bytes, $4, $5, $4, $5, id \
             FROM images WHERE id = $6 AND account_id = $7",
        )
        .bind(copy.id)
        .bind(copy.name)
        .bind(Visibility::Shared.as_str())
        .bind(copy.created_by)
        .bind(copy.created_at_ms)
        .bind(source_id)
        .bind(account_id)
        .execute(&mut *tx)
        .await?;
        let created = notes::created_from_shared(&source.attributes.name, &source.id);
        let event = NewEvent {
            message: &created,
            ..NewEvent::succeeded(HistoryTopic::Created, copy.created_by)
        };
        insert_event(
            &mut tx,
            account_id,
            copy.id,
            copy.name,
            &event,
            copy.created_at_ms,
        )
        .await?;
        let made = notes::shared_image_made(copy.name, copy.id);
        let event = NewEvent {
            message: &made,
            ..NewEvent::succeeded(HistoryTopic::SharedImageCreated, copy.created_by)
        };
        insert_event(
            &mut tx,
            account_id,
            source_id,
            &source.attributes.name,
            &event,
            copy.created_at_ms,
        )
        .await?;
        tx.commit().await?;
        Ok(CreateSharedOutcome::Created)
    }

    /// Records an event that changes no row (a download link was issued).
    pub async fn record_event(
        &self,
        account_id: &str,
        id: &str,
        image_name: &str,
        event: &NewEvent<'_>,
        now_ms: i64,
    ) -> sqlx::Result<()> {
        let mut conn = self.pool.acquire().await?;
        insert_event(&mut conn, account_id, id, image_name, event, now_ms).await
    }

    /// Revokes every download link issued so far; returns the new generation, or `None`.
    pub async fn bump_link_generation(
        &self,
        account_id: &str,
        id: &str,
        event: &NewEvent<'_>,
        now_ms: i64,
    ) -> sqlx::Result<Option<i64>> {
        let mut tx = self.begin_write().await?;
        let Some(row) = fetch_row(&mut tx, account_id, id).await? else {
            return Ok(None);
        };
        sqlx::query(
            "UPDATE images SET link_generation = link_generation + 1, updated_by = $1, updated_at = $2 \
             WHERE id = $3 AND account_id = $4",
        )
        .bind(event.worker)
        .bind(now_ms)
        .bind(id)
        .bind(account_id)
        .execute(&mut *tx)
        .await?;
        insert_event(&mut tx, account_id, id, &row.attributes.name, event, now_ms).await?;
        tx.commit().await?;
        Ok(Some(row.link_generation + 1))
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

    /// Moves a Queued image to Importing and counts the attempt. Returns what the import
    /// needs, or `None` when the image is gone or no longer Queued.
    pub async fn claim_import(
        &self,
        account_id: &str,
        id: &str,
        now_ms: i64,
    ) -> sqlx::Result<Option<ClaimedImport>> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE images SET status = $1, bytes_done = 0, bytes_total = NULL, \
             bytes_reserved = NULL, import_attempts = import_attempts + 1, updated_at = $2 \
             WHERE id = $3 AND account_id = $4 AND status = $5",
        )
        .bind(ImageStatus::Importing.as_str())
        .bind(now_ms)
        .bind(id)
        .bind(account_id)
        .bind(ImageStatus::Queued.as_str())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        let Some(row) = fetch_row(&mut tx, account_id, id).await? else {
            return Ok(None);
        };
        let message = notes::import_attempt(row.import_attempts);
        let event = NewEvent {
            message: &message,
            ..NewEvent::succeeded(HistoryTopic::ImportStarted, SYSTEM_WORKER)
        };
        insert_event(
            &mut tx,
            account_id,
            id,
            &row.attributes.name,
            &event,
            now_ms,
        )
        .await?;
        tx.commit().await?;
        Ok(row.source_url.map(|source_url| ClaimedImport {
            source_url,
            expected_checksum: row.expected_checksum,
            declared_format: row.declared_format,
        }))
    }

    /// Records progress; `false` means the image is no longer Importing (deleted meanwhile).
    pub async fn record_import_progress(
        &self,
        account_id: &str,
        id: &str,
        bytes_done: u64,
        bytes_total: Option<u64>,
    ) -> sqlx::Result<bool> {
        let done = sqlx::query(
            "UPDATE images SET bytes_done = $1, bytes_total = $2 WHERE id = $3 AND account_id = $4 AND status = $5",
        )
        .bind(to_i64(bytes_done))
        .bind(bytes_total.map(to_i64))
        .bind(id)
        .bind(account_id)
        .bind(ImageStatus::Importing.as_str())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Reserves storage for an Importing image: at least `needed` bytes in all, and up to
    /// `wanted` if the account's quota leaves room. The account row is locked first, so
    /// concurrent imports reserve one after the other and together never pass `quota`.
    pub async fn reserve_import_bytes(
        &self,
        account_id: &str,
        id: &str,
        needed: u64,
        wanted: u64,
        quota: u64,
    ) -> sqlx::Result<Reservation> {
        let mut tx = self.begin_write().await?;
        lock_account(&mut tx, account_id).await?;
        let row = sqlx::query(&format!(
            "SELECT CAST(COALESCE(SUM({STORED_BYTES}), 0) AS BIGINT) AS bytes \
             FROM images i WHERE i.account_id = $1 AND i.id <> $2"
        ))
        .bind(account_id)
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        let room = quota.saturating_sub(to_u64(row.try_get("bytes")?));
        if needed > room {
            return Ok(Reservation::NoRoom { room });
        }
        let granted = wanted.min(room).max(needed);
        let done = sqlx::query(
            "UPDATE images SET bytes_reserved = $1 WHERE id = $2 AND account_id = $3 AND status = $4",
        )
        .bind(to_i64(granted))
        .bind(id)
        .bind(account_id)
        .bind(ImageStatus::Importing.as_str())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(Reservation::Gone);
        }
        tx.commit().await?;
        Ok(Reservation::Granted(granted))
    }

    /// Marks an Importing image Active with its bytes. `false` means the row was gone, so the
    /// caller must remove the bytes it stored.
    pub async fn complete_import(
        &self,
        account_id: &str,
        id: &str,
        bytes: &ImportedBytes,
        now_ms: i64,
    ) -> sqlx::Result<bool> {
        let mut tx = self.begin_write().await?;
        let done = activate(
            &mut tx,
            account_id,
            id,
            ImageStatus::Importing,
            bytes,
            now_ms,
        )
        .await?;
        if done {
            tx.commit().await?;
        }
        Ok(done)
    }

    /// Marks a Queued or Importing image Failed with a reason a person can act on.
    pub async fn fail_import(
        &self,
        account_id: &str,
        id: &str,
        reason: &str,
        now_ms: i64,
    ) -> sqlx::Result<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE images SET status = $1, failure_reason = $2, updated_at = $3 \
             WHERE id = $4 AND account_id = $5 AND status IN ($6, $7)",
        )
        .bind(ImageStatus::Failed.as_str())
        .bind(reason)
        .bind(now_ms)
        .bind(id)
        .bind(account_id)
        .bind(ImageStatus::Queued.as_str())
        .bind(ImageStatus::Importing.as_str())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        let name = image_name(&mut tx, account_id, id).await?;
        let event = NewEvent {
            message: reason,
            result: WorkResult::Failed,
            ..NewEvent::succeeded(HistoryTopic::ImportFailed, SYSTEM_WORKER)
        };
        insert_event(&mut tx, account_id, id, &name, &event, now_ms).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Puts an interrupted import back in the queue.
    pub async fn requeue_import(
        &self,
        account_id: &str,
        id: &str,
        now_ms: i64,
    ) -> sqlx::Result<bool> {
        let done = sqlx::query(
            "UPDATE images SET status = $1, bytes_done = 0, bytes_total = NULL, \
             bytes_reserved = NULL, updated_at = $2 \
             WHERE id = $3 AND account_id = $4 AND status IN ($1, $5)",
        )
        .bind(ImageStatus::Queued.as_str())
        .bind(now_ms)
        .bind(id)
        .bind(account_id)
        .bind(ImageStatus::Importing.as_str())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Every image whose import was queued or running, across accounts, oldest first. Used
    /// once at start-up, before any request is served.
    pub async fn list_interrupted_imports(&self) -> sqlx::Result<Vec<InterruptedImport>> {
        let rows = sqlx::query(
            "SELECT id, account_id, status, import_attempts FROM images \
             WHERE status IN ($1, $2) ORDER BY created_at, id",
        )
        .bind(ImageStatus::Queued.as_str())
        .bind(ImageStatus::Importing.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let status: String = r.try_get("status")?;
                Ok(InterruptedImport {
                    id: r.try_get("id")?,
                    account_id: r.try_get("account_id")?,
                    status: ImageStatus::from_db(&status)
                        .ok_or_else(|| decode_error("status", &status))?,
                    import_attempts: u32::try_from(r.try_get::<i64, _>("import_attempts")?)
                        .unwrap_or(u32::MAX),
                })
            })
            .collect()
    }

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
    let done = sqlx::query(
        "UPDATE images SET status = $1, failure_reason = NULL, disk_format = $2, \
         size_bytes = $3, virtual_size_bytes = $4, hash_algo = $5, hash_value = $6, \
         checksum_md5 = $7, blob_key = $8, bytes_done = $3, bytes_total = $3, updated_at = $9 \
         WHERE id = $10 AND account_id = $11 AND status = $12",
    )
    .bind(ImageStatus::Active.as_str())
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
