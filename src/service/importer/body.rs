//! Image data sent in one request body through the image API (Glance's `PUT /file`): the
//! same path as a URL import, with the request as the source. The request itself runs it,
//! under the image's import lease, so no other process or request writes the same image.
//!
//! A body that breaks off, stalls, is too large or does not fit the quota leaves nothing
//! behind and puts the image back to Queued, so its client can send it again (as Glance
//! does); bytes that inspection or the checksum refuse make the image Failed.

use super::*;
use crate::domain::history::notes;
use crate::store::images::ClaimedBody;

/// How an upload through the image API ended, short of Active.
#[derive(Debug)]
pub enum BodyUploadError {
    /// The image does not wait for data, or another request is sending it.
    Conflict(String),
    /// The body did not all arrive: the image is Queued again.
    Returned(String),
    /// Nothing arrived for the idle timeout: the image is Queued again.
    Idle(String),
    /// The body is larger than the size limit or the storage quota allows: the image is
    /// Queued again.
    TooLarge(String),
    /// The bytes arrived and were refused: the image is Failed with this reason.
    Refused(String),
    /// The image was deleted meanwhile, or the server is stopping.
    Gone,
    /// Another console process took the image's lease over while this request sent its
    /// data (this process was paused or cut off from the database): nothing was kept.
    TakenOver,
    Internal(anyhow::Error),
}

impl Importer {
    /// Receives an image's data from a request body: `total` is its Content-Length, if it
    /// gave one. Returns once the image is Active (or Converting, which goes on in the
    /// background), or with why not.
    pub async fn receive_body<S>(
        &self,
        account_id: &str,
        user_name: &str,
        image_id: &str,
        total: Option<u64>,
        body: S,
        keep: Keep,
    ) -> Result<(), BodyUploadError>
    where
        S: futures::Stream<Item = Result<bytes::Bytes, String>> + Unpin,
    {
        let busy = || {
            BodyUploadError::Conflict(
                "The image's data is being uploaded by another request.".into(),
            )
        };
        let lease = self
            .inner
            .leases
            .acquire(&import_lease(image_id))
            .await
            .map_err(|e| BodyUploadError::Internal(e.into()))?
            .ok_or_else(busy)?;
        let outcome = async {
            let cancel = self.inner.shutdown.child_token();
            let attempt = Attempt::new(account_id, image_id, &lease, cancel.clone());
            let store = &self.inner.store;
            let claimed = store
                .claim_body_upload(
                    account_id,
                    image_id,
                    &attempt.fence,
                    user_name,
                    match keep {
                        Keep::Activate => notes::API_UPLOAD,
                        Keep::Stage => notes::API_STAGE,
                    },
                    now_ms(),
                )
                .await
                .map_err(|e| BodyUploadError::Internal(e.into()))?
                .ok_or_else(|| {
                    BodyUploadError::Conflict(
                        "Image data can be uploaded only to an image that is queued: this one has its data, or is receiving it."
                            .into(),
                    )
                })?;
            let limit = self.inner.limits.max_bytes;
            if let Some(total) = total
                && total > limit
            {
                let reason = too_large(Some(total), limit);
                self.return_body(&attempt, None, &reason).await;
                return Err(BodyUploadError::TooLarge(reason));
            }
            let ended = CancellationToken::new();
            self.running().insert(
                image_id.to_owned(),
                Running {
                    cancel,
                    ended: ended.clone(),
                },
            );
            let _ended = ended.drop_guard();
            let outcome = self
                .upload_body(&attempt, &claimed, total, body, keep)
                .await;
            self.running().remove(image_id);
            outcome
        }
        .await;
        // Ended before the answer goes, so the client may send again at once.
        lease.release().await;
        if matches!(outcome, Ok(ImageStatus::Converting)) {
            self.enqueue(account_id, image_id).await;
        }
        outcome.map(|_| ())
    }

