//! Image rows. Every query a person's request can reach filters by account.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, to_i64, to_u64};
use crate::domain::image::{
    DiskFormat, ImageDetail, ImageStatus, ImageSummary, ImportProgress, image_srn,
};
use crate::domain::image_spec::{OsType, Visibility};

/// A new image, as the service hands it to the store.
#[derive(Clone, Debug)]
pub struct NewImageRow {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub description: String,
    pub os_type: OsType,
    pub min_disk_gb: u64,
    pub min_ram_gb: u64,
    pub visibility: Visibility,
    pub protected: bool,
    pub image_type: &'static str,
    pub source_url: Option<String>,
    pub created_by: String,
    pub created_at_ms: i64,
}

/// An image row as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRow {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub description: String,
    pub os_type: OsType,
    pub min_disk_gb: u64,
    pub min_ram_gb: u64,
    pub visibility: Visibility,
    pub protected: bool,
    pub status: ImageStatus,
    pub failure_reason: Option<String>,
    pub image_type: String,
    pub source_url: Option<String>,
    pub disk_format: Option<DiskFormat>,
    pub size_bytes: Option<u64>,
    pub virtual_size_bytes: Option<u64>,
    pub hash_algo: Option<String>,
    pub hash_value: Option<String>,
    pub checksum_md5: Option<String>,
    pub blob_key: Option<String>,
    pub bytes_done: u64,
    pub bytes_total: Option<u64>,
    pub import_attempts: u32,
    pub created_by: String,
    pub created_at_ms: i64,
    pub updated_by: String,
    pub updated_at_ms: i64,
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

/// An image whose import must be picked up again after a restart.
#[derive(Clone, Debug)]
pub struct InterruptedImport {
    pub id: String,
    pub account_id: String,
    pub status: ImageStatus,
    pub import_attempts: u32,
}

const COLUMNS: &str = "id, account_id, name, description, os_type, min_disk_gb, min_ram_gb, \
    visibility, protected, status, failure_reason, image_type, source_url, disk_format, \
    size_bytes, virtual_size_bytes, hash_algo, hash_value, checksum_md5, blob_key, bytes_done, \
    bytes_total, import_attempts, created_by, created_at, updated_by, updated_at";

fn decode_error(column: &str, value: &str) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: format!("unexpected value {value:?}").into(),
    }
}

impl ImageRow {
    fn from_row(r: &AnyRow) -> sqlx::Result<Self> {
        let os_type: String = r.try_get("os_type")?;
        let visibility: String = r.try_get("visibility")?;
        let status: String = r.try_get("status")?;
        let disk_format: Option<String> = r.try_get("disk_format")?;
        let opt_u64 = |c: &str| -> sqlx::Result<Option<u64>> {
            Ok(r.try_get::<Option<i64>, _>(c)?.map(to_u64))
        };
        Ok(Self {
            id: r.try_get("id")?,
            account_id: r.try_get("account_id")?,
            name: r.try_get("name")?,
            description: r.try_get("description")?,
            os_type: OsType::parse(&os_type).map_err(|_| decode_error("os_type", &os_type))?,
            min_disk_gb: to_u64(r.try_get("min_disk_gb")?),
            min_ram_gb: to_u64(r.try_get("min_ram_gb")?),
            visibility: Visibility::parse(&visibility)
                .map_err(|_| decode_error("visibility", &visibility))?,
            protected: r.try_get::<i64, _>("protected")? != 0,
            status: ImageStatus::from_db(&status).ok_or_else(|| decode_error("status", &status))?,
            failure_reason: r.try_get("failure_reason")?,
            image_type: r.try_get("image_type")?,
            source_url: r.try_get("source_url")?,
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
            blob_key: r.try_get("blob_key")?,
            bytes_done: to_u64(r.try_get("bytes_done")?),
            bytes_total: opt_u64("bytes_total")?,
            import_attempts: u32::try_from(r.try_get::<i64, _>("import_attempts")?)
                .unwrap_or(u32::MAX),
            created_by: r.try_get("created_by")?,
            created_at_ms: r.try_get("created_at")?,
            updated_by: r.try_get("updated_by")?,
            updated_at_ms: r.try_get("updated_at")?,
        })
    }

    fn progress(&self) -> Option<ImportProgress> {
        (self.status == ImageStatus::Importing).then_some(ImportProgress {
            bytes_done: self.bytes_done,
            bytes_total: self.bytes_total,
        })
    }

    pub fn into_summary(self) -> ImageSummary {
        ImageSummary {
            progress: self.progress(),
            id: self.id,
            name: self.name,
            os_type: self.os_type,
            status: self.status,
            visibility: self.visibility,
            protected: self.protected,
            size_bytes: self.size_bytes,
            failure_reason: self.failure_reason,
            created_at_ms: self.created_at_ms,
        }
    }

    pub fn into_detail(self) -> ImageDetail {
        ImageDetail {
            progress: self.progress(),
            srn: image_srn(&self.account_id, &self.id),
            id: self.id,
            account_id: self.account_id,
            name: self.name,
            description: self.description,
            status: self.status,
            failure_reason: self.failure_reason,
            os_type: self.os_type,
            image_type: self.image_type,
            source_url: self.source_url,
            size_bytes: self.size_bytes,
            virtual_size_bytes: self.virtual_size_bytes,
            disk_format: self.disk_format,
            hash_algorithm: self.hash_algo,
            hash_value: self.hash_value,
            checksum_md5: self.checksum_md5,
            min_disk_gb: self.min_disk_gb,
            min_ram_gb: self.min_ram_gb,
            visibility: self.visibility,
            protected: self.protected,
            created_by: self.created_by,
            created_at_ms: self.created_at_ms,
            updated_by: self.updated_by,
            updated_at_ms: self.updated_at_ms,
        }
    }
}

