//! Encryption keys: an account's users create them, disable and enable them, schedule them for
//! deletion (7 to 30 days, cancellable), rotate them and choose the default. The console keeps
//! each key's state and enforces it itself, whatever the provider would allow. Data keys are
//! made, opened and re-wrapped here for the image paths.

use super::{Actor, ServiceError, ServiceResult, Services, now_ms};
use crate::domain::FieldErrors;
use crate::domain::keys::{
    DEFAULT_KEY_NAME, DeletionWindow, KeyAction, KeyDescription, KeyName, KeyRef, KeyState,
    KeySummary, MAX_KEYS_PER_ACCOUNT, MIN_ROTATION_INTERVAL_MS, deleted_key_reason,
};
use crate::domain::validation::collect;
use crate::store::Store;
use crate::store::blobs::sealed::{DataKey, FORMAT};
use crate::store::key_provider::{KeyProvider, KeyVersion};
use crate::store::keys::{
    CreateKeyError, KeyRecord, KeyStateChange, NewKeyRow, StaleDataKey, WrappedDataKey,
};

/// Images whose data keys one pass re-wraps.
const REWRAP_BATCH: i64 = 100;

/// Makes and opens data keys: the key rows and the provider, shared by the image paths
/// (the importer has its own clone).
#[derive(Clone, Debug)]
pub struct KeyRing {
    store: Store,
    provider: KeyProvider,
}

impl KeyRing {
    pub fn new(store: Store, provider: KeyProvider) -> Self {
        Self { store, provider }
    }

    pub fn provider(&self) -> &KeyProvider {
        &self.provider
    }

    /// Refuses a key the configured provider does not hold.
    pub(crate) fn check_provider(&self, key: &KeyRecord) -> ServiceResult<()> {
        let kind = self.provider.kind();
        if key.provider == kind {
            return Ok(());
        }
        Err(ServiceError::Conflict(format!(
            "Key {} ({}) is held by the {} key provider, but this console uses KEY_PROVIDER={kind}.",
            key.name, key.id, key.provider
        )))
    }

    /// The account's key, refused unless it can be used now, with the reason naming it.
    async fn usable_key(&self, account_id: &str, key_id: &str) -> ServiceResult<KeyRecord> {
        let key = self
            .store
            .find_key(account_id, key_id)
            .await?
            .ok_or_else(|| {
                ServiceError::Internal(anyhow::anyhow!(
                    "key {key_id} of account {account_id} is missing"
                ))
            })?;
        let key_ref = KeyRef {
            id: key.id.clone(),
            name: key.name.clone(),
            state: key.state,
            deletion_at_ms: key.deletion_at_ms,
        };
        if let Some(reason) = key_ref.unusable_reason() {
            return Err(ServiceError::Forbidden(reason));
        }
        self.check_provider(&key)?;
        Ok(key)
    }

    async fn version_material(
        &self,
        key: &KeyRecord,
        version: u32,
    ) -> ServiceResult<Option<String>> {
        self.store
            .key_version_material(&key.id, version)
            .await?
            .ok_or_else(|| {
                ServiceError::Internal(anyhow::anyhow!("key {} has no version {version}", key.id))
            })
    }

    /// A new data key under the current version of the account's key `key_id`, and what the
    /// image row stores. Refused unless the key is enabled.
    pub async fn new_data_key(
        &self,
        account_id: &str,
        key_id: &str,
    ) -> ServiceResult<(DataKey, WrappedDataKey)> {
        let key = self.usable_key(account_id, key_id).await?;
        let material = self.version_material(&key, key.version).await?;
        let (data_key, wrapped) = self
            .provider
            .generate_data_key(&KeyVersion {
                key_id: &key.id,
                provider_key_id: key.provider_key_id.as_deref(),
                version: key.version,
                material: material.as_deref(),
            })
            .await
            .map_err(|e| key_provider_error(&e))?;
        let stored = WrappedDataKey {
            key_id: key.id.clone(),
            version: key.version,
            wrapped,
            nonce: hex::encode(data_key.nonce_prefix()),
            format: FORMAT.to_owned(),
        };
        Ok((data_key, stored))
    }