    async fn upload_body<S>(
        &self,
        attempt: &Attempt<'_>,
        claimed: &ClaimedBody,
        total: Option<u64>,
        body: S,
        keep: Keep,
    ) -> Result<ImageStatus, BodyUploadError>
    where
        S: futures::Stream<Item = Result<bytes::Bytes, String>> + Unpin,
    {
        let (claims, loaded) = match Claims::load(
            &self.inner.store,
            attempt.account_id,
            claimed.expected_checksum.as_deref(),
            &claimed.signature,
        )
        .await
        {
            Ok(claims) => (claims, Ok(())),
            Err(e) => (Claims::default(), Err(Stop::Internal(e))),
        };
        let mut written = None;
        let source = Source {
            total,
            origin: "The upload",
            idle: Some(self.inner.limits.body_idle),
        };
        let received = match loaded {
            Err(stop) => Err(stop),
            Ok(()) => {
                self.receive(
                    attempt,
                    body,
                    source,
                    &claims,
                    transfer::DataKeyFor::attempt(claimed.encryption_key_id.as_deref()),
                    &mut written,
                )
                .await
            }
        };
        let stop = match received {
            Ok(bytes) => {
                let size_bytes = bytes.size_bytes;
                match self
                    .finish(attempt, bytes, &claims, claimed.declared_format, keep)
                    .await
                {
                    Ok(status) => {
                        tracing::info!(image.id = %attempt.image_id, size_bytes, "image data received through the image API");
                        return Ok(status);
                    }
                    Err(Stop::Failed(reason)) => {
                        if let Stop::TakenOver = self.settle(attempt, Stop::Cancelled).await {
                            return Err(BodyUploadError::TakenOver);
                        }
                        self.discard(attempt, written.as_ref()).await;
                        let _ = self
                            .inner
                            .store
                            .fail_import(
                                attempt.account_id,
                                attempt.image_id,
                                &attempt.fence,
                                &reason,
                                now_ms(),
                            )
                            .await;
                        return Err(BodyUploadError::Refused(reason));
                    }
                    Err(stop) => stop,
                }
            }
            Err(stop) => stop,
        };
        match self.settle(attempt, stop).await {
            Stop::Failed(reason) => {
                self.return_body(attempt, written.as_ref(), &reason).await;
                Err(BodyUploadError::Returned(reason))
            }
            Stop::Idle(idle) => {
                let reason = format!(
                    "No bytes arrived for {}, so the upload was ended and nothing it sent was kept.",
                    crate::domain::units::describe_duration(idle)
                );
                self.return_body(attempt, written.as_ref(), &reason).await;
                Err(BodyUploadError::Idle(reason))
            }
            Stop::TooLarge(reason) => {
                self.return_body(attempt, written.as_ref(), &reason).await;
                Err(BodyUploadError::TooLarge(reason))
            }
            Stop::Cancelled => {
                self.discard(attempt, written.as_ref()).await;
                // At shutdown the row is still Importing; the next heartbeat returns it.
                let _ = self
                    .inner
                    .store
                    .return_body_upload(
                        attempt.account_id,
                        attempt.image_id,
                        &attempt.fence,
                        &notes::api_upload_returned("The server stopped during the upload."),
                        now_ms(),
                    )
                    .await;
                Err(BodyUploadError::Gone)
            }
            Stop::TakenOver => Err(BodyUploadError::TakenOver),
            Stop::Internal(error) => {
                self.return_body(
                    attempt,
                    written.as_ref(),
                    "The upload stopped because of a storage error on the server.",
                )
                .await;
                Err(BodyUploadError::Internal(error))
            }
        }
    }

    /// Removes what an upload wrote and puts its image back to Queued, recording why.
    async fn return_body(
        &self,
        attempt: &Attempt<'_>,
        written: Option<&IncomingState>,
        reason: &str,
    ) {
        self.discard(attempt, written).await;
        match self
            .inner
            .store
            .return_body_upload(
                attempt.account_id,
                attempt.image_id,
                &attempt.fence,
                &notes::api_upload_returned(reason),
                now_ms(),
            )
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(image.id = %attempt.image_id, "did not queue the image again: it changed, or its lease was taken over");
            }
            Err(e) => {
                tracing::error!(image.id = %attempt.image_id, error = %e, "could not queue the image again");
            }
        }
    }
}
