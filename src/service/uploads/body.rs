//! One PATCH body: streaming it into the upload's bytes and hashers, recording durable
//! offsets at checkpoints, and, with the last byte, the checks that turn the image Active.

use super::*;

impl Services {
    /// Streams `body` to the upload's file and hashers, at most what the upload still needs,
    /// recording the durable offset (with the hashers' and the blob store's state) at least
    /// every `CHECKPOINT_BYTES` or `CHECKPOINT_INTERVAL` and when the body ends, however it
    /// ends. Returns what is durable and recorded, and how the body ended.
    pub(super) async fn receive<S, E>(
        &self,
        writing: &Writing<'_>,
        file: BlobWriter,
        hashers: Hashers,
        blob_state: IncomingState,
        mut body: S,
    ) -> UploadResult<(Durable, BodyEnd)>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        let row = writing.row;
        let remaining = row.length_bytes - row.offset_bytes;
        let mut ingest = Ingest::start(file, hashers);
        let mut recorded = Recorded {
            offset: row.offset_bytes,
            state: blob_state,
            expires_at_ms: row.expires_at_ms,
        };
        let mut last_report = Instant::now();
        // The checkpoint the lanes are making, if one is; bytes keep flowing meanwhile.
        let mut pending: Option<PendingCheckpoint> = None;
        let mut last_asked = (row.offset_bytes, Instant::now());
        let idle = self.settings().limits.upload_idle;
        let end = loop {
            let next = tokio::select! {
                next = tokio::time::timeout(idle, body.next()) => match next {
                    Ok(next) => next,
                    Err(_) => break BodyEnd::Idle,
                },
                () = writing.writer.stopped() => break BodyEnd::Cancelled,
                () = writing.lost.cancelled() => break BodyEnd::TakenOver,
                reached = async { pending.as_mut().expect("only while pending").wait().await },
                    if pending.is_some() =>
                {
                    let at = row.offset_bytes + pending.take().map_or(0, |p| p.at);
                    // A lane that stopped ends the body here; `finish` says why.
                    let Ok((hashers, state)) = reached else {
                        break BodyEnd::TooLong;
                    };
                    match self
                        .record_offset(writing, &mut recorded, at, &hashers, state)
                        .await?
                    {
                        Some(end) => break end,
                        None => continue,
                    }
                }
            };
            let mut chunk = match next {
                None => break BodyEnd::Complete,
                Some(Ok(chunk)) => chunk,
                Some(Err(e)) => {
                    tracing::info!(error = %e, received = ingest.taken(), "upload body broke off");
                    break BodyEnd::Broken;
                }
            };
            let sent = ingest.taken();
            let fits = remaining - sent;
            let too_long = chunk.len() as u64 > fits;
            if too_long {
                chunk.truncate(fits as usize);
            }
            writing.writer.received(sent, sent + chunk.len() as u64);
            // A lane that stopped ends the body here; `finish` says why.
            if !ingest.push(chunk).await || too_long {
                break BodyEnd::TooLong;
            }
            let at = row.offset_bytes + ingest.taken();
            let unasked = at - last_asked.0;
            if pending.is_none()
                && (unasked >= CHECKPOINT_BYTES
                    || (unasked > 0 && last_asked.1.elapsed() >= CHECKPOINT_INTERVAL))
            {
                // A checkpoint writes (a tail, on object storage) before it is recorded: a
                // process that was paused learns here that its claim is gone, before writing.
                if writing.lost.is_cancelled() || !self.store().holds_lease(writing.fence).await? {
                    break BodyEnd::TakenOver;
                }
                let Ok(asked) = ingest.begin_checkpoint().await else {
                    break BodyEnd::TooLong;
                };
                pending = Some(asked);
                last_asked = (at, Instant::now());
            } else if last_report.elapsed() >= PROGRESS_INTERVAL {
                last_report = Instant::now();
                self.store()
                    .record_upload_progress(&row.account_id, &row.image_id, writing.fence, at)
                    .await?;
            }
        };
        // A checkpoint under way when the body ended is recorded first, in order.
        let mut end = end;
        if let Some(mut asked) = pending.take()
            && !matches!(end, BodyEnd::TakenOver | BodyEnd::Ended)
            && let Ok((hashers, state)) = asked.wait().await
            && let Some(stopped) = self
                .record_offset(
                    writing,
                    &mut recorded,
                    row.offset_bytes + asked.at,
                    &hashers,
                    state,
                )
                .await?
        {
            end = stopped;
        }
        // A request that stopped is asked once more whether its claim holds before it makes
        // anything durable: a process that was paused finds out here, and writes nothing.
        let end = match end {
            BodyEnd::TakenOver | BodyEnd::Ended => end,
            _ if writing.lost.is_cancelled()
                || !self.store().holds_lease(writing.fence).await? =>
            {
                BodyEnd::TakenOver
            }
            _ => end,
        };
        if matches!(end, BodyEnd::TakenOver | BodyEnd::Ended) {
            // Another claim owns the upload now (or it ended): nothing more is written.
            ingest.abandon();
            tracing::warn!(image.id = %row.image_id, "stopped writing an upload whose lease was taken over or that ended");
            return Ok((
                Durable {
                    recorded,
                    hashers: None,
                },
                end,
            ));
        }
        // What arrived before the body ended is kept, whatever the reason it ended (sealed
        // bytes up to the last whole segment, unless the upload is complete).
        let last = row.offset_bytes + ingest.taken() == row.length_bytes;
        let ingest::Reached { at, hashers, state } = ingest.finish(last).await?;
        let at = row.offset_bytes + at;
        let end = match self
            .record_offset(writing, &mut recorded, at, &hashers, state)
            .await?
        {
            Some(stopped) => stopped,
            None => end,
        };
        Ok((
            Durable {
                recorded,
                hashers: Some(hashers),
            },
            end,
        ))
    }

    /// Records `at` as the upload's durable offset with the hashers' and the blob store's
    /// state there, if it moved, and drops the tail the record no longer names. `Some` with
    /// how writing must end when the record was refused: the upload ended, or another
    /// console process took it over.
    pub(super) async fn record_offset(
        &self,
        writing: &Writing<'_>,
        recorded: &mut Recorded,
        at: u64,
        hashers: &Hashers,
        state: IncomingState,
    ) -> UploadResult<Option<BodyEnd>> {
        if at == recorded.offset {
            return Ok(None);
        }
        let row = writing.row;
        let now = self.clock_ms();
        let expires_at_ms = now + self.upload_expiry_ms();
        let moved = self
            .store()
            .advance_upload(
                &row.account_id,
                &row.id,
                &row.image_id,
                writing.fence,
                recorded.offset,
                at,
                &hashers.to_state(),
                state.to_db().as_deref(),
                now,
                expires_at_ms,
            )
            .await?;
        if !moved {
            if self.store().holds_lease(writing.fence).await? {
                return Ok(Some(BodyEnd::Ended));
            }
            tracing::warn!(image.id = %row.image_id, offset = at, "a late write to an upload was refused: another console process took it over");
            return Ok(Some(BodyEnd::TakenOver));
        }
        let earlier = std::mem::replace(&mut recorded.state, state);
        if let Err(e) = self
            .blobs()
            .remove_superseded_tail(Incoming::Upload, &earlier, &recorded.state)
            .await
        {
            tracing::warn!(image.id = %row.image_id, error = %e, "could not remove a superseded tail; removed with the upload");
        }
        recorded.offset = at;
        recorded.expires_at_ms = expires_at_ms;
        Ok(None)
    }

    /// Inspects and verifies a complete upload, then stores it and marks the image Active, or
    /// marks it Failed with the reason and removes the bytes.
    pub(super) async fn finish_upload(
        &self,
        row: &UploadRow,
        fence: &Fence,
        hashers: Hashers,
        blob_state: &IncomingState,
        seal: Option<&SegmentCipher>,
    ) -> UploadResult<()> {
        let claims = ingest::Claims::load(
            self.store(),
            &row.account_id,
            row.expected_checksum.as_deref(),
            &row.signature,
        )
        .await
        .map_err(UploadError::Internal)?;
        self.blobs()
            .assemble(Incoming::Upload, &row.image_id, blob_state)
            .await?;
        let received = ingest::Received {
            incoming: Incoming::Upload,
            image_id: &row.image_id,
            state: blob_state,
            length: row.length_bytes,
            seal,
        };
        let checked = ingest::check(
            self.blobs(),
            received,
            hashers.finalize(),
            &claims,
            row.declared_format,
            self.clock_ms(),
        )
        .await?;
        let now = now_ms();
        let checked = match checked {
            Ok(checked) => checked,
            Err(reason) => {
                tracing::info!(%reason, "upload refused");
                let ended = self
                    .store()
                    .end_upload(
                        &row.account_id,
                        Some(&row.id),
                        &row.image_id,
                        Some(fence),
                        UploadState::Complete,
                        HistoryTopic::ImportFailed,
                        &reason,
                        SYSTEM_WORKER,
                        now,
                    )
                    .await?;
                if !ended {
                    return Err(UploadError::Gone(ENDED.into()));
                }
                self.remove_upload_bytes(&row.image_id, blob_state).await?;
                return Ok(());
            }
        };
        let blob_key = self
            .blobs()
            .commit(Incoming::Upload, &row.image_id, blob_state)
            .await?;
        let completed = self
            .store()
            .complete_upload(
                &row.account_id,
                &row.id,
                &row.image_id,
                fence,
                &checked.stored(blob_key.clone()),
                now,
            )
            .await;
        let status = match completed {
            Ok(Some(status)) => status,
            other => {
                self.blobs().remove_blob(&blob_key).await?;
                other?;
                return Err(UploadError::Gone(ENDED.into()));
            }
        };
        tracing::info!(image.id = %row.image_id, size_bytes = row.length_bytes, "upload finished");
        if status == crate::domain::image::ImageStatus::Converting {
            self.importer()
                .enqueue(&row.account_id, &row.image_id)
                .await;
        }
        Ok(())
    }
}
