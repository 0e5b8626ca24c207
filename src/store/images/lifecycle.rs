//! The end of an image's life: the Recycle Bin (Delete, Restore, Destroy and the purge),
//! Deactivate and Reactivate, and Cancel Import (in-use references: `references.rs`). Each
//! change is written with its Work History event in one transaction, after the image row is
//! locked.

use sqlx::Row;

use super::references::references_of;
use super::transition::record_and_commit;
use super::*;
use crate::domain::lifecycle::{DeleteCheck, ImageReference, RetentionDays};

/// What Delete, Restore, Deactivate, Reactivate or Cancel Import did.
#[derive(Debug)]
pub enum StatusChangeOutcome {
    Done(Box<ImageRow>),
    NotFound,
    /// The image's status (or Protected) does not allow it; the row as it is now.
    Refused(Box<ImageRow>),
}

/// What moving an image to the Recycle Bin did.
#[derive(Debug)]
pub enum BinOutcome {
    Moved(Box<ImageRow>),
    NotFound,
    /// Refused; `DeleteCheck` over the row and its references says why.
    Refused {
        row: Box<ImageRow>,
        references: Vec<ImageReference>,
    },
}

/// The first step of Destroy.
#[derive(Debug)]
pub enum DestroyStart {
    /// The image is Deleting; its bytes may go when `release_blob` (no other image uses them).
    Started {
        row: Box<ImageRow>,
        release_blob: bool,
    },
    NotFound,
    /// Not in the Recycle Bin.
    NotInBin(Box<ImageRow>),
    InUse(Vec<ImageReference>),
}

/// An image the purge destroys: one whose retention has passed, or one left Deleting by a
/// process that stopped before it finished.
#[derive(Clone, Debug)]
pub struct PurgeTarget {
    pub account_id: String,
    pub id: String,
    pub status: ImageStatus,
    pub retention: RetentionDays,
}

/// Who removes a reference, and whether they may remove any (the owner) or only their own
/// account's.
#[derive(Clone, Copy, Debug)]
pub struct Remover<'a> {
    pub account_id: &'a str,
    pub user_name: &'a str,
}

