//! Image List, Create Image, Image Details (Edit, Tags, Work History, Download) and Delete.
#![expect(
    clippy::too_many_arguments,
    reason = "a form's server function takes one argument per form field"
)]

use leptos::prelude::*;

use crate::domain::history::HistoryPage;
use crate::domain::image::{AccountUsage, BatchDeleteResult, DownloadLink, ImageDetail};
use crate::domain::list_query::ImagePage;
use crate::domain::settings::ConsoleSettings;
use crate::domain::tags::TagPair;
use crate::server_fns::error::AppError;

/// One page of the Image List. `query` is the page URL's query string, parsed (and
/// bounded) here exactly as the browser parsed it.
#[server]
pub async fn list_images(query: String) -> Result<ImagePage, AppError> {
    use super::ssr;
    use crate::domain::list_query::ListQuery;
    let (services, actor) = ssr::actor().await?;
    let params: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
    let query = ListQuery::from_params(|name| params.get(name).cloned());
    services
        .list_images(&actor, &query)
        .await
        .map_err(ssr::to_app_error)
}

#[server]
pub async fn get_account_usage() -> Result<AccountUsage, AppError> {
    use super::ssr;
    let (services, actor) = ssr::actor().await?;
    services
        .account_usage(&actor)
        .await
        .map_err(ssr::to_app_error)
}

#[server]
pub async fn get_image(id: String) -> Result<ImageDetail, AppError> {
    use super::ssr;
    let (services, actor) = ssr::actor().await?;
    services
        .get_image(&actor, &id)
        .await
        .map_err(ssr::to_app_error)
}

/// Validates the Create Image form and creates the image. From a URL the import is queued
/// and the Image List opens; for a local file the image waits Uploading and the page starts
/// the upload with the returned id.
#[server]
pub async fn create_image(
    name: String,
    source: Option<String>,
    source_url: Option<String>,
    file_name: Option<String>,
    file_size: Option<String>,
    disk_format: Option<String>,
    os_family: String,
    os_platform: String,
    os_version: Option<String>,
    min_disk: String,
    min_ram: String,
    visibility: String,
    protected: Option<String>,
    description: String,
    architecture: Option<String>,
    boot_mode: Option<String>,
    cloud_init: Option<String>,
    qemu_guest_agent: Option<String>,
    tags: Option<Vec<TagPair>>,
    checksum: Option<String>,
    encryption: Option<String>,
    encryption_key: Option<String>,
    convert_to: Option<String>,
    img_signature: Option<String>,
    img_signature_hash_method: Option<String>,
    img_signature_key_type: Option<String>,
    img_signature_certificate_uuid: Option<String>,
) -> Result<String, AppError> {
    use super::ssr;
    use crate::domain::image_spec::{AttributesForm, CreateImageForm, SourceKind};
    use crate::domain::signature::SignatureForm;

    let (services, actor) = ssr::actor().await?;
    let form = CreateImageForm {
        attributes: AttributesForm {
            name,
            description,
            os_family,
            os_platform,
            os_version: os_version.unwrap_or_default(),
            min_disk,
            min_ram,
            architecture: architecture.unwrap_or_default(),
            boot_mode: boot_mode.unwrap_or_default(),
            protected,
            cloud_init,
            qemu_guest_agent,
        },
        source: source.unwrap_or_default(),
        source_url: source_url.unwrap_or_default(),
        file_name: file_name.unwrap_or_default(),
        file_size: file_size.unwrap_or_default(),
        disk_format: disk_format.unwrap_or_default(),
        visibility,
        tags: tags.unwrap_or_default(),
        checksum: checksum.unwrap_or_default(),
        encryption: encryption.unwrap_or_default(),
        encryption_key: encryption_key.unwrap_or_default(),
        convert_to: convert_to.unwrap_or_default(),
        signature: SignatureForm {
            certificate_id: img_signature_certificate_uuid.unwrap_or_default(),
            hash_method: img_signature_hash_method.unwrap_or_default(),
            key_type: img_signature_key_type.unwrap_or_default(),
            signature: img_signature.unwrap_or_default(),
        },
    };
    let id = services
        .create_image(&actor, &form)
        .await
        .map_err(ssr::to_app_error)?;
    if SourceKind::parse(&form.source) == Ok(SourceKind::Url) {
        leptos_axum::redirect("/images");
    }
    Ok(id)
}

/// The upload of an Uploading image, so the page can resume or cancel it after a reload.
#[server]
pub async fn get_image_upload(
    id: String,
) -> Result<Option<crate::domain::upload::UploadRef>, AppError> {
    use super::ssr;
    let (services, actor) = ssr::actor().await?;
    services
        .image_upload(&actor, &id)
        .await
        .map_err(|e| ssr::to_app_error(e.into()))
}

