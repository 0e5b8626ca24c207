//! Local-file uploads (tus 1.0): the rules behind the `/uploads` routes.
//!
//! An image created from a local file starts Uploading; its one upload receives the file in
//! any number of PATCH requests. Each request streams its body through `ingest` (the blob
//! writer and the hashers, on their own threads), which fsyncs; only then does the durable
//! offset move, with the hashers' state saved beside it. A body that breaks off keeps what
//! arrived, so the client resumes from there and no byte is hashed twice. When the last byte
//! is in, `ingest::check` inspects the file and verifies the checksum, and the file moves into
//! the blob store before the image turns Active.

mod body;
mod expiry;
mod slots;

use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use futures::{Stream, StreamExt};

use super::ingest::{self, Hashers, Ingest, PendingCheckpoint};
use super::{Actor, ServiceError, Services, now_ms};
use crate::domain::checksum::ExpectedChecksum;
use crate::domain::history::{HistoryTopic, SYSTEM_WORKER};
use crate::domain::image::ImageStatus;
use crate::domain::notices;
use crate::domain::units::{describe_duration, format_bytes};
use crate::domain::upload::{UploadRef, parse_metadata, upload_path};
use crate::store::blobs::sealed::SegmentCipher;
use crate::store::blobs::{BlobWriter, Incoming, IncomingState};
use crate::store::leases::{Fence, upload_lease};
use crate::store::uploads::{CreateUploadError, NewUpload, UploadRow, UploadState};
use slots::Writer;
pub use slots::{PatchSlots, UploadLocks};

/// Progress shown on the image while a request streams is written at most this often.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(500);

/// What a tus client learns about an upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadInfo {
    pub id: String,
    pub image_id: String,
    pub offset: u64,
    pub length: u64,
    pub metadata: String,
    pub expires_at_ms: i64,
}

impl UploadInfo {
    fn of(row: &UploadRow) -> Self {
        Self {
            id: row.id.clone(),
            image_id: row.image_id.clone(),
            offset: row.offset_bytes,
            length: row.length_bytes,
            metadata: row.metadata.clone(),
            expires_at_ms: row.expires_at_ms,
        }
    }
}

/// Why an upload request was refused; each maps to one tus status.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("Sign in to upload images.")]
    Unauthorized,
    /// No such upload or image in the account (also for another account's).
    #[error("{0}")]
    NotFound(String),
    /// The upload ended (cancelled or expired); its bytes are gone.
    #[error("{0}")]
    Gone(String),
    #[error("The upload is at byte {expected}; send the bytes from there.")]
    OffsetMismatch { expected: u64 },
    #[error("Another request is writing this upload; try again when it ends.")]
    Busy,
    /// Another console process took the upload over while this request wrote it (this one
    /// was paused or cut off from the database past its lease); what it had recorded stays.
    #[error(
        "Another console process took this upload over while this request was writing it; ask for the offset (HEAD) and resume from there."
    )]
    TakenOver,
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    /// The request body ended early; what arrived is kept (the offset says how much).
    #[error("The request body broke off at byte {offset}; resume from there.")]
    BrokenBody { offset: u64 },
    /// The body stopped arriving; what arrived is kept.
    #[error(
        "No bytes arrived for {}, so the request was ended; the upload kept the bytes up to {offset}. Resume from there.",
        describe_duration(*.idle)
    )]
    Idle { offset: u64, idle: Duration },
    /// Too many PATCH requests of this account are streaming; the text says so.
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after: Duration,
    },
    /// The server is receiving as many uploads as it allows at once.
    #[error("The server is receiving as many uploads as it allows at once; try again shortly.")]
    ServerBusy { retry_after: Duration },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// An upload's error where a service error is answered (the image API's data routes, server