    /// An image's data key, if its key (of the owner's account) is enabled; otherwise a
    /// refusal naming the key.
    pub async fn open_data_key(
        &self,
        account_id: &str,
        stored: &WrappedDataKey,
    ) -> ServiceResult<DataKey> {
        let key = self.usable_key(account_id, &stored.key_id).await?;
        if stored.format != FORMAT {
            return Err(ServiceError::Internal(anyhow::anyhow!(
                "unknown sealed format {}",
                stored.format
            )));
        }
        let nonce = hex::decode(&stored.nonce).map_err(|_| {
            ServiceError::Internal(anyhow::anyhow!("a data key's nonce is not hex"))
        })?;
        let material = self.version_material(&key, stored.version).await?;
        self.provider
            .unwrap_data_key(
                &KeyVersion {
                    key_id: &key.id,
                    provider_key_id: key.provider_key_id.as_deref(),
                    version: stored.version,
                    material: material.as_deref(),
                },
                &stored.wrapped,
                &nonce,
            )
            .await
            .map_err(|e| key_provider_error(&e))
    }

    /// Why the account's key cannot be used now, naming it; `None` if it can.
    pub async fn unusable_reason(
        &self,
        account_id: &str,
        key_id: &str,
    ) -> ServiceResult<Option<String>> {
        match self.usable_key(account_id, key_id).await {
            Ok(_) => Ok(None),
            Err(ServiceError::Forbidden(reason) | ServiceError::Conflict(reason)) => {
                Ok(Some(reason))
            }
            Err(e) => Err(e),
        }
    }
}

fn not_found() -> ServiceError {
    ServiceError::NotFound("No key with that ID exists in this account.".into())
}

impl Services {
    /// The account's keys.
    pub async fn list_keys(&self, actor: &Actor) -> ServiceResult<Vec<KeySummary>> {
        Ok(self.store().list_keys(&actor.account_id).await?)
    }

    /// Creates a key in the account; returns its id. The account's first key is its default.
    pub async fn create_key(
        &self,
        actor: &Actor,
        name: &str,
        description: &str,
        make_default: bool,
    ) -> ServiceResult<String> {
        let mut errors = FieldErrors::new();
        let name = collect(KeyName::parse(name), &mut errors);
        let description = collect(KeyDescription::parse(description), &mut errors);
        let (Some(name), Some(description)) = (name, description) else {
            return Err(ServiceError::Invalid(errors));
        };
        self.insert_key(actor, &name, &description, make_default)
            .await
    }

    async fn insert_key(
        &self,
        actor: &Actor,
        name: &KeyName,
        description: &KeyDescription,
        make_default: bool,
    ) -> ServiceResult<String> {
        let id = uuid::Uuid::new_v4().to_string();
        let provider = self.key_provider();
        let made = provider
            .create_key(
                &id,
                &format!(
                    "image-console key {} of account {}",
                    name.as_str(),
                    actor.account_id
                ),
            )
            .await
            .map_err(|e| key_provider_error(&e))?;
        let created = self
            .store()
            .create_key(
                &NewKeyRow {
                    id: &id,
                    account_id: &actor.account_id,
                    name: name.as_str(),
                    description: description.as_str(),
                    provider: provider.kind(),
                    provider_key_id: made.provider_key_id.as_deref(),
                    material: made.material.as_deref(),
                    make_default,
                    created_by: &actor.user_name,
                    now_ms: now_ms(),
                },
                MAX_KEYS_PER_ACCOUNT,
            )
            .await;
        let field_error = |message: String| {
            ServiceError::Invalid(vec![crate::domain::FieldError::new("name", message)])
        };
        match created {
            Ok(()) => {}
            Err(CreateKeyError::TooMany) => {
                return Err(field_error(format!(
                    "This account has {MAX_KEYS_PER_ACCOUNT} keys, the most it may have. Schedule one you no longer need for deletion first."
                )));
            }
            Err(CreateKeyError::NameTaken) => {
                return Err(field_error(format!(
                    "This account already has a key named {}; choose another name.",
                    name.as_str()
                )));
            }
            Err(CreateKeyError::Db(e)) => return Err(e.into()),
        }
        tracing::info!(account.id = %actor.account_id, key.id = %id, "encryption key created");
        Ok(id)
    }

