//! The image API's rules (compatible with OpenStack Glance v2; `server::glance` reads and
//! writes its wire format and converts its units). Every call goes through the same rules as
//! the console's pages: the same validation of every field, account scoping, Protected, the
//! quotas and the sharing rules, and Work History records each change under the token's user.

mod data;
mod signature;

pub(crate) use data::stored_data_unreadable;

use super::images::{Access, creation_refused, not_found, parse_image_id};
use super::importer::{BodyUploadError, Keep};
use super::{Actor, ServiceError, ServiceResult, Services, now_ms};
use crate::domain::FieldError;
use crate::domain::api_list::{ApiListQuery, api_status};
use crate::domain::conversion::ConvertTo;
use crate::domain::deprecation::DeprecateOn;
use crate::domain::history::{FieldChange, HistoryTopic};
use crate::domain::image::{Ancestor, ApiWait, DiskFormat, ImageDetail, ImageStatus};
use crate::domain::image_properties::{
    PropertyKey, PropertyValue, check_property_count, field as property_field,
};
use crate::domain::image_spec::{
    AttributesForm, EditImageForm, ImageFileUrl, Visibility, check_format_fits_file, field,
};
use crate::domain::keys::EncryptionChoice;
use crate::domain::os_catalogue::{OsPlatform, OsRequirement};
use crate::domain::share::ShareStatus;
use crate::domain::signature::SignatureProperties;
use crate::domain::tags::{TagPair, parse_tag_set};
use crate::service::downloads::{DownloadFile, download_file_name};
use crate::store::ApiListOutcome;
use crate::store::history::NewEvent;
use crate::store::images::{DeclaredFormatOutcome, ImageRow, NewImageRow};

/// An image as the API shows it to the actor.
#[derive(Clone, Debug)]
pub struct ApiImage {
    /// As Image Details shows it (a recipient of a share sees no tags or sources).
    pub detail: ImageDetail,
    /// Free-form properties (none shown to a recipient of a share).
    pub properties: Vec<(String, String)>,
    /// The actor's share, when another account owns the image.
    pub member_status: Option<ShareStatus>,
    /// The format the creator declared (inspection confirms it when the data arrives).
    pub declared_format: DiskFormat,
    /// Whether the data comes from a URL import, rather than a request body.
    pub from_url: bool,
}

impl ApiImage {
    /// The image as its owner sees it.
    fn owned(
        row: ImageRow,
        tags: Vec<TagPair>,
        shares: u64,
        properties: Vec<(String, String)>,
    ) -> Self {
        let (declared_format, from_url) = (row.declared_format, row.source_url.is_some());
        Self {
            detail: row.into_detail(tags, shares),
            properties,
            member_status: None,
            declared_format,
            from_url,
        }
    }

    /// The image as an account it is shared with sees it.
    fn shared(row: ImageRow, status: ShareStatus) -> Self {
        let (declared_format, from_url) = (row.declared_format, row.source_url.is_some());
        Self {
            detail: super::shares::as_seen_by_recipient(row.into_detail(Vec::new(), 0)),
            properties: Vec::new(),
            member_status: Some(status),
            declared_format,
            from_url,
        }
    }
}

/// A change to an image in the console's own terms and units; the wire layer converts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiChange {
    Name(String),
    Description(String),
    /// Glance's `os_type`: the operating system (`linux`, `windows`).
    OsFamily(String),
    /// Glance's `os_distro`: the system platform.
    OsPlatform(String),
    /// Glance's `os_version`: the system version; empty clears it.
    OsVersion(String),
    MinDiskGb(String),
    MinRamGb(String),
    Protected(bool),
    Visibility(String),
    Architecture(String),
    BootMode(String),
    QemuGuestAgent(bool),
    SetProperty(String, String),
    RemoveProperty(String),
    /// The whole tag set, as API tag strings (`key` or `key=value`).
    Tags(Vec<TagPair>),
    /// Glance's `disk_format`: changeable while the image waits for its data.
    DiskFormat(String),
    /// Glance's `os_encrypt_key_id`: on create, encrypt with this key (`default`: the
    /// account's default key); never changeable afterwards.
    EncryptionKey(String),
    /// `convert_to`: on create, the format the data becomes once it arrives.
    ConvertTo(String),
    /// One of Glance's `img_signature*` properties: set (`Some`) or removed, while the
    /// image waits for its data.
    SignatureProperty(String, Option<String>),
    /// Glance's `os_hidden`: left out of default lists.
    OsHidden(bool),
    /// `deprecation_time`: when the image is deprecated (RFC 3339); empty removes it.
    DeprecationTime(String),
}

