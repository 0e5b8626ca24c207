//! Loading many images at once, without quotas or history: for seeding large accounts in
//! benchmarks (bench/list's million images) and, at small sizes, in tests.

use super::super::Backend;
use super::super::sql::QueryParts;
use super::*;

impl Store {
    /// Inserts many images at once, in their given state, without quota checks or history:
    /// for seeding large accounts (benchmarks, data moved from another system).
    pub async fn insert_images_bulk(
        &self,
        images: &[(NewImageRow, ImageStatus, Option<u64>)],
    ) -> sqlx::Result<()> {
        let mut tx = self.begin_write().await?;
        for chunk in images.chunks(500) {
            let mut filter = QueryParts::new();
            let mut values = Vec::with_capacity(chunk.len());
            for (image, status, size) in chunk {
                let size = match size {
                    Some(size) => filter.int(to_i64(*size)),
                    None => "NULL".to_owned(),
                };
                let created_by = filter.text(image.created_by.clone());
                let created_at = filter.int(image.created_at_ms);
                let a = &image.attributes;
                let cols = [
                    filter.text(a.name.clone()),
                    filter.text(a.description.clone()),
                    filter.text(stored_os_type(a.os.as_ref())),
                    filter.int(to_i64(a.min_disk_gb)),
                    filter.int(to_i64(a.min_ram_gb)),
                    filter.int(i64::from(a.protected)),
                    filter.text(a.architecture.as_str()),
                    filter.text(a.boot_mode.as_str()),
                    filter.text(a.features.to_db()),
                    filter.text(image.id.clone()),
                    filter.text(image.account_id.clone()),
                    filter.text(image.visibility.as_str()),
                    filter.text(status.as_str()),
                    filter.text(image.image_type),
                    match &image.source_url {
                        Some(url) => filter.text(url.clone()),
                        None => "NULL".to_owned(),
                    },
                    filter.text(image.declared_format.as_str()),
                    size,
                    created_by.clone(),
                    created_at.clone(),
                    created_by,
                    created_at,
                ];
                values.push(format!("({})", cols.join(", ")));
            }
            let sql = format!(
                "INSERT INTO images ({ATTRIBUTE_COLUMNS}, id, account_id, visibility, status, \
                 image_type, source_url, declared_format, size_bytes, created_by, created_at, updated_by, updated_at) \
                 VALUES {}",
                values.join(", ")
            );
            sqlx::query_with(&sql, filter.arguments())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }

    /// Inserts many tags at once, for seeding (see `insert_images_bulk`).
    pub async fn insert_tags_bulk(
        &self,
        account_id: &str,
        tags: &[(String, String, String)],
    ) -> sqlx::Result<()> {
        let mut tx = self.begin_write().await?;
        for chunk in tags.chunks(1000) {
            let mut filter = QueryParts::new();
            let account = filter.text(account_id);
            let values: Vec<String> = chunk
                .iter()
                .map(|(image_id, key, value)| {
                    format!(
                        "({}, {account}, {}, {})",
                        filter.text(image_id.clone()),
                        filter.text(key.clone()),
                        filter.text(value.clone())
                    )
                })
                .collect();
            let sql = format!(
                "INSERT INTO image_tags (image_id, account_id, tag_key, tag_value) VALUES {}",
                values.join(", ")
            );
            sqlx::query_with(&sql, filter.arguments())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }

    /// Inserts many free-form properties at once, for seeding (see `insert_images_bulk`):
    /// (image id, key, value), each image the account's.
    pub async fn insert_properties_bulk(
        &self,
        account_id: &str,
        properties: &[(String, String, String)],
    ) -> sqlx::Result<()> {
        let mut tx = self.begin_write().await?;
        for chunk in properties.chunks(1000) {
            let mut filter = QueryParts::new();
            let account = filter.text(account_id);
            let values: Vec<String> = chunk
                .iter()
                .map(|(image_id, key, value)| {
                    format!(
                        "({}, {account}, {}, {})",
                        filter.text(image_id.clone()),
                        filter.text(key.clone()),
                        filter.text(value.clone())
                    )
                })
                .collect();
            let sql = format!(
                "INSERT INTO image_properties (image_id, account_id, prop_key, prop_value) VALUES {}",
                values.join(", ")
            );
            sqlx::query_with(&sql, filter.arguments())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }

    /// Refreshes the planner's statistics (after a bulk load; PostgreSQL's autovacuum and
    /// SQLite's `PRAGMA optimize` do the same over time).
    pub async fn analyze(&self) -> sqlx::Result<()> {
        let sql = match self.backend {
            Backend::Sqlite => "ANALYZE",
            Backend::Postgres => "VACUUM ANALYZE",
        };
        sqlx::query(sql).execute(&self.pool).await?;
        Ok(())
    }
}
