//! Sharing images between accounts: Share to another Account and Stop sharing (the owner),
//! the Image Share Request List, Get Image Share, Approve and Reject (the other account),
//! Create shared Image, and each account's Work History.
//!
//! An Account ID that names no account is answered exactly like one that does: the share is
//! recorded as Pending and stays so. Telling the two apart would let anyone signed in list the
//! accounts of the console; see ARCHITECTURE.md.

use super::images::{not_found, parse_image_id};
use super::{Actor, ServiceError, ServiceResult, Services, now_ms};
use crate::domain::FieldError;
use crate::domain::account::AccountId;
use crate::domain::history::{HISTORY_PAGE_SIZE, HistoryPage};
use crate::domain::image::{BatchOutcome, ImageDetail, SkippedImage};
use crate::domain::image_spec::ImageName;
use crate::domain::notices;
use crate::domain::share::{
    ImageResourceId, ImageShare, ImageSharing, MAX_BATCH_DECISIONS, MAX_SHARES_PER_IMAGE,
    SHARE_REQUESTS_PAGE_SIZE, ShareDecision, ShareRequestPage, ShareStatus, SharedImage, field,
    other_account,
};
use crate::store::images::{CreateSharedOutcome, ImageRow, SharedCopy};
use crate::store::shares::{DecideOutcome, ShareOutcome, ShareRow, StopOutcome};

/// What Get Image Share answers for an ID that is not shared with the account, whatever the
/// reason (no such image, not shared, sharing stopped, the account's own image).
fn not_shared() -> ServiceError {
    ServiceError::NotFound("No image with that Resource ID is shared with this account.".into())
}

fn shared_image(share: ShareRow, image: ImageRow) -> SharedImage {
    SharedImage {
        image_id: image.id,
        image_name: image.attributes.name,
        owner_account_id: share.owner_account_id,
        size_bytes: image.size_bytes,
        os: image.attributes.os,
        image_created_at_ms: image.created_at_ms,
        status: share.status,
        requested_at_ms: share.requested_at_ms,
    }
}

impl Services {
    /// Share to another Account: the owner's Active image is shared with `account_id`, which
    /// sees it in its Image Share Request List until it approves or rejects it. A Private
    /// image becomes Shared.
    #[tracing::instrument(skip_all, fields(account.id = %actor.account_id, image.id = %id))]
    pub async fn share_image(
        &self,
        actor: &Actor,
        id: &str,
        account_id: &str,
    ) -> ServiceResult<ImageShare> {
        let id = parse_image_id(id)?;
        let member = AccountId::parse(account_id).map_err(|e| ServiceError::Invalid(vec![e]))?;
        // Owner-only, with the same answers as every other owner action.
        self.owned_image(actor, &id).await?;
        if member.as_str() == actor.account_id {
            return Err(ServiceError::Invalid(vec![FieldError::new(
                field::ACCOUNT_ID,
                "This image belongs to this account. Enter the ID of another account.",
            )]));
        }
        let now = now_ms();
        match self
            .store()
            .share_image(
                &actor.account_id,
                &id,
                member.as_str(),
                &actor.user_name,
                MAX_SHARES_PER_IMAGE,
                now,
            )
            .await?
        {
            ShareOutcome::Shared { made_shared, .. } => {
                tracing::info!(made_shared, "image shared");
                Ok(ImageShare {
                    account_id: member.as_str().to_owned(),
                    status: ShareStatus::Pending,
                    requested_at_ms: now,
                    updated_at_ms: now,
                })
            }
            ShareOutcome::NotFound => Err(not_found()),
            ShareOutcome::NotActive(status) => Err(ServiceError::Conflict(format!(
                "Only an Active image can be shared; this one is {}.",
                status.label()
            ))),
            ShareOutcome::AlreadyShared(status) => {
                Err(ServiceError::Invalid(vec![FieldError::new(
                    field::ACCOUNT_ID,
                    format!(
                        "This image is already shared with account {member} ({}).",
                        status.label()
                    ),
                )]))
            }
            ShareOutcome::LimitReached(active) => Err(ServiceError::Conflict(format!(
                "This image is already shared with {active} accounts, the most one image can be shared with. Stop sharing with an account before adding another."
            ))),
        }
    }

