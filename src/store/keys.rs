//! Encryption keys' rows and versions, and the data-key columns of the images under them.
//! Every change of a key that affects images writes an event into each one's Work History in
//! the same transaction.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::history::NewEvent;
use super::images::decode_error;
use super::{Store, to_u64};
use crate::domain::history::{FieldChange, HistoryTopic, SYSTEM_WORKER};
use crate::domain::keys::{KeyState, KeySummary};

/// An image's data key as stored: wrapped by a version of one of its account's keys, with
/// the nonce prefix (hex) and the sealed format of the bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrappedDataKey {
    pub key_id: String,
    pub version: u32,
    pub wrapped: String,
    pub nonce: String,
    pub format: String,
}

impl WrappedDataKey {
    /// Read from an image row's `encryption_key_id` and `data_key_*` columns; `None` unless
    /// all are set.
    pub(super) fn from_row(r: &AnyRow) -> sqlx::Result<Option<Self>> {
        let key_id: Option<String> = r.try_get("encryption_key_id")?;
        let version: Option<i64> = r.try_get("data_key_version")?;
        let wrapped: Option<String> = r.try_get("data_key_wrapped")?;
        let nonce: Option<String> = r.try_get("data_key_nonce")?;
        let format: Option<String> = r.try_get("data_key_format")?;
        Ok(match (key_id, version, wrapped, nonce, format) {
            (Some(key_id), Some(version), Some(wrapped), Some(nonce), Some(format)) => Some(Self {
                key_id,
                version: u32::try_from(version)
                    .map_err(|_| decode_error("data_key_version", "out of range"))?,
                wrapped,
                nonce,
                format,
            }),
            _ => None,
        })
    }
}

/// A key's row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRecord {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub description: String,
    /// `local` or `aws-kms`: the provider that holds it.
    pub provider: String,
    pub provider_key_id: Option<String>,
    pub state: KeyState,
    /// What Cancel deletion returns to.
    pub state_before: Option<KeyState>,
    pub is_default: bool,
    pub version: u32,
    pub created_at_ms: i64,
    pub rotated_at_ms: Option<i64>,
    pub deletion_at_ms: Option<i64>,
}

/// A new key's row and its first version.
pub struct NewKeyRow<'a> {
    pub id: &'a str,
    pub account_id: &'a str,
    pub name: &'a str,
    pub description: &'a str,
    pub provider: &'a str,
    pub provider_key_id: Option<&'a str>,
    pub material: Option<&'a str>,
    /// Make it the account's default (it is anyway when the account has none).
    pub make_default: bool,
    pub created_by: &'a str,
    pub now_ms: i64,
}

/// Why a key was not created.
#[derive(Debug)]
pub enum CreateKeyError {
    TooMany,
    NameTaken,
    Db(sqlx::Error),
}

impl From<sqlx::Error> for CreateKeyError {
    fn from(e: sqlx::Error) -> Self {
        CreateKeyError::Db(e)
    }
}

/// A change of a key's state, made only if it is still in `expected`.
pub struct KeyStateChange<'a> {
    pub account_id: &'a str,
    pub key_id: &'a str,
    pub expected: KeyState,
    pub new: KeyState,
    pub state_before: Option<KeyState>,
    pub deletion_at_ms: Option<i64>,
    /// The Work History message of each image under the key.
    pub message: &'a str,
    pub worker: &'a str,
    pub now_ms: i64,
}

/// An image whose data key is wrapped under an older version of its key.
#[derive(Clone, Debug)]
pub struct StaleDataKey {
    pub image_id: String,
    pub key_id: String,
    pub provider_key_id: Option<String>,
    pub from_version: u32,
    pub wrapped: String,
    pub to_version: u32,
}

/// A key version's material, to re-wrap under a new master key version.
#[derive(Clone, Debug)]
pub struct KeyMaterial {
    pub key_id: String,
    pub version: u32,
    pub material: String,
}

const KEY_COLUMNS: &str = "id, account_id, name, description, provider, provider_key_id, state, \
     state_before, is_default, version, created_at, rotated_at, deletion_at";

fn state(r: &AnyRow, column: &str) -> sqlx::Result<Option<KeyState>> {
    let raw: Option<String> = r.try_get(column)?;
    raw.map(|raw| KeyState::parse(&raw).ok_or_else(|| decode_error(column, &raw)))
        .transpose()
}

