//! Image List, Create Image, Image Details and Delete.
#![expect(
    clippy::too_many_arguments,
    reason = "a form's server function takes one argument per form field"
)]

use leptos::prelude::*;

use crate::app::error::AppError;
use crate::domain::image::{ImageDetail, ImageSummary};
use crate::domain::settings::ConsoleSettings;

#[server]
pub async fn list_images() -> Result<Vec<ImageSummary>, AppError> {
    use super::ssr;
    let (services, actor) = ssr::actor().await?;
    services
        .list_images(&actor)
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

/// Validates the Create Image form, queues the import and opens the Image List.
#[server]
pub async fn create_image_from_url(
    name: String,
    source_url: String,
    os_type: String,
    min_disk: String,
    min_ram: String,
    visibility: String,
    protected: Option<String>,
    description: String,
) -> Result<String, AppError> {
    use super::ssr;
    use crate::domain::image_spec::CreateImageForm;

    let (services, actor) = ssr::actor().await?;
    let form = CreateImageForm {
        name,
        source_url,
        os_type,
        min_disk,
        min_ram,
        visibility,
        protected,
        description,
    };
    let id = services
        .create_image_from_url(&actor, &form)
        .await
        .map_err(ssr::to_app_error)?;
    leptos_axum::redirect("/images");
    Ok(id)
}

/// Deletes an image and opens the Image List.
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

#[server]
pub async fn set_image_protected(id: String, protected: bool) -> Result<(), AppError> {
    use super::ssr;
    let (services, actor) = ssr::actor().await?;
    services
        .set_image_protected(&actor, &id, protected)
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
    })
}
