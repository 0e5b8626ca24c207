//! Shares of images with other accounts. Every change is written with its Work History
//! events in both accounts, in one transaction. The owner's queries name the owner account;
//! the recipient's name the recipient and find only shares to an account that existed when
//! the image was shared (`member_known`).

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::history::{NewEvent, insert_event};
use super::images::end_references_of_member;
use super::images::{COLUMNS, ImageRow, decode_error, lock_image};
use super::{Store, to_u64};
use crate::domain::history::{FieldChange, HistoryTopic, ShareNote};
use crate::domain::image::ImageStatus;
use crate::domain::image_spec::Visibility;
use crate::domain::share::{ImageShare, ShareDecision, ShareStatus, other_account};

/// Statuses of shares in force, as SQL (`ShareStatus::is_active`).
pub(super) const ACTIVE_STATUSES: &str = "('pending', 'accepted', 'rejected')";

/// A share as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareRow {
    pub image_id: String,
    pub owner_account_id: String,
    pub member_account_id: String,
    /// Whether an account with that ID existed when the image was shared. Only the store and
    /// the service see this; the owner is never told.
    pub member_known: bool,
    pub status: ShareStatus,
    pub requested_at_ms: i64,
    pub updated_at_ms: i64,
}

impl ShareRow {
    fn from_row(r: &AnyRow) -> sqlx::Result<Self> {
        let status: String = r.try_get("share_status")?;
        Ok(Self {
            image_id: r.try_get("share_image_id")?,
            owner_account_id: r.try_get("owner_account_id")?,
            member_account_id: r.try_get("member_account_id")?,
            member_known: r.try_get::<i64, _>("member_known")? != 0,
            status: ShareStatus::from_db(&status).ok_or_else(|| decode_error("status", &status))?,
            requested_at_ms: r.try_get("requested_at")?,
            updated_at_ms: r.try_get("share_updated_at")?,
        })
    }

    pub fn into_image_share(self) -> ImageShare {
        ImageShare {
            account_id: self.member_account_id,
            status: self.status,
            requested_at_ms: self.requested_at_ms,
            updated_at_ms: self.updated_at_ms,
        }
    }
}

const SHARE_COLUMNS: &str = "sh.image_id AS share_image_id, sh.owner_account_id, \
    sh.member_account_id, sh.member_known, sh.status AS share_status, sh.requested_at, \
    sh.updated_at AS share_updated_at";

/// What sharing did.
#[derive(Debug, PartialEq, Eq)]
pub enum ShareOutcome {
    Shared {
        image_name: String,
        /// The image was Private and is now Shared.
        made_shared: bool,
    },
    NotFound,
    NotActive(ImageStatus),
    /// Already Pending or Accepted for that account.
    AlreadyShared(ShareStatus),
    /// The image already has this many shares in force.
    LimitReached(u64),
}

/// What Stop sharing did.
#[derive(Debug, PartialEq, Eq)]
pub enum StopOutcome {
    Stopped,
    AlreadyStopped,
    /// No such image in the owner's account, or it was never shared with that account.
    NotFound,
}

/// What the recipient's Approve or Reject did.
#[derive(Debug, PartialEq, Eq)]
pub enum DecideOutcome {
    Decided {
        image_name: String,
    },
    /// The share was already in the status asked for.
    Unchanged {
        image_name: String,
    },
    /// The share's status does not allow it (Approve of an Accepted share is `Unchanged`).
    NotAllowed {
        image_name: String,
        status: ShareStatus,
    },
    NotFound,
}