/// How `POST /import` brings an image's data in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImportMethod {
    /// The data sent to the image's stage.
    GlanceDirect,
    /// A URL the console downloads.
    WebDownload(String),
}

/// A `disk_format` the API sends: one of the console's formats.
fn parse_disk_format(raw: &str) -> Result<DiskFormat, FieldError> {
    match raw {
        "" => Err(FieldError::new(
            field::DISK_FORMAT,
            format!(
                "disk_format is required: one of {}.",
                DiskFormat::every_value()
            ),
        )),
        raw => DiskFormat::from_db(raw).ok_or_else(|| {
            FieldError::new(
                field::DISK_FORMAT,
                format!(
                    "disk_format '{raw}' is not accepted: use {}.",
                    DiskFormat::every_value()
                ),
            )
        }),
    }
}

fn invalid(field: &str, message: impl Into<String>) -> ServiceError {
    ServiceError::Invalid(vec![FieldError::new(field, message)])
}

/// The form of an image's attributes and visibility after `changes`; properties and tags
/// are left to the caller.
fn apply_changes(form: &mut EditImageForm, changes: &[ApiChange]) {
    let checkbox = |on: bool| on.then(|| "on".to_owned());
    for change in changes {
        let a = &mut form.attributes;
        match change {
            ApiChange::Name(v) => a.name = v.clone(),
            ApiChange::Description(v) => a.description = v.clone(),
            ApiChange::OsPlatform(v) => {
                a.os_platform = v.clone();
                // Clients often send only `os_distro`; the operating system follows it
                // unless the request names one (applied below, so it is checked).
                if let Some(platform) = OsPlatform::from_value(v) {
                    a.os_family = platform.family().as_str().to_owned();
                }
            }
            ApiChange::OsVersion(v) => a.os_version = v.clone(),
            ApiChange::OsFamily(_) => {}
            ApiChange::MinDiskGb(v) => a.min_disk = v.clone(),
            ApiChange::MinRamGb(v) => a.min_ram = v.clone(),
            ApiChange::Protected(v) => a.protected = checkbox(*v),
            ApiChange::Architecture(v) => a.architecture = v.clone(),
            ApiChange::BootMode(v) => a.boot_mode = v.clone(),
            ApiChange::QemuGuestAgent(v) => a.qemu_guest_agent = checkbox(*v),
            ApiChange::Visibility(v) => form.visibility = v.clone(),
            ApiChange::SetProperty(..)
            | ApiChange::RemoveProperty(_)
            | ApiChange::Tags(_)
            | ApiChange::DiskFormat(_)
            | ApiChange::EncryptionKey(_)
            | ApiChange::ConvertTo(_)
            | ApiChange::SignatureProperty(..)
            | ApiChange::OsHidden(_)
            | ApiChange::DeprecationTime(_) => {}
        }
    }
    if let Some(family) = changes.iter().rev().find_map(|c| match c {
        ApiChange::OsFamily(v) => Some(v),
        _ => None,
    }) {
        form.attributes.os_family = family.clone();
    }
}