/// functions): the same status as its tus answer, except that an ended upload is simply not
/// there any more.
impl From<UploadError> for super::ServiceError {
    fn from(error: UploadError) -> Self {
        use super::ServiceError;
        match error {
            UploadError::Unauthorized => ServiceError::Unauthorized,
            UploadError::NotFound(m) => ServiceError::NotFound(m),
            UploadError::Gone(m) => ServiceError::Gone(m),
            UploadError::TooLarge(m) => ServiceError::TooLarge(m),
            UploadError::Conflict(m) => ServiceError::Conflict(m),
            UploadError::OffsetMismatch { .. } | UploadError::Busy | UploadError::TakenOver => {
                ServiceError::Conflict(error.to_string())
            }
            UploadError::Invalid(_) | UploadError::BrokenBody { .. } => ServiceError::Invalid(
                vec![crate::domain::FieldError::new("upload", error.to_string())],
            ),
            UploadError::Idle { .. } => ServiceError::TimedOut(error.to_string()),
            UploadError::TooManyRequests {
                message,
                retry_after,
            } => ServiceError::TooManyRequests {
                message,
                retry_after,
            },
            UploadError::ServerBusy { retry_after } => ServiceError::Busy(retry_after),
            UploadError::Internal(e) => ServiceError::Internal(e),
        }
    }
}

impl From<sqlx::Error> for UploadError {
    fn from(e: sqlx::Error) -> Self {
        UploadError::Internal(anyhow::Error::new(e).context("database"))
    }
}

impl From<std::io::Error> for UploadError {
    fn from(e: std::io::Error) -> Self {
        UploadError::Internal(anyhow::Error::new(e).context("upload storage"))
    }
}

type UploadResult<T> = Result<T, UploadError>;

/// A long request records its durable offset at least every this many bytes and this often,
/// so a crash loses at most that much of what it received.
pub const CHECKPOINT_BYTES: u64 = 64 << 20;
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(5);

/// The request writing an upload: its row, its claim on the upload's lease, and what stops it.
struct Writing<'a> {
    row: &'a UploadRow,
    fence: &'a Fence,
    writer: &'a Writer,
    /// Cancelled when the heartbeat finds the claim taken over.
    lost: tokio_util::sync::CancellationToken,
}

/// What the upload's row names as durable.
struct Recorded {
    offset: u64,
    state: IncomingState,
    expires_at_ms: i64,
}

/// What a request left durable and recorded, and the hashers there (none when it stopped
/// without finishing its writes).
struct Durable {
    recorded: Recorded,
    hashers: Option<Hashers>,
}

/// How a request's body stream ended.
enum BodyEnd {
    /// All of it arrived.
    Complete,
    /// It carried more than the upload's length; the part that fits was kept.
    TooLong,
    /// The connection broke; what arrived was kept.
    Broken,
    /// Termination or deletion stopped it.
    Cancelled,
    /// Nothing arrived for the idle timeout; what arrived was kept.
    Idle,
    /// The upload ended (terminated, expired) while the request wrote it.
    Ended,
    /// Another console process took the upload's lease over; nothing more was written.
    TakenOver,
}

