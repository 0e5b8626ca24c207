//! An attempt's bytes: fetching the URL through the SSRF guard, streaming a body into the
//! image's incoming bytes under the size limit, the quota and the minimum speed, and
//! removing what an attempt that failed had written.

use super::*;
use crate::store::keys::WrappedDataKey;

impl Importer {
    /// Streams the URL's body to the staging file. Returns once every byte is durable, or
    /// once the writer thread has stopped: after an error or a cancellation no thread is
    /// still writing the staging file when the caller removes it.
    pub(super) async fn import(
        &self,
        attempt: &Attempt<'_>,
        url: &str,
        claims: &Claims,
        key_id: Option<&str>,
        written: &mut Option<IncomingState>,
    ) -> Result<Written, Stop> {
        let limit = self.inner.limits.max_bytes;
        let parsed = url::Url::parse(url)
            .map_err(|_| Stop::Failed("The image file URL is not a valid URL.".into()))?;
        // Stored before this rule or its allow-list changed, the URL is checked again.
        self.inner
            .policy
            .check_url(&parsed)
            .map_err(|refused| Stop::Failed(refused.0))?;
        let host = parsed.host_str().unwrap_or_default().to_owned();
        let response = tokio::select! {
            response = self.inner.client.get(url).send() => {
                response.map_err(|e| Stop::Failed(describe_request_error(&e, &host)))?
            }
            () = attempt.cancel.cancelled() => return Err(Stop::Cancelled),
            () = attempt.lost.cancelled() => return Err(Stop::TakenOver),
        };
        let status = response.status();
        if !status.is_success() {
            return Err(Stop::Failed(describe_status(status)));
        }
        let total = response.content_length();
        if let Some(total) = total
            && total > limit
        {
            return Err(Stop::TooLarge(too_large(Some(total), limit)));
        }
        let body = response
            .bytes_stream()
            .map(|chunk| chunk.map_err(|e| describe_body_error(&e).to_owned()));
        let origin = format!("The download from {host}");
        let source = Source {
            total,
            origin: &origin,
            idle: None,
        };
        self.receive(
            attempt,
            body,
            source,
            claims,
            DataKeyFor::attempt(key_id),
            written,
        )
        .await
    }

    /// Copies an image of the account (Replicate): its plain bytes, opened with its data key
    /// if it is encrypted, go through `receive` like a download's body, at most as fast as
    /// `REPLICATE_MAX_SPEED` allows. The copy's checksum is the source's SHA-512.
    pub(super) async fn replicate(
        &self,
        attempt: &Attempt<'_>,
        source_id: &str,
        claims: &Claims,
        key_id: Option<&str>,
        written: &mut Option<IncomingState>,
    ) -> Result<Written, Stop> {
        let store = &self.inner.store;
        let source = store
            .get_image(attempt.account_id, source_id)
            .await?
            .ok_or_else(|| {
                Stop::Failed(format!("The source image {source_id} no longer exists."))
            })?;
        let (Some(blob_key), Some(size)) = (&source.blob_key, source.size_bytes) else {
            return Err(Stop::Failed(format!(
                "The source image {} is {}, so there were no bytes to copy.",
                source.attributes.name,
                source.status.label()
            )));
        };
        if !matches!(
            source.status,
            ImageStatus::Active | ImageStatus::Deactivated
        ) {
            return Err(Stop::Failed(format!(
                "The source image {} is {}, so it was not copied.",
                source.attributes.name,
                source.status.label()
            )));
        }
        let cipher = match &source.data_key {
            Some(stored) => Some(
                self.inner
                    .keys
                    .open_data_key(attempt.account_id, stored)
                    .await
                    .map_err(key_refusal)?
                    .cipher(),
            ),
            None => None,
        };
        let mut reader = self.inner.blobs.open_blob(blob_key).await?;
        if let Some(cipher) = cipher {
            reader = reader.sealed(cipher, size);
        }
        let name = source.attributes.name.clone();
        let bytes = reader
            .range(0, size)
            .map(move |piece| piece.map_err(|e| format!("reading {name}: {e}")));
        let body = paced(bytes, self.inner.limits.replicate_max_bytes_per_second);
        let source = Source {
            total: Some(size),
            origin: "The copy of the source image",
            idle: None,
        };
        self.receive(
            attempt,
            body,
            source,
            claims,
            DataKeyFor::attempt(key_id),
            written,
        )
        .await
    }

