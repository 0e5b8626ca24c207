//! Image List, Create Image, Image Details (Edit, Tags, Work History) and Delete, scoped to
//! the actor's account.

mod export;
mod image_tags;

pub use export::neutralize_csv_cell;

use super::{Actor, ServiceError, ServiceResult, Services, now_ms};
use crate::domain::FieldError;
use crate::domain::checksum::ExpectedChecksum;
use crate::domain::deprecation::{DeprecateOn, is_deprecated};
use crate::domain::history::{FieldChange, HISTORY_PAGE_SIZE, HistoryPage, HistoryTopic};
use crate::domain::image::{AccountUsage, Ancestor, AncestorState, ImageDetail, ImageStatus};
use crate::domain::image_spec::{CreateImageForm, EditImageForm, ImageSource, protected_label};
use crate::domain::keys::EncryptionChoice;
use crate::domain::list_query::{ImagePage, ListQuery};
use crate::domain::notices;
use crate::domain::os_catalogue::OsRequirement;
use crate::domain::share::{other_account, private_refused};
use crate::domain::signature::SignatureClaim;
use crate::domain::tags::{self, TagPair, parse_tag_set};
use crate::domain::units::{format_rfc3339, format_timestamp};
use crate::store::blobs::{Incoming, IncomingState};
use crate::store::history::NewEvent;
use crate::store::images::{
    AttributeUpdate, CreateImageError, ImageKey, ImageRow, LocalFileRow, NewImageRow, QuotaLimits,
    UpdateOutcome,
};

/// The answer for an id that is not in the actor's account, whoever owns it.
pub(super) fn not_found() -> ServiceError {
    ServiceError::NotFound(notices::NO_SUCH_IMAGE.into())
}

/// Why the store refused a new image, in the words every way of creating one uses; `file` is
/// the size of the file an upload declared.
pub(super) fn creation_refused(
    refused: CreateImageError,
    limits: QuotaLimits,
    file: Option<u64>,
) -> ServiceError {
    match refused {
        CreateImageError::ImageQuota(used) => ServiceError::Conflict(notices::image_quota_full(
            used.image_count,
            limits.max_images,
        )),
        CreateImageError::StorageQuota(used) => ServiceError::Conflict(
            notices::storage_quota_full(used.stored_bytes, limits.max_stored_bytes, file),
        ),
        CreateImageError::TooManyUploads(n) => ServiceError::Conflict(format!(
            "This account already has {n} uploads in progress. Finish or cancel one (Cancel Upload on the Image List) before starting another."
        )),
        CreateImageError::IdInUse => ServiceError::Conflict(
            "An image with this id already exists: choose another id, or leave it out and one is given."
                .into(),
        ),
        CreateImageError::Db(e) => e.into(),
    }
}

/// The answer to a recipient of a share asking to change the owner's image.
pub(super) fn owner_only(owner: &str) -> ServiceError {
    ServiceError::Forbidden(format!(
        "Account {owner} shares this image with this account: you can view and download it, and only account {owner} can change, share or delete it."
    ))
}

/// Accepts only well-formed image ids, so odd strings never reach a query or a path.
pub(super) fn parse_image_id(raw: &str) -> ServiceResult<String> {
    uuid::Uuid::parse_str(raw)
        .map(|id| id.hyphenated().to_string())
        .map_err(|_| not_found())
}

fn changed_elsewhere() -> ServiceError {
    ServiceError::Conflict(
        "The image was changed by someone else while you were editing it. Reload the page and try again.".into(),
    )
}

/// Most images one batch Delete takes; the largest page of the list.
pub const MAX_BATCH_DELETE: usize = 100;

/// How the actor reaches an image.
pub(super) enum Access {
    /// The actor's account owns it.
    Owner(ImageRow),
    /// Another account shares it with the actor's, which approved it: view and download only.
    /// `shared_at_ms` tells this share from an earlier, stopped one.
    Recipient { row: ImageRow, shared_at_ms: i64 },
}

impl Access {
    pub(super) fn row(&self) -> &ImageRow {
        match self {
            Access::Owner(row) | Access::Recipient { row, .. } => row,
        }
    }
}

impl Services {
    /// The actor's image by id. An image another account shares with the actor is refused as
    /// Forbidden (the actor knows it exists); any other image, missing or another account's,
    /// gets the same NotFound. `id` must already be parsed.
    /// An image in the Recycle Bin cannot be changed: it is refused with the way back.
    pub(super) async fn owned_image(&self, actor: &Actor, id: &str) -> ServiceResult<ImageRow> {
        let row = self.owned_image_in_any_state(actor, id).await?;
        if row.status.in_recycle_bin() {
            return Err(ServiceError::Conflict(
                "This image is in the Recycle Bin: restore it before changing it.".into(),
            ));
        }
        Ok(row)
    }

