//! Replicate Image: a new image from an Active image's bytes, encrypted from unencrypted,
//! unencrypted from encrypted, or under another key. The replica is created Queued with its
//! source named where an import's URL is kept (`image:<id>`), so it runs as any import does:
//! in the account's import slots, under the import lease with fencing, with progress, Cancel
//! Import, and taken over after a restart or a lost process. Its checksum is the source's
//! SHA-512, which the copy must match. The name, attributes, tags and properties are copied,
//! and both images' Work History says where the replica came from.

use super::images::{creation_refused, parse_image_id};
use super::{Actor, ServiceError, ServiceResult, Services, now_ms};
use crate::domain::FieldErrors;
use crate::domain::checksum::{ChecksumAlgorithm, ExpectedChecksum};
use crate::domain::history::{HistoryTopic, notes};
use crate::domain::image::{ImageStatus, replica_url};
use crate::domain::image_spec::{ImageName, Visibility};
use crate::domain::keys::{EncryptionChoice, field as key_field};
use crate::domain::tags::parse_tag_set;
use crate::domain::validation::collect;
use crate::store::history::NewEvent;
use crate::store::images::{ImageKey, NewImageRow};

impl Services {
    /// Starts a replica of the actor's Active image `id`, named `name`, encrypted as
    /// `encryption` and `encryption_key` say (as on Create Image). Returns the replica's id.
    #[tracing::instrument(skip_all, fields(account.id = %actor.account_id, image.id = %id))]
    pub async fn replicate_image(
        &self,
        actor: &Actor,
        id: &str,
        name: &str,
        encryption: &str,
        encryption_key: &str,
    ) -> ServiceResult<String> {
        let id = parse_image_id(id)?;
        let mut errors = FieldErrors::new();
        let name = collect(ImageName::parse(name), &mut errors);
        let choice = collect(
            EncryptionChoice::parse(encryption, encryption_key),
            &mut errors,
        );
        let (Some(name), Some(choice)) = (name, choice) else {
            return Err(ServiceError::Invalid(errors));
        };
        let source = self.owned_image(actor, &id).await?;
        if source.status != ImageStatus::Active {
            return Err(ServiceError::Conflict(format!(
                "An image can be replicated once it is Active; this one is {}.",
                source.status.label()
            )));
        }
        self.check_key_usable(&source).await?;
        let (Some(hash), Some(disk_format)) = (&source.hash_value, source.disk_format) else {
            return Err(ServiceError::Conflict(
                "The image has no stored bytes to replicate.".into(),
            ));
        };
        let key = match &choice {
            EncryptionChoice::Off => None,
            EncryptionChoice::DefaultKey => Some(self.key_for_new_image(actor, None).await?),
            EncryptionChoice::Key(key_id) => {
                Some(self.key_for_new_image(actor, Some(key_id)).await?)
            }
        };
        if key.as_ref().map(|k| k.id.as_str()) == source.encryption_key_id.as_deref() {
            return Err(ServiceError::Invalid(vec![crate::domain::FieldError::new(
                key_field::ENCRYPTION,
                match &key {
                    Some(key) => format!(
                        "The image is already encrypted with key {}: choose another key, or Off for an unencrypted replica.",
                        key.name
                    ),
                    None => {
                        "The image is not encrypted: turn Encryption on for an encrypted replica."
                            .to_owned()
                    }
                },
            )]));
        }
        let encryption =
            notes::replica_encryption(key.as_ref().map(|k| (k.name.as_str(), k.id.as_str())));
        let tags = self.store().list_tags(&actor.account_id, &id).await?;
        let tags = parse_tag_set(&tags).map_err(ServiceError::Invalid)?;
        let properties = self.store().list_properties(&id).await?;
        let replica_id = uuid::Uuid::new_v4().to_string();
        let now = now_ms();
        let row = NewImageRow {
            // A replica keeps its source's format.
            convert_to: Some(crate::domain::conversion::ConvertTo::Keep),
            signature: Default::default(),
            source_image_id: Some(id.clone()),
            id: replica_id.clone(),
            account_id: actor.account_id.clone(),
            attributes: crate::domain::image_spec::ImageAttributes {
                name: name.as_str().to_owned(),
                protected: false,
                ..source.attributes.clone()
            },
            visibility: Visibility::Private,
            image_type: disk_format.image_type(),
            source_url: Some(replica_url(&id)),
            expected_checksum: Some(
                ExpectedChecksum {
                    algorithm: ChecksumAlgorithm::Sha512,
                    hex: hash.clone(),
                }
                .to_db(),
            ),
            local_file: None,
            declared_format: disk_format,
            encryption_key: key.map(|k| ImageKey {
                id: k.id,
                name: k.name,
            }),
            note: Some(notes::replicated_from(
                &source.attributes.name,
                &id,
                &encryption,
            )),
            created_by: actor.user_name.clone(),
            created_at_ms: now,
        };
        let limits = self.quota_limits();
        self.store()
            .create_image(&row, &tags, limits)
            .await
            .map_err(|refused| creation_refused(refused, limits, None))?;
        if !properties.is_empty() {
            let event = NewEvent::succeeded(HistoryTopic::Edited, &actor.user_name);
            self.store()
                .replace_properties(&actor.account_id, &replica_id, &properties, &event, now)
                .await?;
        }
        let made = notes::replicated_to(name.as_str(), &replica_id, &encryption);
        let event = NewEvent {
            message: &made,
            ..NewEvent::succeeded(HistoryTopic::Replicated, &actor.user_name)
        };
        self.store()
            .record_event(&actor.account_id, &id, &source.attributes.name, &event, now)
            .await?;
        tracing::info!(replica.id = %replica_id, "replica queued");
        self.importer()
            .enqueue(&actor.account_id, &replica_id)
            .await;
        Ok(replica_id)
    }
}