/// The deprecation time and hidden flag after `changes` (`None`: no change names them); the
/// time is checked as Details' Deprecate on is.
fn listing_after(
    changes: &[ApiChange],
    (deprecate_at_ms, hidden): (Option<i64>, bool),
    now_ms: i64,
) -> ServiceResult<Option<(Option<i64>, bool)>> {
    let mut next = (deprecate_at_ms, hidden);
    let mut touched = false;
    for change in changes {
        match change {
            ApiChange::OsHidden(h) => next.1 = *h,
            ApiChange::DeprecationTime(raw) => {
                next.0 = DeprecateOn::parse(raw, now_ms).map_err(|mut e| {
                    e.field = "deprecation_time".into();
                    e.message = e.message.replace("Deprecate on", "deprecation_time");
                    ServiceError::Invalid(vec![e])
                })?;
            }
            _ => continue,
        }
        touched = true;
    }
    Ok(touched.then_some(next))
}

/// The properties after `changes`, validated.
fn apply_property_changes(
    current: &[(String, String)],
    changes: &[ApiChange],
) -> ServiceResult<Vec<(String, String)>> {
    let mut next: Vec<(String, String)> = current.to_vec();
    let mut errors = Vec::new();
    for change in changes {
        match change {
            ApiChange::SetProperty(key, value) => {
                let key = match PropertyKey::parse(key) {
                    Ok(key) => key,
                    Err(e) => {
                        errors.push(e);
                        continue;
                    }
                };
                match PropertyValue::parse(key.as_str(), value) {
                    Ok(value) => match next.iter_mut().find(|(k, _)| k == key.as_str()) {
                        Some(slot) => slot.1 = value.as_str().to_owned(),
                        None => next.push((key.as_str().to_owned(), value.as_str().to_owned())),
                    },
                    Err(e) => errors.push(e),
                }
            }
            ApiChange::RemoveProperty(key) => {
                let before = next.len();
                next.retain(|(k, _)| k != key);
                if next.len() == before {
                    errors.push(FieldError::new(
                        property_field::PROPERTIES,
                        format!("The image has no property '{key}' to remove."),
                    ));
                }
            }
            _ => {}
        }
    }
    if let Err(e) = check_property_count(next.len()) {
        errors.push(e);
    }
    if !errors.is_empty() {
        return Err(ServiceError::Invalid(errors));
    }
    next.sort();
    Ok(next)
}

fn property_changes(before: &[(String, String)], after: &[(String, String)]) -> Vec<FieldChange> {
    let none = || "(none)".to_owned();
    let find = |list: &[(String, String)], key: &str| {
        list.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    };
    let mut keys: Vec<&String> = before.iter().chain(after).map(|(k, _)| k).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|key| {
            let (old, new) = (find(before, key), find(after, key));
            (old != new).then(|| FieldChange {
                field: format!("Property {key}"),
                old: old.unwrap_or_else(none),
                new: new.unwrap_or_else(none),
            })
        })
        .collect()
}

impl Services {
    /// One page of the API's list for the actor's account: its own images outside the Recycle
    /// Bin and those shared with it whose share is in force, as the query filters, sorts and
    /// pages them. The rows come without tags and properties (`api_page_images` adds them).
    #[tracing::instrument(skip_all, fields(account.id = %actor.account_id))]
    pub async fn api_list_images(
        &self,
        actor: &Actor,
        query: &ApiListQuery,
    ) -> ServiceResult<ApiListOutcome> {
        Ok(self
            .store()
            .list_api_images(&actor.account_id, query, self.clock_ms())
            .await?)
    }

    /// Some images of a page of the list as the API shows them, with the tags and properties
    /// of the account's own.
    pub async fn api_page_images(
        &self,
        actor: &Actor,
        rows: Vec<(ImageRow, Option<ShareStatus>)>,
    ) -> ServiceResult<Vec<ApiImage>> {
        let own: Vec<&str> = rows
            .iter()
            .filter(|(_, member)| member.is_none())
            .map(|(row, _)| row.id.as_str())
            .collect();
        let store = self.store();
        let mut tags = store.tags_of(&actor.account_id, &own).await?;
        let mut properties = store.properties_of(&actor.account_id, &own).await?;
        Ok(rows
            .into_iter()
            .map(|(row, member)| match member {
                Some(status) => ApiImage::shared(row, status),
                None => {
                    let tags = tags.remove(&row.id).unwrap_or_default();
                    let properties = properties.remove(&row.id).unwrap_or_default();
                    ApiImage::owned(row, tags, 0, properties)
                }
            })
            .collect())
    }

