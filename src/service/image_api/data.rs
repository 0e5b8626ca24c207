//! The image API's data verbs: `PUT /file` and `/stage` (a body received like every
//! import), `POST /import`, and `GET /file`.

use super::*;
use crate::domain::conversion::ConvertTo;

impl Services {
    /// Receives the data of the actor's own Queued image from a request body and makes it
    /// Active, through the same write, hash and inspection path as every import.
    pub async fn api_upload_image_data<S>(
        &self,
        actor: &Actor,
        id: &str,
        total: Option<u64>,
        body: S,
    ) -> ServiceResult<()>
    where
        S: futures::Stream<Item = Result<bytes::Bytes, String>> + Unpin,
    {
        self.receive_image_data(actor, id, total, body, Keep::Activate)
            .await
    }

    /// Receives the data of the actor's own Queued image into the stage (Glance's
    /// `PUT /stage`): checked and stored as an upload is, the image Uploading until an import
    /// (glance-direct) makes it Active.
    pub async fn api_stage_image_data<S>(
        &self,
        actor: &Actor,
        id: &str,
        total: Option<u64>,
        body: S,
    ) -> ServiceResult<()>
    where
        S: futures::Stream<Item = Result<bytes::Bytes, String>> + Unpin,
    {
        self.receive_image_data(actor, id, total, body, Keep::Stage)
            .await
    }

    #[tracing::instrument(skip_all, fields(account.id = %actor.account_id, image.id = %id))]
    async fn receive_image_data<S>(
        &self,
        actor: &Actor,
        id: &str,
        total: Option<u64>,
        body: S,
        keep: Keep,
    ) -> ServiceResult<()>
    where
        S: futures::Stream<Item = Result<bytes::Bytes, String>> + Unpin,
    {
        let id = parse_image_id(id)?;
        self.owned_image(actor, &id).await?;
        // The same slots as the browser's uploads: a client cannot hold more streams open
        // than one account may.
        let _slot = self
            .inner
            .patch_slots
            .try_take(&actor.account_id)
            .map_err(ServiceError::from)?;
        match self
            .importer()
            .receive_body(&actor.account_id, &actor.user_name, &id, total, body, keep)
            .await
        {
            Ok(()) => Ok(()),
            Err(BodyUploadError::Conflict(m)) => Err(ServiceError::Conflict(m)),
            Err(BodyUploadError::Returned(m)) => Err(invalid("data", m)),
            Err(BodyUploadError::Idle(m)) => Err(ServiceError::TimedOut(format!(
                "{m} The image is queued again: send its data again."
            ))),
            Err(BodyUploadError::TakenOver) => Err(ServiceError::Conflict(
                "Another console process took this image's upload over while this request was sending it; send the data again.".into(),
            )),
            Err(BodyUploadError::TooLarge(m)) => Err(ServiceError::TooLarge(m)),
            Err(BodyUploadError::Refused(m)) => Err(invalid(
                "data",
                format!("The image data was refused and the image is marked failed (killed): {m}"),
            )),
            Err(BodyUploadError::Gone) => Err(not_found()),
            Err(BodyUploadError::Internal(e)) => Err(ServiceError::Internal(e)),
        }
    }

    /// Imports the data of the actor's own image (Glance's `POST /import`): its staged data
    /// (glance-direct), or a URL (web-download), which goes through the same checks as an
    /// Image file URL on Create Image and is imported in the background. The data is
    /// converted to `convert_to` if the request names it, else to what the image chose when
    /// it was created, else to the console's default (`CONVERT_TO`).
    #[tracing::instrument(skip_all, fields(account.id = %actor.account_id, image.id = %id))]
    pub async fn api_import_image(
        &self,
        actor: &Actor,
        id: &str,
        method: &ImportMethod,
        convert_to: Option<&str>,
    ) -> ServiceResult<()> {
        let id = parse_image_id(id)?;
        let convert_to = match convert_to {
            Some(raw) => ConvertTo::parse(raw).map_err(|e| ServiceError::Invalid(vec![e]))?,
            None => None,
        };
        let conversion = (convert_to, self.importer().default_conversion());
        let row = self.owned_image(actor, &id).await?;
        match method {
            ImportMethod::GlanceDirect => {
                let imported = self
                    .store()
                    .import_staged_data(
                        &actor.account_id,
                        &id,
                        &actor.user_name,
                        crate::domain::history::notes::API_IMPORT_STAGED,
                        conversion,
                        now_ms(),
                    )
                    .await?;
                if let Some(status) = imported {
                    if status == ImageStatus::Converting {
                        self.importer().enqueue(&actor.account_id, &id).await;
                    }
                    Ok(())
                } else {
                    Err(ServiceError::Conflict(format!(
                        "glance-direct imports staged data, and this image has none: it is {}. Send the data to /v2/images/{id}/stage first.",
                        row.status.label()
                    )))
                }
            }
            ImportMethod::WebDownload(uri) => {
                let url = ImageFileUrl::parse(uri).map_err(|e| ServiceError::Invalid(vec![e]))?;
                check_format_fits_file(row.declared_format, &url.file_name())
                    .map_err(|e| ServiceError::Invalid(vec![e]))?;
                if let Ok(parsed) = url::Url::parse(url.as_str())
                    && let Err(refused) = self.importer().check_source(&parsed)
                {
                    return Err(invalid(field::SOURCE_URL, refused.0));
                }
                if !self
                    .store()
                    .set_import_source(
                        &actor.account_id,
                        &id,
                        url.as_str(),
                        &actor.user_name,
                        conversion,
                        now_ms(),
                    )
                    .await?
                {
                    return Err(ServiceError::Conflict(format!(
                        "web-download imports into an image that has no data yet, and this one is {}.",
                        row.status.label()
                    )));
                }
                self.importer().enqueue(&actor.account_id, &id).await;
                Ok(())
            }
        }
    }

    /// The bytes of an Active image the actor may download (its own, or shared with it and
    /// Accepted).
    #[tracing::instrument(skip_all, fields(account.id = %actor.account_id, image.id = %id))]
    pub async fn api_image_data(&self, actor: &Actor, id: &str) -> ServiceResult<DownloadFile> {
        let id = parse_image_id(id)?;
        let access = self.visible_image(actor, &id).await?;
        let row = access.row();
        if row.status == ImageStatus::Deactivated {
            return Err(ServiceError::Forbidden(
                crate::service::downloads::DEACTIVATED.into(),
            ));
        }
        let (ImageStatus::Active, Some(size_bytes)) = (row.status, row.size_bytes) else {
            return Err(ServiceError::Conflict(format!(
                "The image has no data to download: it is {}.",
                row.status.label()
            )));
        };
        let blob = self
            .open_image_bytes(row)
            .await?
            .ok_or_else(|| ServiceError::Conflict("The image has no data to download.".into()))?;
        Ok(DownloadFile {
            blob,
            file_name: download_file_name(
                &row.attributes.name,
                row.disk_format.map_or("img", |f| f.as_str()),
            ),
            size_bytes,
        })
    }
}

/// An Active image's stored data that cannot be opened: 503 with a reference, never a 500.
pub(crate) fn stored_data_unreadable(error: std::io::Error, id: &str, key: &str) -> ServiceError {
    let missing = error.kind() == std::io::ErrorKind::NotFound;
    ServiceError::DataUnavailable(anyhow::Error::new(error).context(if missing {
        format!("image {id} is Active but its stored data {key} is missing")
    } else {
        format!("opening the stored data {key} of image {id}")
    }))
}
