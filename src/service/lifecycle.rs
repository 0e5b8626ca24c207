//! The end of an image's life, scoped to the actor's account: Delete to the Recycle Bin,
//! Restore, Destroy and the purge after the account's retention; Deactivate and Reactivate;
//! Cancel Import; in-use references; and the account settings that hold the retention.

use super::images::{Access, MAX_BATCH_DELETE, not_found, parse_image_id};
use super::{Actor, ServiceError, ServiceResult, Services, now_ms};
use crate::domain::history::{HistoryTopic, SYSTEM_WORKER, notes};
use crate::domain::image::{BatchDeleteResult, BatchOutcome, ImageStatus, SkippedImage};
use crate::domain::lifecycle::{
    AccountSettings, DeleteCheck, ImageReference, RecycleBin, RecycledImage, ReferenceId,
    ReferenceKind, RetentionDays, in_use_reason,
};
use crate::domain::units::format_timestamp;
use crate::store::history::NewEvent;
use crate::store::images::{
    BinOutcome, DestroyStart, ImageRow, ReferenceOutcome, Remover, StatusChangeOutcome,
};

/// Most images one purge run destroys; the next run takes the rest.
const PURGE_BATCH: i64 = 100;

/// A Deleting image untouched this long was left by a process that stopped; the purge
/// finishes it.
const STALE_DELETING_MS: i64 = 5 * 60 * 1000;

/// Why an image cannot be moved to the Recycle Bin, as the row and its references say (as
/// its owner sees them).
fn delete_refusal(row: &ImageRow, references: Vec<ImageReference>) -> String {
    let references = seen_by(&row.account_id, references);
    DeleteCheck {
        status: row.status,
        protected: row.attributes.protected,
        browser_upload: row.source_file_name.is_some(),
        references: &references,
    }
    .blocked_reason()
    .unwrap_or_default()
}

/// References as `viewer`'s account sees them: other accounts' users are not named.
pub(super) fn seen_by(viewer: &str, references: Vec<ImageReference>) -> Vec<ImageReference> {
    references
        .into_iter()
        .map(|r| r.as_seen_by(viewer))
        .collect()
}

fn not_in_bin() -> ServiceError {
    ServiceError::Conflict("This image is not in the Recycle Bin.".into())
}

impl Services {
    /// Delete: moves the image to the Recycle Bin, where it stays for the account's retention.
    #[tracing::instrument(skip_all, fields(account.id = %actor.account_id, image.id = %id))]
    pub async fn delete_image(&self, actor: &Actor, id: &str) -> ServiceResult<()> {
        let id = parse_image_id(id)?;
        self.move_to_bin(actor, &id).await.map(drop)
    }

    /// Moves one parsed id to the Recycle Bin; returns the image's name.
    async fn move_to_bin(&self, actor: &Actor, id: &str) -> ServiceResult<String> {
        let now = now_ms();
        let retention = self.store().retention(&actor.account_id).await?;
        let destroy_at = now + retention.as_millis();
        let note = notes::moved_to_recycle_bin(&format_timestamp(destroy_at));
        match self
            .store()
            .move_to_recycle_bin(
                &actor.account_id,
                id,
                &actor.user_name,
                &note,
                now,
                destroy_at,
            )
            .await?
        {
            BinOutcome::Moved(row) => {
                tracing::info!(image.id = %id, "image moved to the Recycle Bin");
                Ok(row.attributes.name)
            }
            BinOutcome::Refused { row, references } => {
                Err(ServiceError::Conflict(delete_refusal(&row, references)))
            }
            BinOutcome::NotFound => Err(self.not_owned(actor, id).await),
        }
    }