    /// One image as the API shows it: the account's own, or one shared with it whose share
    /// is in force, as Glance shows an image to its members whatever their status (Get Image
    /// Share shows a Pending one too). Anything else is NotFound.
    #[tracing::instrument(skip_all, fields(account.id = %actor.account_id, image.id = %id))]
    pub async fn api_image(&self, actor: &Actor, id: &str) -> ServiceResult<ApiImage> {
        let id = parse_image_id(id)?;
        let access = match self.visible_image(actor, &id).await {
            Ok(access) => access,
            Err(ServiceError::NotFound(m)) => {
                return match self
                    .store()
                    .find_share_for_member(&actor.account_id, &id)
                    .await?
                {
                    Some((share, row)) if share.status.is_active() => {
                        Ok(ApiImage::shared(row, share.status))
                    }
                    _ => Err(ServiceError::NotFound(m)),
                };
            }
            Err(e) => return Err(e),
        };
        // Glance answers 404 for a deleted image.
        if access.row().status.in_recycle_bin() {
            return Err(super::images::not_found());
        }
        match access {
            Access::Owner(row) => {
                let tags = self.store().list_tags(&actor.account_id, &id).await?;
                let shares = self
                    .store()
                    .active_share_count(&actor.account_id, &id)
                    .await?;
                let properties = self.store().list_properties(&id).await?;
                Ok(ApiImage::owned(row, tags, shares, properties))
            }
            Access::Recipient { row, .. } => Ok(ApiImage::shared(row, ShareStatus::Accepted)),
        }
    }

    /// The image's ancestors, as `GET /v2/images/{id}/ancestry` lists them: for its owner
    /// and the accounts that accepted it, each as the viewer may see it (`lineage_seen_by`).
    pub async fn api_ancestry(&self, actor: &Actor, id: &str) -> ServiceResult<Vec<Ancestor>> {
        let id = parse_image_id(id)?;
        if self
            .visible_image(actor, &id)
            .await?
            .row()
            .status
            .in_recycle_bin()
        {
            return Err(super::images::not_found());
        }
        self.lineage_seen_by(actor, &id).await
    }

