//! Local-file uploads (tus): one row per upload, its durable offset and hasher state.
//!
//! Every call names the account, and every change is a compare-and-set on the upload's state
//! (and offset), so a late request never revives an upload that ended. A request's writes are
//! fenced by its claim on the upload's lease, so a writer whose lease was taken over changes
//! nothing.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::blobs::Incoming;
use super::history::{NewEvent, insert_event};
use super::images::{ImportedBytes, activate, transition};
use super::leases::{Fence, fence_condition, hold};
use super::{Store, to_i64, to_u64};
use crate::domain::history::{HistoryTopic, WorkResult};
use crate::domain::image::{DiskFormat, ImageStatus};

/// Where an upload is in its life. Only `Receiving` takes bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UploadState {
    Receiving,
    /// Every byte arrived; the image became Active, or Failed if it was refused.
    Complete,
    /// Cancelled (tus termination); its bytes are gone.
    Terminated,
    /// Untouched for too long; its bytes are gone.
    Expired,
}

impl UploadState {
    pub fn as_str(self) -> &'static str {
        match self {
            UploadState::Receiving => "receiving",
            UploadState::Complete => "complete",
            UploadState::Terminated => "terminated",
            UploadState::Expired => "expired",
        }
    }

    fn from_db(raw: &str) -> Option<Self> {
        [
            UploadState::Receiving,
            UploadState::Complete,
            UploadState::Terminated,
            UploadState::Expired,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
    }
}

#[derive(Clone, Debug)]
pub struct UploadRow {
    pub id: String,
    pub image_id: String,
    pub account_id: String,
    pub length_bytes: u64,
    pub offset_bytes: u64,
    pub metadata: String,
    pub hasher_state: String,
    pub state: UploadState,
    pub expires_at_ms: i64,
    /// The image's expected checksum, which decides whether SHA-256 is computed too.
    pub expected_checksum: Option<String>,
    /// The format the image was declared to be.
    pub declared_format: DiskFormat,
    /// What the blob store needs to go on with the bytes (object storage only).
    pub blob_state: Option<String>,
    /// The data key an encrypted image's bytes are sealed with.
    pub data_key: Option<super::keys::WrappedDataKey>,
    /// The image's signature properties: the bytes are hashed for them and verified.
    pub signature: crate::domain::signature::SignatureProperties,
}

const COLUMNS: &str = "u.id, u.image_id, u.account_id, u.length_bytes, u.offset_bytes, u.metadata, \
    u.hasher_state, u.state, u.expires_at, i.expected_checksum, i.declared_format, \
    b.state AS blob_state, i.encryption_key_id, i.data_key_version, i.data_key_wrapped, \
    i.data_key_nonce, i.data_key_format, i.signature, i.signature_hash_method, \
    i.signature_key_type, i.signature_certificate_id";

/// The tables `COLUMNS` reads.
const FROM: &str = "uploads u JOIN images i ON i.id = u.image_id \
    LEFT JOIN incoming_blobs b ON b.image_id = u.image_id AND b.kind = 'upload'";

impl UploadRow {
    fn from_row(r: &AnyRow) -> sqlx::Result<Self> {
        let state: String = r.try_get("state")?;
        Ok(Self {
            id: r.try_get("id")?,
            image_id: r.try_get("image_id")?,
            account_id: r.try_get("account_id")?,
            length_bytes: to_u64(r.try_get("length_bytes")?),
            offset_bytes: to_u64(r.try_get("offset_bytes")?),
            metadata: r.try_get("metadata")?,
            hasher_state: r.try_get("hasher_state")?,
            state: UploadState::from_db(&state)
                .ok_or_else(|| super::images::decode_error("state", &state))?,
            expires_at_ms: r.try_get("expires_at")?,
            expected_checksum: r.try_get("expected_checksum")?,
            declared_format: r
                .try_get::<Option<String>, _>("declared_format")?
                .as_deref()
                .and_then(DiskFormat::from_db)
                .unwrap_or_default(),
            blob_state: r.try_get("blob_state")?,
            data_key: super::keys::WrappedDataKey::from_row(r)?,
            signature: super::images::signature_properties_from_row(r)?,
        })
    }
}

