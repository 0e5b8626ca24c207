//! Local-file uploads (tus 1.0): the rules behind the `/uploads` routes.
//!
//! An image created from a local file starts Uploading; its one upload receives the file in
//! any number of PATCH requests. Each request streams its body to `uploads/<image>.part`
//! while two threads hash it (SHA-512, and MD5 with SHA-256 when the creator's checksum is
//! one), then fsyncs and only then moves the durable offset, saving the hashers' state with
//! it. A body that breaks off keeps what arrived, so the client resumes from there and no
//! byte is hashed twice. When the last byte is in, the head of the file is inspected, the
//! checksum verified and the file renamed into the blob store before the image turns Active.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use md5::Md5;
use sha2::digest::common::hazmat::SerializableState;
use sha2::{Digest, Sha256, Sha512};
use tokio_util::sync::CancellationToken;

use super::importer::Digests;
use super::{Actor, Services, now_ms};
use crate::domain::checksum::{ChecksumAlgorithm, ExpectedChecksum};
use crate::domain::history::{HistoryTopic, SYSTEM_WORKER};
use crate::domain::image::{HASH_ALGORITHM, ImageStatus};
use crate::domain::units::format_bytes;
use crate::domain::upload::{UploadRef, parse_metadata, upload_path};
use crate::inspect::Inspector;
use crate::store::blobs::UploadFileWriter;
use crate::store::images::ImportedBytes;
use crate::store::uploads::{CreateUploadError, NewUpload, UploadRow, UploadState};

/// Progress shown on the image while a request streams is written at most this often.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(500);

/// Batches in flight between the request and each of its threads.
const CHANNEL_CHUNKS: usize = 4;

/// The size of the batches handed to the hashing and writing threads.
const BATCH_BYTES: usize = 1 << 20;

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

/// One writer per image: a PATCH holds its image's entry while it writes, and termination or
/// deletion cancels it through the token.
#[derive(Default)]
pub struct UploadLocks {
    held: Mutex<HashMap<String, Arc<Writer>>>,
}

/// The request writing an upload: how to stop it, and when it last made headway.
pub struct Writer {
    token: CancellationToken,
    /// When the request last completed a `HEADWAY_BYTES` stretch of body, in ms since the
    /// epoch. A request that keeps making headway keeps its upload from expiring, whatever
    /// the durable offset says; one that trickles does not.
    headway_at_ms: AtomicI64,
}

/// How much body a writer must receive to count as making headway.
const HEADWAY_BYTES: u64 = 1 << 20;

impl Writer {
    fn made_headway_since(&self, since_ms: i64) -> bool {
        self.headway_at_ms.load(Ordering::Relaxed) > since_ms
    }
}

pub struct UploadLock<'a> {
    locks: &'a UploadLocks,
    image_id: String,
    writer: Arc<Writer>,
}

impl Drop for UploadLock<'_> {
    fn drop(&mut self) {
        self.locks.map().remove(&self.image_id);
    }
}

impl UploadLocks {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Writer>>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn try_lock(&self, image_id: &str) -> Option<UploadLock<'_>> {
        let mut map = self.map();
        if map.contains_key(image_id) {
            return None;
        }
        let writer = Arc::new(Writer {
            token: CancellationToken::new(),
            headway_at_ms: AtomicI64::new(now_ms()),
        });
        map.insert(image_id.to_owned(), Arc::clone(&writer));
        Some(UploadLock {
            locks: self,
            image_id: image_id.to_owned(),
            writer,
        })
    }

    /// Whether a request writing the image's upload has made headway since `since_ms`.
    fn writer_made_headway_since(&self, image_id: &str, since_ms: i64) -> bool {
        self.map()
            .get(image_id)
            .is_some_and(|w| w.made_headway_since(since_ms))
    }

    /// Stops the request writing the image's upload, if any, and takes the lock once it ends.
    pub async fn cancel_and_lock(&self, image_id: &str) -> Option<UploadLock<'_>> {
        if let Some(writer) = self.map().get(image_id) {
            writer.token.cancel();
        }
        for _ in 0..100 {
            if let Some(lock) = self.try_lock(image_id) {
                return Some(lock);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }
}

