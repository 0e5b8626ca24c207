//! The records of incoming bytes on object storage (`incoming_blobs`): which multipart upload
//! an import or an upload writes, and how far. The blob store makes the state; this keeps it.

use sqlx::Row;

use super::Store;
use super::blobs::Incoming;
use super::leases::{Fence, hold};
use crate::domain::image::ImageStatus;

/// A write refused because the lease it was made under was taken over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fenced;

/// Incoming bytes whose import or upload no longer needs them.
#[derive(Clone, Debug)]
pub struct AbandonedIncoming {
    pub image_id: String,
    pub kind: Incoming,
    pub state: String,
}

fn kind_from_db(raw: &str) -> Option<Incoming> {
    [Incoming::Import, Incoming::Upload]
        .into_iter()
        .find(|k| k.as_str() == raw)
}

impl Store {
    /// Records the state of the image's incoming bytes of `kind`, in place of any earlier
    /// one, which it returns (its bytes must go), under the lease `fence` names. `Err` with
    /// `Fenced` when the lease was taken over: nothing is recorded.
    pub async fn replace_incoming(
        &self,
        image_id: &str,
        kind: Incoming,
        fence: &Fence,
        state: &str,
        now_ms: i64,
    ) -> sqlx::Result<Result<Option<String>, Fenced>> {
        let mut tx = self.begin_write().await?;
        if !hold(&mut tx, self.backend, fence).await? {
            return Ok(Err(Fenced));
        }
        let earlier: Option<String> = sqlx::query_scalar(
            "SELECT state FROM incoming_blobs WHERE image_id = $1 AND kind = $2",
        )
        .bind(image_id)
        .bind(kind.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        record(&mut tx, image_id, kind, state, now_ms).await?;
        tx.commit().await?;
        Ok(Ok(earlier))
    }

    /// The recorded state of the image's incoming bytes of `kind`.
    pub async fn incoming_state(
        &self,
        image_id: &str,
        kind: Incoming,
    ) -> sqlx::Result<Option<String>> {
        sqlx::query_scalar("SELECT state FROM incoming_blobs WHERE image_id = $1 AND kind = $2")
            .bind(image_id)
            .bind(kind.as_str())
            .fetch_optional(&self.pool)
            .await
    }

    /// Drops the record once the bytes it names are removed, if it still names `state`: a
    /// newer attempt's record is never dropped for an older one's bytes.
    pub async fn forget_incoming(
        &self,
        image_id: &str,
        kind: Incoming,
        state: &str,
    ) -> sqlx::Result<()> {
        sqlx::query("DELETE FROM incoming_blobs WHERE image_id = $1 AND kind = $2 AND state = $3")
            .bind(image_id)
            .bind(kind.as_str())
            .bind(state)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every recorded state.
    pub async fn all_incoming_states(&self) -> sqlx::Result<Vec<String>> {
        sqlx::query_scalar("SELECT state FROM incoming_blobs")
            .fetch_all(&self.pool)
            .await
    }

    /// Records whose upload is no longer receiving, or whose image is no longer importing
    /// or converting (or is gone).
    pub async fn abandoned_incoming(&self) -> sqlx::Result<Vec<AbandonedIncoming>> {
        let rows = sqlx::query(
            "SELECT b.image_id, b.kind, b.state FROM incoming_blobs b \
             WHERE (b.kind = $1 AND NOT EXISTS (SELECT 1 FROM uploads u \
                    WHERE u.image_id = b.image_id AND u.state = $2)) \
                OR (b.kind = $3 AND NOT EXISTS (SELECT 1 FROM images i \
                    WHERE i.id = b.image_id AND i.status IN ($4, $5, $6)))",
        )
        .bind(Incoming::Upload.as_str())
        .bind(super::uploads::UploadState::Receiving.as_str())
        .bind(Incoming::Import.as_str())
        .bind(ImageStatus::Queued.as_str())
        .bind(ImageStatus::Importing.as_str())
        .bind(ImageStatus::Converting.as_str())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let kind: String = r.try_get("kind").ok()?;
                Some(AbandonedIncoming {
                    image_id: r.try_get("image_id").ok()?,
                    kind: kind_from_db(&kind)?,
                    state: r.try_get("state").ok()?,
                })
            })
            .collect())
    }
}

/// Inserts or replaces the record, inside the caller's transaction.
pub(super) async fn record(
    conn: &mut sqlx::AnyConnection,
    image_id: &str,
    kind: Incoming,
    state: &str,
    now_ms: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO incoming_blobs (image_id, kind, state, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (image_id, kind) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
    )
    .bind(image_id)
    .bind(kind.as_str())
    .bind(state)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Drops every record of the image, inside the caller's transaction (its bytes are committed).
pub(super) async fn forget_all(conn: &mut sqlx::AnyConnection, image_id: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM incoming_blobs WHERE image_id = $1")
        .bind(image_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