pub struct NewUpload<'a> {
    pub id: &'a str,
    pub image_id: &'a str,
    pub account_id: &'a str,
    pub length_bytes: u64,
    pub metadata: &'a str,
    pub hasher_state: &'a str,
    /// The blob store's state of the incoming bytes, if it keeps one.
    pub blob_state: Option<&'a str>,
    /// The data key an encrypted image's bytes will be sealed with.
    pub data_key: Option<&'a super::keys::WrappedDataKey>,
    pub worker: &'a str,
    pub now_ms: i64,
    pub expires_at_ms: i64,
}

/// Why an upload could not be created for an image.
#[derive(Debug)]
pub enum CreateUploadError {
    /// No such image in the account.
    NoImage,
    /// The image is not Uploading (its bytes came, or it failed).
    NotUploading(ImageStatus),
    /// The image already has an upload; resume that one.
    AlreadyStarted,
    /// The image was created for a file of another size.
    LengthMismatch {
        expected: u64,
    },
    Db(sqlx::Error),
}

impl From<sqlx::Error> for CreateUploadError {
    fn from(e: sqlx::Error) -> Self {
        CreateUploadError::Db(e)
    }
}

/// An upload that the sweeper may end.
#[derive(Clone, Debug)]
pub struct ExpiredUpload {
    pub image_id: String,
    pub account_id: String,
    /// `None` for an Uploading image whose upload was never created.
    pub upload_id: Option<String>,
}

