//! A Converting image's rows: the claim of a conversion attempt, and its end, Active with the
//! converted bytes or Failed with none. While an image is Converting its row names the file
//! as received (its format, size, hashes and blob); every change is made under the image's
//! import lease and fenced by its claim.

use super::transition;
use super::*;
use crate::domain::conversion::SourceFile;
use crate::store::keys::WrappedDataKey;
use crate::store::leases::{Fence, hold};

/// What a conversion attempt needs: the file as received and the format it becomes.
#[derive(Clone, Debug)]
pub struct ConversionJob {
    pub source: SourceFile,
    pub virtual_size_bytes: u64,
    pub blob_key: String,
    pub target: DiskFormat,
    /// The key the image is encrypted under, and the data key of the file as received.
    pub encryption_key_id: Option<String>,
    pub data_key: Option<WrappedDataKey>,
    /// Counted from 1 for each claim since the bytes arrived.
    pub attempt: u32,
}

impl Store {
    /// Claims a Converting image for a conversion attempt, counting it and recording it in
    /// Work History. `None` when the image is gone or not Converting.
    pub async fn claim_conversion(
        &self,
        account_id: &str,
        id: &str,
        fence: &Fence,
        now_ms: i64,
    ) -> sqlx::Result<Option<ConversionJob>> {
        let mut tx = self.begin_write().await?;
        if !hold(&mut tx, self.backend, fence).await? {
            return Ok(None);
        }
        let update = sqlx::query(
            "UPDATE images SET import_attempts = import_attempts + 1, bytes_done = 0, \
             bytes_total = virtual_size_bytes, bytes_reserved = NULL, updated_at = $1 \
             WHERE id = $2 AND account_id = $3 AND status = $4 AND blob_key IS NOT NULL",
        )
        .bind(now_ms)
        .bind(id)
        .bind(account_id)
        .bind(ImageStatus::Converting.as_str());
        let Some(row) = transition::apply(&mut tx, (account_id, id), update).await? else {
            return Ok(None);
        };
        let Some(job) = job_of(&row) else {
            // A Converting row always names its bytes and its target; one that does not is
            // left for the caller to fail.
            tx.rollback().await?;
            return Ok(None);
        };
        let message =
            notes::conversion_started(job.source.disk_format, job.target, row.import_attempts);
        let event = NewEvent {
            message: &message,
            ..NewEvent::succeeded(HistoryTopic::ConversionStarted, SYSTEM_WORKER)
        };
        transition::record_and_commit(tx, &row, &event, now_ms).await?;
        Ok(Some(job))
    }

    /// Makes a Converting image Active with its converted bytes (and, for an encrypted image,
    /// the data key they are sealed under), keeping the file as received as its source and
    /// giving up that file's bytes. `None` when the image was no longer Converting with
    /// `job`'s bytes; otherwise the blob to remove once this commits, if it was the last
    /// image's.
    pub async fn complete_conversion(
        &self,
        (account_id, id): (&str, &str),
        fence: &Fence,
        job: &ConversionJob,
        converted: &ImportedBytes,
        data_key: Option<&WrappedDataKey>,
        now_ms: i64,
    ) -> sqlx::Result<Option<Option<String>>> {
        let mut tx = self.begin_write().await?;
        if !hold(&mut tx, self.backend, fence).await? {
            return Ok(None);
        }
        let update = sqlx::query(
            "UPDATE images SET status = $1, source_disk_format = disk_format, \
             source_size_bytes = size_bytes, source_sha512 = hash_value, source_md5 = checksum_md5, \
             disk_format = $2, size_bytes = $3, virtual_size_bytes = $4, hash_algo = $5, \
             hash_value = $6, checksum_md5 = $7, blob_key = $8, bytes_done = $3, bytes_total = $3, \
             bytes_reserved = NULL, failure_reason = NULL, updated_at = $9, \
             data_key_version = COALESCE($10, data_key_version), \
             data_key_wrapped = COALESCE($11, data_key_wrapped), \
             data_key_nonce = COALESCE($12, data_key_nonce), \
             data_key_format = COALESCE($13, data_key_format) \
             WHERE id = $14 AND account_id = $15 AND status = $16 AND blob_key = $17",
        )
        .bind(ImageStatus::Active.as_str())
        .bind(converted.disk_format.as_str())
        .bind(to_i64(converted.size_bytes))
        .bind(to_i64(converted.virtual_size_bytes))
        .bind(converted.hash_algo)
        .bind(&converted.hash_value)
        .bind(&converted.checksum_md5)
        .bind(&converted.blob_key)
        .bind(now_ms)
        .bind(data_key.map(|k| i64::from(k.version)))
        .bind(data_key.map(|k| k.wrapped.as_str()))
        .bind(data_key.map(|k| k.nonce.as_str()))
        .bind(data_key.map(|k| k.format.as_str()))
        .bind(id)
        .bind(account_id)
        .bind(ImageStatus::Converting.as_str())
        .bind(&job.blob_key);
        let Some(row) = transition::apply(&mut tx, (account_id, id), update).await? else {
            return Ok(None);
        };
        sqlx::query("INSERT INTO image_blobs (blob_key, refs) VALUES ($1, 1)")
            .bind(&converted.blob_key)
            .execute(&mut *tx)
            .await?;
        let last = release_blob_ref(&mut tx, &job.blob_key).await?;
        super::super::incoming::forget_all(&mut tx, id).await?;
        let message = notes::converted(
            &job.source,
            converted.disk_format,
            converted.size_bytes,
            &converted.hash_value,
        );
        let event = NewEvent {
            message: &message,
            ..NewEvent::succeeded(HistoryTopic::ConversionFinished, SYSTEM_WORKER)
        };
        transition::record_and_commit(tx, &row, &event, now_ms).await?;
        Ok(Some(last.then(|| job.blob_key.clone())))
    }