impl Store {
    pub async fn insert_image(&self, image: &NewImageRow) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO images (id, account_id, name, description, os_type, min_disk_gb, \
             min_ram_gb, visibility, protected, status, image_type, source_url, created_by, \
             created_at, updated_by, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $13, $14)",
        )
        .bind(&image.id)
        .bind(&image.account_id)
        .bind(&image.name)
        .bind(&image.description)
        .bind(image.os_type.as_str())
        .bind(to_i64(image.min_disk_gb))
        .bind(to_i64(image.min_ram_gb))
        .bind(image.visibility.as_str())
        .bind(i64::from(image.protected))
        .bind(ImageStatus::Queued.as_str())
        .bind(image.image_type)
        .bind(&image.source_url)
        .bind(&image.created_by)
        .bind(image.created_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The account's images, newest first.
    pub async fn list_images(&self, account_id: &str) -> sqlx::Result<Vec<ImageRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM images WHERE account_id = $1 ORDER BY created_at DESC, id"
        ))
        .bind(account_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(ImageRow::from_row).collect()
    }

    pub async fn get_image(&self, account_id: &str, id: &str) -> sqlx::Result<Option<ImageRow>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM images WHERE id = $1 AND account_id = $2"
        ))
        .bind(id)
        .bind(account_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(ImageRow::from_row).transpose()
    }

    /// Deletes an unprotected image of the account, returning the deleted row.
    /// `Ok(None)` when there is no such image; a protected image is left alone and returned
    /// as `Err(Protected)` by the caller's check, never deleted here.
    pub async fn delete_unprotected_image(
        &self,
        account_id: &str,
        id: &str,
    ) -> sqlx::Result<DeleteOutcome> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM images WHERE id = $1 AND account_id = $2"
        ))
        .bind(id)
        .bind(account_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row.as_ref().map(ImageRow::from_row).transpose()? else {
            return Ok(DeleteOutcome::NotFound);
        };
        if row.protected {
            return Ok(DeleteOutcome::Protected);
        }
        sqlx::query("DELETE FROM images WHERE id = $1 AND account_id = $2 AND protected = 0")
            .bind(id)
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(DeleteOutcome::Deleted(Box::new(row)))
    }

    /// Sets Protected; returns whether the image exists in the account.
    pub async fn set_image_protected(
        &self,
        account_id: &str,
        id: &str,
        protected: bool,
        updated_by: &str,
        now_ms: i64,
    ) -> sqlx::Result<bool> {
        let done = sqlx::query(
            "UPDATE images SET protected = $1, updated_by = $2, updated_at = $3 \
             WHERE id = $4 AND account_id = $5",
        )
        .bind(i64::from(protected))
        .bind(updated_by)
        .bind(now_ms)
        .bind(id)
        .bind(account_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    // ---- Import worker. Each call names the image's account too, and changes a row only
    // ---- from the status the worker expects, so a deleted or finished image is never revived.

    /// Moves a Queued image to Importing and counts the attempt. Returns the source URL, or
    /// `None` when the image is gone or no longer Queued.
    pub async fn claim_import(
        &self,
        account_id: &str,
        id: &str,
        now_ms: i64,
    ) -> sqlx::Result<Option<String>> {
        let done = sqlx::query(
            "UPDATE images SET status = $1, bytes_done = 0, bytes_total = NULL, \
             import_attempts = import_attempts + 1, updated_at = $2 \
             WHERE id = $3 AND account_id = $4 AND status = $5",
        )
        .bind(ImageStatus::Importing.as_str())
        .bind(now_ms)
        .bind(id)
        .bind(account_id)
        .bind(ImageStatus::Queued.as_str())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        let row = sqlx::query("SELECT source_url FROM images WHERE id = $1 AND account_id = $2")
            .bind(id)
            .bind(account_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.and_then(|r| r.try_get::<Option<String>, _>("source_url").ok().flatten()))
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
            "UPDATE images SET bytes_done = $1, bytes_total = $2 \
             WHERE id = $3 AND account_id = $4 AND status = $5",
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

    /// Marks an Importing image Active with its bytes. `false` means the row was gone, so the
    /// caller must remove the bytes it stored.
    pub async fn complete_import(
        &self,
        account_id: &str,
        id: &str,
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
        .bind(ImageStatus::Importing.as_str())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks a Queued or Importing image Failed with a reason a person can act on.
    pub async fn fail_import(
        &self,
        account_id: &str,
        id: &str,
        reason: &str,
        now_ms: i64,
    ) -> sqlx::Result<bool> {
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
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Puts an interrupted import back in the queue.
    pub async fn requeue_import(
        &self,
        account_id: &str,
        id: &str,
        now_ms: i64,
    ) -> sqlx::Result<bool> {
        let done = sqlx::query(
            "UPDATE images SET status = $1, bytes_done = 0, bytes_total = NULL, updated_at = $2 \
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

/// What `delete_unprotected_image` did.
#[derive(Debug)]
pub enum DeleteOutcome {
    Deleted(Box<ImageRow>),
    Protected,
    NotFound,
}