    async fn owned_key(&self, actor: &Actor, key_id: &str) -> ServiceResult<KeyRecord> {
        if uuid::Uuid::parse_str(key_id).is_err() {
            return Err(not_found());
        }
        self.store()
            .find_key(&actor.account_id, key_id)
            .await?
            .ok_or_else(not_found)
    }

    /// Enables, disables, schedules for deletion (`days`), cancels deletion, rotates or makes
    /// default one of the account's keys.
    pub async fn change_key(
        &self,
        actor: &Actor,
        key_id: &str,
        action: &str,
        days: &str,
    ) -> ServiceResult<()> {
        let action = match action {
            "enable" => KeyAction::Enable,
            "disable" => KeyAction::Disable,
            "schedule_deletion" => KeyAction::ScheduleDeletion(
                DeletionWindow::parse(days).map_err(|e| ServiceError::Invalid(vec![e]))?,
            ),
            "cancel_deletion" => KeyAction::CancelDeletion,
            "rotate" => KeyAction::Rotate,
            "make_default" => KeyAction::MakeDefault,
            _ => {
                return Err(ServiceError::Invalid(vec![crate::domain::FieldError::new(
                    "action",
                    "Choose Enable, Disable, Schedule deletion, Cancel deletion, Rotate or Make default.",
                )]));
            }
        };
        let key = self.owned_key(actor, key_id).await?;
        action
            .check(&key.name, key.state)
            .map_err(ServiceError::Conflict)?;
        self.key_ring().check_provider(&key)?;
        let provider = self.key_provider();
        let kms_key = key.provider_key_id.as_deref();
        let now = now_ms();
        let changed = match action {
            KeyAction::MakeDefault => {
                self.store()
                    .make_default_key(&actor.account_id, &key.id, now)
                    .await?
            }
            KeyAction::Rotate => {
                if let Some(at) = key
                    .rotated_at_ms
                    .filter(|at| now - at < MIN_ROTATION_INTERVAL_MS)
                {
                    return Err(ServiceError::Conflict(format!(
                        "Key {} was rotated at {}; a key can be rotated once an hour, so try again after {}.",
                        key.name,
                        crate::domain::units::format_timestamp(at),
                        crate::domain::units::format_timestamp(at + MIN_ROTATION_INTERVAL_MS)
                    )));
                }
                let version = key.version + 1;
                let material = provider
                    .new_version(&key.id, kms_key, version)
                    .await
                    .map_err(|e| key_provider_error(&e))?;
                let rotated = self
                    .store()
                    .add_key_version(
                        &actor.account_id,
                        &key.id,
                        key.version,
                        material.as_deref(),
                        &actor.user_name,
                        now,
                    )
                    .await?;
                if rotated {
                    // Re-wrap its images' data keys now rather than at the next heartbeat.
                    let this = self.clone();
                    tokio::spawn(async move {
                        if let Err(e) = this.rewrap_stale_data_keys().await {
                            tracing::warn!(error = %e, "re-wrapping data keys after a rotation");
                        }
                    });
                }
                rotated
            }
            KeyAction::Enable | KeyAction::Disable => {
                let enable = action == KeyAction::Enable;
                // Disabling is recorded first, so nothing opens the key while KMS hears of it;
                // enabling is told to KMS first, so the key works once it is recorded.
                if enable {
                    provider
                        .set_enabled(kms_key, true)
                        .await
                        .map_err(|e| key_provider_error(&e))?;
                }
                let (new, message) = if enable {
                    (
                        KeyState::Enabled,
                        format!("Key {} was enabled; the image can be used again.", key.name),
                    )
                } else {
                    (
                        KeyState::Disabled,
                        format!(
                            "Key {} was disabled; the image cannot be used until the key is enabled.",
                            key.name
                        ),
                    )
                };
                let changed = self
                    .store()
                    .change_key_state(&KeyStateChange {
                        account_id: &actor.account_id,
                        key_id: &key.id,
                        expected: key.state,
                        new,
                        state_before: None,
                        deletion_at_ms: None,
                        message: &message,
                        worker: &actor.user_name,
                        now_ms: now,
                    })
                    .await?;
                if changed && !enable {
                    provider
                        .set_enabled(kms_key, false)
                        .await
                        .map_err(|e| key_provider_error(&e))?;
                }
                changed
            }
            KeyAction::ScheduleDeletion(window) => {
                let at = window.deletion_at_ms(now);
                let message = format!(
                    "Key {} was scheduled for deletion on {}; the image cannot be used meanwhile, and once the key is deleted it can only be deleted.",
                    key.name,
                    crate::domain::units::format_timestamp(at)
                );
                let changed = self
                    .store()
                    .change_key_state(&KeyStateChange {
                        account_id: &actor.account_id,
                        key_id: &key.id,
                        expected: key.state,
                        new: KeyState::PendingDeletion,
                        state_before: Some(key.state),
                        deletion_at_ms: Some(at),
                        message: &message,
                        worker: &actor.user_name,
                        now_ms: now,
                    })
                    .await?;
                if changed {
                    provider
                        .schedule_deletion(kms_key, window.days())
                        .await
                        .map_err(|e| key_provider_error(&e))?;
                }
                changed
            }
            KeyAction::CancelDeletion => {
                let back = key.state_before.unwrap_or(KeyState::Disabled);
                provider
                    .cancel_deletion(kms_key, back == KeyState::Enabled)
                    .await
                    .map_err(|e| key_provider_error(&e))?;
                let message = format!(
                    "The deletion of key {} was cancelled; it is {} again.",
                    key.name,
                    back.label()
                );
                self.store()
                    .change_key_state(&KeyStateChange {
                        account_id: &actor.account_id,
                        key_id: &key.id,
                        expected: KeyState::PendingDeletion,
                        new: back,
                        state_before: None,
                        deletion_at_ms: None,
                        message: &message,
                        worker: &actor.user_name,
                        now_ms: now,
                    })
                    .await?
            }
        };
        if !changed {
            return Err(ServiceError::Conflict(format!(
                "Key {} changed while you were looking at it; reload the page and try again.",
                key.name
            )));
        }
        tracing::info!(account.id = %actor.account_id, key.id = %key.id, action = action.label(), "encryption key changed");
        Ok(())
    }

