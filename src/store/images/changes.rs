//! Creating, editing and deleting images, their tags and Protected, Create shared Image, and
//! the events that go with each change, every one in the same transaction as its change.

use sqlx::Row;

use crate::domain::history::FieldChange;

use super::*;
use crate::domain::conversion::ConvertTo;
use crate::domain::signature::{HashMethod, KeyType};

async fn insert_tags(
    conn: &mut AnyConnection,
    account_id: &str,
    image_id: &str,
    tags: &[Tag],
) -> sqlx::Result<()> {
    for tag in tags {
        sqlx::query("INSERT INTO image_tags (image_id, account_id, tag_key, tag_value) VALUES ($1, $2, $3, $4)")
            .bind(image_id)
            .bind(account_id)
            .bind(tag.key.as_str())
            .bind(tag.value.as_str())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

impl Store {
    /// Inserts a Queued image with its tags and its "created" event, refusing it when the
    /// account is at a quota limit.
    pub async fn create_image(
        &self,
        image: &NewImageRow,
        tags: &[Tag],
        limits: QuotaLimits,
    ) -> Result<(), CreateImageError> {
        let mut tx = self.begin_write().await?;
        lock_account(&mut tx, &image.account_id).await?;
        // An id a client chose (the image API allows it) must be new, and not one the
        // account's Work History still names.
        let taken = sqlx::query(
            "SELECT 1 AS taken FROM images WHERE id = $1 \
             UNION ALL SELECT 1 FROM image_events WHERE account_id = $2 AND image_id = $1",
        )
        .bind(&image.id)
        .bind(&image.account_id)
        .fetch_optional(&mut *tx)
        .await?;
        if taken.is_some() {
            return Err(CreateImageError::IdInUse);
        }
        let used = usage(&mut tx, &image.account_id).await?;
        if used.image_count >= limits.max_images {
            return Err(CreateImageError::ImageQuota(used));
        }
        // An upload announces its size, which must fit; a URL's size is known only later.
        let incoming = image.local_file.as_ref().map_or(0, |f| f.size_bytes);
        if used.stored_bytes >= limits.max_stored_bytes
            || used.stored_bytes.saturating_add(incoming) > limits.max_stored_bytes
        {
            return Err(CreateImageError::StorageQuota(used));
        }
        if image.local_file.is_some() {
            let uploading: i64 = sqlx::query(
                "SELECT COUNT(*) AS n FROM images WHERE account_id = $1 AND status = $2",
            )
            .bind(&image.account_id)
            .bind(ImageStatus::Uploading.as_str())
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
            if to_u64(uploading) >= crate::domain::upload::MAX_UPLOADS_IN_PROGRESS {
                return Err(CreateImageError::TooManyUploads(to_u64(uploading)));
            }
        }
        let sql = format!(
            "INSERT INTO images ({ATTRIBUTE_COLUMNS}, id, account_id, visibility, status, \
             image_type, source_url, created_by, created_at, updated_by, updated_at, expected_checksum, \
             source_file_name, bytes_total, declared_format, os_version, encryption_key_id, convert_to, \
             signature, signature_hash_method, signature_key_type, signature_certificate_id, source_image_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $16, $17, $18, $19, $20, $21, $22, $23, $24, \
             $25, $26, $27, $28, $29)"
        );
        bind_attributes(sqlx::query(&sql), &image.attributes)
            .bind(&image.id)
            .bind(&image.account_id)
            .bind(image.visibility.as_str())
            .bind(match image.local_file {
                Some(_) => ImageStatus::Uploading.as_str(),
                None => ImageStatus::Queued.as_str(),
            })
            .bind(image.image_type)
            .bind(&image.source_url)
            .bind(&image.created_by)
            .bind(image.created_at_ms)
            .bind(&image.expected_checksum)
            .bind(image.local_file.as_ref().map(|f| f.name.clone()))
            .bind(image.local_file.as_ref().map(|f| to_i64(f.size_bytes)))
            .bind(image.declared_format.as_str())
            .bind(os_version(&image.attributes))
            .bind(image.encryption_key.as_ref().map(|k| k.id.clone()))
            .bind(image.convert_to.map(ConvertTo::as_str))
            .bind(&image.signature.signature)
            .bind(image.signature.hash_method.map(HashMethod::as_str))
            .bind(image.signature.key_type.map(KeyType::as_str))
            .bind(&image.signature.certificate_id)
            .bind(&image.source_image_id)
            .execute(&mut *tx)
            .await
            .map_err(|e| match e.as_database_error() {
                // Another account took the id at the same moment.
                Some(db) if db.is_unique_violation() => CreateImageError::IdInUse,
                _ => e.into(),
            })?;
        if let Some(source_id) = &image.source_image_id {
            lineage::record(&mut tx, &image.id, source_id, &image.account_id).await?;
        }
        insert_tags(&mut tx, &image.account_id, &image.id, tags).await?;
        let encryption: Vec<FieldChange> = image
            .encryption_key
            .iter()
            .map(|key| FieldChange {
                field: "Encryption".into(),
                old: String::new(),
                new: notes::encrypted_with(&key.name, &key.id),
            })
            .collect();
        insert_event(
            &mut tx,
            &image.account_id,
            &image.id,
            &image.attributes.name,
            &NewEvent {
                changes: &encryption,
                message: image.note.as_deref().unwrap_or_default(),
                ..NewEvent::succeeded(HistoryTopic::Created, &image.created_by)
            },
            image.created_at_ms,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Writes an Edit, if the image is unchanged since `expected_updated_at_ms` (so two
    /// people editing at once cannot silently overwrite each other). Returns whether it did.
    pub async fn update_image_attributes(
        &self,
        account_id: &str,
        id: &str,
        expected_updated_at_ms: i64,
        update: &AttributeUpdate,
        event: &NewEvent<'_>,
        now_ms: i64,
    ) -> sqlx::Result<UpdateOutcome> {
        let mut tx = self.begin_write().await?;
        let done = bind_attributes(
            sqlx::query(
                "UPDATE images SET name = $1, description = $2, os_type = $3, min_disk_gb = $4, \
                 min_ram_gb = $5, protected = $6, architecture = $7, boot_mode = $8, features = $9, \
                 visibility = $10, updated_by = $11, updated_at = $12, os_version = $13 \
                 WHERE id = $14 AND account_id = $15 AND updated_at = $16",
            ),
            &update.attributes,
        )
        .bind(update.visibility.as_str())
        .bind(event.worker)
        .bind(now_ms)
        .bind(os_version(&update.attributes))
        .bind(id)
        .bind(account_id)
        .bind(expected_updated_at_ms)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(UpdateOutcome::Changed);
        }
        // Read after the row is locked, so a share made meanwhile is seen.
        if update.visibility == Visibility::Private {
            let active = crate::store::shares::count_active_shares(&mut tx, id).await?;
            if active > 0 {
                return Ok(UpdateOutcome::ActiveShares(active));
            }
        }
        insert_event(
            &mut tx,
            account_id,
            id,
            &update.attributes.name,
            event,
            now_ms,
        )
        .await?;
        tx.commit().await?;
        Ok(UpdateOutcome::Written)
    }

    /// Sets Protected and records it; returns the row as it was, or `None` if not found.
    pub async fn set_image_protected(
        &self,
        account_id: &str,
        id: &str,
        protected: bool,
        event: &NewEvent<'_>,
        now_ms: i64,
    ) -> sqlx::Result<Option<ImageRow>> {
        let mut tx = self.begin_write().await?;
        let Some(before) = fetch_row(&mut tx, account_id, id).await? else {
            return Ok(None);
        };
        sqlx::query(
            "UPDATE images SET protected = $1, updated_by = $2, updated_at = $3 WHERE id = $4 AND account_id = $5",
        )
        .bind(i64::from(protected))
        .bind(event.worker)
        .bind(now_ms)
        .bind(id)
        .bind(account_id)
        .execute(&mut *tx)
        .await?;
        insert_event(
            &mut tx,
            account_id,
            id,
            &before.attributes.name,
            event,
            now_ms,
        )
        .await?;
        tx.commit().await?;
        Ok(Some(before))
    }

    /// Sets when the image is deprecated (`None`: never) and whether it is hidden from default
    /// lists, with the Work History event. Returns the row as it was before.
    pub async fn set_image_listing(
        &self,
        account_id: &str,
        id: &str,
        (deprecate_at_ms, os_hidden): (Option<i64>, bool),
        event: &NewEvent<'_>,
        now_ms: i64,
    ) -> sqlx::Result<Option<ImageRow>> {
        let mut tx = self.begin_write().await?;
        let Some(before) = fetch_row(&mut tx, account_id, id).await? else {
            return Ok(None);
        };
        sqlx::query(
            "UPDATE images SET deprecate_at = $1, os_hidden = $2, updated_by = $3, updated_at = $4 \
             WHERE id = $5 AND account_id = $6",
        )
        .bind(deprecate_at_ms)
        .bind(i64::from(os_hidden))
        .bind(event.worker)
        .bind(now_ms.max(before.updated_at_ms + 1))
        .bind(id)
        .bind(account_id)
        .execute(&mut *tx)
        .await?;
        insert_event(
            &mut tx,
            account_id,
            id,
            &before.attributes.name,
            event,
            now_ms,
        )
        .await?;
        tx.commit().await?;
        Ok(Some(before))
    }

    /// Replaces the image's tags, if it is unchanged since `expected_updated_at_ms`.
    pub async fn replace_image_tags(
        &self,
        account_id: &str,
        id: &str,
        expected_updated_at_ms: i64,
        tags: &[Tag],
        event: &NewEvent<'_>,
        now_ms: i64,
    ) -> sqlx::Result<bool> {
        let mut tx = self.begin_write().await?;
        let Some(row) = fetch_row(&mut tx, account_id, id).await? else {
            return Ok(false);
        };
        let done = sqlx::query(
            "UPDATE images SET updated_by = $1, updated_at = $2 WHERE id = $3 AND account_id = $4 AND updated_at = $5",
        )
        .bind(event.worker)
        .bind(now_ms)
        .bind(id)
        .bind(account_id)
        .bind(expected_updated_at_ms)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM image_tags WHERE image_id = $1 AND account_id = $2")
            .bind(id)
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
        insert_tags(&mut tx, account_id, id, tags).await?;
        insert_event(&mut tx, account_id, id, &row.attributes.name, event, now_ms).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Creates a Shared image of the bytes of the account's Private, Active image `source_id`:
    /// the file is not copied but counted once more, so it stays until the last image using it
    /// is deleted. Both images record it in their Work History. Counts against the image
    /// quota, not the storage quota (nothing more is stored).
    pub async fn create_shared_image(
        &self,
        account_id: &str,
        source_id: &str,
        copy: &SharedCopy<'_>,
        max_images: u64,
    ) -> sqlx::Result<CreateSharedOutcome> {
        let mut tx = self.begin_write().await?;
        lock_account(&mut tx, account_id).await?;
        let Some(source) = lock_image(&mut tx, account_id, source_id).await? else {
            return Ok(CreateSharedOutcome::NotFound);
        };
        let Some(blob_key) = source.blob_key.clone().filter(|_| {
            source.status == ImageStatus::Active && source.visibility == Visibility::Private
        }) else {
            return Ok(CreateSharedOutcome::NotEligible(Box::new(source)));
        };
        let used = usage(&mut tx, account_id).await?;
        if used.image_count >= max_images {
            return Ok(CreateSharedOutcome::ImageQuota(used));
        }
        let counted = sqlx::query("UPDATE image_blobs SET refs = refs + 1 WHERE blob_key = $1")
            .bind(&blob_key)
            .execute(&mut *tx)
            .await?;
        if counted.rows_affected() == 0 {
            // Not counted yet: the source was its only user.
            sqlx::query("INSERT INTO image_blobs (blob_key, refs) VALUES ($1, 2)")
                .bind(&blob_key)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO images (id, account_id, name, description, os_type, os_version, min_disk_gb, \
             min_ram_gb, visibility, protected, architecture, boot_mode, features, status, \
             image_type, source_url, source_file_name, disk_format, size_bytes, virtual_size_bytes, \
             hash_algo, hash_value, checksum_md5, expected_checksum, declared_format, blob_key, \
             bytes_done, bytes_total, created_by, created_at, updated_by, updated_at, source_image_id, \
             encryption_key_id, data_key_version, data_key_wrapped, data_key_nonce, data_key_format, \
             source_disk_format, source_size_bytes, source_sha512, source_md5, signature, \
             signature_hash_method, signature_key_type, signature_certificate_id, \
             signature_verified_at, signature_subject, signature_fingerprint) \
             SELECT $1, account_id, $2, description, os_type, os_version, min_disk_gb, min_ram_gb, $3, 0, \
             architecture, boot_mode, features, status, image_type, source_url, source_file_name, \
             disk_format, size_bytes, virtual_size_bytes, hash_algo, hash_value, checksum_md5, \
             expected_checksum, declared_format, blob_key, size_bytes, size_bytes, $4, $5, $4, $5, id, \
             encryption_key_id, data_key_version, data_key_wrapped, data_key_nonce, data_key_format, \
             source_disk_format, source_size_bytes, source_sha512, source_md5, signature, \
             signature_hash_method, signature_key_type, signature_certificate_id, \
             signature_verified_at, signature_subject, signature_fingerprint \
             FROM images WHERE id = $6 AND account_id = $7",
        )
        .bind(copy.id)
        .bind(copy.name)
        .bind(Visibility::Shared.as_str())
        .bind(copy.created_by)
        .bind(copy.created_at_ms)
        .bind(source_id)
        .bind(account_id)
        .execute(&mut *tx)
        .await?;
        lineage::record(&mut tx, copy.id, source_id, account_id).await?;
        let created = notes::created_from_shared(&source.attributes.name, &source.id);
        let event = NewEvent {
            message: &created,
            ..NewEvent::succeeded(HistoryTopic::Created, copy.created_by)
        };
        insert_event(
            &mut tx,
            account_id,
            copy.id,
            copy.name,
            &event,
            copy.created_at_ms,
        )
        .await?;
        let made = notes::shared_image_made(copy.name, copy.id);
        let event = NewEvent {
            message: &made,
            ..NewEvent::succeeded(HistoryTopic::SharedImageCreated, copy.created_by)
        };
        insert_event(
            &mut tx,
            account_id,
            source_id,
            &source.attributes.name,
            &event,
            copy.created_at_ms,
        )
        .await?;
        tx.commit().await?;
        Ok(CreateSharedOutcome::Created)
    }

    /// Records an event that changes no row (a download link was issued).
    pub async fn record_event(
        &self,
        account_id: &str,
        id: &str,
        image_name: &str,
        event: &NewEvent<'_>,
        now_ms: i64,
    ) -> sqlx::Result<()> {
        let mut conn = self.pool.acquire().await?;
        insert_event(&mut conn, account_id, id, image_name, event, now_ms).await
    }

    /// Revokes every download link issued so far; returns the new generation, or `None`.
    pub async fn bump_link_generation(
        &self,
        account_id: &str,
        id: &str,
        event: &NewEvent<'_>,
        now_ms: i64,
    ) -> sqlx::Result<Option<i64>> {
        let mut tx = self.begin_write().await?;
        let Some(row) = fetch_row(&mut tx, account_id, id).await? else {
            return Ok(None);
        };
        sqlx::query(
            "UPDATE images SET link_generation = link_generation + 1, updated_by = $1, updated_at = $2 \
             WHERE id = $3 AND account_id = $4",
        )
        .bind(event.worker)
        .bind(now_ms)
        .bind(id)
        .bind(account_id)
        .execute(&mut *tx)
        .await?;
        insert_event(&mut tx, account_id, id, &row.attributes.name, event, now_ms).await?;
        tx.commit().await?;
        Ok(Some(row.link_generation + 1))
    }
}
