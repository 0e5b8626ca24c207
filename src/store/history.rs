//! Work History events. Written only inside the transaction of the change they record.

use sqlx::{AnyConnection, Row};

use super::images::decode_error;
use super::{Store, to_u64};
use crate::domain::history::{FieldChange, HistoryEntry, HistoryTopic, WorkResult};

/// An event to record.
#[derive(Clone, Debug)]
pub struct NewEvent<'a> {
    pub topic: HistoryTopic,
    pub changes: &'a [FieldChange],
    pub message: &'a str,
    pub result: WorkResult,
    /// The user name, or "system" for the console's own work.
    pub worker: &'a str,
}

impl<'a> NewEvent<'a> {
    pub fn succeeded(topic: HistoryTopic, worker: &'a str) -> Self {
        Self {
            topic,
            changes: &[],
            message: "",
            result: WorkResult::Succeeded,
            worker,
        }
    }
}

pub(super) async fn insert_event(
    conn: &mut AnyConnection,
    account_id: &str,
    image_id: &str,
    image_name: &str,
    event: &NewEvent<'_>,
    at_ms: i64,
) -> sqlx::Result<()> {
    let changes =
        serde_json::to_string(event.changes).map_err(|e| sqlx::Error::Encode(e.into()))?;
    sqlx::query(
        "INSERT INTO image_events (account_id, image_id, image_name, topic, changes, message, result, worker, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(account_id)
    .bind(image_id)
    .bind(image_name)
    .bind(event.topic.as_str())
    .bind(changes)
    .bind(event.message)
    .bind(event.result.as_str())
    .bind(event.worker)
    .bind(at_ms)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn decode_entry(r: &sqlx::any::AnyRow) -> sqlx::Result<HistoryEntry> {
    let topic: String = r.try_get("topic")?;
    let result: String = r.try_get("result")?;
    let changes: String = r.try_get("changes")?;
    Ok(HistoryEntry {
        id: r.try_get("id")?,
        image_id: r.try_get("image_id")?,
        image_name: r.try_get("image_name")?,
        topic: HistoryTopic::from_db(&topic).ok_or_else(|| decode_error("topic", &topic))?,
        changes: serde_json::from_str(&changes).map_err(|_| decode_error("changes", &changes))?,
        message: r.try_get("message")?,
        result: WorkResult::from_db(&result).ok_or_else(|| decode_error("result", &result))?,
        worker: r.try_get("worker")?,
        at_ms: r.try_get("created_at")?,
    })
}

const EVENT_COLUMNS: &str =
    "id, image_id, image_name, topic, changes, message, result, worker, created_at";

impl Store {
    /// One page of an image's Work History in an account, newest first, and the number of
    /// entries.
    pub async fn list_events(
        &self,
        account_id: &str,
        image_id: &str,
        page: u32,
        per_page: u32,
    ) -> sqlx::Result<(Vec<HistoryEntry>, u64)> {
        let offset = i64::from(page.saturating_sub(1)) * i64::from(per_page);
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM image_events WHERE account_id = $1 AND image_id = $2 \
             ORDER BY id DESC LIMIT $3 OFFSET $4"
        ))
        .bind(account_id)
        .bind(image_id)
        .bind(i64::from(per_page))
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let entries = rows.iter().map(decode_entry).collect::<sqlx::Result<_>>()?;
        let total = sqlx::query(
            "SELECT COUNT(*) AS total FROM image_events WHERE account_id = $1 AND image_id = $2",
        )
        .bind(account_id)
        .bind(image_id)
        .fetch_one(&self.pool)
        .await?;
        Ok((entries, to_u64(total.try_get("total")?)))
    }

    /// One page of the account's Work History over all its images (and images shared with
    /// it), newest first, and the number of entries.
    pub async fn list_account_events(
        &self,
        account_id: &str,
        page: u32,
        per_page: u32,
    ) -> sqlx::Result<(Vec<HistoryEntry>, u64)> {
        let offset = i64::from(page.saturating_sub(1)) * i64::from(per_page);
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM image_events WHERE account_id = $1 \
             ORDER BY id DESC LIMIT $2 OFFSET $3"
        ))
        .bind(account_id)
        .bind(i64::from(per_page))
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let entries = rows.iter().map(decode_entry).collect::<sqlx::Result<_>>()?;
        let total = sqlx::query("SELECT COUNT(*) AS total FROM image_events WHERE account_id = $1")
            .bind(account_id)
            .fetch_one(&self.pool)
            .await?;
        Ok((entries, to_u64(total.try_get("total")?)))
    }
}