    /// The actor's image by id, in the Recycle Bin too.
    pub(super) async fn owned_image_in_any_state(
        &self,
        actor: &Actor,
        id: &str,
    ) -> ServiceResult<ImageRow> {
        match self.store().get_image(&actor.account_id, id).await? {
            Some(row) => Ok(row),
            None => Err(self.not_owned(actor, id).await),
        }
    }

    /// The error for an image the actor does not own: Forbidden if it is shared with the
    /// actor's account, else NotFound.
    pub(super) async fn not_owned(&self, actor: &Actor, id: &str) -> ServiceError {
        match self.store().accepted_share(&actor.account_id, id).await {
            Ok(Some((_, row))) => owner_only(&row.account_id),
            Ok(None) => not_found(),
            Err(e) => e.into(),
        }
    }

    /// The image if the actor's account owns it or has approved its share.
    pub(super) async fn visible_image(&self, actor: &Actor, id: &str) -> ServiceResult<Access> {
        if let Some(row) = self.store().get_image(&actor.account_id, id).await? {
            return Ok(Access::Owner(row));
        }
        match self.store().accepted_share(&actor.account_id, id).await? {
            Some((share, row)) => Ok(Access::Recipient {
                row,
                shared_at_ms: share.requested_at_ms,
            }),
            None => Err(not_found()),
        }
    }

    pub(super) fn quota_limits(&self) -> QuotaLimits {
        QuotaLimits {
            max_images: self.settings().max_images_per_account,
            max_stored_bytes: self.settings().max_storage_bytes_per_account,
        }
    }

    #[tracing::instrument(skip_all, fields(account.id = %actor.account_id))]
    pub async fn list_images(&self, actor: &Actor, query: &ListQuery) -> ServiceResult<ImagePage> {
        let now = self.clock_ms();
        let (rows, total) = self
            .store()
            .list_images(&actor.account_id, query, now)
            .await?;
        Ok(ImagePage {
            images: rows
                .into_iter()
                .map(|row| {
                    let mut summary = row.into_summary(&actor.account_id);
                    summary.deprecated = is_deprecated(summary.deprecate_at_ms, now);
                    summary
                })
                .collect(),
            total: total.count,
            more: total.more,
            page: query.page,
            per_page: query.per_page,
        })
    }

    pub async fn account_usage(&self, actor: &Actor) -> ServiceResult<AccountUsage> {
        let usage = self.store().account_usage(&actor.account_id).await?;
        let limits = self.quota_limits();
        Ok(AccountUsage {
            image_count: usage.image_count,
            image_limit: limits.max_images,
            stored_bytes: usage.stored_bytes,
            storage_limit_bytes: limits.max_stored_bytes,
            recycle_bin_images: usage.recycle_bin_images,
            recycle_bin_bytes: usage.recycle_bin_bytes,
        })
    }

    #[tracing::instrument(skip_all, fields(account.id = %actor.account_id, image.id = %id))]
    pub async fn get_image(&self, actor: &Actor, id: &str) -> ServiceResult<ImageDetail> {
        let id = parse_image_id(id)?;
        match self.visible_image(actor, &id).await? {
            Access::Owner(row) => {
                let tags = self.store().list_tags(&actor.account_id, &id).await?;
                let shares = self
                    .store()
                    .active_share_count(&actor.account_id, &id)
                    .await?;
                let references = self
                    .references_seen_by(actor, &actor.account_id, &id)
                    .await?;
                let lineage = self.lineage_seen_by(actor, &id).await?;
                let detail = ImageDetail {
                    references,
                    lineage,
                    ..row.into_detail(tags, shares)
                };
                self.with_key(detail, true).await
            }
            Access::Recipient { row, .. } => {
                let references = self.references_seen_by(actor, &row.account_id, &id).await?;
                let lineage = self.lineage_seen_by(actor, &id).await?;
                let detail = ImageDetail {
                    references,
                    lineage,
                    ..super::shares::as_seen_by_recipient(row.into_detail(Vec::new(), 0))
                };
                self.with_key(detail, false).await
            }
        }
    }