    /// Creates an image that waits for its data (Queued, no source): the data comes later in
    /// a request body (`api_upload_image_data`). The attributes go through the Edit form's
    /// rules; the name is required, the operating system optional (Glance needs none). `id`
    /// is one the client chose, as Glance allows: a UUID no image has.
    #[tracing::instrument(skip_all, fields(account.id = %actor.account_id))]
    pub async fn api_create_image(
        &self,
        actor: &Actor,
        id: Option<&str>,
        disk_format: &str,
        changes: &[ApiChange],
    ) -> ServiceResult<ApiImage> {
        let id = match id {
            Some(raw) => parse_image_id(raw).map_err(|_| {
                invalid(
                    "id",
                    "id must be a UUID, like 8f4e2c1a-3b5d-4e6f-9a7b-0c1d2e3f4a5b, or left out.",
                )
            })?,
            None => uuid::Uuid::new_v4().to_string(),
        };
        let mut form = EditImageForm {
            attributes: AttributesForm {
                min_disk: "0".into(),
                min_ram: "0".into(),
                ..AttributesForm::default()
            },
            visibility: Visibility::Private.as_str().into(),
        };
        apply_changes(&mut form, changes);
        let mut errors = Vec::new();
        let disk_format = parse_disk_format(disk_format)
            .map_err(|e| errors.push(e))
            .ok();
        // Glance needs no operating system, and most clients send none: the image's is then
        // Not specified until its owner sets it.
        let edit = form.parse(OsRequirement::Optional);
        let properties = apply_property_changes(&[], changes);
        let tag_pairs: Vec<TagPair> = changes
            .iter()
            .filter_map(|c| match c {
                ApiChange::Tags(tags) => Some(tags.clone()),
                _ => None,
            })
            .next_back()
            .unwrap_or_default();
        let tags = parse_tag_set(&tag_pairs);
        if let Err(e) = &edit {
            errors.extend(e.iter().cloned());
        }
        if let Err(ServiceError::Invalid(e)) = &properties {
            errors.extend(e.iter().cloned());
        }
        if let Err(e) = &tags {
            errors.extend(e.iter().cloned());
        }
        let encryption = match changes.iter().rev().find_map(|c| match c {
            ApiChange::EncryptionKey(key) => Some(key.as_str()),
            _ => None,
        }) {
            None | Some("" | "none") => Some(EncryptionChoice::Off),
            Some(key) => EncryptionChoice::parse("on", key)
                .map_err(|_| {
                    errors.push(FieldError::new(
                        "os_encrypt_key_id",
                        "os_encrypt_key_id must be the id of one of this account's keys, or default for the account's default key.",
                    ))
                })
                .ok(),
        };
        let convert_to = match changes.iter().rev().find_map(|c| match c {
            ApiChange::ConvertTo(raw) => Some(raw.as_str()),
            _ => None,
        }) {
            None => Some(None),
            Some(raw) => crate::domain::validation::collect(ConvertTo::parse(raw), &mut errors),
        };
        let signature = signature::apply(&SignatureProperties::default(), changes, &mut errors)
            .unwrap_or_default();
        let listing = match listing_after(changes, (None, false), self.clock_ms()) {
            Ok(listing) => listing,
            Err(ServiceError::Invalid(e)) => {
                errors.extend(e);
                None
            }
            Err(other) => return Err(other),
        };
        let (
            Ok(edit),
            Some(disk_format),
            Ok(properties),
            Ok(tags),
            Some(encryption),
            Some(convert_to),
        ) = (edit, disk_format, properties, tags, encryption, convert_to)
        else {
            return Err(ServiceError::Invalid(errors));
        };
        // The signature properties and deprecation time report their errors here only.
        if !errors.is_empty() {
            return Err(ServiceError::Invalid(errors));
        }
        let encryption_key = match encryption {
            EncryptionChoice::Off => None,
            EncryptionChoice::DefaultKey => Some(self.key_for_new_image(actor, None).await?),
            EncryptionChoice::Key(id) => Some(self.key_for_new_image(actor, Some(&id)).await?),
        }
        .map(|key| crate::store::images::ImageKey {
            id: key.id,
            name: key.name,
        });
        let row = NewImageRow {
            id: id.clone(),
            account_id: actor.account_id.clone(),
            attributes: edit.attributes,
            visibility: edit.visibility.unwrap_or(Visibility::Private),
            image_type: disk_format.image_type(),
            source_url: None,
            expected_checksum: None,
            local_file: None,
            declared_format: disk_format,
            encryption_key,
            convert_to,
            signature,
            source_image_id: None,
            note: None,
            created_by: actor.user_name.clone(),
            created_at_ms: now_ms(),
        };
        let limits = self.quota_limits();
        self.store()
            .create_image(&row, &tags, limits)
            .await
            .map_err(|refused| creation_refused(refused, limits, None))?;
        if !properties.is_empty() {
            let event = NewEvent {
                changes: &property_changes(&[], &properties),
                ..NewEvent::succeeded(HistoryTopic::Edited, &actor.user_name)
            };
            self.store()
                .replace_properties(&actor.account_id, &id, &properties, &event, now_ms())
                .await?;
        }
        if let Some((deprecate_at_ms, hidden)) = listing {
            let row = self.owned_image(actor, &id).await?;
            self.set_listing(actor, &row, deprecate_at_ms, hidden)
                .await?;
        }
        tracing::info!(image.id = %id, "image created through the image API; waiting for its data");
        self.api_image(actor, &id).await
    }

