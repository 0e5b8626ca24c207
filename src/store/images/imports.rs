//! A URL import's rows from claim to Active or Failed: progress, storage reservations, and
//! picking interrupted imports up again after a restart. Every change is made under the
//! image's import lease and fenced by its claim (`Fence`): a writer whose lease was taken over
//! changes nothing.

use sqlx::Row;

use super::transition;
use super::*;
use crate::domain::conversion::ConvertTo;
use crate::store::leases::{Fence, fence_condition, hold};

/// What an import needs once it has claimed its image.
#[derive(Clone, Debug)]
pub struct ClaimedImport {
    pub source_url: String,
    /// `algorithm:hex`, if the creator gave one.
    pub expected_checksum: Option<String>,
    pub declared_format: DiskFormat,
    /// The key its bytes are sealed under, for an encrypted image.
    pub encryption_key_id: Option<String>,
    /// What its bytes' signature must verify against, if it is signed.
    pub signature: crate::domain::signature::SignatureProperties,
}

/// An image whose import must be picked up again after a restart.
#[derive(Clone, Debug)]
pub struct InterruptedImport {
    pub id: String,
    pub account_id: String,
    pub status: ImageStatus,
    pub import_attempts: u32,
    /// Whether its bytes come from a URL; otherwise from a request body through the image
    /// API, which only its client can send again.
    pub from_url: bool,
}

/// What an upload through the image API needs once it has claimed its image.
#[derive(Clone, Debug)]
pub struct ClaimedBody {
    pub expected_checksum: Option<String>,
    pub declared_format: DiskFormat,
    pub encryption_key_id: Option<String>,
    pub signature: crate::domain::signature::SignatureProperties,
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

impl Store {
    /// Moves a Queued image to Importing and counts the attempt. Returns what the import
    /// needs, or `None` when the image is gone or no longer Queued.
    pub async fn claim_import(
        &self,
        account_id: &str,
        id: &str,
        fence: &Fence,
        now_ms: i64,
    ) -> sqlx::Result<Option<ClaimedImport>> {
        let mut tx = self.begin_write().await?;
        if !hold(&mut tx, self.backend, fence).await? {
            return Ok(None);
        }
        let update = sqlx::query(
            "UPDATE images SET status = $1, bytes_done = 0, bytes_total = NULL, \
             bytes_reserved = NULL, import_attempts = import_attempts + 1, updated_at = $2 \
             WHERE id = $3 AND account_id = $4 AND status = $5 AND source_url IS NOT NULL",
        )
        .bind(ImageStatus::Importing.as_str())
        .bind(now_ms)
        .bind(id)
        .bind(account_id)
        .bind(ImageStatus::Queued.as_str());
        let Some(row) = transition::apply(&mut tx, (account_id, id), update).await? else {
            return Ok(None);
        };
        let message = notes::import_attempt(row.import_attempts);
        let event = NewEvent {
            message: &message,
            ..NewEvent::succeeded(HistoryTopic::ImportStarted, SYSTEM_WORKER)
        };
        transition::record_and_commit(tx, &row, &event, now_ms).await?;
        Ok(row.source_url.map(|source_url| ClaimedImport {
            source_url,
            expected_checksum: row.expected_checksum,
            declared_format: row.declared_format,
            encryption_key_id: row.encryption_key_id,
            signature: row.signature,
        }))
    }

    /// Records progress; `false` means the image is no longer Importing or Converting
    /// (deleted or cancelled meanwhile).
    pub async fn record_import_progress(
        &self,
        account_id: &str,
        id: &str,
        fence: &Fence,
        bytes_done: u64,
        bytes_total: Option<u64>,
    ) -> sqlx::Result<bool> {
        let done = sqlx::query(&format!(
            "UPDATE images SET bytes_done = $1, bytes_total = $2 WHERE id = $3 AND account_id = $4 \
             AND status IN ($5, $6) AND {}",
            fence_condition(7)
        ))
        .bind(to_i64(bytes_done))
        .bind(bytes_total.map(to_i64))
        .bind(id)
        .bind(account_id)
        .bind(ImageStatus::Importing.as_str())
        .bind(ImageStatus::Converting.as_str())
        .bind(&fence.resource)
        .bind(&fence.token)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Reserves storage for an Importing image (or a Converting one's converted bytes): at least `needed` bytes in all, and up to
    /// `wanted` if the account's quota leaves room. The account row is locked first, so
    /// concurrent imports reserve one after the other and together never pass `quota`.
    pub async fn reserve_import_bytes(
        &self,
        account_id: &str,
        id: &str,
        fence: &Fence,
        needed: u64,
        wanted: u64,
        quota: u64,
    ) -> sqlx::Result<Reservation> {
        let mut tx = self.begin_write().await?;
        if !hold(&mut tx, self.backend, fence).await? {
            return Ok(Reservation::Gone);
        }
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
            "UPDATE images SET bytes_reserved = $1 WHERE id = $2 AND account_id = $3 AND status IN ($4, $5)",
        )
        .bind(to_i64(granted))
        .bind(id)
        .bind(account_id)
        .bind(ImageStatus::Importing.as_str())
        .bind(ImageStatus::Converting.as_str())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(Reservation::Gone);
        }
        tx.commit().await?;
        Ok(Reservation::Granted(granted))
    }

