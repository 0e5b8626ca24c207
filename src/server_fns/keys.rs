//! Keys: the account's encryption keys.

use leptos::prelude::*;

use crate::domain::keys::KeySummary;
use crate::server_fns::error::AppError;

/// The account's keys.
#[server]
pub async fn list_keys() -> Result<Vec<KeySummary>, AppError> {
    use super::ssr;
    let (services, actor) = ssr::actor().await?;
    services.list_keys(&actor).await.map_err(ssr::to_app_error)
}

/// Creates a key; returns its id. `make_default` is the checkbox's value when ticked.
#[server]
pub async fn create_key(
    name: String,
    description: String,
    make_default: Option<String>,
) -> Result<String, AppError> {
    use super::ssr;
    let (services, actor) = ssr::actor().await?;
    services
        .create_key(&actor, &name, &description, make_default.is_some())
        .await
        .map_err(ssr::to_app_error)
}

/// Enables, disables, schedules for deletion (after `days`), cancels deletion, rotates or
/// makes default a key.
#[server]
pub async fn change_key(id: String, action: String, days: Option<String>) -> Result<(), AppError> {
    use super::ssr;
    let (services, actor) = ssr::actor().await?;
    services
        .change_key(&actor, &id, &action, days.as_deref().unwrap_or(""))
        .await
        .map_err(ssr::to_app_error)
}