/// Bounds the PATCH requests that stream at once, in all and per account, so that stalled
/// requests cannot hold every thread and file the server has.
pub struct PatchSlots {
    global: Arc<tokio::sync::Semaphore>,
    per_account: usize,
    held: Arc<Mutex<HashMap<String, usize>>>,
}

/// One streaming PATCH; its slot is given back when it is dropped.
pub struct PatchSlot {
    _global: tokio::sync::OwnedSemaphorePermit,
    account_id: String,
    held: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for PatchSlot {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = held.get_mut(&self.account_id) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.account_id);
            }
        }
    }
}

/// How long a client refused for too many requests is told to wait.
const PATCH_RETRY_AFTER: Duration = Duration::from_secs(5);

impl PatchSlots {
    pub fn new(limits: &super::AbuseLimits) -> Self {
        Self {
            global: Arc::new(tokio::sync::Semaphore::new(limits.upload_patches.max(1))),
            per_account: limits.upload_patches_per_account.max(1),
            held: Arc::default(),
        }
    }

    /// PATCH requests streaming now.
    fn streaming(&self) -> usize {
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .sum()
    }

    /// A slot for one more PATCH of `account_id`, or why not. Never waits: a client told to
    /// retry costs nothing, a queued request holds a connection.
    fn try_take(&self, account_id: &str) -> UploadResult<PatchSlot> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let count = held.get(account_id).copied().unwrap_or(0);
        if count >= self.per_account {
            return Err(UploadError::TooManyRequests {
                message: format!(
                    "This account already has {count} upload requests streaming, the most allowed at once; try again when one ends."
                ),
                retry_after: PATCH_RETRY_AFTER,
            });
        }
        let global =
            Arc::clone(&self.global)
                .try_acquire_owned()
                .map_err(|_| UploadError::ServerBusy {
                    retry_after: PATCH_RETRY_AFTER,
                })?;
        held.insert(account_id.to_owned(), count + 1);
        Ok(PatchSlot {
            _global: global,
            account_id: account_id.to_owned(),
            held: Arc::clone(&self.held),
        })
    }
}

/// The running digests of an upload, saved with every durable offset.
struct Hashers {
    sha512: Sha512,
    md5: Md5,
    sha256: Option<Sha256>,
}

impl Hashers {
    fn new(with_sha256: bool) -> Self {
        Self {
            sha512: Sha512::new(),
            md5: Md5::new(),
            sha256: with_sha256.then(Sha256::new),
        }
    }

    /// `sha512.md5[.sha256]`, each the hex of the hasher's serialized state.
    fn to_state(&self) -> String {
        let mut state = format!(
            "{}.{}",
            hex::encode(self.sha512.serialize()),
            hex::encode(self.md5.serialize())
        );
        if let Some(sha256) = &self.sha256 {
            state.push('.');
            state.push_str(&hex::encode(sha256.serialize()));
        }
        state
    }