impl Services {
    /// Creates the upload of an Uploading image (tus creation). `length` must be the file
    /// size the image was created with.
    #[tracing::instrument(skip_all, fields(account.id = %actor.account_id, image.id = %image_id))]
    pub async fn create_upload(
        &self,
        actor: &Actor,
        image_id: &str,
        length: u64,
        metadata: &str,
    ) -> UploadResult<UploadInfo> {
        let image_id = parse_upload_image_id(image_id)?;
        parse_metadata(metadata).map_err(|e| UploadError::Invalid(e.to_string()))?;
        let limit = self.settings().import_size_limit_bytes;
        if length > limit {
            return Err(UploadError::TooLarge(format!(
                "The file is {}, larger than the import limit of {}.",
                format_bytes(length),
                format_bytes(limit)
            )));
        }
        let image = self
            .store()
            .get_image(&actor.account_id, &image_id)
            .await?
            .ok_or_else(|| UploadError::NotFound(notices::NO_SUCH_IMAGE.into()))?;
        let expected = image
            .expected_checksum
            .as_deref()
            .and_then(ExpectedChecksum::from_db);
        if image.status != ImageStatus::Uploading {
            return Err(UploadError::Conflict(format!(
                "The image is {}, not waiting for an upload.",
                image.status.label()
            )));
        }
        // An encrypted image's upload seals its bytes with a data key made for it now.
        let data_key = match &image.encryption_key_id {
            Some(key_id) => Some(
                self.key_ring()
                    .new_data_key(&actor.account_id, key_id)
                    .await
                    .map_err(|e| match e {
                        ServiceError::Forbidden(reason) | ServiceError::Conflict(reason) => {
                            UploadError::Conflict(reason)
                        }
                        other => UploadError::Internal(anyhow::Error::new(other)),
                    })?
                    .1,
            ),
            None => None,
        };
        let id = hex::encode(rand::random::<[u8; 16]>());
        let now = self.clock_ms();
        let expires_at_ms = now + self.upload_expiry_ms();
        // The bytes' place exists before the row, so a crash in between leaves only an orphan
        // (a file the start-up sweep removes; a multipart upload with no part). An existing
        // file is another upload's: keep it.
        let blob_state = match self
            .blobs()
            .begin_incoming(Incoming::Upload, &image_id)
            .await
        {
            Ok(state) => state,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(UploadError::Conflict(STARTED.into()));
            }
            Err(e) => return Err(e.into()),
        };
        let created = self
            .store()
            .create_upload(&NewUpload {
                id: &id,
                image_id: &image_id,
                account_id: &actor.account_id,
                length_bytes: length,
                metadata,
                hasher_state: &Hashers::new(expected.as_ref(), image.signature.hash_method)
                    .to_state(),
                blob_state: blob_state.to_db().as_deref(),
                data_key: data_key.as_ref(),
                worker: &actor.user_name,
                now_ms: now,
                expires_at_ms,
            })
            .await;
        let refusal = match created {
            Ok(()) => {
                tracing::info!(upload.id = %id, length, "upload created");
                return Ok(UploadInfo {
                    id,
                    image_id,
                    offset: 0,
                    length,
                    metadata: metadata.to_owned(),
                    expires_at_ms,
                });
            }
            Err(CreateUploadError::NoImage) => UploadError::NotFound(notices::NO_SUCH_IMAGE.into()),
            Err(CreateUploadError::AlreadyStarted) => UploadError::Conflict(STARTED.into()),
            Err(CreateUploadError::NotUploading(status)) => UploadError::Conflict(format!(
                "The image is {}, not waiting for an upload.",
                status.label()
            )),
            Err(CreateUploadError::LengthMismatch { expected }) => UploadError::Invalid(format!(
                "Upload-Length is {length}, but the image was created for a file of {expected} bytes."
            )),
            Err(CreateUploadError::Db(e)) => e.into(),
        };
        self.blobs()
            .remove_incoming(Incoming::Upload, &image_id, &blob_state)
            .await?;
        Err(refusal)
    }

    /// The receiving upload of an Uploading image of the account, if it has one.
    pub async fn image_upload(
        &self,
        actor: &Actor,
        image_id: &str,
    ) -> UploadResult<Option<UploadRef>> {
        let image_id = parse_upload_image_id(image_id)?;
        let row = self
            .store()
            .get_image_upload(&actor.account_id, &image_id)
            .await?;
        Ok(row
            .filter(|row| row.state == UploadState::Receiving)
            .map(|row| UploadRef {
                path: upload_path(&row.id),
                offset: row.offset_bytes,
                length: row.length_bytes,
            }))
    }

    /// How many upload PATCH requests are streaming on this server now.
    pub fn uploads_streaming(&self) -> usize {
        self.inner.patch_slots.streaming()
    }

    /// Where an upload stands (tus HEAD).
    pub async fn upload_status(&self, actor: &Actor, upload_id: &str) -> UploadResult<UploadInfo> {
        let row = self.live_upload(actor, upload_id).await?;
        Ok(UploadInfo::of(&row))
    }

    /// Appends a request body at `offset` (tus PATCH). Returns the new durable offset.
    /// `announced` is the body's Content-Length, if it gave one: a body announced longer than
    /// the upload still needs is refused before a byte is written; one without a length is
    /// cut at the upload's length.
    #[tracing::instrument(skip_all, fields(account.id = %actor.account_id, upload.id = %upload_id))]
    pub async fn append_upload<S, E>(
        &self,
        actor: &Actor,
        upload_id: &str,
        offset: u64,
        announced: Option<u64>,
        body: S,
    ) -> UploadResult<UploadInfo>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        let row = self.live_upload(actor, upload_id).await?;
        let _slot = self.inner.patch_slots.try_take(&actor.account_id)?;
        let lock = self
            .inner
            .upload_locks
            .try_lock(&row.image_id)
            .ok_or(UploadError::Busy)?;
        // And one writer among the console processes: another's request may be writing it.
        let lease = self
            .inner
            .leases
            .acquire(&upload_lease(&row.image_id))
            .await?
            .ok_or(UploadError::Busy)?;
        // Read again under the lock: the request before may just have moved it.
        let row = self.live_upload(actor, upload_id).await?;
        if offset != row.offset_bytes {
            return Err(UploadError::OffsetMismatch {
                expected: row.offset_bytes,
            });
        }
        let needed = row.length_bytes - row.offset_bytes;
        if let Some(announced) = announced
            && announced > needed
        {
            return Err(UploadError::TooLarge(format!(
                "The request carries {announced} bytes, more than the {needed} the upload still needs."
            )));
        }
        if row.state == UploadState::Complete {
            return Ok(UploadInfo::of(&row));
        }
        let hashers = Hashers::from_state(&row.hasher_state).context("restoring hasher state")?;
        let blob_state = IncomingState::from_db(row.blob_state.as_deref())?;
        let fence = lease.fence();
        let seal = self.upload_cipher(&row).await?;
        let file = self
            .blobs()
            .open_writer(
                Incoming::Upload,
                &row.image_id,
                &blob_state,
                row.offset_bytes,
                row.length_bytes,
                seal.as_ref(),
            )
            .await?;
        let Some(file) = file else {
            self.lose_upload(&row, &fence).await?;
            return Err(UploadError::Gone(LOST.into()));
        };

        let writing = Writing {
            row: &row,
            fence: &fence,
            writer: &lock.writer,
            lost: lease.lost(),
        };
        let (durable, end) = self
            .receive(&writing, file, hashers, blob_state, body)
            .await?;
        let Durable { recorded, hashers } = durable;
        match end {
            BodyEnd::Complete => {}
            BodyEnd::Broken => {
                return Err(UploadError::BrokenBody {
                    offset: recorded.offset,
                });
            }
            BodyEnd::Idle => {
                return Err(UploadError::Idle {
                    offset: recorded.offset,
                    idle: self.settings().limits.upload_idle,
                });
            }
            BodyEnd::Cancelled | BodyEnd::Ended => return Err(UploadError::Gone(ENDED.into())),
            BodyEnd::TakenOver => return Err(UploadError::TakenOver),
            BodyEnd::TooLong => {
                return Err(UploadError::TooLarge(format!(
                    "The request carries more than the upload's {} bytes.",
                    row.length_bytes
                )));
            }
        }
        if recorded.offset == row.length_bytes {
            let hashers = hashers.context("the hashers of a finished body")?;
            self.finish_upload(&row, &fence, hashers, &recorded.state, seal.as_ref())
                .await?;
        }
        drop(lock);
        Ok(UploadInfo {
            offset: recorded.offset,
            expires_at_ms: recorded.expires_at_ms,
            ..UploadInfo::of(&row)
        })
    }

    /// The cipher an encrypted image's upload seals with: its data key, opened while its key
    /// can be used (a disabled key holds the upload until it is enabled again).
    pub(super) async fn upload_cipher(
        &self,
        row: &UploadRow,
    ) -> UploadResult<Option<SegmentCipher>> {
        let Some(stored) = &row.data_key else {
            return Ok(None);
        };
        self.key_ring()
            .open_data_key(&row.account_id, stored)
            .await
            .map(|key| Some(key.cipher()))
            .map_err(|e| match e {
                ServiceError::Forbidden(reason) | ServiceError::Conflict(reason) => {
                    UploadError::Conflict(reason)
                }
                other => UploadError::Internal(anyhow::Error::new(other)),
            })
    }

    /// Cancels an upload (tus termination): its bytes are deleted and the image is marked
    /// Failed, saying who cancelled it.
    #[tracing::instrument(skip_all, fields(account.id = %actor.account_id, upload.id = %upload_id))]
    pub async fn terminate_upload(&self, actor: &Actor, upload_id: &str) -> UploadResult<()> {
        let row = self.live_upload(actor, upload_id).await?;
        if row.state == UploadState::Complete {
            return Err(UploadError::Conflict(
                "The upload is complete; delete the image instead.".into(),
            ));
        }
        let _lock = self
            .inner
            .upload_locks
            .cancel_and_lock(&row.image_id)
            .await
            .ok_or(UploadError::Busy)?;
        let reason = format!(
            "The upload was cancelled by {} after {} of {}; its bytes were deleted.",
            actor.user_name,
            format_bytes(row.offset_bytes),
            format_bytes(row.length_bytes)
        );
        let ended = self
            .store()
            .end_upload(
                &actor.account_id,
                Some(&row.id),
                &row.image_id,
                None,
                UploadState::Terminated,
                HistoryTopic::UploadCancelled,
                &reason,
                &actor.user_name,
                now_ms(),
            )
            .await?;
        if !ended {
            return Err(UploadError::Gone(ENDED.into()));
        }
        let blob_state = IncomingState::from_db(row.blob_state.as_deref())?;
        self.remove_upload_bytes(&row.image_id, &blob_state).await?;
        tracing::info!("upload cancelled");
        Ok(())
    }

    /// Removes an ended upload's bytes, then their record.
    pub(super) async fn remove_upload_bytes(
        &self,
        image_id: &str,
        blob_state: &IncomingState,
    ) -> UploadResult<()> {
        self.blobs()
            .remove_incoming(Incoming::Upload, image_id, blob_state)
            .await?;
        if let Some(recorded) = blob_state.to_db() {
            self.store()
                .forget_incoming(image_id, Incoming::Upload, &recorded)
                .await?;
        }
        Ok(())
    }

    /// Cancels any request writing the image's upload (the image is being deleted).
    pub(super) async fn stop_upload_writes(&self, image_id: &str) {
        let _ = self.inner.upload_locks.cancel_and_lock(image_id).await;
    }

    /// The account's upload, if it can still be read: an ended one is Gone, and one past its
    /// expiry is ended now rather than at the next sweep.
    async fn live_upload(&self, actor: &Actor, upload_id: &str) -> UploadResult<UploadRow> {
        let valid = upload_id.len() == 32 && upload_id.bytes().all(|b| b.is_ascii_hexdigit());
        let row = match valid {
            true => {
                self.store()
                    .get_upload(&actor.account_id, upload_id)
                    .await?
            }
            false => None,
        }
        .ok_or_else(|| UploadError::NotFound(NO_UPLOAD.into()))?;
        match row.state {
            UploadState::Terminated => Err(UploadError::Gone(
                "This upload was cancelled and its bytes deleted.".into(),
            )),
            UploadState::Expired => Err(UploadError::Gone(
                "This upload expired or lost its bytes; create the image again.".into(),
            )),
            UploadState::Receiving if row.expires_at_ms <= self.clock_ms() => {
                self.expire_uploads().await?;
                Err(UploadError::Gone(
                    "This upload expired; create the image again.".into(),
                ))
            }
            _ => Ok(row),
        }
    }

    fn upload_expiry_ms(&self) -> i64 {
        i64::try_from(self.settings().upload_expiry.as_millis()).unwrap_or(i64::MAX / 2)
    }
}

const STARTED: &str = "This image's upload has already started; resume it instead.";
const NO_UPLOAD: &str = "No upload with that ID exists in this account.";
const ENDED: &str = "The upload ended while this request was writing it.";
const LOST: &str = "The upload's partial bytes were lost on the server; create the image again to upload the file.";

/// An image id as the upload routes take it; anything else is an image that does not exist.
fn parse_upload_image_id(raw: &str) -> UploadResult<String> {
    super::images::parse_image_id(raw)
        .map_err(|_| UploadError::NotFound(notices::NO_SUCH_IMAGE.into()))
}