    /// An image's ancestors as `actor` may see them: the actor's own account's images by name
    /// and status, another account's only as "an image of account X", destroyed ones as such.
    /// The caller has checked that the actor may see the image itself.
    pub(crate) async fn lineage_seen_by(
        &self,
        actor: &Actor,
        image_id: &str,
    ) -> ServiceResult<Vec<Ancestor>> {
        Ok(self
            .store()
            .lineage(image_id)
            .await?
            .into_iter()
            .map(|a| Ancestor {
                depth: a.depth,
                seen: match a.now {
                    None => AncestorState::Destroyed,
                    Some((_, ImageStatus::Deleting, _)) => AncestorState::Destroyed,
                    Some((name, status, account)) if account == actor.account_id => {
                        AncestorState::Image { name, status }
                    }
                    Some(_) => AncestorState::OtherAccount,
                },
                id: a.id,
                account_id: a.account_id,
            })
            .collect())
    }

    /// Fills in an encrypted image's key: its state, and its name for the owner (a recipient
    /// sees only whether the owner's key can be used); and whether it is deprecated now.
    async fn with_key(&self, mut detail: ImageDetail, owner: bool) -> ServiceResult<ImageDetail> {
        detail.deprecated = is_deprecated(detail.deprecate_at_ms, self.clock_ms());
        if let Some(encryption) = &mut detail.encryption
            && let Some(key) = self
                .store()
                .find_key(&detail.account_id, &encryption.key.id)
                .await?
        {
            encryption.key.state = key.state;
            encryption.key.deletion_at_ms = key.deletion_at_ms;
            if owner {
                encryption.key.name = key.name;
            }
        }
        Ok(detail)
    }

    /// Validates the form and records the image within the account's quotas: Queued and
    /// handed to the importer for a URL, or Uploading, waiting for its upload, for a local
    /// file. Returns the image's id.
    #[tracing::instrument(skip_all, fields(account.id = %actor.account_id))]
    pub async fn create_image(
        &self,
        actor: &Actor,
        form: &CreateImageForm,
    ) -> ServiceResult<String> {
        let spec = form
            .parse(self.settings().import_size_limit_bytes)
            .map_err(ServiceError::Invalid)?;
        // A URL that names a blocked address is refused now; a name is checked when it resolves.
        if let ImageSource::Url(source_url) = &spec.source
            && let Ok(url) = url::Url::parse(source_url.as_str())
            && let Err(refused) = self.importer().check_source(&url)
        {
            return Err(ServiceError::Invalid(vec![FieldError::new(
                crate::domain::image_spec::field::SOURCE_URL,
                refused.0,
            )]));
        }
        let encryption_key = match &spec.encryption {
            EncryptionChoice::Off => None,
            EncryptionChoice::DefaultKey => Some(self.key_for_new_image(actor, None).await?),
            EncryptionChoice::Key(id) => Some(self.key_for_new_image(actor, Some(id)).await?),
        }
        .map(|key| ImageKey {
            id: key.id,
            name: key.name,
        });
        if let Some(claim) = &spec.signature {
            self.check_signature_claim(actor, claim).await?;
        }
        let id = uuid::Uuid::new_v4().to_string();
        let (source_url, local_file) = match &spec.source {
            ImageSource::Url(url) => (Some(url.as_str().to_owned()), None),
            ImageSource::LocalFile(file) => (
                None,
                Some(LocalFileRow {
                    name: file.name().to_owned(),
                    size_bytes: file.size_bytes(),
                }),
            ),
        };
        let incoming = local_file.as_ref().map(|f| f.size_bytes);
        let row = NewImageRow {
            id: id.clone(),
            account_id: actor.account_id.clone(),
            attributes: spec.attributes,
            visibility: spec.visibility,
            image_type: spec.disk_format.image_type(),
            source_url,
            expected_checksum: spec.checksum.as_ref().map(ExpectedChecksum::to_db),
            local_file,
            declared_format: spec.disk_format,
            encryption_key,
            convert_to: Some(
                spec.convert_to
                    .unwrap_or_else(|| self.importer().default_conversion()),
            ),
            signature: spec
                .signature
                .as_ref()
                .map(SignatureClaim::properties)
                .unwrap_or_default(),
            source_image_id: None,
            note: None,
            created_by: actor.user_name.clone(),
            created_at_ms: now_ms(),
        };
        let limits = self.quota_limits();
        match self.store().create_image(&row, &spec.tags, limits).await {
            Ok(()) => {}
            Err(refused) => return Err(creation_refused(refused, limits, incoming)),
        }
        match incoming {
            Some(size_bytes) => {
                tracing::info!(image.id = %id, size_bytes, "image waiting for its upload")
            }
            None => {
                tracing::info!(image.id = %id, "image queued for import");
                self.importer().enqueue(&actor.account_id, &id).await;
            }
        }
        Ok(id)
    }