    /// Streams a body into the image's incoming bytes while hashing them, within the size
    /// limit and the account's quota, sealing them under a new data key of `key_id` for an
    /// encrypted image. Returns once every byte is durable, or once the writer lane has
    /// stopped: after an error or a cancellation nothing is still writing what the caller
    /// removes.
    pub(super) async fn receive<S>(
        &self,
        attempt: &Attempt<'_>,
        body: S,
        source: Source<'_>,
        claims: &Claims,
        key: DataKeyFor<'_>,
        written: &mut Option<IncomingState>,
    ) -> Result<Written, Stop>
    where
        S: futures::Stream<Item = Result<bytes::Bytes, String>> + Unpin,
    {
        let (account_id, image_id) = (attempt.account_id, attempt.image_id);
        let Source {
            total,
            origin,
            idle,
        } = source;
        let limit = self.inner.limits.max_bytes;
        let store = &self.inner.store;
        let fence = &attempt.fence;
        // A known length is reserved whole before a byte is written; otherwise storage is
        // reserved step by step as the bytes arrive (see `reserve`).
        let mut reserved = 0;
        if let Some(total) = total {
            reserved = self.reserve(attempt, total, total).await?;
        }
        if !store
            .record_import_progress(account_id, image_id, fence, 0, total)
            .await?
        {
            return Err(Stop::Cancelled);
        }

        let (seal, wrapped) = match key {
            DataKeyFor::None => (None, None),
            DataKeyFor::Attempt(key_id) => (Some(self.new_data_key(attempt, key_id).await?), None),
            DataKeyFor::Result(key_id) => {
                let (cipher, wrapped) = self.unrecorded_data_key(attempt, key_id).await?;
                (Some(cipher), Some(wrapped))
            }
        };
        let (file, state) = self
            .start_writing(attempt, total.unwrap_or(limit), seal.as_ref())
            .await?;
        *written = Some(state);
        let mut ingest = Ingest::start(file, claims.hashers());

        let streamed = async {
            let mut body = body;
            let mut done: u64 = 0;
            let mut last_report = Instant::now();
            let mut speed = SpeedCheck::new(
                self.inner.limits.min_bytes_per_second,
                self.inner.limits.min_speed_window,
            );
            // No deadline for a source without an idle limit: the minimum speed bounds it.
            let idle = idle.unwrap_or(Duration::MAX);
            loop {
                let next = tokio::select! {
                    next = tokio::time::timeout(idle, body.next()) => match next {
                        Ok(next) => next,
                        Err(_) => return Err(Stop::Idle(idle)),
                    },
                    () = attempt.cancel.cancelled() => return Err(Stop::Cancelled),
                    () = attempt.lost.cancelled() => return Err(Stop::TakenOver),
                    () = tokio::time::sleep_until(speed.deadline()) => {
                        speed.check(done).map_err(Stop::Failed)?;
                        continue;
                    }
                };
                let Some(chunk) = next else { break };
                let chunk = chunk.map_err(|reason| {
                    Stop::Failed(format!(
                        "{origin} broke off after {}{}: {reason}.",
                        format_bytes(done),
                        total
                            .map(|t| format!(" of {}", format_bytes(t)))
                            .unwrap_or_default(),
                    ))
                })?;
                done += chunk.len() as u64;
                if done > limit {
                    return Err(Stop::TooLarge(too_large(None, limit)));
                }
                if done > reserved {
                    let wanted = done.saturating_add(RESERVATION_STEP).min(limit);
                    reserved = self.reserve(attempt, done, wanted).await?;
                }
                if !ingest.push(chunk).await {
                    // A thread stopped; `finish` says why, below.
                    break;
                }
                if last_report.elapsed() >= PROGRESS_INTERVAL {
                    last_report = Instant::now();
                    if !store
                        .record_import_progress(account_id, image_id, fence, done, total)
                        .await?
                    {
                        return Err(Stop::Cancelled);
                    }
                }
            }
            Ok(done)
        }
        .await;
        // Asked once more before anything is made durable: a process that was paused finds
        // out here that another owns the image's work now, and writes nothing more.
        if matches!(streamed, Err(Stop::TakenOver))
            || attempt.lost.is_cancelled()
            || !store.holds_lease(fence).await?
        {
            ingest.abandon();
            return Err(Stop::TakenOver);
        }
        // Always wait for the lanes, so none writes after the staging file is removed.
        let finished = ingest.finish(true).await.map_err(Stop::Internal);
        let done = streamed?;
        let ingest::Reached { hashers, state, .. } = finished?;
        *written = Some(state.clone());
        if let Some(total) = total
            && done != total
        {
            return Err(Stop::Failed(format!(
                "{origin} ended after {} of {}.",
                format_bytes(done),
                format_bytes(total)
            )));
        }
        Ok(Written {
            size_bytes: done,
            digests: hashers.finalize(),
            seal,
            wrapped,
            state,
        })
    }

