//! Free-form image properties (set through the image API), and the tags and properties of a
//! page of images at once, for the API's image list.

use std::collections::HashMap;

use sqlx::Row;

use super::super::sql::QueryParts;
use super::*;
use crate::domain::signature::{HashMethod, KeyType, SignatureProperties};

impl Store {
    /// The image's free-form properties, ordered by key.
    pub async fn list_properties(&self, image_id: &str) -> sqlx::Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT prop_key, prop_value FROM image_properties WHERE image_id = $1 ORDER BY prop_key",
        )
        .bind(image_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("prop_key")?, r.try_get("prop_value")?)))
            .collect()
    }

    /// The free-form properties of these images of the account, by image id, each list
    /// ordered by key: a page's worth.
    pub async fn properties_of(
        &self,
        account_id: &str,
        image_ids: &[&str],
    ) -> sqlx::Result<HashMap<String, Vec<(String, String)>>> {
        let mut by_image: HashMap<String, Vec<(String, String)>> = HashMap::new();
        if image_ids.is_empty() {
            return Ok(by_image);
        }
        let mut q = QueryParts::new();
        let account = q.text(account_id);
        let ids: Vec<String> = image_ids.iter().map(|id| q.text(*id)).collect();
        let sql = format!(
            "SELECT image_id, prop_key, prop_value FROM image_properties \
             WHERE image_id IN ({}) AND {} = {account} ORDER BY image_id, prop_key",
            ids.join(", "),
            self.unindexed("account_id")
        );
        let rows = sqlx::query_with(&sql, q.arguments())
            .fetch_all(&self.pool)
            .await?;
        for r in &rows {
            by_image
                .entry(r.try_get("image_id")?)
                .or_default()
                .push((r.try_get("prop_key")?, r.try_get("prop_value")?));
        }
        Ok(by_image)
    }

    /// The tags of these images of the account, by image id, each list ordered by key.
    pub async fn tags_of(
        &self,
        account_id: &str,
        image_ids: &[&str],
    ) -> sqlx::Result<HashMap<String, Vec<TagPair>>> {
        let mut by_image: HashMap<String, Vec<TagPair>> = HashMap::new();
        if image_ids.is_empty() {
            return Ok(by_image);
        }
        let mut q = QueryParts::new();
        let account = q.text(account_id);
        let ids: Vec<String> = image_ids.iter().map(|id| q.text(*id)).collect();
        let sql = format!(
            "SELECT image_id, tag_key, tag_value FROM image_tags \
             WHERE image_id IN ({}) AND {} = {account} ORDER BY image_id, tag_key",
            ids.join(", "),
            self.unindexed("account_id")
        );
        let rows = sqlx::query_with(&sql, q.arguments())
            .fetch_all(&self.pool)
            .await?;
        for r in &rows {
            by_image
                .entry(r.try_get("image_id")?)
                .or_default()
                .push(TagPair {
                    key: r.try_get("tag_key")?,
                    value: r.try_get("tag_value")?,
                });
        }
        Ok(by_image)
    }

    /// Replaces the properties of the account's image with `properties`, recording `event`.
    /// `false` when the image is not in the account.
    pub async fn replace_properties(
        &self,
        account_id: &str,
        image_id: &str,
        properties: &[(String, String)],
        event: &NewEvent<'_>,
        now_ms: i64,
    ) -> sqlx::Result<bool> {
        let mut tx = self.begin_write().await?;
        let Some(row) = lock_image(&mut tx, account_id, image_id).await? else {
            return Ok(false);
        };
        sqlx::query("DELETE FROM image_properties WHERE image_id = $1")
            .bind(image_id)
            .execute(&mut *tx)
            .await?;
        for (key, value) in properties {
            sqlx::query(
                "INSERT INTO image_properties (image_id, account_id, prop_key, prop_value) VALUES ($1, $2, $3, $4)",
            )
            .bind(image_id)
            .bind(account_id)
            .bind(key)
            .bind(value)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("UPDATE images SET updated_at = $1, updated_by = $2 WHERE id = $3")
            .bind(now_ms.max(row.updated_at_ms + 1))
            .bind(event.worker)
            .bind(image_id)
            .execute(&mut *tx)
            .await?;
        insert_event(
            &mut tx,
            account_id,
            image_id,
            &row.attributes.name,
            event,
            now_ms,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// What `Store::set_declared_format` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeclaredFormatOutcome {
    Written,
    /// No such image in the account.
    NotFound,
    /// Its data has begun to arrive (or it never waited for any): the format is fixed.
    Fixed,
}

impl Store {
    /// Sets the disk format an image waiting for its data declares (Glance lets a client
    /// change it while the image is queued), with its Image Type, recording `event`.
    pub async fn set_declared_format(
        &self,
        account_id: &str,
        image_id: &str,
        format: DiskFormat,
        event: &NewEvent<'_>,
        now_ms: i64,
    ) -> sqlx::Result<DeclaredFormatOutcome> {
        let mut tx = self.begin_write().await?;
        let Some(row) = lock_image(&mut tx, account_id, image_id).await? else {
            return Ok(DeclaredFormatOutcome::NotFound);
        };
        if row.api_wait() != Some(ApiWait::Data) {
            return Ok(DeclaredFormatOutcome::Fixed);
        }
        sqlx::query(
            "UPDATE images SET declared_format = $1, image_type = $2, updated_at = $3, updated_by = $4 WHERE id = $5",
        )
        .bind(format.as_str())
        .bind(format.image_type())
        .bind(now_ms.max(row.updated_at_ms + 1))
        .bind(event.worker)
        .bind(image_id)
        .execute(&mut *tx)
        .await?;
        insert_event(
            &mut tx,
            account_id,
            image_id,
            &row.attributes.name,
            event,
            now_ms,
        )
        .await?;
        tx.commit().await?;
        Ok(DeclaredFormatOutcome::Written)
    }
}

impl Store {
    /// Sets an image's signature properties while it waits for its data (through the image
    /// API), with its Work History event. `Fixed`: its data began to arrive first.
    pub async fn set_signature_properties(
        &self,
        account_id: &str,
        image_id: &str,
        properties: &SignatureProperties,
        event: &NewEvent<'_>,
        now_ms: i64,
    ) -> sqlx::Result<DeclaredFormatOutcome> {
        let mut tx = self.begin_write().await?;
        let Some(row) = lock_image(&mut tx, account_id, image_id).await? else {
            return Ok(DeclaredFormatOutcome::NotFound);
        };
        if row.api_wait() != Some(ApiWait::Data) {
            return Ok(DeclaredFormatOutcome::Fixed);
        }
        sqlx::query(
            "UPDATE images SET signature = $1, signature_hash_method = $2, signature_key_type = $3, \
             signature_certificate_id = $4, updated_at = $5, updated_by = $6 WHERE id = $7",
        )
        .bind(&properties.signature)
        .bind(properties.hash_method.map(HashMethod::as_str))
        .bind(properties.key_type.map(KeyType::as_str))
        .bind(&properties.certificate_id)
        .bind(now_ms.max(row.updated_at_ms + 1))
        .bind(event.worker)
        .bind(image_id)
        .execute(&mut *tx)
        .await?;
        insert_event(
            &mut tx,
            account_id,
            image_id,
            &row.attributes.name,
            event,
            now_ms,
        )
        .await?;
        tx.commit().await?;
        Ok(DeclaredFormatOutcome::Written)
    }
}