    /// Applies the Edit form. `expected_updated_at_ms` is the Modification time the form was
    /// filled from; if the image changed since, nothing is written and the user is told.
    #[tracing::instrument(skip_all, fields(account.id = %actor.account_id, image.id = %id))]
    pub async fn update_image(
        &self,
        actor: &Actor,
        id: &str,
        form: &EditImageForm,
        expected_updated_at_ms: i64,
    ) -> ServiceResult<()> {
        let id = parse_image_id(id)?;
        let before = self.owned_image(actor, &id).await?;
        let edit = form
            .parse(OsRequirement::to_edit(before.attributes.os.as_ref()))
            .map_err(ServiceError::Invalid)?;
        if before.updated_at_ms != expected_updated_at_ms {
            return Err(changed_elsewhere());
        }
        let visibility = edit.visibility.unwrap_or(before.visibility);
        let attributes = edit.attributes;
        let mut changes = before.attributes.changes_to(&attributes);
        if visibility != before.visibility {
            changes.push(FieldChange {
                field: "Visibility".into(),
                old: before.visibility.label().into(),
                new: visibility.label().into(),
            });
        }
        if changes.is_empty() {
            return Ok(());
        }
        let topic = if changes.len() == 1 && changes[0].field == "Protected" {
            HistoryTopic::ProtectedChanged
        } else {
            HistoryTopic::Edited
        };
        let event = NewEvent {
            changes: &changes,
            ..NewEvent::succeeded(topic, &actor.user_name)
        };
        let update = AttributeUpdate {
            attributes,
            visibility,
        };
        let now = now_ms().max(expected_updated_at_ms + 1);
        match self
            .store()
            .update_image_attributes(
                &actor.account_id,
                &id,
                expected_updated_at_ms,
                &update,
                &event,
                now,
            )
            .await?
        {
            UpdateOutcome::Written => Ok(()),
            UpdateOutcome::Changed => Err(changed_elsewhere()),
            UpdateOutcome::ActiveShares(active) => {
                Err(ServiceError::Invalid(vec![private_refused(active)]))
            }
        }
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
        let before = self.owned_image(actor, &id).await?;
        if before.attributes.protected == protected {
            return Ok(());
        }
        let changes = [FieldChange {
            field: "Protected".into(),
            old: protected_label(before.attributes.protected).into(),
            new: protected_label(protected).into(),
        }];
        let event = NewEvent {
            changes: &changes,
            ..NewEvent::succeeded(HistoryTopic::ProtectedChanged, &actor.user_name)
        };
        self.store()
            .set_image_protected(&actor.account_id, &id, protected, &event, now_ms())
            .await?
            .ok_or_else(not_found)?;
        Ok(())
    }

    /// Sets, changes or (empty) removes the image's Deprecate on time: from then it still
    /// works but shows as Deprecated and leaves default lists. The owner's, as Edit is.
    #[tracing::instrument(skip_all, fields(account.id = %actor.account_id, image.id = %id))]
    pub async fn set_deprecation(&self, actor: &Actor, id: &str, raw: &str) -> ServiceResult<()> {
        let id = parse_image_id(id)?;
        let at =
            DeprecateOn::parse(raw, self.clock_ms()).map_err(|e| ServiceError::Invalid(vec![e]))?;
        let row = self.owned_image(actor, &id).await?;
        self.set_listing(actor, &row, at, row.os_hidden).await
    }

    /// Writes the image's deprecation and hidden flag with their Work History event, if
    /// either changes.
    pub(crate) async fn set_listing(
        &self,
        actor: &Actor,
        row: &ImageRow,
        deprecate_at_ms: Option<i64>,
        os_hidden: bool,
    ) -> ServiceResult<()> {
        if row.status.in_recycle_bin() {
            return Err(ServiceError::Conflict(
                "The image is in the Recycle Bin: restore it first.".into(),
            ));
        }
        let shown = |at: Option<i64>| at.map_or_else(|| "Never".to_owned(), format_timestamp);
        let mut changes = Vec::new();
        if row.deprecate_at_ms != deprecate_at_ms {
            changes.push(FieldChange {
                field: "Deprecate on".into(),
                old: shown(row.deprecate_at_ms),
                new: shown(deprecate_at_ms),
            });
        }
        if row.os_hidden != os_hidden {
            let label = |hidden: bool| if hidden { "Yes" } else { "No" }.to_owned();
            changes.push(FieldChange {
                field: "Hidden".into(),
                old: label(row.os_hidden),
                new: label(os_hidden),
            });
        }
        if changes.is_empty() {
            return Ok(());
        }
        let event = NewEvent {
            changes: &changes,
            ..NewEvent::succeeded(HistoryTopic::Edited, &actor.user_name)
        };
        self.store()
            .set_image_listing(
                &actor.account_id,
                &row.id,
                (deprecate_at_ms, os_hidden),
                &event,
                now_ms(),
            )
            .await?
            .ok_or_else(not_found)?;
        tracing::info!(deprecate_at_ms, os_hidden, "image listing changed");
        Ok(())
    }