    /// Gives an Importing image its checked bytes: it becomes Active, or Converting when it
    /// asked for another format. The status it took; `None` means the row was gone, so the
    /// caller must remove the bytes it stored.
    pub async fn complete_import(
        &self,
        account_id: &str,
        id: &str,
        fence: &Fence,
        bytes: &ImportedBytes,
        now_ms: i64,
    ) -> sqlx::Result<Option<ImageStatus>> {
        let mut tx = self.begin_write().await?;
        if !hold(&mut tx, self.backend, fence).await? {
            return Ok(None);
        }
        let done = activate(
            &mut tx,
            account_id,
            id,
            ImageStatus::Importing,
            bytes,
            now_ms,
        )
        .await?;
        if done.is_some() {
            tx.commit().await?;
        }
        Ok(done)
    }

    /// Marks a Queued or Importing image Failed with a reason a person can act on.
    pub async fn fail_import(
        &self,
        account_id: &str,
        id: &str,
        fence: &Fence,
        reason: &str,
        now_ms: i64,
    ) -> sqlx::Result<bool> {
        let mut tx = self.begin_write().await?;
        if !hold(&mut tx, self.backend, fence).await? {
            return Ok(false);
        }
        let update = sqlx::query(
            "UPDATE images SET status = $1, failure_reason = $2, updated_at = $3 \
             WHERE id = $4 AND account_id = $5 AND status IN ($6, $7)",
        )
        .bind(ImageStatus::Failed.as_str())
        .bind(reason)
        .bind(now_ms)
        .bind(id)
        .bind(account_id)
        .bind(ImageStatus::Queued.as_str())
        .bind(ImageStatus::Importing.as_str());
        let event = NewEvent {
            message: reason,
            result: WorkResult::Failed,
            ..NewEvent::succeeded(HistoryTopic::ImportFailed, SYSTEM_WORKER)
        };
        transition::change_and_record(tx, (account_id, id), update, &event, now_ms).await
    }

