//! In-use references (what uses an image: virtual machines and the like, added through the
//! image API). Each account adds and removes only its own, and a recipient's end with its
//! share.

use sqlx::Row;

use super::transition::record_and_commit;
use super::*;
use crate::domain::lifecycle::ImageReference;
use crate::domain::share::other_account;

/// What adding a reference did.
#[derive(Debug, PartialEq, Eq)]
pub enum ReferenceOutcome {
    Added,
    AlreadyThere,
    NotFound,
    /// Only an Active or Deactivated image can be in use.
    NotUsable(ImageStatus),
    TooMany,
}

const REFERENCE_COLUMNS: &str = "kind, reference_id, account_id, added_by, added_at";

fn reference_from_row(r: &sqlx::any::AnyRow) -> sqlx::Result<ImageReference> {
    Ok(ImageReference {
        kind: r.try_get("kind")?,
        reference_id: r.try_get("reference_id")?,
        account_id: r.try_get("account_id")?,
        added_by: Some(r.try_get("added_by")?),
        added_at_ms: r.try_get("added_at")?,
    })
}

pub(super) async fn references_of(
    conn: &mut AnyConnection,
    id: &str,
) -> sqlx::Result<Vec<ImageReference>> {
    let rows = sqlx::query(&format!(
        "SELECT {REFERENCE_COLUMNS} FROM image_references WHERE image_id = $1 \
         ORDER BY added_at, kind, reference_id"
    ))
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(reference_from_row).collect()
}

impl Store {
    /// What uses the image.
    pub async fn list_references(&self, id: &str) -> sqlx::Result<Vec<ImageReference>> {
        let mut conn = self.pool.acquire().await?;
        references_of(&mut conn, id).await
    }

    /// Records that something uses `owner`'s image `id`, as a reference of the account of the
    /// user adding it (the owner's, or one the image is shared with). Each account has its
    /// own references: another account's of the same kind and id is neither seen nor touched.
    pub async fn add_reference(
        &self,
        owner: &str,
        id: &str,
        reference: &ImageReference,
        now_ms: i64,
    ) -> sqlx::Result<ReferenceOutcome> {
        let mut tx = self.begin_write().await?;
        let Some(row) = lock_image(&mut tx, owner, id).await? else {
            return Ok(ReferenceOutcome::NotFound);
        };
        if !matches!(row.status, ImageStatus::Active | ImageStatus::Deactivated) {
            return Ok(ReferenceOutcome::NotUsable(row.status));
        }
        let own: Vec<ImageReference> = references_of(&mut tx, id)
            .await?
            .into_iter()
            .filter(|r| r.account_id == reference.account_id)
            .collect();
        if own
            .iter()
            .any(|r| r.kind == reference.kind && r.reference_id == reference.reference_id)
        {
            return Ok(ReferenceOutcome::AlreadyThere);
        }
        if own.len() >= crate::domain::lifecycle::MAX_REFERENCES_PER_IMAGE {
            return Ok(ReferenceOutcome::TooMany);
        }
        sqlx::query(
            "INSERT INTO image_references (image_id, kind, reference_id, account_id, added_by, added_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(&reference.kind)
        .bind(&reference.reference_id)
        .bind(&reference.account_id)
        .bind(reference.added_by.as_deref().unwrap_or(SYSTEM_WORKER))
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        let note = notes::reference(&reference.kind, &reference.reference_id);
        let worker = worker_for(owner, reference);
        let event = NewEvent {
            message: &note,
            ..NewEvent::succeeded(HistoryTopic::ReferenceAdded, &worker)
        };
        record_and_commit(tx, &row, &event, now_ms).await?;
        Ok(ReferenceOutcome::Added)
    }

    /// Removes one of `by`'s account's references to `owner`'s image `id`. Returns whether
    /// it had that one.
    pub async fn remove_reference(
        &self,
        owner: &str,
        id: &str,
        kind: &str,
        reference_id: &str,
        by: &Remover<'_>,
        now_ms: i64,
    ) -> sqlx::Result<bool> {
        let mut tx = self.begin_write().await?;
        let Some(row) = lock_image(&mut tx, owner, id).await? else {
            return Ok(false);
        };
        let removed = sqlx::query(
            "DELETE FROM image_references WHERE image_id = $1 AND account_id = $2 AND kind = $3 \
             AND reference_id = $4",
        )
        .bind(id)
        .bind(by.account_id)
        .bind(kind)
        .bind(reference_id)
        .execute(&mut *tx)
        .await?;
        if removed.rows_affected() == 0 {
            return Ok(false);
        }
        let note = notes::reference(kind, reference_id);
        let worker = if by.account_id == owner {
            by.user_name.to_owned()
        } else {
            other_account(by.account_id)
        };
        let event = NewEvent {
            message: &note,
            ..NewEvent::succeeded(HistoryTopic::ReferenceRemoved, &worker)
        };
        record_and_commit(tx, &row, &event, now_ms).await?;
        Ok(true)
    }
}

/// Who the owner's Work History names for a reference's change: the user, or "account X"
/// for a user of an account the image is shared with.
fn worker_for(owner: &str, reference: &ImageReference) -> String {
    match &reference.added_by {
        Some(user) if reference.account_id == owner => user.clone(),
        _ => other_account(&reference.account_id),
    }
}

/// Removes `member`'s references to the image when its share ends (stopped or rejected),
/// inside that change's transaction, and records which in both accounts' Work History.
pub(in crate::store) async fn end_references_of_member(
    conn: &mut AnyConnection,
    (owner, image_id, image_name): (&str, &str, &str),
    member: &str,
    now_ms: i64,
) -> sqlx::Result<()> {
    let ended: Vec<String> = references_of(conn, image_id)
        .await?
        .into_iter()
        .filter(|r| r.account_id == member)
        .map(|r| format!("{}/{}", r.kind, r.reference_id))
        .collect();
    if ended.is_empty() {
        return Ok(());
    }
    sqlx::query("DELETE FROM image_references WHERE image_id = $1 AND account_id = $2")
        .bind(image_id)
        .bind(member)
        .execute(&mut *conn)
        .await?;
    let message = notes::references_ended_with_share(member, &ended);
    let event = NewEvent {
        message: &message,
        ..NewEvent::succeeded(HistoryTopic::ReferenceRemoved, SYSTEM_WORKER)
    };
    for account in [owner, member] {
        insert_event(conn, account, image_id, image_name, &event, now_ms).await?;
    }
    Ok(())
}