    /// Deletes several images to the Recycle Bin; those that cannot go are skipped, each with
    /// the reason.
    #[tracing::instrument(skip_all, fields(account.id = %actor.account_id, images = ids.len()))]
    pub async fn delete_images(
        &self,
        actor: &Actor,
        ids: &[String],
    ) -> ServiceResult<BatchDeleteResult> {
        let outcome = self
            .each_image(actor, ids, |this, id| async move {
                this.move_to_bin(actor, &id).await
            })
            .await?;
        Ok(BatchDeleteResult {
            deleted: outcome.done,
            skipped: outcome.skipped,
        })
    }

    /// Runs `job` for each distinct id, collecting what was done and what was skipped (with
    /// the reason). Only an internal error stops the batch.
    async fn each_image<'a, F, Fut>(
        &'a self,
        actor: &Actor,
        ids: &[String],
        job: F,
    ) -> ServiceResult<BatchOutcome>
    where
        F: Fn(&'a Services, String) -> Fut,
        Fut: Future<Output = ServiceResult<String>>,
    {
        super::check_batch(ids, MAX_BATCH_DELETE, "change")?;
        let mut outcome = BatchOutcome::default();
        let mut seen = std::collections::HashSet::new();
        for raw in ids {
            let Ok(id) = parse_image_id(raw) else {
                outcome.skipped.push(SkippedImage {
                    id: raw.clone(),
                    name: raw.clone(),
                    reason: "No such image in this account.".into(),
                });
                continue;
            };
            if !seen.insert(id.clone()) {
                continue;
            }
            match job(self, id.clone()).await {
                Ok(name) => outcome.done.push(name),
                Err(ServiceError::Internal(e)) => return Err(ServiceError::Internal(e)),
                Err(refused) => {
                    let name = self.image_name_for(actor, &id).await;
                    outcome.skipped.push(SkippedImage {
                        id,
                        name,
                        reason: refused.to_string(),
                    });
                }
            }
        }
        Ok(outcome)
    }

    /// The name an actor knows an image by, for a skipped line: its own image's, a shared
    /// one's, or the id.
    async fn image_name_for(&self, actor: &Actor, id: &str) -> String {
        match self.visible_image(actor, id).await {
            Ok(access) => access.row().attributes.name.clone(),
            Err(_) => id.to_owned(),
        }
    }

    /// The account's Recycle Bin.
    #[tracing::instrument(skip_all, fields(account.id = %actor.account_id))]
    pub async fn recycle_bin(&self, actor: &Actor) -> ServiceResult<RecycleBin> {
        let rows = self.store().list_recycle_bin(&actor.account_id).await?;
        let retention = self.store().retention(&actor.account_id).await?;
        let images = rows
            .into_iter()
            .filter_map(|row| {
                let deleted = row.deleted?;
                Some(RecycledImage {
                    id: row.id,
                    name: row.attributes.name,
                    os: row.attributes.os,
                    status: row.status,
                    restores_to: deleted.restores_to,
                    size_bytes: row.size_bytes,
                    deleted_at_ms: deleted.deleted_at_ms,
                    deleted_by: deleted.deleted_by,
                    destroy_at_ms: deleted.destroy_at_ms,
                })
            })
            .collect();
        Ok(RecycleBin { images, retention })
    }

    /// Restore: brings images back from the Recycle Bin as they were.
    #[tracing::instrument(skip_all, fields(account.id = %actor.account_id, images = ids.len()))]
    pub async fn restore_images(
        &self,
        actor: &Actor,
        ids: &[String],
    ) -> ServiceResult<BatchOutcome> {
        self.each_image(actor, ids, |this, id| async move {
            match this
                .store()
                .restore_image(&actor.account_id, &id, &actor.user_name, now_ms())
                .await?
            {
                StatusChangeOutcome::Done(row) => {
                    tracing::info!(image.id = %id, "image restored");
                    Ok(row.attributes.name)
                }
                StatusChangeOutcome::Refused(_) => Err(not_in_bin()),
                StatusChangeOutcome::NotFound => Err(this.not_owned(actor, &id).await),
            }
        })
        .await
    }

    /// Destroy now: removes images in the Recycle Bin for good, bytes and all (the bytes stay
    /// while another image uses them). Their Work History stays.
    #[tracing::instrument(skip_all, fields(account.id = %actor.account_id, images = ids.len()))]
    pub async fn destroy_images(
        &self,
        actor: &Actor,
        ids: &[String],
    ) -> ServiceResult<BatchOutcome> {
        self.each_image(actor, ids, |this, id| async move {
            match this
                .destroy(
                    &actor.account_id,
                    &id,
                    &actor.user_name,
                    notes::DESTROYED_NOW,
                )
                .await?
            {
                Some(name) => Ok(name),
                None => Err(this.not_owned(actor, &id).await),
            }
        })
        .await
    }

    /// Destroys one image of the Recycle Bin: Deleting while its bytes go, then gone. `None`
    /// when the account has no such image.
    async fn destroy(
        &self,
        account_id: &str,
        id: &str,
        worker: &str,
        note: &str,
    ) -> ServiceResult<Option<String>> {
        let (row, release_blob) = match self
            .store()
            .begin_destroy(account_id, id, worker, now_ms())
            .await?
        {
            DestroyStart::Started { row, release_blob } => (row, release_blob),
            DestroyStart::NotFound => return Ok(None),
            DestroyStart::NotInBin(_) => return Err(not_in_bin()),
            DestroyStart::InUse(references) => {
                return Err(ServiceError::Conflict(in_use_reason(
                    &seen_by(account_id, references),
                    "destroying",
                )));
            }
        };
        self.remove_image_bytes(&row, release_blob).await;
        let event = NewEvent {
            message: note,
            ..NewEvent::succeeded(HistoryTopic::Destroyed, worker)
        };
        self.store()
            .finish_destroy(account_id, id, &event, now_ms())
            .await?;
        tracing::info!(image.id = %id, "image destroyed");
        Ok(Some(row.attributes.name))
    }

    /// The purge: destroys every image whose time in the Recycle Bin ended by `now_ms`, and
    /// finishes any Destroy a stopped process left Deleting. Returns how many it destroyed.
    pub async fn purge_recycle_bin(&self, now_ms: i64) -> anyhow::Result<usize> {
        let mut destroyed = 0;
        loop {
            let targets = self
                .store()
                .images_to_purge(now_ms, now_ms - STALE_DELETING_MS, PURGE_BATCH)
                .await?;
            let batch = targets.len();
            for target in targets {
                let note = notes::destroyed_after_retention(target.retention.days());
                match self
                    .destroy(&target.account_id, &target.id, SYSTEM_WORKER, &note)
                    .await
                {
                    Ok(Some(_)) => destroyed += 1,
                    Ok(None) => {}
                    Err(ServiceError::Internal(e)) => return Err(e),
                    // Restored or given a reference meanwhile: it stays.
                    Err(e) => {
                        tracing::info!(image.id = %target.id, status = target.status.as_str(), reason = %e, "purge skipped an image");
                    }
                }
            }
            if i64::try_from(batch).unwrap_or(0) < PURGE_BATCH {
                break;
            }
        }
        Ok(destroyed)
    }

    /// The account settings page's values.
    pub async fn account_settings(&self, actor: &Actor) -> ServiceResult<AccountSettings> {
        Ok(AccountSettings {
            retention: self.store().retention(&actor.account_id).await?,
        })
    }

    /// Sets how long the account keeps deleted images. Images already in the Recycle Bin keep
    /// the destroy time they were deleted with.
    #[tracing::instrument(skip_all, fields(account.id = %actor.account_id))]
    pub async fn set_retention(&self, actor: &Actor, raw_days: &str) -> ServiceResult<()> {
        let retention =
            RetentionDays::parse(raw_days).map_err(|e| ServiceError::Invalid(vec![e]))?;
        self.store()
            .set_retention(&actor.account_id, retention)
            .await?;
        Ok(())
    }

    /// Deactivate (`deactivate`) or Reactivate an image of the actor's account. A deactivated
    /// image cannot be downloaded, shared or used for Create shared Image.
    #[tracing::instrument(skip_all, fields(account.id = %actor.account_id, image.id = %id))]
    pub async fn set_image_activation(
        &self,
        actor: &Actor,
        id: &str,
        deactivate: bool,
    ) -> ServiceResult<()> {
        let id = parse_image_id(id)?;
        let (to, topic) = if deactivate {
            (ImageStatus::Deactivated, HistoryTopic::Deactivated)
        } else {
            (ImageStatus::Active, HistoryTopic::Reactivated)
        };
        let event = NewEvent::succeeded(topic, &actor.user_name);
        match self
            .store()
            .set_activation(&actor.account_id, &id, to, &event, now_ms())
            .await?
        {
            StatusChangeOutcome::Done(_) => Ok(()),
            // Already there: nothing to do, as Glance answers.
            StatusChangeOutcome::Refused(row) if row.status == to => Ok(()),
            StatusChangeOutcome::Refused(row) => Err(ServiceError::Conflict(if deactivate {
                format!(
                    "Only an Active image can be deactivated; this one is {}.",
                    row.status.label()
                )
            } else {
                format!(
                    "Only a Deactivated image can be reactivated; this one is {}.",
                    row.status.label()
                )
            })),
            StatusChangeOutcome::NotFound => Err(self.not_owned(actor, &id).await),
        }
    }

    /// Cancel Import: stops a URL import (or the image API's wait for data or for an import)
    /// and marks the image Failed, so it can be deleted.
    #[tracing::instrument(skip_all, fields(account.id = %actor.account_id, image.id = %id))]
    pub async fn cancel_import(&self, actor: &Actor, id: &str) -> ServiceResult<()> {
        let id = parse_image_id(id)?;
        let reason = notes::import_cancelled(&actor.user_name);
        match self
            .store()
            .cancel_import(&actor.account_id, &id, &actor.user_name, &reason, now_ms())
            .await?
        {
            StatusChangeOutcome::Done(row) => {
                // The import stops writing here; an API upload's request ends when it next
                // finds the image no longer Importing.
                self.importer().cancel(&row.id).await;
                for kind in [
                    crate::store::blobs::Incoming::Import,
                    crate::store::blobs::Incoming::Upload,
                ] {
                    if let Err(e) = self.remove_incoming_bytes(&row.id, kind).await {
                        tracing::warn!(image.id = %row.id, error = format!("{e:#}"), "could not remove partial bytes; left for the sweep");
                    }
                }
                // A cancelled conversion keeps none of the bytes it received (a Converting
                // image is never shared, so they are its own).
                if row.status == ImageStatus::Converting
                    && let Some(blob_key) = &row.blob_key
                    && let Err(e) = self.blobs().remove_blob(blob_key).await
                {
                    tracing::warn!(image.id = %row.id, error = %e, "could not remove the received bytes; left for the sweep");
                }
                tracing::info!("import cancelled");
                Ok(())
            }
            StatusChangeOutcome::Refused(row) => Err(ServiceError::Conflict(match row.status {
                ImageStatus::Uploading => {
                    "This is a local file's upload: use Cancel Upload.".to_owned()
                }
                status => format!(
                    "Only an import in progress can be cancelled; this image is {}.",
                    status.label()
                ),
            })),
            StatusChangeOutcome::NotFound => Err(self.not_owned(actor, &id).await),
        }
    }

    /// Records that something uses an image the actor's account owns or has accepted, as a
    /// reference of the actor's account. `true` when it is new, `false` when the account had
    /// it already; another account's references never change the answer.
    #[tracing::instrument(skip_all, fields(account.id = %actor.account_id, image.id = %id))]
    pub async fn add_image_reference(
        &self,
        actor: &Actor,
        id: &str,
        kind: &str,
        reference_id: &str,
    ) -> ServiceResult<bool> {
        let id = parse_image_id(id)?;
        let kind = ReferenceKind::parse(kind);
        let reference_id = ReferenceId::parse(reference_id);
        let (kind, reference_id) = match (kind, reference_id) {
            (Ok(k), Ok(r)) => (k, r),
            (k, r) => {
                return Err(ServiceError::Invalid(
                    [k.err(), r.err()].into_iter().flatten().collect(),
                ));
            }
        };
        let owner = self.referable_image(actor, &id).await?.account_id;
        let reference = ImageReference {
            kind: kind.as_str().to_owned(),
            reference_id: reference_id.as_str().to_owned(),
            account_id: actor.account_id.clone(),
            added_by: Some(actor.user_name.clone()),
            added_at_ms: now_ms(),
        };
        match self
            .store()
            .add_reference(&owner, &id, &reference, reference.added_at_ms)
            .await?
        {
            ReferenceOutcome::Added => Ok(true),
            ReferenceOutcome::AlreadyThere => Ok(false),
            ReferenceOutcome::NotFound => Err(not_found()),
            ReferenceOutcome::NotUsable(status) if status.in_recycle_bin() => Err(not_found()),
            ReferenceOutcome::NotUsable(status) => Err(ServiceError::Conflict(format!(
                "Only an Active or Deactivated image can be in use; this one is {}.",
                status.label()
            ))),
            ReferenceOutcome::TooMany => Err(ServiceError::Conflict(format!(
                "This account already has {} references to this image, the most it may have.",
                crate::domain::lifecycle::MAX_REFERENCES_PER_IMAGE
            ))),
        }
    }

    /// Removes one of the actor's account's references; another account's, the owner's too,
    /// are answered as missing.
    #[tracing::instrument(skip_all, fields(account.id = %actor.account_id, image.id = %id))]
    pub async fn remove_image_reference(
        &self,
        actor: &Actor,
        id: &str,
        kind: &str,
        reference_id: &str,
    ) -> ServiceResult<()> {
        let id = parse_image_id(id)?;
        let owner = self.referable_image(actor, &id).await?.account_id;
        let by = Remover {
            account_id: &actor.account_id,
            user_name: &actor.user_name,
        };
        let removed = self
            .store()
            .remove_reference(&owner, &id, kind, reference_id, &by, now_ms())
            .await?;
        if removed {
            Ok(())
        } else {
            Err(ServiceError::NotFound(
                "This account has no such reference to this image.".into(),
            ))
        }
    }

    /// What uses an image: for its owner every account's references (other accounts' users
    /// not named), for an account the image is shared with its own.
    pub async fn image_references(
        &self,
        actor: &Actor,
        id: &str,
    ) -> ServiceResult<Vec<ImageReference>> {
        let id = parse_image_id(id)?;
        let owner = self.referable_image(actor, &id).await?.account_id;
        self.references_seen_by(actor, &owner, &id).await
    }

    /// The image's references as the actor's account sees them.
    pub(super) async fn references_seen_by(
        &self,
        actor: &Actor,
        owner: &str,
        id: &str,
    ) -> ServiceResult<Vec<ImageReference>> {
        let all = self.store().list_references(id).await?;
        Ok(if actor.account_id == owner {
            seen_by(owner, all)
        } else {
            all.into_iter()
                .filter(|r| r.account_id == actor.account_id)
                .collect()
        })
    }

    /// An image whose references the actor may see and change: its account's own or one
    /// shared with it and accepted, and not in the Recycle Bin (answered as missing, as its
    /// members are).
    async fn referable_image(&self, actor: &Actor, id: &str) -> ServiceResult<ImageRow> {
        let row = match self.visible_image(actor, id).await? {
            Access::Owner(row) | Access::Recipient { row, .. } => row,
        };
        if row.status.in_recycle_bin() {
            return Err(not_found());
        }
        Ok(row)
    }
}