fn record(r: &AnyRow) -> sqlx::Result<KeyRecord> {
    let is_default: i64 = r.try_get("is_default")?;
    let version: i64 = r.try_get("version")?;
    Ok(KeyRecord {
        id: r.try_get("id")?,
        account_id: r.try_get("account_id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        provider: r.try_get("provider")?,
        provider_key_id: r.try_get("provider_key_id")?,
        state: state(r, "state")?.ok_or_else(|| decode_error("state", "NULL"))?,
        state_before: state(r, "state_before")?,
        is_default: is_default != 0,
        version: u32::try_from(version).map_err(|_| decode_error("version", "out of range"))?,
        created_at_ms: r.try_get("created_at")?,
        rotated_at_ms: r.try_get("rotated_at")?,
        deletion_at_ms: r.try_get("deletion_at")?,
    })
}

/// The provider's name as the Keys page shows it.
pub fn provider_label(provider: &str) -> &'static str {
    match provider {
        "aws-kms" => "AWS KMS",
        _ => "Local",
    }
}

/// Writes one Work History event into every image under the key (not being destroyed).
async fn record_on_images(
    conn: &mut sqlx::AnyConnection,
    key_id: &str,
    topic: HistoryTopic,
    changes: &[FieldChange],
    message: &str,
    worker: &str,
    now_ms: i64,
) -> sqlx::Result<()> {
    let changes = serde_json::to_string(changes).map_err(|e| sqlx::Error::Encode(e.into()))?;
    sqlx::query(
        "INSERT INTO image_events (account_id, image_id, image_name, topic, changes, message, result, worker, created_at) \
         SELECT account_id, id, name, $1, $2, $3, 'succeeded', $4, $5 FROM images \
         WHERE encryption_key_id = $6 AND status <> 'deleting'",
    )
    .bind(topic.as_str())
    .bind(changes)
    .bind(message)
    .bind(worker)
    .bind(now_ms)
    .bind(key_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Store {
    /// Records the data key an attempt at an Importing image's bytes seals them with, under
    /// the import's claim; `false` if the claim no longer holds or the image is not Importing.
    pub async fn set_import_data_key(
        &self,
        account_id: &str,
        image_id: &str,
        fence: &super::leases::Fence,
        key: &WrappedDataKey,
    ) -> sqlx::Result<bool> {
        let done = sqlx::query(&format!(
            "UPDATE images SET data_key_version = $1, data_key_wrapped = $2, data_key_nonce = $3, data_key_format = $4 \
             WHERE id = $5 AND account_id = $6 AND encryption_key_id = $7 AND status = 'importing' AND {}",
            super::leases::fence_condition(8)
        ))
        .bind(i64::from(key.version))
        .bind(&key.wrapped)
        .bind(&key.nonce)
        .bind(&key.format)
        .bind(image_id)
        .bind(account_id)
        .bind(&key.key_id)
        .bind(&fence.resource)
        .bind(&fence.token)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Inserts a key and its first version unless the account has `limit` keys that are not
    /// deleted, or one with the name; the checks and the insert are one transaction, which
    /// locks the account's row first so two creations are counted in turn.
    pub async fn create_key(
        &self,
        row: &NewKeyRow<'_>,
        limit: usize,
    ) -> Result<(), CreateKeyError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE accounts SET created_at = created_at WHERE id = $1")
            .bind(row.account_id)
            .execute(&mut *tx)
            .await?;
        let held: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM encryption_keys WHERE account_id = $1 AND state <> 'deleted'",
        )
        .bind(row.account_id)
        .fetch_one(&mut *tx)
        .await?;
        if usize::try_from(held).unwrap_or(usize::MAX) >= limit {
            return Err(CreateKeyError::TooMany);
        }
        let taken: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM encryption_keys WHERE account_id = $1 AND name = $2 AND state <> 'deleted'",
        )
        .bind(row.account_id)
        .bind(row.name)
        .fetch_one(&mut *tx)
        .await?;
        if taken > 0 {
            return Err(CreateKeyError::NameTaken);
        }
        let has_default: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM encryption_keys WHERE account_id = $1 AND is_default = 1",
        )
        .bind(row.account_id)
        .fetch_one(&mut *tx)
        .await?;
        let make_default = row.make_default || has_default == 0;
        if make_default {
            sqlx::query(
                "UPDATE encryption_keys SET is_default = 0 WHERE account_id = $1 AND is_default = 1",
            )
            .bind(row.account_id)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO encryption_keys (id, account_id, name, description, provider, provider_key_id, state, is_default, version, created_at, created_by, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'enabled', $7, 1, $8, $9, $8)",
        )
        .bind(row.id)
        .bind(row.account_id)
        .bind(row.name)
        .bind(row.description)
        .bind(row.provider)
        .bind(row.provider_key_id)
        .bind(i64::from(make_default))
        .bind(row.now_ms)
        .bind(row.created_by)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO encryption_key_versions (key_id, version, material, created_at) VALUES ($1, 1, $2, $3)",
        )
        .bind(row.id)
        .bind(row.material)
        .bind(row.now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The account's keys, deleted ones last, each with the images under it.
    pub async fn list_keys(&self, account_id: &str) -> sqlx::Result<Vec<KeySummary>> {
        let rows = sqlx::query(&format!(
            "SELECT {KEY_COLUMNS}, \
             (SELECT COUNT(*) FROM images i WHERE i.encryption_key_id = k.id AND i.status <> 'deleting') AS images, \
             (SELECT COUNT(*) FROM images i WHERE i.encryption_key_id = k.id AND i.status <> 'deleting' AND i.data_key_version < k.version) AS older \
             FROM encryption_keys k WHERE account_id = $1 \
             ORDER BY CASE state WHEN 'deleted' THEN 1 ELSE 0 END, created_at, id"
        ))
        .bind(account_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let key = record(r)?;
                let images: i64 = r.try_get("images")?;
                let older: i64 = r.try_get("older")?;
                Ok(KeySummary {
                    provider: provider_label(&key.provider).to_owned(),
                    provider_key_id: key.provider_key_id.unwrap_or_default(),
                    id: key.id,
                    name: key.name,
                    description: key.description,
                    state: key.state,
                    is_default: key.is_default,
                    version: key.version,
                    created_at_ms: key.created_at_ms,
                    rotated_at_ms: key.rotated_at_ms,
                    deletion_at_ms: key.deletion_at_ms,
                    images: to_u64(images),
                    images_on_older_versions: to_u64(older),
                })
            })
            .collect()
    }

    /// One of the account's keys.
    pub async fn find_key(
        &self,
        account_id: &str,
        key_id: &str,
    ) -> sqlx::Result<Option<KeyRecord>> {
        sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM encryption_keys WHERE id = $1 AND account_id = $2"
        ))
        .bind(key_id)
        .bind(account_id)
        .fetch_optional(self.pool())
        .await?
        .as_ref()
        .map(record)
        .transpose()
    }

    /// The account's default key, if it has one.
    pub async fn default_key(&self, account_id: &str) -> sqlx::Result<Option<KeyRecord>> {
        sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM encryption_keys WHERE account_id = $1 AND is_default = 1"
        ))
        .bind(account_id)
        .fetch_optional(self.pool())
        .await?
        .as_ref()
        .map(record)
        .transpose()
    }

    /// A version's material: `None` if there is no such version, `Some(None)` for a version
    /// without material (KMS keys, deleted local keys).
    pub async fn key_version_material(
        &self,
        key_id: &str,
        version: u32,
    ) -> sqlx::Result<Option<Option<String>>> {
        sqlx::query_scalar(
            "SELECT material FROM encryption_key_versions WHERE key_id = $1 AND version = $2",
        )
        .bind(key_id)
        .bind(i64::from(version))
        .fetch_optional(self.pool())
        .await
    }

    /// Moves a key from `expected` to the new state, with an event in each of its images'
    /// Work History; `false` if it was no longer in `expected`. A key that stops being
    /// enabled stops being the default.
    pub async fn change_key_state(&self, change: &KeyStateChange<'_>) -> sqlx::Result<bool> {
        let mut tx = self.begin_write().await?;
        let changed = sqlx::query(
            "UPDATE encryption_keys SET state = $1, state_before = $2, deletion_at = $3, \
             is_default = CASE WHEN $1 = 'enabled' THEN is_default ELSE 0 END, updated_at = $4 \
             WHERE id = $5 AND account_id = $6 AND state = $7",
        )
        .bind(change.new.as_str())
        .bind(change.state_before.map(KeyState::as_str))
        .bind(change.deletion_at_ms)
        .bind(change.now_ms)
        .bind(change.key_id)
        .bind(change.account_id)
        .bind(change.expected.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !changed {
            return Ok(false);
        }
        let changes = [FieldChange {
            field: "Encryption key state".into(),
            old: change.expected.label().into(),
            new: change.new.label().into(),
        }];
        record_on_images(
            &mut tx,
            change.key_id,
            HistoryTopic::KeyChanged,
            &changes,
            change.message,
            change.worker,
            change.now_ms,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Adds version `from + 1` to an enabled key whose version is `from`, with an event in each
    /// of its images' Work History; `false` if the key changed meanwhile.
    pub async fn add_key_version(
        &self,
        account_id: &str,
        key_id: &str,
        from: u32,
        material: Option<&str>,
        worker: &str,
        now_ms: i64,
    ) -> sqlx::Result<bool> {
        let to = i64::from(from) + 1;
        let mut tx = self.begin_write().await?;
        let changed = sqlx::query(
            "UPDATE encryption_keys SET version = $1, rotated_at = $2, updated_at = $2 \
             WHERE id = $3 AND account_id = $4 AND version = $5 AND state = 'enabled'",
        )
        .bind(to)
        .bind(now_ms)
        .bind(key_id)
        .bind(account_id)
        .bind(i64::from(from))
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !changed {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO encryption_key_versions (key_id, version, material, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(key_id)
        .bind(to)
        .bind(material)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        let changes = [FieldChange {
            field: "Encryption key version".into(),
            old: from.to_string(),
            new: to.to_string(),
        }];
        record_on_images(
            &mut tx,
            key_id,
            HistoryTopic::KeyChanged,
            &changes,
            "The key was rotated; the image's data key is re-wrapped under the new version.",
            worker,
            now_ms,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Makes an enabled key the account's default; `false` if it is not an enabled key of it.
    pub async fn make_default_key(
        &self,
        account_id: &str,
        key_id: &str,
        now_ms: i64,
    ) -> sqlx::Result<bool> {
        let mut tx = self.begin_write().await?;
        let enabled: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM encryption_keys WHERE id = $1 AND account_id = $2 AND state = 'enabled'",
        )
        .bind(key_id)
        .bind(account_id)
        .fetch_one(&mut *tx)
        .await?;
        if enabled == 0 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE encryption_keys SET is_default = 0 WHERE account_id = $1 AND is_default = 1 AND id <> $2",
        )
        .bind(account_id)
        .bind(key_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE encryption_keys SET is_default = 1, updated_at = $1 WHERE id = $2")
            .bind(now_ms)
            .bind(key_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Keys pending deletion whose time has come.
    pub async fn keys_due_for_deletion(
        &self,
        now_ms: i64,
        limit: i64,
    ) -> sqlx::Result<Vec<KeyRecord>> {
        sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM encryption_keys \
             WHERE deletion_at IS NOT NULL AND deletion_at <= $1 AND state = 'pending_deletion' \
             ORDER BY deletion_at LIMIT $2"
        ))
        .bind(now_ms)
        .bind(limit)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(record)
        .collect()
    }

    /// Deletes a key pending deletion whose time has come: erases its local material and
    /// makes its images Failed with `reason` (those in the Recycle Bin come back Failed), each
    /// with a Work History event. `false` if it was no longer due (cancelled, or done).
    pub async fn delete_key(&self, key_id: &str, reason: &str, now_ms: i64) -> sqlx::Result<bool> {
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query(
            "UPDATE encryption_keys SET state = 'deleted', state_before = NULL, is_default = 0, updated_at = $1 \
             WHERE id = $2 AND state = 'pending_deletion' AND deletion_at <= $1",
        )
        .bind(now_ms)
        .bind(key_id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !deleted {
            return Ok(false);
        }
        sqlx::query("UPDATE encryption_key_versions SET material = NULL WHERE key_id = $1")
            .bind(key_id)
            .execute(&mut *tx)
            .await?;
        let changes = [FieldChange {
            field: "Encryption key state".into(),
            old: KeyState::PendingDeletion.label().into(),
            new: KeyState::Deleted.label().into(),
        }];
        record_on_images(
            &mut tx,
            key_id,
            HistoryTopic::KeyChanged,
            &changes,
            reason,
            SYSTEM_WORKER,
            now_ms,
        )
        .await?;
        sqlx::query(
            "UPDATE images SET status = 'failed', failure_reason = $1, bytes_done = 0, bytes_total = NULL, updated_at = $2, updated_by = $3 \
             WHERE encryption_key_id = $4 AND status NOT IN ('deleted', 'deleting', 'failed')",
        )
        .bind(reason)
        .bind(now_ms)
        .bind(SYSTEM_WORKER)
        .bind(key_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE images SET restore_status = 'failed', failure_reason = $1 \
             WHERE encryption_key_id = $2 AND status = 'deleted'",
        )
        .bind(reason)
        .bind(key_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Images of enabled keys whose data key is wrapped under an older version, oldest first.
    pub async fn stale_data_keys(&self, limit: i64) -> sqlx::Result<Vec<StaleDataKey>> {
        let rows = sqlx::query(
            "SELECT i.id AS image_id, k.id AS key_id, k.provider_key_id, i.data_key_version, i.data_key_wrapped, k.version \
             FROM encryption_keys k JOIN images i ON i.encryption_key_id = k.id AND i.data_key_version < k.version \
             WHERE k.state = 'enabled' AND i.data_key_wrapped IS NOT NULL AND i.status <> 'deleting' \
             ORDER BY i.seq LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let from: i64 = r.try_get("data_key_version")?;
                let to: i64 = r.try_get("version")?;
                Ok(StaleDataKey {
                    image_id: r.try_get("image_id")?,
                    key_id: r.try_get("key_id")?,
                    provider_key_id: r.try_get("provider_key_id")?,
                    from_version: u32::try_from(from).unwrap_or(0),
                    wrapped: r.try_get("data_key_wrapped")?,
                    to_version: u32::try_from(to).unwrap_or(0),
                })
            })
            .collect()
    }

    /// Records a data key re-wrapped under a newer version, if the image still has the one
    /// it was made from (another process may have done it first), with a Work History event.
    pub async fn set_rewrapped_data_key(
        &self,
        stale: &StaleDataKey,
        wrapped: &str,
        now_ms: i64,
    ) -> sqlx::Result<bool> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "UPDATE images SET data_key_version = $1, data_key_wrapped = $2 \
             WHERE id = $3 AND encryption_key_id = $4 AND data_key_version = $5 AND data_key_wrapped = $6 \
             RETURNING account_id, name",
        )
        .bind(i64::from(stale.to_version))
        .bind(wrapped)
        .bind(&stale.image_id)
        .bind(&stale.key_id)
        .bind(i64::from(stale.from_version))
        .bind(&stale.wrapped)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        let account_id: String = row.try_get("account_id")?;
        let name: String = row.try_get("name")?;
        let changes = [FieldChange {
            field: "Data key wrapped under key version".into(),
            old: stale.from_version.to_string(),
            new: stale.to_version.to_string(),
        }];
        super::history::insert_event(
            &mut tx,
            &account_id,
            &stale.image_id,
            &name,
            &NewEvent {
                changes: &changes,
                ..NewEvent::succeeded(HistoryTopic::DataKeyRewrapped, SYSTEM_WORKER)
            },
            now_ms,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Every local key version's material, to re-wrap under a new master key version.
    pub async fn key_materials(&self) -> sqlx::Result<Vec<KeyMaterial>> {
        let rows = sqlx::query(
            "SELECT key_id, version, material FROM encryption_key_versions WHERE material IS NOT NULL ORDER BY key_id, version",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let version: i64 = r.try_get("version")?;
                Ok(KeyMaterial {
                    key_id: r.try_get("key_id")?,
                    version: u32::try_from(version).unwrap_or(0),
                    material: r.try_get("material")?,
                })
            })
            .collect()
    }

    /// Replaces a version's material if it is still `old`.
    pub async fn set_key_material(&self, old: &KeyMaterial, material: &str) -> sqlx::Result<bool> {
        Ok(sqlx::query(
            "UPDATE encryption_key_versions SET material = $1 WHERE key_id = $2 AND version = $3 AND material = $4",
        )
        .bind(material)
        .bind(&old.key_id)
        .bind(i64::from(old.version))
        .bind(&old.material)
        .execute(self.pool())
        .await?
        .rows_affected()
            == 1)
    }
}