    /// The owner's view of an image's shares (Sharing Status).
    #[tracing::instrument(skip_all, fields(account.id = %actor.account_id, image.id = %id))]
    pub async fn image_sharing(&self, actor: &Actor, id: &str) -> ServiceResult<ImageSharing> {
        let id = parse_image_id(id)?;
        let image = self.owned_image_in_any_state(actor, &id).await?;
        let shares: Vec<ImageShare> = self
            .store()
            .list_image_shares(&actor.account_id, &id)
            .await?
            .into_iter()
            .map(ShareRow::into_image_share)
            .collect();
        let active = shares.iter().filter(|s| s.status.is_active()).count() as u64;
        Ok(ImageSharing {
            image_id: image.id,
            image_name: image.attributes.name,
            status: image.status,
            visibility: image.visibility,
            shares,
            active,
            limit: MAX_SHARES_PER_IMAGE,
        })
    }

    /// The owner's image's sharing as the image API's members show it: an image in the Recycle
    /// Bin has none (it is answered as missing, as its references are).
    pub async fn api_image_sharing(&self, actor: &Actor, id: &str) -> ServiceResult<ImageSharing> {
        let sharing = self.image_sharing(actor, id).await?;
        if sharing.status.in_recycle_bin() {
            return Err(not_found());
        }
        Ok(sharing)
    }

    /// Stop sharing: the other account loses access (or its request) at once, download links
    /// included. The share can be made again later.
    #[tracing::instrument(skip_all, fields(account.id = %actor.account_id, image.id = %id))]
    pub async fn stop_sharing(
        &self,
        actor: &Actor,
        id: &str,
        account_id: &str,
    ) -> ServiceResult<()> {
        let id = parse_image_id(id)?;
        self.owned_image(actor, &id).await?;
        let no_share = || {
            ServiceError::NotFound(format!(
                "This image is not shared with account {account_id}."
            ))
        };
        let member = AccountId::parse(account_id).map_err(|_| no_share())?;
        match self
            .store()
            .stop_share(
                &actor.account_id,
                &id,
                member.as_str(),
                &actor.user_name,
                now_ms(),
            )
            .await?
        {
            StopOutcome::Stopped | StopOutcome::AlreadyStopped => Ok(()),
            StopOutcome::NotFound => Err(no_share()),
        }
    }

    /// The Image Share Request List: Pending shares to the actor's account, newest first.
    #[tracing::instrument(skip_all, fields(account.id = %actor.account_id))]
    pub async fn list_share_requests(
        &self,
        actor: &Actor,
        page: u32,
    ) -> ServiceResult<ShareRequestPage> {
        let page = page.max(1);
        let (rows, total) = self
            .store()
            .list_share_requests(&actor.account_id, page, SHARE_REQUESTS_PAGE_SIZE)
            .await?;
        Ok(ShareRequestPage {
            requests: rows
                .into_iter()
                .map(|(share, image)| shared_image(share, image))
                .collect(),
            total,
            page,
            per_page: SHARE_REQUESTS_PAGE_SIZE,
        })
    }

    /// How many Pending requests the actor's account has.
    pub async fn count_share_requests(&self, actor: &Actor) -> ServiceResult<u64> {
        Ok(self.store().count_share_requests(&actor.account_id).await?)
    }

    /// Get Image Share: an image shared with the actor's account, looked up by the Resource ID
    /// its owner passed on. Pending, Accepted and Rejected shares are found; anything else is
    /// "not shared with this account".
    #[tracing::instrument(skip_all, fields(account.id = %actor.account_id))]
    pub async fn find_shared_image(
        &self,
        actor: &Actor,
        resource_id: &str,
    ) -> ServiceResult<SharedImage> {
        let id = ImageResourceId::parse(resource_id).map_err(|e| ServiceError::Invalid(vec![e]))?;
        match self
            .store()
            .find_share_for_member(&actor.account_id, id.as_str())
            .await?
        {
            Some((share, image)) if share.status != ShareStatus::Stopped => {
                Ok(shared_image(share, image))
            }
            _ => Err(not_shared()),
        }
    }