    /// One page of the image's Work History, newest first.
    #[tracing::instrument(skip_all, fields(account.id = %actor.account_id, image.id = %id))]
    pub async fn image_history(
        &self,
        actor: &Actor,
        id: &str,
        page: u32,
    ) -> ServiceResult<HistoryPage> {
        let id = parse_image_id(id)?;
        // The image must still be visible to the account; history of deleted images is kept
        // (the account's Work History page shows it) but not reachable from a page that no
        // longer exists. Each account reads its own events: a recipient of a share sees its
        // share events, not the owner's history.
        self.visible_image(actor, &id).await?;
        let page = page.max(1);
        let (entries, total) = self
            .store()
            .list_events(&actor.account_id, &id, page, HISTORY_PAGE_SIZE)
            .await?;
        Ok(HistoryPage {
            entries,
            total,
            page,
            per_page: HISTORY_PAGE_SIZE,
        })
    }

    /// Removes an image's incoming bytes of `kind` as far as they came, then their record.
    pub(crate) async fn remove_incoming_bytes(
        &self,
        image_id: &str,
        kind: Incoming,
    ) -> anyhow::Result<()> {
        let recorded = self.store().incoming_state(image_id, kind).await?;
        let state = IncomingState::from_db(recorded.as_deref())?;
        self.blobs().remove_incoming(kind, image_id, &state).await?;
        if let Some(recorded) = recorded {
            self.store()
                .forget_incoming(image_id, kind, &recorded)
                .await?;
        }
        Ok(())
    }

    /// Incoming bytes that no import or upload needs any longer (an instance died, or a
    /// removal failed): removed, with their records; and multipart uploads the store lists
    /// that were never recorded. Returns how many.
    pub async fn sweep_incoming(&self) -> anyhow::Result<usize> {
        let abandoned = self.store().abandoned_incoming().await?;
        for entry in &abandoned {
            let state = IncomingState::from_db(Some(&entry.state))?;
            self.blobs()
                .remove_incoming(entry.kind, &entry.image_id, &state)
                .await?;
            self.store()
                .forget_incoming(&entry.image_id, entry.kind, &entry.state)
                .await?;
        }
        // Multipart uploads begun but never recorded (a process died in between), where the
        // store lists them.
        let mut recorded = std::collections::HashSet::new();
        for state in self.store().all_incoming_states().await? {
            let state = IncomingState::from_db(Some(&state))?;
            recorded.extend(state.multipart_id().map(str::to_owned));
        }
        let unrecorded = self
            .blobs()
            .sweep_unrecorded_multiparts(&recorded)
            .await?
            .unwrap_or(0);
        if unrecorded > 0 {
            tracing::info!(
                uploads = unrecorded,
                "aborted multipart uploads the database never recorded"
            );
        }
        Ok(abandoned.len() + unrecorded)
    }

    /// Removes a destroyed image's bytes: any partial upload or import, and its stored file
    /// when no other image uses it (`release_blob`). The image is Deleting meanwhile, so
    /// nothing reads them; if removal fails the file is an orphan once the row goes, which
    /// the start-up sweep collects.
    pub(super) async fn remove_image_bytes(&self, row: &ImageRow, release_blob: bool) {
        self.importer().cancel(&row.id).await;
        self.stop_upload_writes(&row.id).await;
        for kind in [Incoming::Upload, Incoming::Import] {
            if let Err(e) = self.remove_incoming_bytes(&row.id, kind).await {
                tracing::warn!(image.id = %row.id, error = format!("{e:#}"), "could not remove partial bytes; left for the sweep");
            }
        }
        if let Some(key) = row.blob_key.as_ref().filter(|_| release_blob)
            && let Err(e) = self.blobs().remove_blob(key).await
        {
            tracing::warn!(image.id = %row.id, error = %e, "could not remove image bytes; left for the sweep");
        }
    }
}