    /// Puts an interrupted import back in the queue.
    pub async fn requeue_import(
        &self,
        account_id: &str,
        id: &str,
        fence: &Fence,
        now_ms: i64,
    ) -> sqlx::Result<bool> {
        let mut tx = self.begin_write().await?;
        if !hold(&mut tx, self.backend, fence).await? {
            return Ok(false);
        }
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
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Moves a Queued image that waits for its bytes through the image API (it has no source
    /// URL) to Importing, recording who sends them. `None` when it is not such an image.
    pub async fn claim_body_upload(
        &self,
        account_id: &str,
        id: &str,
        fence: &Fence,
        user_name: &str,
        note: &str,
        now_ms: i64,
    ) -> sqlx::Result<Option<ClaimedBody>> {
        let mut tx = self.begin_write().await?;
        if !hold(&mut tx, self.backend, fence).await? {
            return Ok(None);
        }
        let update = sqlx::query(
            "UPDATE images SET status = $1, bytes_done = 0, bytes_total = NULL, \
             bytes_reserved = NULL, updated_at = $2 \
             WHERE id = $3 AND account_id = $4 AND status = $5 AND source_url IS NULL",
        )
        .bind(ImageStatus::Importing.as_str())
        .bind(now_ms)
        .bind(id)
        .bind(account_id)
        .bind(ImageStatus::Queued.as_str());
        let Some(row) = transition::apply(&mut tx, (account_id, id), update).await? else {
            return Ok(None);
        };
        let event = NewEvent {
            message: note,
            ..NewEvent::succeeded(HistoryTopic::UploadStarted, user_name)
        };
        transition::record_and_commit(tx, &row, &event, now_ms).await?;
        Ok(Some(ClaimedBody {
            expected_checksum: row.expected_checksum,
            declared_format: row.declared_format,
            encryption_key_id: row.encryption_key_id,
            signature: row.signature,
        }))
    }

    /// Puts an image whose bytes through the image API did not all arrive back to Queued, so
    /// its client can send them again, and records why.
    pub async fn return_body_upload(
        &self,
        account_id: &str,
        id: &str,
        fence: &Fence,
        reason: &str,
        now_ms: i64,
    ) -> sqlx::Result<bool> {
        let mut tx = self.begin_write().await?;
        if !hold(&mut tx, self.backend, fence).await? {
            return Ok(false);
        }
        let update = sqlx::query(
            "UPDATE images SET status = $1, bytes_done = 0, bytes_total = NULL, \
             bytes_reserved = NULL, updated_at = $2 \
             WHERE id = $3 AND account_id = $4 AND status = $5 AND source_url IS NULL",
        )
        .bind(ImageStatus::Queued.as_str())
        .bind(now_ms)
        .bind(id)
        .bind(account_id)
        .bind(ImageStatus::Importing.as_str());
        let event = NewEvent {
            message: reason,
            result: WorkResult::Failed,
            ..NewEvent::succeeded(HistoryTopic::ImportFailed, SYSTEM_WORKER)
        };
        transition::change_and_record(tx, (account_id, id), update, &event, now_ms).await
    }

    /// Keeps data sent to the image API's stage, checked and stored, on an image receiving it
    /// (Importing, no source URL): the image is Uploading with its bytes until an import
    /// (glance-direct) makes it Active. `false` means the row was gone or changed, so the
    /// caller must remove the bytes it stored.
    pub async fn stage_body_data(
        &self,
        account_id: &str,
        id: &str,
        fence: &Fence,
        bytes: &ImportedBytes,
        now_ms: i64,
    ) -> sqlx::Result<bool> {
        let mut tx = self.begin_write().await?;
        if !hold(&mut tx, self.backend, fence).await? {
            return Ok(false);
        }
        let moved = (ImageStatus::Importing, ImageStatus::Uploading);
        let also = " AND source_url IS NULL";
        if !keep_bytes(&mut tx, (account_id, id), moved, also, bytes, now_ms).await? {
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Makes an image whose data is staged Active, or Converting when it is to be converted
    /// (the glance-direct import), recording who asked. `conversion` is the request's
    /// choice, if any, and the console's default for an image that made none. The status it
    /// took; `None` when the image has no staged data.
    pub async fn import_staged_data(
        &self,
        account_id: &str,
        id: &str,
        user_name: &str,
        note: &str,
        conversion: (Option<ConvertTo>, ConvertTo),
        now_ms: i64,
    ) -> sqlx::Result<Option<ImageStatus>> {
        let mut tx = self.begin_write().await?;
        let chosen = sqlx::query(
            "UPDATE images SET convert_to = COALESCE($1, convert_to, $2) \
             WHERE id = $3 AND account_id = $4 AND status = $5 AND blob_key IS NOT NULL \
               AND source_url IS NULL",
        )
        .bind(conversion.0.map(ConvertTo::as_str))
        .bind(conversion.1.as_str())
        .bind(id)
        .bind(account_id)
        .bind(ImageStatus::Uploading.as_str())
        .execute(&mut *tx)
        .await?;
        if chosen.rows_affected() != 1 {
            return Ok(None);
        }
        let Some(row) = fetch_row(&mut tx, account_id, id).await? else {
            return Ok(None);
        };
        let to = match row.disk_format {
            Some(format) if row.convert_to.converts(format) => ImageStatus::Converting,
            _ => ImageStatus::Active,
        };
        let update = sqlx::query(
            "UPDATE images SET status = $1, updated_at = $2, import_attempts = 0, bytes_reserved = NULL \
             WHERE id = $3 AND account_id = $4 AND status = $5",
        )
        .bind(to.as_str())
        .bind(now_ms)
        .bind(id)
        .bind(account_id)
        .bind(ImageStatus::Uploading.as_str());
        let message = match (to, row.disk_format) {
            (ImageStatus::Converting, Some(format)) => {
                format!("{note} {}", notes::received_for_conversion(format))
            }
            _ => note.to_owned(),
        };
        let event = NewEvent {
            message: &message,
            ..NewEvent::succeeded(HistoryTopic::ImportFinished, user_name)
        };
        Ok(
            transition::change_and_record(tx, (account_id, id), update, &event, now_ms)
                .await?
                .then_some(to),
        )
    }

    /// Gives a Queued image that waits for its data a URL to import it from (web-download).
    /// `false` when the image does not wait for data.
    pub async fn set_import_source(
        &self,
        account_id: &str,
        id: &str,
        url: &str,
        user_name: &str,
        conversion: (Option<ConvertTo>, ConvertTo),
        now_ms: i64,
    ) -> sqlx::Result<bool> {
        let tx = self.begin_write().await?;
        let update = sqlx::query(
            "UPDATE images SET source_url = $1, updated_at = $2, updated_by = $3, \
             convert_to = COALESCE($7, convert_to, $8) \
             WHERE id = $4 AND account_id = $5 AND status = $6 AND source_url IS NULL",
        )
        .bind(url)
        .bind(now_ms)
        .bind(user_name)
        .bind(id)
        .bind(account_id)
        .bind(ImageStatus::Queued.as_str())
        .bind(conversion.0.map(ConvertTo::as_str))
        .bind(conversion.1.as_str());
        let message = notes::web_download(url);
        let event = NewEvent {
            message: &message,
            ..NewEvent::succeeded(HistoryTopic::ImportStarted, user_name)
        };
        transition::change_and_record(tx, (account_id, id), update, &event, now_ms).await
    }
}
