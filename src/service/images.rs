//! Image List, Create Image, Image Details and Delete, scoped to the actor's account.

use super::{Actor, ServiceError, ServiceResult, Services, now_ms};
use crate::domain::image::{
    IMAGE_TYPE_IMAGE_BASED, ImageDetail, ImageSummary, delete_blocked_reason,
};
use crate::domain::image_spec::CreateImageForm;
use crate::store::images::{DeleteOutcome, NewImageRow};

/// The answer for an id that is not in the actor's account, whoever owns it.
fn not_found() -> ServiceError {
    ServiceError::NotFound("No image with that ID exists in this account.".into())
}

/// Accepts only well-formed image ids, so odd strings never reach a query or a path.
fn parse_image_id(raw: &str) -> ServiceResult<String> {
    uuid::Uuid::parse_str(raw)
        .map(|id| id.hyphenated().to_string())
        .map_err(|_| not_found())
}

impl Services {
    #[tracing::instrument(skip_all, fields(account.id = %actor.account_id))]
    pub async fn list_images(&self, actor: &Actor) -> ServiceResult<Vec<ImageSummary>> {
        let rows = self.store().list_images(&actor.account_id).await?;
        Ok(rows.into_iter().map(|r| r.into_summary()).collect())
    }

    #[tracing::instrument(skip_all, fields(account.id = %actor.account_id, image.id = %id))]
    pub async fn get_image(&self, actor: &Actor, id: &str) -> ServiceResult<ImageDetail> {
        let id = parse_image_id(id)?;
        let row = self.store().get_image(&actor.account_id, &id).await?;
        row.map(|r| r.into_detail()).ok_or_else(not_found)
    }

    /// Validates the form, records the image as Queued and hands it to the importer.
    #[tracing::instrument(skip_all, fields(account.id = %actor.account_id))]
    pub async fn create_image_from_url(
        &self,
        actor: &Actor,
        form: &CreateImageForm,
    ) -> ServiceResult<String> {
        let spec = form.parse().map_err(ServiceError::Invalid)?;
        let id = uuid::Uuid::new_v4().to_string();
        self.store()
            .insert_image(&NewImageRow {
                id: id.clone(),
                account_id: actor.account_id.clone(),
                name: spec.name.as_str().to_owned(),
                description: spec.description.as_str().to_owned(),
                os_type: spec.os_type,
                min_disk_gb: spec.min_disk.get(),
                min_ram_gb: spec.min_ram.get(),
                visibility: spec.visibility,
                protected: spec.protected,
                image_type: IMAGE_TYPE_IMAGE_BASED,
                source_url: Some(spec.source_url.as_str().to_owned()),
                created_by: actor.user_name.clone(),
                created_at_ms: now_ms(),
            })
            .await?;
        tracing::info!(image.id = %id, "image queued for import");
        self.importer().enqueue(&actor.account_id, &id);
        Ok(id)
    }

    /// Turns Protected on or off.
    #[tracing::instrument(skip_all, fields(account.id = %actor.account_id, image.id = %id))]
    pub async fn set_image_protected(
        &self,
        actor: &Actor,
        id: &str,
        protected: bool,
    ) -> ServiceResult<()> {
        let id = parse_image_id(id)?;
        let found = self
            .store()
            .set_image_protected(
                &actor.account_id,
                &id,
                protected,
                &actor.user_name,
                now_ms(),
            )
            .await?;
        if found { Ok(()) } else { Err(not_found()) }
    }

    /// Deletes an image and its bytes. A Protected image is refused with the reason. An import
    /// in progress is stopped first.
    #[tracing::instrument(skip_all, fields(account.id = %actor.account_id, image.id = %id))]
    pub async fn delete_image(&self, actor: &Actor, id: &str) -> ServiceResult<()> {
        let id = parse_image_id(id)?;
        let row = match self
            .store()
            .delete_unprotected_image(&actor.account_id, &id)
            .await?
        {
            DeleteOutcome::Deleted(row) => row,
            DeleteOutcome::Protected => {
                let reason = delete_blocked_reason(true).unwrap_or_default();
                return Err(ServiceError::Conflict(reason.to_owned()));
            }
            DeleteOutcome::NotFound => return Err(not_found()),
        };
        // The row is gone first, so nothing can point at the bytes removed next; if removal
        // fails the file is an orphan, which the start-up sweep collects.
        self.importer().cancel(&id).await;
        if let Some(key) = &row.blob_key
            && let Err(e) = self.blobs().remove_blob(key).await
        {
            tracing::warn!(error = %e, "could not remove image bytes; left for the sweep");
        }
        if let Err(e) = self.blobs().remove_staging(&id).await {
            tracing::warn!(error = %e, "could not remove partial import; left for the sweep");
        }
        tracing::info!("image deleted");
        Ok(())
    }
}