    /// Applies changes to the actor's own image: attributes and visibility through the Edit
    /// form's rules, then properties, then tags, each recorded in Work History.
    #[tracing::instrument(skip_all, fields(account.id = %actor.account_id, image.id = %id))]
    pub async fn api_update_image(
        &self,
        actor: &Actor,
        id: &str,
        changes: &[ApiChange],
    ) -> ServiceResult<ApiImage> {
        let id = parse_image_id(id)?;
        let row = self.owned_image(actor, &id).await?;
        let mut form = EditImageForm {
            attributes: AttributesForm::of(&row.attributes),
            visibility: row.visibility.as_str().into(),
        };
        apply_changes(&mut form, changes);
        // Checked whole before anything is written.
        form.parse(OsRequirement::to_edit(row.attributes.os.as_ref()))
            .map_err(ServiceError::Invalid)?;
        let current_format = row.disk_format.unwrap_or(row.declared_format);
        let new_format = match changes.iter().rev().find_map(|c| match c {
            ApiChange::DiskFormat(raw) => Some(raw),
            _ => None,
        }) {
            Some(raw) => parse_disk_format(raw).map_err(|e| ServiceError::Invalid(vec![e]))?,
            None => current_format,
        };
        // The key is the image's for good, as its bytes are sealed under it: Replicate makes a
        // copy under another. Setting the same value again changes nothing.
        if let Some(key) = changes.iter().rev().find_map(|c| match c {
            ApiChange::EncryptionKey(key) => Some(key.as_str()),
            _ => None,
        }) && Some(key) != row.encryption_key_id.as_deref()
        {
            return Err(ServiceError::Forbidden(
                "os_encrypt_key_id is set when an image is created and cannot be changed: replicate the image to encrypt it under another key, or to decrypt it.".into(),
            ));
        }
        if changes.iter().any(|c| matches!(c, ApiChange::ConvertTo(_))) {
            return Err(ServiceError::Forbidden(
                "convert_to is chosen when the image is created, or in its import request ({\"method\": …, \"convert_to\": \"qcow2\"})."
                    .into(),
            ));
        }
        let listing = listing_after(
            changes,
            (row.deprecate_at_ms, row.os_hidden),
            self.clock_ms(),
        )?;
        let mut signature_errors = Vec::new();
        let signature = signature::apply(&row.signature, changes, &mut signature_errors)
            .filter(|next| *next != row.signature);
        if !signature_errors.is_empty() {
            return Err(ServiceError::Invalid(signature_errors));
        }
        if signature.is_some() && row.api_wait() != Some(ApiWait::Data) {
            return Err(ServiceError::Forbidden(format!(
                "The img_signature properties can be set only while the image waits for its data, since its bytes are verified as they arrive (this image is {}).",
                api_status(row.status, row.source_url.is_some())
            )));
        }
        if new_format != current_format && row.api_wait() != Some(ApiWait::Data) {
            return Err(ServiceError::Forbidden(format!(
                "disk_format is fixed once the image's data arrives: it can be changed only while the image is queued (this image is {}).",
                api_status(row.status, row.source_url.is_some())
            )));
        }
        let current_properties = self.store().list_properties(&id).await?;
        let properties = apply_property_changes(&current_properties, changes)?;
        let current_tags = self.store().list_tags(&actor.account_id, &id).await?;
        let tags: Option<Vec<TagPair>> = changes
            .iter()
            .filter_map(|c| match c {
                ApiChange::Tags(tags) => Some(tags.clone()),
                _ => None,
            })
            .next_back();
        if let Some(tags) = &tags {
            parse_tag_set(tags).map_err(ServiceError::Invalid)?;
        }
        self.update_image(actor, &id, &form, row.updated_at_ms)
            .await?;
        if properties != current_properties {
            let event = NewEvent {
                changes: &property_changes(&current_properties, &properties),
                ..NewEvent::succeeded(HistoryTopic::Edited, &actor.user_name)
            };
            if !self
                .store()
                .replace_properties(&actor.account_id, &id, &properties, &event, now_ms())
                .await?
            {
                return Err(not_found());
            }
        }
        if let Some(tags) = tags {
            let row = self.owned_image(actor, &id).await?;
            self.replace_tags(actor, &row, &current_tags, &tags).await?;
        }
        if let Some((deprecate_at_ms, hidden)) = listing {
            let row = self.owned_image(actor, &id).await?;
            self.set_listing(actor, &row, deprecate_at_ms, hidden)
                .await?;
        }
        if let Some(next) = signature {
            let event = NewEvent {
                changes: &signature::history(&row.signature, &next),
                ..NewEvent::succeeded(HistoryTopic::Edited, &actor.user_name)
            };
            match self
                .store()
                .set_signature_properties(&actor.account_id, &id, &next, &event, now_ms())
                .await?
            {
                DeclaredFormatOutcome::Written => {}
                DeclaredFormatOutcome::NotFound => return Err(not_found()),
                DeclaredFormatOutcome::Fixed => {
                    return Err(ServiceError::Conflict(
                        "The image's data began to arrive while its img_signature properties were being changed; they are now fixed.".into(),
                    ));
                }
            }
        }
        if new_format != current_format {
            let change = FieldChange {
                field: "Disk format".into(),
                old: current_format.label().into(),
                new: new_format.label().into(),
            };
            let event = NewEvent {
                changes: std::slice::from_ref(&change),
                ..NewEvent::succeeded(HistoryTopic::Edited, &actor.user_name)
            };
            match self
                .store()
                .set_declared_format(&actor.account_id, &id, new_format, &event, now_ms())
                .await?
            {
                DeclaredFormatOutcome::Written => {}
                DeclaredFormatOutcome::NotFound => return Err(not_found()),
                DeclaredFormatOutcome::Fixed => {
                    return Err(ServiceError::Conflict(
                        "The image's data began to arrive while disk_format was being changed; its format is now fixed.".into(),
                    ));
                }
            }
        }
        self.api_image(actor, &id).await
    }