impl Store {
    /// Creates the upload of an Uploading image, recording "Upload started".
    pub async fn create_upload(&self, upload: &NewUpload<'_>) -> Result<(), CreateUploadError> {
        let mut tx = self.begin_write().await?;
        let image = sqlx::query(
            "SELECT status, bytes_total, name, \
             (SELECT COUNT(*) FROM uploads u WHERE u.image_id = i.id) AS uploads \
             FROM images i WHERE i.id = $1 AND i.account_id = $2",
        )
        .bind(upload.image_id)
        .bind(upload.account_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(CreateUploadError::NoImage)?;
        let status: String = image.try_get("status")?;
        let status = ImageStatus::from_db(&status).ok_or(CreateUploadError::NoImage)?;
        if to_u64(image.try_get("uploads")?) > 0 {
            return Err(CreateUploadError::AlreadyStarted);
        }
        if status != ImageStatus::Uploading {
            return Err(CreateUploadError::NotUploading(status));
        }
        let expected = image.try_get::<Option<i64>, _>("bytes_total")?.map(to_u64);
        if let Some(expected) = expected
            && expected != upload.length_bytes
        {
            return Err(CreateUploadError::LengthMismatch { expected });
        }
        sqlx::query(
            "INSERT INTO uploads (id, image_id, account_id, length_bytes, offset_bytes, metadata, \
             hasher_state, state, created_at, updated_at, expires_at) \
             VALUES ($1, $2, $3, $4, 0, $5, $6, $7, $8, $8, $9)",
        )
        .bind(upload.id)
        .bind(upload.image_id)
        .bind(upload.account_id)
        .bind(to_i64(upload.length_bytes))
        .bind(upload.metadata)
        .bind(upload.hasher_state)
        .bind(UploadState::Receiving.as_str())
        .bind(upload.now_ms)
        .bind(upload.expires_at_ms)
        .execute(&mut *tx)
        .await?;
        if let Some(state) = upload.blob_state {
            super::incoming::record(
                &mut tx,
                upload.image_id,
                Incoming::Upload,
                state,
                upload.now_ms,
            )
            .await?;
        }
        sqlx::query(
            "UPDATE images SET bytes_done = 0, bytes_total = $1, updated_at = $2 WHERE id = $3 AND account_id = $4",
        )
        .bind(to_i64(upload.length_bytes))
        .bind(upload.now_ms)
        .bind(upload.image_id)
        .bind(upload.account_id)
        .execute(&mut *tx)
        .await?;
        if let Some(key) = upload.data_key {
            sqlx::query(
                "UPDATE images SET data_key_version = $1, data_key_wrapped = $2, data_key_nonce = $3, data_key_format = $4 \
                 WHERE id = $5 AND account_id = $6 AND encryption_key_id = $7",
            )
            .bind(i64::from(key.version))
            .bind(&key.wrapped)
            .bind(&key.nonce)
            .bind(&key.format)
            .bind(upload.image_id)
            .bind(upload.account_id)
            .bind(&key.key_id)
            .execute(&mut *tx)
            .await?;
        }
        let name: String = image.try_get("name")?;
        insert_event(
            &mut tx,
            upload.account_id,
            upload.image_id,
            &name,
            &NewEvent::succeeded(HistoryTopic::UploadStarted, upload.worker),
            upload.now_ms,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The account's upload with this id.
    pub async fn get_upload(&self, account_id: &str, id: &str) -> sqlx::Result<Option<UploadRow>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM {FROM} \
             WHERE u.id = $1 AND u.account_id = $2"
        ))
        .bind(id)
        .bind(account_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(UploadRow::from_row).transpose()
    }

    /// The upload of an image, if it has one.
    pub async fn get_image_upload(
        &self,
        account_id: &str,
        image_id: &str,
    ) -> sqlx::Result<Option<UploadRow>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM {FROM} \
             WHERE u.image_id = $1 AND u.account_id = $2"
        ))
        .bind(image_id)
        .bind(account_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(UploadRow::from_row).transpose()
    }

    /// Moves a receiving upload's durable offset from `from` to `to` with the hasher state and
    /// the blob store's state at `to`, and shows the progress on the image. `false` if the
    /// upload was not at `from`.
    #[expect(clippy::too_many_arguments, reason = "one value per column written")]
    pub async fn advance_upload(
        &self,
        account_id: &str,
        id: &str,
        image_id: &str,
        fence: &Fence,
        from: u64,
        to: u64,
        hasher_state: &str,
        blob_state: Option<&str>,
        now_ms: i64,
        expires_at_ms: i64,
    ) -> sqlx::Result<bool> {
        let mut tx = self.begin_write().await?;
        if !hold(&mut tx, self.backend, fence).await? {
            return Ok(false);
        }
        let done = sqlx::query(
            "UPDATE uploads SET offset_bytes = $1, hasher_state = $2, updated_at = $3, expires_at = $4 \
             WHERE id = $5 AND account_id = $6 AND state = $7 AND offset_bytes = $8",
        )
        .bind(to_i64(to))
        .bind(hasher_state)
        .bind(now_ms)
        .bind(expires_at_ms)
        .bind(id)
        .bind(account_id)
        .bind(UploadState::Receiving.as_str())
        .bind(to_i64(from))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        if let Some(state) = blob_state {
            super::incoming::record(&mut tx, image_id, Incoming::Upload, state, now_ms).await?;
        }
        sqlx::query(
            "UPDATE images SET bytes_done = $1 WHERE id = $2 AND account_id = $3 AND status = $4",
        )
        .bind(to_i64(to))
        .bind(image_id)
        .bind(account_id)
        .bind(ImageStatus::Uploading.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Shows bytes received so far on an Uploading image (not yet durable).
    pub async fn record_upload_progress(
        &self,
        account_id: &str,
        image_id: &str,
        fence: &Fence,
        bytes_done: u64,
    ) -> sqlx::Result<()> {
        sqlx::query(&format!(
            "UPDATE images SET bytes_done = $1 WHERE id = $2 AND account_id = $3 AND status = $4 AND {}",
            fence_condition(5)
        ))
        .bind(to_i64(bytes_done))
        .bind(image_id)
        .bind(account_id)
        .bind(ImageStatus::Uploading.as_str())
        .bind(&fence.resource)
        .bind(&fence.token)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks a fully received upload complete and gives its image its bytes: Active, or
    /// Converting when it asked for another format. The status it took; `None` if either had
    /// moved on (the image was deleted meanwhile).
    pub async fn complete_upload(
        &self,
        account_id: &str,
        id: &str,
        image_id: &str,
        fence: &Fence,
        bytes: &ImportedBytes,
        now_ms: i64,
    ) -> sqlx::Result<Option<ImageStatus>> {
        let mut tx = self.begin_write().await?;
        if !hold(&mut tx, self.backend, fence).await? {
            return Ok(None);
        }
        if !set_upload_state(&mut tx, account_id, id, UploadState::Complete, now_ms).await? {
            return Ok(None);
        }
        let status = activate(
            &mut tx,
            account_id,
            image_id,
            ImageStatus::Uploading,
            bytes,
            now_ms,
        )
        .await?;
        if status.is_some() {
            tx.commit().await?;
        }
        Ok(status)
    }

    /// Ends an upload in `state` (complete but refused, terminated or expired) and marks its
    /// image Failed with `reason`, recorded under `topic`. `upload_id` is `None` for an image
    /// whose upload never started. `fence` is the claim of the request ending it, if one is
    /// (a refused upload, lost bytes). `false` if the upload had already ended, or the claim
    /// was taken over.
    #[expect(clippy::too_many_arguments, reason = "who, what, why and when")]
    pub async fn end_upload(
        &self,
        account_id: &str,
        upload_id: Option<&str>,
        image_id: &str,
        fence: Option<&Fence>,
        state: UploadState,
        topic: HistoryTopic,
        reason: &str,
        worker: &str,
        now_ms: i64,
    ) -> sqlx::Result<bool> {
        let mut tx = self.begin_write().await?;
        if let Some(fence) = fence
            && !hold(&mut tx, self.backend, fence).await?
        {
            return Ok(false);
        }
        if let Some(upload_id) = upload_id
            && !set_upload_state(&mut tx, account_id, upload_id, state, now_ms).await?
        {
            return Ok(false);
        }
        let update = sqlx::query(
            "UPDATE images SET status = $1, failure_reason = $2, updated_at = $3, updated_by = $4 \
             WHERE id = $5 AND account_id = $6 AND status = $7",
        )
        .bind(ImageStatus::Failed.as_str())
        .bind(reason)
        .bind(now_ms)
        .bind(worker)
        .bind(image_id)
        .bind(account_id)
        .bind(ImageStatus::Uploading.as_str());
        let event = NewEvent {
            message: reason,
            result: if topic == HistoryTopic::UploadCancelled {
                WorkResult::Succeeded
            } else {
                WorkResult::Failed
            },
            ..NewEvent::succeeded(topic, worker)
        };
        transition::change_and_record(tx, (account_id, image_id), update, &event, now_ms).await
    }

    /// Receiving uploads untouched since their expiry, and Uploading images whose upload was
    /// never created by `stale_before_ms`, across accounts.
    pub async fn list_expired_uploads(
        &self,
        now_ms: i64,
        stale_before_ms: i64,
    ) -> sqlx::Result<Vec<ExpiredUpload>> {
        let rows = sqlx::query(
            "SELECT u.id AS upload_id, u.image_id, u.account_id FROM uploads u \
             WHERE u.state = $1 AND u.expires_at <= $2 \
             UNION ALL \
             SELECT NULL AS upload_id, i.id AS image_id, i.account_id FROM images i \
             WHERE i.status = $3 AND i.updated_at <= $4 AND i.blob_key IS NULL \
               AND NOT EXISTS (SELECT 1 FROM uploads u WHERE u.image_id = i.id)",
        )
        .bind(UploadState::Receiving.as_str())
        .bind(now_ms)
        .bind(ImageStatus::Uploading.as_str())
        .bind(stale_before_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ExpiredUpload {
                    upload_id: r.try_get("upload_id")?,
                    image_id: r.try_get("image_id")?,
                    account_id: r.try_get("account_id")?,
                })
            })
            .collect()
    }

    /// Every upload still receiving, across accounts: their files must survive the start-up
    /// sweep, and each is checked against its file.
    pub async fn list_receiving_uploads(&self) -> sqlx::Result<Vec<UploadRow>> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM {FROM} WHERE u.state = $1"))
            .bind(UploadState::Receiving.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(UploadRow::from_row).collect()
    }
}

async fn set_upload_state(
    conn: &mut sqlx::AnyConnection,
    account_id: &str,
    id: &str,
    state: UploadState,
    now_ms: i64,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE uploads SET state = $1, updated_at = $2 WHERE id = $3 AND account_id = $4 AND state = $5",
    )
    .bind(state.as_str())
    .bind(now_ms)
    .bind(id)
    .bind(account_id)
    .bind(UploadState::Receiving.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