    /// Approve or Reject shares to the actor's account, one or several at once. Each is
    /// decided on its own; the ones that cannot be are reported with the reason.
    #[tracing::instrument(skip_all, fields(account.id = %actor.account_id, images = ids.len()))]
    pub async fn decide_shares(
        &self,
        actor: &Actor,
        ids: &[String],
        decision: ShareDecision,
    ) -> ServiceResult<BatchOutcome> {
        let verb = match decision {
            ShareDecision::Approve => "approve",
            ShareDecision::Reject => "reject",
        };
        super::check_batch(ids, MAX_BATCH_DECISIONS, verb)?;
        let mut result = BatchOutcome::default();
        let mut seen = std::collections::HashSet::new();
        for raw in ids {
            let skipped = |name: String, reason: &str| SkippedImage {
                id: raw.clone(),
                name,
                reason: reason.to_owned(),
            };
            let Ok(id) = ImageResourceId::parse(raw) else {
                result.skipped.push(skipped(
                    raw.clone(),
                    "No such image is shared with this account.",
                ));
                continue;
            };
            if !seen.insert(id.clone()) {
                continue;
            }
            match self
                .store()
                .decide_share(
                    &actor.account_id,
                    id.as_str(),
                    decision,
                    &actor.user_name,
                    now_ms(),
                )
                .await?
            {
                DecideOutcome::Decided { image_name } | DecideOutcome::Unchanged { image_name } => {
                    result.done.push(image_name)
                }
                DecideOutcome::NotAllowed { image_name, status } => {
                    result.skipped.push(skipped(
                        image_name,
                        &format!(
                            "Its share is {}, which does not allow that.",
                            status.label()
                        ),
                    ));
                }
                DecideOutcome::NotFound => result.skipped.push(skipped(
                    raw.clone(),
                    "No such image is shared with this account.",
                )),
            }
        }
        Ok(result)
    }

    /// Create shared Image: a new Shared image of a Private, Active image's bytes, with its
    /// own name, history and shares. The bytes are not copied. Returns the new image's id.
    #[tracing::instrument(skip_all, fields(account.id = %actor.account_id, image.id = %id))]
    pub async fn create_shared_image(
        &self,
        actor: &Actor,
        id: &str,
        name: &str,
    ) -> ServiceResult<String> {
        let id = parse_image_id(id)?;
        let name = ImageName::parse(name).map_err(|e| ServiceError::Invalid(vec![e]))?;
        // An encrypted image's copy shares its data key: refused while the key cannot be used.
        if let Ok(row) = self.owned_image(actor, &id).await {
            self.check_key_usable(&row).await?;
        }
        let new_id = uuid::Uuid::new_v4().to_string();
        let copy = SharedCopy {
            id: &new_id,
            name: name.as_str(),
            created_by: &actor.user_name,
            created_at_ms: now_ms(),
        };
        let max_images = self.settings().max_images_per_account;
        match self
            .store()
            .create_shared_image(&actor.account_id, &id, &copy, max_images)
            .await?
        {
            CreateSharedOutcome::Created => {
                tracing::info!(shared_image.id = %new_id, "shared image created");
                Ok(new_id)
            }
            // Not the actor's: Forbidden if shared with it, else as if missing.
            CreateSharedOutcome::NotFound => Err(self.not_owned(actor, &id).await),
            CreateSharedOutcome::NotEligible(source) => Err(ServiceError::Conflict(
                source
                    .into_detail(Vec::new(), 0)
                    .create_shared_blocked_reason()
                    .unwrap_or("A shared image cannot be created from this image now.")
                    .to_owned(),
            )),
            CreateSharedOutcome::ImageQuota(used) => Err(ServiceError::Conflict(
                notices::image_quota_full(used.image_count, max_images),
            )),
        }
    }

    /// One page of the account's Work History over every image, newest first: its own
    /// images' events and its share events (also those of images it can no longer see).
    #[tracing::instrument(skip_all, fields(account.id = %actor.account_id))]
    pub async fn account_history(&self, actor: &Actor, page: u32) -> ServiceResult<HistoryPage> {
        let page = page.max(1);
        let (entries, total) = self
            .store()
            .list_account_events(&actor.account_id, page, HISTORY_PAGE_SIZE)
            .await?;
        Ok(HistoryPage {
            entries,
            total,
            page,
            per_page: HISTORY_PAGE_SIZE,
        })
    }
}

/// What an account that a share delivered the image to sees of it on Image Details: the image
/// and its bytes, not the owner's bookkeeping. No tags, no source, no shares of its own, and
/// the owner account in place of the owner's user names.
pub(super) fn as_seen_by_recipient(mut detail: ImageDetail) -> ImageDetail {
    let by_owner = other_account(&detail.account_id);
    detail.tags = Vec::new();
    detail.source_url = None;
    detail.source_file_name = None;
    detail.created_by = by_owner.clone();
    detail.updated_by = by_owner;
    detail.active_shares = 0;
    detail.source_image_id = None;
    // The owner's certificate ids are the owner's; the verification's record stays.
    detail.signature = Default::default();
    detail.shared_by = Some(detail.account_id.clone());
    detail
}