    fn from_state(state: &str) -> anyhow::Result<Self> {
        fn restore<H: SerializableState>(part: Option<&str>) -> anyhow::Result<H> {
            let bytes = hex::decode(part.context("missing hasher state")?)?;
            let array = bytes
                .as_slice()
                .try_into()
                .map_err(|_| anyhow::anyhow!("hasher state has the wrong length"))?;
            H::deserialize(array).map_err(|_| anyhow::anyhow!("hasher state is invalid"))
        }
        let mut parts = state.split('.');
        let sha512 = restore::<Sha512>(parts.next())?;
        let md5 = restore::<Md5>(parts.next())?;
        let sha256 = match parts.next() {
            Some(part) => Some(restore::<Sha256>(Some(part))?),
            None => None,
        };
        Ok(Self {
            sha512,
            md5,
            sha256,
        })
    }
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
            .ok_or_else(|| UploadError::NotFound(NO_IMAGE.into()))?;
        let with_sha256 = image
            .expected_checksum
            .as_deref()
            .and_then(ExpectedChecksum::from_db)
            .is_some_and(|e| e.algorithm == ChecksumAlgorithm::Sha256);
        if image.status != ImageStatus::Uploading {
            return Err(UploadError::Conflict(format!(
                "The image is {}, not waiting for an upload.",
                image.status.label()
            )));
        }
        let id = hex::encode(rand::random::<[u8; 16]>());
        let now = now_ms();
        let expires_at_ms = now + self.upload_expiry_ms();
        // The file exists before the row, so a crash in between leaves only an orphan file,
        // which the start-up sweep removes. An existing file is another upload's: keep it.
        match self.blobs().create_upload_file(&image_id).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(UploadError::Conflict(STARTED.into()));
            }
            Err(e) => return Err(e.into()),
        }
        let created = self
            .store()
            .create_upload(&NewUpload {
                id: &id,
                image_id: &image_id,
                account_id: &actor.account_id,
                length_bytes: length,
                metadata,
                hasher_state: &Hashers::new(with_sha256).to_state(),
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
            Err(CreateUploadError::NoImage) => UploadError::NotFound(NO_IMAGE.into()),
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
        self.blobs().remove_upload(&image_id).await?;
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
        let blobs = self.blobs().clone();
        let (image_id, durable) = (row.image_id.clone(), row.offset_bytes);
        let file = tokio::task::spawn_blocking(move || blobs.open_upload_at(&image_id, durable))
            .await
            .map_err(|e| anyhow::anyhow!("upload file thread: {e}"))??;
        let Some(file) = file else {
            self.lose_upload(&row).await?;
            return Err(UploadError::Gone(LOST.into()));
        };

        let remaining = row.length_bytes - row.offset_bytes;
        let (received, end, hashers) = self
            .receive(&row, file, hashers, body, remaining, &lock.writer)
            .await?;
        let new_offset = row.offset_bytes + received;
        let now = now_ms();
        let expires_at_ms = now + self.upload_expiry_ms();
        let moved = received == 0
            || self
                .store()
                .advance_upload(
                    &actor.account_id,
                    &row.id,
                    &row.image_id,
                    row.offset_bytes,
                    new_offset,
                    &hashers.to_state(),
                    now,
                    expires_at_ms,
                )
                .await?;
        if !moved {
            return Err(UploadError::Gone(ENDED.into()));
        }
        match end {
            BodyEnd::Complete => {}
            BodyEnd::Broken => return Err(UploadError::BrokenBody { offset: new_offset }),
            BodyEnd::Idle => {
                return Err(UploadError::Idle {
                    offset: new_offset,
                    idle: self.settings().limits.upload_idle,
                });
            }
            BodyEnd::Cancelled => return Err(UploadError::Gone(ENDED.into())),
            BodyEnd::TooLong => {
                return Err(UploadError::TooLarge(format!(
                    "The request carries more than the upload's {} bytes.",
                    row.length_bytes
                )));
            }
        }
        if new_offset == row.length_bytes {
            self.finish_upload(&row, hashers).await?;
        }
        drop(lock);
        Ok(UploadInfo {
            offset: new_offset,
            expires_at_ms,
            ..UploadInfo::of(&row)
        })
    }

    /// Streams `body` to the upload's file and hashers, at most `remaining` bytes, and fsyncs
    /// what it wrote. Returns how many bytes are now durable and how the body ended.
    async fn receive<S, E>(
        &self,
        row: &UploadRow,
        file: UploadFileWriter,
        hashers: Hashers,
        mut body: S,
        remaining: u64,
        writer: &Writer,
    ) -> UploadResult<(u64, BodyEnd, Hashers)>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        let Hashers {
            mut sha512,
            mut md5,
            mut sha256,
        } = hashers;
        let (to_file, mut file_chunks) = tokio::sync::mpsc::channel::<Bytes>(CHANNEL_CHUNKS);
        let (to_sha512, mut sha512_chunks) = tokio::sync::mpsc::channel::<Bytes>(CHANNEL_CHUNKS);
        let (to_md5, mut md5_chunks) = tokio::sync::mpsc::channel::<Bytes>(CHANNEL_CHUNKS);
        // Three threads: SHA-512 is the slowest step (about 320 MiB/s on one core), so it
        // runs alone while MD5 and the file writes run beside it.
        let file_thread = tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
            let mut file = file;
            while let Some(chunk) = file_chunks.blocking_recv() {
                file.write(&chunk)?;
            }
            file.finish()
        });
        let sha512_thread = tokio::task::spawn_blocking(move || {
            while let Some(chunk) = sha512_chunks.blocking_recv() {
                sha512.update(&chunk);
            }
            sha512
        });
        let md5_thread = tokio::task::spawn_blocking(move || {
            while let Some(chunk) = md5_chunks.blocking_recv() {
                md5.update(&chunk);
                if let Some(sha256) = sha256.as_mut() {
                    sha256.update(&chunk);
                }
            }
            (md5, sha256)
        });

        // The body arrives in pieces of a few KiB; they are gathered into larger batches, so
        // the threads wake per MiB rather than per piece.
        let mut batch = bytes::BytesMut::with_capacity(BATCH_BYTES);
        let mut sent = 0u64;
        let mut last_report = Instant::now();
        let mut delivered = true;
        let idle = self.settings().limits.upload_idle;
        let end = loop {
            let next = tokio::select! {
                next = tokio::time::timeout(idle, body.next()) => match next {
                    Ok(next) => next,
                    Err(_) => break BodyEnd::Idle,
                },
                () = writer.token.cancelled() => break BodyEnd::Cancelled,
            };
            let mut chunk = match next {
                None => break BodyEnd::Complete,
                Some(Ok(chunk)) => chunk,
                Some(Err(e)) => {
                    tracing::info!(error = %e, received = sent, "upload body broke off");
                    break BodyEnd::Broken;
                }
            };
            let fits = remaining - sent;
            let too_long = chunk.len() as u64 > fits;
            if too_long {
                chunk.truncate(fits as usize);
            }
            if (sent + chunk.len() as u64) / HEADWAY_BYTES > sent / HEADWAY_BYTES {
                writer.headway_at_ms.store(now_ms(), Ordering::Relaxed);
            }
            sent += chunk.len() as u64;
            batch.extend_from_slice(&chunk);
            if batch.len() >= BATCH_BYTES {
                let full =
                    std::mem::replace(&mut batch, bytes::BytesMut::with_capacity(BATCH_BYTES));
                delivered = deliver(full.freeze(), [&to_sha512, &to_md5, &to_file]).await;
            }
            if !delivered || too_long {
                break BodyEnd::TooLong;
            }
            if last_report.elapsed() >= PROGRESS_INTERVAL {
                last_report = Instant::now();
                self.store()
                    .record_upload_progress(&row.account_id, &row.image_id, row.offset_bytes + sent)
                    .await?;
            }
        };
        // What arrived before the body ended is kept, whatever the reason it ended.
        if delivered && !batch.is_empty() {
            deliver(batch.freeze(), [&to_sha512, &to_md5, &to_file]).await;
        }
        drop((to_file, to_sha512, to_md5));
        // Every thread is waited for, so nothing writes after the request returns.
        let written = file_thread.await.map_err(thread_error);
        let sha512 = sha512_thread.await.map_err(thread_error)?;
        let (md5, sha256) = md5_thread.await.map_err(thread_error)?;
        let written = written??;
        if written != sent {
            return Err(UploadError::Internal(anyhow::anyhow!(
                "wrote {written} of {sent} bytes"
            )));
        }
        Ok((
            sent,
            end,
            Hashers {
                sha512,
                md5,
                sha256,
            },
        ))
    }

    /// Inspects and verifies a complete upload, then stores it and marks the image Active, or
    /// marks it Failed with the reason and removes the bytes.
    async fn finish_upload(&self, row: &UploadRow, hashers: Hashers) -> UploadResult<()> {
        let sha512_hex = hex::encode(hashers.sha512.finalize());
        let md5_hex = hex::encode(hashers.md5.finalize());
        let sha256_hex = hashers.sha256.map(|h| hex::encode(h.finalize()));
        let length = row.length_bytes;
        let (head, tail) = self
            .blobs()
            .read_upload_ends(&row.image_id, Inspector::HEAD_BYTES, Inspector::TAIL_BYTES)
            .await?;
        let inspector = Inspector::of_file(&head, &tail, length);
        let digests = Digests {
            md5_hex: &md5_hex,
            sha256_hex: sha256_hex.as_deref(),
            sha512_hex: &sha512_hex,
        };
        let checked = match row
            .expected_checksum
            .as_deref()
            .and_then(ExpectedChecksum::from_db)
        {
            Some(expected) => digests.verify(&expected),
            None => Ok(()),
        }
        .and_then(|()| {
            inspector
                .verdict(row.declared_format)
                .map_err(|refusal| refusal.to_string())
        });
        let now = now_ms();
        let inspection = match checked {
            Ok(inspection) => inspection,
            Err(reason) => {
                tracing::info!(%reason, "upload refused");
                self.store()
                    .end_upload(
                        &row.account_id,
                        Some(&row.id),
                        &row.image_id,
                        UploadState::Complete,
                        HistoryTopic::ImportFailed,
                        &reason,
                        SYSTEM_WORKER,
                        now,
                    )
                    .await?;
                self.blobs().remove_upload(&row.image_id).await?;
                return Ok(());
            }
        };
        let blob_key = self.blobs().commit_upload(&row.image_id).await?;
        let stored = ImportedBytes {
            disk_format: inspection.format,
            size_bytes: length,
            virtual_size_bytes: inspection.virtual_size_bytes,
            hash_algo: HASH_ALGORITHM,
            hash_value: sha512_hex,
            checksum_md5: md5_hex,
            blob_key: blob_key.clone(),
        };
        let completed = self
            .store()
            .complete_upload(&row.account_id, &row.id, &row.image_id, &stored, now)
            .await;
        if !matches!(completed, Ok(true)) {
            self.blobs().remove_blob(&blob_key).await?;
            completed?;
            return Err(UploadError::Gone(ENDED.into()));
        }
        tracing::info!(image.id = %row.image_id, size_bytes = length, "upload finished");
        Ok(())
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
        self.blobs().remove_upload(&row.image_id).await?;
        tracing::info!("upload cancelled");
        Ok(())
    }

    /// Ends uploads untouched for longer than the expiry (and Uploading images whose upload
    /// never started): their bytes are deleted and the image marked Failed. Returns how many.
    pub async fn expire_uploads(&self) -> anyhow::Result<usize> {
        let now = now_ms();
        let expiry = self.upload_expiry_ms();
        let mut ended = 0;
        for upload in self.store().list_expired_uploads(now, now - expiry).await? {
            // Expiry counts from the last durable byte. A request that is still open and
            // received a MiB within the expiry period is progressing (a large file in one
            // PATCH); one that has not (it trickles) is stopped, keeping what it received,
            // and the upload expires all the same.
            if self
                .inner
                .upload_locks
                .writer_made_headway_since(&upload.image_id, now - expiry)
            {
                continue;
            }
            let Some(_lock) = self
                .inner
                .upload_locks
                .cancel_and_lock(&upload.image_id)
                .await
            else {
                continue;
            };
            let reason = format!(
                "The upload expired: nothing arrived for {}. Its bytes were deleted; create the image again to upload the file.",
                describe_duration(self.settings().upload_expiry)
            );
            if self
                .store()
                .end_upload(
                    &upload.account_id,
                    upload.upload_id.as_deref(),
                    &upload.image_id,
                    UploadState::Expired,
                    HistoryTopic::ImportFailed,
                    &reason,
                    SYSTEM_WORKER,
                    now,
                )
                .await?
            {
                self.blobs().remove_upload(&upload.image_id).await?;
                tracing::info!(image.id = %upload.image_id, "upload expired");
                ended += 1;
            }
        }
        Ok(ended)
    }

    /// At start-up: an upload whose file is missing or shorter than its durable offset has
    /// lost bytes; its image is marked Failed rather than pointing at what is not there.
    /// An upload whose every byte is durable but that was not finished (the server stopped
    /// between the last piece and the inspection) is finished now: inspected, then made Active
    /// or Failed.
    pub(super) async fn recover_uploads(&self) -> anyhow::Result<()> {
        for row in self.store().list_receiving_uploads().await? {
            let path = self.blobs().upload_path(&row.image_id)?;
            let on_disk = tokio::fs::metadata(&path).await.map(|m| m.len()).ok();
            if on_disk.is_none_or(|len| len < row.offset_bytes) {
                tracing::warn!(image.id = %row.image_id, "upload bytes missing at start-up");
                self.lose_upload(&row).await?;
            } else if row.offset_bytes == row.length_bytes {
                tracing::info!(image.id = %row.image_id, "finishing an upload received before a restart");
                let hashers =
                    Hashers::from_state(&row.hasher_state).context("restoring hasher state")?;
                self.finish_upload(&row, hashers)
                    .await
                    .map_err(|e| anyhow::anyhow!("finishing upload {}: {e}", row.id))?;
            }
        }
        Ok(())
    }

    async fn lose_upload(&self, row: &UploadRow) -> UploadResult<()> {
        self.store()
            .end_upload(
                &row.account_id,
                Some(&row.id),
                &row.image_id,
                UploadState::Expired,
                HistoryTopic::ImportFailed,
                LOST,
                SYSTEM_WORKER,
                now_ms(),
            )
            .await?;
        self.blobs().remove_upload(&row.image_id).await?;
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
            UploadState::Receiving if row.expires_at_ms <= now_ms() => {
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

const NO_IMAGE: &str = "No image with that ID exists in this account.";
const STARTED: &str = "This image's upload has already started; resume it instead.";
const NO_UPLOAD: &str = "No upload with that ID exists in this account.";
const ENDED: &str = "The upload ended while this request was writing it.";
const LOST: &str = "The upload's partial bytes were lost on the server; create the image again to upload the file.";

/// An image id as the upload routes take it; anything else is an image that does not exist.
fn parse_upload_image_id(raw: &str) -> UploadResult<String> {
    super::images::parse_image_id(raw).map_err(|_| UploadError::NotFound(NO_IMAGE.into()))
}

/// Hands a batch to every thread; `false` if one of them has stopped.
async fn deliver(batch: Bytes, threads: [&tokio::sync::mpsc::Sender<Bytes>; 3]) -> bool {
    for thread in threads {
        if thread.send(batch.clone()).await.is_err() {
            return false;
        }
    }
    true
}

fn thread_error(e: tokio::task::JoinError) -> UploadError {
    UploadError::Internal(anyhow::anyhow!("upload thread: {e}"))
}

/// "24 hours", "90 minutes", "30 seconds", "500 milliseconds".
fn describe_duration(duration: Duration) -> String {
    if duration.subsec_nanos() != 0 {
        return format!("{} milliseconds", duration.as_millis());
    }
    let seconds = duration.as_secs();
    match seconds {
        s if s >= 3600 && s % 3600 == 0 => format!("{} hours", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{} minutes", s / 60),
        s => format!("{s} seconds"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hasher_state_survives_a_round_trip_mid_stream() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut first = Hashers::new(true);
        let head = &data[..123_457];
        first.sha512.update(head);
        first.md5.update(head);
        first.sha256.as_mut().unwrap().update(head);
        let mut resumed = Hashers::from_state(&first.to_state()).unwrap();
        let rest = &data[123_457..];
        resumed.sha512.update(rest);
        resumed.md5.update(rest);
        resumed.sha256.as_mut().unwrap().update(rest);
        assert_eq!(
            hex::encode(resumed.sha512.finalize()),
            hex::encode(Sha512::digest(&data))
        );
        assert_eq!(
            hex::encode(resumed.md5.finalize()),
            hex::encode(Md5::digest(&data))
        );
        assert_eq!(
            hex::encode(resumed.sha256.unwrap().finalize()),
            hex::encode(Sha256::digest(&data))
        );
        assert!(Hashers::from_state("00.11").is_err());
        assert!(Hashers::new(false).to_state().matches('.').count() == 1);
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(describe_duration(Duration::from_secs(86_400)), "24 hours");
        assert_eq!(describe_duration(Duration::from_secs(5_400)), "90 minutes");
        assert_eq!(describe_duration(Duration::from_secs(30)), "30 seconds");
    }
}
