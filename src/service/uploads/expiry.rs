//! How uploads end when nobody ends them: expiry after `UPLOAD_EXPIRY_MINUTES` without a durable
//! byte, and the start-up check that finishes or fails what a restart interrupted.

use super::*;
use crate::store::blobs::sealed;

impl Services {
    /// Ends uploads untouched for longer than the expiry (and Uploading images whose upload
    /// never started): their bytes are deleted and the image marked Failed. Returns how many.
    pub async fn expire_uploads(&self) -> anyhow::Result<usize> {
        let now = self.clock_ms();
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
            // A request another console process is serving: that process judges its headway.
            if self
                .inner
                .leases
                .held_elsewhere(&upload_lease(&upload.image_id))
                .await?
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
                    None,
                    UploadState::Expired,
                    HistoryTopic::ImportFailed,
                    &reason,
                    SYSTEM_WORKER,
                    now,
                )
                .await?
            {
                let recorded = self
                    .store()
                    .incoming_state(&upload.image_id, Incoming::Upload)
                    .await?;
                let blob_state = IncomingState::from_db(recorded.as_deref())?;
                self.remove_upload_bytes(&upload.image_id, &blob_state)
                    .await
                    .map_err(|e| anyhow::anyhow!("removing an expired upload: {e}"))?;
                tracing::info!(image.id = %upload.image_id, "upload expired");
                ended += 1;
            }
        }
        Ok(ended)
    }

    /// At start-up, for uploads no other process is writing: an upload whose file is missing or shorter than its durable offset has
    /// lost bytes; its image is marked Failed rather than pointing at what is not there.
    /// An upload whose every byte is durable but that was not finished (the server stopped
    /// between the last piece and the inspection) is finished now: inspected, then made Active
    /// or Failed.
    pub(crate) async fn recover_uploads(&self) -> anyhow::Result<()> {
        for row in self.store().list_receiving_uploads().await? {
            // One another console process is writing is that process's to finish.
            let Some(lease) = self
                .inner
                .leases
                .acquire(&upload_lease(&row.image_id))
                .await?
            else {
                continue;
            };
            let blob_state = IncomingState::from_db(row.blob_state.as_deref())?;
            let on_disk = self
                .blobs()
                .incoming_len(Incoming::Upload, &row.image_id, &blob_state)
                .await?;
            // Sealed bytes take more room than the plain offset: whole segments with their tags,
            // and the last segment once the upload is complete.
            let durable = match (&row.data_key, row.offset_bytes == row.length_bytes) {
                (None, _) => row.offset_bytes,
                (Some(_), false) => sealed::sealed_offset(row.offset_bytes),
                (Some(_), true) => sealed::sealed_len(row.offset_bytes),
            };
            if on_disk.is_none_or(|len| len < durable) {
                tracing::warn!(image.id = %row.image_id, "upload bytes missing at start-up");
                self.lose_upload(&row, &lease.fence()).await?;
            } else if row.offset_bytes == row.length_bytes {
                tracing::info!(image.id = %row.image_id, "finishing an upload received before a restart");
                let hashers =
                    Hashers::from_state(&row.hasher_state).context("restoring hasher state")?;
                let finished = async {
                    let seal = self.upload_cipher(&row).await?;
                    self.finish_upload(&row, &lease.fence(), hashers, &blob_state, seal.as_ref())
                        .await
                };
                finished
                    .await
                    .map_err(|e| anyhow::anyhow!("finishing upload {}: {e}", row.id))?;
            }
        }
        Ok(())
    }

    /// Ends an upload whose durable bytes are gone, under the claim `fence`.
    pub(super) async fn lose_upload(&self, row: &UploadRow, fence: &Fence) -> UploadResult<()> {
        let ended = self
            .store()
            .end_upload(
                &row.account_id,
                Some(&row.id),
                &row.image_id,
                Some(fence),
                UploadState::Expired,
                HistoryTopic::ImportFailed,
                LOST,
                SYSTEM_WORKER,
                now_ms(),
            )
            .await?;
        if !ended {
            return Ok(());
        }
        let blob_state = IncomingState::from_db(row.blob_state.as_deref())?;
        self.remove_upload_bytes(&row.image_id, &blob_state).await
    }
}