/// Sets the status of the image `row` (locked), naming who changed it.
async fn set_status(
    conn: &mut AnyConnection,
    row: &ImageRow,
    status: ImageStatus,
    worker: &str,
    now_ms: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE images SET status = $1, updated_by = $2, updated_at = $3 WHERE id = $4 AND account_id = $5",
    )
    .bind(status.as_str())
    .bind(worker)
    .bind(now_ms)
    .bind(&row.id)
    .bind(&row.account_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Store {
    /// Delete: moves an Active, Deactivated or Failed image that nothing uses to the Recycle
    /// Bin, ending its shares. Its row, bytes and tags stay; `destroy_at_ms` is when the purge
    /// destroys it.
    pub async fn move_to_recycle_bin(
        &self,
        account_id: &str,
        id: &str,
        worker: &str,
        note: &str,
        now_ms: i64,
        destroy_at_ms: i64,
    ) -> sqlx::Result<BinOutcome> {
        let mut tx = self.begin_write().await?;
        let Some(row) = lock_image(&mut tx, account_id, id).await? else {
            return Ok(BinOutcome::NotFound);
        };
        let references = references_of(&mut tx, id).await?;
        let check = DeleteCheck {
            status: row.status,
            protected: row.attributes.protected,
            browser_upload: row.source_file_name.is_some(),
            references: &references,
        };
        if check.blocked_reason().is_some() {
            return Ok(BinOutcome::Refused {
                row: Box::new(row),
                references,
            });
        }
        crate::store::shares::end_shares_of_deleted_image(&mut tx, &row, worker, now_ms).await?;
        sqlx::query(
            "UPDATE images SET status = $1, restore_status = $2, deleted_at = $3, deleted_by = $4, \
             destroy_at = $5, updated_by = $4, updated_at = $3 WHERE id = $6 AND account_id = $7",
        )
        .bind(ImageStatus::Deleted.as_str())
        .bind(row.status.as_str())
        .bind(now_ms)
        .bind(worker)
        .bind(destroy_at_ms)
        .bind(id)
        .bind(account_id)
        .execute(&mut *tx)
        .await?;
        let event = NewEvent {
            message: note,
            ..NewEvent::succeeded(HistoryTopic::Deleted, worker)
        };
        record_and_commit(tx, &row, &event, now_ms).await?;
        Ok(BinOutcome::Moved(Box::new(row)))
    }

    /// Restore: brings a Deleted image back to the status it had, with its attributes and
    /// tags. Its shares stay stopped.
    pub async fn restore_image(
        &self,
        account_id: &str,
        id: &str,
        worker: &str,
        now_ms: i64,
    ) -> sqlx::Result<StatusChangeOutcome> {
        let mut tx = self.begin_write().await?;
        let Some(row) = lock_image(&mut tx, account_id, id).await? else {
            return Ok(StatusChangeOutcome::NotFound);
        };
        let Some(restores_to) = row
            .deleted
            .as_ref()
            .map(|d| d.restores_to)
            .filter(|_| row.status == ImageStatus::Deleted)
        else {
            return Ok(StatusChangeOutcome::Refused(Box::new(row)));
        };
        sqlx::query(
            "UPDATE images SET status = $1, restore_status = NULL, deleted_at = NULL, deleted_by = NULL, \
             destroy_at = NULL, updated_by = $2, updated_at = $3 WHERE id = $4 AND account_id = $5",
        )
        .bind(restores_to.as_str())
        .bind(worker)
        .bind(now_ms)
        .bind(id)
        .bind(account_id)
        .execute(&mut *tx)
        .await?;
        let note = notes::restored(restores_to.label());
        let event = NewEvent {
            message: &note,
            ..NewEvent::succeeded(HistoryTopic::Restored, worker)
        };
        record_and_commit(tx, &row, &event, now_ms).await?;
        Ok(StatusChangeOutcome::Done(Box::new(row)))
    }

    /// Destroy, first step: a Deleted image that nothing uses becomes Deleting and gives up
    /// its use of its bytes. (A Deleting one, left by a process that stopped, starts again.)
    pub async fn begin_destroy(
        &self,
        account_id: &str,
        id: &str,
        worker: &str,
        now_ms: i64,
    ) -> sqlx::Result<DestroyStart> {
        let mut tx = self.begin_write().await?;
        let Some(row) = lock_image(&mut tx, account_id, id).await? else {
            return Ok(DestroyStart::NotFound);
        };
        let release_blob = match row.status {
            ImageStatus::Deleted => {
                let references = references_of(&mut tx, id).await?;
                if !references.is_empty() {
                    return Ok(DestroyStart::InUse(references));
                }
                set_status(&mut tx, &row, ImageStatus::Deleting, worker, now_ms).await?;
                match &row.blob_key {
                    Some(key) => release_blob_ref(&mut tx, key).await?,
                    None => false,
                }
            }
            // Its use was given up when it became Deleting: the bytes go if no other image
            // has them.
            ImageStatus::Deleting => match &row.blob_key {
                Some(key) => !blob_used_by_another(&mut tx, key, id).await?,
                None => false,
            },
            _ => return Ok(DestroyStart::NotInBin(Box::new(row))),
        };
        tx.commit().await?;
        Ok(DestroyStart::Started {
            row: Box::new(row),
            release_blob,
        })
    }

    /// Destroy, last step once the bytes are gone: the row, its tags, properties and
    /// references go; its Work History stays, with this event.
    pub async fn finish_destroy(
        &self,
        account_id: &str,
        id: &str,
        event: &NewEvent<'_>,
        now_ms: i64,
    ) -> sqlx::Result<bool> {
        let mut tx = self.begin_write().await?;
        let Some(row) = lock_image(&mut tx, account_id, id).await? else {
            return Ok(false);
        };
        if row.status != ImageStatus::Deleting {
            return Ok(false);
        }
        // Tags first, so the counters count them out while the image is still there.
        for table in [
            "image_tags",
            "image_properties",
            "image_references",
            "image_shares",
            "image_lineage",
        ] {
            sqlx::query(&format!("DELETE FROM {table} WHERE image_id = $1"))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM images WHERE id = $1 AND account_id = $2")
            .bind(id)
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
        super::super::incoming::forget_all(&mut tx, id).await?;
        record_and_commit(tx, &row, event, now_ms).await?;
        Ok(true)
    }

    /// Images the purge destroys now: Deleted ones whose destroy time has passed, and
    /// Deleting ones untouched since `stale_before_ms` (their process stopped). At most
    /// `limit`, oldest first.
    pub async fn images_to_purge(
        &self,
        now_ms: i64,
        stale_before_ms: i64,
        limit: i64,
    ) -> sqlx::Result<Vec<PurgeTarget>> {
        let rows = sqlx::query(
            "SELECT i.account_id, i.id, i.status, i.deleted_at, i.destroy_at FROM images i \
             WHERE (i.destroy_at <= $1 AND i.status = $2) OR (i.destroy_at IS NOT NULL AND i.status = $3 AND i.updated_at < $4) \
             ORDER BY i.destroy_at LIMIT $5",
        )
        .bind(now_ms)
        .bind(ImageStatus::Deleted.as_str())
        .bind(ImageStatus::Deleting.as_str())
        .bind(stale_before_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let status: String = r.try_get("status")?;
                let kept_ms =
                    r.try_get::<i64, _>("destroy_at")? - r.try_get::<i64, _>("deleted_at")?;
                Ok(PurgeTarget {
                    account_id: r.try_get("account_id")?,
                    id: r.try_get("id")?,
                    status: ImageStatus::from_db(&status)
                        .ok_or_else(|| decode_error("status", &status))?,
                    retention: RetentionDays::from_db(kept_ms / 86_400_000),
                })
            })
            .collect()
    }

    /// The account's images in the Recycle Bin, most recently deleted first.
    pub async fn list_recycle_bin(&self, account_id: &str) -> sqlx::Result<Vec<ImageRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM images i WHERE i.account_id = $1 AND i.status IN ($2, $3) \
             ORDER BY i.deleted_at DESC, i.seq DESC"
        ))
        .bind(account_id)
        .bind(ImageStatus::Deleted.as_str())
        .bind(ImageStatus::Deleting.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(ImageRow::from_row).collect()
    }

    /// Deactivate (`to` Deactivated, from Active) or Reactivate (`to` Active, from
    /// Deactivated).
    pub async fn set_activation(
        &self,
        account_id: &str,
        id: &str,
        to: ImageStatus,
        event: &NewEvent<'_>,
        now_ms: i64,
    ) -> sqlx::Result<StatusChangeOutcome> {
        let from = match to {
            ImageStatus::Deactivated => ImageStatus::Active,
            _ => ImageStatus::Deactivated,
        };
        let mut tx = self.begin_write().await?;
        let Some(row) = lock_image(&mut tx, account_id, id).await? else {
            return Ok(StatusChangeOutcome::NotFound);
        };
        if row.status != from {
            return Ok(StatusChangeOutcome::Refused(Box::new(row)));
        }
        set_status(&mut tx, &row, to, event.worker, now_ms).await?;
        record_and_commit(tx, &row, event, now_ms).await?;
        Ok(StatusChangeOutcome::Done(Box::new(row)))
    }

    /// Cancel Import: a Queued, Importing or Converting image (which gives up the bytes it
    /// received), one that waits for its data or its import
    /// through the image API, or one whose local file's upload never started, becomes Failed
    /// with `reason`.
    pub async fn cancel_import(
        &self,
        account_id: &str,
        id: &str,
        worker: &str,
        reason: &str,
        now_ms: i64,
    ) -> sqlx::Result<StatusChangeOutcome> {
        let mut tx = self.begin_write().await?;
        let Some(row) = lock_image(&mut tx, account_id, id).await? else {
            return Ok(StatusChangeOutcome::NotFound);
        };
        let cancellable = match row.status {
            ImageStatus::Queued | ImageStatus::Importing | ImageStatus::Converting => true,
            // Staged data waiting for its import, or a local file whose upload never
            // started; one receiving bytes has Cancel Upload, which removes them.
            ImageStatus::Uploading => {
                row.source_file_name.is_none() || !upload_receiving(&mut tx, id).await?
            }
            _ => false,
        };
        if !cancellable {
            return Ok(StatusChangeOutcome::Refused(Box::new(row)));
        }
        if row.status == ImageStatus::Converting {
            // A conversion cancelled keeps none of the bytes it received. A Converting image
            // is never shared, so its bytes are its own and the caller removes them.
            super::conversion::give_up_received_bytes(
                &mut tx,
                &row,
                ImageStatus::Failed,
                reason,
                now_ms,
            )
            .await?;
        }
        sqlx::query(
            "UPDATE images SET status = $1, failure_reason = $2, bytes_reserved = NULL, updated_by = $3, \
             updated_at = $4 WHERE id = $5 AND account_id = $6",
        )
        .bind(ImageStatus::Failed.as_str())
        .bind(reason)
        .bind(worker)
        .bind(now_ms)
        .bind(id)
        .bind(account_id)
        .execute(&mut *tx)
        .await?;
        let event = NewEvent {
            message: reason,
            ..NewEvent::succeeded(HistoryTopic::ImportCancelled, worker)
        };
        record_and_commit(tx, &row, &event, now_ms).await?;
        Ok(StatusChangeOutcome::Done(Box::new(row)))
    }

    /// How long the account keeps deleted images.
    pub async fn retention(&self, account_id: &str) -> sqlx::Result<RetentionDays> {
        let row = sqlx::query("SELECT retention_days FROM accounts WHERE id = $1")
            .bind(account_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(row) => RetentionDays::from_db(row.try_get::<i64, _>("retention_days")?),
            None => RetentionDays::DEFAULT,
        })
    }

    pub async fn set_retention(
        &self,
        account_id: &str,
        retention: RetentionDays,
    ) -> sqlx::Result<()> {
        sqlx::query("UPDATE accounts SET retention_days = $1 WHERE id = $2")
            .bind(i64::from(retention.days()))
            .bind(account_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// Whether a browser's upload of the image is receiving bytes.
async fn upload_receiving(conn: &mut AnyConnection, id: &str) -> sqlx::Result<bool> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM uploads WHERE image_id = $1 AND state = $2")
        .bind(id)
        .bind(crate::store::uploads::UploadState::Receiving.as_str())
        .fetch_one(&mut *conn)
        .await?;
    Ok(row.try_get::<i64, _>("n")? > 0)
}

/// Whether an image other than `id` has the stored file `blob_key`.
async fn blob_used_by_another(
    conn: &mut AnyConnection,
    blob_key: &str,
    id: &str,
) -> sqlx::Result<bool> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM images WHERE blob_key = $1 AND id <> $2")
        .bind(blob_key)
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
    Ok(row.try_get::<i64, _>("n")? > 0)
}