    /// The key a new encrypted image uses: the one chosen, or the account's default, made
    /// (named "default") when the account has none. Refused unless it is enabled.
    pub(crate) async fn key_for_new_image(
        &self,
        actor: &Actor,
        chosen: Option<&str>,
    ) -> ServiceResult<KeyRecord> {
        let key = match chosen {
            Some(id) => self.owned_key(actor, id).await.map_err(|_| {
                ServiceError::Invalid(vec![crate::domain::FieldError::new(
                    "encryption_key",
                    "Choose one of this account's keys.",
                )])
            })?,
            None => match self.store().default_key(&actor.account_id).await? {
                Some(key) => key,
                None => {
                    let name = KeyName::parse(DEFAULT_KEY_NAME)
                        .map_err(|e| ServiceError::Internal(anyhow::anyhow!("{}", e.message)))?;
                    let description = KeyDescription::parse(
                        "Made by the console for the account's first encrypted image.",
                    )
                    .map_err(|e| ServiceError::Internal(anyhow::anyhow!("{}", e.message)))?;
                    match self.insert_key(actor, &name, &description, true).await {
                        Ok(_) | Err(ServiceError::Invalid(_)) => {}
                        Err(e) => return Err(e),
                    }
                    // Made here, or by a request that came first.
                    self.store()
                        .default_key(&actor.account_id)
                        .await?
                        .ok_or_else(|| {
                            ServiceError::Conflict(
                                "This account has no default key; choose a key on the Keys page."
                                    .into(),
                            )
                        })?
                }
            },
        };
        self.key_ring().check_provider(&key)?;
        if !key.state.is_usable() {
            return Err(ServiceError::Invalid(vec![crate::domain::FieldError::new(
                "encryption_key",
                format!(
                    "Key {} is {}; choose an enabled key.",
                    key.name,
                    key.state.label()
                ),
            )]));
        }
        Ok(key)
    }