    /// A new data key of the image's key for this attempt, recorded on the image under the
    /// attempt's claim before any byte is sealed with it. A key that cannot be used fails the
    /// import with the reason naming it.
    async fn new_data_key(
        &self,
        attempt: &Attempt<'_>,
        key_id: &str,
    ) -> Result<SegmentCipher, Stop> {
        let (cipher, wrapped) = self.unrecorded_data_key(attempt, key_id).await?;
        if !self
            .inner
            .store
            .set_import_data_key(
                attempt.account_id,
                attempt.image_id,
                &attempt.fence,
                &wrapped,
            )
            .await?
        {
            return Err(self.settle(attempt, Stop::Cancelled).await);
        }
        Ok(cipher)
    }

    /// A new data key of `key_id`, not yet recorded anywhere. A key that cannot be used fails
    /// the attempt with the reason naming it.
    async fn unrecorded_data_key(
        &self,
        attempt: &Attempt<'_>,
        key_id: &str,
    ) -> Result<(SegmentCipher, WrappedDataKey), Stop> {
        let (data_key, wrapped) = self
            .inner
            .keys
            .new_data_key(attempt.account_id, key_id)
            .await
            .map_err(key_refusal)?;
        Ok((data_key.cipher(), wrapped))
    }

    /// Starts the import's bytes from nothing. The blob store's state is recorded before a
    /// byte is written, and an earlier attempt's bytes go first.
    pub(super) async fn start_writing(
        &self,
        attempt: &Attempt<'_>,
        size_hint: u64,
        seal: Option<&SegmentCipher>,
    ) -> Result<(BlobWriter, IncomingState), Stop> {
        let image_id = attempt.image_id;
        let (blobs, store) = (&self.inner.blobs, &self.inner.store);
        let state = blobs.begin_incoming(Incoming::Import, image_id).await?;
        if let Some(recorded) = state.to_db() {
            let replaced = store
                .replace_incoming(
                    image_id,
                    Incoming::Import,
                    &attempt.fence,
                    &recorded,
                    now_ms(),
                )
                .await?;
            let Ok(earlier) = replaced else {
                // Never recorded, so never another's: this attempt's own upload goes.
                blobs
                    .remove_incoming(Incoming::Import, image_id, &state)
                    .await?;
                return Err(Stop::TakenOver);
            };
            if let Some(earlier) = earlier {
                let earlier = IncomingState::from_db(Some(&earlier))?;
                blobs
                    .remove_incoming(Incoming::Import, image_id, &earlier)
                    .await?;
            }
        }
        let writer = blobs
            .open_writer(Incoming::Import, image_id, &state, 0, size_hint, seal)
            .await?
            .ok_or_else(|| Stop::Internal(anyhow::anyhow!("the import's new bytes are missing")))?;
        Ok((writer, state))
    }