/// Applies the Edit form of Image Details. `updated_at_ms` is the Modification time the form
/// was filled from, so a concurrent change is reported instead of overwritten.
#[server]
pub async fn update_image(
    id: String,
    updated_at_ms: i64,
    name: String,
    description: String,
    os_family: String,
    os_platform: String,
    os_version: Option<String>,
    min_disk: String,
    min_ram: String,
    architecture: String,
    boot_mode: String,
    cloud_init: Option<String>,
    qemu_guest_agent: Option<String>,
    protected: Option<String>,
    visibility: Option<String>,
) -> Result<(), AppError> {
    use super::ssr;
    use crate::domain::image_spec::{AttributesForm, EditImageForm};

    let (services, actor) = ssr::actor().await?;
    let form = EditImageForm {
        attributes: AttributesForm {
            name,
            description,
            os_family,
            os_platform,
            os_version: os_version.unwrap_or_default(),
            min_disk,
            min_ram,
            architecture,
            boot_mode,
            protected,
            cloud_init,
            qemu_guest_agent,
        },
        visibility: visibility.unwrap_or_default(),
    };
    services
        .update_image(&actor, &id, &form, updated_at_ms)
        .await
        .map_err(ssr::to_app_error)
}

#[server]
pub async fn set_image_protected(id: String, protected: bool) -> Result<(), AppError> {
    use super::ssr;
    let (services, actor) = ssr::actor().await?;
    services
        .set_image_protected(&actor, &id, protected)
        .await
        .map_err(ssr::to_app_error)
}

/// Sets, changes or (empty) removes the image's Deprecate on time.
#[server]
pub async fn set_deprecation(id: String, deprecate_on: String) -> Result<(), AppError> {
    use super::ssr;
    let (services, actor) = ssr::actor().await?;
    services
        .set_deprecation(&actor, &id, &deprecate_on)
        .await
        .map_err(ssr::to_app_error)
}

/// Adds a tag, or changes the tag whose key was `original_key`.
#[server]
pub async fn put_image_tag(
    id: String,
    original_key: Option<String>,
    tag_key: String,
    tag_value: String,
) -> Result<(), AppError> {
    use super::ssr;
    let (services, actor) = ssr::actor().await?;
    let original_key = original_key.filter(|k| !k.is_empty());
    services
        .put_image_tag(&actor, &id, original_key.as_deref(), &tag_key, &tag_value)
        .await
        .map_err(ssr::to_app_error)
}

#[server]
pub async fn remove_image_tag(id: String, tag_key: String) -> Result<(), AppError> {
    use super::ssr;
    let (services, actor) = ssr::actor().await?;
    services
        .remove_image_tag(&actor, &id, &tag_key)
        .await
        .map_err(ssr::to_app_error)
}

#[server]
pub async fn get_image_history(id: String, page: u32) -> Result<HistoryPage, AppError> {
    use super::ssr;
    let (services, actor) = ssr::actor().await?;
    services
        .image_history(&actor, &id, page)
        .await
        .map_err(ssr::to_app_error)
}

/// Moves an image to the Recycle Bin and opens the Image List.
#[server]
pub async fn delete_image(id: String) -> Result<(), AppError> {
    use super::ssr;
    let (services, actor) = ssr::actor().await?;
    services
        .delete_image(&actor, &id)
        .await
        .map_err(ssr::to_app_error)?;
    leptos_axum::redirect("/images");
    Ok(())
}

/// Moves the selected images to the Recycle Bin, skipping those that cannot go with the reason.
#[server]
pub async fn delete_images(ids: Vec<String>) -> Result<BatchDeleteResult, AppError> {
    use super::ssr;
    let (services, actor) = ssr::actor().await?;
    services
        .delete_images(&actor, &ids)
        .await
        .map_err(ssr::to_app_error)
}

#[server]
pub async fn create_download_link(id: String) -> Result<DownloadLink, AppError> {
    use super::ssr;
    let (services, actor) = ssr::actor().await?;
    services
        .create_download_link(&actor, &id)
        .await
        .map_err(ssr::to_app_error)
}

#[server]
pub async fn revoke_download_links(id: String) -> Result<(), AppError> {
    use super::ssr;
    let (services, actor) = ssr::actor().await?;
    services
        .revoke_download_links(&actor, &id)
        .await
        .map_err(ssr::to_app_error)
}

#[server]
pub async fn get_console_settings() -> Result<ConsoleSettings, AppError> {
    use super::ssr;
    let (services, _) = ssr::actor().await?;
    let settings = services.settings();
    Ok(ConsoleSettings {
        price_per_gb_month: settings.price_per_gb_month,
        currency: settings.currency.clone(),
        import_size_limit_bytes: settings.import_size_limit_bytes,
        convert_to_default: settings.conversion.default,
    })
}

/// Replicate Image: starts a copy of the image, encrypted as chosen; returns the replica's id.
#[server]
pub async fn replicate_image(
    id: String,
    name: String,
    encryption: Option<String>,
    encryption_key: Option<String>,
) -> Result<String, AppError> {
    use super::ssr;
    let (services, actor) = ssr::actor().await?;
    services
        .replicate_image(
            &actor,
            &id,
            &name,
            encryption.as_deref().unwrap_or_default(),
            encryption_key.as_deref().unwrap_or_default(),
        )
        .await
        .map_err(ssr::to_app_error)
}