    /// Marks a Converting image Failed with `reason`, giving up the bytes it received: a
    /// failed conversion keeps none. `None` when it was no longer Converting (or the claim
    /// was taken over); otherwise the blob to remove once this commits, if it was the last
    /// image's.
    pub async fn fail_conversion(
        &self,
        (account_id, id): (&str, &str),
        fence: &Fence,
        reason: &str,
        now_ms: i64,
    ) -> sqlx::Result<Option<Option<String>>> {
        let mut tx = self.begin_write().await?;
        if !hold(&mut tx, self.backend, fence).await? {
            return Ok(None);
        }
        let Some(row) = fetch_row(&mut tx, account_id, id).await? else {
            return Ok(None);
        };
        if row.status != ImageStatus::Converting {
            return Ok(None);
        }
        let released =
            give_up_received_bytes(&mut tx, &row, ImageStatus::Failed, reason, now_ms).await?;
        let event = NewEvent {
            message: reason,
            result: WorkResult::Failed,
            ..NewEvent::succeeded(HistoryTopic::ConversionFailed, SYSTEM_WORKER)
        };
        transition::record_and_commit(tx, &row, &event, now_ms).await?;
        Ok(Some(released))
    }
}

/// The job a Converting row describes; `None` if it lacks its bytes or its target.
fn job_of(row: &ImageRow) -> Option<ConversionJob> {
    Some(ConversionJob {
        source: SourceFile {
            disk_format: row.disk_format?,
            size_bytes: row.size_bytes?,
            sha512: row.hash_value.clone()?,
            md5: row.checksum_md5.clone()?,
        },
        virtual_size_bytes: row.virtual_size_bytes?,
        blob_key: row.blob_key.clone()?,
        target: row.convert_to.target()?,
        encryption_key_id: row.encryption_key_id.clone(),
        data_key: row.data_key.clone(),
        attempt: row.import_attempts,
    })
}

/// Moves a Converting image (`row`, read in this transaction) to `to` (Failed) with
/// `reason`, without the bytes it received: the row no longer names them and their reference
/// is dropped. Returns their blob key when it was the last reference, to remove after the
/// commit.
pub(super) async fn give_up_received_bytes(
    conn: &mut AnyConnection,
    row: &ImageRow,
    to: ImageStatus,
    reason: &str,
    now_ms: i64,
) -> sqlx::Result<Option<String>> {
    sqlx::query(
        "UPDATE images SET status = $1, failure_reason = $2, blob_key = NULL, size_bytes = NULL, \
         virtual_size_bytes = NULL, hash_algo = NULL, hash_value = NULL, checksum_md5 = NULL, \
         disk_format = NULL, bytes_reserved = NULL, updated_at = $3 \
         WHERE id = $4 AND account_id = $5",
    )
    .bind(to.as_str())
    .bind(reason)
    .bind(now_ms)
    .bind(&row.id)
    .bind(&row.account_id)
    .execute(&mut *conn)
    .await?;
    match &row.blob_key {
        Some(key) => Ok(release_blob_ref(conn, key).await?.then(|| key.clone())),
        None => Ok(None),
    }
}