    /// Removes what this attempt `written`, then its record, while the attempt still holds
    /// its lease. An attempt whose lease was taken over removes nothing: on files the bytes'
    /// place is the image's, which the new holder writes now; on object storage the new
    /// holder removed this attempt's upload when it recorded its own, or the sweep will.
    pub(super) async fn discard(&self, attempt: &Attempt<'_>, written: Option<&IncomingState>) {
        let Some(written) = written else { return };
        let removed = async {
            if !self.inner.store.holds_lease(&attempt.fence).await? {
                tracing::warn!(image.id = %attempt.image_id, "left an attempt's bytes alone: its lease was taken over");
                return Ok(());
            }
            self.inner
                .blobs
                .remove_incoming(Incoming::Import, attempt.image_id, written)
                .await?;
            if let Some(recorded) = written.to_db() {
                self.inner
                    .store
                    .forget_incoming(attempt.image_id, Incoming::Import, &recorded)
                    .await?;
            }
            anyhow::Ok(())
        };
        if let Err(e) = removed.await {
            tracing::warn!(image.id = %attempt.image_id, error = format!("{e:#}"), "could not remove a partial import; left for the sweep");
        }
    }

    /// Removes the bytes the database records for the image's import, then the record: those
    /// of an attempt whose process stopped, when this process has just taken its lease.
    pub(super) async fn remove_recorded_import_bytes(
        &self,
        image_id: &str,
        fence: &crate::store::leases::Fence,
    ) -> anyhow::Result<()> {
        let (blobs, store) = (&self.inner.blobs, &self.inner.store);
        if !store.holds_lease(fence).await? {
            return Ok(());
        }
        let Some(recorded) = store.incoming_state(image_id, Incoming::Import).await? else {
            // Files keep no record: the image's staging file is all there is.
            return Ok(blobs
                .remove_incoming(Incoming::Import, image_id, &IncomingState::default())
                .await?);
        };
        let state = IncomingState::from_db(Some(&recorded))?;
        blobs
            .remove_incoming(Incoming::Import, image_id, &state)
            .await?;
        store
            .forget_incoming(image_id, Incoming::Import, &recorded)
            .await?;
        Ok(())
    }
}

/// Which data key seals a body's bytes.
#[derive(Clone, Copy, Debug)]
pub(super) enum DataKeyFor<'a> {
    /// None: the image is not encrypted.
    None,
    /// A new data key of this key, recorded on the image before the first byte (a resumed or
    /// taken-over attempt may need it).
    Attempt(&'a str),
    /// A new data key of this key, returned with the bytes and recorded when they become the
    /// image's (a conversion's: the image's data key still opens the bytes it converts).
    Result(&'a str),
}

impl<'a> DataKeyFor<'a> {
    pub(super) fn attempt(key_id: Option<&'a str>) -> Self {
        key_id.map_or(DataKeyFor::None, DataKeyFor::Attempt)
    }
}

/// A key that cannot be used fails the attempt with the reason naming it.
pub(super) fn key_refusal(e: crate::service::ServiceError) -> Stop {
    match e {
        crate::service::ServiceError::Forbidden(reason)
        | crate::service::ServiceError::Conflict(reason) => Stop::Failed(reason),
        other => Stop::Internal(anyhow::Error::new(other)),
    }
}

/// `body` at most `per_second` bytes a second on average (0: as fast as it comes).
fn paced<S>(
    body: S,
    per_second: u64,
) -> std::pin::Pin<Box<dyn futures::Stream<Item = Result<bytes::Bytes, String>> + Send>>
where
    S: futures::Stream<Item = Result<bytes::Bytes, String>> + Send + 'static,
{
    if per_second == 0 {
        return Box::pin(body);
    }
    let started = Instant::now();
    let mut sent = 0u64;
    Box::pin(body.then(move |piece| {
        if let Ok(bytes) = &piece {
            sent += bytes.len() as u64;
        }
        let due = started + Duration::from_secs_f64(sent as f64 / per_second as f64);
        async move {
            tokio::time::sleep_until(due.into()).await;
            piece
        }
    }))
}

/// Where a body comes from: its announced length, the words that begin the sentences saying
/// how it broke off, and how long it may send nothing (`None`: only the minimum speed).
pub(super) struct Source<'a> {
    pub(super) total: Option<u64>,
    pub(super) origin: &'a str,
    pub(super) idle: Option<Duration>,
}