/// Shares in force of an image (counted after its row is locked, when it matters).
pub(super) async fn count_active_shares(
    conn: &mut AnyConnection,
    image_id: &str,
) -> sqlx::Result<u64> {
    let row = sqlx::query(&format!(
        "SELECT COUNT(*) AS n FROM image_shares WHERE image_id = $1 AND status IN {ACTIVE_STATUSES}"
    ))
    .bind(image_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(to_u64(row.try_get("n")?))
}

async fn fetch_share(
    conn: &mut AnyConnection,
    image_id: &str,
    member_account_id: &str,
) -> sqlx::Result<Option<ShareRow>> {
    let row = sqlx::query(&format!(
        "SELECT {SHARE_COLUMNS} FROM image_shares sh WHERE sh.image_id = $1 AND sh.member_account_id = $2"
    ))
    .bind(image_id)
    .bind(member_account_id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(ShareRow::from_row).transpose()
}

/// One share event, recorded in the owner's history and, when the other account exists,
/// in the recipient's.
struct ShareEvent<'a> {
    topic: HistoryTopic,
    image_id: &'a str,
    image_name: &'a str,
    owner: &'a str,
    member: &'a str,
    member_known: bool,
    owner_worker: String,
    member_worker: String,
    note: ShareNote,
    owner_changes: &'a [FieldChange],
}

async fn record_share_event(
    conn: &mut AnyConnection,
    event: &ShareEvent<'_>,
    now_ms: i64,
) -> sqlx::Result<()> {
    let owner_side = NewEvent {
        changes: event.owner_changes,
        message: &event.note.owner,
        ..NewEvent::succeeded(event.topic, &event.owner_worker)
    };
    insert_event(
        conn,
        event.owner,
        event.image_id,
        event.image_name,
        &owner_side,
        now_ms,
    )
    .await?;
    if event.member_known {
        let member_side = NewEvent {
            message: &event.note.member,
            ..NewEvent::succeeded(event.topic, &event.member_worker)
        };
        insert_event(
            conn,
            event.member,
            event.image_id,
            event.image_name,
            &member_side,
            now_ms,
        )
        .await?;
    }
    Ok(())
}

/// Ends the shares of an image being deleted, inside the deleting transaction: each account
/// with a request or access records that it ended, as does the owner, and the rows go.
pub(super) async fn end_shares_of_deleted_image(
    conn: &mut AnyConnection,
    image: &ImageRow,
    worker: &str,
    now_ms: i64,
) -> sqlx::Result<()> {
    let rows = sqlx::query(&format!(
        "SELECT {SHARE_COLUMNS} FROM image_shares sh WHERE sh.image_id = $1 AND sh.status IN ($2, $3) \
         ORDER BY sh.member_account_id"
    ))
    .bind(&image.id)
    .bind(ShareStatus::Pending.as_str())
    .bind(ShareStatus::Accepted.as_str())
    .fetch_all(&mut *conn)
    .await?;
    for row in rows.iter().map(ShareRow::from_row) {
        let share = row?;
        let note =
            ShareNote::ended_by_delete(&image.account_id, &share.member_account_id, share.status);
        let event = ShareEvent {
            topic: HistoryTopic::ShareEnded,
            image_id: &image.id,
            image_name: &image.attributes.name,
            owner: &image.account_id,
            member: &share.member_account_id,
            member_known: share.member_known,
            owner_worker: worker.to_owned(),
            member_worker: other_account(&image.account_id),
            note,
            owner_changes: &[],
        };
        record_share_event(conn, &event, now_ms).await?;
    }
    sqlx::query("DELETE FROM image_shares WHERE image_id = $1")
        .bind(&image.id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The condition that `sh` is a share delivered to the account bound at `account`: one made
/// to an account that existed then (a share to an unknown ID is never delivered).
pub(super) fn delivered_to(account: &str) -> String {
    format!("sh.member_account_id = {account} AND sh.member_known = 1")
}

/// The condition that `sh` is a share delivered to the account bound at `account` and
/// Accepted by it: the image is in that account's Image List. The one definition, used by the
/// listing and by every look-up of a shared image.
pub(super) fn accepted_by(account: &str) -> String {
    format!(
        "{} AND sh.status = '{}'",
        delivered_to(account),
        ShareStatus::Accepted.as_str()
    )
}

impl Store {
    /// Shares the owner's Active image with `member`: a new Pending share, or a Rejected or
    /// stopped one asked again. A Private image becomes Shared in the same transaction.
    pub async fn share_image(
        &self,
        owner: &str,
        image_id: &str,
        member: &str,
        worker: &str,
        limit: u64,
        now_ms: i64,
    ) -> sqlx::Result<ShareOutcome> {
        let mut tx = self.begin_write().await?;
        let Some(image) = lock_image(&mut tx, owner, image_id).await? else {
            return Ok(ShareOutcome::NotFound);
        };
        if image.status != ImageStatus::Active {
            return Ok(ShareOutcome::NotActive(image.status));
        }
        let existing = fetch_share(&mut tx, image_id, member).await?;
        if let Some(share) = &existing
            && matches!(share.status, ShareStatus::Pending | ShareStatus::Accepted)
        {
            return Ok(ShareOutcome::AlreadyShared(share.status));
        }
        // A Rejected share asked again already counts; a new or stopped one must fit.
        let adds_one = existing
            .as_ref()
            .is_none_or(|s| s.status == ShareStatus::Stopped);
        let active = count_active_shares(&mut tx, image_id).await?;
        if adds_one && active >= limit {
            return Ok(ShareOutcome::LimitReached(active));
        }
        let member_known = sqlx::query("SELECT 1 AS known FROM accounts WHERE id = $1")
            .bind(member)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        let made_shared = image.visibility == Visibility::Private;
        let mut changes = Vec::new();
        if made_shared {
            sqlx::query(
                "UPDATE images SET visibility = $1, updated_by = $2, updated_at = $3 WHERE id = $4 AND account_id = $5",
            )
            .bind(Visibility::Shared.as_str())
            .bind(worker)
            .bind(now_ms.max(image.updated_at_ms + 1))
            .bind(image_id)
            .bind(owner)
            .execute(&mut *tx)
            .await?;
            changes.push(FieldChange {
                field: "Visibility".into(),
                old: Visibility::Private.label().into(),
                new: Visibility::Shared.label().into(),
            });
        }
        sqlx::query(
            "INSERT INTO image_shares (image_id, owner_account_id, member_account_id, member_known, \
             status, requested_by, requested_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
             ON CONFLICT (image_id, member_account_id) DO UPDATE SET member_known = excluded.member_known, \
             status = excluded.status, requested_by = excluded.requested_by, \
             requested_at = excluded.requested_at, updated_at = excluded.updated_at",
        )
        .bind(image_id)
        .bind(owner)
        .bind(member)
        .bind(i64::from(member_known))
        .bind(ShareStatus::Pending.as_str())
        .bind(worker)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        let event = ShareEvent {
            topic: HistoryTopic::ShareRequested,
            image_id,
            image_name: &image.attributes.name,
            owner,
            member,
            member_known,
            owner_worker: worker.to_owned(),
            member_worker: other_account(owner),
            note: ShareNote::requested(owner, member),
            owner_changes: &changes,
        };
        record_share_event(&mut tx, &event, now_ms).await?;
        tx.commit().await?;
        Ok(ShareOutcome::Shared {
            image_name: image.attributes.name,
            made_shared,
        })
    }

    /// Stops sharing the owner's image with `member`, whatever the share's status: the other
    /// account loses access and its request at once.
    pub async fn stop_share(
        &self,
        owner: &str,
        image_id: &str,
        member: &str,
        worker: &str,
        now_ms: i64,
    ) -> sqlx::Result<StopOutcome> {
        let mut tx = self.begin_write().await?;
        let Some(image) = lock_image(&mut tx, owner, image_id).await? else {
            return Ok(StopOutcome::NotFound);
        };
        let Some(share) = fetch_share(&mut tx, image_id, member).await? else {
            return Ok(StopOutcome::NotFound);
        };
        if share.status == ShareStatus::Stopped {
            return Ok(StopOutcome::AlreadyStopped);
        }
        sqlx::query(
            "UPDATE image_shares SET status = $1, updated_at = $2 WHERE image_id = $3 AND member_account_id = $4",
        )
        .bind(ShareStatus::Stopped.as_str())
        .bind(now_ms)
        .bind(image_id)
        .bind(member)
        .execute(&mut *tx)
        .await?;
        let event = ShareEvent {
            topic: HistoryTopic::ShareStopped,
            image_id,
            image_name: &image.attributes.name,
            owner,
            member,
            member_known: share.member_known,
            owner_worker: worker.to_owned(),
            member_worker: other_account(owner),
            note: ShareNote::stopped(owner, member, share.status),
            owner_changes: &[],
        };
        record_share_event(&mut tx, &event, now_ms).await?;
        end_references_of_member(
            &mut tx,
            (owner, image_id, &image.attributes.name),
            member,
            now_ms,
        )
        .await?;
        tx.commit().await?;
        Ok(StopOutcome::Stopped)
    }

    /// The owner's image's shares, the most recently changed first (none for another
    /// account's image).
    pub async fn list_image_shares(
        &self,
        owner: &str,
        image_id: &str,
    ) -> sqlx::Result<Vec<ShareRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {SHARE_COLUMNS} FROM image_shares sh WHERE sh.image_id = $1 AND sh.owner_account_id = $2 \
             ORDER BY sh.updated_at DESC, sh.member_account_id"
        ))
        .bind(image_id)
        .bind(owner)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(ShareRow::from_row).collect()
    }

    /// Shares in force of the owner's image.
    pub async fn active_share_count(&self, owner: &str, image_id: &str) -> sqlx::Result<u64> {
        let row = sqlx::query(&format!(
            "SELECT COUNT(*) AS n FROM image_shares WHERE image_id = $1 AND owner_account_id = $2 \
             AND status IN {ACTIVE_STATUSES}"
        ))
        .bind(image_id)
        .bind(owner)
        .fetch_one(&self.pool)
        .await?;
        Ok(to_u64(row.try_get("n")?))
    }

    /// An image shared with `member`, with the share, whatever its status.
    pub async fn find_share_for_member(
        &self,
        member: &str,
        image_id: &str,
    ) -> sqlx::Result<Option<(ShareRow, ImageRow)>> {
        self.share_with_image(image_id, member, &delivered_to("$2"))
            .await
    }

    /// The image and its share, if the share is delivered to `member` and Accepted.
    pub async fn accepted_share(
        &self,
        member: &str,
        image_id: &str,
    ) -> sqlx::Result<Option<(ShareRow, ImageRow)>> {
        self.share_with_image(image_id, member, &accepted_by("$2"))
            .await
    }

    /// The share of image `$1` with member `$2` that meets `condition`, with the image.
    async fn share_with_image(
        &self,
        image_id: &str,
        member: &str,
        condition: &str,
    ) -> sqlx::Result<Option<(ShareRow, ImageRow)>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS}, {SHARE_COLUMNS} FROM image_shares sh JOIN images i ON i.id = sh.image_id \
             WHERE sh.image_id = $1 AND {condition}"
        ))
        .bind(image_id)
        .bind(member)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((ShareRow::from_row(&r)?, ImageRow::from_row(&r)?)))
            .transpose()
    }

    /// One page of the Pending requests to `member`, newest first, and how many there are.
    pub async fn list_share_requests(
        &self,
        member: &str,
        page: u32,
        per_page: u32,
    ) -> sqlx::Result<(Vec<(ShareRow, ImageRow)>, u64)> {
        let offset = i64::from(page.saturating_sub(1)) * i64::from(per_page);
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS}, {SHARE_COLUMNS} FROM image_shares sh JOIN images i ON i.id = sh.image_id \
             WHERE {} AND sh.status = $2 ORDER BY sh.requested_at DESC, sh.image_id LIMIT $3 OFFSET $4",
            delivered_to("$1")
        ))
        .bind(member)
        .bind(ShareStatus::Pending.as_str())
        .bind(i64::from(per_page))
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let requests = rows
            .iter()
            .map(|r| Ok((ShareRow::from_row(r)?, ImageRow::from_row(r)?)))
            .collect::<sqlx::Result<Vec<_>>>()?;
        Ok((requests, self.count_share_requests(member).await?))
    }

    /// How many Pending requests `member` has (the navigation's badge).
    pub async fn count_share_requests(&self, member: &str) -> sqlx::Result<u64> {
        let row = sqlx::query(&format!(
            "SELECT COUNT(*) AS n FROM image_shares sh WHERE {} AND sh.status = $2",
            delivered_to("$1")
        ))
        .bind(member)
        .bind(ShareStatus::Pending.as_str())
        .fetch_one(&self.pool)
        .await?;
        Ok(to_u64(row.try_get("n")?))
    }

    /// The recipient approves or rejects a share delivered to it. Approve takes a Pending or
    /// Rejected share; Reject a Pending or Accepted one (removing it from the Image List).
    pub async fn decide_share(
        &self,
        member: &str,
        image_id: &str,
        decision: ShareDecision,
        worker: &str,
        now_ms: i64,
    ) -> sqlx::Result<DecideOutcome> {
        let to = decision.status();
        let from: Vec<&str> = ShareStatus::ALL
            .into_iter()
            .filter(|s| decision.allowed_from(*s))
            .map(ShareStatus::as_str)
            .collect();
        let mut tx = self.begin_write().await?;
        // The conditional update comes first: it locks the share, so a concurrent Stop
        // sharing or delete is either seen by it or waits for it.
        let done = sqlx::query(
            "UPDATE image_shares SET status = $1, updated_at = $2 WHERE image_id = $3 AND \
             member_account_id = $4 AND member_known = 1 AND status IN ($5, $6)",
        )
        .bind(to.as_str())
        .bind(now_ms)
        .bind(image_id)
        .bind(member)
        .bind(from[0])
        .bind(from[1])
        .execute(&mut *tx)
        .await?;
        let found = sqlx::query(&format!(
            "SELECT i.name, {SHARE_COLUMNS} FROM image_shares sh JOIN images i ON i.id = sh.image_id \
             WHERE sh.image_id = $1 AND {}",
            delivered_to("$2")
        ))
        .bind(image_id)
        .bind(member)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(found) = found else {
            return Ok(DecideOutcome::NotFound);
        };
        let share = ShareRow::from_row(&found)?;
        let image_name: String = found.try_get("name")?;
        if done.rows_affected() != 1 {
            return Ok(match share.status {
                ShareStatus::Stopped => DecideOutcome::NotFound,
                status if status == to => DecideOutcome::Unchanged { image_name },
                status => DecideOutcome::NotAllowed { image_name, status },
            });
        }
        let owner = share.owner_account_id.clone();
        let topic = match decision {
            ShareDecision::Approve => HistoryTopic::ShareApproved,
            ShareDecision::Reject => HistoryTopic::ShareRejected,
        };
        let note = ShareNote::decided(&owner, member, decision);
        let event = ShareEvent {
            topic,
            image_id,
            image_name: &image_name,
            owner: &owner,
            member,
            member_known: true,
            owner_worker: other_account(member),
            member_worker: worker.to_owned(),
            note,
            owner_changes: &[],
        };
        record_share_event(&mut tx, &event, now_ms).await?;
        if decision == ShareDecision::Reject {
            end_references_of_member(&mut tx, (&owner, image_id, &image_name), member, now_ms)
                .await?;
        }
        tx.commit().await?;
        Ok(DecideOutcome::Decided { image_name })
    }
}