    /// Glance's delete: an import in progress, or an image waiting for its data, is
    /// cancelled first; then the image goes to the Recycle Bin as Delete sends it.
    #[tracing::instrument(skip_all, fields(account.id = %actor.account_id, image.id = %id))]
    pub async fn api_delete_image(&self, actor: &Actor, id: &str) -> ServiceResult<()> {
        let id = parse_image_id(id)?;
        let row = self.owned_image_in_any_state(actor, &id).await?;
        let in_progress = match row.status {
            ImageStatus::Queued | ImageStatus::Importing | ImageStatus::Converting => true,
            ImageStatus::Uploading => row.source_file_name.is_none(),
            _ => false,
        };
        if in_progress && !row.attributes.protected {
            self.cancel_import(actor, &id).await?;
        }
        self.delete_image(actor, &id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_changes_are_listed_by_key() {
        let before = vec![
            ("a".to_owned(), "1".to_owned()),
            ("b".to_owned(), "2".to_owned()),
        ];
        let after = vec![
            ("b".to_owned(), "3".to_owned()),
            ("c".to_owned(), "4".to_owned()),
        ];
        let changes = property_changes(&before, &after);
        let fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["Property a", "Property b", "Property c"]);
        assert_eq!(changes[0].new, "(none)");
    }

    #[test]
    fn removing_a_missing_property_is_refused() {
        let err = apply_property_changes(&[], &[ApiChange::RemoveProperty("x".into())]);
        assert!(matches!(err, Err(ServiceError::Invalid(e)) if e[0].message.contains("'x'")));
    }
}
