//! The Recycle Bin (Restore, Destroy now), the account settings (retention), Deactivate and
//! Reactivate, and Cancel Import.

use leptos::prelude::*;

use crate::domain::image::BatchOutcome;
use crate::domain::lifecycle::{AccountSettings, RecycleBin};
use crate::server_fns::error::AppError;

#[server]
pub async fn get_recycle_bin() -> Result<RecycleBin, AppError> {
    use super::ssr;
    let (services, actor) = ssr::actor().await?;
    services
        .recycle_bin(&actor)
        .await
        .map_err(ssr::to_app_error)
}

/// Restores the selected images; those not in the Recycle Bin are skipped with the reason.
#[server]
pub async fn restore_images(ids: Vec<String>) -> Result<BatchOutcome, AppError> {
    use super::ssr;
    let (services, actor) = ssr::actor().await?;
    services
        .restore_images(&actor, &ids)
        .await
        .map_err(ssr::to_app_error)
}

/// Destroys the selected images now; those in use or not in the Recycle Bin are skipped with
/// the reason.
#[server]
pub async fn destroy_images(ids: Vec<String>) -> Result<BatchOutcome, AppError> {
    use super::ssr;
    let (services, actor) = ssr::actor().await?;
    services
        .destroy_images(&actor, &ids)
        .await
        .map_err(ssr::to_app_error)
}

#[server]
pub async fn get_account_settings() -> Result<AccountSettings, AppError> {
    use super::ssr;
    let (services, actor) = ssr::actor().await?;
    services
        .account_settings(&actor)
        .await
        .map_err(ssr::to_app_error)
}

/// Sets the Recycle Bin's retention, in days.
#[server]
pub async fn set_retention(retention_days: String) -> Result<(), AppError> {
    use super::ssr;
    let (services, actor) = ssr::actor().await?;
    services
        .set_retention(&actor, &retention_days)
        .await
        .map_err(ssr::to_app_error)
}

/// Deactivate (`deactivate`) or Reactivate.
#[server]
pub async fn set_image_activation(id: String, deactivate: bool) -> Result<(), AppError> {
    use super::ssr;
    let (services, actor) = ssr::actor().await?;
    services
        .set_image_activation(&actor, &id, deactivate)
        .await
        .map_err(ssr::to_app_error)
}

#[server]
pub async fn cancel_import(id: String) -> Result<(), AppError> {
    use super::ssr;
    let (services, actor) = ssr::actor().await?;
    services
        .cancel_import(&actor, &id)
        .await
        .map_err(ssr::to_app_error)
}