    /// Deletes the keys whose deletion time has passed (`now_ms`): their images become Failed.
    /// Returns how many were deleted.
    pub async fn delete_due_keys(&self, now_ms: i64) -> ServiceResult<usize> {
        let mut deleted = 0;
        for key in self.store().keys_due_for_deletion(now_ms, 100).await? {
            let reason = deleted_key_reason(&key.name, &key.id);
            if self.store().delete_key(&key.id, &reason, now_ms).await? {
                tracing::info!(account.id = %key.account_id, key.id = %key.id, "encryption key deleted");
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    /// Re-wraps data keys wrapped under older versions of their (enabled) keys, a batch at a
    /// time; the bytes are not touched. Safe in several processes at once: each write names
    /// the wrapped key it replaces. Returns how many were re-wrapped.
    pub async fn rewrap_stale_data_keys(&self) -> ServiceResult<usize> {
        let mut done = 0;
        loop {
            let stale = self.store().stale_data_keys(REWRAP_BATCH).await?;
            if stale.is_empty() {
                return Ok(done);
            }
            let mut progressed = false;
            for image in &stale {
                match self.rewrap(image).await {
                    Ok(true) => {
                        done += 1;
                        progressed = true;
                    }
                    Ok(false) => progressed = true,
                    Err(e) => {
                        tracing::warn!(image.id = %image.image_id, error = %e, "could not re-wrap a data key");
                    }
                }
            }
            if !progressed {
                return Ok(done);
            }
        }
    }

    async fn rewrap(&self, stale: &StaleDataKey) -> ServiceResult<bool> {
        let material = |version| async move {
            self.store()
                .key_version_material(&stale.key_id, version)
                .await?
                .ok_or_else(|| ServiceError::Internal(anyhow::anyhow!("no version {version}")))
        };
        let from_material = material(stale.from_version).await?;
        let to_material = material(stale.to_version).await?;
        let from = KeyVersion {
            key_id: &stale.key_id,
            provider_key_id: stale.provider_key_id.as_deref(),
            version: stale.from_version,
            material: from_material.as_deref(),
        };
        let to = KeyVersion {
            version: stale.to_version,
            material: to_material.as_deref(),
            ..from
        };
        let wrapped = self
            .key_provider()
            .rewrap_data_key(&from, &to, &stale.wrapped)
            .await
            .map_err(|e| key_provider_error(&e))?;
        Ok(self
            .store()
            .set_rewrapped_data_key(stale, &wrapped, now_ms())
            .await?)
    }

    /// Wraps every local key version under the current master key version (after `MASTER_KEY`
    /// gained one). Runs at start.
    pub(crate) async fn rewrap_key_materials(&self) -> anyhow::Result<()> {
        let mut rewrapped = 0;
        for material in self.store().key_materials().await? {
            let version = KeyVersion {
                key_id: &material.key_id,
                provider_key_id: None,
                version: material.version,
                material: Some(&material.material),
            };
            let Some(new) = self.key_provider().rewrap_material(&version).map_err(|e| {
                anyhow::anyhow!("key {} version {}: {e}", material.key_id, material.version)
            })?
            else {
                continue;
            };
            if self.store().set_key_material(&material, &new).await? {
                rewrapped += 1;
            }
        }
        if rewrapped > 0 {
            tracing::info!(
                key_versions = rewrapped,
                "re-wrapped key material under the current master key version"
            );
        }
        Ok(())
    }
}

/// A key provider's failure: the reason is logged, the user reads that the provider failed.
fn key_provider_error(error: &std::io::Error) -> ServiceError {
    ServiceError::Internal(anyhow::anyhow!("key provider: {error}"))
}
